"""Training of a decomposition stage: generator and discriminators, the paper's losses,
AdamW with cosine warm restarts, checkpoints and exact resumption.

A checkpoint (``last.pt``, every ``checkpoint_every`` epochs but at most one every
``checkpoint_minutes``) holds the weights, optimisers, schedulers, the epoch, the loss
history and the random states (torch's, the loader's shuffling), so a run killed after
epoch k and resumed repeats epoch k+1 exactly as an uninterrupted run would. At the end
``final.pt`` replaces it with the weights, history and settings only: nothing resumes
from a finished run. Checkpoints hold tensors and
plain values only: they load with ``torch.load(weights_only=True)``, never unpickling
code from a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from conventions import similarity  # the GC loss's code, part of a run's identity
from conventions.files import atomic_path
from models.losses import LossWeights, discriminator_loss, generator_loss
from models.networks import Generator, MultiscaleDiscriminator


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 4
    lr: float = 6e-5  # the paper's
    weight_decay: float = 1e-2  # the paper's
    restart_epochs: int = 10  # cosine warm restarts' period, fitted to the epochs
    checkpoint_every: int = 5
    checkpoint_minutes: float = 1.0  # and no sooner after the last one (end_of_epoch)
    backbone: str = "hrnet_w18_small"
    width: int = 16
    discriminator_width: int = 16
    discriminator_scales: int = 2
    adversarial: bool = True
    augment: bool = True  # the paper's augmentations
    augment_intensity: bool = True  # brightness and contrast too (models.data)
    augment_range: float = 1.0  # the fraction of the paper's geometric ranges
    weights: LossWeights = field(default_factory=LossWeights)
    seed: int = 2023

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["weights"] = LossWeights(**d.get("weights", {}))
        return cls(**d)


def restart_period(epochs: int, restart_epochs: int) -> int:
    """The period of the cosine warm restarts: the divisor of ``epochs`` nearest to
    ``restart_epochs`` (ties to the longer), so that training ends at the bottom of a
    cycle. A period that does not divide the epochs ends training part-way down a cycle,
    at up to the full learning rate just after a restart: 15 epochs at a period of 10 end
    at half of it, with the last five epochs' weights still far from a minimum."""
    epochs, restart_epochs = int(epochs), int(restart_epochs)
    if epochs < 1 or restart_epochs < 1:
        raise ValueError(f"epochs ({epochs}) and restart_epochs ({restart_epochs}) must be ≥ 1")
    divisors = [d for d in range(1, epochs + 1) if epochs % d == 0]
    return min(divisors, key=lambda d: (abs(d - restart_epochs), -d))


def cosine_restarts(
    optimizer: torch.optim.Optimizer, epochs: int, restart_epochs: int
) -> torch.optim.lr_scheduler.CosineAnnealingWarmRestarts:
    """Cosine annealing with warm restarts (stepped once an epoch) whose cycles end with
    training (:func:`restart_period`)."""
    return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, restart_period(epochs, restart_epochs)
    )


def adamw(params, **kw) -> torch.optim.AdamW:
    """AdamW, fused: one kernel over every parameter instead of a Python loop of small
    ops. On the CPU the loop was two thirds of a step of the baseline's ResNet-18 on
    32 × 32 ROIs (78 -> 39 ms a step; docs/performance.md)."""
    return torch.optim.AdamW(params, fused=True, **kw)


def seed_everything(seed: int) -> None:
    """Seeds torch's generator: the only global one training draws from (initial weights,
    augmentation); the loader's shuffling has its own."""
    torch.manual_seed(seed)


def device_and_precision() -> tuple[torch.device, bool]:
    """CUDA with mixed precision when there is a GPU, else the CPU in float32."""
    if torch.cuda.is_available():
        return torch.device("cuda"), True
    return torch.device("cpu"), False


class Stage:
    """The networks and optimisers of one decomposition stage."""

    def __init__(self, cfg: TrainConfig, device: torch.device):
        self.cfg = cfg
        self.generator = Generator(cfg.backbone, width=cfg.width).to(device)
        self.discriminator = MultiscaleDiscriminator(
            width=cfg.discriminator_width, scales=cfg.discriminator_scales
        ).to(device)
        kw = {"lr": cfg.lr, "weight_decay": cfg.weight_decay, "betas": (0.5, 0.999)}
        self.opt_g = adamw(self.generator.parameters(), **kw)
        self.opt_d = adamw(self.discriminator.parameters(), **kw)
        self.sched_g = cosine_restarts(self.opt_g, cfg.epochs, cfg.restart_epochs)
        self.sched_d = cosine_restarts(self.opt_d, cfg.epochs, cfg.restart_epochs)

    def weights(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
        }

    def state(self) -> dict:
        return {
            **self.weights(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
        }

    def load(self, state: dict, weights_only: bool = False) -> None:
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if not weights_only:
            for name in ("opt_g", "opt_d", "sched_g", "sched_d"):
                getattr(self, name).load_state_dict(state[name])


def save_checkpoint(
    path: Path, stage: Stage, epoch: int, history: list, loader_rng, identity: str = ""
) -> None:
    doc = {
        **stage.state(),
        "epoch": epoch,
        "history": history,
        "config": stage.cfg.to_dict(),
        "rng": {"torch": torch.get_rng_state(), "loader": loader_rng.get_state()},
        "identity": identity,
    }
    save_weights(doc, path)


def save_weights(doc: dict, path: str | Path) -> None:
    """``torch.save`` of tensors and plain values, through a temporary name (a killed job
    leaves no file that looks complete). Saved through a buffer: torch names the
    archive's folder after the file it writes, which would put the temporary name into
    the bytes (same run, different file)."""
    buffer = io.BytesIO()
    torch.save(doc, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents; tensors and plain values only (``weights_only``)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _restore_rng(rng: dict, loader_rng: torch.Generator) -> None:
    torch.set_rng_state(rng["torch"])
    loader_rng.set_state(rng["loader"])


def open_run(out_dir: str | Path, seed: int) -> tuple[Path, torch.device, bool, torch.Generator]:
    """The output folder (made), the device, whether to use mixed precision, and the
    loader's shuffling generator; torch's generator seeded."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device, amp = device_and_precision()
    seed_everything(seed)
    return out, device, amp, torch.Generator().manual_seed(seed)


def run_identity(config: dict, data_fingerprint: str, init_from: str | Path | None) -> str:
    """What makes two runs the same run: the settings, the training data (its arrays'
    digest), the weights it starts from, and the code that trains (this package and the
    GC it shares with registration). A checkpoint resumes only the run that wrote it: a
    rerun because any of these changed starts afresh instead of continuing stale
    weights."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    digest.update(data_fingerprint.encode())
    if init_from is not None:
        digest.update(Path(init_from).read_bytes())
    sources = [*sorted(Path(__file__).parent.glob("*.py")), Path(similarity.__file__)]
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()


def end_of_epoch(
    done: int,
    total: int,
    every: int,
    stop_after: int | None,
    minutes_since_last: float = math.inf,
    min_minutes: float = 0.0,
) -> tuple[bool, bool]:
    """(write ``last.pt``, stop here) after epoch ``done`` of ``total``: a checkpoint every
    ``every`` epochs before the last one (``final.pt`` holds the last), but none within
    ``min_minutes`` of the last one (or of the run's start), and one where the run is told
    to stop early, so that it resumes from there.

    The time gate is for short epochs: the CPU demo's take a second, and the baseline's
    checkpoint (ResNet-18 with AdamW's state, 128 MB) almost as long to write. A killed
    run loses at most ``every`` epochs or ``min_minutes``, whichever is longer; which
    epochs were saved does not change what the run computes."""
    stop = stop_after is not None and done >= stop_after
    due = done % every == 0 and done < total and minutes_since_last >= min_minutes
    return due or stop, stop


class CheckpointClock:
    """Minutes since the run started or last wrote ``last.pt``."""

    def __init__(self):
        self.last = time.monotonic()

    def minutes(self) -> float:
        return (time.monotonic() - self.last) / 60.0

    def saved(self) -> None:
        self.last = time.monotonic()


def save_final_checkpoint(out: Path, stage, total: int, history, identity: str) -> None:
    """``final.pt``: the weights (``stage.weights()``), the epoch, history, settings and
    identity; it replaces ``last.pt``. Not the optimisers', schedulers' or random states:
    only a resumption reads those, from ``last.pt``. They were two thirds of each file
    (the baseline's 134 MB held 45 MB of weights), written once and read again by every
    job that predicts with the model."""
    doc = {
        **stage.weights(),
        "epoch": total,
        "history": history,
        "config": stage.cfg.to_dict(),
        "identity": identity,
    }
    save_weights(doc, out / "final.pt")
    (Path(out) / "last.pt").unlink(missing_ok=True)


def resume_checkpoint(out: Path, loader_rng: torch.Generator, identity: str) -> dict | None:
    """``out/last.pt``'s contents with the random states it saved restored, or None for
    a fresh run (no checkpoint, or one another run wrote: see :func:`run_identity`).
    Called after the networks are built: their initial weights draw from torch's
    generator, which an uninterrupted run had also done before epoch one."""
    if not (out / "last.pt").is_file():
        return None
    ckpt = load_checkpoint(out / "last.pt")
    if ckpt.get("identity") != identity:
        print(f"{out / 'last.pt'} is another run's (settings, data, initial weights or "
              "code differ): starting afresh")  # fmt: skip
        return None
    _restore_rng(ckpt["rng"], loader_rng)
    return ckpt


def train_stage(
    dataset: torch.utils.data.Dataset,
    cfg: TrainConfig,
    out_dir: str | Path,
    init_from: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume, if ``out_dir/last.pt`` exists) one stage; returns the history.

    ``init_from`` starts the networks from another stage's final weights (hierarchical
    learning: stage two from stage one). ``stop_after_epoch`` ends the run early, as a
    crash would (tests of resumption)."""
    out, device, amp, loader_rng = open_run(out_dir, cfg.seed)
    stage = Stage(cfg, device)
    history: list[dict] = []
    start = 0
    identity = run_identity(cfg.to_dict(), dataset.fingerprint(), init_from)
    ckpt = resume_checkpoint(out, loader_rng, identity)
    if ckpt is not None:
        stage.load(ckpt)
        history, start = list(ckpt["history"]), int(ckpt["epoch"])
    elif init_from is not None:
        stage.load(load_checkpoint(init_from), weights_only=True)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=cfg.batch_size, shuffle=True, generator=loader_rng, drop_last=False
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    clock = CheckpointClock()
    for epoch in range(start, cfg.epochs):
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            with torch.autocast(device.type, enabled=amp):
                fake = stage.generator(x)
            if cfg.adversarial:
                with torch.autocast(device.type, enabled=amp):
                    d_loss = discriminator_loss(
                        stage.discriminator(x, fake.detach()), stage.discriminator(x, y)
                    )
                stage.opt_d.zero_grad(set_to_none=True)
                scaler.scale(d_loss).backward()
                scaler.step(stage.opt_d)
            with torch.autocast(device.type, enabled=amp):
                fake_scores = stage.discriminator(x, fake) if cfg.adversarial else None
                real_scores = stage.discriminator(x, y) if cfg.adversarial else None
                g_loss, terms = generator_loss(fake, y, fake_scores, real_scores, cfg.weights)
            stage.opt_g.zero_grad(set_to_none=True)
            scaler.scale(g_loss).backward()
            scaler.step(stage.opt_g)
            scaler.update()
            if cfg.adversarial:
                terms["discriminator"] = float(d_loss.detach())
            terms["total"] = float(g_loss.detach())
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
            bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items() if k in ("l1", "gc", "total")})
        stage.sched_g.step()
        stage.sched_d.step()
        history.append({"epoch": epoch + 1, **{k: v / len(dataset) for k, v in sums.items()}})
        done = epoch + 1
        save_last, stop = end_of_epoch(
            done,
            cfg.epochs,
            cfg.checkpoint_every,
            stop_after_epoch,
            clock.minutes(),
            cfg.checkpoint_minutes,
        )
        if save_last:
            save_checkpoint(out / "last.pt", stage, done, history, loader_rng, identity)
            clock.saved()
        if stop:
            return {"history": history, "stage": stage}
    save_final_checkpoint(out, stage, cfg.epochs, history, identity)
    return {"history": history, "stage": stage}

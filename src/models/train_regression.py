"""Training of the BMD regressors: stage three and the conventional baseline.

Stage three (Gu et al. 2023, Sec. 3.4 and 4.2) starts from stage two's encoder: first
``epochs`` with the encoder frozen (only the regression head learns; ``frozen.pt`` is
that model, the paper's "freeze M_E" rows), then ``finetune_epochs`` end to end at
``finetune_lr`` (the paper's 8 × 10⁻⁶; ``final.pt``). The conventional baseline trains
its CNN for ``epochs`` on the PF ROI crops. Both use the sample-weighted L1 of Eq. 11
on the target standardised by the training fold's mean and SD, AdamW with cosine warm
restarts, the paper's augmentations, and the same checkpoints as the decomposition
stages: a run killed after epoch k resumes and repeats epoch k+1 exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from models.regression import ConventionalRegressor, DecompositionRegressor, weighted_l1
from models.train import (
    CheckpointClock,
    adamw,
    cosine_restarts,
    end_of_epoch,
    load_checkpoint,
    open_run,
    resume_checkpoint,
    run_identity,
    save_checkpoint,
    save_final_checkpoint,
    seed_everything,
)

KINDS = ("decomposition", "conventional")


@dataclass
class RegressionConfig:
    kind: str = "decomposition"  # stage three, or "conventional" (the baseline)
    target: str = "dxa_bmd_g_cm2"
    epochs: int = 310  # stage three with M_E frozen (the paper's 310); the baseline: 400
    finetune_epochs: int = 70  # stage three end to end (the paper's 70)
    lr: float = 6e-5
    finetune_lr: float = 8e-6
    weight_decay: float = 1e-2
    restart_epochs: int = 10  # cosine warm restarts' period, fitted to each phase
    batch_size: int = 4
    checkpoint_every: int = 5
    checkpoint_minutes: float = 1.0  # and no sooner after the last one (train.end_of_epoch)
    augment: bool = True  # the paper's augmentations
    augment_intensity: bool = True  # brightness and contrast too (models.data)
    augment_range: float = 1.0  # the fraction of the paper's geometric ranges
    seed: int = 2023
    factor: int = 1  # the pairs' downsampling, as in stages one and two
    image_size: tuple[int, int] = (512, 256)  # the network's input, after ``factor``
    backbone: str = "hrnet_w18_small"  # stage three: the stage-two generator's
    width: int = 32
    head_dims: tuple[int, ...] = (192, 384)
    head_depths: tuple[int, ...] = (2, 2)
    dim_head: int = 32
    baseline_backbone: str = "resnet18"
    roi_size: int = 256  # the conventional method's ROI side at factor 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        for name in ("image_size", "head_dims", "head_depths"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))

    @property
    def total_epochs(self) -> int:
        return self.epochs + (self.finetune_epochs if self.kind == "decomposition" else 0)

    @property
    def roi_pixels(self) -> int:
        """The ROI's side in pixels at the trained resolution."""
        return max(32, self.roi_size // self.factor)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RegressionConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown regression settings: {sorted(unknown)}")
        return cls(**d)


def build_regressor(cfg: RegressionConfig) -> torch.nn.Module:
    if cfg.kind == "decomposition":
        return DecompositionRegressor(
            cfg.image_size, cfg.backbone, cfg.width, cfg.head_dims, cfg.head_depths, cfg.dim_head
        )
    return ConventionalRegressor(cfg.baseline_backbone)


class RegressionRun:
    """A regressor with the optimiser and schedule of its current phase: 0 (stage three
    with the encoder frozen, or the baseline's whole run) or 1 (end to end)."""

    def __init__(self, cfg: RegressionConfig, device: torch.device):
        self.cfg = cfg
        self.model = build_regressor(cfg).to(device)
        self.set_phase(0)

    def set_phase(self, phase: int) -> None:
        """A fresh AdamW and schedule for ``phase``, over the parameters it trains."""
        self.phase = phase
        frozen = self.cfg.kind == "decomposition" and phase == 0
        if self.cfg.kind == "decomposition":
            self.model.encoder.requires_grad_(not frozen)
        params = self.model.head.parameters() if frozen else self.model.parameters()
        lr = self.cfg.finetune_lr if phase == 1 else self.cfg.lr
        self.opt = adamw(params, lr=lr, weight_decay=self.cfg.weight_decay)
        epochs = self.cfg.finetune_epochs if phase == 1 else self.cfg.epochs
        self.sched = cosine_restarts(self.opt, max(epochs, 1), self.cfg.restart_epochs)

    def weights(self) -> dict:
        return {"model": self.model.state_dict(), "phase": self.phase}

    def state(self) -> dict:
        return {
            **self.weights(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
        }

    def load(self, state: dict, epoch: int) -> None:
        self.model.load_state_dict(state["model"])
        phase = self.phase_of(epoch)
        self.set_phase(phase)
        if int(state["phase"]) == phase:  # else the next phase starts a fresh optimiser
            self.opt.load_state_dict(state["opt"])
            self.sched.load_state_dict(state["sched"])

    def phase_of(self, epoch: int) -> int:
        """The phase that trains epoch index ``epoch`` (0-based)."""
        return 0 if epoch < self.cfg.epochs else 1


def train_regressor(
    dataset,
    cfg: RegressionConfig,
    out_dir: str | Path,
    init_from: str | Path | None = None,
    stop_after_epoch: int | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume, if ``out_dir/last.pt`` exists) a regressor on ``dataset`` (a
    :class:`models.data.RegressionDataset`); returns the history and the model.

    ``init_from``: the stage-two checkpoint whose encoder stage three starts from."""
    out, device, amp, loader_rng = open_run(out_dir, cfg.seed)
    run = RegressionRun(cfg, device)
    history: list[dict] = []
    start = 0
    identity = run_identity(cfg.to_dict(), dataset.fingerprint(), init_from)
    ckpt = resume_checkpoint(out, loader_rng, identity)
    past_frozen = ckpt is not None and int(ckpt["epoch"]) >= cfg.epochs
    if past_frozen and cfg.kind == "decomposition" and not (out / "frozen.pt").is_file():
        # Snakemake removes a killed job's outputs: the frozen phase cannot be had back.
        print("frozen.pt is gone and last.pt is past the frozen phase: starting afresh")
        ckpt = None
        seed_everything(cfg.seed)  # as open_run left it for a fresh run
        loader_rng.manual_seed(cfg.seed)
        run = RegressionRun(cfg, device)
    if ckpt is not None:
        history, start = list(ckpt["history"]), int(ckpt["epoch"])
        run.load(ckpt, start)
    else:
        if cfg.kind == "decomposition":
            if init_from is None:
                raise ValueError("stage three starts from a stage-two checkpoint (init_from)")
            run.model.load_encoder(load_checkpoint(init_from)["generator"])
        bmd = np.asarray(dataset.bmd, float)
        run.model.target_mean.fill_(float(bmd.mean()))
        run.model.target_sd.fill_(float(bmd.std()) if bmd.std() > 0 else 1.0)
    mean, sd = run.model.target_mean, run.model.target_sd
    # Batch normalisation (the baseline's CNN) cannot train on a batch of one: a last,
    # single-radiograph batch is left out of that epoch.
    single_last = cfg.kind == "conventional" and len(dataset) % cfg.batch_size == 1
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=loader_rng,
        drop_last=single_last,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    phase_names = ("frozen", "finetune") if cfg.kind == "decomposition" else ("train",)
    clock = CheckpointClock()
    for epoch in range(start, cfg.total_epochs):
        if run.phase_of(epoch) != run.phase:
            run.set_phase(run.phase_of(epoch))
        run.model.train()
        loss_sum = abs_sum = 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.total_epochs}", disable=not progress)
        for x, y, w in bar:
            x, y, w = x.to(device), y.to(device), w.to(device)
            with torch.autocast(device.type, enabled=amp):
                pred = run.model.standardised(x)
            loss = weighted_l1(pred.float(), (y - mean) / sd, w)
            run.opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(run.opt)
            scaler.update()
            loss_sum += float(loss.detach()) * len(x)
            abs_sum += float(((pred.detach().float() * sd + mean) - y).abs().sum())
            bar.set_postfix(loss=f"{float(loss.detach()):.3g}")
        run.sched.step()
        history.append(
            {
                "epoch": epoch + 1,
                "phase": phase_names[run.phase],
                "loss": loss_sum / len(dataset),
                "mae": abs_sum / len(dataset),
            }
        )
        done = epoch + 1
        if cfg.kind == "decomposition" and done == cfg.epochs:
            save_checkpoint(out / "frozen.pt", run, done, history, loader_rng, identity)
        save_last, stop = end_of_epoch(
            done,
            cfg.total_epochs,
            cfg.checkpoint_every,
            stop_after_epoch,
            clock.minutes(),
            cfg.checkpoint_minutes,
        )
        if save_last:
            save_checkpoint(out / "last.pt", run, done, history, loader_rng, identity)
            clock.saved()
        if stop:
            return {"history": history, "model": run.model}
    save_final_checkpoint(out, run, cfg.total_epochs, history, identity)
    return {"history": history, "model": run.model}


def load_regressor(checkpoint: str | Path) -> tuple[torch.nn.Module, RegressionConfig]:
    """A trained regressor (eval mode, CPU) and its settings."""
    return regressor_from_checkpoint(load_checkpoint(checkpoint))


def regressor_from_checkpoint(ckpt: dict) -> tuple[torch.nn.Module, RegressionConfig]:
    cfg = RegressionConfig.from_dict(ckpt["config"])
    model = build_regressor(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg


@torch.no_grad()
def predict_bmd(model: torch.nn.Module, inputs: np.ndarray, batch: int = 16) -> np.ndarray:
    """Standardised inputs (N, H, W) → BMD in the target's units (N,)."""
    out = [
        model(torch.from_numpy(np.asarray(inputs[i : i + batch], np.float32))[:, None]).numpy()
        for i in range(0, len(inputs), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0)

"""Training throughput of the models: images per second of one optimisation step, on
the CPU and, where there is one, on a GPU (mixed precision, as training runs there).

Measured per model: stage one/two (generator and multiscale discriminators, the paper's
four losses), stage three (encoder and regression head, end to end) and the
conventional baseline (ResNet-18 on the PF ROI). The baseline, a plain CNN, is the
reference each ratio is given against.

    python benchmarks/training.py                 # the demo's size (64 × 32) and 1/2 size
    python benchmarks/training.py --full          # also the paper's 512 × 256 pairs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch

from models.losses import LossWeights, discriminator_loss, generator_loss
from models.networks import Generator, MultiscaleDiscriminator
from models.regression import (
    ConventionalRegressor,
    DecompositionRegressor,
    weighted_l1,
)


def decomposition_step(size, width, device, amp):
    g = Generator(width=width).to(device)
    d = MultiscaleDiscriminator(width=2 * width).to(device)
    opt_g = torch.optim.AdamW(g.parameters())
    opt_d = torch.optim.AdamW(d.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step(x, y):
        with torch.autocast(device.type, enabled=amp):
            fake = g(x)
            d_loss = discriminator_loss(d(x, fake.detach()), d(x, y))
        opt_d.zero_grad()
        scaler.scale(d_loss).backward()
        scaler.step(opt_d)
        with torch.autocast(device.type, enabled=amp):
            loss, _ = generator_loss(fake, y, d(x, fake), d(x, y), LossWeights())
        opt_g.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt_g)
        scaler.update()

    return step, size


def regression_step(model, size, device, amp):
    model = model.to(device)
    opt = torch.optim.AdamW(model.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def step(x, y):
        with torch.autocast(device.type, enabled=amp):
            pred = model.standardised(x)
        loss = weighted_l1(pred.float(), y[:, 0, 0, 0], torch.ones(len(x), device=device))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step, size


def images_per_second(step, size, batch, device, seconds) -> float:
    x = torch.randn(batch, 1, *size, device=device)
    y = torch.rand(batch, 1, *size, device=device)
    step(x, y)  # warm-up (allocations, cuDNN's choice of kernels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(x, y)
        n += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also 512 × 256 (slow on a CPU)")
    ap.add_argument("--seconds", type=float, default=5.0, help="timing per case")
    ap.add_argument("--batch", type=int, default=4)
    a = ap.parse_args()
    sizes = [(64, 32), (256, 128)] + ([(512, 256)] if a.full else [])
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, batch {a.batch}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
    print(f"{'device':6} {'pair':>9} {'model':40} {'images/s':>9} {'vs baseline':>11}")
    for device in devices:
        amp = device.type == "cuda"
        for size in sizes:
            roi = (max(32, size[1]),) * 2  # the ROI at this factor (256 at full size)
            width = 16 if size[0] <= 64 else 32
            cases = {
                "conventional baseline (ResNet-18, ROI)": regression_step(
                    ConventionalRegressor(), roi, device, amp
                ),
                f"stage 1/2: generator w{width} + discr.": decomposition_step(
                    size, width, device, amp
                ),
                f"stage 3: encoder w{width} + head": regression_step(
                    DecompositionRegressor(size, width=width), size, device, amp
                ),
            }
            reference = None
            for name, (step, s) in cases.items():
                rate = images_per_second(step, s, a.batch, device, a.seconds)
                reference = reference or rate
                shown = f"{size[0]}x{size[1]}"
                print(f"{device.type:6} {shown:>9} {name:40} {rate:9.1f} {rate / reference:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

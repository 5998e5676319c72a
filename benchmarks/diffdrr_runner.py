"""Time DiffDRR's trilinear renderer (run with DiffDRR's own python; see drr.py).

Prints one JSON line: {"seconds": median seconds per call}. Reading only: DiffDRR's
public API is called as its documentation shows; nothing of it is copied here.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from diffdrr.data import read
from diffdrr.drr import DRR


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--volume", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--cols", type=int, required=True)
    ap.add_argument("--spacing", type=float, required=True)
    ap.add_argument("--sdd", type=float, required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--n-points", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    drr = DRR(
        read(a.volume), sdd=a.sdd, height=a.rows, width=a.cols, delx=a.spacing, renderer="trilinear"
    ).to(a.device)
    rot = torch.zeros(a.batch, 3, device=a.device)
    xyz = torch.tensor([[0.0, 850.0, 0.0]], device=a.device).repeat(a.batch, 1)

    def render():
        with torch.no_grad():
            out = drr(
                rot, xyz, parameterization="euler_angles", convention="ZXY", n_points=a.n_points
            )
        if a.device != "cpu":
            torch.cuda.synchronize()
        return out

    render()
    times = []
    for _ in range(a.repeats):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": float(np.median(times))}))


if __name__ == "__main__":
    main()

# ruff: noqa: E402  (imports follow the sys.path fix below)
"""DRR speed and memory, ours beside plastimatch (and DiffDRR where available), one run.

    python benchmarks/drr.py [--repeats 3] [--large] [--diffdrr-python PATH]

Prints milliseconds per DRR for the real CT (TotalSegmentator's example, 3 mm) and a
512×512×300 synthetic volume at 256×256, 512×256 and 1024×1024, then a batch of 32
poses at 128×64 (registration's inner loop), and the peak memory of a 1024×1024 DRR of
a 512×512×400 volume. plastimatch's figure is the rendering time it reports itself
(file I/O and process start excluded), so the ratio compares projection with
projection. DiffDRR runs in its own environment (it needs torchvision): give its
python with --diffdrr-python.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named after the package it measures: keep its own folder off the
# import path so `import drr` finds the package, not this file.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import json
import os
import platform
import resource
import subprocess
import tempfile
import time

import numpy as np
import SimpleITK as sitk
import torch

from cohort.example_data import totalsegmentator_example
from conventions.ct import read_ct
from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose, rotation_about
from drr import Volume, project
from drr import plastimatch as pm
from drr.projector import project_tensor
from drr.rays import rays_for_poses

SIZES = [(256, 256), (512, 256), (1024, 1024)]
DETECTOR_MM = (430.0, 430.0)  # a 43 cm × 43 cm flat panel


def timed(fn, repeats: int) -> float:
    """Median wall time (s) over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def geometry(rows: int, cols: int) -> ProjectionGeometry:
    return ProjectionGeometry(1100.0, rows, cols, (DETECTOR_MM[0] / rows, DETECTOR_MM[1] / cols))


def centre_of(image: sitk.Image) -> np.ndarray:
    return np.array(
        image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    )


def samples_per_ray(volume: Volume, g: ProjectionGeometry, poses: np.ndarray, step: float) -> float:
    """Samples DiffDRR needs for our step on the longest ray (it spaces its n_points
    evenly over the span of all rays together)."""
    n = np.array(volume.shape_xyz, dtype=float)
    rays = rays_for_poses(g, poses, volume.index_from_ct, np.full(3, -1.0), n)
    return float(rays.chord_mm().max() / step)


def bench_volume(name: str, image: sitk.Image, path: Path, repeats: int, diffdrr: str | None):
    volume = Volume.from_image(image)
    pose = ap_pose(centre_of(image), 1000.0).camera_from_ct
    step = 0.5 * float(volume.spacing_mm.min())
    print(f"\n## {name}: {image.GetSize()} voxels, spacing {image.GetSpacing()} mm")
    print(
        "| image | ours trilinear ms | ours exact ms | plastimatch exact ms | pm/ours exact "
        "| pm/ours trilinear | DiffDRR trilinear ms | DiffDRR/ours trilinear |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rows, cols in SIZES:
        g = geometry(rows, cols)
        t_tri = timed(lambda g=g: project(volume, g, pose), repeats)
        t_exact = timed(lambda g=g: project(volume, g, pose, integrator="siddon"), repeats)
        pm_s = float("nan")
        if pm.plastimatch_binary():
            pm_s = float(np.median([pm.render(path, g, pose)[1] for _ in range(repeats)]))
        dd = float("nan")
        if diffdrr:
            n_points = round(samples_per_ray(volume, g, pose[None], step))
            dd = run_diffdrr(diffdrr, path, g, 1, n_points, repeats)
        print(
            f"| {rows}×{cols} | {t_tri * 1e3:.0f} | {t_exact * 1e3:.0f} | {pm_s * 1e3:.0f} "
            f"| {pm_s / t_exact:.2f} | {pm_s / t_tri:.2f} | {dd * 1e3:.0f} | {dd / t_tri:.1f} |"
        )


def bench_batch(image: sitk.Image, path: Path, repeats: int, diffdrr: str | None):
    volume = Volume.from_image(image)
    c = centre_of(image)
    rng = np.random.default_rng(0)
    poses = np.stack(
        [
            ap_pose(c, 1000.0).camera_from_ct @ rotation_about(c, rng.normal(0, 0.05, 3))
            for _ in range(32)
        ]
    )
    g = geometry(128, 64)
    spacing = float(volume.spacing_mm.min())
    print("\n## Registration's inner loop: 32 poses × 128×64, real CT, one call")
    print("| renderer | ms per batch | ms per DRR |")
    print("|---|---|---|")
    rows = [
        ("ours trilinear, step ½ voxel (default)", lambda: project(volume, g, poses)),
        ("ours trilinear, step 1 voxel", lambda: project(volume, g, poses, step_mm=spacing)),
        ("ours exact (Siddon)", lambda: project(volume, g, poses, integrator="siddon")),
        ("ours Joseph (registration's)", lambda: project(volume, g, poses, integrator="joseph")),
        (
            "ours trilinear, torch backend on the CPU",
            lambda: project_tensor(volume, g, poses, backend="torch"),
        ),
    ]
    if torch.cuda.is_available():  # what the workflow runs with drr.gpus: 1
        rows += [
            (f"ours {integrator}, torch on CUDA ({torch.cuda.get_device_name()})",
             lambda integrator=integrator: cuda_render(volume, g, poses, integrator))
            for integrator in ("trilinear", "siddon", "joseph")
        ]  # fmt: skip
    for label, fn in rows:
        t = timed(fn, repeats)
        print(f"| {label} | {t * 1e3:.0f} | {t * 1e3 / 32:.1f} |")
    if pm.plastimatch_binary():
        t = sum(pm.render(path, g, p)[1] for p in poses)
        print(f"| plastimatch exact, 32 separate renders | {t * 1e3:.0f} | {t * 1e3 / 32:.1f} |")
    if diffdrr:
        n_points = round(samples_per_ray(volume, g, poses, 0.5 * spacing))
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            t = run_diffdrr(diffdrr, path, g, 32, n_points, repeats, device)
            label = f"DiffDRR trilinear ({n_points} points per ray), {device}"
            print(f"| {label} | {t * 1e3:.0f} | {t * 1e3 / 32:.1f} |")


def cuda_render(volume: Volume, g: ProjectionGeometry, poses: np.ndarray, integrator: str):
    """One batch on the GPU, finished (CUDA calls return before the kernels end)."""
    out = project_tensor(volume, g, poses, integrator=integrator, device="cuda")
    torch.cuda.synchronize()
    return out


def run_diffdrr(
    python: str,
    path: Path,
    g: ProjectionGeometry,
    batch: int,
    n_points: int,
    repeats: int,
    device: str = "cpu",
) -> float:
    """Median seconds per call of DiffDRR's trilinear renderer, in its own environment."""
    cmd = [
        python,
        str(HERE / "diffdrr_runner.py"),
        "--volume",
        str(path),
        "--rows",
        str(g.rows),
        "--cols",
        str(g.cols),
        "--spacing",
        str(g.row_spacing_mm),
        "--sdd",
        str(g.sdd_mm),
        "--batch",
        str(batch),
        "--n-points",
        str(n_points),
        "--repeats",
        str(repeats),
        "--device",
        device,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"(DiffDRR failed: {p.stderr.strip().splitlines()[-1:]})")
        return float("nan")
    return float(json.loads(p.stdout.strip().splitlines()[-1])["seconds"])


def memory_child() -> None:
    """Peak RSS of one 1024×1024 DRR of a 512×512×400 volume (run in a fresh process)."""
    vol = np.random.default_rng(0).random((400, 512, 512), dtype=np.float32)
    a = np.eye(4)
    a[:3, :3] = np.diag([0.7, 0.7, 0.8])
    a[:3, 3] = [-179.0, -179.0, -160.0]
    volume = Volume(vol, a)
    g = geometry(1024, 1024)
    pose = ap_pose(np.zeros(3), 1000.0).camera_from_ct
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {}
    for integrator in ("trilinear", "siddon"):
        project(volume, g, pose, integrator=integrator)
        out[integrator] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"volume_mb": vol.nbytes / 2**20, "before_kb": base, **out}))


def bench_memory():
    p = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"(memory measurement failed: {p.stderr[-300:]})")
        return
    m = json.loads(p.stdout.strip().splitlines()[-1])
    print(
        f"\n## Memory: 1024×1024 DRR of a 512×512×400 float32 volume ({m['volume_mb']:.0f} MB), CPU"
    )
    print("| state | peak RSS of the process, MB |")
    print("|---|---|")
    before = m["before_kb"] / 1024
    print(f"| interpreter, torch, numba and the volume, before projecting | {before:.0f} |")
    for k in ("trilinear", "siddon"):
        print(f"| after a {k} DRR | {m[k] / 1024:.0f} |")


def synthetic_volume() -> sitk.Image:
    """512×512×300 at 0.7×0.7×1 mm: a body-sized elliptic cylinder of noise in air."""
    rng = np.random.default_rng(0)
    _, y, x = np.ogrid[:300, :512, :512]
    body = ((x - 256) / 240.0) ** 2 + ((y - 256) / 170.0) ** 2 <= 1.0
    vol = np.where(body, rng.normal(0.0, 200.0, (300, 512, 512)).astype(np.float32), -1000.0)
    img = sitk.GetImageFromArray(vol.astype(np.float32))
    img.SetSpacing((0.7, 0.7, 1.0))
    img.SetOrigin((-179.0, -179.0, -150.0))
    return img


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--large", action="store_true", help="also the 512×512×300 volume")
    ap.add_argument("--diffdrr-python", default=os.environ.get("DIFFDRR_PYTHON"))
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.memory_child:
        memory_child()
        return
    print(
        f"# DRR benchmark — {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ct = sitk.DICOMOrient(read_ct(totalsegmentator_example()["ct"]), "LPS")
        ct = sitk.ConstantPad(ct, [1, 1, 1], [1, 1, 1], 0.0)
        ct_path = Path(tmp) / "ct.mha"
        sitk.WriteImage(ct, str(ct_path))
        bench_volume("Real CT (TotalSegmentator example)", ct, ct_path, a.repeats, a.diffdrr_python)
        bench_batch(ct, ct_path, a.repeats, a.diffdrr_python)
        if a.large:
            syn = synthetic_volume()
            syn_path = Path(tmp) / "synthetic.mha"
            sitk.WriteImage(syn, str(syn_path))
            bench_volume("Synthetic 512×512×300", syn, syn_path, a.repeats, a.diffdrr_python)
            bench_memory()


if __name__ == "__main__":
    main()

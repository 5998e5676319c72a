# ruff: noqa: E402  (imports follow the sys.path fix below)
"""Start-up of every stage's CLI, and the first call of the DRR kernels, as whole processes.

    python benchmarks/startup.py [--repeats 5]

Per CLI (``python -m <package> --help``): the wall time of the process (median and
minimum of ``--repeats``) and which heavy libraries it imported (torch, matplotlib, numba,
cma). A workflow job pays this before any work, so on a cohort it is paid per subject
and radiograph many times over. Then the first call of the projector's kernels in a fresh
process (numba's cache loaded, or compiled where the cache is cold), beside a warm call,
and one DRR through ``python -m drr`` against plastimatch's ``drr`` for the same image
(both whole processes, file I/O included).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import argparse
import json
import platform
import statistics
import subprocess
import tempfile
import time

import numpy as np
import SimpleITK as sitk

PACKAGES = (
    "cohort",
    "calibration",
    "segmentation",
    "anatomy",
    "registration",
    "dataset",
    "drr",
    "qc",
    "phantom",
    "models",
    "evaluation",
)
HEAVY = ("torch", "matplotlib", "numba", "cma", "skimage", "pandas")
FIRST_CALL = """
import json, time, numpy as np
t0 = time.perf_counter()
from conventions.geometry import ProjectionGeometry
from conventions.pose import ap_pose
from drr import Volume, project
t1 = time.perf_counter()
v = Volume(np.ones((40, 40, 40), np.float32), np.eye(4))
g = ProjectionGeometry(1000.0, 64, 64, (1.0, 1.0))
pose = ap_pose(np.full(3, 20.0), 800.0).camera_from_ct
out = {"import_s": t1 - t0}
for integrator in ("trilinear", "siddon"):
    t = time.perf_counter(); project(v, g, pose, integrator=integrator)
    first = time.perf_counter() - t
    t = time.perf_counter(); project(v, g, pose, integrator=integrator)
    out[integrator] = (first, time.perf_counter() - t)
print(json.dumps(out))
"""


def wall(cmd: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def imported(package: str) -> list[str]:
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", package, "--help"],
        capture_output=True,
        text=True,
    )
    names = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if "|" in line}
    return [h for h in HEAVY if h in names]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print("\n| CLI | start-up s (median) | min | heavy imports |\n|---|---|---|---|")
    for package in PACKAGES:
        t = wall([sys.executable, "-m", package, "--help"], a.repeats)
        heavy = ", ".join(imported(package)) or "–"
        print(f"| {package} | {statistics.median(t):.2f} | {min(t):.2f} | {heavy} |", flush=True)

    p = subprocess.run(
        [sys.executable, "-c", FIRST_CALL],
        capture_output=True,
        text=True,
        check=True,
    )
    first = json.loads(p.stdout)
    print(f"\nimport of drr in a fresh process: {first['import_s']:.2f} s")
    print("| kernel | first call s (cache load or compile) | warm call s |\n|---|---|---|")
    for integrator in ("trilinear", "siddon"):
        f, w = first[integrator]
        print(f"| {integrator} | {f:.3f} | {w:.4f} |")

    from conventions.pose import ap_pose
    from drr.plastimatch import plastimatch_binary

    exe = plastimatch_binary()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = np.zeros((100, 120, 120), np.int16) - 1000
        data[20:80, 30:90, 30:90] = 300
        image = sitk.GetImageFromArray(data)
        image.SetSpacing((2.0, 2.0, 2.0))
        sitk.WriteImage(image, str(d / "ct.mha"))
        centre = np.array(image.TransformContinuousIndexToPhysicalPoint([59.5, 59.5, 49.5]))
        geometry = {"sdd_mm": 1100.0, "rows": 256, "cols": 256, "pixel_spacing_mm": [1.0, 1.0]}
        (d / "geometry.json").write_text(json.dumps(geometry))
        pose = ap_pose(centre, 1000.0).camera_from_ct
        (d / "pose.json").write_text(json.dumps({"camera_from_ct": pose.tolist()}))
        ours = [
            sys.executable, "-m", "drr", "--ct", str(d / "ct.mha"), "--geometry",
            str(d / "geometry.json"), "--pose", str(d / "pose.json"), "--integrator", "siddon",
            "--out", str(d / "ours.mha"),
        ]  # fmt: skip
        t_ours = wall(ours, a.repeats)
        t = statistics.median(t_ours)
        print(f"\none 256 × 256 DRR, whole process: python -m drr {t:.2f} s")
        if exe:
            from conventions.geometry import ProjectionGeometry
            from drr.plastimatch import drr_options

            g = ProjectionGeometry.from_dict(geometry)
            sad = float((pose[:3, :3] @ centre + pose[:3, 3])[2])
            peer = [
                exe, "drr", "-t", "pfm", "-A", "cpu", "-P", "none", "-i", "exact",
                *drr_options(g, pose, sad), "-O", str(d / "peer"), str(d / "ct.mha"),
            ]  # fmt: skip
            t_peer = wall(peer, a.repeats)
            print(
                f"plastimatch drr {statistics.median(t_peer):.2f} s; ours / plastimatch "
                f"{statistics.median(t_ours) / statistics.median(t_peer):.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

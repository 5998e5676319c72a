"""``python -m dataset``: the training pairs and the cohort's dataset tables.

``project``  each of a subject's radiographs (one process, the CT read once): the bone
             DRR and PF-DRR (g/cm²) at the registered poses, the PF silhouette and
             projected landmarks (``projection.npz``), and the
             target side's normalised pair (``pair.npz``: radiograph, bone DRR, PF-DRR,
             PF mask) with its record (``pair.json``: transform, PF-DRR mean, status).
``tables``   all pairs → ``dataset_A.tsv``, ``dataset_B.tsv`` and the exclusions.
``folds``    dataset B's subjects → patient-wise, BMD-stratified ``folds.json``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import SimpleITK as sitk

from conventions.ct import read_ct, require_same_grid
from conventions.errors import InputError, run_cli
from conventions.files import write_folder_index, write_json, write_npz, write_text
from conventions.geometry import read_geometry, read_json_object
from conventions.labels import SIDES
from conventions.landmarks import read_landmarks
from conventions.pose import HIP_BODIES, pose_path, read_pose
from conventions.radiograph import read_radiograph
from dataset.project import (
    decomposition_drrs,
    pair_measures,
    projected_landmarks,
    registration_status,
    training_pair,
)


def _on_grid(image: sitk.Image, like: sitk.Image, path: str) -> np.ndarray:
    require_same_grid(image, like, path, "the density volume's")
    return sitk.GetArrayFromImage(image)


def _shape(text: str) -> tuple[int, int]:
    rows, cols = (int(v) for v in text.split(","))
    if rows < 8 or cols < 8:
        raise argparse.ArgumentTypeError(f"pair shape {text} is too small")
    return rows, cols


# A radiograph's products in a subject's dataset folder: {folder}/{image}/<name>.
PRODUCTS = {"projection": "projection.npz", "pair": "pair.npz", "record": "pair.json"}


def _project_outputs(a, images: list[str]) -> dict[str, dict[str, str]]:
    if a.out_index and not a.out_dir:
        raise InputError(a.out_index, "--out-index indexes --out-dir: give both")
    if a.out_dir:
        return {i: {k: f"{a.out_dir}/{i}/{name}" for k, name in PRODUCTS.items()} for i in images}
    if len(images) != 1 or not (a.out_projection and a.out_pair and a.out_record):
        raise InputError(
            a.xray[0], "give --out-dir, or --out-projection, --out-pair and --out-record"
        )
    return {images[0]: {"projection": a.out_projection, "pair": a.out_pair,
                        "record": a.out_record}}  # fmt: skip


def _pose_files(a, images: list[str]) -> dict[str, dict[str, str]]:
    if a.registration:
        return {i: {b: str(pose_path(a.registration, i, b)) for b in HIP_BODIES} for i in images}
    if len(images) != 1 or not (a.pose_pelvis and a.pose_femur):
        raise InputError(a.xray[0], "give --registration, or --pose-pelvis and --pose-femur")
    return {images[0]: {"pelvis": a.pose_pelvis, "femur": a.pose_femur}}


def project_command(a) -> int:
    """Each of a subject's radiographs in turn, in one process: the CT's volumes read once."""
    images, labels_of_pose = a.image, a.pose
    if not (len(images) == len(labels_of_pose) == len(a.xray) == len(a.geometry)):
        raise InputError(a.xray[0], "--image, --pose, --xray and --geometry must pair up")
    outputs, pose_files = _project_outputs(a, images), _pose_files(a, images)
    density_image = read_ct(a.density)
    labels = _on_grid(read_ct(a.labels), density_image, a.labels).astype(np.int32)
    region = _on_grid(read_ct(a.pf_region), density_image, a.pf_region) > 0
    mineral = _on_grid(read_ct(a.pf_mineral), density_image, a.pf_mineral).astype(np.float32)
    femoral = {k: v for k, v in read_landmarks(a.landmarks).items() if k.endswith(f"_{a.side}")}
    for i, image in enumerate(images):
        geometry = read_geometry(a.geometry[i])
        xray = read_radiograph(a.xray[i]).pixels
        if xray.shape != (geometry.rows, geometry.cols):
            raise InputError(a.xray[i], f"image {xray.shape} does not match its geometry")
        pelvis = read_pose(pose_files[image]["pelvis"])
        femur = read_pose(pose_files[image]["femur"])
        drrs = decomposition_drrs(
            density_image,
            labels,
            mineral,
            region,
            a.side,
            geometry,
            pelvis.camera_from_ct,
            femur.camera_from_ct,
            device=a.device,
        )
        points = projected_landmarks(femoral, femur.camera_from_ct, geometry)
        out = outputs[image]
        write_npz(out["projection"], **drrs)
        pair, t = training_pair(xray, drrs, a.side, a.pair_shape)
        write_npz(out["pair"], **pair)
        record = {
            "subject_id": a.subject,
            "image": image,
            "pose": labels_of_pose[i],
            "side": a.side,
            "pair": out["pair"],
            "pair_shape": list(a.pair_shape),
            "registration": {
                "pelvis": registration_status(pelvis.extra),
                "femur": registration_status(femur.extra),
            },
            **pair_measures(drrs, pair, points, t),
        }
        write_json(out["record"], record)
        status = record["registration"]
        print(
            f"subject {a.subject} {image}: PF-DRR mean {record['pf_drr_mean_g_cm2']:.4f} "
            f"g/cm², registration {status['pelvis']['status']}/{status['femur']['status']}",
            flush=True,
        )
    if a.out_index:
        write_folder_index(a.out_dir, a.out_index)
    return 0


def tables_command(a) -> int:
    # pandas only in the cohort's two table steps: each subject's projection starts without
    import pandas as pd

    from dataset.tables import dataset_tables

    try:
        subjects = pd.read_csv(a.subjects, sep="\t", dtype={"subject_id": str})
    except (OSError, ValueError) as e:
        raise InputError(a.subjects, f"unreadable subjects table ({e})") from None
    records = [read_json_object(p) for p in a.records]
    ct_bmd = {}
    for p in a.ct_bmd:
        doc = read_json_object(p)
        ct_bmd[str(doc["subject_id"])] = doc
    table_a, table_b, excluded = dataset_tables(records, subjects, ct_bmd, a.keep_suspect)
    for table, path in ((table_a, a.out_a), (table_b, a.out_b), (excluded, a.out_excluded)):
        write_text(path, table.to_csv(sep="\t", index=False, float_format="%.6g"))
    print(f"dataset A {len(table_a)} pairs, B {len(table_b)} pairs, {len(excluded)} exclusions")
    return 0


def folds_command(a) -> int:
    import pandas as pd

    from dataset.folds import fold_document, stratified_folds
    from dataset.tables import stratification_bmd

    table = pd.read_csv(a.table, sep="\t", dtype={"subject_id": str})
    if table.empty:
        raise InputError(a.table, "dataset B is empty: every radiograph was excluded")
    bmd, by = stratification_bmd(table)
    folds = stratified_folds(bmd.index, bmd.to_numpy(), a.k, a.seed)
    write_json(a.out, fold_document(folds, a.seed, by))
    print(json.dumps({"k": a.k, "sizes": [len(f) for f in folds], "stratified_by": by}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("project", help="DRRs at the registered poses and the normalised pair")
    p.add_argument("--subject", required=True)
    p.add_argument("--image", nargs="+", required=True, help="each radiograph's ID")
    p.add_argument("--pose", nargs="+", required=True, help="each radiograph's pose label")
    p.add_argument("--side", choices=SIDES, required=True)
    p.add_argument("--density", required=True, help="calibrated density (mg/cm³)")
    p.add_argument("--labels", required=True)
    p.add_argument("--pf-region", required=True)
    p.add_argument("--pf-mineral", required=True)
    p.add_argument("--landmarks", required=True)
    p.add_argument("--xray", nargs="+", required=True)
    p.add_argument("--geometry", nargs="+", required=True)
    p.add_argument("--registration", default=None,
                   help="a registration folder: IMAGE/pose_{pelvis,femur}.json")  # fmt: skip
    p.add_argument("--pose-pelvis", default=None, help="with one radiograph")
    p.add_argument("--pose-femur", default=None, help="with one radiograph")
    p.add_argument("--pair-shape", type=_shape, default=(512, 256), help="rows,cols")
    p.add_argument(
        "--out-dir", default=None, help="writes IMAGE/projection.npz, pair.npz, pair.json"
    )
    p.add_argument("--out-index", default=None, help="with --out-dir: its files' SHA-256")
    p.add_argument("--out-projection", default=None, help="with one radiograph")
    p.add_argument("--out-pair", default=None, help="with one radiograph")
    p.add_argument("--out-record", default=None, help="with one radiograph")
    p.add_argument("--device", default="cpu", help="where DRRs are rendered: cpu or cuda")
    p.set_defaults(run=project_command, subject_of=lambda a: a.subject)
    p = sub.add_parser("tables", help="dataset A and B tables and the exclusions")
    p.add_argument("--subjects", required=True, help="the subjects manifest (TSV)")
    p.add_argument("--records", nargs="+", required=True, help="every pair.json")
    p.add_argument("--ct-bmd", nargs="+", required=True, help="every ct_bmd.json")
    p.add_argument("--out-a", required=True)
    p.add_argument("--out-b", required=True)
    p.add_argument("--out-excluded", required=True)
    p.add_argument("--keep-suspect", action="store_true",
                   help="keep suspect registrations' pairs, flagged")  # fmt: skip
    p.set_defaults(run=tables_command, subject_of=lambda a: None)
    p = sub.add_parser("folds", help="patient-wise, BMD-stratified K folds")
    p.add_argument("--table", required=True, help="dataset_B.tsv")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--out", required=True)
    p.set_defaults(run=folds_command, subject_of=lambda a: None)
    a = ap.parse_args(argv)
    return run_cli(lambda: a.run(a), a.subject_of(a))


if __name__ == "__main__":
    sys.exit(main())

"""``python -m registration``: register a CT to a radiograph.

One rigid body (the issue's form)::

    python -m registration --ct CT --xray XRAY [--geometry geometry.json]
        [--init init_pose.json] --out pose.json [--mask LABELS --labels 1,2,5]
        [--centre X,Y,Z] [--device cpu|cuda]

registers the CT (as attenuation), or with ``--mask`` only the bones ``--labels`` of that
label image (as their excess over soft tissue), to the radiograph. Geometry comes from
the DICOM unless ``--geometry`` gives or overrides it; without ``--init`` the search
starts from the standard AP view at the centre of rotation (``--centre``, default the
body's centre) and a coarse in-plane grid; with it, from that pose as is.

The hip, pelvis then the target-side femur (the workflow's ``register`` rule)::

    python -m registration hip --subject S --ct CT --bone-labels LABELS
        --landmarks landmarks.json --xray XRAY [--geometry G] --side L
        [--init-pelvis P] [--init-femur P] --out-pelvis pose_pelvis.json
        --out-femur pose_femur.json

Each pose file holds ``camera_from_ct``, GC, the status (ok, suspect, failed) and its
reasons, evaluations and seconds. Bad input exits 2 with one line naming the subject,
the file and what is wrong.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import SimpleITK as sitk

from conventions.ct import read_ct, require_same_grid
from conventions.errors import InputError, run_cli
from conventions.landmarks import read_landmarks
from conventions.pose import Pose, read_pose, write_pose
from conventions.radiograph import Radiograph, read_radiograph
from registration.assess import Thresholds, body_points
from registration.bodies import (
    PELVIS_LABELS,
    body_volume,
    hip_bodies,
    label_centroid,
    missing_hip_bodies,
    whole_ct_volume,
)
from registration.hip import (
    PELVIS_SEARCH,
    BodyResult,
    film_mask,
    register_body,
    register_hip,
    standard_start,
)
from registration.initialise import in_plane_grid


def read_xray(path: str, geometry: str | None) -> Radiograph:
    """The radiograph with a complete geometry and some contrast, or an InputError."""
    r = read_radiograph(path, geometry)
    r.require_geometry()
    if not film_mask(r.pixels).any():  # also when every pixel has the same value
        raise InputError(
            path, "the radiograph has no contrast (every pixel at its darkest or brightest)"
        )
    return r


def labels_array(path: str, ct: sitk.Image) -> np.ndarray:
    image = read_ct(path)
    require_same_grid(image, ct, path, "the CT's")
    return sitk.GetArrayFromImage(image).astype(np.int32)


def search_device(device: str) -> str | None:
    """None for the CPU (NumPy and the numba kernels, no torch), else the torch device."""
    return None if device == "cpu" else device


def thresholds(a) -> Thresholds:
    return Thresholds(a.gc_failed, a.gc_ok, a.margin_ok, a.level_shift_mm, a.femur_below_head_mm)


def pose_document(res: BodyResult, how: str, image: str) -> Pose:
    extra = {"radiograph": image, "initialisation": how, **res.to_dict()}
    extra.pop("camera_from_ct")
    return Pose(res.result.camera_from_ct, extra)


def body_command(a) -> int:
    ct = read_ct(a.ct)
    if a.mask:
        values = [int(v) for v in a.labels.split(",")] if a.labels else list(PELVIS_LABELS)
        labels = labels_array(a.mask, ct)
        if not np.isin(labels, values).any():
            raise InputError(a.mask, f"no voxel carries the labels {values}")
        volume = body_volume(ct, labels, values, "body")
    else:
        volume = whole_ct_volume(ct)
    if a.centre:
        centre = np.array([float(v) for v in a.centre.split(",")])
    else:
        centre = body_points(volume)[-1]  # the centre of the body's box
    r = read_xray(a.xray, a.geometry)
    if a.init:
        start, grid, how = read_pose(a.init).camera_from_ct, None, f"from {a.init}"
    else:
        start = standard_start(centre[None], r.geometry)
        grid, how = in_plane_grid(), "standard AP and an in-plane grid"
    res = register_body(
        "body",
        volume,
        r.pixels,
        r.geometry,
        start,
        centre,
        PELVIS_SEARCH,
        grid,
        film_mask(r.pixels),
        thresholds(a),
        device=search_device(a.device),
    )
    write_pose(a.out, pose_document(res, how, a.xray))
    print(f"{res.name}: GC {res.result.gc:.3f}, {res.assessment['status']}, {res.seconds:.1f} s")
    return 0


def hip_command(a) -> int:
    ct = read_ct(a.ct)
    labels = labels_array(a.bone_labels, ct)
    missing = missing_hip_bodies(labels, a.side)
    if missing:
        raise InputError(
            a.bone_labels,
            "the CT does not contain the hip: no " + " and no ".join(missing) + " labelled",
        )
    lm = read_landmarks(a.landmarks)
    target = f"head_center_{a.side}"
    if target not in lm:
        raise InputError(a.landmarks, f"no {target}: the target femur's head centre")
    other = "head_center_" + ("R" if a.side == "L" else "L")
    # One femur only: the hip bones' centre of mass stands for the heads' midpoint.
    midline = (
        (lm[target] + lm[other]) / 2.0 if other in lm else label_centroid(labels, PELVIS_LABELS, ct)
    )
    r = read_xray(a.xray, a.geometry)
    init = {
        "pelvis": read_pose(a.init_pelvis).camera_from_ct if a.init_pelvis else None,
        "femur": read_pose(a.init_femur).camera_from_ct if a.init_femur else None,
    }
    bodies = hip_bodies(ct, labels, a.side)
    out = register_hip(
        bodies,
        r.pixels,
        r.geometry,
        lm[target],
        midline,
        a.side,
        initial_pelvis=init["pelvis"],
        initial_femur=init["femur"],
        thresholds=thresholds(a),
        device=search_device(a.device),
    )
    how = {
        "pelvis": f"from {a.init_pelvis}" if a.init_pelvis else "standard AP and an in-plane grid",
        "femur": f"from {a.init_femur}"
        if a.init_femur
        else "the pelvis's pose and a grid of in-plane turns about the head",
    }
    image = a.image or a.xray
    for body, path in (("pelvis", a.out_pelvis), ("femur", a.out_femur)):
        doc = pose_document(out[body], how[body], image)
        doc.extra["subject_id"] = a.subject
        write_pose(path, doc)
        res = out[body]
        print(
            f"subject {a.subject} {image} {body}: GC {res.result.gc:.3f}, "
            f"{res.assessment['status']} {res.assessment['reasons']}, {res.seconds:.1f} s"
        )
    return 0


def _status_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="where DRRs are rendered: cpu or cuda")
    t = Thresholds()
    p.add_argument("--gc-failed", type=float, default=t.gc_failed)
    p.add_argument("--gc-ok", type=float, default=t.gc_ok)
    p.add_argument("--margin-ok", type=float, default=t.margin_ok)
    p.add_argument("--level-shift-mm", type=float, default=t.level_shift_mm)
    p.add_argument("--femur-below-head-mm", type=float, default=t.femur_below_head_mm)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    fmt = argparse.RawDescriptionHelpFormatter
    if argv[:1] == ["hip"]:
        p = argparse.ArgumentParser(prog="python -m registration hip", formatter_class=fmt)
        p.add_argument("--subject", required=True)
        p.add_argument("--image", default=None, help="the radiograph's ID, for the record")
        p.add_argument("--ct", required=True, help="the CT in HU")
        p.add_argument("--bone-labels", required=True, help="bone labels on the CT grid")
        p.add_argument("--landmarks", required=True)
        p.add_argument("--xray", required=True)
        p.add_argument("--geometry", default=None)
        p.add_argument("--side", choices=("L", "R"), required=True)
        p.add_argument("--init-pelvis", default=None)
        p.add_argument("--init-femur", default=None)
        p.add_argument("--out-pelvis", required=True)
        p.add_argument("--out-femur", required=True)
        _status_options(p)
        a = p.parse_args(argv[1:])
        run, subject = hip_command, a.subject
    else:
        p = argparse.ArgumentParser(
            prog="python -m registration", description=__doc__, formatter_class=fmt
        )
        p.add_argument("--ct", required=True)
        p.add_argument("--xray", required=True)
        p.add_argument("--geometry", default=None)
        p.add_argument("--init", default=None, help="initial pose.json, used as is")
        p.add_argument("--out", required=True)
        p.add_argument("--mask", default=None, help="a label image on the CT's grid")
        p.add_argument("--labels", default=None, help="label values of the body, e.g. 1,2,5")
        p.add_argument("--centre", default=None, help="centre of rotation, LPS mm: x,y,z")
        p.add_argument("--subject", default=None)
        _status_options(p)
        a = p.parse_args(argv)
        run, subject = body_command, a.subject
    return run_cli(lambda: run(a), subject)


if __name__ == "__main__":
    sys.exit(main())

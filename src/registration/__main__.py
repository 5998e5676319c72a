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
        --landmarks landmarks.json --side L --image ID [ID ...] --xray XRAY [XRAY ...]
        [--geometry G [G ...]] [--init-pelvis ID=P ...] [--init-femur ID=P ...]
        --out-dir registration/

registers each of the subject's radiographs in turn in one process (the CT read and its
bodies built once) and writes ``registration/ID/pose_pelvis.json`` and ``pose_femur.json``;
with one radiograph, ``--out-pelvis`` and ``--out-femur`` name the files instead.

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
from conventions.files import write_folder_index
from conventions.landmarks import read_landmarks
from conventions.pose import HIP_BODIES, Pose, pose_path, read_pose, write_pose
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


def per_image_option(values: list[str] | None, images: list[str], option: str) -> dict:
    """``--init-pelvis``/``--init-femur`` values by image: ``IMAGE=PATH`` each (the
    longest image ID that prefixes the value, so IDs and paths may hold "="), or one plain
    PATH when there is one radiograph."""
    out = {}
    for value in values or []:
        ids = [i for i in images if value.startswith(f"{i}=")]
        if ids:
            image = max(ids, key=len)
            out[image] = value[len(image) + 1 :]
        elif len(images) == 1:
            out[images[0]] = value
        else:
            raise InputError(value, f"{option} takes IMAGE=PATH for one of {images}")
    return out


def hip_outputs(a, images: list[str]) -> dict[str, dict[str, str]]:
    """Each radiograph's pose files: in ``--out-dir`` (conventions.pose.pose_path), or, for
    one radiograph, ``--out-pelvis`` and ``--out-femur``."""
    if a.out_index and not a.out_dir:
        raise InputError(a.out_index, "--out-index indexes --out-dir: give both")
    if a.out_dir:
        if not a.image:
            raise InputError(
                a.out_dir, "--out-dir needs --image: the radiographs' IDs name its folders"
            )
        return {i: {b: str(pose_path(a.out_dir, i, b)) for b in HIP_BODIES} for i in images}
    if len(images) != 1 or not (a.out_pelvis and a.out_femur):
        raise InputError(
            a.xray[0], "give --out-dir, or --out-pelvis and --out-femur for one radiograph"
        )
    return {images[0]: {"pelvis": a.out_pelvis, "femur": a.out_femur}}


def hip_command(a) -> int:
    """Pelvis then femur for each of a subject's radiographs, in one process: the CT, its
    labels and the bodies built from them once for all (a subject's job, not a film's)."""
    images = a.image or ([a.xray[0]] if len(a.xray) == 1 else None)
    if images is None or len(images) != len(a.xray):
        raise InputError(a.xray[0], "--image must name each --xray, in order")
    geometries = a.geometry or [None] * len(images)
    if len(geometries) != len(images):
        raise InputError(a.xray[0], "--geometry must be given for each --xray, or for none")
    outputs = hip_outputs(a, images)
    init_paths = {
        body: per_image_option(getattr(a, f"init_{body}"), images, f"--init-{body}")
        for body in HIP_BODIES
    }
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
    # Every input read and checked before the first search: bad input fails in seconds.
    xrays = [read_xray(x, g) for x, g in zip(a.xray, geometries, strict=True)]
    init = {
        body: {i: read_pose(p).camera_from_ct for i, p in paths.items()}
        for body, paths in init_paths.items()
    }
    bodies = hip_bodies(ct, labels, a.side)
    for image, r in zip(images, xrays, strict=True):
        out = register_hip(
            bodies,
            r.pixels,
            r.geometry,
            lm[target],
            midline,
            a.side,
            initial_pelvis=init["pelvis"].get(image),
            initial_femur=init["femur"].get(image),
            thresholds=thresholds(a),
            device=search_device(a.device),
        )
        how = {
            "pelvis": "standard AP and an in-plane grid",
            "femur": "the pelvis's pose and a grid of in-plane turns about the head",
        }
        for body in HIP_BODIES:
            if image in init_paths[body]:
                how[body] = f"from {init_paths[body][image]}"
            doc = pose_document(out[body], how[body], image)
            doc.extra["subject_id"] = a.subject
            write_pose(outputs[image][body], doc)
            res = out[body]
            print(
                f"subject {a.subject} {image} {body}: GC {res.result.gc:.3f}, "
                f"{res.assessment['status']} {res.assessment['reasons']}, {res.seconds:.1f} s",
                flush=True,
            )
    if a.out_index:
        write_folder_index(a.out_dir, a.out_index)
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
        p.add_argument("--image", nargs="+", default=None, help="each radiograph's ID")
        p.add_argument("--ct", required=True, help="the CT in HU")
        p.add_argument("--bone-labels", required=True, help="bone labels on the CT grid")
        p.add_argument("--landmarks", required=True)
        p.add_argument("--xray", nargs="+", required=True, help="the subject's radiographs")
        p.add_argument("--geometry", nargs="+", default=None, help="one per --xray")
        p.add_argument("--side", choices=("L", "R"), required=True)
        p.add_argument("--init-pelvis", nargs="+", default=None, help="IMAGE=PATH each")
        p.add_argument("--init-femur", nargs="+", default=None, help="IMAGE=PATH each")
        p.add_argument("--out-dir", default=None, help="writes IMAGE/pose_{pelvis,femur}.json")
        p.add_argument("--out-index", default=None, help="with --out-dir: its files' SHA-256")
        p.add_argument("--out-pelvis", default=None, help="with one radiograph, no --out-dir")
        p.add_argument("--out-femur", default=None, help="with one radiograph, no --out-dir")
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

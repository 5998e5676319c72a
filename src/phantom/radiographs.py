"""Radiographs of a synthetic subject in several poses, with their true poses.

The pelvis (with the soft tissue) and each femur are separate rigid bodies. A view
places the pelvis in front of the detector (AP, with a random shift and tilt of the
whole body) and turns each femur about its own head centre relative to the pelvis
(flexion, abduction, internal rotation), as a patient standing, lying or spreading the
legs does. Line integrals add, so the radiograph is rendered as the sum of the bodies,
each at its own pose: the femur is cut out of the CT (its voxels refilled with muscle)
and carried as the difference it makes to the materials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial.transform import Rotation

from conventions.ct import voxel_to_physical_matrix
from conventions.geometry import ProjectionGeometry, read_json_object
from conventions.labels import BONE_LABELS, SIDE_SIGN
from conventions.pose import (
    HIP_BODIES,
    R_AP,
    Pose,
    pose_path,
    rigid_matrix,
    rotation_about,
    write_pose,
)
from drr.simulate import (
    XraySettings,
    expose,
    material_densities,
    material_volume,
    project_materials,
)
from drr.volume import Volume

POSE_LABELS = ("standing", "supine", "abduction", "adduction")

# Joint angles (degrees) by pose label: mean and SD of flexion, abduction, internal rotation.
JOINT_ANGLES_DEG = {
    "standing": {"flexion": (0.0, 3.0), "abduction": (2.0, 2.0), "internal_rotation": (5.0, 5.0)},
    "supine": {"flexion": (0.0, 2.0), "abduction": (0.0, 2.0), "internal_rotation": (12.0, 4.0)},
    "abduction": {"flexion": (5.0, 4.0), "abduction": (22.0, 4.0), "internal_rotation": (0.0, 5.0)},
    "adduction": {"flexion": (0.0, 3.0), "abduction": (-8.0, 3.0), "internal_rotation": (5.0, 5.0)},
}
# Standing tilts the pelvis forward relative to lying on the table (degrees).
PELVIC_TILT_DEG = {
    "standing": (6.0, 3.0),
    "supine": (0.0, 2.0),
    "abduction": (0.0, 2.0),
    "adduction": (4.0, 3.0),
}


@dataclass
class Detector:
    """A flat-panel detector for the synthetic radiographs: a clinical field, coarse pixels
    (render time goes with the pixel count)."""

    # A 35 × 43 cm cassette across the patient (width/height 1.23, the paper's clinical
    # images run 0.88 to 1.23): from above the iliac crest to well below the lesser
    # trochanter, so each hip's half keeps its whole proximal femur in the pair's crop.
    rows: int = 440
    cols: int = 540
    pixel_mm: float = 0.8


def femur_motion(head_center: np.ndarray, side: str, angles_deg: dict[str, float]) -> np.ndarray:
    """4×4 rigid motion (CT space) of one femur about its head centre.

    Signs follow the patient: flexion brings the knee forward (−y), abduction takes it
    away from the midline (lateral), internal rotation turns the front of the thigh
    toward the midline.
    """
    s = SIDE_SIGN[side]
    flex = Rotation.from_rotvec([-np.deg2rad(angles_deg["flexion"]), 0.0, 0.0])
    abd = Rotation.from_rotvec([0.0, -s * np.deg2rad(angles_deg["abduction"]), 0.0])
    rot = Rotation.from_rotvec([0.0, 0.0, -s * np.deg2rad(angles_deg["internal_rotation"])])
    return rotation_about(head_center, (flex * abd * rot).as_rotvec())


def draw_view(label: str, rng: np.random.Generator, isocenter: np.ndarray) -> dict:
    """Random pose, geometry and exposure of one radiograph with the given pose label."""
    angles = {
        side: {k: float(rng.normal(*ms)) for k, ms in JOINT_ANGLES_DEG[label].items()}
        for side in ("L", "R")
    }
    tilt = np.deg2rad(rng.normal(*PELVIC_TILT_DEG[label]))
    body_rotvec = [tilt, np.deg2rad(rng.normal(0, 2.0)), np.deg2rad(rng.normal(0, 3.0))]
    shift = rng.normal(0.0, [15.0, 0.0, 10.0])  # off-centre positioning, mm
    # Rounded to 0.1 mm, as DICOM stores them, so the file and the truth agree exactly.
    sod = round(float(rng.uniform(950.0, 1050.0)), 1)
    sdd = round(sod + float(rng.uniform(120.0, 200.0)), 1)  # patient, table, grid
    settings = XraySettings(
        kvp=float(rng.uniform(70.0, 85.0)),
        photons_per_mm2=float(rng.uniform(1.5e5, 5e5)),
        scatter_to_primary=float(rng.uniform(0.3, 0.6)),
        unsharp_amount=float(rng.uniform(1.0, 2.5)),
    )
    return {
        "label": label,
        "joint_angles_deg": angles,
        "pelvis_rotvec_rad": [float(v) for v in body_rotvec],
        "isocenter_lps_mm": (isocenter + shift).tolist(),
        "source_to_patient_mm": sod,
        "sdd_mm": sdd,
        "exposure": asdict(settings),
    }


def pelvis_pose(view: dict) -> np.ndarray:
    """camera_from_ct of the pelvis: AP at the view's isocenter, the body turned about it."""
    iso = np.asarray(view["isocenter_lps_mm"])
    body = rotation_about(iso, view["pelvis_rotvec_rad"])
    ap = rigid_matrix(R_AP, np.array([0.0, 0.0, view["source_to_patient_mm"]]) - R_AP @ iso)
    return ap @ body


def split_bodies(
    hu: np.ndarray, labels: np.ndarray, image: sitk.Image, muscle_hu: float
) -> tuple[Volume, dict[str, Volume]]:
    """The pelvis-and-soft-tissue body, and each femur as its material difference.

    A femur's region is its label grown by one voxel (to take its partial-volume rim with
    it) but never into another bone. In the body those voxels become muscle.
    """
    others = (labels > 0) & ~np.isin(
        labels, [BONE_LABELS["femur_left"], BONE_LABELS["femur_right"]]
    )
    body_hu = hu.copy()
    # Material densities are voxel-wise: decompose the CT and muscle once for both femurs.
    materials = np.stack(material_densities(hu))  # (2, z, y, x)
    muscle = np.stack(material_densities(np.float32(muscle_hu)))[:, None, None, None]
    affine = voxel_to_physical_matrix(image)
    femurs = {}
    for side, name in (("L", "femur_left"), ("R", "femur_right")):
        region = ndimage.binary_dilation(labels == BONE_LABELS[name]) & ~others
        body_hu[region] = muscle_hu
        delta = np.where(region[None], materials - muscle, np.float32(0))
        femurs[side] = Volume(delta, affine, ("water", "bone"))
    return material_volume(image, body_hu.astype(np.float32)), femurs


def render_view(
    body: Volume,
    femurs: dict[str, Volume],
    head_centers: dict[str, np.ndarray],
    view: dict,
    detector: Detector,
    rng: np.random.Generator,
) -> tuple[dict, ProjectionGeometry, dict[str, np.ndarray]]:
    """Render one view; returns the image stages, its geometry and the true poses."""
    geometry = ProjectionGeometry(
        sdd_mm=view["sdd_mm"],
        rows=detector.rows,
        cols=detector.cols,
        pixel_spacing_mm=(detector.pixel_mm, detector.pixel_mm),
        source_to_patient_mm=view["source_to_patient_mm"],
    )
    pelvis = pelvis_pose(view)
    poses = {"pelvis": pelvis}
    bodies = [(body, pelvis)]
    for side, name in (("L", "femur_left"), ("R", "femur_right")):
        poses[name] = pelvis @ femur_motion(
            head_centers[side], side, view["joint_angles_deg"][side]
        )
        bodies.append((femurs[side], poses[name]))
    areal = project_materials(bodies, geometry)
    image = expose(areal, geometry, XraySettings(**view["exposure"]), rng)
    return image, geometry, poses


def write_true_poses(view_json, side: str, out_pelvis=None, out_femur=None, out_dir=None) -> None:
    """A view's true poses (``truth/radiographs/<image>.json``) as registration's pose
    files, the pelvis and the ``side`` femur, status ok: the dataset built on them shows
    what the models learn when registration is perfect (``registration.poses: true``).
    With ``out_dir``, where registration writes them (``conventions.pose.pose_path``)."""
    view = read_json_object(view_json)
    if out_dir is not None:
        out_pelvis, out_femur = (pose_path(out_dir, view["image_id"], b) for b in HIP_BODIES)
    femur = "femur_left" if side == "L" else "femur_right"
    note = "the phantom's true pose (registration.poses: true), no search"
    for body, key, out in (("pelvis", "pelvis", out_pelvis), ("femur", femur, out_femur)):
        extra = {"radiograph": view["image_id"], "initialisation": note, "body": body,
                 "gc": None, "status": "ok", "reasons": []}  # fmt: skip
        write_pose(out, Pose(np.array(view["camera_from_ct"][key]), extra))

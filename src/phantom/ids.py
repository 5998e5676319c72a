"""Synthetic subject IDs, target sides and file names. Free of heavy imports: the
Snakefile reads it at parse time."""

import hashlib

# The CT of a synthetic subject, by the config's synthetic.ct_format.
CT_NAMES = {"nifti": "ct.nii.gz", "dicom": "ct_dicom"}


def subject_ids(n_subjects: int) -> list[str]:
    """IDs of a synthetic cohort of ``n_subjects``: S001, S002, …"""
    return [f"S{i + 1:03d}" for i in range(n_subjects)]


def target_side(seed: int, subject_id: str) -> str:
    """The side ('L' or 'R') whose proximal femur a synthetic subject's DXA measured: a
    fair coin per subject, known before the phantom is built (rules need it to plan)."""
    digest = hashlib.sha256(f"{seed}:{subject_id}".encode()).digest()
    return "L" if digest[0] % 2 == 0 else "R"

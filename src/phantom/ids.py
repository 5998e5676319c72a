"""Synthetic subject IDs and file names. Free of heavy imports: the Snakefile reads it
at parse time."""

# The CT of a synthetic subject, by the config's synthetic.ct_format.
CT_NAMES = {"nifti": "ct.nii.gz", "dicom": "ct_dicom"}


def subject_ids(n_subjects: int) -> list[str]:
    """IDs of a synthetic cohort of ``n_subjects``: S001, S002, …"""
    return [f"S{i + 1:03d}" for i in range(n_subjects)]

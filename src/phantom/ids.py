"""Synthetic subject IDs. Kept free of heavy imports: the Snakefile reads it at parse time."""


def subject_ids(n_subjects: int) -> list[str]:
    """IDs of a synthetic cohort of ``n_subjects``: S001, S002, …"""
    return [f"S{i + 1:03d}" for i in range(n_subjects)]

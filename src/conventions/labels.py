"""Bone label values of the project's label images (uint8, CT grid).

0 is background. TotalSegmentator's values for the same bones are recorded beside them
so masks it produced can be mapped onto ours.
"""

BONE_LABELS: dict[str, int] = {
    "hip_left": 1,
    "hip_right": 2,
    "femur_left": 3,
    "femur_right": 4,
    "sacrum": 5,
}

# TotalSegmentator v2 label values of the same bones (its "total" task).
TOTALSEGMENTATOR_LABELS: dict[str, int] = {
    "femur_left": 75,
    "femur_right": 76,
    "hip_left": 77,
    "hip_right": 78,
    "sacrum": 25,
}

SIDES = ("L", "R")
# The sign of each side along LPS x (+x is the patient's left).
SIDE_SIGN = {"L": 1.0, "R": -1.0}


def femur_label(side: str) -> int:
    """Label of the femur on ``side`` ('L' or 'R', the patient's side)."""
    return BONE_LABELS["femur_left" if _check_side(side) == "L" else "femur_right"]


def hip_label(side: str) -> int:
    """Label of the hip bone (os coxae) on ``side``."""
    return BONE_LABELS["hip_left" if _check_side(side) == "L" else "hip_right"]


def _check_side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"side must be 'L' or 'R', got {side!r}")
    return side

"""T-scores and the WHO's diagnostic categories from areal BMD (DXA-BMD, g/cm²): what
evaluation counts and what a deployed model reports, defined once.

T = (BMD − young-adult reference mean) / reference SD; the WHO's categories (Kanis
1994): normal at T ≥ −1, osteopenia (low bone mass) at −2.5 < T < −1, osteoporosis at
T ≤ −2.5. The reference is a setting, not a constant of nature: the default is NHANES
III's young adult women for the total hip (mean 0.942, SD 0.122 g/cm²; Looker et al.
1998), the one DXA scanners report the total hip against.
"""

from __future__ import annotations

import numpy as np

CATEGORIES = ("normal", "osteopenia", "osteoporosis")
NHANES_TOTAL_HIP_WOMEN = {"mean_g_cm2": 0.942, "sd_g_cm2": 0.122}


def t_score(bmd_g_cm2, mean_g_cm2: float, sd_g_cm2: float) -> np.ndarray:
    if sd_g_cm2 <= 0:
        raise ValueError(f"the reference SD must be positive, got {sd_g_cm2}")
    return (np.asarray(bmd_g_cm2, float) - mean_g_cm2) / sd_g_cm2


def who_category(t) -> np.ndarray:
    """The WHO category of each T-score."""
    t = np.asarray(t, float)
    return np.where(t <= -2.5, "osteoporosis", np.where(t < -1.0, "osteopenia", "normal"))

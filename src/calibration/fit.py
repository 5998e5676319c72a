"""The linear calibration HU = intercept + slope · ρ (ρ in mg/cm³ hydroxyapatite)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from calibration.rods import Rod


def fit_line(densities_mg_cm3, hu) -> dict[str, float | list[float]]:
    """Least-squares line through (density, HU) pairs with its R² and residuals (HU)."""
    x = np.asarray(densities_mg_cm3, dtype=float)
    y = np.asarray(hu, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {
        "slope_hu_per_mg_cm3": float(slope),
        "intercept_hu": float(intercept),
        "r_squared": 1.0 - float((residual**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
        "residual_hu": residual.tolist(),
    }


# The quality gate a phantom fit must pass before it becomes the subject's density scale.
# A clean B-MAS200 fit leaves each rod within a few HU of the line (the phantom's
# synthetic CTs: under 1 HU, R² above 0.9999); a rod cut off by the field of view or
# overlaid by metal or the table leaves tens of HU. HA slopes run about 0.6-1.6 HU per
# mg/cm³ across scanners and tube voltages, intercepts a few tens of HU about 0.
MIN_R_SQUARED = 0.99
MAX_ROD_RESIDUAL_HU = 15.0
SLOPE_RANGE_HU_PER_MG_CM3 = (0.4, 2.5)
INTERCEPT_RANGE_HU = (-200.0, 200.0)


def fit_problems(fit: dict) -> list[str]:
    """Why a phantom fit must not be used (empty when it passes the quality gate)."""
    problems = []
    if not fit["r_squared"] >= MIN_R_SQUARED:
        problems.append(f"R² {fit['r_squared']:.4f} < {MIN_R_SQUARED}")
    worst = max(range(len(fit["residual_hu"])), key=lambda i: abs(fit["residual_hu"][i]))
    if abs(fit["residual_hu"][worst]) > MAX_ROD_RESIDUAL_HU:
        problems.append(
            f"rod {worst + 1} of {len(fit['residual_hu'])} is {fit['residual_hu'][worst]:+.1f} HU "
            f"off the line (at most {MAX_ROD_RESIDUAL_HU:.0f})"
        )
    lo, hi = SLOPE_RANGE_HU_PER_MG_CM3
    if not lo <= fit["slope_hu_per_mg_cm3"] <= hi:
        problems.append(f"slope {fit['slope_hu_per_mg_cm3']:.3f} HU per mg/cm³ outside {lo}-{hi}")
    lo, hi = INTERCEPT_RANGE_HU
    if not lo <= fit["intercept_hu"] <= hi:
        problems.append(f"intercept {fit['intercept_hu']:.1f} HU outside {lo:.0f} to {hi:.0f}")
    return problems


def calibrate_with_rods(rods: list[Rod], densities_mg_cm3) -> dict:
    """Assign the known densities to the rods in HU order and fit the line."""
    densities = sorted(densities_mg_cm3)
    if len(rods) != len(densities):
        raise ValueError(f"{len(rods)} rods for {len(densities)} densities")
    for rod, rho in zip(rods, densities, strict=True):
        rod.density_mg_cm3 = float(rho)
    fit = fit_line(densities, [r.hu for r in rods])
    return {"method": "phantom", **fit, "rods": [r.to_dict() for r in rods]}


def calibrate_to_ha_density(ct: sitk.Image, slope: float, intercept: float) -> sitk.Image:
    """The CT as float32 mg/cm³ hydroxyapatite-equivalent: (HU − intercept) / slope."""
    density = (sitk.Cast(ct, sitk.sitkFloat32) - float(intercept)) / float(slope)
    return sitk.Cast(density, sitk.sitkFloat32)

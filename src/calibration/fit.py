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

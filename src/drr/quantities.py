"""What a DRR integrates: raw voxel values, linear attenuation, or areal density.

- ``raw``: ∫ value dl, in the volume's unit × mm.
- ``attenuation``: CT numbers (HU) become linear attenuation μ (1/mm) at an effective
  energy by the bilinear water-air / water-bone mixture model (as used for CT-based
  attenuation correction, Burger et al. 2002): below 0 HU a voxel is water diluted with
  air, μ = μ_w (1 + HU/1000); above 0 HU it is water mixed with cortical bone in the
  proportion HU / HU_bone, with HU_bone the CT number of cortical bone at the CT's own
  effective energy. ∫ μ dl is dimensionless (the negative log of the transmission).
- ``areal-density``: a calibrated volume in mg/cm³ becomes g/cm² (× 1e-4 per mm).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from conventions.units import G_CM2_PER_MG_CM3_MM, HU_AIR
from drr.attenuation import linear_attenuation_per_mm

Quantity = Literal["raw", "attenuation", "areal-density"]
QUANTITIES: tuple[str, ...] = ("raw", "attenuation", "areal-density")

# Effective energies: a diagnostic hip radiograph (70-80 kVp) and a CT scan (120 kVp).
RADIOGRAPH_EFFECTIVE_KEV = 50.0
CT_EFFECTIVE_KEV = 70.0


def hu_of_cortical_bone(ct_energy_kev: float = CT_EFFECTIVE_KEV) -> float:
    """CT number of cortical bone at the CT's effective energy."""
    mu_w = linear_attenuation_per_mm("water", ct_energy_kev)
    mu_b = linear_attenuation_per_mm("cortical_bone", ct_energy_kev)
    return float(1000.0 * (mu_b - mu_w) / mu_w)


def hu_to_linear_attenuation(
    hu: np.ndarray,
    energy_kev: float = RADIOGRAPH_EFFECTIVE_KEV,
    ct_energy_kev: float = CT_EFFECTIVE_KEV,
) -> np.ndarray:
    """μ (1/mm, float32) from HU by the bilinear mixture model; never negative."""
    hu = np.asarray(hu, dtype=np.float32)
    mu_w = np.float32(linear_attenuation_per_mm("water", energy_kev))
    mu_b = np.float32(linear_attenuation_per_mm("cortical_bone", energy_kev))
    bone_fraction = np.float32(1.0 / hu_of_cortical_bone(ct_energy_kev))
    soft = mu_w * (np.float32(1.0) + np.maximum(hu, np.float32(HU_AIR)) / np.float32(1000.0))
    hard = mu_w + hu * bone_fraction * (mu_b - mu_w)
    return np.where(hu <= 0, soft, hard).astype(np.float32)


def integrand(values: np.ndarray, quantity: Quantity, **kwargs) -> np.ndarray:
    """Voxel values converted so that ∫ dl gives ``quantity`` in its documented unit."""
    if quantity == "raw":
        return np.asarray(values, dtype=np.float32)
    if quantity == "attenuation":
        return hu_to_linear_attenuation(values, **kwargs)
    if quantity == "areal-density":
        return np.asarray(values, dtype=np.float32) * np.float32(G_CM2_PER_MG_CM3_MM)
    raise ValueError(f"unknown quantity {quantity!r}; choose one of {QUANTITIES}")

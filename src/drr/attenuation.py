"""X-ray mass attenuation coefficients μ/ρ (cm²/g) of the materials the DRR needs.

Values of Hubbell & Seltzer, NIST Standard Reference Database 126 (Table 4: "Water,
Liquid" and "Bone, Cortical (ICRU-44)", density 1.92 g/cm³; Table 3: aluminium, the
X-ray tube's filter), at the diagnostic
energies; between table energies μ/ρ is interpolated log-log, as the tables advise.
"""

from __future__ import annotations

import numpy as np

from conventions.units import MM_PER_CM

ENERGIES_KEV = np.array([15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])
MASS_ATTENUATION_CM2_G = {
    "water": np.array([1.673, 0.8096, 0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505]),
    "cortical_bone": np.array(
        [9.032, 4.001, 1.331, 0.6655, 0.4242, 0.3148, 0.2229, 0.1855, 0.1480]
    ),
    "aluminium": np.array([7.955, 3.441, 1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378]),
}
DENSITY_G_CM3 = {"water": 1.0, "cortical_bone": 1.92, "aluminium": 2.699}


def mass_attenuation(material: str, energy_kev) -> np.ndarray:
    """μ/ρ (cm²/g) of ``material`` at ``energy_kev`` (scalar or array), log-log interpolated."""
    if material not in MASS_ATTENUATION_CM2_G:
        raise ValueError(f"unknown material {material!r}; known: {sorted(MASS_ATTENUATION_CM2_G)}")
    e = np.asarray(energy_kev, dtype=np.float64)
    if np.any((e < ENERGIES_KEV[0]) | (e > ENERGIES_KEV[-1])):
        raise ValueError(f"energy outside the table ({ENERGIES_KEV[0]}-{ENERGIES_KEV[-1]} keV)")
    log_mu = np.interp(np.log(e), np.log(ENERGIES_KEV), np.log(MASS_ATTENUATION_CM2_G[material]))
    return np.exp(log_mu)


def linear_attenuation_per_mm(material: str, energy_kev, density_g_cm3=None) -> np.ndarray:
    """μ (1/mm) of ``material`` at its tabulated density or the one given."""
    rho = DENSITY_G_CM3[material] if density_g_cm3 is None else density_g_cm3
    return mass_attenuation(material, energy_kev) * rho / MM_PER_CM

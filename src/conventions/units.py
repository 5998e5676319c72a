"""Unit constants. Names carry their units; see docs/conventions.md."""

# A line integral of density in mg/cm³ over a path in mm is mg·mm/cm³;
# 1 mg·mm/cm³ = 1e-3 g × 0.1 cm / cm³ = 1e-4 g/cm².
G_CM2_PER_MG_CM3_MM = 1e-4

MM_PER_CM = 10.0

# The silhouette of a projected region (the DXA view's area, the PF region on a pair): a
# pixel is in it if its ray crosses the region at all (path length above this, mm).
MIN_PATH_MM = 1e-3

# Hounsfield scale anchors.
HU_AIR = -1000.0
HU_WATER = 0.0

# The B-MAS200 calibration phantom's rods, mg/cm³ hydroxyapatite.
BMAS200_ROD_DENSITIES_MG_CM3 = (0.0, 50.0, 100.0, 150.0, 200.0)


def line_integral_to_areal_density_g_cm2(value_mg_cm3_mm):
    """Convert a DRR of a density volume (mg/cm³ × mm) to areal density (g/cm²)."""
    return value_mg_cm3_mm * G_CM2_PER_MG_CM3_MM

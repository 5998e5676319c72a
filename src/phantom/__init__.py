"""The built-in synthetic cohort: a digital hip phantom with known ground truth.

Each subject is drawn from seeded random parameters: pelvis (hip bones, sacrum) and
both femurs as smooth implicit surfaces with a cortical shell over a textured
trabecular interior, soft tissue, a B-MAS200-like calibration phantom and the CT table.
The true density volume (mg/cm³ hydroxyapatite-equivalent), the bone labels, the
landmarks, the scanner's HU response and the BMD truth are all recorded beside the
simulated CT so every later stage can be checked against them.
"""

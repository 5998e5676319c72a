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

**Accuracy** of the default (``tests/test_segmentation.py``; Dice against the truth):
on the synthetic cohort (subject S004, seed 5) at 1.5 × 1.5 × 3 mm, hip bones 0.966 /
0.965 (left / right), femurs 0.989 / 0.987, sacrum 0.983, in about 2.5 s; at
1 × 1 × 2 mm (the workflow's cohort) 0.97-0.98, 0.99 and 0.99 in about 12 s; at
2.5 × 2.5 × 4 mm 0.89 / 0.90, 0.96 / 0.96 and 0.91 (thin iliac plates are a voxel or
two thick there, so a voxel of boundary is most of them). On the real TotalSegmentator
example CT (3 mm, HU taken as density), against TotalSegmentator's own labels: hip bones
0.92 / 0.89, right femur 0.91, left femur 0.83 (it holds screws, excluded as metal),
sacrum 0.37 (TotalSegmentator labels S1 apart and ours includes it).
"""

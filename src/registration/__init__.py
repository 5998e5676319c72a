"""2D-3D registration of a CT to a radiograph (issue 6, in progress).

- :mod:`registration.similarity`  gradient correlation (batched, masked, smoothed,
                                  patch-wise) and NCC, in torch
- :mod:`registration.rigid`       CMA-ES over one rigid body's 6-DoF pose, coarse to
                                  fine, and the error measures (mean projection
                                  distance, target registration error)

Still to come: automatic initialisation from the DICOM geometry and pose label, pelvis
then femur, failure detection, the CLI, overlays and the workflow rule.
"""

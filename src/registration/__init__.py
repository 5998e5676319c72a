"""2D-3D registration of a CT to a radiograph (docs/registration.md).

- :mod:`registration.bodies`      what a radiograph shows of each body: the bones'
                                  attenuation over soft tissue, as volumes to project
- :mod:`registration.rigid`       CMA-ES over one rigid body's 6-DoF pose, coarse to
                                  fine, and the error measures (mean projection
                                  distance, target registration error)
- :mod:`registration.initialise`  coarse grids of starts, rendered in batches
- :mod:`registration.assess`      the ok / suspect / failed status and its reasons
- :mod:`registration.hip`         the pelvis, then the target femur
- ``python -m registration``      one body, or ``hip`` for both

Its similarity, gradient correlation, is :mod:`conventions.similarity`: the models'
GC loss is the same measure, so it lives below both.
"""

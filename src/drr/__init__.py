"""Digitally reconstructed radiographs (DRRs): cone-beam projection of CT volumes.

- :mod:`drr.volume`     a volume (one or more channels) with its voxel-to-LPS affine
- :mod:`drr.rays`       the rays of a geometry and pose, in voxel index space, clipped
- :mod:`drr.projector`  ``project``: line integrals by trilinear ray marching or exact
                        voxel traversal (Siddon/Jacobs), batched over poses and channels
- :mod:`drr.quantities` what is integrated: raw values, HU → linear attenuation, areal density
- :mod:`drr.simulate`   radiograph simulation (polychromatic transmission, scatter, noise)

The projection geometry itself is :mod:`conventions.geometry` and :mod:`conventions.pose`.
"""

from drr.projector import project
from drr.volume import Volume

__all__ = ["Volume", "project"]

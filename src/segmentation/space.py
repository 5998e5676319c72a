"""Where the voxels of a box cut from a CT lie, in LPS millimetres.

Segmentation works on numpy arrays (z, y, x) cut to the bones' bounding box, but its
anatomical rules speak of the patient's left, posterior and superior. :class:`VoxelSpace`
carries the image's full direction matrix, so the rules hold for any orientation a CT
comes in (the TotalSegmentator example is stored right-to-left and anterior-to-posterior).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from conventions.ct import voxel_to_physical_matrix


@dataclass(frozen=True)
class VoxelSpace:
    """LPS positions of the numpy indices (z, y, x) of a box starting at ``offset``."""

    matrix: np.ndarray  # 4×4: image index (i, j, k) = (x, y, z) → LPS mm
    offset: np.ndarray  # numpy index (z, y, x) of the box's first voxel in the image
    spacing: np.ndarray  # voxel size in mm along the numpy axes (z, y, x)
    axial: int  # the numpy axis closest to LPS z: slices along it are axial

    @classmethod
    def of(cls, image: sitk.Image, offset=(0, 0, 0)) -> VoxelSpace:
        direction = np.array(image.GetDirection()).reshape(3, 3)  # columns: i, j, k in LPS
        return cls(
            matrix=voxel_to_physical_matrix(image),
            offset=np.asarray(offset, dtype=int),
            spacing=np.array(image.GetSpacing()[::-1], dtype=float),
            axial=2 - int(np.argmax(np.abs(direction[2]))),
        )

    def box(self, lo) -> VoxelSpace:
        """The space of a box cut from this one starting at numpy index ``lo``."""
        return VoxelSpace(self.matrix, self.offset + np.asarray(lo, int), self.spacing, self.axial)

    def points(self, index_zyx) -> np.ndarray:
        """LPS mm of numpy indices (..., 3) in (z, y, x) order."""
        ijk = (np.asarray(index_zyx, dtype=float) + self.offset)[..., ::-1]
        return ijk @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def vectors(self, v_zyx_mm) -> np.ndarray:
        """LPS components of vectors given in mm along the numpy axes (z, y, x)."""
        direction = self.matrix[:3, :3] / np.linalg.norm(self.matrix[:3, :3], axis=0)
        return np.asarray(v_zyx_mm, dtype=float)[..., ::-1] @ direction.T

    def index(self, point_mm) -> np.ndarray:
        """Fractional numpy index (z, y, x) in this box of an LPS point."""
        inverse = np.linalg.inv(self.matrix)
        ijk = inverse[:3, :3] @ np.asarray(point_mm, dtype=float) + inverse[:3, 3]
        return ijk[::-1] - self.offset

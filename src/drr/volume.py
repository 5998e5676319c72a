"""A volume to project: channels of float32 voxels and the affine that places them in LPS."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from conventions.ct import voxel_to_physical_matrix


@dataclass
class Volume:
    """Voxel data (C, D, H, W) = (channels, z, y, x) and continuous index (x, y, z) → LPS mm."""

    data: np.ndarray
    ct_from_index: np.ndarray
    channels: tuple[str, ...] = ("value",)

    def __post_init__(self) -> None:
        self.data = np.ascontiguousarray(self.data, dtype=np.float32)
        if self.data.ndim == 3:
            self.data = self.data[None]
        if self.data.ndim != 4:
            raise ValueError(f"volume data must be (C, D, H, W), got shape {self.data.shape}")
        if len(self.channels) != self.data.shape[0]:
            raise ValueError(
                f"{len(self.channels)} channel names for {self.data.shape[0]} channels"
            )
        self.ct_from_index = np.asarray(self.ct_from_index, dtype=np.float64)

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        d, h, w = self.data.shape[1:]
        return w, h, d

    @property
    def index_from_ct(self) -> np.ndarray:
        return np.linalg.inv(self.ct_from_index)

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel edge lengths along the index axes (x, y, z)."""
        return np.linalg.norm(self.ct_from_index[:3, :3], axis=0)

    @classmethod
    def from_image(
        cls,
        image: sitk.Image,
        masks: dict[str, np.ndarray] | None = None,
        value: np.ndarray | None = None,
    ) -> Volume:
        """A volume from a SimpleITK image; with ``masks``, one channel per mask.

        Each mask channel holds the voxel value inside the mask and zero outside, so a
        masked DRR integrates only that structure. ``value`` replaces the image's voxels
        (e.g. after converting HU to attenuation) while keeping its geometry.
        """
        v = sitk.GetArrayFromImage(image).astype(np.float32) if value is None else value
        if masks is None:
            return cls(v[None], voxel_to_physical_matrix(image), ("value",))
        data = np.stack([np.where(m, v, np.float32(0)) for m in masks.values()])
        return cls(data, voxel_to_physical_matrix(image), tuple(masks))

    def cropped_to_support(self, margin: int = 1) -> Volume:
        """The smallest sub-volume holding every non-zero voxel (plus ``margin``).

        Masked DRRs (one bone) then march only through that bone's box, not the whole CT.
        """
        nz = np.any(self.data != 0, axis=0)
        if not nz.any():
            return self
        box = support_box(nz, margin)
        return Volume(
            self.data[(slice(None), *box)], self.ct_from_index @ index_shift(box), self.channels
        )


def cropped_volume(
    channels: dict[str, np.ndarray], ct_from_index: np.ndarray, margin: int = 1
) -> Volume:
    """``Volume(np.stack(channels), ct_from_index).cropped_to_support(margin)`` without
    stacking the whole grids first: each channel (z, y, x) is cut to the channels' common
    support box, then stacked. A hip CT's channel is tens of MB; a femur's box a tenth."""
    arrays = [np.asarray(a, np.float32) for a in channels.values()]
    nonzero = np.zeros(arrays[0].shape, bool)
    for a in arrays:
        nonzero |= a != 0
    box = support_box(nonzero, margin)  # the whole grid when every channel is empty
    return Volume(
        np.stack([a[box] for a in arrays]), ct_from_index @ index_shift(box), tuple(channels)
    )


def support_box(nonzero: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Slices, one per axis ((z, y, x) of a volume; (rows, cols) of an image), of the
    smallest box holding every True element of ``nonzero``, grown by ``margin`` and
    clipped to the grid (the whole grid when none is)."""
    if not nonzero.any():
        return tuple(slice(0, n) for n in nonzero.shape)
    box = []
    for axis in range(nonzero.ndim):
        other = tuple(a for a in range(nonzero.ndim) if a != axis)
        idx = np.flatnonzero(nonzero.any(axis=other))
        box.append(
            slice(max(int(idx[0]) - margin, 0), min(int(idx[-1]) + margin + 1, nonzero.shape[axis]))
        )
    return tuple(box)


def index_shift(box: tuple[slice, slice, slice]) -> np.ndarray:
    """4×4 taking a box's voxel indices (x, y, z) to those of the grid it was cut from."""
    shift = np.eye(4)
    shift[:3, 3] = [box[2].start, box[1].start, box[0].start]
    return shift

"""The pair transform: a radiograph's hip side, as the network sees it (Gu et al. 2023,
Sec. 3.1).

The image is split at its vertical centre line into two halves, one per hip. In an AP
radiograph the patient's right hip is on the image's left (docs/conventions.md), so
the left half holds the right hip; the right half is mirrored so that every pair shows
a hip as a right hip does (lateral on the left). The half is then scaled to cover the
output (``fit the shorter edge``: the larger of the two scale factors) and cropped
about its centre to ``out_shape`` (rows × cols, 512 × 256 by default).

Every image of a pair (radiograph, DRRs, masks) goes through the same
:class:`PairTransform`; it is stored with the pair so a prediction can be mapped back
onto the original radiograph (:meth:`PairTransform.to_radiograph`).

Coordinates are pixel indices (row, col), pixel centres at integers, as
:func:`conventions.pose.project_ct_points` gives them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from conventions.labels import SIDES

OUT_SHAPE = (512, 256)


def half_of_side(side: str) -> str:
    """'left' or 'right': the image half holding the patient's ``side`` hip in an AP view
    (the patient's right on the image's left)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'L' or 'R', got {side!r}")
    return "left" if side == "R" else "right"


@dataclass(frozen=True)
class PairTransform:
    """Radiograph pixel (row, col) → pair pixel, an axis-aligned similarity.

    pair_col = scale · (±col + col_offset) + crop_col, pair_row = scale · row + crop_row,
    with the minus sign when ``mirrored``. Built by :func:`pair_transform`.
    """

    side: str  # the patient's side of the hip the pair shows
    mirrored: bool
    scale: float  # pair pixels per radiograph pixel
    col_offset: float  # radiograph col → col within the (mirrored) half
    crop_row: float
    crop_col: float
    in_shape: tuple[int, int]
    out_shape: tuple[int, int]

    @property
    def matrix(self) -> np.ndarray:
        """3×3 homogeneous map of (row, col, 1) from radiograph to pair pixels."""
        s, m = self.scale, -1.0 if self.mirrored else 1.0
        # In pixel-edge coordinates (index + 0.5) the map is s·(±x + offset) − crop; the
        # half-pixel shifts below turn it into a map of pixel indices.
        col = [0.0, s * m, s * (m * 0.5 + self.col_offset) - self.crop_col - 0.5]
        row = [s, 0.0, s * 0.5 - self.crop_row - 0.5]
        return np.array([row, col, [0.0, 0.0, 1.0]])

    def to_pair(self, points_rc: np.ndarray) -> np.ndarray:
        """Radiograph (row, col) points (..., 2) → pair pixels."""
        p = np.asarray(points_rc, float)
        return p @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def to_radiograph(self, points_rc: np.ndarray) -> np.ndarray:
        """Pair (row, col) points (..., 2) → radiograph pixels."""
        inv = np.linalg.inv(self.matrix)
        p = np.asarray(points_rc, float)
        return p @ inv[:2, :2].T + inv[:2, 2]

    def apply(self, image: np.ndarray, order: int = 1) -> np.ndarray:
        """Resample a radiograph-shaped image onto the pair's grid.

        The crop lies inside the image by construction; pixel centres within half a pixel
        of its border take the border pixel's value. Downscaling is preceded by a Gaussian
        of σ = (1/scale − 1)/2 pixels against aliasing; ``order`` 0 (nearest) keeps masks
        binary."""
        image = np.asarray(image, np.float32)
        if image.shape != tuple(self.in_shape):
            raise ValueError(f"image shape {image.shape} is not the radiograph's {self.in_shape}")
        if order > 0 and self.scale < 1.0:
            image = ndimage.gaussian_filter(image, (1.0 / self.scale - 1.0) / 2.0)
        inv = np.linalg.inv(self.matrix)
        return ndimage.affine_transform(
            image,
            inv[:2, :2],
            offset=inv[:2, 2],
            output_shape=tuple(self.out_shape),
            order=order,
            mode="nearest",
        ).astype(np.float32)

    def to_dict(self) -> dict:
        return {**asdict(self), "matrix_pair_from_radiograph": self.matrix.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> PairTransform:
        keys = cls.__dataclass_fields__
        kw = {k: d[k] for k in keys}
        kw["in_shape"], kw["out_shape"] = tuple(d["in_shape"]), tuple(d["out_shape"])
        return cls(**kw)


def pair_transform(
    in_shape: tuple[int, int], side: str, out_shape: tuple[int, int] = OUT_SHAPE
) -> PairTransform:
    """The transform taking a radiograph of ``in_shape`` to the pair of the ``side`` hip."""
    rows, cols = in_shape
    out_rows, out_cols = out_shape
    half = cols / 2.0  # the split may fall inside a pixel of an odd-width image
    mirrored = half_of_side(side) == "right"
    # Edge coordinate x ∈ [0, cols]: the left half is x ∈ [0, half]; the right half,
    # mirrored, is cols − x ∈ [0, half].
    col_offset = float(cols) if mirrored else 0.0
    scale = max(out_cols / half, out_rows / rows)
    crop_row = (scale * rows - out_rows) / 2.0
    crop_col = (scale * half - out_cols) / 2.0
    return PairTransform(
        side,
        mirrored,
        float(scale),
        col_offset,
        float(crop_row),
        float(crop_col),
        (int(rows), int(cols)),
        (int(out_rows), int(out_cols)),
    )

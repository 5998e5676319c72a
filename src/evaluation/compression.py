"""Compressed test radiographs for the robustness study of Gu et al. 2023, Fig. 8: the
pair's radiograph (512 × 256) at a lower bit depth (lossless PNG) or as an 8-bit baseline
JPEG at a given quality, written as the files a clinic would send, then read back as the
models' input.

A condition is named ``bits<n>`` (n = 1…16) or ``jpeg<q>`` (q = 1…100). Bit depth is
reduced by a linear window from the image's minimum to its maximum: the models
standardise every radiograph, so the window's offset and scale do not matter, only the
levels lost. The files are read back as any radiograph is
(``conventions.radiograph.read_radiograph``).
"""

from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

_CONDITION = re.compile(r"^(bits|jpeg)(\d+)$")

# The luminance quantisation table at quality 50 (JPEG standard, Annex K, row by row):
# what the IJG quality setting scales, and how a file's quality is read back.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
])  # fmt: skip


def parse_condition(name: str) -> tuple[str, int]:
    """``("bits", n)`` or ``("jpeg", q)``; ValueError names what is wrong."""
    m = _CONDITION.match(name)
    if not m:
        raise ValueError(f"compression condition {name!r} is neither bits<n> nor jpeg<q>")
    kind, level = m.group(1), int(m.group(2))
    if kind == "bits" and not 1 <= level <= 16:
        raise ValueError(f"compression condition {name!r}: bit depth must be 1…16")
    if kind == "jpeg" and not 1 <= level <= 100:
        raise ValueError(f"compression condition {name!r}: JPEG quality must be 1…100")
    return kind, level


def quantise(image: np.ndarray, bits: int) -> np.ndarray:
    """The image's [min, max] onto 0 … 2^bits − 1 (uint8 up to 8 bits, else uint16)."""
    x = np.asarray(image, np.float64)
    lo, hi = float(np.min(x)), float(np.max(x))
    levels = 2**bits - 1
    q = np.rint((x - lo) / (hi - lo) * levels) if hi > lo else np.zeros_like(x)
    return q.astype(np.uint8 if bits <= 8 else np.uint16)


def compress(image: np.ndarray, condition: str) -> tuple[bytes, str]:
    """(the file's bytes, its suffix) of ``image`` under ``condition``."""
    kind, level = parse_condition(condition)
    buffer = io.BytesIO()
    if kind == "bits":
        q = quantise(image, level)
        Image.fromarray(q).save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), ".png"
    # Baseline JPEG, 8 bits, 4:4:4 (one channel), the IJG quality scale.
    Image.fromarray(quantise(image, 8)).save(buffer, format="JPEG", quality=level)
    return buffer.getvalue(), ".jpg"


def jpeg_quality(path) -> int:
    """The IJG quality a JPEG file was written at, read back from its luminance
    quantisation table (the quality whose scaled table reproduces it exactly)."""
    with Image.open(path) as im:
        if im.format != "JPEG":
            raise ValueError(f"{path}: not a JPEG file ({im.format})")
        # sorted: Pillow has given the table in zig-zag and in row order across versions
        table = np.sort(np.asarray(im.quantization[0]))
    for q in range(1, 101):
        scale = 5000 // q if q < 50 else 200 - 2 * q
        expected = np.clip((_IJG_LUMINANCE * scale + 50) // 100, 1, 255)
        if np.array_equal(np.sort(expected), table):
            return q
    raise ValueError(f"{path}: its quantisation table is not an IJG quality's")

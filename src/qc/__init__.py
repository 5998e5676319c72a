"""Quality-control figures for the workflow's report.

- :mod:`qc.ct`  the per-subject CT montage: calibration phantom and line, bone labels,
                landmarks, the proximal-femur region and its DXA-view areal density
"""

# zlib level 3 for the per-subject montages: ~0.26 -> 0.12 s to encode a subject's
# registration montage for files ~10 % larger than at Pillow's default 6.
PNG_OPTIONS = {"compress_level": 3}

"""Quality-control figures for the workflow's report.

- :mod:`qc.ct`  the per-subject CT montage: calibration phantom and line, bone labels,
                landmarks, the proximal-femur region and its DXA-view areal density
"""

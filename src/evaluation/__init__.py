"""Evaluation of the BMD estimates against DXA and QCT (Gu et al. 2023, Sec. 4).

- :mod:`evaluation.metrics`  PCC, ICC(2,1) / ICC(3,1), MAE, SEE, RMS-CV, Bland-Altman
- :mod:`evaluation.summary`  the cohort's metrics per method and target, Table 2
- :mod:`evaluation.plots`    scatter and Bland-Altman figures for the report
"""

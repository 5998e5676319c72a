"""Evaluation of the BMD estimates against DXA and QCT (Gu et al. 2023, Sec. 4).

- :mod:`evaluation.metrics`  PCC, ICC(2,1) / ICC(3,1), MAE, SEE, RMS-CV, Bland-Altman
"""

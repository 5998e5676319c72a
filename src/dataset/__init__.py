"""The datasets the models learn from: pairs of a radiograph's hip side and its
decomposed images, the cohort's tables and patient-wise folds.

- :mod:`dataset.project`  bone DRR and PF-DRR (g/cm²) at the registered poses
- :mod:`dataset.tables`   datasets A and B, exclusions by registration status
- :mod:`dataset.folds`    K folds by subject, stratified by BMD

The pair transform (hip side, mirroring, resize and crop) is :mod:`conventions.pairs`:
the models map their predictions back over a radiograph with it.
"""

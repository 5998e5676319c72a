"""The paper's models: decomposition GAN, BMD from the PF-DRR, regression head, baseline.

- :mod:`models.networks`          encoder M_E (timm HRNet, branches fused at 1/4),
                                  generator (M_E + pix2pixHD decoder), multiscale
                                  conditional discriminators; GroupNorm throughout
- :mod:`models.losses`            LSGAN, L1, gradient correlation, feature matching
- :mod:`models.data`              pairs and regression inputs (PF ROI), augmentations
- :mod:`models.train`             a decomposition stage's training, checkpoints, resumption
- :mod:`models.bmd`               BMD from a PF-DRR: threshold tuned on the training fold, line
- :mod:`models.regression`        stage three's head (CoAtNet relative attention), the
                                  conventional baseline, the paper's sample weights
- :mod:`models.train_regression`  their training: frozen, then end to end
- :mod:`models.predict`           inference on a new radiograph
- :mod:`models.cross_validation`  a fold's BMD per method (Table 2's rows), the null
                                  model, Fig. 1's intensities, the failure checks
- ``python -m models``            thin commands over these
"""

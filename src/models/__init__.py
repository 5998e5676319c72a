"""The paper's models: decomposition GAN, BMD from the PF-DRR, regression head, baseline.

- :mod:`models.networks`  generator (timm HRNet encoder, pix2pixHD decoder, GroupNorm),
                          multiscale conditional discriminators
- :mod:`models.losses`    LSGAN, L1, gradient correlation, feature matching
- :mod:`models.bmd`       BMD from a PF-DRR: threshold tuned on the training fold, line
"""

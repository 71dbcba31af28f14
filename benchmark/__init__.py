"""ganbench: a reproducible GAN loss-comparison benchmark (Lucic et al. 2018, in PyTorch)."""

__version__ = "0.1.0"

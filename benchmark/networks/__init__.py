"""Networks by name (`GENERATORS`, `DISCRIMINATORS`, families in `FAMILIES`): `core.py` holds
the registries, the paper's InfoGAN networks and the MLP networks; `points.py` the 2-D
mixtures' networks; `welfert.py` Welfert et al. 2023's ring networks; `sndcgan.py` and
`resnet.py` the SNDCGAN and ResNet pairs of Kurach et al. 2019 (google/compare_gan). Each
registers its own when this package is imported.
"""

from benchmark.networks import points, resnet, sndcgan, welfert  # noqa: E402,F401  (their registrations)
from benchmark.networks.core import (
    BN_EPS,
    DISCRIMINATORS,
    FAMILIES,
    GENERATORS,
    LN_EPS,
    MLP_HIDDEN,
    AutoencoderDiscriminator,
    BatchNorm1d,
    BatchNorm2d,
    Discriminator,
    Generator,
    LayerNorm,
    MLPAutoencoderDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
    NetworkFactory,
    NetworkFamily,
    NetworkOptions,
    clip_parameters,
    count_parameters,
    init_weights,
)
from benchmark.networks.points import (
    POINT_HIDDEN,
    PointAutoencoderDiscriminator,
    PointDiscriminator,
    PointGenerator,
    Tanh,
)

__all__ = [
    "BN_EPS",
    "LN_EPS",
    "NetworkOptions",
    "NetworkFactory",
    "GENERATORS",
    "DISCRIMINATORS",
    "BatchNorm1d",
    "BatchNorm2d",
    "init_weights",
    "Generator",
    "LayerNorm",
    "Discriminator",
    "AutoencoderDiscriminator",
    "MLP_HIDDEN",
    "MLPGenerator",
    "MLPDiscriminator",
    "MLPAutoencoderDiscriminator",
    "POINT_HIDDEN",
    "Tanh",
    "PointGenerator",
    "PointDiscriminator",
    "PointAutoencoderDiscriminator",
    "NetworkFamily",
    "FAMILIES",
    "count_parameters",
    "clip_parameters",
]

"""The networks of Welfert, Otstot, Kurri and Sankar 2023's ring study ("Towards addressing
GAN training instabilities: dual-objective GANs with tunable parameters", ISIT), as their code
builds them (SankarLab/AlphaGan-Papers-Results, commit 5460544, experiment1.py `Generator`,
`Discriminator`, with the launch grid's `g_layers = d_layers = 4`, `g_width = 400`,
`d_width = 200`):

- G: z (2) -> 4 x [Linear(400), ReLU] -> Linear(2), 483,202 weights;
- D: x (2) -> 4 x [Linear(200), LeakyReLU(0.2)] -> Linear(1), 121,401 weights; their D ends
  in a sigmoid for the cross-entropy losses and without one for LSGAN: here it returns the
  last layer's output, which the losses take as the logit (mm, ns: the same objective as a
  sigmoid and BCELoss, computed stably) or as D's raw output (`ls_raw`).

PyTorch's default initialisation, no batch norm, as there. The paper's "4 fully-connected
layers" are the 4 hidden ones; each network has a fifth, its output layer.
"""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.networks.core import (
    DISCRIMINATORS,
    FAMILIES,
    GENERATORS,
    NetworkFamily,
    NetworkOptions,
    refuse_layer_norm,
)

G_WIDTH, D_WIDTH, HIDDEN_LAYERS = 400, 200, 4


def _stack(inputs: int, width: int, outputs: int, activation) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(HIDDEN_LAYERS):
        layers += [nn.Linear(inputs if k == 0 else width, width), activation()]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def _points_only(opts: NetworkOptions, name: str) -> int:
    if len(opts.shape) != 1:
        raise ValueError(f"{name} is made for points (D,), not samples of shape {opts.shape}")
    return opts.shape[0]


class WelfertGenerator(nn.Module):
    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        dim = _points_only(opts, "Welfert et al.'s generator")
        self.net = _stack(opts.z_dim, G_WIDTH, dim, nn.ReLU)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class WelfertDiscriminator(nn.Module):
    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        dim = _points_only(opts, "Welfert et al.'s discriminator")
        refuse_layer_norm(opts, "Welfert et al.'s discriminator")
        self.net = _stack(dim, D_WIDTH, 1, lambda: nn.LeakyReLU(0.2))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


GENERATORS.register("welfert", WelfertGenerator)
DISCRIMINATORS.register("welfert", WelfertDiscriminator)
FAMILIES.register("welfert", NetworkFamily("welfert", {"infogan": "welfert"}))

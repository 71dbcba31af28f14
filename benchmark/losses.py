"""GAN losses as pure functions of discriminator outputs, and their registry.

A loss never runs a network, samples noise or steps an optimiser: the trainer does
that, so every model is charged the same compute. `d` maps the discriminator's
outputs on a real and a generated batch to the D loss; `g` maps its outputs on a
generated batch to the G loss. For the DCGAN discriminator an output is a logit l
(D = sigmoid(l)); for BEGAN it is each sample's mean |AE(x) - x|.

Formulas follow the reference code (compare_gan v1), sp = softplus:
  mm:    L_D = E sp(-l(x)) + E sp(l(x^)),  L_G = -E sp(l(x^))
  ns:    same L_D,                          L_G = E sp(-l(x^))
  ls:    L_D = 1/2 (E (D(x)-1)^2 + E D(x^)^2), L_G = 1/2 E (D(x^)-1)^2, D = sigmoid(l)
  wgan:  L_D = -E l(x) + E l(x^),           L_G = -E l(x^)
  hinge: L_D = E relu(1-l(x)) + E relu(1+l(x^)), L_G = -E l(x^)   (Kurach et al. 2019)
  began: L_D = E r(x) - k E r(x^),          L_G = E r(x^);
         once per step, after the D update and any G update, k <- k + lambda_k (gamma E r(x)
         - E r(x^)) with r recomputed by the updated networks on that step's x and z
         (compare_gan v1 BEGAN.py, after_training_step_hook); k0 = 0, unclipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.nn.functional import relu, softplus

from benchmark.registry import Registry

LossState = Mapping[str, Tensor]


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D and G losses, plus optional state updated once per step.

    `after_step(state, real_out, fake_out, hparams)` returns the new state. It runs at the
    end of each step, after the D update and any G update, and sees D's outputs on that
    step's real batch and on G(z), recomputed by the updated networks (BEGAN's k update
    needs them), and the trial's hyperparameters (`hparams.gamma`, `hparams.lambda_k`, ...).
    """

    d: Callable[[Tensor, Tensor, LossState], Tensor]
    g: Callable[[Tensor, LossState], Tensor]
    initial_state: Callable[[torch.device], dict[str, Tensor]] = field(default=lambda device: {})
    after_step: Callable[[LossState, Tensor, Tensor, Any], dict[str, Tensor]] | None = None
    needs: tuple[str, ...] = ()  # hyperparameters that must be set, e.g. ("gamma", "lambda_k")


LOSSES: Registry[Loss] = Registry("loss")


def _saturating_d(real: Tensor, fake: Tensor, state: LossState) -> Tensor:
    return softplus(-real).mean() + softplus(fake).mean()


LOSSES.register("mm", Loss(d=_saturating_d, g=lambda fake, state: -softplus(fake).mean()))
LOSSES.register("ns", Loss(d=_saturating_d, g=lambda fake, state: softplus(-fake).mean()))
LOSSES.register(
    "ls",
    Loss(
        d=lambda real, fake, state: (
            0.5 * ((torch.sigmoid(real) - 1).square().mean() + torch.sigmoid(fake).square().mean())
        ),
        g=lambda fake, state: 0.5 * (torch.sigmoid(fake) - 1).square().mean(),
    ),
)
LOSSES.register(
    "wgan",
    Loss(d=lambda real, fake, state: fake.mean() - real.mean(), g=lambda fake, state: -fake.mean()),
)
LOSSES.register(
    "hinge",
    Loss(
        d=lambda real, fake, state: relu(1 - real).mean() + relu(1 + fake).mean(),
        g=lambda fake, state: -fake.mean(),
    ),
)


def _began_update(state: LossState, real: Tensor, fake: Tensor, hparams: Any) -> dict[str, Tensor]:
    # Detached: k is a control variable, not part of the graph.
    k = state["k"] + hparams.lambda_k * (hparams.gamma * real.mean() - fake.mean()).detach()
    return {"k": k}


LOSSES.register(
    "began",
    Loss(
        d=lambda real, fake, state: real.mean() - state["k"] * fake.mean(),
        g=lambda fake, state: fake.mean(),
        initial_state=lambda device: {"k": torch.zeros((), device=device)},
        after_step=_began_update,
        needs=("gamma", "lambda_k"),
    ),
)

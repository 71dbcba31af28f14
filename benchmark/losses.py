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
  ls_raw: the same on D's raw output, D = l (Welfert et al. 2023's LSGAN)
  wgan:  L_D = -E l(x) + E l(x^),           L_G = -E l(x^)
  hinge: L_D = E relu(1-l(x)) + E relu(1+l(x^)), L_G = -E l(x^)   (Kurach et al. 2019)
  began: L_D = E r(x) - k E r(x^),          L_G = E r(x^);
         once per step, after the D update and any G update, k <- k + lambda_k (gamma E r(x)
         - E r(x^)) with r recomputed by the updated networks on that step's x and z
         (compare_gan v1 BEGAN.py, after_training_step_hook); k0 = 0, unclipped.

Beyond the paper, the relativistic losses (Jolicoeur-Martineau 2018, "The relativistic
discriminator: a key element missing from standard GAN", RSGAN and RaSGAN; checked against
the author's code, AlexiaJM/RelativisticGAN code/GAN_losses_iter.py, loss_D 5 and 6). Their
G loss also needs D's outputs on the step's real batch x:
  rsgan: L_D = E sp(-(l(x) - l(x^))),  L_G = E sp(-(l(x^) - l(x)))   pairs (x_i, x^_i);
         the relativistic pairing loss RpGAN of Huang et al. 2024 ("The GAN is dead; long
         live the GAN!", f = softplus; their code's R3GAN/Trainer.py) is this same loss
  ragan: L_D = 1/2 [E sp(-(l(x) - E l(x^))) + E sp(l(x^) - E l(x))],
         L_G = 1/2 [E sp(-(l(x^) - E l(x))) + E sp(l(x) - E l(x^))]
         (the halves are the author's code; the paper writes the sum: Adam is invariant to
         the loss scale up to its eps, a penalty's lambda is not)

Label smoothing and flipping (trial options) need a loss with real/fake targets: mm, ns and
ls declare `d_targets`, the D loss with per-sample targets t (1 real, 0 fake by default);
the trainer draws the targets (`discriminator_targets`). Other losses refuse the options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn.functional import relu, softplus

from benchmark.penalties import Uniform
from benchmark.registry import Registry

LossState = Mapping[str, Tensor]


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D and G losses, plus optional state updated once per step.

    `d(real_out, fake_out, state)` and `g(fake_out, state)`; a loss with `g_needs_real` gets
    `g(fake_out, state, real_out)`, D's outputs on the step's real batch x (the relativistic
    losses compare the two).

    `after_step(state, real_out, fake_out, hparams)` returns the new state. It runs at the
    end of each step, after the D update and any G update, and sees D's outputs on that
    step's real batch and on G(z), recomputed by the updated networks (BEGAN's k update
    needs them), and the trial's hyperparameters named in `needs` (`hparams["gamma"]`, ...).

    The trainer applies each of them to each member of a population (torch.func.vmap over the
    members), so a loss is written for one batch: outputs (B,), state and hparams scalars.

    `d_targets(real_out, fake_out, real_target, fake_target, state)` is the D loss with
    per-sample targets; with targets 1 and 0 it equals `d`. A loss that has one accepts the
    label smoothing and flipping options.
    """

    d: Callable[[Tensor, Tensor, LossState], Tensor]
    g: Callable[..., Tensor]
    initial_state: Callable[[torch.device], dict[str, Tensor]] = field(default=lambda device: {})
    after_step: Callable[[LossState, Tensor, Tensor, LossState], dict[str, Tensor]] | None = None
    needs: tuple[str, ...] = ()  # hyperparameters that must be set, e.g. ("gamma", "lambda_k")
    g_needs_real: bool = False
    d_targets: Callable[[Tensor, Tensor, Tensor, Tensor, LossState], Tensor] | None = None


LOSSES: Registry[Loss] = Registry("loss")


def discriminator_targets(
    real: Tensor, fake: Tensor, smoothing: float, flip: float, uniform: Uniform
) -> tuple[Tensor, Tensor]:
    """D's targets for a population's real and generated outputs, both (M, B): 1 - smoothing
    and 0, with a share `flip` of them swapped (each target independently with probability
    `flip`; real ones drawn first). One-sided smoothing (Salimans et al. 2016) smooths the
    positive target wherever it lands, so a flipped fake gets 1 - smoothing. `uniform(shape,
    dtype)` draws (M, *shape), each member from its own generator: a loss never samples noise
    itself."""
    positive = 1.0 - smoothing
    real_target = torch.full_like(real, positive)
    fake_target = torch.zeros_like(fake)
    if flip > 0:
        flip_real = uniform(real.shape[1:], torch.float32) < flip
        flip_fake = uniform(fake.shape[1:], torch.float32) < flip
        real_target = torch.where(flip_real, 0.0, real_target)
        fake_target = torch.where(flip_fake, positive, fake_target)
    return real_target, fake_target


def _cross_entropy(logit: Tensor, target: Tensor) -> Tensor:
    """E[-t log sigmoid(l) - (1 - t) log(1 - sigmoid(l))] = E[t sp(-l) + (1 - t) sp(l)]."""
    return (target * softplus(-logit) + (1 - target) * softplus(logit)).mean()


def _saturating_d(real: Tensor, fake: Tensor, state: LossState) -> Tensor:
    return softplus(-real).mean() + softplus(fake).mean()


def _saturating_d_targets(
    real: Tensor, fake: Tensor, real_target: Tensor, fake_target: Tensor, state: LossState
) -> Tensor:
    return _cross_entropy(real, real_target) + _cross_entropy(fake, fake_target)


def _least_squares_d_targets(
    real: Tensor, fake: Tensor, real_target: Tensor, fake_target: Tensor, state: LossState
) -> Tensor:
    # Mao et al. 2017's targets b (real) and a (fake), here per sample.
    real_error = (torch.sigmoid(real) - real_target).square().mean()
    return 0.5 * (real_error + (torch.sigmoid(fake) - fake_target).square().mean())


LOSSES.register(
    "mm",
    Loss(
        d=_saturating_d,
        g=lambda fake, state: -softplus(fake).mean(),
        d_targets=_saturating_d_targets,
    ),
)
LOSSES.register(
    "ns",
    Loss(
        d=_saturating_d,
        g=lambda fake, state: softplus(-fake).mean(),
        d_targets=_saturating_d_targets,
    ),
)
LOSSES.register(
    "ls",
    Loss(
        d=lambda real, fake, state: (
            0.5 * ((torch.sigmoid(real) - 1).square().mean() + torch.sigmoid(fake).square().mean())
        ),
        g=lambda fake, state: 0.5 * (torch.sigmoid(fake) - 1).square().mean(),
        d_targets=_least_squares_d_targets,
    ),
)
# LSGAN on D's raw output, the 0-1 coding (Mao et al. 2017's a = 0, b = 1, c = 1), as Welfert
# et al. 2023's code has it (their D drops its sigmoid for LSGAN: experiment1.py `LSLoss`).
LOSSES.register(
    "ls_raw",
    Loss(
        d=lambda real, fake, state: 0.5 * ((real - 1).square().mean() + fake.square().mean()),
        g=lambda fake, state: 0.5 * (fake - 1).square().mean(),
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


def _began_update(
    state: LossState, real: Tensor, fake: Tensor, hparams: LossState
) -> dict[str, Tensor]:
    # Detached: k is a control variable, not part of the graph.
    k = state["k"] + hparams["lambda_k"] * (hparams["gamma"] * real.mean() - fake.mean()).detach()
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


def _relativistic_pairs(first: Tensor, second: Tensor) -> Tensor:
    """E sp(-(l(a_i) - l(b_i))): how often D ranks a_i above its partner b_i, as a loss."""
    return softplus(second - first).mean()


def _relativistic_average(first: Tensor, second: Tensor) -> Tensor:
    """1/2 [E sp(-(l(a) - E l(b))) + E sp(l(b) - E l(a))]: a judged against b's mean."""
    return 0.5 * (softplus(second.mean() - first).mean() + softplus(second - first.mean()).mean())


LOSSES.register(
    "rsgan",
    Loss(
        d=lambda real, fake, state: _relativistic_pairs(real, fake),
        g=lambda fake, state, real: _relativistic_pairs(fake, real),
        g_needs_real=True,
    ),
)
LOSSES.register(
    "ragan",
    Loss(
        d=lambda real, fake, state: _relativistic_average(real, fake),
        g=lambda fake, state, real: _relativistic_average(fake, real),
        g_needs_real=True,
    ),
)

"""Discriminator penalties (the paper's GP and DRAGAN, R1/R2, and L2 on D's weights), and their
registry.

A penalty returns the unscaled term; the trainer adds `lam * penalty` to the D loss.
Penalties work on a population's stacked batches (benchmark/training/stacked.py): `real` and `fake`
are (M, B, ...), `d` maps points (M, B, ...) to D's outputs (M, B), `uniform(shape, dtype)`
draws U[0, 1) of shape (M, *shape), member i's slice from member i's own generator; the
result is (M,), one term per member. Since a member's points reach only its own outputs, the
gradient of the summed outputs with respect to all points is each member's own gradient.

GP and DRAGAN use s = sqrt(1e-4 + ||grad||^2) as the reference code does, which keeps the
gradient of s finite where the gradient norm is zero.
  gp:     x~ = x + a (x^ - x), a ~ U[0,1] per sample; E (s - 1)^2 for the gradient of the logit.
  dragan: x_p = x + 0.5 std(x) U[0,1) (one scalar std per batch, ddof 0; uniform noise per
          pixel),
          x~ = x + a (x_p - x); E (s - 1)^2 for the gradient of D = sigmoid(logit).
Beyond the paper, the zero-centred penalties on the logit l, written as the papers write them,
1/2 E ||grad||^2 per term, on this project's images in [0, 1]:
  r1:     1/2 E ||grad_x l(x)||^2 on the real batch (Mescheder et al. 2018, "Which training
          methods for GANs do actually converge?", R1 = gamma/2 E ||grad D||^2).
  r1r2:   1/2 E ||grad_x l(x)||^2 + 1/2 E ||grad_x l(x^)||^2, R1 on the real and R2 on the
          generated batch (Huang et al. 2024, "The GAN is dead; long live the GAN!").
Their codes feed D images in [-1, 1]; the same function seen on [0, 1] images has twice the
input gradient, four times its square, so the papers' gamma is not our lam: `lam_from_source`
converts (GAN_stability's reg_param 10 is lam 5 here, R3GAN's gamma 0.05 is lam 0.0125).
A penalty on D's weights rather than its gradient (Kurach et al. 2019, compare_gan):
  l2:     the mean over D's kernels of 1/2 ||W||^2 (`l2_penalty`). It reads D's weights from
          the stacked network behind `d` (`stacked_kernels`), draws nothing and ignores the
          batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from benchmark.registry import Registry

Outputs = Callable[[Tensor], Tensor]  # points (M, B, ...) -> D's outputs (M, B)
Uniform = Callable[[Sequence[int], torch.dtype], Tensor]  # shape -> U[0,1) (M, *shape)
Penalty = Callable[[Outputs, Tensor, Tensor, Uniform], Tensor]
PENALTIES: Registry[Penalty] = Registry("penalty")


def _per_sample_alpha(x: Tensor, uniform: Uniform) -> Tensor:
    """a ~ U[0, 1), one per sample, shaped (M, B, 1, ...) to scale whole samples."""
    return uniform((x.shape[1],) + (1,) * (x.dim() - 2), x.dtype)


def _squared_norms(grad: Tensor) -> Tensor:
    """||g||^2 of each sample of a stacked (M, B, ...) gradient: (M, B)."""
    return grad.flatten(2).square().sum(dim=2)


def _gradient(output_of: Outputs, points: Tensor) -> Tensor:
    """d output / d point at every point, differentiable for the D update."""
    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(output_of(points).sum(), points, create_graph=True)
    return grad


def gradient_norm_penalty(output_of: Outputs, points: Tensor) -> Tensor:
    """E (sqrt(1e-4 + ||d output / d point||^2) - 1)^2 per member, (M,)."""
    slopes = torch.sqrt(1e-4 + _squared_norms(_gradient(output_of, points)))
    return (slopes - 1).square().mean(dim=1)


@PENALTIES.register("none")
def no_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    return torch.zeros(real.shape[0], device=real.device)


@PENALTIES.register("gp")
def gradient_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    alpha = _per_sample_alpha(real, uniform)
    return gradient_norm_penalty(d, real + alpha * (fake.detach() - real))


def dragan_points(real: Tensor, uniform: Uniform) -> Tensor:
    """Points between each real sample and its noisy copy x + 0.5 std(x) U[0,1)."""
    noise = uniform(real.shape[1:], real.dtype)
    # numpy's std in the reference (DRAGAN.get_perturbed_batch): the biased one, ddof 0,
    # over the member's whole batch.
    std = real.flatten(1).std(dim=1, correction=0).view(-1, *([1] * (real.dim() - 1)))
    perturbed = real + 0.5 * std * noise
    alpha = _per_sample_alpha(real, uniform)
    return real + alpha * (perturbed - real)


@PENALTIES.register("dragan")
def dragan_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    return gradient_norm_penalty(lambda x: torch.sigmoid(d(x)), dragan_points(real, uniform))


def squared_gradient_norm(d: Outputs, points: Tensor) -> Tensor:
    """E ||d l / d x||^2 at the points per member, (M,) (no smoothing: the square has a
    finite gradient at zero)."""
    return _squared_norms(_gradient(d, points)).mean(dim=1)


@PENALTIES.register("r1")
def r1_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    return 0.5 * squared_gradient_norm(d, real)


@PENALTIES.register("r1r2")
def r1_r2_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    return 0.5 * (squared_gradient_norm(d, real) + squared_gradient_norm(d, fake))


# What compare_gan's `l2_penalty` covers: every variable named "kernel", i.e. the weights of
# its linear, conv2d and deconv2d layers (compare_gan/architectures/arch_ops.py:543-548,
# :563-567, :583-587) and of the projection embedding (resnet_biggan.py:411-418), never a
# bias or a batch-norm scale or shift (its first study's InfoGAN D: 4 kernels, the two convs
# and two FCs, compare_gan/src/gans/consts.py:56 at commit 51029dc). Here: the weights of
# these layers, taken before any spectral norm (the variable, as there: arch_ops.py:547-548
# normalise the kernel after it is read).
KERNEL_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)


def kernels(module: nn.Module) -> list[nn.Parameter]:
    """The weight matrices and kernels of `module`'s layers (the unnormalised ones where
    spectral norm parametrises a weight), in module order."""
    found = []
    for layer in module.modules():
        if isinstance(layer, KERNEL_LAYERS):
            if parametrize.is_parametrized(layer, "weight"):
                found.append(layer.parametrizations.weight.original)
            else:
                found.append(layer.weight)
    return found


def stacked_kernels(d: Outputs) -> list[Tensor]:
    """The members' kernels (`kernels`) of the stacked network (benchmark/training/stacked.py)
    that `d` calls, each as an (M, n) view of its flat weights, through which the D update's
    gradient flows. `d` is what the trainer hands a penalty (benchmark/training/step.py,
    `_d_step`): the stacked D itself, or for a conditional trial
    `partial(_with_labels, D, labels)`."""
    network = d.args[0] if isinstance(d, partial) and d.args else d
    if not (hasattr(network, "prototype") and hasattr(network, "blocks")):
        raise TypeError(
            "a penalty on D's weights needs the trainer's stacked discriminator "
            f"(or a partial of it), got {type(d).__name__}"
        )
    covered = {id(p) for p in kernels(network.prototype)}
    named = dict(network.prototype.named_parameters())
    blocks = network.blocks(network.flat)
    return [b for n, b in zip(network.names, blocks, strict=True) if id(named[n]) in covered]


@PENALTIES.register("l2")
def l2_penalty(d: Outputs, real: Tensor, fake: Tensor, uniform: Uniform) -> Tensor:
    """compare_gan's L2 penalty, per member (M,): the mean over D's kernels of
    tf.nn.l2_loss(W) = 1/2 sum W^2 (compare_gan/gans/penalty_lib.py:85-102, commit 19922d3;
    as in its first study, compare_gan/src/gans/gans_with_penalty.py:192-209, commit 51029dc),
    added to D's loss as lambda * penalty (compare_gan/gans/modular_gan.py:667-670), as every
    penalty here is."""
    weights = stacked_kernels(d)
    if not weights:
        raise ValueError("the l2 penalty found no weight layer in D")
    halves = [0.5 * w.square().sum(dim=1) for w in weights]
    return torch.stack(halves).mean(dim=0)


def lam_from_source(gamma: float, scale: float) -> float:
    """Our `lam` for a zero-centred penalty that a source adds as `scale * gamma * E||grad||^2`
    on images in [-1, 1]: LMescheder/GAN_stability gan_training/train.py:53 adds
    reg_param E||grad||^2 (scale 1), brownvc/R3GAN R3GAN/Trainer.py:41 (gamma / 2)(R1 + R2)
    (scale 1/2). Ours adds lam / 2 E||grad||^2 on x01 = (x + 1) / 2, where the same D has
    gradient 2 grad: lam / 2 * 4 = 2 lam per unit of the source's E||grad||^2, so
    lam = scale * gamma / 2."""
    return scale * gamma / 2

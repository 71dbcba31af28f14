"""Kurach et al. 2019's networks (benchmark/networks/sndcgan.py, resnet.py) against
google/compare_gan's code (compare_gan/architectures/, commit 19922d3): weight counts worked
out by hand from the reference's layer shapes, the sizes each builds, "SAME" padding and
`unpool` as TensorFlow and the reference compute them, and populations."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.networks import (
    DISCRIMINATORS,
    FAMILIES,
    GENERATORS,
    NetworkOptions,
    count_parameters,
)
from benchmark.networks.resnet import average_pool, unpool
from benchmark.networks.sndcgan import same_conv, same_deconv
from benchmark.training.stacked import StackedNetwork
from benchmark.training.stacked_layers import can_stack

Z = 128  # options.z_dim = 128 in the study's configurations (example_configs/*.gin)


# The reference's weights per layer (compare_gan/architectures/arch_ops.py):
def linear(n_in: int, n_out: int) -> int:  # kernel [in, out] + bias [out], :543-555
    return n_in * n_out + n_out


def conv(k: int, c_in: int, c_out: int) -> int:  # kernel [k, k, in, out] + bias, :563-571
    return k * k * c_in * c_out + c_out  # deconv2d's kernel [k, k, out, in] too, :583-591


def bn(c: int) -> int:  # gamma and beta [c], :353-366
    return 2 * c


def block(c_in: int, c_out: int, norm: bool = True) -> int:
    """resnet_ops.py:156-178: conv_shortcut (3x3) and conv1 in -> out, conv2 out -> out, bn1
    on the input's channels, bn2 on the output's (when a batch_norm_fn is set)."""
    return 2 * conv(3, c_in, c_out) + conv(3, c_out, c_out) + norm * (bn(c_in) + bn(c_out))


def sndcgan_g(c: int, h8: int, w8: int, z: int = Z) -> int:  # sndcgan.py:59-73
    return (
        linear(z, h8 * w8 * 512) + bn(h8 * w8 * 512)  # g_fc1, g_bn1
        + conv(4, 512, 256) + bn(256)  # g_dc2, g_bn2
        + conv(4, 256, 128) + bn(128)  # g_dc3, g_bn3
        + conv(4, 128, 64) + bn(64)  # g_dc4, g_bn4
        + conv(3, 64, c)  # g_dc5
    )  # fmt: skip


def sndcgan_d(c: int, h8: int, w8: int) -> int:  # sndcgan.py:109-125, no batch norm
    return (
        conv(3, c, 64) + conv(4, 64, 128) + conv(3, 128, 128) + conv(4, 128, 256)
        + conv(3, 256, 256) + conv(4, 256, 512) + conv(3, 512, 512)
        + linear(h8 * w8 * 512, 1)  # d_fc1 on the flattened (h/8, w/8, 512) map
    )  # fmt: skip


def cifar_g(c: int, z: int = Z) -> int:  # resnet_cifar.py:90-111
    return linear(z, 4 * 4 * 256) + 3 * block(256, 256) + bn(256) + conv(3, 256, c)


def cifar_d(c: int, norm: bool) -> int:  # resnet_cifar.py:145-159
    return block(c, 128, norm) + 3 * block(128, 128, norm) + linear(128, 1)


def resnet5_g(c: int, z: int = Z) -> int:  # resnet5.py:39, 61-91: ch 64 x (8, 8, 4, 4, 2, 1)
    channels = [64 * k for k in (8, 8, 4, 4, 2, 1)]
    blocks = sum(block(a, b) for a, b in zip(channels[:-1], channels[1:], strict=True))
    return linear(z, 64 * 8 * 4 * 4) + blocks + bn(64) + conv(3, 64, c)


def resnet5_d(c: int, norm: bool) -> int:  # resnet5.py:99, 125-143: ch 64 x (1, 2, 4, 4, 8, 8)
    channels = [64 * k for k in (1, 2, 4, 4, 8, 8)]
    blocks = sum(block(a, b, norm) for a, b in zip(channels[:-1], channels[1:], strict=True))
    return block(c, 64, norm) + blocks + linear(512, 1)


# (name, shape, G's weights, D's weights with d_bn, without): the hand count, then its value
COUNTS = [
    ("sndcgan", (1, 28, 28), sndcgan_g(1, 4, 4), sndcgan_d(1, 4, 4), None),  # 28/8 -> 4
    ("sndcgan", (3, 32, 32), sndcgan_g(3, 4, 4), sndcgan_d(3, 4, 4), None),
    ("sndcgan", (3, 64, 64), sndcgan_g(3, 8, 8), sndcgan_d(3, 8, 8), None),
    ("sndcgan", (3, 128, 128), sndcgan_g(3, 16, 16), sndcgan_d(3, 16, 16), None),
    ("resnet_cifar", (3, 32, 32), cifar_g(3), cifar_d(3, True), cifar_d(3, False)),
    ("resnet5", (3, 128, 128), resnet5_g(3), resnet5_d(3, True), resnet5_d(3, False)),
    ("resnet5", (3, 64, 64), resnet5_g(3), resnet5_d(3, True), resnet5_d(3, False)),
]
PINNED = {  # the same numbers written out
    ("sndcgan", (1, 28, 28)): (3_827_585, 5_859_713, None),
    ("sndcgan", (3, 32, 32)): (3_828_739, 5_860_865, None),
    ("sndcgan", (3, 64, 64)): (7_048_195, 5_885_441, None),
    ("sndcgan", (3, 128, 128)): (19_926_019, 5_983_745, None),
    ("resnet_cifar", (3, 32, 32)): (5_849_603, 1_484_935, 1_483_137),
    ("resnet5", (3, 128, 128)): (13_786_115, 15_092_423, 15_086_529),
    ("resnet5", (3, 64, 64)): (13_786_115, 15_092_423, 15_086_529),
}


@pytest.mark.parametrize(("name", "shape", "g_count", "d_count", "d_plain"), COUNTS)
def test_weight_counts_are_the_references(name, shape, g_count, d_count, d_plain):
    assert (g_count, d_count, d_plain) == PINNED[(name, shape)]
    with_bn = NetworkOptions(shape=shape, z_dim=Z, d_bn=True)
    without = NetworkOptions(shape=shape, z_dim=Z, d_bn=False)
    assert count_parameters(GENERATORS.get(name)(with_bn)) == g_count
    assert count_parameters(DISCRIMINATORS.get(name)(with_bn)) == d_count
    # SNDCGAN's D has no batch norm to switch off (sndcgan.py:88-127)
    assert count_parameters(DISCRIMINATORS.get(name)(without)) == (d_plain or d_count)
    # spectral norm adds no trainable weights (its u, v are buffers; arch_ops.py:492-497)
    with_sn = NetworkOptions(shape=shape, z_dim=Z, spectral_norm=True)
    assert count_parameters(DISCRIMINATORS.get(name)(with_sn)) == d_count


@pytest.mark.parametrize(
    ("name", "shape", "fc_out"),
    [("sndcgan", (3, 32, 32), 4 * 4 * 512), ("resnet_cifar", (3, 32, 32), 4 * 4 * 256),
     ("resnet5", (3, 64, 64), 4 * 4 * 512)],
)  # fmt: skip
def test_z_dim_changes_only_the_first_layer(name, shape, fc_out):
    counts = [
        count_parameters(GENERATORS.get(name)(NetworkOptions(shape=shape, z_dim=z)))
        for z in (64, Z)
    ]
    assert counts[1] - counts[0] == (Z - 64) * fc_out
    assert cifar_g(3, 64) == cifar_g(3) - 64 * 4 * 4 * 256  # the hand count agrees


SMALLEST = {"sndcgan": (1, 28, 28), "resnet_cifar": (3, 32, 32), "resnet5": (3, 8, 8)}


@pytest.mark.parametrize("name", sorted(SMALLEST))
def test_outputs_shapes_and_ranges_forward_and_backward(name, float64):
    shape = SMALLEST[name]
    opts = NetworkOptions(shape=shape, z_dim=Z, d_bn=True, spectral_norm=True)
    torch.manual_seed(0)
    g, d = GENERATORS.get(name)(opts), DISCRIMINATORS.get(name)(opts)
    images = g(torch.randn(3, Z))
    assert images.shape == (3, *shape) and images.dtype == torch.float64
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0
    logits = d(images)
    assert logits.shape == (3,)
    logits.square().sum().backward()
    for network in (g, d):
        for param_name, param in network.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), param_name
    assert any(p.grad.abs().sum() > 0 for p in g.parameters())


@pytest.mark.parametrize(
    ("name", "shape", "message"),
    [
        ("sndcgan", (2,), "any image"),
        ("resnet_cifar", (3, 64, 64), "32x32"),
        ("resnet5", (1, 28, 28), "4, 8, 16, 32, 64 or 128"),
        ("resnet5", (3, 256, 256), "4, 8, 16, 32, 64 or 128"),
        ("resnet5", (3, 64, 32), "4, 8, 16, 32, 64 or 128"),
    ],
)
def test_a_generator_refuses_a_shape_it_cannot_build(name, shape, message):
    with pytest.raises(ValueError, match=message):
        GENERATORS.get(name)(NetworkOptions(shape=shape))


@pytest.mark.parametrize("name", ["resnet_cifar", "resnet5"])
@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 32, 16), (2, 32, 32), (2,)])
def test_a_resnet_discriminator_refuses_what_compare_gan_refuses(name, shape):
    # resnet_ops.py:59-67 (square, a power of two), resnet_cifar.py:140-142 (1 or 3 colours)
    with pytest.raises(ValueError, match="power of two, 1 or 3 channels"):
        DISCRIMINATORS.get(name)(NetworkOptions(shape=shape))


def test_families_map_the_papers_discriminator_only():
    for name in ("sndcgan", "resnet_cifar", "resnet5"):
        family = FAMILIES.get(name)
        assert family.networks_for("infogan") == {"generator": name, "discriminator": name}
        with pytest.raises(ConfigError):
            family.networks_for("began")  # no autoencoder D in the reference


def test_initialisation_is_compare_gans_normal():
    # weights.initializer = "normal" (arch_ops.py:46-58): N(0, 0.02), untruncated; biases 0
    torch.manual_seed(0)
    d = DISCRIMINATORS.get("sndcgan")(NetworkOptions(shape=(3, 32, 32)))
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    weight = layers[-1].weight  # d_conv7, 3 x 3 x 512 x 512
    assert weight.std().item() == pytest.approx(0.02, rel=0.01)
    assert weight.abs().max() > 0.08  # a truncated normal stops at 0.04
    assert all((m.bias == 0).all() for m in layers)


def test_same_padding_is_tensorflows_at_odd_sizes(float64):
    """The reference's 28x28 SNDCGAN runs 28 -> 14 -> 7 -> 4: TensorFlow's "SAME" pads 7 to
    (1, 2) for a 4x4 kernel at stride 2, and conv2d_transpose is that convolution's transpose
    (its gradient), which the crop reproduces: <conv(x), y> = <x, deconv(y)>."""
    layers, out = same_conv(2, 3, 4, 2, (7, 6))
    assert out == (4, 3) and layers[0].pads == (1, 1, 1, 2)  # (left, right, top, bottom)
    conv_ = nn.Sequential(*layers)
    deconv = nn.Sequential(*same_deconv(3, 2, 4, 2, (7, 6)))
    with torch.no_grad():
        deconv[0].weight.copy_(conv_[1].weight)  # (3, 2, 4, 4) either way
    for layer in (conv_[1], deconv[0]):
        nn.init.zeros_(layer.bias)
    x, y = torch.randn(5, 2, 7, 6), torch.randn(5, 3, 4, 3)
    assert deconv(y).shape == x.shape
    assert torch.allclose((conv_(x) * y).sum(), (x * deconv(y)).sum(), rtol=1e-12)
    even, _ = same_conv(2, 3, 4, 2, (8, 8))  # even sizes: PyTorch's own symmetric padding
    assert len(even) == 1 and even[0].padding == (1, 1)
    g = GENERATORS.get("sndcgan")(NetworkOptions(shape=(1, 28, 28)))
    assert g(torch.randn(2, 64)).shape == (2, 1, 28, 28)


def test_unpool_and_pooling_are_the_references():
    x = torch.arange(1.0, 7.0).view(1, 2, 3)
    up = unpool(x)  # resnet_ops.py:35-56: zeros after each pixel and each row
    assert up.shape == (1, 4, 6) and torch.equal(up[:, ::2, ::2], x)
    assert up.sum() == x.sum() and torch.equal(up[:, 1::2], torch.zeros(1, 2, 6))
    assert unpool(torch.ones(2, 3, 1, 5, 5)).shape == (2, 3, 1, 10, 10)  # any leading axes
    y = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.equal(average_pool(y), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    one = torch.full((2, 3, 1, 1, 1), 7.0)  # "SAME" on a 1x1 map: the pixel itself
    assert torch.equal(average_pool(one), one)


POPULATION = {"sndcgan": (1, 28, 28), "resnet_cifar": (3, 32, 32), "resnet5": (1, 4, 4)}


@pytest.mark.parametrize("name", sorted(POPULATION))
def test_a_population_of_two_is_each_network_alone(name, float64):
    """Both networks stack (every weight layer has a member-batched one); member i of a
    population of 2 computes what network i computes alone, in training mode (batch norm on
    each member's batch) and eval mode, and moves its batch-norm statistics as it does."""
    shape = POPULATION[name]
    opts = NetworkOptions(shape=shape, z_dim=Z, d_bn=True, bn_momentum=0.1)
    assert not can_stack(DISCRIMINATORS.get(name)(NetworkOptions(shape, spectral_norm=True)))
    for make, inputs in (
        (GENERATORS.get(name), torch.randn(2, 3, Z)),
        (DISCRIMINATORS.get(name), torch.rand(2, 3, *shape)),
    ):
        torch.manual_seed(1)
        alone = [make(opts) for _ in range(2)]
        assert can_stack(alone[0])
        population = StackedNetwork(copy.deepcopy(alone))
        for training in (True, False):
            population.train(training)
            x = inputs.clone().requires_grad_(True)
            out = population(x)
            (grad_x,) = torch.autograd.grad(out.square().sum(), x)
            for i, network in enumerate(alone):
                network.train(training)
                xi = inputs[i].clone().requires_grad_(True)
                expected = network(xi)
                (expected_grad,) = torch.autograd.grad(expected.square().sum(), xi)
                # Batch norm here is two formulas (F.batch_norm alone, elementwise operations
                # stacked); over 3 samples of a 1x1 map (resnet5's last blocks at this size)
                # it turns their last-bit differences into 1e-10 relative ones in D's gradient.
                torch.testing.assert_close(out[i], expected, rtol=1e-9, atol=1e-12)
                torch.testing.assert_close(grad_x[i], expected_grad, rtol=1e-8, atol=1e-10)
                state = population.member_state(i)
                for buffer_name, buffer in network.named_buffers():
                    torch.testing.assert_close(state[buffer_name], buffer, rtol=1e-10, atol=1e-15)


def test_sndcgan_trains_to_the_same_bits_alone_and_in_a_population():
    """Float32, batch 32 (`BIT_EXACT_BATCH`), DRAGAN (a penalty: double backward through the
    padding and cropping): member 0 of a population of 2 ends 3 steps with the weights of its
    trial alone, all finite. (The ResNets do the same; at 10 s a trial they are left to the
    training tests.)"""
    from benchmark.training.step import GANTraining
    from tests.helpers import tiny, tiny_images

    base = tiny("dragan", batch_size=32, generator="sndcgan", discriminator="sndcgan")
    trials = [dataclasses.replace(base, seed=i, lr=base.lr * 1.5**i) for i in range(2)]
    states = []
    for size in (1, 2):
        training = GANTraining(trials[:size], tiny_images(64, 0), torch.device("cpu"))
        for _ in range(3):
            training.train_step()
        state = training.member_state(0)
        states.append({**state["g"], **{f"d.{k}": v for k, v in state["d"].items()}})
    assert all(torch.isfinite(v).all() for v in states[0].values() if v.is_floating_point())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])

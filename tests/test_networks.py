"""The reference networks: parameter counts, shapes, init, BN settings, clipping, SN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.errors import ConfigError
from benchmark.networks import (
    FAMILIES,
    AutoencoderDiscriminator,
    Discriminator,
    Generator,
    MLPAutoencoderDiscriminator,
    MLPDiscriminator,
    MLPGenerator,
    NetworkOptions,
    clip_parameters,
    count_parameters,
)


@pytest.mark.parametrize(
    ("shape", "g_params", "d_params"),
    [
        # Worked out layer by layer from the reference layout (weights + biases + BN).
        ((1, 28, 28), 6_642_241, 6_559_169),  # MNIST: about 6.64M / 6.56M
        ((3, 32, 32), 8_616_131, 8_527_297),  # CIFAR-10: about 8.62M / 8.53M
    ],
)
def test_parameter_counts_match_the_reference(shape, g_params, d_params):
    opts = NetworkOptions(shape)
    assert count_parameters(Generator(opts)) == g_params
    assert count_parameters(Discriminator(opts)) == d_params


def test_began_discriminator_parameter_count():
    assert (
        count_parameters(AutoencoderDiscriminator(NetworkOptions((1, 28, 28), d_bn=False)))
        == 1_073_601
    )


def test_d_without_batch_norm_drops_exactly_the_bn_parameters():
    with_bn = count_parameters(Discriminator(NetworkOptions((1, 28, 28), d_bn=True)))
    without = count_parameters(Discriminator(NetworkOptions((1, 28, 28), d_bn=False)))
    assert with_bn - without == 2 * (128 + 1024)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_shapes_and_ranges(shape):
    opts = NetworkOptions(shape)
    g, d, ae = Generator(opts), Discriminator(opts), AutoencoderDiscriminator(opts)
    images = g(torch.rand(5, 64) * 2 - 1)
    assert images.shape == (5, *shape)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert d(images).shape == (5,)
    errors = ae(images)
    assert errors.shape == (5,)
    torch.testing.assert_close(errors, (ae.reconstruct(images) - images).abs().mean(dim=(1, 2, 3)))


def test_init_and_batch_norm_settings():
    torch.manual_seed(0)
    d = Discriminator(NetworkOptions((1, 28, 28)))
    big = d.net[6]  # FC 6272 -> 1024
    assert isinstance(big, nn.Linear)
    assert float(big.weight.std()) == pytest.approx(0.02, rel=0.01)
    assert float(big.weight.mean()) == pytest.approx(0.0, abs=1e-3)
    assert float(big.bias.abs().max()) == 0.0
    conv = d.net[2]
    assert float(conv.weight.abs().max()) <= 0.04  # truncated at 2 std
    bns = [m for m in d.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 2
    assert all(m.momentum == 0.001 and m.eps == 1e-3 for m in bns)


@pytest.mark.parametrize("shape", [(64, 7), (64, 5, 3, 3)])
def test_batch_norm_keeps_the_biased_moving_variance_as_tensorflow(shape):
    """TF's batch_norm(decay=0.999): moving = 0.999 moving + 0.001 batch stat, the variance
    biased (divided by n); training-mode outputs are those of nn.BatchNorm."""
    from benchmark.networks import BatchNorm1d, BatchNorm2d

    x = torch.randn(*shape, dtype=torch.float64) * 3 + 1
    cls, ref_cls = (
        (BatchNorm1d, nn.BatchNorm1d) if len(shape) == 2 else (BatchNorm2d, nn.BatchNorm2d)
    )
    bn = cls(shape[1], eps=1e-3, momentum=0.001).double()
    ref = ref_cls(shape[1], eps=1e-3, momentum=0.001).double()
    torch.testing.assert_close(bn(x), ref(x), rtol=0, atol=1e-12)
    dims = [0, *range(2, x.dim())]
    n = x.numel() // shape[1]
    biased = ((x - x.mean(dims, keepdim=True)) ** 2).sum(dims) / n
    torch.testing.assert_close(bn.running_var, 0.999 * 1 + 0.001 * biased, rtol=0, atol=1e-14)
    torch.testing.assert_close(bn.running_mean, 0.001 * x.mean(dims), rtol=0, atol=1e-14)
    # PyTorch's own keeps n / (n - 1) times the batch variance.
    unbiased_part = ref.running_var - 0.999
    torch.testing.assert_close(unbiased_part, 0.001 * biased * n / (n - 1), rtol=1e-12, atol=0)
    bn.eval()  # eval mode normalises with the moving statistics
    expected = (x - bn.running_mean.view(1, -1, *[1] * (x.dim() - 2))) / torch.sqrt(
        bn.running_var.view(1, -1, *[1] * (x.dim() - 2)) + 1e-3
    )
    torch.testing.assert_close(bn(x), expected, rtol=0, atol=1e-12)


def test_clipping_reaches_batch_norm_parameters():
    d = Discriminator(NetworkOptions((1, 28, 28)))
    bn = d.net[3]
    with torch.no_grad():
        bn.weight.fill_(5.0)
        bn.bias.fill_(-5.0)
    clip_parameters(d, 0.01)
    assert float(bn.weight.max()) == pytest.approx(0.01) and float(bn.bias.min()) == pytest.approx(
        -0.01
    )
    assert max(float(p.abs().max()) for p in d.parameters()) == pytest.approx(0.01)


def test_spectral_norm_bounds_each_layer():
    torch.manual_seed(0)
    d = Discriminator(NetworkOptions((1, 28, 28), spectral_norm=True, d_bn=False))
    d(torch.rand(8, 1, 28, 28))  # power iterations run in train mode
    for _ in range(20):
        d(torch.rand(8, 1, 28, 28))
    linear = d.net[6]
    sigma = torch.linalg.matrix_norm(linear.weight.detach(), ord=2)
    assert float(sigma) == pytest.approx(1.0, rel=0.05)


def test_mlp_parameter_counts():
    """Layer by layer at 28x28x1, 256 hidden units: G 64*256+256 + 256*256+256 + 256*784+784
    weights and biases + 2*2*256 BN; D 784*256+256 + 256*256+256 + 257 (+ 2*256 BN); the
    autoencoder 784*256+256 + 256*64+64 | 64*256+256 + 256*784+784 (+ 2*64 + 2*256 BN)."""
    opts, plain = NetworkOptions((1, 28, 28)), NetworkOptions((1, 28, 28), d_bn=False)
    assert count_parameters(MLPGenerator(opts)) == 284_944
    assert count_parameters(MLPDiscriminator(opts)) == 267_521
    assert count_parameters(MLPDiscriminator(plain)) == 267_009
    assert count_parameters(MLPAutoencoderDiscriminator(opts)) == 436_176
    assert count_parameters(MLPAutoencoderDiscriminator(plain)) == 435_536


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_mlp_shapes_and_ranges(shape):
    opts = NetworkOptions(shape, d_bn=False)
    g, d, ae = MLPGenerator(opts), MLPDiscriminator(opts), MLPAutoencoderDiscriminator(opts)
    images = g(torch.rand(5, 64) * 2 - 1)
    assert images.shape == (5, *shape)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert d(images).shape == (5,)
    torch.testing.assert_close(ae(images), (ae.reconstruct(images) - images).abs().mean((1, 2, 3)))


def test_a_network_family_keeps_began_an_autoencoder():
    mlp = FAMILIES.get("mlp")
    assert mlp.networks_for("infogan") == {"generator": "mlp", "discriminator": "mlp"}
    assert mlp.networks_for("began") == {"generator": "mlp", "discriminator": "mlp_began"}
    assert FAMILIES.get("infogan").networks_for("began") == {
        "generator": "infogan",
        "discriminator": "began",
    }
    with pytest.raises(ConfigError, match="discriminator='mine' is not allowed"):
        mlp.networks_for("mine")


def test_the_point_networks_tanh_is_tanh():
    """2 sigmoid(2x) - 1 on a CPU: within 2.4e-7 (two float32 units of 1) of torch.tanh,
    the gradient within 5e-7, and exact to float64 round-off in float64."""
    from benchmark.networks import Tanh

    x = torch.linspace(-12, 12, 200_001, requires_grad=True)
    ours, reference = Tanh()(x), torch.tanh(x)
    assert float((ours - reference).detach().abs().max()) <= 2.4e-7
    (grad,) = torch.autograd.grad(ours.sum(), x)
    (expected,) = torch.autograd.grad(reference.sum(), x)
    assert float((grad - expected).abs().max()) <= 5e-7
    x64 = x.detach().double()
    assert float((Tanh()(x64) - torch.tanh(x64)).abs().max()) <= 4e-16
    assert Tanh()(torch.tensor([0.0, 40.0, -40.0])).tolist() == [0.0, 1.0, -1.0]

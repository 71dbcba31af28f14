"""Member-batched layers: each member computes what its plain layer computes, and a member's
bits do not depend on how many members share the call (so neither does a trial's training)."""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest
import torch
from torch import nn

from benchmark.cli import main
from benchmark.models import MODELS, resolve_trial
from benchmark.networks import (
    DISCRIMINATORS,
    GENERATORS,
    BatchNorm1d,
    BatchNorm2d,
    NetworkOptions,
)
from benchmark.training.stacked import StackedNetwork
from benchmark.training.stacked_layers import can_stack
from benchmark.training.step import GANTraining
from tests.helpers import tiny, tiny_images

CPU = torch.device("cpu")
MEMBERS = 3


def _float64_layers(make):
    torch.manual_seed(0)
    layers = [make().double() for _ in range(MEMBERS)]
    for layer in layers:  # weights and statistics that differ between members
        with torch.no_grad():
            for tensor in (*layer.parameters(), *layer.buffers()):
                if tensor.is_floating_point():
                    tensor.copy_(torch.rand_like(tensor) + 0.5)
    return layers


LAYERS = {
    "linear": (lambda: nn.Linear(5, 4), (7, 5)),
    "linear to one output": (lambda: nn.Linear(5, 1), (7, 5)),
    "conv": (lambda: nn.Conv2d(3, 4, 4, stride=2, padding=1), (7, 3, 8, 8)),
    "deconv": (lambda: nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), (7, 4, 4, 4)),
    "batch norm 1d": (lambda: BatchNorm1d(6, eps=1e-3, momentum=0.1), (7, 6)),
    "batch norm 2d": (lambda: BatchNorm2d(3, eps=1e-3, momentum=0.1), (7, 3, 4, 4)),
}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_stacked_layer_is_its_plain_layers_forward_and_backward(kind, training):
    make, shape = LAYERS[kind]
    plain = _float64_layers(make)
    stacked = StackedNetwork(copy.deepcopy(plain))
    stacked.train(training)
    for layer in plain:
        layer.train(training)
    x = torch.randn(MEMBERS, *shape, dtype=torch.float64, requires_grad=True)
    out = stacked(x)
    cotangent = torch.randn_like(out)
    (grad_x, grad_w) = torch.autograd.grad((out * cotangent).sum(), (x, stacked.flat))
    grad_w = dict(zip(stacked.names, stacked.blocks(grad_w), strict=True))
    for i, layer in enumerate(plain):
        xi = x[i].detach().requires_grad_(True)
        expected = layer(xi)
        torch.testing.assert_close(out[i], expected, rtol=1e-12, atol=1e-12)
        params = dict(layer.named_parameters())
        grads = torch.autograd.grad((expected * cotangent[i]).sum(), (xi, *params.values()))
        torch.testing.assert_close(grad_x[i], grads[0], rtol=1e-12, atol=1e-12)
        for name, grad in zip(params, grads[1:], strict=True):
            torch.testing.assert_close(grad_w[name][i], grad.flatten(), rtol=1e-12, atol=1e-12)
        # Batch norm's running statistics moved as the plain layer's did (or not, in eval).
        state = stacked.member_state(i)
        for name, buffer in layer.named_buffers():
            torch.testing.assert_close(state[name], buffer, rtol=1e-12, atol=0)


def test_spectral_norm_has_no_stacked_layers_and_trains_alone():
    options = NetworkOptions(shape=(1, 8, 8), spectral_norm=True)
    d = DISCRIMINATORS.get("infogan")(options)
    assert not can_stack(d) and can_stack(DISCRIMINATORS.get("infogan")(NetworkOptions((1, 8, 8))))
    assert StackedNetwork([d]).plain
    with pytest.raises(ValueError, match="trains alone"):
        StackedNetwork([d, copy.deepcopy(d)])


# ---- bits whatever the population size --------------------------------------------------------
SIZES = (1, 3, 16)
FAMILIES = {
    "points": ("grid", "points", {"infogan": "points", "began": "points_began"}),
    "mlp": ("test_squares", "mlp", {"infogan": "mlp", "began": "mlp_began"}),
    "infogan": ("test_squares", "infogan", {"infogan": "infogan", "began": "began"}),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_layer_shape_gives_a_member_the_same_bits_at_every_size(family):
    """G and D of each family (BEGAN's D too), forward and backward in float32: member 0's
    outputs and gradients are bit for bit the same in populations of 1, 3 and 16."""
    dataset, generator, discriminators = FAMILIES[family]
    shape = (2,) if dataset == "grid" else (1, 8, 8)
    options = NetworkOptions(shape=shape, d_bn=True)
    names = [GENERATORS.get(generator)] + [DISCRIMINATORS.get(d) for d in discriminators.values()]
    for make in names:
        torch.manual_seed(0)
        modules = [make(options) for _ in range(max(SIZES))]
        sample_shape = (64,) if make is names[0] else shape  # G takes z
        inputs = torch.rand(max(SIZES), 8, *sample_shape)
        seen = []
        for size in SIZES:
            network = StackedNetwork(copy.deepcopy(modules[:size]))
            x = inputs[:size].clone().requires_grad_(True)
            out = network(x)
            grad_x, grad_w = torch.autograd.grad(out.square().sum(), (x, network.flat))
            blocks = [b[0] for b in network.blocks(grad_w)]
            seen.append((out[0], grad_x[0], *blocks, *network.member_state(0).values()))
        for size, values in zip(SIZES[1:], seen[1:], strict=True):
            for a, b in zip(seen[0], values, strict=True):
                assert torch.equal(a, b), (family, make.__name__, size)


def _member_zero_after(trials, data, steps: int) -> dict[str, torch.Tensor]:
    training = GANTraining(trials, data, CPU)
    for _ in range(steps):
        training.train_step()
    state = training.member_state(0)
    return {**state["g"], **{f"d.{k}": v for k, v in state["d"].items()}}


@pytest.mark.parametrize(
    ("family", "model"),
    [("points", "ns"), ("points", "wgan"), ("points", "began"), ("mlp", "wgan_gp"),
     ("mlp", "dragan"), ("infogan", "ns"), ("infogan", "began")],
)  # fmt: skip
def test_a_trial_trains_to_the_same_bits_in_any_population(family, model):
    """Float32, the dtype a sweep trains in: member 0 of populations of 3 and 16 (the others
    with other seeds and lrs) ends with exactly the weights of its trial trained alone. With a
    batch that is a multiple of 32 (`BIT_EXACT_BATCH`): see benchmark/training/stacked_layers.py."""
    dataset, generator, discriminators = FAMILIES[family]
    networks = {
        "generator": generator,
        "discriminator": discriminators[MODELS.get(model, "model").discriminator],
    }
    if dataset == "grid":
        base = resolve_trial(model, "grid", batch_size=32, metrics=(), steps=12, **networks)
        data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    else:
        base = tiny(model, batch_size=32, **networks)
        data = tiny_images(64, 0)
    trials = [dataclasses.replace(base, seed=i, lr=base.lr * 1.5**i) for i in range(max(SIZES))]
    alone = _member_zero_after(trials[:1], data, 12)
    for size in SIZES[1:]:
        together = _member_zero_after(trials[:size], data, 12)
        assert all(torch.equal(alone[k], together[k]) for k in alone), (family, model, size)
    other = _member_zero_after(trials[1:2], data, 12)  # the test can tell two trials apart
    assert not all(torch.equal(alone[k], other[k]) for k in alone)


POINT_SPEC = """
datasets = ["grid"]
models = ["ns", "wgan_gp", "began"]
networks = "points"
seeds = 4
steps = 40
batch_size = 32
metrics = ["mixture"]
metric = "w1"
device = "cpu"
population = 4
"""


def test_a_sweep_gives_the_same_bits_run_after_run_in_populations_or_alone(tmp_path):
    """The same spec twice with populations of 4, and once one trial at a time: every score
    of every trial is bit for bit the same in all three."""
    frames = []
    for name, population in (("first", "4"), ("second", "4"), ("alone", "1")):
        spec = tmp_path / f"{name}.toml"
        spec.write_text(POINT_SPEC)
        argv = ["sweep", str(spec), "--no-progress", "--no-report", "--population", population]
        assert main(argv) == 0
        frame = pd.read_csv(tmp_path / name / "results.csv").sort_values(["model", "seed"])
        frames.append(frame.reset_index(drop=True))
    assert set(frames[0]["population"]) == {4} and set(frames[2]["population"]) == {1}
    columns = ["model", "seed", "status", "w1", "modes", "hq", "reverse_kl", "energy"]
    assert len(frames[0]) == 12 and frames[0]["w1"].nunique() == 12  # twelve distinct trials
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame[columns], frames[0][columns], check_exact=True)


# ---- conditional networks: the label embedding and the projection ----------------------------


def test_a_stacked_embedding_is_each_members_lookup_forward_and_backward():
    tables = _float64_layers(lambda: nn.Embedding(5, 4))
    stacked = StackedNetwork(copy.deepcopy(tables))
    labels = torch.tensor([[0, 4, 4, 1, 0, 2, 4]] * MEMBERS)
    labels[1] = labels[1].flip(0)
    out = stacked(labels)
    cotangent = torch.randn_like(out)
    (grad_w,) = torch.autograd.grad((out * cotangent).sum(), (stacked.flat,))
    for i, table in enumerate(tables):
        assert torch.equal(out[i], table.weight[labels[i]])
        (expected,) = torch.autograd.grad((table(labels[i]) * cotangent[i]).sum(), (table.weight,))
        assert torch.equal(stacked.blocks(grad_w)[0][i], expected.flatten())


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_conditional_member_has_the_same_bits_at_every_size(family, conditioning):
    """Conditional G and D of each family (BEGAN's D with concat), forward and backward in
    float32 at batch 32: member 0's outputs and gradients are the same bits at sizes 1, 3, 16."""
    from benchmark.conditional import ConditionalDiscriminator, ConditionalGenerator

    dataset, generator, discriminators = FAMILIES[family]
    shape = (2,) if dataset == "grid" else (1, 8, 8)
    options = NetworkOptions(shape=shape, d_bn=True)
    makers = [lambda: ConditionalGenerator(GENERATORS.get(generator), options, 5)]
    for name in discriminators.values():
        if conditioning == "projection" and name.endswith("began"):
            continue  # refused: see benchmark/conditional.py
        make = DISCRIMINATORS.get(name)
        makers.append(lambda make=make: ConditionalDiscriminator(make, options, 5, conditioning))
    labels = torch.randint(5, (max(SIZES), 32), generator=torch.Generator().manual_seed(1))
    for index, make in enumerate(makers):
        torch.manual_seed(0)
        modules = [make() for _ in range(max(SIZES))]
        inputs = torch.rand(max(SIZES), 32, *((64,) if index == 0 else shape))
        seen = []
        for size in SIZES:
            network = StackedNetwork(copy.deepcopy(modules[:size]))
            x = inputs[:size].clone().requires_grad_(True)
            out = network(x, labels[:size])
            grad_x, grad_w = torch.autograd.grad(out.square().sum(), (x, network.flat))
            blocks = [b[0] for b in network.blocks(grad_w)]
            seen.append((out[0], grad_x[0], *blocks, *network.member_state(0).values()))
        for size, values in zip(SIZES[1:], seen[1:], strict=True):
            for a, b in zip(seen[0], values, strict=True):
                assert torch.equal(a, b), (family, conditioning, index, size)


@pytest.mark.parametrize(
    ("family", "model", "conditioning"),
    [("points", "ns", "projection"), ("points", "began", "concat"),
     ("mlp", "wgan_gp", "concat"), ("infogan", "dragan", "projection")],
)  # fmt: skip
def test_a_conditional_trial_trains_to_the_same_bits_in_any_population(family, model, conditioning):
    """Float32, batch 32: member 0 of conditional populations of 3 and 16 ends with exactly
    the weights of its trial alone (labels drawn with its real batches and fresh z)."""
    from tests.helpers import labelled_squares

    dataset, generator, discriminators = FAMILIES[family]
    networks = {
        "generator": generator,
        "discriminator": discriminators[MODELS.get(model, "model").discriminator],
        "conditional": True,
        "conditioning": conditioning,
    }
    if dataset == "grid":
        base = resolve_trial(model, "grid", batch_size=32, metrics=(), steps=12, **networks)
        data = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
        labels = torch.randint(25, (256,), generator=torch.Generator().manual_seed(0))
    else:
        values = dict(steps=12, eval_every_epochs=1, batch_size=32, metrics=())
        base = resolve_trial(model, "test_quadrants", **values, **networks)
        data, labels = labelled_squares(64, 0)
    trials = [dataclasses.replace(base, seed=i, lr=base.lr * 1.5**i) for i in range(max(SIZES))]

    def member_zero(trials) -> dict[str, torch.Tensor]:
        training = GANTraining(trials, data, CPU, train_labels=labels)
        for _ in range(12):
            training.train_step()
        state = training.member_state(0)
        return {**state["g"], **{f"d.{k}": v for k, v in state["d"].items()}}

    alone = member_zero(trials[:1])
    assert any("embed" in k for k in alone)
    for size in SIZES[1:]:
        together = member_zero(trials[:size])
        assert all(torch.equal(alone[k], together[k]) for k in alone), (family, model, size)
    other = member_zero(trials[1:2])
    assert not all(torch.equal(alone[k], other[k]) for k in alone)

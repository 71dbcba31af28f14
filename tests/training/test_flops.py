"""A trial's counted compute (benchmark/training/flops.py) against hand counts and torch's own
counter."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.models import resolve_trial
from benchmark.training.flops import step_flops

POINTS = {"generator": "points", "discriminator": "points", "d_bn": False, "metrics": ()}
BATCH = 64
# Multiply-adds per sample of each layer (in x out) of the point networks.
G_LAYERS = (64 * 128, 128 * 128, 128 * 2)
D_LAYERS = (2 * 128, 128 * 128, 128 * 1)
G_FORWARD, D_FORWARD = sum(G_LAYERS), sum(D_LAYERS)  # 24,832 and 16,768


def _flops(macs_per_sample: int) -> int:
    return 2 * BATCH * macs_per_sample  # 2 FLOPs per multiply-add


def test_points_ns_step_is_the_hand_count():
    """NS, n_disc 1, G on the D step's z. D step: G forward (no gradient), D forward on the
    real and the fake batch, and for each a backward to D's weights (every layer's weight
    gradient, the input gradient of all but the first layer). G step: G and D forward, D's
    input gradients all the way down, G's weight gradients and its input gradients but the
    first layer's. 224,768 multiply-adds per sample: 28.77 MFLOP at batch 64."""
    d_backward = D_FORWARD + D_LAYERS[1] + D_LAYERS[2]
    d_step = G_FORWARD + 2 * D_FORWARD + 2 * d_backward
    g_backward = G_FORWARD + G_LAYERS[1] + G_LAYERS[2]
    g_step = G_FORWARD + D_FORWARD + D_FORWARD + g_backward
    assert d_step + g_step == 224_768
    trial = resolve_trial("ns", "grid", batch_size=BATCH, **POINTS)
    counted = step_flops(trial)
    assert counted.d_and_g_step == _flops(224_768) == 28_770_304


def test_points_wgan_gp_step_is_the_hand_count():
    """WGAN-GP, n_disc 5: a D step adds the penalty to NS's D step: D forward at the
    interpolates, its input gradient through every layer (create_graph), and the backward of
    that backward: each input-gradient product differentiated to its weight and (but the
    top one, whose upstream is the constant 1) to its upstream gradient, then through the
    forward's activations to the first two layers' weights and the second's input. The G
    step draws a fresh z: G forward, D forward, D's input gradients, G's backward."""
    d_backward = D_FORWARD + D_LAYERS[1] + D_LAYERS[2]
    loss = G_FORWARD + 2 * D_FORWARD + 2 * d_backward
    first_backward = D_FORWARD  # the input gradient through all three layers
    double_backward = D_LAYERS[2] + 2 * D_LAYERS[1] + 2 * D_LAYERS[0]
    double_backward += 2 * D_LAYERS[1] + D_LAYERS[0]
    d_step = loss + D_FORWARD + first_backward + double_backward
    g_step = G_FORWARD + D_FORWARD + D_FORWARD + (G_FORWARD + G_LAYERS[1] + G_LAYERS[2])
    assert (d_step, g_step) == (224_896, 99_840)
    trial = resolve_trial("wgan_gp", "grid", batch_size=BATCH, **POINTS)
    counted = step_flops(trial)
    assert counted.d_step == _flops(d_step)
    assert counted.d_and_g_step == _flops(d_step + g_step)
    assert counted.training(d_steps=12, g_steps=3) == 9 * _flops(d_step) + 3 * _flops(
        d_step + g_step
    )


def test_infogan_step_agrees_with_torchs_counter():
    """The InfoGAN networks (convolutions, batch norm) on MNIST: the count equals what
    torch.utils.flop_counter.FlopCounterMode counts over the same first step (it updates D
    and G) of the trial's own modules."""
    from torch.utils.flop_counter import FlopCounterMode

    from benchmark.training.step import GANTraining

    trial = resolve_trial("ns", "mnist", batch_size=4, metrics=())
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    training = GANTraining(trial, images, torch.device("cpu"), modules=True)
    with FlopCounterMode(display=False) as counter:
        training.train_step()
    assert step_flops(trial).d_and_g_step == counter.get_total_flops() > 0


def test_a_count_is_the_structures_not_the_members_numbers():
    trial = resolve_trial("wgan_gp", "grid", batch_size=BATCH, **POINTS)
    other = dataclasses.replace(trial, lr=3e-3, lam=0.5, seed=7, compile=True)
    assert step_flops(other) == step_flops(trial)
    wider = dataclasses.replace(trial, batch_size=2 * BATCH)
    assert step_flops(wider).d_step == 2 * step_flops(trial).d_step


@pytest.mark.slow
def test_trials_record_their_flops_alone_and_in_a_population(tmp_path):
    """A member is charged its trial alone's count; a mixture evaluation counts G's forward
    pass on the 2,500 evaluation samples."""
    from benchmark.training.loop import run_population, run_trial

    common = {**POINTS, "metrics": ("mixture",), "steps": 6, "eval_every_epochs": 1e-3}
    trials = [resolve_trial("ns", "grid", batch_size=BATCH, seed=seed, **common) for seed in (1, 2)]
    together = run_population(trials, [tmp_path / "a", tmp_path / "b"], progress=False)
    alone = run_trial(trials[0], tmp_path / "alone", progress=False)
    for result in (*together, alone):
        evaluations = len(result["checkpoints"])
        assert result["train_flops"] == 6 * _flops(224_768)
        assert result["eval_flops"] == evaluations * 2 * 2_500 * G_FORWARD
        assert result["flops"] == result["train_flops"] + result["eval_flops"]
    assert together[0]["flops"] == alone["flops"]

"""The trial runner: step counts, clipping in training, resume equivalence, divergence, records."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os

import pytest
import torch
from torch.nn.functional import softplus

from benchmark.errors import ConfigError, TrialMismatch
from benchmark.evaluation import NonFiniteGenerator
from benchmark.losses import LOSSES, Loss
from benchmark.models import resolve_trial
from benchmark.training import loop, step
from benchmark.training.loop import run_trial
from benchmark.training.step import GANTraining
from tests.helpers import kill_after_first_checkpoint, tiny, tiny_images


# G updates after the D steps with index 0, 1, 1 + n, 1 + 2n, ... (the reference's schedule).
@pytest.mark.parametrize(
    ("n_disc", "steps", "g_steps"), [(1, 10, 10), (5, 10, 3), (5, 11, 3), (5, 12, 4)]
)
def test_d_and_g_step_counts(n_disc, steps, g_steps):
    training = GANTraining(tiny(n_disc=n_disc), tiny_images(32, 0), torch.device("cpu"))
    for _ in range(steps):
        training.train_step()
    assert (training.step, training.g_steps) == (steps, g_steps)


@pytest.mark.parametrize(
    ("n_disc", "expected"),
    [
        (1, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
        (3, [0, 1, 4, 7, 10]),
        (5, [0, 1, 6, 11]),
    ],
)
def test_g_update_schedule_is_the_references(n_disc, expected):
    """compare_gan v1: `(counter - 1) % disc_iters == 0 or g_loss is None`."""
    training = GANTraining(tiny(n_disc=n_disc), tiny_images(32, 0), torch.device("cpu"))
    updated = []
    for index in range(12):
        before = training.g_steps
        training.train_step()
        if training.g_steps > before:
            updated.append(index)
    assert updated == expected


def test_wgan_training_keeps_every_d_parameter_clipped():
    training = GANTraining(tiny("wgan", lr=0.1), tiny_images(32, 0), torch.device("cpu"))
    for _ in range(3):
        training.train_step()
    bn_weights = [m.weight for m in training.d.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn_weights and float(bn_weights[0].detach().abs().max()) <= 0.01 + 1e-9
    assert max(float(p.detach().abs().max()) for p in training.d.parameters()) <= 0.01 + 1e-9


def _record_inputs(network) -> list[torch.Tensor]:
    """Record member 0's input of every call of a stacked network (not a penalty's, which
    calls it through `eager`)."""
    seen: list[torch.Tensor] = []
    forward = network.forward

    def spy(x, *args):
        seen.append(x[0].detach().clone())
        return forward(x, *args)

    network.forward = spy
    return seen


def _generator_inputs(training: GANTraining) -> list[torch.Tensor]:
    """Record every z the trial's generator is called with."""
    return _record_inputs(training.generator)


# What each model's G update sees, against that step's D update: (a fresh z, a fresh real
# batch), as its source does. The paper's: compare_gan v1 reuses the z, except WGAN-GP's
# `resample_before_generator`; their G losses see no real batch. RelativisticGAN's
# GAN_losses_iter.py:674 and :679, R3GAN's training/training_loop.py:290-291 and
# GAN_stability's train.py:191 draw fresh ones.
G_DRAWS = {
    "mm": (False, False),
    "ns": (False, False),
    "ls": (False, False),
    "wgan": (False, False),
    "wgan_gp": (True, False),
    "dragan": (False, False),
    "began": (False, False),
    "hinge": (False, False),
    "rsgan": (True, True),
    "ragan": (True, True),
    "rpgan": (True, True),
    "ns_r1": (True, False),
}


@pytest.mark.parametrize("model", sorted(G_DRAWS))
def test_the_g_update_sees_the_z_and_real_batch_its_source_draws(model):
    fresh_z, fresh_real = G_DRAWS[model]
    trial = tiny(model)
    assert (trial.resample_z_for_g, trial.resample_real_for_g) == G_DRAWS[model]
    training = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
    zs: list[torch.Tensor] = []
    batches: list[torch.Tensor] = []
    sample_z, real_batch = training.sample_z, training.real_batch
    training.sample_z = lambda: zs.append(sample_z()) or zs[-1]
    training.real_batch = lambda: batches.append(real_batch()) or batches[-1]
    g_inputs = _generator_inputs(training)
    d_inputs = _record_inputs(training.discriminator)
    training.train_step()  # step 0 updates D, then G
    # Draws, in order: the D update's real batch and z, then G's fresh z and real batch.
    assert (len(zs), len(batches)) == (1 + fresh_z, 1 + fresh_real)
    d_z, g_z = g_inputs[0], g_inputs[1]
    assert torch.equal(d_z, zs[0][0]) and torch.equal(g_z, zs[-1][0])
    assert torch.equal(d_z, g_z) is not fresh_z
    if LOSSES.get(trial.loss).g_needs_real:
        # D runs on the real batch, the fakes (and a penalty's points) in the D update, then
        # on G(z) and a real batch in the G update.
        g_real = d_inputs[-1]
        assert torch.equal(d_inputs[0], batches[0][0]) and torch.equal(g_real, batches[-1][0])
        assert torch.equal(g_real, d_inputs[0]) is not fresh_real


def test_a_population_member_draws_what_its_trial_alone_draws():
    """Fresh draws for G come from each member's own stream, in the trial's own order."""
    trials = [tiny("rpgan", seed=1), tiny("rpgan", seed=2, lr=1e-3)]
    population = GANTraining(trials, tiny_images(32, 0), torch.device("cpu"))
    drawn = []
    real_batch = population.real_batch
    population.real_batch = lambda: drawn.append(real_batch()) or drawn[-1]
    for _ in range(2):
        population.train_step()
    for i, trial in enumerate(trials):
        alone = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
        mine = []
        real_batch_alone = alone.real_batch
        alone.real_batch = lambda f=real_batch_alone, mine=mine: mine.append(f()) or mine[-1]
        for _ in range(2):
            alone.train_step()
        assert len(mine) == len(drawn) == 4  # two steps, each a D and a G real batch
        for theirs, ours in zip(mine, drawn, strict=True):
            assert torch.equal(ours[i], theirs[0])
        assert torch.equal(
            population.streams.generators[i].get_state(), alone.streams.generators[0].get_state()
        )


def test_began_k_is_updated_with_the_networks_after_the_step():
    """k1 = k0 + lambda_k (gamma L(x) - L(G(z))), L recomputed by the updated D and G on the
    step's x and z, in training mode (compare_gan v1 BEGAN.after_training_step_hook)."""
    trial = tiny("began", n_disc=1)
    training = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
    before_d, before_g = copy.deepcopy(training.d), copy.deepcopy(training.g)
    batches: list[torch.Tensor] = []
    real_batch = training.real_batch
    training.real_batch = lambda: batches.append(real_batch()) or batches[-1]
    seen = _generator_inputs(training)
    training.train_step()
    x, z = batches[0][0], seen[0]  # member 0 of a population of one
    assert torch.equal(seen[1], z)  # the G update and the k update reuse the step's z

    def k_after_one_step(d, g) -> float:  # by hand: L(.) = mean |AE(.) - .|, in train mode
        with torch.no_grad():
            l_real = (d.reconstruct(x) - x).abs().mean()
            fake = g(z)
            l_fake = (d.reconstruct(fake) - fake).abs().mean()
        return 0.0 + trial.lambda_k * (trial.gamma * float(l_real) - float(l_fake))

    # Copies, so the hand computation moves no BN statistics of the trial's networks.
    expected = k_after_one_step(copy.deepcopy(training.d), copy.deepcopy(training.g))
    with_old_networks = k_after_one_step(before_d, before_g)
    assert float(training.loss_state["k"]) == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert abs(expected - with_old_networks) > 1e-3 * abs(expected)  # the test can tell


def test_result_record(tmp_path):
    result = run_trial(tiny("wgan_gp"), tmp_path / "t", progress=False)
    assert result["status"] == "ok"
    assert (result["d_steps"], result["g_steps"]) == (12, 4)  # G after steps 0, 1, 6, 11
    assert result["images_seen"] == 12 * 8
    assert result["loss"] == "wgan" and result["penalty"] == "gp" and result["lam"] == 10.0
    assert result["torch_version"] == torch.__version__
    for name in ("trial.json", "result.json", "metrics.jsonl", "samples.png", "generator.pt"):
        assert (tmp_path / "t" / name).exists(), name
    assert not (tmp_path / "t" / "checkpoint.pt").exists()  # only needed to resume
    stored = json.loads((tmp_path / "t" / "result.json").read_text())
    assert stored["trial_id"] == tiny("wgan_gp").trial_id
    lines = (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["d_steps"] for line in lines] == [7, 12]


@pytest.mark.parametrize("model", ["ns", "wgan_gp", "began"])
def test_resume_after_kill_ends_with_the_same_weights(tmp_path, monkeypatch, model):
    trial = tiny(model)
    run_trial(trial, tmp_path / "straight", progress=False)

    calls = kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_trial(trial, tmp_path / "killed", progress=False)
    assert calls == [7] and not (tmp_path / "killed" / "result.json").exists()
    monkeypatch.undo()
    resumed = run_trial(trial, tmp_path / "killed", progress=False)
    assert (
        resumed["d_steps"] == 12
        and resumed["g_steps"] == run_trial(trial, tmp_path / "straight")["g_steps"]
    )

    a = torch.load(tmp_path / "straight" / "generator.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "generator.pt", weights_only=True)
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=0, msg=name)


def test_finished_trial_is_returned_not_rerun(tmp_path, monkeypatch):
    first = run_trial(tiny(), tmp_path, progress=False)
    monkeypatch.setattr(loop, "GANTraining", None)  # any training attempt would fail
    assert run_trial(tiny(), tmp_path, progress=False) == first


def test_a_different_trial_in_the_same_directory_is_refused(tmp_path):
    run_trial(tiny(), tmp_path, progress=False)
    with pytest.raises(TrialMismatch, match="differs in lr"):
        run_trial(tiny(lr=1e-3), tmp_path, progress=False)


def test_non_finite_loss_is_recorded_as_diverged(tmp_path):
    result = run_trial(tiny(loss="test_nan"), tmp_path, progress=False)
    assert result["status"] == "diverged"
    assert result["error"] == "non-finite loss at D step 1"
    assert result["diverged_at"] == 1
    assert result["d_steps"] == 7  # caught at the first loss read-back, not at the end
    assert result["fid_min"] is None  # no checkpoint was evaluated: NaN, stored as null


class _PlannedScores:
    """An evaluator that returns planned FIDs in turn, to test what a trial keeps of them."""

    def __init__(self, fids):
        self.fids = iter(fids)

    def prepare(self):
        pass

    def evaluate(self, generator):
        return {"fid": next(self.fids), "kid": 0.5}

    def record(self):
        return {}


def test_diverged_trial_keeps_its_checkpoints_evaluated_before(tmp_path, monkeypatch):
    """The reference never discards a run: a generator that peaked and then diverged keeps
    its best finite checkpoint as its minimum; the final metrics are NaN."""
    calls = []

    def nan_from_step_16(real, fake, state):
        calls.append(1)
        return (
            softplus(-real).mean() + softplus(fake).mean() + (math.nan if len(calls) >= 16 else 0)
        )

    if "test_nan_at_16" not in LOSSES:
        LOSSES.register("test_nan_at_16", Loss(d=nan_from_step_16, g=lambda f, s: f.mean()))
    monkeypatch.setattr(loop, "_make_evaluator", lambda *args: _PlannedScores([30.0, 20.0]))
    result = run_trial(tiny(loss="test_nan_at_16", steps=30), tmp_path, progress=False)
    assert result["status"] == "diverged" and result["diverged_at"] == 16
    assert [c["d_steps"] for c in result["checkpoints"]] == [7, 13]
    assert result["fid_min"] == 20.0  # the better of the two
    assert result["fid_final"] is None and result["kid"] is None
    assert result["d_steps"] == 19  # noticed at the next checkpoint, which is not evaluated


class _ScoresFiniteGenerators(_PlannedScores):
    """As the Evaluator does: a generator whose output is non-finite raises, never scores.
    Records whether each generator it was handed outputs finite images."""

    def __init__(self, fids):
        super().__init__(fids)
        self.handed: list[bool] = []

    def evaluate(self, generator):
        was_training = generator.training
        generator.eval()  # the evaluator samples in eval mode
        with torch.no_grad():
            images = generator(torch.ones(4, 64))
        generator.train(was_training)
        self.handed.append(bool(torch.isfinite(images).all()))
        if not self.handed[-1]:
            raise NonFiniteGenerator("the generator's output holds non-finite values")
        return super().evaluate(generator)


def _poison_generator_after(step: int, monkeypatch, weights: bool = True) -> None:
    """After the D step that brings the count to `step` (an evaluation step here), member 0's
    G holds NaN weights, or (weights=False) finite weights and statistics whose eval-mode
    output is NaN (a negative running variance), while every loss of the step was finite."""
    train_step = GANTraining.train_step

    def poisoned(self):
        train_step(self)
        if self.step == step:
            with torch.no_grad():
                if weights:
                    self.generator.blocks(self.generator.flat)[0][0] = math.nan  # first layer
                else:
                    variances = [b for n, b in self.generator.buffers.items() if "running_var" in n]
                    variances[0][0] = -1.0
        assert bool(torch.isfinite(self.last["g_loss"]).all())

    monkeypatch.setattr(GANTraining, "train_step", poisoned)


@pytest.mark.parametrize("weights", [True, False])
def test_a_generator_made_non_finite_on_an_evaluation_step_is_never_scored(
    tmp_path, monkeypatch, weights
):
    """Its losses were finite, yet G is broken at the checkpoint of step 13: it is recorded
    diverged there, keeps the checkpoint of step 7, and its images are never scored."""
    evaluator = _ScoresFiniteGenerators([30.0, 20.0, 10.0, 5.0])
    monkeypatch.setattr(loop, "_make_evaluator", lambda *args: evaluator)
    _poison_generator_after(13, monkeypatch, weights)
    result = run_trial(tiny(steps=20), tmp_path, progress=False)
    assert (result["status"], result["diverged_at"], result["d_steps"]) == ("diverged", 13, 13)
    # NaN weights are caught before evaluation; finite weights with a NaN output by the
    # evaluator, which refuses to score it.
    assert result["error"] == (
        "non-finite generator after D step 13"
        if weights
        else "non-finite generator output at D step 13"
    )
    assert evaluator.handed == ([True] if weights else [True, False])
    assert [c["d_steps"] for c in result["checkpoints"]] == [7]
    assert result["fid_min"] == 30.0 and result["fid_final"] is None
    assert not (tmp_path / "generator.pt").exists()


def test_failure_during_training_is_recorded(tmp_path, monkeypatch):
    def broken(self):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(GANTraining, "train_step", broken)
    result = run_trial(tiny(), tmp_path, progress=False)
    assert result["status"] == "failed" and "out of memory" in result["error"]
    assert "RuntimeError" in (tmp_path / "error.log").read_text()


def test_bad_values_are_refused_before_training():
    with pytest.raises(ConfigError, match=r"lr=-1\.0 is not allowed; expected a number > 0"):
        tiny(lr=-1.0)
    with pytest.raises(ConfigError, match="gamma"):
        tiny("began", gamma=1.5)
    with pytest.raises(ConfigError, match=r"epochs=2\.0 is not allowed; expected unset when steps"):
        tiny(epochs=2)
    with pytest.raises(ConfigError, match=r"eval_every_epochs=0\.1 .* at least one D step"):
        tiny(eval_every_epochs=0.1)  # 4.8 images of a 48-image epoch: less than a batch of 8


def test_length_defaults_to_the_datasets_reference_epochs():
    trial = resolve_trial("ns", "test_squares", batch_size=8, metrics=())
    assert (trial.epochs, trial.steps) == (20.0, None)  # DatasetSpec default: 20 epochs
    same = resolve_trial("ns", "test_squares", epochs=20, batch_size=8, metrics=())
    assert same.trial_id == trial.trial_id  # 20 and 20.0 are one length, one id


@pytest.mark.slow
def test_short_mnist_training_beats_the_untrained_generator():
    """300 D steps of NS on MNIST move G's mean image towards the data's.

    Statistic: RMS over pixels of (mean generated image - mean test image), on 500 samples.
    An untrained G draws ~0.5 gray everywhere (measured 0.41); after 300 steps it was 0.19.
    Threshold: at most 0.6 x the untrained value, a margin for other CPUs and BLAS builds,
    while a G that learned nothing stays at ~1.0 x. G samples in training mode: with the
    reference BN momentum (0.001) its running statistics have barely moved after 300 steps.
    """
    from benchmark.datasets import load_dataset

    if not os.environ.get("GANBENCH_DATA"):
        pytest.skip("GANBENCH_DATA is not set: this test trains on the staged MNIST")
    data = load_dataset("mnist")
    real_mean = (data.test[:1000].float() / 255).mean(0)
    trial = resolve_trial("ns", "mnist", steps=300, metrics=(), lr=2e-4, beta1=0.5)
    training = GANTraining(trial, data.train, torch.device("cpu"))

    def distance() -> float:
        z = step.uniform_z(500, 64, torch.Generator().manual_seed(1), torch.device("cpu"))
        with torch.no_grad():
            fake = training.g(z)
        return float((fake.mean(0) - real_mean).square().mean().sqrt())

    untrained = distance()
    for _ in range(300):
        training.train_step()
    assert math.isfinite(training.losses()[0]["d_loss"])
    assert distance() <= 0.6 * untrained, (distance(), untrained)


# ---- the tricks and the relativistic losses in the step --------------------------------------


def _spy_on_loss(training: GANTraining, **spies) -> None:
    """Replace some of the trial's loss functions by spies (the Loss itself is frozen)."""
    training.loss = dataclasses.replace(training.loss, **spies)


def test_label_smoothing_and_flipping_targets_in_a_step():
    """The exact targets D's loss sees on the first step of seed 0: drawn from the trial's
    generator after the real batch indices and z, real flips first."""
    trial = tiny("ns", label_smoothing=0.1, label_flip=0.25)
    training = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
    seen = []
    d_targets = training.loss.d_targets

    def spy(real, fake, real_target, fake_target, state):
        seen.append((real_target.clone(), fake_target.clone()))
        return d_targets(real, fake, real_target, fake_target, state)

    _spy_on_loss(training, d_targets=spy)
    training.train_step()
    (real_target, fake_target), *_ = seen
    assert real_target.tolist() == pytest.approx([0.9, 0.9, 0.9, 0, 0, 0, 0.9, 0.9])
    assert fake_target.tolist() == pytest.approx([0, 0, 0, 0, 0.9, 0.9, 0.9, 0])
    draws = torch.Generator().manual_seed(trial.seed)  # the step's draws, in order
    torch.randint(32, (8,), generator=draws)
    torch.rand(8, trial.z_dim, generator=draws)
    flip_real = torch.rand(8, generator=draws) < 0.25
    flip_fake = torch.rand(8, generator=draws) < 0.25
    assert torch.equal(real_target, torch.where(flip_real, 0.0, 0.9))
    assert torch.equal(fake_target, torch.where(flip_fake, 0.9, 0.0))


def test_without_tricks_the_loss_sees_no_targets():
    training = GANTraining(tiny("ns"), tiny_images(32, 0), torch.device("cpu"))
    _spy_on_loss(training, d_targets=None)  # would fail if the step asked for targets
    training.train_step()
    assert training.step == 1


@pytest.mark.parametrize("fresh", [True, False])
def test_relativistic_g_loss_gets_d_on_the_real_batch_g_sees(fresh):
    trial = tiny("ragan", resample_real_for_g=fresh, spectral_norm=False)
    training = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
    batches: list[torch.Tensor] = []
    real_batch = training.real_batch
    training.real_batch = lambda: batches.append(real_batch()) or batches[-1]
    d_inputs = _record_inputs(training.discriminator)
    g_calls = []
    g = training.loss.g

    def spy(fake, state, real):
        g_calls.append(real.detach().clone())
        return g(fake, state, real)

    _spy_on_loss(training, g=spy)
    training.train_step()
    # D runs on: real and fake (D update), then G(z) and a real batch (G update): the step's,
    # or a fresh one.
    assert len(batches) == 1 + fresh
    assert len(d_inputs) == 4 and torch.equal(d_inputs[3], batches[-1][0])
    (real_out,) = g_calls
    with torch.no_grad():
        expected = copy.deepcopy(training.d)(batches[-1][0])
    torch.testing.assert_close(real_out, expected)


def test_the_default_latent_is_uniform_and_normal_is_gaussian():
    for latent, low, high in (("uniform", -1.0, 1.0), ("normal", -math.inf, math.inf)):
        trial = tiny("ns", **({} if latent == "uniform" else {"latent": latent}))
        assert trial.latent == latent
        training = GANTraining(trial, tiny_images(32, 0), torch.device("cpu"))
        seen = _generator_inputs(training)
        training.train_step()
        draws = torch.Generator().manual_seed(trial.seed)
        torch.randint(32, (8,), generator=draws)
        expected = (
            torch.rand(8, trial.z_dim, generator=draws) * 2 - 1
            if latent == "uniform"
            else torch.randn(8, trial.z_dim, generator=draws)
        )
        torch.testing.assert_close(seen[0], expected, rtol=0, atol=0)
        assert low <= float(seen[0].min()) and float(seen[0].max()) <= high


@pytest.mark.parametrize(
    ("model", "option", "value", "loss"),
    [
        ("wgan_gp", "label_smoothing", 0.1, "wgan"),
        ("wgan", "label_flip", 0.05, "wgan"),
        ("hinge", "label_smoothing", 0.1, "hinge"),
        ("began", "label_flip", 0.1, "began"),
        ("rpgan", "label_smoothing", 0.1, "rsgan"),
        ("ragan", "label_flip", 0.1, "ragan"),
    ],
)
def test_a_trick_a_loss_cannot_take_is_refused(model, option, value, loss):
    with pytest.raises(ConfigError) as error:
        tiny(model, **{option: value})
    assert str(error.value) == (
        f"{option}={value!r} is not allowed; expected 0: loss {loss!r} has no real/fake "
        "targets (losses with targets: ['ls', 'mm', 'ns'])"
    )


def test_trick_values_are_checked():
    with pytest.raises(ConfigError, match=r"label_smoothing=1\.0 is not allowed; expected a nu"):
        tiny("ns", label_smoothing=1.0)
    with pytest.raises(ConfigError, match=r"label_flip=0\.6 is not allowed; expected a number in"):
        tiny("ls", label_flip=0.6)
    with pytest.raises(ConfigError, match=r"latent='cauchy' is not allowed; expected one of"):
        tiny("ns", latent="cauchy")
    # Every loss with targets takes both; the Gaussian latent suits every loss.
    for model in ("mm", "ns", "ls", "dragan"):
        assert tiny(model, label_smoothing=0.2, label_flip=0.1).label_flip == 0.1
    for model in ("wgan_gp", "began", "rsgan", "rpgan", "ns_r1"):
        assert tiny(model, latent="normal").latent == "normal"


@pytest.mark.parametrize("model", ["rsgan", "ragan", "rpgan", "ns_r1"])
def test_new_models_train_a_few_steps(model):
    training = GANTraining(tiny(model), tiny_images(32, 0), torch.device("cpu"))
    for _ in range(3):
        training.train_step()
    (losses,) = training.losses()  # one member
    assert (training.step, training.g_steps) == (3, 3)
    assert math.isfinite(losses["d_loss"]) and math.isfinite(losses["g_loss"])


def test_evaluation_draws_z_from_the_trials_latent():
    images = tiny_images(16, 2)
    for latent, bound in (("uniform", 1.0), ("normal", None)):
        trial = tiny("ns", latent=latent, metrics=("polygon",), polygon_n_precision=50)
        evaluator = loop._make_evaluator(trial, images, torch.device("cpu"), None, False)
        assert evaluator.polygon.z_bound == bound
        draws = torch.Generator().manual_seed(0)  # the evaluator's fixed z seed
        if latent == "uniform":
            expected = torch.rand(50, 64, generator=draws) * 2 - 1
        else:
            expected = torch.randn(50, 64, generator=draws)
        assert torch.equal(evaluator.z, expected)

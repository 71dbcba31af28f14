"""A population trains many trials as one program, each exactly what it would be alone."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from benchmark.training import loop
from benchmark.training.loop import run_population, run_trial
from benchmark.training.population import population_key
from benchmark.training.stacked import StackedAdam, StackedNetwork
from benchmark.training.step import GANTraining
from tests.helpers import tiny, tiny_images

CPU = torch.device("cpu")
# Two members far apart: lr and beta1 differ by two orders of magnitude, and every other
# per-member number (seed, clip, lambda, gamma) differs too.
MEMBERS = ({"lr": 2e-4, "beta1": 0.5, "seed": 1}, {"lr": 2e-6, "beta1": 0.005, "seed": 2})
PER_MODEL = {
    "ns": ({}, {}),
    "wgan": ({"clip": 0.01}, {"clip": 0.1}),
    "wgan_gp": ({"lam": 10.0}, {"lam": 0.1}),
    "dragan": ({"lam": 10.0}, {"lam": 1.0}),
    "began": ({"gamma": 0.5, "lambda_k": 1e-3}, {"gamma": 0.9, "lambda_k": 1e-2}),
    # Fresh z and real batch for G from each member's own stream, R1 + R2 (and R1 alone).
    "rpgan": ({"lam": 0.0125, "beta2": 0.9}, {"lam": 1.0, "beta2": 0.99}),
    "ns_r1": ({"lam": 5.0}, {"lam": 0.1}),
}
STEPS = 20
# The bar for "the same trial", after 20 steps in float64: a member's weights, its networks'
# outputs (training and eval mode, so the batch-norm statistics too), its losses and loss
# state equal those of its trial alone to 1e-9 relative. The two runs call the same
# member-batched kernels; at this batch (8) the elementwise kernels compute a member's last
# elements on another path than alone (benchmark/training/stacked_layers.py: at a batch that is a
# multiple of 32 the bits are the same, tests/training/test_stacked_layers.py), so only rounding
# differs (about 1e-16 per operation). Measured after 20 steps: below 3e-14 without batch norm in D
# (wgan_gp, began), 2e-11 for clipped wgan, up to 5e-10 for ns and dragan (batch norm in D
# amplifies round-off of values near zero). Any real difference of a step (another z, lr or
# neighbour's gradient) moves weights by about lr, three orders of magnitude above the bar.
# Not compared: the bias of a layer followed by batch norm, which the norm subtracts again:
# its gradient is zero up to round-off, which Adam scales up to moves of about 1e-10 that
# differ between the two runs, and which no output can see.
TOLERANCE = 1e-9


def _trials(model: str, size: int = 2, **common) -> list:
    """`size` members alternating between the two far-apart settings, each its own seed."""
    return [
        tiny(model, **{**MEMBERS[i % 2], "seed": i + 1}, **PER_MODEL[model][i % 2], **common)
        for i in range(size)
    ]


def _train(trials, steps: int = STEPS) -> GANTraining:
    training = GANTraining(trials, tiny_images(64, 0), CPU)
    for _ in range(steps):
        training.train_step()
    return training


def _state(training: GANTraining, i: int) -> dict[str, torch.Tensor]:
    state = training.member_state(i)
    tensors = {f"g.{k}": v for k, v in state["g"].items()}
    tensors.update({f"d.{k}": v for k, v in state["d"].items()})
    tensors.update({f"loss_state.{k}": v for k, v in state["loss_state"].items()})
    return tensors


def _cancelled_by_batch_norm(prefix: str, network: torch.nn.Module) -> set[str]:
    """Biases of layers directly followed by batch norm (and that norm's running mean)."""
    names = set()
    for name, module in network.named_modules():
        layers = list(module.children()) if isinstance(module, torch.nn.Sequential) else []
        for index, (layer, after) in enumerate(zip(layers, layers[1:], strict=False)):
            if isinstance(after, torch.nn.modules.batchnorm._BatchNorm) and layer.bias is not None:
                names.add(f"{prefix}.{name}.{index}.bias")
                names.add(f"{prefix}.{name}.{index + 1}.running_mean")
    return names


def _outputs(training: GANTraining, i: int) -> dict[str, torch.Tensor]:
    """Member i's G and D on fixed inputs, in training and in eval mode."""
    z = torch.rand(16, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    x = tiny_images(16, 3).double() / 255
    out = {}
    for mode in (True, False):
        g = copy.deepcopy(training.generator.member_module(i)).train(mode)
        d = copy.deepcopy(training.discriminator.member_module(i)).train(mode)
        with torch.no_grad():
            out[f"G train={mode}"] = g(z)
            out[f"D train={mode}"] = d(x)
    return out


def _relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


@pytest.mark.parametrize("size", [3, 16])
@pytest.mark.parametrize("model", sorted(PER_MODEL))
def test_a_member_trains_as_its_trial_alone(model, size, float64):
    if size == 16 and model not in ("ns", "wgan_gp", "began"):
        pytest.skip("size 16 for one model of each kind: plain, penalised, autoencoder D")
    trials = _trials(model, size)
    assert len({population_key(t) for t in trials}) == 1
    population = _train(trials)
    assert population.generator.flat.dtype == torch.float64
    invisible = _cancelled_by_batch_norm("g", population.g) | _cancelled_by_batch_norm(
        "d", population.d
    )
    for i, trial in enumerate(trials):
        alone = _train([trial])
        mine, theirs = _state(population, i), _state(alone, 0)
        assert mine.keys() == theirs.keys()
        compared = [k for k in theirs if k not in invisible and "num_batches" not in k]
        mine.update(_outputs(population, i))
        theirs.update(_outputs(alone, 0))
        compared += [k for k in theirs if k.startswith(("G ", "D "))]
        worst = max(_relative_difference(mine[k], theirs[k]) for k in compared)
        assert worst <= TOLERANCE, (model, i, worst)
        for name, value in population.losses()[i].items():
            assert value == pytest.approx(alone.losses()[0][name], rel=TOLERANCE, abs=1e-15)
        assert (population.step, population.g_steps) == (alone.step, alone.g_steps)
    # The members did differ: the test can tell one member from the other.
    first, second = _state(population, 0), _state(population, 1)
    assert _relative_difference(first["g.fc.0.weight"], second["g.fc.0.weight"]) > 1e-3


def _planted(lr: float, size: int = 3) -> list:
    """Members whose second one's lr makes its weights overflow within a few steps."""
    others = [tiny("ns", seed=i + 1, lr=1e-3 * 0.9**i) for i in range(size)]
    return [others[0], tiny("ns", seed=2, lr=lr), *others[2:]]


@pytest.mark.parametrize("size", [3, 16])
def test_a_diverging_member_leaves_its_neighbours_bit_for_bit_unchanged(size):
    healthy = _train(_planted(1e-3, size))
    planted = _train(_planted(1e38, size))
    assert healthy.finite.all()
    assert planted.finite.tolist() == [True, False] + [True] * (size - 2)
    assert 0 < int(planted.diverged_at[1]) <= STEPS
    for i in [0, *range(2, size)]:
        mine, theirs = _state(planted, i), _state(healthy, i)
        for name in theirs:
            assert torch.equal(mine[name], theirs[name]), (i, name)


def test_a_diverged_member_is_recorded_and_the_others_finish(tmp_path):
    trials = _planted(1e38)
    results = run_population(trials, [tmp_path / str(i) for i in range(3)], progress=False)
    assert [r["status"] for r in results] == ["ok", "diverged", "ok"]
    assert results[1]["diverged_at"] >= 1 and results[1]["d_steps"] < 12
    assert [r["trial_id"] for r in results] == [t.trial_id for t in trials]
    alone = run_trial(trials[0], tmp_path / "alone", progress=False)
    assert results[0]["d_steps"] == alone["d_steps"] == 12
    assert not (tmp_path / "1" / "generator.pt").exists()


def test_member_results_have_the_form_of_a_trial_alone(tmp_path):
    trials = _trials(
        "wgan_gp", metrics=("fid",), feature_extractor="tiny", fid_n_real=32, fid_n_fake=32
    )
    together = run_population(trials, [tmp_path / "p0", tmp_path / "p1"], progress=False)
    alone = run_trial(trials[1], tmp_path / "alone", progress=False)
    assert together[1].keys() == alone.keys()
    assert together[1]["trial_id"] == alone["trial_id"] == trials[1].trial_id
    same = ("status", "d_steps", "g_steps", "images_seen", "diverged_at")
    assert {k: together[1][k] for k in same} == {k: alone[k] for k in same}
    assert (together[1]["population"], alone["population"]) == (2, 1)
    for name in ("trial.json", "result.json", "metrics.jsonl", "samples.png", "generator.pt"):
        assert (tmp_path / "p1" / name).exists(), name
    stored = json.loads((tmp_path / "p1" / "trial.json").read_text())
    assert stored == trials[1].to_dict()
    a = torch.load(tmp_path / "p1" / "generator.pt", weights_only=True)
    b = torch.load(tmp_path / "alone" / "generator.pt", weights_only=True)
    for name, tensor in b.items():  # float32 now: the same trial to float32 round-off
        torch.testing.assert_close(a[name], tensor, rtol=1e-4, atol=1e-6, msg=name)


def _kill_after_saves(monkeypatch, count: int) -> list[int]:
    """The process dies right after the `count`-th checkpoint rename (the members' checkpoints
    of a step are staged first, then renamed one by one)."""
    real_commit = loop.commit_checkpoints
    calls = []

    def commit_then_maybe_die(staged):
        for index, (tmp, path) in enumerate(staged):
            real_commit([(tmp, path)])
            calls.append(loop.load_checkpoint(path, CPU)["training"]["step"])
            if len(calls) == count:
                for rest, _ in staged[index + 1 :]:
                    rest.unlink()  # as the killed process would leave them, removed on rerun
                raise KeyboardInterrupt

    monkeypatch.setattr(loop, "commit_checkpoints", commit_then_maybe_die)
    return calls


def _generators(tmp_path, prefix: str, size: int = 2) -> list[dict[str, torch.Tensor]]:
    return [torch.load(tmp_path / f"{prefix}{i}" / "generator.pt") for i in range(size)]


@pytest.mark.parametrize("size", [1, 3, 16])
def test_a_killed_population_resumes_to_the_same_weights(tmp_path, monkeypatch, size):
    trials = _trials("began", size)
    run_population(trials, [tmp_path / f"s{i}" for i in range(size)], progress=False)
    calls = _kill_after_saves(monkeypatch, size)
    with pytest.raises(KeyboardInterrupt):
        run_population(trials, [tmp_path / f"k{i}" for i in range(size)], progress=False)
    assert calls == [7] * size  # every member checkpointed at step 7, then the process died
    monkeypatch.undo()
    resumed = run_population(trials, [tmp_path / f"k{i}" for i in range(size)], progress=False)
    assert [r["d_steps"] for r in resumed] == [12] * size
    for straight, killed in zip(
        _generators(tmp_path, "s", size), _generators(tmp_path, "k", size), strict=True
    ):
        for name, tensor in straight.items():
            assert torch.equal(killed[name], tensor), name


@pytest.mark.parametrize(
    "options",
    [
        {"steps": 6},
        # walks reshuffled every epoch (benchmark/training/order.py): the 256 images in 8
        # batches and a pool of 64 z in 2, so that both pass an epoch boundary
        {"steps": 10, "data_order": "epochs", "latent_pool": 64},
    ],
    ids=["draws", "walks"],
)
def test_members_killed_between_their_checkpoints_resume_apart(tmp_path, monkeypatch, options):
    """Member 0 saved its checkpoint, member 1 had not: they resume as two populations of one
    (from that step and from 0), and end with the bits of the population never killed (at a
    batch that is a multiple of 32, a member's bits do not depend on its population)."""
    trials = _trials("ns", batch_size=32, **options)
    steps = options["steps"]
    run_population(trials, [tmp_path / "s0", tmp_path / "s1"], progress=False)
    calls = _kill_after_saves(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):
        run_population(trials, [tmp_path / "k0", tmp_path / "k1"], progress=False)
    assert 0 < calls[0] < steps
    monkeypatch.undo()
    built = []
    real = loop.GANTraining
    monkeypatch.setattr(
        loop, "GANTraining", lambda p, *a, **k: built.append(len(p)) or real(p, *a, **k)
    )
    resumed = run_population(trials, [tmp_path / "k0", tmp_path / "k1"], progress=False)
    assert built == [1, 1] and [r["d_steps"] for r in resumed] == [steps, steps]
    for straight, killed in zip(
        _generators(tmp_path, "s"), _generators(tmp_path, "k"), strict=True
    ):
        for name, tensor in straight.items():
            assert torch.equal(killed[name], tensor), name


def test_a_finished_member_is_returned_not_rerun(tmp_path, monkeypatch):
    trials = _trials("ns")
    first = run_trial(trials[0], tmp_path / "a", progress=False)
    built = []
    real = loop.GANTraining

    def spy(population, *args, **kwargs):
        built.append(len(population))
        return real(population, *args, **kwargs)

    monkeypatch.setattr(loop, "GANTraining", spy)
    results = run_population(trials, [tmp_path / "a", tmp_path / "b"], progress=False)
    assert built == [1] and results[0] == first  # only the unfinished member trained


def test_population_keys_separate_structure_from_numbers():
    a, b = tiny("ns", lr=1e-4, seed=1), tiny("ns", lr=3e-3, beta1=0.9, seed=7)
    assert population_key(a) == population_key(b)
    for other in (
        tiny("ns", n_disc=2),
        tiny("ns", batch_size=16),
        tiny("ls"),
        tiny("ns", d_bn=False),
        tiny("ns", steps=24),
        dataclasses.replace(a, metrics=("polygon",)),
    ):
        assert population_key(other) != population_key(a)
    # Options the member-batched layers lack keep a trial alone.
    solo = tiny("ns", spectral_norm=True)
    assert population_key(solo) != population_key(dataclasses.replace(solo, seed=5))
    with pytest.raises(ValueError, match="share every structural field"):
        GANTraining([a, tiny("ls")], tiny_images(32, 0), CPU)


@pytest.mark.parametrize("size", [1, 3])
def test_stacked_adam_is_torch_adam_for_each_member(size):
    """Per-member lr, beta1, beta2: given each member's gradients, its weights after three
    steps are bit for bit those of torch.optim.Adam (single-tensor) on that member alone."""
    torch.manual_seed(0)
    nets = [torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Linear(4, 2)) for _ in range(size)]
    lrs, beta1s, beta2s = (
        [1e-2, 1e-4, 3e-3][:size],
        [0.5, 0.0, 0.9][:size],
        [0.999, 0.9, 0.99][:size],
    )
    references = [copy.deepcopy(n) for n in nets]
    optimisers = [
        torch.optim.Adam(r.parameters(), lr=lr, betas=(b1, b2), foreach=False)
        for r, lr, b1, b2 in zip(references, lrs, beta1s, beta2s, strict=True)
    ]
    stacked = StackedNetwork(nets)
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    adam = StackedAdam(stacked, as_tensor(lrs), as_tensor(beta1s), as_tensor(beta2s))
    for step in range(3):
        x = torch.randn(size, 7, 5, generator=torch.Generator().manual_seed(step))
        for reference, optimiser, batch in zip(references, optimisers, x, strict=True):
            optimiser.zero_grad()
            reference(batch).square().sum().backward()
            optimiser.step()
        # The same gradients for the stacked copy, laid out as its flat weights are: member
        # by member, parameter after parameter.
        grads = [dict(r.named_parameters()) for r in references]
        grad = torch.cat(
            [torch.stack([g[name].grad for g in grads]).flatten(1) for name in stacked.names],
            dim=1,
        )
        adam.advance()
        adam.step(grad.flatten())
    for i, reference in enumerate(references):
        state = stacked.member_state(i)
        for name, tensor in reference.state_dict().items():
            assert torch.equal(state[name], tensor), (i, name)

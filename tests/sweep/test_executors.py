"""The local executor: CPU cores split between workers, and trials grouped into populations."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

import tests.helpers  # noqa: F401 - registers the test_squares dataset
from benchmark.cli import main
from benchmark.models import resolve_trial
from benchmark.sweep import executors
from benchmark.sweep.executors import threads_per_worker
from benchmark.training import build, loop, population, trial_dir
from tests.helpers import marker_counts, tiny_spec


def test_threads_per_worker_splits_the_cores():
    assert threads_per_worker(1, cores=2, limit="") == 2
    assert threads_per_worker(2, cores=2, limit="") == 1
    assert threads_per_worker(3, cores=2, limit="") == 1  # never zero
    assert threads_per_worker(2, cores=16, limit="") == 8
    assert threads_per_worker(4, cores=18, limit="") == 4  # cores // workers
    # $OMP_NUM_THREADS, when set, caps every worker.
    assert threads_per_worker(1, cores=16, limit="4") == 4
    assert threads_per_worker(1, cores=2, limit="8") == 2
    assert threads_per_worker(1, cores=2, limit="x") == 2  # not a number: ignored


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (2, 4, 2)])
def test_cpu_workers_record_their_thread_count(tmp_path, monkeypatch, workers, cores, threads):
    """1 worker on 2 cores runs in this process with 2 threads; 2 workers get 1 each (2 each
    on 4 cores); every result.json says so in cpu_threads."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors, "available_cores", lambda: cores)
    extra = f"[local]\ncpu_workers = {workers}\n"
    spec = tiny_spec(tmp_path / "t.toml", models=("ns",), seeds=2, steps=2, eval_every=2,
                     extra=extra)  # fmt: skip
    assert main(["sweep", str(spec), "--no-progress", "--no-report"]) == 0
    frame = pd.read_csv(tmp_path / "t" / "results.csv")
    assert list(frame["status"]) == ["ok", "ok"]
    assert list(frame["cpu_threads"]) == [threads, threads]


# ---- populations ------------------------------------------------------------------------------


def _tasks(tmp_path, trials):
    return [(trial, tmp_path / trial.trial_id) for trial in trials]


def test_populations_group_only_trials_of_one_structure(tmp_path):
    trials = [
        resolve_trial("ns", "mnist", steps=4, seed=0, metrics=()),
        resolve_trial("wgan", "mnist", steps=4, seed=0, metrics=()),
        resolve_trial("ns", "mnist", steps=4, seed=1, lr=1e-3, metrics=()),
        resolve_trial("ns", "mnist", steps=8, seed=2, metrics=()),  # another schedule
        resolve_trial("ns", "mnist", steps=4, seed=3, beta1=0.9, metrics=()),
        resolve_trial("wgan", "mnist", steps=4, seed=1, clip=0.1, metrics=()),
    ]
    groups = population.populations(_tasks(tmp_path, trials), 2, "cpu")
    seeds = [[(t.model, t.steps, t.seed) for t, _ in group] for group in groups]
    # The first population of every structure, then the second: each compiled once.
    assert seeds == [
        [("ns", 4, 0), ("ns", 4, 1)],
        [("wgan", 4, 0), ("wgan", 4, 1)],
        [("ns", 8, 2)],
        [("ns", 4, 3)],
    ]
    assert [len(g) for g in population.populations(_tasks(tmp_path, trials), 1, "cpu")] == [1] * 6
    assert population.auto_size(trials[0], "cpu") == 1  # InfoGAN networks on a CPU: alone


def _recording_populations(monkeypatch) -> list[list[int]]:
    """The seeds of every population the trainer builds."""
    built = []
    real = loop.GANTraining

    def spy(population, *args, **kwargs):
        built.append(sorted(t.seed for t in population))
        return real(population, *args, **kwargs)

    monkeypatch.setattr(loop, "GANTraining", spy)
    return built


def test_a_population_leaves_out_a_member_another_process_holds(tmp_path, monkeypatch):
    trials = [
        resolve_trial("ns", "test_squares", steps=3, batch_size=8, seed=s, metrics=())
        for s in range(3)
    ]
    tasks = _tasks(tmp_path, trials)
    built = _recording_populations(monkeypatch)
    with trial_dir.claim(tasks[1][1], wait=False) as held:  # another sweep runs seed 1
        assert held
        outcomes = executors.run_claimed_population(tasks, executors.RunContext(progress=False))
    assert built == [[0, 2]]
    assert outcomes[1] is None and not (tasks[1][1] / "result.json").exists()
    assert [outcomes[i]["status"] for i in (0, 2)] == ["ok", "ok"]
    # Run again: the finished members are returned, only seed 1 trains.
    outcomes = executors.run_claimed_population(tasks, executors.RunContext(progress=False))
    assert built == [[0, 2], [1]] and [o["status"] for o in outcomes] == ["ok"] * 3


@pytest.mark.usefixtures("plugin")
def test_a_sweep_trains_compatible_trials_as_populations(tmp_path, monkeypatch):
    spec = tiny_spec(tmp_path / "t.toml", models=("ns", "wgan"), seeds=3, steps=2, eval_every=2,
                     extra="population = 2\n")  # fmt: skip
    built = _recording_populations(monkeypatch)
    assert main(["sweep", str(spec), "--no-progress", "--no-report"]) == 0
    assert built == [[0, 1], [0, 1], [2], [2]]  # ns, wgan, then each one's second
    frame = pd.read_csv(tmp_path / "t" / "results.csv")
    assert list(frame["status"]) == ["ok"] * 6
    assert set(marker_counts(tmp_path / "t").values()) == {(1, 1)}  # each trained once
    # The same sweep from the command line, one at a time: nothing trains again.
    assert main(["sweep", str(spec), "--no-progress", "--no-report", "--population", "1"]) == 0
    assert len(built) == 4


def test_population_sizes_are_checked(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('datasets = ["mnist"]\nmodels = ["ns"]\npopulation = 0\n')
    assert main(["sweep", str(spec), "--dry-run"]) == 2
    assert "population=0 is not allowed" in capsys.readouterr().err


def test_auto_size_fills_half_the_total_gpu_memory(monkeypatch):
    trial = resolve_trial("ns", "mnist", metrics=())
    g, d = build.build_networks(trial, (1, 28, 28), torch.device("cpu"))
    parameters = sum(p.numel() for p in (*g.parameters(), *d.parameters()))
    # Activations of a batch of 64, by hand: G 1024 + 1024 + 1024 (FC, BN, LReLU), 3 x 6272,
    # 3 x 64*14*14 (deconv, BN, LReLU), 2 x 784 (deconv, sigmoid); D 64*14*14 x 2 (conv,
    # LReLU), 128*7*7 x 3 (conv, BN, LReLU), 6272 (flatten), 1024 x 3, 1 (FC).
    g_acts = 3 * 1024 + 3 * 6272 + 3 * 64 * 14 * 14 + 2 * 784
    d_acts = 2 * 64 * 14 * 14 + 3 * 128 * 7 * 7 + 6272 + 3 * 1024 + 1
    expected = 4 * (4 * parameters + 8 * 64 * (g_acts + d_acts))
    assert population.member_bytes(trial) == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    total = {"memory": 10 * expected}
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda index: SimpleNamespace(total_memory=total["memory"]),
    )
    # Free memory (what other processes hold at the moment) never changes the grouping.
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (expected, 10 * expected))
    assert population.auto_size(trial, "cuda") == 5
    total["memory"] = 10**15
    assert population.auto_size(trial, "cuda") == 64  # the cap
    assert population.auto_size(trial, "cpu") == 1


def test_auto_size_on_a_cpu_is_the_benchs_choice_per_family():
    """Point and MLP networks in populations of 16, the InfoGAN ones alone; and alone
    whatever the family at a batch on which a member would round otherwise than alone."""
    sizes = {}
    for generator, discriminator, dataset in [
        ("points", "points", "grid"),
        ("mlp", "mlp", "mnist"),
        ("infogan", "infogan", "mnist"),
    ]:
        for batch in (64, 32, 16):
            trial = resolve_trial(
                "ns", dataset, generator=generator, discriminator=discriminator,
                batch_size=batch, metrics=(),
            )  # fmt: skip
            sizes[generator, batch] = population.auto_size(trial, "cpu")
    assert sizes == {
        ("points", 64): 16, ("points", 32): 16, ("points", 16): 1,
        ("mlp", 64): 16, ("mlp", 32): 16, ("mlp", 16): 1,
        ("infogan", 64): 1, ("infogan", 32): 1, ("infogan", 16): 1,
    }  # fmt: skip


def test_a_conditional_member_is_sized_with_its_labels():
    """G(z, y) and D(x, y): the label embeddings' weights count, the sizing runs."""
    plain = resolve_trial("ns", "grid", generator="points", discriminator="points", metrics=())
    conditional = resolve_trial(
        "ns", "grid", generator="points", discriminator="points", metrics=(), conditional=True
    )
    cpu = torch.device("cpu")

    def parameters(trial) -> int:
        networks = build.build_networks(trial, (2,), cpu)
        return sum(p.numel() for network in networks for p in network.parameters())

    added = parameters(conditional) - parameters(plain)
    assert added > 0  # the label embeddings
    # Four float32 copies of each added weight, and the labels' activations on top.
    grown = population.member_bytes(conditional) - population.member_bytes(plain)
    assert grown >= 16 * added and (grown - 16 * added) % (4 * 8) == 0

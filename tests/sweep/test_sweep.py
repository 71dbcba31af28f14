"""Sweep planning, the seeds phase, results.csv, and in-process runs on a tiny dataset."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.config import TrialConfig
from benchmark.files import read_json, write_json
from benchmark.models import PAPER_MODELS, resolve_trial
from benchmark.results import result_row
from benchmark.schedule import trial_schedule
from benchmark.sweep.plan import best_settings, plan, seed_sets
from benchmark.sweep.run import summary
from benchmark.sweep.spec import load_spec
from benchmark.training.population import populations
from benchmark.training.trial_dir import claim
from tests.helpers import REPO, marker_counts, tiny_spec

# ---- planning ----------------------------------------------------------------------------


def test_quick_spec_plan():
    """runs/quick.toml, what `nox -s sweep` runs: the seven models on the ring, 12 settings of
    the mixture space each, one seed, 2,500 D steps of batch 256 of the point networks, scored
    by the mixture metrics and ranked by W1; 84 trials in populations of 6: the first 12
    settings of the committed ring study (runs/mixtures-ring.toml)."""
    spec = load_spec(REPO / "runs" / "quick.toml")
    assert (spec.space, spec.samples, spec.seeds, spec.networks) == ("mixture", 12, (0,), "points")
    assert (spec.metric, spec.direction, spec.device, spec.population) == ("w1", "min", None, 6)
    assert spec.datasets == ("ring",) and spec.executor_options["local"]["cpu_workers"] == 2
    trials = plan(spec)
    assert len(trials) == 84 and len({t.trial_id for t in trials}) == 84
    assert sum(t.steps for t in trials) == 210_000
    assert [t.model for t in trials[:7]] == list(spec.models)  # slowest first
    for trial in trials:
        assert (trial.sweep, trial.phase, trial.steps, trial.batch_size) == (
            "quick",
            "narrow",
            2500,
            256,
        )
        assert trial_schedule(trial).eval_steps == [1954, 2500]  # every 5 epochs, and the end
        ae = "points_began" if trial.model == "began" else "points"
        assert (trial.generator, trial.discriminator) == ("points", ae)
        assert (trial.beta1, trial.n_disc, trial.d_bn) == (0.5, 1, False)
        assert 10**-3.5 <= trial.lr <= 10**-2.5 and trial.metrics == ("mixture",)
        if trial.model in ("wgan_gp", "dragan"):
            assert 0.1 <= trial.lam <= 10
    counts = pd.Series([t.model for t in trials]).value_counts()
    assert set(counts) == {12}
    # Each model's 12 trials share their structure: two populations of 6.
    assert sorted(len(p) for p in populations([(t, None) for t in trials], 6, "cpu")) == [6] * 14
    # the committed ring study's first 12 settings of each model
    study = plan(load_spec(REPO / "runs" / "mixtures-ring.toml"))
    assert len(study) == 350
    first = {(t.model, t.sample): t.lr for t in study if t.sample < 12}
    assert {(t.model, t.sample): t.lr for t in trials} == first


def test_polygons_quick_spec_plan():
    """runs/polygons-quick.toml, the polygon demonstration: the seven models, 3 settings of
    the quick space each, one seed, 3,000 D steps of the MLP networks: 21 trials, 63,000 D
    steps."""
    spec = load_spec(REPO / "runs" / "polygons-quick.toml")
    assert (spec.space, spec.samples, spec.seeds, spec.networks) == ("quick", 3, (0,), "mlp")
    assert spec.executor_options["local"]["cpu_workers"] == 2
    trials = plan(spec)
    assert len(trials) == 21 and len({t.trial_id for t in trials}) == 21
    assert [(t.sample, t.model, t.seed) for t in trials[:3]] == [
        (0, "began", 0), (0, "wgan_gp", 0), (0, "dragan", 0),
    ]  # fmt: skip
    assert trials[-1].model == "ns"  # slowest first: the last trial, alone, is a short one
    assert sum(t.steps for t in trials) == 63_000
    for trial in trials:
        assert trial.model in PAPER_MODELS and trial.sample in (0, 1, 2) and trial.seed == 0
        assert (trial.sweep, trial.phase, trial.steps) == ("polygons-quick", "narrow", 3000)
        assert trial_schedule(trial).eval_steps == [3000]  # one evaluation, at the end
        ae = "mlp_began" if trial.model == "began" else "mlp"
        assert (trial.generator, trial.discriminator) == ("mlp", ae)
        assert (trial.beta1, trial.n_disc, trial.d_bn) == (0.5, 1, False)
        assert 10**-3.7 <= trial.lr <= 1e-3
        assert trial.metrics == ("polygon",) and trial.bn_momentum == 0.1
        sizes = (trial.polygon_n_precision, trial.polygon_n_recall, trial.polygon_steps)
        assert sizes == (1000, 100, 50)
        if trial.model == "dragan":  # its own lambda range in the quick space
            assert 0.01 <= trial.lam <= 10**-1.5
        if trial.model == "wgan_gp":
            assert 0.1 <= trial.lam <= 10
    # Three different settings per model.
    assert len({t.lr for t in trials if t.model == "ns"}) == 3


def test_wide_plan_is_sample_major_and_deterministic(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('phase = "wide"\ndatasets = ["mnist"]\nmodels = ["ns", "wgan"]\nsamples = 3\n')
    trials = plan(load_spec(path))
    assert [(t.sample, t.model) for t in trials] == [
        (0, "ns"), (0, "wgan"), (1, "ns"), (1, "wgan"), (2, "ns"), (2, "wgan"),
    ]  # fmt: skip
    assert [t.trial_id for t in plan(load_spec(path))] == [t.trial_id for t in trials]
    assert trials[0].lr == 5e-5 and trials[1].clip == 0.01  # sample 0: the presets
    assert all(t.phase == "wide" and t.sweep == "w" for t in trials)


def test_spec_fields_win_over_the_space(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(
        'phase = "wide"\ndatasets = ["mnist"]\nmodels = ["ns"]\nsamples = 4\nd_bn = false\n'
    )
    assert [t.d_bn for t in plan(load_spec(path))] == [False] * 4


# ---- the seeds phase ---------------------------------------------------------------------


def fake_sweep(directory: Path, scores: dict[tuple[str, int, int], float], metric="fid_min"):
    """A finished sweep: result.json per (model, sample, seed) with the given metric."""
    for (model, sample, seed), value in scores.items():
        trial = resolve_trial(
            model, "mnist", sweep=directory.name, phase="wide", sample=sample, seed=seed,
            lr=1e-4 * (sample + 1),
        )  # fmt: skip
        status = "diverged" if math.isnan(value) else "ok"
        record = {**trial.to_dict(), "trial_id": trial.trial_id, "status": status, "error": ""}
        record[metric] = value
        write_json(directory / "trials" / trial.trial_id / "result.json", record)


def seeds_spec(path: Path, source: Path, extra: str = "") -> Path:
    path.write_text(
        f'phase = "seeds"\nfrom = "{source}"\ndatasets = ["mnist"]\nmodels = ["ns", "wgan"]\n'
        f"select_seeds = 2\nreport_seeds = 3\n{extra}"
    )
    return path


def test_seeds_phase_reruns_the_best_setting_on_fresh_seeds(tmp_path):
    source = tmp_path / "runs" / "mnist-wide"
    # ns: sample 2 is best by its mean over seeds 0 and 4 (20.0) though sample 1 has the
    # single best trial (10.0, with 50.0 on the other seed: mean 30.0).
    fake_sweep(
        source,
        {
            ("ns", 0, 0): 40.0, ("ns", 0, 4): 40.0,
            ("ns", 1, 0): 10.0, ("ns", 1, 4): 50.0,
            ("ns", 2, 0): 20.0, ("ns", 2, 4): 20.0,
            ("wgan", 0, 0): 30.0, ("wgan", 0, 4): 30.0,
            ("wgan", 1, 0): math.nan, ("wgan", 1, 4): 1.0,
        },
    )  # fmt: skip
    spec = load_spec(seeds_spec(tmp_path / "runs" / "mnist-seeds.toml", source))
    trials = plan(spec)
    ns = [t for t in trials if t.model == "ns"]
    wgan = [t for t in trials if t.model == "wgan"]
    assert {t.sample for t in ns} == {2} and {t.lr for t in ns} == {1e-4 * 3}
    # wgan: sample 1 has the better mean over its scored seed (1.0), but its other seed went
    # unscored; the one rule (benchmark/best_setting.py, as the report's) ranks it after sample 0.
    assert {t.sample for t in wgan} == {0}
    for group in (ns, wgan):
        select = [t.seed for t in group if t.seed_role == "select"]
        report = [t.seed for t in group if t.seed_role == "report"]
        assert select == [0, 1]
        assert report == [5, 6, 7]  # after the source's seeds (0, 4) and the select seeds
        assert {t.phase for t in group} == {"seeds"}
        assert len({t.extra["from_trial"] for t in group}) == 1
    # Seed-major order, models interleaved.
    assert [t.model for t in trials[:4]] == ["ns", "wgan", "ns", "wgan"]


def test_seeds_phase_by_a_maximised_metric(tmp_path):
    source = tmp_path / "src"
    fake_sweep(source, {("ns", 0, 0): 0.2, ("ns", 1, 0): 0.9, ("wgan", 0, 0): 0.5}, "f1")
    best = best_settings(source, "f1", "max")
    assert best[("mnist", "ns")]["sample"] == 1
    assert best[("mnist", "ns")]["f1"] == 0.9
    spec = load_spec(seeds_spec(tmp_path / "s.toml", source, 'metric = "f1"\n'))
    assert spec.direction == "max"
    assert {t.sample for t in plan(spec) if t.model == "ns"} == {1}


def test_seeds_phase_refuses_a_model_without_results(tmp_path):
    source = tmp_path / "src"
    fake_sweep(source, {("ns", 0, 0): 1.0})
    spec = load_spec(seeds_spec(tmp_path / "s.toml", source))
    with pytest.raises(Exception, match=r"s\.toml: from=.*mnist/wgan"):
        plan(spec)


def test_seed_sets_are_disjoint():
    assert seed_sets([0], 0, 3) == ([], [1, 2, 3])
    assert seed_sets([0, 9], 5, 2) == ([0, 1, 2, 3, 4], [10, 11])
    assert seed_sets([], 2, 2) == ([0, 1], [2, 3])


def test_summary_reports_only_report_seeds():
    frame = pd.DataFrame(
        {
            "dataset": ["mnist"] * 4,
            "model": ["ns"] * 4,
            "seed_role": ["select", "select", "report", "report"],
            "status": ["ok", "ok", "ok", "failed"],
            "fid_min": [1.0, 2.0, 7.0, math.nan],
        }
    )
    table = summary(frame, "fid_min", "min")
    row = table.loc[("mnist", "ns")]
    assert (row["trials"], row["ok"], row["failed"]) == (2, 1, 1)
    assert row["best fid_min"] == 7.0 and row["median fid_min"] == 7.0


def test_summary_keeps_ablation_variants_apart():
    frame = pd.DataFrame(
        {
            "dataset": ["polygons"] * 4,
            "model": ["ns"] * 4,
            "extra_variant": ["none", "none", "smooth", "smooth"],
            "status": ["ok"] * 4,
            "f1": [0.2, 0.4, 0.5, 0.1],
        }
    )
    table = summary(frame, "f1", "max")
    assert list(table.index) == [("polygons", "ns", "none"), ("polygons", "ns", "smooth")]
    assert list(table["best f1"]) == [0.4, 0.5]
    assert list(table["trials"]) == [2, 2]


# ---- results -----------------------------------------------------------------------------


def test_result_row_flattens_checkpoints_and_extra():
    trial = TrialConfig(dataset="mnist", model="ns", loss="ns", extra={"from_trial": "abc"})
    record = {
        **trial.to_dict(),
        "status": "ok",
        "fid_min": 3.0,
        "checkpoints": [
            {"d_steps": 100, "fid": 5.0, "f1": 0.5},
            {"d_steps": 200, "fid": 3.0, "f1": 0.75},
        ],
    }
    row = result_row(record)
    assert "checkpoints" not in row and "extra" not in row
    assert row["extra_from_trial"] == "abc"
    assert (row["fid_step_100"], row["fid_step_200"]) == (5.0, 3.0)
    assert (row["f1_step_100"], row["f1_step_200"]) == (0.5, 0.75)
    assert row["metrics"] == "fid"


# ---- running in this process -------------------------------------------------------------


def test_claim_is_exclusive_and_released(tmp_path):
    with claim(tmp_path / "t", wait=False) as first:
        assert first
        with claim(tmp_path / "t", wait=False) as second:
            assert not second
    with claim(tmp_path / "t", wait=False) as again:
        assert again


def test_sweep_runs_skips_and_refuses(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml")
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    frame = pd.read_csv(tmp_path / "tiny" / "results.csv")
    assert sorted(frame["model"]) == ["ns", "wgan"]
    assert list(frame["status"]) == ["ok", "ok"]
    assert list(frame["d_steps"]) == [4, 4]
    assert list(frame.columns[:3]) == ["trial_id", "sweep", "phase"]
    assert set(marker_counts(tmp_path / "tiny").values()) == {(1, 1)}

    # A second run reads the results back and trains nothing.
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    assert set(marker_counts(tmp_path / "tiny").values()) == {(1, 1)}

    # A directory holding another trial is refused before anything runs.
    trial_json = next((tmp_path / "tiny" / "trials").glob("*/trial.json"))
    stored = read_json(trial_json)
    write_json(trial_json, {**stored, "lr": 0.5})
    capsys.readouterr()
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "tiny.toml" in error and str(trial_json) in error and "differs in lr" in error


def test_sweep_json_describes_the_sweep_and_networks_apply(plugin, tmp_path):
    extra = 'description = "Two losses on noise."\nnetworks = "mlp"\nsamples = 1\n'
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "began"), extra=extra)
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    assert read_json(tmp_path / "tiny" / "sweep.json") == {
        "name": "tiny",
        "spec": str(spec),
        "description": "Two losses on noise.",
        "phase": "default",
        "datasets": ["tiny"],
        "models": ["ns", "began"],
        "space": "default",
        "samples": 1,
        "seeds": [0],
        "networks": "mlp",
        "sample0_default": True,  # the default space starts from the presets
        "metric": "fid_min",
        "direction": "min",
        "trials": 2,
    }
    frame = pd.read_csv(tmp_path / "tiny" / "results.csv").set_index("model")
    assert frame.loc["ns", ["generator", "discriminator"]].tolist() == ["mlp", "mlp"]
    assert frame.loc["began", ["generator", "discriminator"]].tolist() == ["mlp", "mlp_began"]
    assert list(frame["status"]) == ["ok", "ok"]


def test_failed_trial_does_not_stop_the_sweep(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml", models=("boom", "ns"))
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 1
    frame = pd.read_csv(tmp_path / "tiny" / "results.csv").set_index("model")
    assert frame.loc["boom", "status"] == "failed"
    assert frame.loc["boom", "error"] == "RuntimeError: boom"
    assert frame.loc["ns", "status"] == "ok"
    out = capsys.readouterr().out
    assert "2 of 2 trials finished, 1 failed" in out

    # --retry-failed runs the failed trial again (and only it).
    assert main(["sweep", str(spec), "--no-report", "--no-progress", "--retry-failed"]) == 1
    counts = {
        read_json(tmp_path / "tiny" / "trials" / i / "trial.json")["model"]: c
        for i, c in marker_counts(tmp_path / "tiny").items()
    }
    assert counts == {"boom": (2, 2), "ns": (1, 1)}


def test_dry_run_prints_the_plan(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml", seeds=3)
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep tiny (default)" in out and ": 6 trials" in out
    assert "to run: 24 D steps in all" in out
    assert not (tmp_path / "tiny" / "trials").exists()


def test_compile_without_a_compiler_is_refused_before_anything_is_written(
    plugin, tmp_path, capsys, monkeypatch
):
    from benchmark.training import compiled

    monkeypatch.setattr(compiled, "compiler_missing", lambda: "no C++ compiler found (g++)")
    spec = tiny_spec(tmp_path / "tiny.toml", extra="compile = true\n")
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "compile" in error and "no C++ compiler found" in error
    assert not (tmp_path / "tiny").exists()


MIXTURE_SEARCH = """
phase = "narrow"
datasets = ["ring"]
models = ["ns", "ls"]
space = "mixture"
samples = 2
networks = "points"
steps = 8
batch_size = 32
metrics = ["mixture"]
metric = "w1"
device = "cpu"
"""


def test_a_seeds_phase_of_a_mixture_search_reruns_its_best_settings(tmp_path, monkeypatch):
    """A search without FID records no FID sample counts in its results; the seeds phase takes
    each chosen trial's configuration from its trial.json, so it plans and runs (a mixture
    study's seeds phase was refused: "fid_n_real=None is not allowed")."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "search.toml").write_text(MIXTURE_SEARCH)
    assert main(["sweep", "search.toml", "--no-progress", "--no-report"]) == 0
    seeds = 'phase = "seeds"\nfrom = "search"\nreport_seeds = 2\ndatasets = ["ring"]\n'
    seeds += 'models = ["ns", "ls"]\nsteps = 8\nmetrics = ["mixture"]\nmetric = "w1"\n'
    (tmp_path / "seeds.toml").write_text(seeds + 'device = "cpu"\n')
    trials = plan(load_spec(tmp_path / "seeds.toml"))
    assert sorted((t.model, t.seed, t.seed_role) for t in trials) == [
        (m, s, "report") for m in ("ls", "ns") for s in (1, 2)
    ]
    search = pd.read_csv(tmp_path / "search" / "results.csv")
    for trial in trials:
        chosen = search[search["trial_id"] == trial.extra["from_trial"]].iloc[0]
        assert trial.lr == chosen["lr"] and trial.fid_n_real == 10_000  # the trial's own
    assert main(["sweep", "seeds.toml", "--no-progress", "--no-report"]) == 0

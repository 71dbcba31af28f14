"""What a result is: a metric is one registration; results.csv has one writer."""

from __future__ import annotations

import json

import pytest

from benchmark import results
from benchmark.results import (
    COLUMNS,
    METRICS,
    Column,
    Metric,
    register_metric,
    results_frame,
    write_results_csv,
)
from tests.helpers import tiny


@pytest.fixture
def registries(monkeypatch):
    """Restore the metric registry and the score columns after a test registers one."""
    monkeypatch.setattr(METRICS, "_items", dict(METRICS._items))
    columns = dict(COLUMNS)
    yield
    COLUMNS.clear()
    COLUMNS.update(columns)


def _toy(evaluator, generator) -> dict[str, float]:
    """The mean pixel of G at the first 64 fixed z: a score anyone can recompute."""
    return {"toy_mean": float(evaluator.samples(generator, 64).mean())}


TOY = Metric(
    "toy",
    "mean pixel of 64 samples, a test metric",
    (Column("toy_mean", "toy mean pixel", True, 4),),
    _toy,
    samples=64,
)


def test_a_new_metric_is_one_registration(registries, tmp_path, capsys):
    """Registered once, the metric is accepted by a trial, computed at every checkpoint, kept
    in result.json and results.csv, listed by the trial command's help, accepted and
    directed by a sweep spec, and ranked by in the report."""
    from analysis import build_report
    from benchmark.cli import main
    from benchmark.sweep.spec import load_spec
    from benchmark.training.loop import run_trial

    register_metric(TOY)

    records = []
    for model in ("ns", "ls"):
        for seed in (0, 1):
            trial = tiny(model, seed=seed, metrics=("toy",))
            directory = tmp_path / "sweep" / "trials" / trial.trial_id
            record = run_trial(trial, directory, progress=False, device="cpu")
            assert record["status"] == "ok"
            # The final checkpoint's score is the one the result keeps.
            last = json.loads((directory / "metrics.jsonl").read_text().splitlines()[-1])
            assert record["toy_mean"] == last["toy_mean"]
            assert -1 < record["toy_mean"] < 1  # a mean pixel of images in [-1, 1]
            assert [c["d_steps"] for c in record["checkpoints"]] == [7, 12]
            records.append(record)
    frame = results_frame(records)
    write_results_csv(frame, tmp_path / "sweep" / "results.csv")
    stored = (tmp_path / "sweep" / "results.csv").read_text().splitlines()
    assert "toy_mean" in stored[0].split(",") and "toy_mean_step_7" in stored[0].split(",")
    assert "toy_mean" in results.numeric_columns()

    assert main(["trial", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "toy: mean pixel of 64 samples, a test metric" in help_text

    spec = tmp_path / "toy.toml"
    spec.write_text('datasets = ["test_squares"]\nmodels = ["ns"]\nmetrics = ["toy"]\n')
    spec.write_text(spec.read_text() + 'metric = "toy_mean"\nsteps = 12\n')
    loaded = load_spec(spec)
    assert (loaded.metric, loaded.direction) == ("toy_mean", "max")  # from the registration

    report = build_report(tmp_path / "sweep", metric="toy_mean")
    text = report.read_text()
    assert "toy mean pixel" in text


def test_a_metric_is_refused_when_its_column_or_kind_is_bad(registries):
    with pytest.raises(ValueError, match="'fid_min' is already registered"):
        register_metric(Metric("fid2", "x", (Column("fid_min", "other", True, 1),), _toy))
    with pytest.raises(ValueError, match="data='video'"):
        register_metric(Metric("v", "x", (Column("v", "v", True, 1),), _toy, data="video"))
    with pytest.raises(ValueError, match="declares no result column"):
        register_metric(Metric("none", "x", (), _toy))


def test_every_built_in_metric_names_a_computation_that_exists():
    """The computations are named as text (this module stays torch-free); each resolves."""
    for metric in METRICS.values():
        assert callable(metric.computation()), metric.name
    assert results.metric_of("fid_final") == "fid" and results.metric_of("w1") == "mixture"
    assert results.metric_of("seconds") is None


def test_results_csv_is_written_atomically_and_leaves_no_temporary(tmp_path):
    frame = results_frame([{"trial_id": "a", "status": "ok", "fid_min": 1.5}])
    write_results_csv(frame, tmp_path / "results.csv")
    assert (tmp_path / "results.csv").read_text() == "trial_id,status,fid_min\na,ok,1.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]

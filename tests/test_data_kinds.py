"""A data kind owns what the run loop does differently for it, and a metric how its scores are
kept: a new kind and a new summary need only their registrations."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from benchmark.data_kinds import DATA_KINDS, DataKind
from benchmark.datasets import DATASETS
from benchmark.models import resolve_trial
from benchmark.results import COLUMNS, METRICS, Column, Metric, register_metric, summarise
from benchmark.training.loop import run_trial
from tests.helpers import tiny  # noqa: F401  (registers test_squares)


@pytest.fixture
def registries(monkeypatch):
    for registry in (DATA_KINDS, DATASETS, METRICS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    columns = dict(COLUMNS)
    yield
    COLUMNS.clear()
    COLUMNS.update(columns)


def _save_means(generator, trial, device, path) -> None:
    """The toy kind's samples: the mean of G at four fixed z, as text."""
    z = torch.linspace(-1, 1, 4 * trial.z_dim).reshape(4, trial.z_dim)
    with torch.no_grad():
        means = generator(z).flatten(1).mean(1).tolist()
    path.write_text(json.dumps(means))


def _toy_score(evaluator, generator) -> dict[str, float]:
    return {"spread": float(evaluator.samples(generator, 32).std())}


def test_a_new_data_kind_and_summary_need_only_their_registrations(registries, tmp_path):
    DATA_KINDS.register(
        "toy_images", DataKind("toy_images", "images, kept as means", "means.json",
                               _save_means, ("spread",))
    )  # fmt: skip
    register_metric(
        Metric("spread", "std of 32 samples", (Column("spread_min", "spread", False, 3),
               Column("spread_final", "final spread", False, 3)), _toy_score,
               data="toy_images", samples=32, summary="min_and_final")
    )  # fmt: skip
    squares = DATASETS.get("test_squares")
    DATASETS.register("toy_squares", dataclasses.replace(squares, name="toy_squares",
                                                         kind="toy_images"))  # fmt: skip
    trial = resolve_trial("ns", "toy_squares", steps=12, eval_every_epochs=1, batch_size=8)
    assert trial.metrics == ("spread",)  # the kind's own metrics when the trial names none
    record = run_trial(trial, tmp_path, progress=False, device="cpu")
    assert record["status"] == "ok"
    spreads = [c["spread"] for c in record["checkpoints"]]
    assert len(spreads) == 2
    assert record["spread_min"] == min(spreads) and record["spread_final"] == spreads[-1]
    assert "spread" not in record  # kept only as its summary
    assert record["fid_min"] is None  # FID's columns are in every result (null: not scored)
    assert len(json.loads((tmp_path / "means.json").read_text())) == 4
    assert not (tmp_path / "samples.png").exists()


def test_summarise_keeps_each_metrics_rule():
    evaluations = [
        {"d_steps": 5, "fid": 30.0, "w1": 0.5},
        {"d_steps": 10, "fid": math.nan, "w1": 0.4},
        {"d_steps": 15, "fid": 20.0, "w1": 0.3},
    ]
    done = summarise(evaluations, final_reached=True)
    assert done == {"fid_min": 20.0, "fid_final": 20.0, "w1": 0.3}
    stopped = summarise(evaluations[:2], final_reached=False)
    assert stopped["fid_min"] == 30.0  # the best checkpoint evaluated still counts
    assert math.isnan(stopped["fid_final"]) and math.isnan(stopped["w1"])
    # FID's columns are in every result, NaN when it was not scored.
    unscored = summarise([{"d_steps": 5, "w1": 0.2}], final_reached=True)
    assert math.isnan(unscored["fid_min"]) and unscored["w1"] == 0.2
    assert set(summarise([], final_reached=False)) == {"fid_min", "fid_final"}


def test_every_dataset_names_a_registered_kind():
    assert {DATASETS.get(name).kind for name in DATASETS.names()} <= set(DATA_KINDS.names())
    assert DATASETS.get("grid").kind == "points" and DATASETS.get("mnist").kind == "images"

"""The report's sample figures: the best trial's points per model (2-D mixtures) and the best
trial's sample grid per model (images), rendered from a synthetic sweep's stored files."""

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis import build_report
from analysis.samples import best_trials, sample_figures
from analysis.scores import add_scores, label
from analysis.synthetic import MODELS, make_sweep, write_sweep
from benchmark.results import get_column

GRID_CENTRES = np.array([[x, y] for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float)


def _mixture_sweep(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A synthetic wide phase on the grid scored by energy distance, each trial with points:
    a trial's points sit at a distance from the centres that grows with its score."""
    frame = make_sweep(datasets=("grid",), n_samples=5, seeds=False, fid=False, seed=3)
    rng = np.random.default_rng(0)
    frame["energy"] = rng.uniform(0.05, 1.0, len(frame))
    frame["modes"] = rng.integers(1, 26, len(frame)).astype(float)
    frame["hq"] = rng.uniform(0, 1, len(frame))
    sweep = write_sweep(frame, tmp_path / "mix")
    for _, row in frame.iterrows():
        points = GRID_CENTRES[rng.integers(25, size=400)] + rng.normal(0, row["energy"], (400, 2))
        np.savez(
            sweep / "trials" / row["trial_id"] / "samples.npz",
            points=points.astype(np.float32),
            centres=GRID_CENTRES,
            hq_radius=np.float64(0.15),
        )
    return sweep, frame


def test_best_trials_picks_each_arms_best_score():
    frame = pd.DataFrame(
        {
            "trial_id": list("abcdef"), "dataset": "grid", "model": ["ns"] * 3 + ["ls"] * 3,
            "phase": "narrow", "status": ["ok", "ok", "failed", "ok", "diverged", "ok"],
            "energy": [0.5, 0.2, np.nan, 0.9, 0.1, 0.3],
        }
    )  # fmt: skip
    scored = add_scores(frame, get_column("energy"))
    best = best_trials(scored).set_index("arm")["trial_id"]
    assert best.to_dict() == {"ns": "b", "ls": "e"}  # a diverged trial keeps its score
    f1 = add_scores(frame.rename(columns={"energy": "f1"}), get_column("f1"))
    assert best_trials(f1).set_index("arm")["trial_id"].to_dict() == {"ns": "a", "ls": "d"}


def test_scatter_figure_draws_the_best_trials_points_per_model(tmp_path):
    sweep, frame = _mixture_sweep(tmp_path)
    metric = get_column("energy")
    rows = add_scores(frame, metric)
    ((name, figure),) = sample_figures(rows, metric, sweep)
    assert name == "samples_grid"
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title().splitlines()[0] for ax in panels] == [label(m) for m in MODELS]
    best = best_trials(rows).set_index("arm")
    for ax, model in zip(panels, MODELS, strict=True):
        drawn = ax.collections[-1].get_offsets()  # the points, drawn last
        with np.load(sweep / "trials" / best.loc[model, "trial_id"] / "samples.npz") as data:
            np.testing.assert_array_equal(np.asarray(drawn), data["points"])
        assert f"energy {best.loc[model, 'value']:.3f}" in ax.get_title()
        assert len(ax.patches) == 25  # one high-quality disc per centre
    FigureCanvasAgg(figure).draw()  # renders


def test_image_figure_tiles_the_best_trials_sample_grid(tmp_path):
    frame = make_sweep(datasets=("mnist",), models=("ns", "wgan"), n_samples=4, seeds=False)
    sweep = write_sweep(frame, tmp_path / "img")
    for i, (_, row) in enumerate(frame.iterrows()):
        image = np.full((10, 10, 3), i / len(frame))
        matplotlib.image.imsave(sweep / "trials" / row["trial_id"] / "samples.png", image)
    metric = get_column("fid_min")
    rows = add_scores(frame[frame["phase"] == "wide"], metric)
    ((name, figure),) = sample_figures(rows, metric, sweep)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert name == "samples_mnist" and len(panels) == 2
    best = best_trials(rows).set_index("arm")
    for ax, model in zip(panels, ("ns", "wgan"), strict=True):
        shown = ax.images[0].get_array()
        stored = matplotlib.image.imread(
            sweep / "trials" / best.loc[model, "trial_id"] / "samples.png"
        )
        np.testing.assert_array_equal(np.asarray(shown), stored)
    FigureCanvasAgg(figure).draw()


def test_no_stored_samples_means_no_figure(tmp_path):
    frame = make_sweep(datasets=("mnist",), models=("ns",), n_samples=3, seeds=False)
    sweep = write_sweep(frame, tmp_path / "none")
    metric = get_column("fid_min")
    assert sample_figures(add_scores(frame, metric), metric, sweep) == []


@pytest.mark.slow
def test_report_shows_what_the_models_generate(tmp_path):
    sweep, _ = _mixture_sweep(tmp_path)
    text = build_report(sweep, metric="energy").read_text()
    assert "## What the models generate" in text
    assert "![samples_grid_wide](samples_grid_wide.png)" in text
    assert (sweep / "report" / "samples_grid_wide.png").exists()


@pytest.mark.slow
def test_a_rebuilt_report_ranks_by_the_sweeps_own_metric(tmp_path, capsys):
    from analysis.__main__ import main

    sweep, _ = _mixture_sweep(tmp_path)
    (sweep / "sweep.json").write_text('{"name": "mix", "metric": "energy", "direction": "min"}')
    assert main([str(sweep)]) == 0
    assert "Primary score: `energy`" in (sweep / "report" / "report.md").read_text()
    (sweep / "sweep.json").unlink()  # without a record: the FID default, absent here
    assert main([str(sweep)]) == 2
    assert "fid_min" in capsys.readouterr().err


@pytest.mark.slow
def test_a_space_that_draws_sample_zero_keeps_it_among_the_random_samples(tmp_path):
    sweep, _ = _mixture_sweep(tmp_path)
    record = {"name": "mix", "metric": "energy", "direction": "min", "sample0_default": False}
    (sweep / "sweep.json").write_text(json.dumps(record))
    text = build_report(sweep, metric="energy").read_text()
    assert "Default setting (sample 0)" not in text
    ranked = pd.read_csv(sweep / "report" / "ranking.csv")
    assert set(ranked.loc[ranked["k"] == 1, "n"]) == {5}  # all five samples, 0 included
    record["sample0_default"] = True
    (sweep / "sweep.json").write_text(json.dumps(record))
    text = build_report(sweep, metric="energy").read_text()
    assert "Default setting (sample 0)" in text
    ranked = pd.read_csv(sweep / "report" / "ranking.csv")
    assert set(ranked.loc[ranked["k"] == 1, "n"]) == {4}

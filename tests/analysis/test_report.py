"""Tests of loading, tables, figures and the report on hand-made and synthetic sweeps."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from analysis import ResultsError, build_report, load_results
from analysis.__main__ import main
from analysis.answer import (
    compute_budget,
    defaults,
    markdown_table,
    random_samples,
    ranking,
    verdict,
)
from analysis.plots import (
    budget_curves,
    compute_curves,
    distribution,
    sensitivity,
    training_curves,
)
from analysis.scores import add_scores, choose_metric, phases, select_seeds
from analysis.synthetic import make_sweep, write_sweep
from analysis.tables import cell_text, grid, summarise
from benchmark.results import get_column, result_row, results_frame

FID = get_column("fid_min")


def trials(dataset, model, values, phase="wide", **extra):
    """Rows for one cell; NaN in `values` means a diverged trial."""
    return [
        {"trial_id": f"{phase}-{dataset}-{model}-{i}-{extra}", "phase": phase,
         "dataset": dataset, "model": model, "sample": i, "seed": 0, "seconds": 10.0,
         "status": "diverged" if np.isnan(v) else "ok", "fid_min": v, **extra}
        for i, v in enumerate(values)
    ]  # fmt: skip


@pytest.fixture
def hand_table():
    rows = (
        trials("d1", "a", [10.0, 20.0, 30.0, 40.0, np.nan])
        + trials("d1", "b", [5.0, np.nan])
        + trials("d2", "a", [7.0, 8.0, 9.0, 10.0, 11.0])
    )
    return add_scores(pd.DataFrame(rows), FID)


def test_table_values_on_hand_made_table(hand_table):
    summary = summarise(hand_table, FID).set_index(["dataset", "model"])
    a = summary.loc[("d1", "a")]
    assert (a["best"], a["median"], a["q1"], a["q3"]) == (10.0, 25.0, 17.5, 32.5)
    assert a["diverged_share"] == pytest.approx(0.2)
    assert (a["n_trials"], a["n_expected"], a["n_finished"]) == (5, 5, 4)
    assert summary.loc[("d1", "b"), "best"] == 5.0
    assert summary.loc[("d1", "b"), "diverged_share"] == pytest.approx(0.5)
    assert cell_text(a, FID, seeds=False) == "10.0 / 25.0 (17.5–32.5) / 20%"


def test_partial_sweep_marks_missing_cells(hand_table):
    table = grid(summarise(hand_table, FID), FID, seeds=False)
    assert table.loc["b", "d2"] == "— (0/5 trials done)"
    assert table.loc["b", "d1"] == "5.0 / 5.0 (5.0–5.0) / 50% (2/5 trials done)"


def test_higher_is_better_metric_takes_the_maximum():
    rows = pd.DataFrame(trials("polygons", "a", [np.nan] * 3))
    rows["f1"] = [0.2, 0.9, 0.5]
    rows["status"] = "ok"
    metric, note = choose_metric(rows, "fid_min")
    assert metric.name == "f1" and "no Inception weights" in note
    scored = add_scores(rows, metric)
    assert summarise(scored, metric).loc[0, "best"] == 0.9


def test_unscored_trials_have_no_score_and_diverged_ones_keep_theirs():
    rows = pd.DataFrame(trials("d", "a", [10.0, np.nan, 30.0, 12.0]))
    rows.loc[2, "status"] = "diverged"  # diverged after a checkpoint: keeps its minimum
    rows.loc[3, "status"] = "failed"  # a failed trial is never scored
    scored = add_scores(rows, FID)
    assert list(scored["finished"]) == [True, False, True, False]
    np.testing.assert_array_equal(scored["score"], [10.0, np.nan, 30.0, np.nan])


def test_seeds_phase_selects_on_select_and_reports_on_report_seeds():
    rows = []
    for sample, select, report in ((0, [5.0, 5.0], [10.0, 12.0]), (1, [3.0, 3.0], [20.0, 22.0])):
        for role, values in (("select", select), ("report", report)):
            for seed, v in enumerate(values):
                rows += trials("d", "a", [v], phase="seeds", seed_role=role, s=seed)
                rows[-1]["sample"] = sample
    frame = add_scores(pd.DataFrame(rows), FID)
    chosen, note = select_seeds(frame)
    assert set(chosen["seed_role"]) == {"report"} and set(chosen["sample"]) == {1}
    assert "only" in note
    by_phase, _ = phases(frame)
    summary = summarise(by_phase["seeds"], FID)
    assert summary.loc[0, "mean"] == pytest.approx(21.0)
    assert summary.loc[0, "n_trials"] == 2


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    frame = make_sweep(datasets=("mnist", "polygons"), models=("ns", "wgan", "wgan_gp"),
                       n_samples=6, seed=1)  # fmt: skip
    return write_sweep(frame, tmp_path_factory.mktemp("sweep") / "demo")


@pytest.fixture(scope="module")
def report(sweep):
    return build_report(sweep)


def test_report_writes_every_file(report):
    out = report.parent
    for name in ("report.md", "fid_table.md", "fid_table.csv", "fid_table.tex", "stats.csv"):
        assert (out / name).stat().st_size > 0
    figures = ["budget_wide", "compute_wide", "distribution_wide", "sensitivity_lr_wide",
               "sensitivity_beta1_wide", "training_wide", "distribution_seeds"]  # fmt: skip
    for name in figures:
        for suffix in (".png", ".svg"):
            assert (out / f"{name}{suffix}").stat().st_size > 1000
    text = report.read_text()
    for name in figures:
        assert f"]({name}.png)" in text
    for heading in (
        "## Which loss is better under this budget?",
        "## Protocol",
        "## Measurement noise",
        "## Results",
        "## Statistical tests",
        "## Caveats",
    ):
        assert heading in text  # fmt: skip
    assert text.index("## Which loss") < text.index("## Protocol")
    assert "diverged before any checkpoint" in text  # the rule for unscored trials
    assert (out / "ranking.csv").stat().st_size > 0
    assert "`report` rows" in text
    assert "Significant at 0.05" in text or "No pair differs" in text


def test_report_tables_agree_with_results(report, sweep):
    table = pd.read_csv(report.parent / "fid_table.csv")
    frame = pd.read_csv(sweep / "results.csv")
    wide = frame[(frame["phase"] == "wide") & frame["status"].isin(["ok", "diverged"])]
    best = wide.groupby(["dataset", "model"])["fid_min"].min()
    got = table[table["phase"] == "wide"].set_index(["dataset", "model"])["best"]
    pd.testing.assert_series_equal(got.sort_index(), best.sort_index(), check_names=False)
    seeds = table[table["phase"] == "seeds"]
    assert (seeds["n_trials"] == 10).all()  # the report seeds of one setting only


def test_every_figure_has_title_and_labelled_axes(sweep):
    frame = add_scores(load_results(sweep), FID)
    rows = phases(frame)[0]["wide"]
    figures = [budget_curves(rows, FID, "wide"), compute_curves(rows, FID, "wide"),
               distribution(rows, FID, "wide"), sensitivity(rows, FID, "wide", "lr"),
               sensitivity(rows, FID, "wide", "beta1"),
               training_curves(rows, FID, "wide")]  # fmt: skip
    for fig in figures:
        assert fig is not None and fig.get_suptitle()
        axes = [ax for ax in fig.axes if ax.get_visible()]
        assert axes
        for ax in axes:
            assert ax.get_xlabel() and ax.get_title()
            assert ax.has_data()
        assert axes[0].get_ylabel()


def test_results_csv_built_from_result_json(sweep, tmp_path):
    frame = pd.read_csv(sweep / "results.csv")
    write_sweep(frame, tmp_path, csv=False)
    loaded = load_results(tmp_path)
    assert (tmp_path / "results.csv").exists()
    assert len(loaded) == len(frame)
    one = loaded.set_index("trial_id").loc[frame["trial_id"].iloc[0]]
    assert one["fid_step_15625"] == pytest.approx(frame["fid_step_15625"].iloc[0], nan_ok=True)


@pytest.mark.slow
def test_partial_sweep_gives_partial_report(sweep, tmp_path):
    frame = pd.read_csv(sweep / "results.csv")
    drop = (frame["model"] == "wgan") & (frame["dataset"] == "polygons")
    partial = frame[~drop | (frame["sample"] < 2)]
    write_sweep(partial, tmp_path)
    text = build_report(tmp_path).read_text()
    assert "(2/6 trials done)" in text


@pytest.mark.slow
def test_fid_missing_falls_back_to_f1(tmp_path):
    frame = make_sweep(datasets=("polygons",), models=("ns", "wgan"), n_samples=5, fid=False)
    write_sweep(frame, tmp_path)
    text = build_report(tmp_path).read_text()
    assert "primary score is `f1`" in text
    assert not (tmp_path / "report" / "training_wide.png").exists()
    # the tables are named by the metric they rank by
    assert {p.name for p in (tmp_path / "report").glob("*_table.*")} == {
        "f1_table.md", "f1_table.csv", "f1_table.tex"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("trial_id,phase,dataset,model\n1,wide,mnist,ns\n", "missing required column"),
        ("trial_id,phase,dataset,model,status\n", "no rows"),
        ("trial_id,phase,dataset,model,status\n1,wide,mnist,ns,exploded\n", "'status' has"),
        ("trial_id,phase,dataset,model,status,fid_min\n1,wide,mnist,ns,ok,abc\n", "not numeric"),
        ('a,b\n1,"2\n', "cannot be parsed"),
    ],
)
def test_malformed_results_name_the_file(tmp_path, capsys, content, message):
    (tmp_path / "results.csv").write_text(content)
    with pytest.raises(ResultsError, match=message) as error:
        load_results(tmp_path)
    assert str(tmp_path / "results.csv") in str(error.value)
    assert main([str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_malformed_result_json_and_missing_sweep(tmp_path):
    bad = tmp_path / "trials" / "t1" / "result.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(ResultsError, match="cannot be read as JSON") as error:
        load_results(tmp_path)
    assert str(bad) in str(error.value)
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(ResultsError, match="expected a JSON object"):
        load_results(tmp_path)
    with pytest.raises(ResultsError, match="no such sweep directory"):
        load_results(tmp_path / "absent")
    with pytest.raises(ResultsError, match="missing, and no"):
        load_results(tmp_path / "trials" / "t1")


@pytest.mark.slow
def test_cli_writes_report(sweep, tmp_path, capsys):
    assert main([str(sweep), "--metric", "kid", "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "report.md")
    assert "`kid`" in (tmp_path / "r" / "report.md").read_text()


def test_unknown_metric_needs_a_direction(sweep, tmp_path, capsys):
    assert main([str(sweep), "--metric", "fid_10k", "--out", str(tmp_path)]) == 2
    assert "give a direction" in capsys.readouterr().err
    custom = get_column("seconds", "min")
    assert (custom.name, custom.higher_is_better) == ("seconds", False)
    assert get_column("f1", "min").higher_is_better is False


# ---- a model's numbers are its own ---------------------------------------------------------


def planted(values: dict[str, np.ndarray], dataset: str = "d") -> pd.DataFrame:
    """Scored rows of a search phase, one model per key; NaN = unscored (diverged early)."""
    rows = []
    for model, scores in values.items():
        rows += trials(dataset, model, list(scores))
    return add_scores(pd.DataFrame(rows), FID)


def _own_line(fig, title: str) -> np.ndarray:
    """The y data of the panel's own (labelled) curve; None when it has none."""
    ax = next(ax for ax in fig.axes if ax.get_title() == title)
    own = [line for line in ax.lines if not line.get_label().startswith("_")]
    return own[0].get_ydata() if own else None


def test_a_model_does_not_move_when_another_is_added_or_removed():
    rng = np.random.default_rng(3)
    a = rng.lognormal(3, 0.3, 30)
    a[:4] = np.nan  # a few unscored trials of its own
    b = np.full(30, np.nan)
    b[:3] = [500.0, 800.0, 900.0]  # another model with much worse scores and many unscored
    alone, both = planted({"a": a}), planted({"a": a, "b": b})
    key = ["budget", "estimate", "ci_low", "ci_high", "p_none"]
    ra = ranking(alone, FID).query("model == 'a'")[key].reset_index(drop=True)
    rb = ranking(both, FID).query("model == 'a'")[key].reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb)
    assert list(ra["budget"]) == ["k = 1", "k = 10", "all trials", "compute"]
    np.testing.assert_allclose(_own_line(budget_curves(alone, FID, "wide"), "d · a"),
                               _own_line(budget_curves(both, FID, "wide"), "d · a"))  # fmt: skip
    # the k = 1 cell is the mean of the model's scored trials, whoever else is there
    assert ra.loc[0, "estimate"] == pytest.approx(np.nanmean(a))
    assert ra.loc[0, "p_none"] == pytest.approx(4 / 30)
    summary = summarise(both, FID).set_index("model")
    assert summary.loc["a", "best"] == pytest.approx(np.nanmin(a))


def test_a_model_with_every_trial_diverged_has_no_curve_and_says_why():
    rows = planted({"a": np.arange(10.0, 30.0), "z": np.full(20, np.nan)})
    fig = budget_curves(rows, FID, "wide")
    assert _own_line(fig, "d · z") is None
    panel = next(ax for ax in fig.axes if ax.get_title() == "d · z")
    assert [t.get_text() for t in panel.texts] == ["no curve:\nall 20 trials\nunscored"]
    table = ranking(rows, FID)
    z = table[table["model"] == "z"]
    assert set(z["mark"]) == {"no score"} and z["estimate"].isna().all()
    assert verdict(table, "d", FID) == [
        "d (k = 1): no test, only a has a scored trial; a has the best estimate, 19.5; "
        "z: no scored trial."
    ]
    assert grid(summarise(rows, FID), FID, seeds=False).loc["z", "d"] == "— / all 20 unscored"


def test_ranking_finds_a_planted_winner_and_keeps_the_others_in_the_set():
    rng = np.random.default_rng(0)
    same = {m: rng.normal(10.0, 1.0, 60) for m in ("wgan", "ns", "dragan")}
    rows = planted({"mm": rng.normal(14.0, 1.0, 60), **same})
    table = ranking(rows, FID)
    at = table[table["budget"] == "k = 10"].set_index("model")
    assert at.loc["mm", "mark"] == "worse" and at.loc["mm", "gap_low"] > 0
    assert sorted(at["mark"].drop("mm")) == ["best", "in set", "in set"]
    best = at.index[at["mark"] == "best"][0]
    assert at.loc[best, "estimate"] == pytest.approx(expected_best_at(same[best], 10))
    assert at["p_best"].sum() == pytest.approx(1.0) and at.loc["mm", "p_best"] == 0.0
    assert at.loc[best, "ci_low"] < at.loc[best, "estimate"] < at.loc[best, "ci_high"]
    lines = verdict(table, "d", FID)
    assert [line.split(":")[0] for line in lines] == [
        "d (k = 1)",
        "d (k = 10)",
        "d (equal compute, 120 s per arm)",
    ]
    assert "cannot be told apart from the best" in lines[1] and "tie" not in lines[1]
    assert lines[1].endswith("; MM GAN is worse (95% confidence set for the best arm).")
    cells = markdown_table(table, "d", FID)
    assert cells.loc["MM GAN", "k = 10"].startswith("< ")
    assert not cells.stack().str.startswith("= ").any()
    # all equal: no arm is excluded, and the words say that this is not a tie
    rows = planted({m: rng.normal(10.0, 1.0, 60) for m in ("mm", "ns", "wgan")})
    line = verdict(ranking(rows, FID), "d", FID)[0]
    assert (
        "no arm is shown worse than another: all 3 tested arms can be the best, which is "
        "not a tie" in line
    )


def expected_best_at(values: np.ndarray, k: int) -> float:
    """E[min of k of n] from survival counts: P(min >= x(i)) = C(n - i + 1, k) / C(n, k)."""
    x, n = np.sort(values), len(values)
    survive = [math.comb(n - i, k) for i in range(n + 1)]  # P(min >= x(i+1)) * C(n, k)
    return sum(x[i] * (survive[i] - survive[i + 1]) for i in range(n)) / math.comb(n, k)


# ---- report robustness, sweep.json, noise floor, published values -----------------------


@pytest.mark.slow
def test_report_builds_when_no_seeds_trial_was_scored(tmp_path):
    frame = make_sweep(datasets=("mnist",), models=("ns", "wgan"), n_samples=4, seed=2)
    seeds = frame["phase"] == "seeds"
    frame.loc[seeds, "status"] = "failed"
    frame.loc[seeds, ["fid_min", "fid_final", "kid"]] = np.nan
    frame.loc[seeds, [c for c in frame.columns if c.startswith("fid_step_")]] = np.nan
    write_sweep(frame, tmp_path)
    text = build_report(tmp_path).read_text()
    assert "No select seed was scored for NS GAN on MNIST" in text
    assert "| NS GAN | — / all 20 unscored |" in text  # the seeds table says what it has
    assert "## Which loss is better under this budget?" in text


def test_description_noise_floor_and_published_values(tmp_path):
    frame = make_sweep(datasets=("mnist",), models=("ns", "wgan"), n_samples=3, seed=4)
    write_sweep(frame, tmp_path)
    (tmp_path / "sweep.json").write_text('{"description": "Reduced-scale demonstration."}')
    (tmp_path / "noise_floor.json").write_text(
        '{"mnist": {"fid": 1.25, "n": 10000, "split": "train vs test"}}'
    )
    text = build_report(tmp_path).read_text()
    assert text.splitlines()[2] == "> Reduced-scale demonstration."
    assert "(train vs test, n = 10000) is 1.25. This is a bias floor, the FID a perfect " in text
    assert "- MNIST: the seed-to-seed spread of each model's selected setting" in text
    assert "| MNIST: Lucic et al. 2018, Table 2 |" in text.replace("| MNIST |", "|")
    assert "| 6.8 ± 0.5 † |" in text and "| 6.7 ± 0.4 † |" in text  # NS GAN, WGAN
    (tmp_path / "sweep.json").unlink()
    (tmp_path / "noise_floor.json").unlink()
    text = build_report(tmp_path).read_text()
    assert text.splitlines()[2] == "## Which loss is better under this budget?"
    assert "seed-to-seed spread" in text


def test_ranking_by_a_higher_is_better_metric_with_many_ties_and_unscored_trials():
    """F1 where many trials score 0 (ties) or are unscored: WGAN's all-zero trials are found
    worse than NS GAN's, values and intervals read in F1's own direction, gaps positive."""
    rng = np.random.default_rng(0)
    values = {"ns": np.r_[np.zeros(10), rng.uniform(0.1, 0.35, 20)], "wgan": np.zeros(30),
              "began": np.r_[np.full(20, np.nan), rng.uniform(0, 0.1, 10)]}  # fmt: skip
    rows = []
    for model, scores in values.items():
        rows += [r | {"f1": r.pop("fid_min")} for r in trials("d", model, list(scores))]
    f1 = get_column("f1")
    table = ranking(add_scores(pd.DataFrame(rows), f1), f1)
    at = table[table["budget"] == "k = 1"].set_index("model")
    assert list(at["mark"]) == ["best", "worse", "worse"]
    assert at.loc["ns", "value"] == pytest.approx(np.mean(values["ns"]))
    assert at.loc["wgan", "value"] == 0.0 and at.loc["wgan", "ci_high"] == 0.0
    assert (at["ci_low"] <= at["value"]).all() and (at["value"] <= at["ci_high"]).all()
    assert at.loc["wgan", "gap_low"] > 0  # NS GAN's mean F1 minus WGAN's, positive
    assert at.loc["began", "unscored"] == pytest.approx(2 / 3)
    assert verdict(table, "d", f1)[0].startswith(
        "d (k = 1): NS GAN has the best expected f1, 0.152 [0.102, 0.198]; every other tested "
        "arm is worse (WGAN and BEGAN (67% of trials unscored))"
    )


def test_published_column_only_for_the_papers_networks(tmp_path):
    frame = make_sweep(datasets=("mnist",), models=("ns", "wgan"), n_samples=3, seed=4)
    frame["generator"], frame["discriminator"] = "mlp", "mlp"
    write_sweep(frame, tmp_path)
    text = build_report(tmp_path).read_text()
    assert "Lucic et al. 2018, Table 2" not in text


def test_default_setting_is_kept_out_of_the_random_budgets():
    rows = planted({"ns": np.array([1.0] + [10.0] * 12)})  # sample 0: the default, 1.0
    random, default = random_samples(rows, "wide")
    assert list(random["sample"]) == list(range(1, 13)) and list(default["sample"]) == [0]
    table = ranking(random, FID)
    assert table.loc[table["budget"] == "all trials", "value"].iloc[0] == 10.0
    assert defaults(default).loc[0, ["model", "n", "value"]].tolist() == ["ns", 1, 1.0]
    assert random_samples(rows, "seeds")[1].empty  # other phases have no default trial
    own = _own_line(budget_curves(rows, FID, "wide"), "d · NS GAN")
    np.testing.assert_allclose(own, 10.0)  # the curve is of the 12 random samples


def test_results_csv_keeps_every_column_in_one_schema(tmp_path):
    record = {"trial_id": "t1", "phase": "wide", "dataset": "mnist", "model": "ns",
              "status": "diverged", "fid_min": 7.0, "diverged_at": 5000,
              "metrics": ["fid", "kid"], "extra": {"from_trial": "abc"},
              "checkpoints": [{"d_steps": 3906, "fid": 7.0, "kid": 0.01},
                              {"d_steps": 7812, "fid": None}]}  # fmt: skip
    row = result_row(record)
    assert row["extra_from_trial"] == "abc" and row["metrics"] == "fid,kid"
    assert (row["fid_step_3906"], row["kid_step_3906"], row["fid_step_7812"]) == (7.0, 0.01, None)
    path = tmp_path / "trials" / "t1" / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    stale = results_frame([record | {"trial_id": "t0"}])
    stale.to_csv(tmp_path / "results.csv", index=False)  # a stale table lacking t1
    loaded = load_results(tmp_path)
    assert list(loaded.columns) == list(results_frame([record]).columns)
    assert list(pd.read_csv(tmp_path / "results.csv").columns) == list(loaded.columns)
    assert loaded.loc[0, "diverged_at"] == 5000.0
    scored = add_scores(loaded, FID)
    assert bool(scored.loc[0, "finished"]) and scored.loc[0, "score"] == 7.0


def test_one_trial_per_model_is_ranked_but_not_tested():
    rows = planted({"mm": np.array([12.0]), "ns": np.array([9.0]), "wgan": np.array([np.nan])})
    table = ranking(rows, FID).set_index(["budget", "model"])
    assert list(table.loc["k = 1", "mark"]) == ["untested", "untested", "no score"]
    assert table.loc[("k = 1", "ns"), "estimate"] == 9.0
    assert np.isnan(table.loc[("k = 1", "ns"), "ci_low"])  # no interval from one trial
    assert verdict(table.reset_index(), "d", FID) == [
        "d (k = 1): no test, too few trials (a test needs at least 10 trials, 5 of them "
        "scored, and 5·k per arm); NS GAN has the best estimate, 9.0; not tested, too few "
        "trials for this budget: MM GAN (1), "
        "NS GAN (1); WGAN: no scored trial."
    ]


PAPER = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")


def test_too_few_trials_are_not_tested_and_the_verdict_says_so():
    """A test needs n >= 5k trials per arm (TEST_SHARE): with 4 trials per model nothing is
    tested and the verdict says why instead of calling anything a tie; with 10 the planted
    order (10 apart, spread 3) is found."""
    values = {m: 50.0 + np.arange(4.0) + 10 * i for i, m in enumerate(PAPER)}
    table = ranking(planted(values), FID)
    at = table[table["budget"] == "k = 1"].set_index("model")
    assert set(at["mark"]) == {"untested"}
    assert verdict(table, "d", FID)[0].startswith(
        "d (k = 1): no test, too few trials (a test needs at least 10 trials, 5 of them "
        "scored, and 5·k per arm); MM GAN has the best estimate, 51.5; not tested, too few "
        "trials for this budget: MM GAN (4), "
    )
    cells = markdown_table(table, "d", FID)
    assert cells.loc["NS GAN", "k = 1"] == "61.5 (not tested)"
    values = {m: 50.0 + np.arange(10.0) / 3 + 10 * i for i, m in enumerate(PAPER)}
    lines = verdict(ranking(planted(values), FID), "d", FID)
    assert lines[0].startswith("d (k = 1): MM GAN has the best expected fid_min, 51.5 [")
    assert (
        "; every other tested arm is worse (NS GAN, LSGAN, WGAN, WGAN GP, DRAGAN and " in (lines[0])
    )


def test_compute_column_is_equal_across_models_that_differ_three_fold_in_cost():
    """Two models, one three times costlier per trial: the budget buys the cheap one three
    times as many trials, and each arm's expected compute spent is the budget exactly."""
    rows = planted({"ns": np.arange(50.0), "wgan_gp": np.arange(50.0)})
    rows.loc[rows["model"] == "wgan_gp", "seconds"] = 30.0
    budget = compute_budget(rows)
    assert budget == pytest.approx(0.2 * 50 * 10.0)  # a fifth of the cheaper arm's total
    cell = ranking(rows, FID).query("budget == 'compute'").set_index("model")
    assert list(cell["k"]) == pytest.approx([10.0, 10.0 / 3])
    assert list(cell["spent"]) == pytest.approx([budget, budget])
    assert (cell["budget_value"] == budget).all()
    # k = 10/3 mixes 3 and 4 trials: E = (2/3) E[best of 3] + (1/3) E[best of 4]
    wanted = 2 / 3 * expected_best_at(np.arange(50.0), 3) + expected_best_at(np.arange(50.0), 4) / 3
    assert cell.loc["wgan_gp", "estimate"] == pytest.approx(wanted)
    assert cell.loc["ns", "estimate"] == pytest.approx(expected_best_at(np.arange(50.0), 10))
    # a budget below one trial of the costliest arm is raised to it: every arm runs one
    rows.loc[rows["model"] == "wgan_gp", "seconds"] = 1000.0
    assert compute_budget(rows) == pytest.approx(1000.0)


# ---- ablation variants: each (model, variant) is its own arm --------------------------------

GOLDEN = Path(__file__).parents[1] / "data" / "report_no_variants.md"


def _masked(text: str) -> str:
    """Report text with every number replaced by '#': the layout, labels and verdicts stay."""
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", text)


def test_report_without_variants_is_unchanged(report):
    """report.md of the `sweep` fixture, numbers masked, as built before variants were
    analysed (tests/data/report_no_variants.md; rebuild it with `_masked` when the report's
    layout changes on purpose)."""
    assert _masked(report.read_text()) == GOLDEN.read_text()
    for name in ("fid_table.csv", "ranking.csv"):
        table = pd.read_csv(report.parent / name)
        assert "arm" not in table.columns and "variant" not in table.columns
        assert set(table["model"]) == {"ns", "wgan", "wgan_gp"}
    stats = pd.read_csv(report.parent / "stats.csv")
    assert set(stats["a"]) | set(stats["b"]) == {"ns", "wgan", "wgan_gp"}


def test_empty_variant_column_changes_nothing(sweep):
    frame = add_scores(load_results(sweep), FID)
    assert (frame["arm"] == frame["model"]).all()
    for empty in (np.nan, ""):
        blank = add_scores(load_results(sweep).assign(extra_variant=empty), FID)
        assert (blank["arm"] == frame["arm"]).all()


def test_variants_of_one_model_are_separate_arms():
    rows = (
        trials("d", "ns", [10.0, 20.0, 30.0], extra_variant="none")
        + trials("d", "ns", [1.0, 2.0, np.nan], extra_variant="smooth")
        + trials("d", "wgan", [5.0, 6.0, 7.0], extra_variant="none")
    )
    rows = add_scores(pd.DataFrame(rows), FID)
    summary = summarise(rows, FID).set_index("model")
    assert list(summary.index) == ["ns/none", "ns/smooth", "wgan/none"]
    assert list(summary["best"]) == [10.0, 1.0, 5.0]
    assert list(summary["median"]) == [20.0, 1.5, 6.0]
    assert list(summary["n_trials"]) == [3, 3, 3] and (summary["n_expected"] == 3).all()
    table = grid(summarise(rows, FID), FID, seeds=False)
    assert list(table.index) == ["NS GAN · none", "NS GAN · smooth", "WGAN · none"]
    assert table.loc["NS GAN · smooth", "d"] == "1.0 / 1.5 (1.2–1.8) / 33%"
    ranked = ranking(rows, FID).set_index(["budget", "model"])
    assert set(ranked.loc["all trials", "mark"]) == {"untested"}  # the best of n: no test
    assert ranked.loc[("all trials", "ns/smooth"), "value"] == 1.0
    assert ranked.loc[("all trials", "ns/none"), "value"] == 10.0
    assert ranked.loc[("k = 1", "ns/none"), "value"] == pytest.approx(20.0)
    (line,) = verdict(ranked.reset_index(), "d", FID)
    assert line.startswith("d (k = 1): no test") and "NS GAN · smooth" in line


def test_report_of_an_ablation_shows_every_arm(tmp_path):
    variants = {"none": 0.0, "smooth": -1.0}  # smoothing lowers log-FID by 1: a planted gain
    frame = make_sweep(datasets=("polygons",), models=("ns", "wgan"), n_samples=8, seeds=False,
                       seed=5, variants=variants)  # fmt: skip
    sweep = write_sweep(frame, tmp_path / "ablation")
    text = build_report(sweep, expected_trials=8).read_text()
    results = pd.read_csv(sweep / "results.csv")
    assert set(results["extra_variant"]) == set(variants)
    scored = results[results["status"].isin(["ok", "diverged"])]
    best = scored.groupby(["model", "extra_variant"])["fid_min"].min()
    randomly = scored[scored["sample"] != 0]  # sample 0, the default, is not a random sample
    best_random = randomly.groupby(["model", "extra_variant"])["fid_min"].min()
    best_random.index = [f"{m}/{v}" for m, v in best_random.index]
    best.index = [f"{m}/{v}" for m, v in best.index]
    table = pd.read_csv(sweep / "report" / "fid_table.csv").set_index("model")
    assert list(table.index) == ["ns/none", "ns/smooth", "wgan/none", "wgan/smooth"]
    assert (table["n_trials"] == 8).all() and (table["n_expected"] == 8).all()
    pd.testing.assert_series_equal(table["best"], best.loc[table.index], check_names=False)
    ranked = pd.read_csv(sweep / "report" / "ranking.csv")
    every = ranked[ranked["budget"] == "all trials"].set_index("model")
    pd.testing.assert_series_equal(every["value"], best_random.loc[every.index], check_names=False)
    for arm in ("NS GAN · none", "NS GAN · smooth", "WGAN · none", "WGAN · smooth"):
        assert f"| {arm} |" in text  # a row of the ranking table and of the results table
    assert "trials done" not in text  # 8 trials planned per arm, 8 run
    assert "Ablation variants, each analysed as its own arm" in text
    stats = pd.read_csv(sweep / "report" / "stats.csv")
    assert len(stats[stats["phase"] == "wide"]) == 6  # every pair of the four arms
    rows = phases(add_scores(load_results(sweep), FID))[0]["wide"]
    fig = budget_curves(rows, FID, "wide")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [f"Polygons · {arm}" for arm in ("NS GAN · none", "NS GAN · smooth",
                                                      "WGAN · none", "WGAN · smooth")]  # fmt: skip
    own = _own_line(fig, "Polygons · NS GAN · smooth")
    assert own[-1] == pytest.approx(best_random["ns/smooth"])  # the arm's own best


def test_ranking_cell_shows_round_off_as_zero():
    """The expected best of all-zero scores can come out as -1e-17: shown as 0.000."""
    from types import SimpleNamespace

    from analysis.answer import _cell_text
    from benchmark.results import COLUMNS

    row = SimpleNamespace(mark="in set", value=-1e-17, ci_low=float("nan"), p_none=0.0)
    assert _cell_text(row, COLUMNS["f1"]) == "0.000"
    row = SimpleNamespace(mark="best", value=0.25, ci_low=float("nan"), p_none=0.0)
    assert _cell_text(row, COLUMNS["f1"]) == "**0.250**"


def test_protocol_says_plainly_when_no_trial_computed_fid():
    from analysis.protocol import _fid_protocol

    polygons_only = pd.DataFrame({"fid_n_real": [np.nan, np.nan], "f1": [0.2, 0.3]})
    assert _fid_protocol(polygons_only, []) == "- FID: not computed by these trials."
    assert _fid_protocol(pd.DataFrame({"f1": [0.2]}), []) == "- FID: not computed by these trials."
    measured = pd.DataFrame({"fid_n_real": [10000], "fid_n_fake": [10000], "fid_resize": ["x"]})
    line = _fid_protocol(measured, ["abc"])
    assert line.startswith("- FID: ") and "not computed" not in line and "`abc…`" in line


@pytest.mark.parametrize("low, high", [(2.3e-4, 8.8e-4), (10**-3.7, 1e-3), (1e-5, 1e-2)])
def test_sensitivity_lr_ticks_are_labelled_and_do_not_overlap(low, high):
    """A narrow lr range (the quick space's) gets labelled ticks, a wide one no crowded ones:
    matplotlib's default labelled the minor ticks of the narrow range on top of each other."""
    lr = np.geomspace(low, high, 6)
    rows = pd.DataFrame({
        "dataset": "polygons", "arm": np.repeat(["ns", "wgan"], 3), "lr": lr,
        "value": np.linspace(0.1, 0.3, 6), "finished": True,
    })  # fmt: skip
    fig = sensitivity(rows, FID, "wide", "lr")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        labels = [t for t in ax.get_xticklabels(minor=False) + ax.get_xticklabels(minor=True)
                  if t.get_text() and lo <= t.get_position()[0] <= hi]  # fmt: skip
        assert len(labels) >= 2, [t.get_text() for t in labels]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), [
            t.get_text() for t in labels
        ]


def test_sensitivity_legend_names_only_what_is_drawn():
    """No legend entry for unscored trials when every trial was scored, one when some were not."""
    rows = pd.DataFrame({
        "dataset": "polygons", "arm": "ns", "lr": [1e-4, 3e-4, 1e-3],
        "value": [0.1, 0.2, 0.3], "finished": True,
    })  # fmt: skip

    def legend_texts(frame):
        fig = sensitivity(frame, FID, "wide", "lr")
        return [t.get_text() for legend in fig.legends for t in legend.get_texts()]

    assert legend_texts(rows) == []
    assert legend_texts(rows.assign(finished=[True, False, True])) == ["unscored"]

"""Equal compute: counted FLOPs where every trial has them, wall-clock seconds for results that
predate them; and a report rebuilt from results.csv alone."""

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis import ResultsError, build_report, load_results
from analysis.__main__ import main
from analysis.answer import markdown_table, ranking, verdict
from analysis.cost import cost_sentence, cost_unit, duration_text, flop_text
from analysis.plots import compute_curves
from analysis.scores import add_scores
from analysis.synthetic import make_sweep, write_sweep
from benchmark.results import FLOP_COLUMNS, get_column

FID = get_column("fid_min")


def rows_with_cost(
    cost: dict[str, dict[str, float]], n: int = 50, dataset: str = "d"
) -> pd.DataFrame:
    """A search phase of one dataset: per model, `n` trials scoring 0..n-1 (sample 0, the
    default, scores -1) with the given cost columns."""
    rows = [
        {"trial_id": f"{dataset}-{model}-{i}", "phase": "wide", "dataset": dataset, "model": model,
         "sample": i, "seed": 0, "status": "ok", "fid_min": i - 1.0, **columns}
        for model, columns in cost.items()
        for i in range(n + 1)
    ]  # fmt: skip
    return add_scores(pd.DataFrame(rows), FID)


def _random(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["sample"] > 0]


@pytest.mark.parametrize(
    ("flops", "text"),
    [(1.23e12, "1.23 TFLOP"), (4.5e9, "4.5 GFLOP"), (2e15, "2 PFLOP"), (321e15, "321 PFLOP"),
     (999.7e9, "1 TFLOP"), (7.5e6, "7.5 MFLOP")],
)  # fmt: skip
def test_flop_counts_read_with_an_si_prefix(flops, text):
    assert flop_text(flops) == text


def test_axis_units_on_known_numbers():
    flops = cost_unit(pd.DataFrame({"flops": [1.0e12, 2.0e12], "seconds": [1.0, np.nan]}))
    assert (flops.column, flops.text(1.23e12)) == ("flops", "1.23 TFLOP")
    assert flops.axis(3.4e15, "GPU") == ("PFLOP", 1e15)
    assert flops.axis(999.7e9, "GPU") == ("TFLOP", 1e12)
    seconds = cost_unit(pd.DataFrame({"seconds": [10.0, 20.0]}))
    assert seconds.column == "seconds"
    assert seconds.axis(7200.0, "GPU") == ("GPU minutes", 60.0)
    assert seconds.axis(4 * 3600.0, "CPU") == ("CPU hours", 3600.0)
    assert (duration_text(7200.0), duration_text(90.0)) == ("2 h", "90 s")


def test_the_unit_is_flops_only_when_every_trial_has_them():
    old = pd.DataFrame({"seconds": [10.0, 20.0]})
    some = old.assign(flops=[1e12, np.nan])
    assert cost_unit(old.assign(flops=[1e12, 2e12])).column == "flops"
    assert cost_unit(old).column == cost_unit(some).column == "seconds"
    assert "(no `flops` column)" in cost_unit(old).why
    assert "some of these trials" in cost_unit(some).why
    assert cost_unit(pd.DataFrame({"flops": [np.nan], "seconds": [np.nan]})) is None
    assert cost_sentence({"MNIST (wide)": cost_unit(old)}) == (
        "Compute is wall-clock seconds: these results predate FLOP counts (no `flops` column); "
        "another load on the machine bends it."
    )
    mixed = cost_sentence({"MNIST (wide)": cost_unit(some.assign(flops=1e12)),
                           "CIFAR-10 (wide)": cost_unit(some)})  # fmt: skip
    assert mixed.startswith("Compute is counted FLOPs for MNIST (wide) (")
    assert "; wall-clock seconds for CIFAR-10 (wide) (some of these trials" in mixed


def test_the_budget_header_and_axis_say_flops():
    """Two arms, one twice as costly in FLOPs and ten times in seconds: the budget is a fifth
    of the cheaper arm's FLOPs, 50 x 1.23e11 / 5 = 1.23 TFLOP, and the costlier arm buys
    half as many trials, whatever the seconds say."""
    rows = rows_with_cost({"ns": {"flops": 1.23e11, "seconds": 10.0},
                           "wgan_gp": {"flops": 2.46e11, "seconds": 100.0}})  # fmt: skip
    table = ranking(_random(rows), FID)
    cell = table.query("budget == 'compute'").set_index("model")
    assert list(cell["k"]) == pytest.approx([10.0, 5.0])
    assert set(cell["cost"]) == {"flops"}
    assert list(cell["seconds_per_trial"]) == pytest.approx([10.0, 100.0])  # as measured
    assert list(cell["spent"]) == pytest.approx([1.23e12, 1.23e12])
    assert "equal compute: 1.23 TFLOP per arm" in markdown_table(table, "d", FID).columns
    assert any("(equal compute, 1.23 TFLOP per arm)" in line for line in verdict(table, "d", FID))
    fig = compute_curves(rows, FID, "wide")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "TFLOP (log)"
    (dashed,) = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed.get_xdata()[0] == pytest.approx(1.23)
    assert "in counted FLOPs" in fig.get_suptitle()


def test_without_flops_the_budget_follows_seconds():
    rows = rows_with_cost({"ns": {"seconds": 10.0}, "wgan_gp": {"seconds": 100.0}})
    table = ranking(_random(rows), FID)
    cell = table.query("budget == 'compute'").set_index("model")
    assert list(cell["k"]) == pytest.approx([10.0, 1.0])
    assert set(cell["cost"]) == {"seconds"}
    assert "equal compute: 100 s per arm" in markdown_table(table, "d", FID).columns
    assert compute_curves(rows, FID, "wide").axes[0].get_xlabel() == "device minutes (log)"
    # one trial without a FLOP count: the part falls back to seconds
    some = rows_with_cost({"ns": {"seconds": 10.0, "flops": 1e11},
                           "wgan_gp": {"seconds": 100.0, "flops": 1e11}})  # fmt: skip
    some.loc[3, "flops"] = np.nan
    cell = ranking(_random(some), FID).query("budget == 'compute'").set_index("model")
    assert set(cell["cost"]) == {"seconds"}
    assert list(cell["k"]) == pytest.approx([10.0, 1.0])


def test_each_dataset_has_its_own_unit_and_one_without_cost_has_no_compute_panels():
    cost = {"ns": {"seconds": 10.0, "flops": 1e11}, "wgan": {"seconds": 20.0, "flops": 1e11}}
    counted, timed = rows_with_cost(cost, dataset="d1"), rows_with_cost(cost, dataset="d2")
    timed.loc[5, "flops"] = np.nan  # one trial recorded before FLOP counts
    untimed = rows_with_cost({m: {"seconds": np.nan} for m in cost}, dataset="d3")
    rows = pd.concat([counted, timed, untimed], ignore_index=True)
    table = ranking(_random(rows), FID)
    compute = table[table["budget"] == "compute"]
    assert compute.groupby("dataset")["cost"].first().to_dict() == {"d1": "flops", "d2": "seconds"}
    assert "equal compute: 1 TFLOP per arm" in markdown_table(table, "d1", FID).columns
    assert "equal compute: 100 s per arm" in markdown_table(table, "d2", FID).columns
    fig = compute_curves(rows, FID, "wide")
    assert [ax.get_title() for ax in fig.axes] == ["d1 · NS GAN", "d1 · WGAN", "d2 · NS GAN",
                                                   "d2 · WGAN"]  # fmt: skip
    assert [ax.get_xlabel() for ax in fig.axes[::2]] == ["TFLOP (log)", "device minutes (log)"]
    assert "in counted FLOPs, wall-clock seconds" in fig.get_suptitle()


# ---- the report: a busy machine does not move the equal-compute column -----------------------


def _sweep(flops: bool) -> pd.DataFrame:
    return make_sweep(datasets=("mnist",), models=("ns", "wgan_gp", "began"), n_samples=16,
                      seeds=False, seed=2, flops=flops)  # fmt: skip


def _slowed(frame: pd.DataFrame, model: str = "began", factor: float = 5.0) -> pd.DataFrame:
    """The same sweep with one model's trials taking `factor` times as long, as when another
    program ran beside them."""
    frame = frame.copy()
    frame.loc[frame["model"] == model, "seconds"] *= factor
    return frame


def _compute_rows(report) -> pd.DataFrame:
    table = pd.read_csv(report.parent / "ranking.csv")
    return table[table["budget"] == "compute"].reset_index(drop=True)


def _answer(report) -> str:
    text = report.read_text()
    return text[text.index("## Which loss") : text.index("## Protocol")]


@pytest.mark.slow
def test_equal_compute_column_ignores_a_busy_machine_when_flops_are_recorded(tmp_path):
    frame = _sweep(flops=True)
    calm = build_report(write_sweep(frame, tmp_path / "calm"))
    busy = build_report(write_sweep(_slowed(frame), tmp_path / "busy"))
    a, b = _compute_rows(calm), _compute_rows(busy)
    assert len(a) == 3 and set(a["cost"]) == {"flops"}
    assert (a["mark"].isin(("best", "in set", "worse"))).sum() >= 2  # a tested column
    pd.testing.assert_frame_equal(
        a.drop(columns="seconds_per_trial"), b.drop(columns="seconds_per_trial")
    )
    assert _answer(calm) == _answer(busy)  # verdicts, tables and their headers
    assert re.search(r"\| equal compute: [\d.]+ [GTP]FLOP per arm \|", _answer(calm))
    assert "Compute is counted FLOPs: `flops`" in _answer(calm)
    # the seconds did change: they stay in the tables as what the runs took
    slow = a["model"] == "began"
    assert list(b.loc[slow, "seconds_per_trial"]) == pytest.approx(
        list(5 * a.loc[slow, "seconds_per_trial"])
    )
    assert "FLOP counted (" in calm.read_text()  # the protocol's compute spent


@pytest.mark.slow
def test_without_flops_the_report_budgets_seconds_and_says_so(tmp_path):
    frame = _sweep(flops=False)
    calm = build_report(write_sweep(frame, tmp_path / "calm"))
    a = _compute_rows(calm)
    assert set(a["cost"]) == {"seconds"}
    assert "Compute is wall-clock seconds: these results predate FLOP counts (no `flops` " in (
        _answer(calm)
    )
    assert "FLOPs not recorded" in calm.read_text()
    busy = ranking(add_scores(_slowed(frame[frame["sample"] > 0]), FID), FID)
    b = busy[busy["budget"] == "compute"].set_index("model")["k"]
    k = a.set_index("model")["k"]
    # five times the cost: a fifth of the trials, relative to another arm
    assert b["began"] / b["ns"] == pytest.approx(k["began"] / k["ns"] / 5)


# ---- a report from results.csv alone ---------------------------------------------------------


def _csv_only(tmp_path, flops: bool = True):
    frame = make_sweep(datasets=("polygons",), models=("ns", "wgan"), n_samples=12,
                       seeds=False, seed=4, flops=flops)  # fmt: skip
    sweep = write_sweep(frame, tmp_path / "published")
    shutil.rmtree(sweep / "trials")
    return sweep, frame


@pytest.mark.slow
@pytest.mark.parametrize("flops", [True, False])
def test_cli_reports_a_folder_holding_only_results_csv(tmp_path, capsys, flops):
    sweep, frame = _csv_only(tmp_path, flops)
    (sweep / "sweep.json").write_text('{"description": "published table", "metric": "f1"}')
    before = (sweep / "results.csv").read_bytes()
    assert main([str(sweep)]) == 0
    report = sweep / "report" / "report.md"
    assert capsys.readouterr().out.strip() == str(report)
    text = report.read_text()
    assert "> published table" in text and "Primary score: `f1`" in text
    assert ("Compute is counted FLOPs" in text) is flops
    assert ("Compute is wall-clock seconds" in text) is not flops
    assert (sweep / "results.csv").read_bytes() == before  # read, never rewritten
    assert not (sweep / "trials").exists()
    assert (set(FLOP_COLUMNS) <= set(load_results(sweep).columns)) is flops


@pytest.mark.parametrize("cut", ["newline", "mid-row"])
def test_a_results_csv_cut_short_without_trials_is_refused(tmp_path, capsys, cut):
    sweep, _ = _csv_only(tmp_path)
    csv = sweep / "results.csv"
    whole = csv.read_bytes()
    csv.write_bytes(whole[:-1] if cut == "newline" else whole[:-7])
    with pytest.raises(ResultsError, match="does not end in a newline") as error:
        load_results(sweep)
    assert str(csv) in str(error.value)
    assert main([str(sweep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {csv}: does not end in a newline") and "cut short" in err
    assert csv.read_bytes() != whole  # nothing to rebuild it from: left as it is


def test_a_results_csv_cut_short_beside_its_trials_is_rebuilt(tmp_path):
    frame = make_sweep(datasets=("polygons",), models=("ns",), n_samples=4, seeds=False)
    sweep = write_sweep(frame, tmp_path / "s")
    csv = sweep / "results.csv"
    whole = csv.read_bytes()
    csv.write_bytes(whole[:-7])  # the last row loses its last values
    loaded = load_results(sweep)
    assert sorted(loaded["trial_id"]) == sorted(frame["trial_id"])
    assert loaded.set_index("trial_id")["flops"].notna().all()
    assert csv.read_bytes().endswith(b"\n") and len(pd.read_csv(csv)) == len(frame)

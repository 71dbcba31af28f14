"""The benchmark runs end to end in --quick mode and writes well-formed JSON (no timing asserts)."""

from __future__ import annotations

import json

import pytest

from benchmark.perf import bench


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    argv = ["--quick", "--device", "cpu", "--models", "ns", "--datasets", "mnist", "--workers", "1"]
    returned = bench.main([*argv, "--out", str(out)])
    return returned, json.loads(out.read_text())


def test_quick_run_writes_the_record_it_returns(record):
    returned, stored = record
    assert stored == json.loads(json.dumps(returned))
    for key in (
        "device",
        "torch_version",
        "batch_size",
        "variants",
        "steps",
        "fid_extractor",
        "fid_extraction",
        "full_trial",
        "concurrent",
        "notes",
    ):
        assert key in stored, key


def test_steps_has_one_row_per_variant_with_eager_as_the_unit(record):
    _, stored = record
    assert stored["variants"] == ["eager", "optimised", "+channels_last", "+bf16"]
    rows = {row["variant"]: row for row in stored["steps"]}
    assert list(rows) == stored["variants"]
    assert all((r["dataset"], r["model"]) == ("mnist", "ns") for r in rows.values())
    assert all(r["steps_per_s"] > 0 for r in rows.values())
    assert rows["eager"]["ratio_vs_eager"] == 1.0
    for row in rows.values():
        assert row["ratio_vs_eager"] == pytest.approx(
            row["steps_per_s"] / rows["eager"]["steps_per_s"]
        )


def test_fid_trial_and_workers_sections(record):
    _, stored = record
    assert [r["input"] for r in stored["fid_extraction"]] == ["1x28x28"]
    assert stored["fid_extraction"][0]["images_per_s"] > 0
    trial = stored["full_trial"]
    assert trial["estimated"] is True and trial["d_steps"] == 15_625 and trial["evaluations"] == 4
    assert trial["seconds"] == pytest.approx(trial["train_seconds"] + trial["eval_seconds"])
    workers = stored["concurrent"]
    assert workers["workers"] == 1 and len(workers["per_worker_steps_per_s"]) == 1
    assert workers["aggregate_steps_per_s"] == pytest.approx(sum(workers["per_worker_steps_per_s"]))
    assert workers["trials_per_hour"] > 0


def test_table_shows_a_failed_variant_as_failed():
    rows = [
        {
            "dataset": "mnist",
            "model": "ns",
            "variant": "eager",
            "steps_per_s": 2.0,
            "ratio_vs_eager": 1.0,
        },
        {
            "dataset": "mnist",
            "model": "ns",
            "variant": "+compile",
            "steps_per_s": None,
            "ratio_vs_eager": None,
            "note": "failed: RuntimeError",
        },
    ]
    table = bench.format_table(rows, ["eager", "+compile"], 64)
    assert "2.00 ( 1.00x)" in table and "failed" in table


def test_population_rows_are_per_size_with_a_trial_alone_as_the_unit(record):
    _, stored = record
    populations = stored["populations"]
    rows = populations["rows"]
    assert [(r["family"], r["model"], r["population"]) for r in rows] == [
        ("points", "ns", 1),
    ]
    row = rows[0]
    # --quick: no compile, so the step op by op is the best one timed
    assert row["best"] == "op_by_op" and "compiled_trials_per_hour" not in row
    assert row["vs_alone"] == 1.0
    assert row["vs_plain"] == pytest.approx(
        row["op_by_op_trials_per_hour"] / row["plain_trials_per_hour"]
    )
    assert row["of_limit"] == pytest.approx(
        row["op_by_op_trials_per_hour"] / row["limit_trials_per_hour"]
    )
    assert all(row[key] > 0 for key in ("plain_trials_per_hour", "limit_trials_per_hour"))
    assert "Populations on cpu" in bench.summary(stored)


def test_population_members_differ_only_in_numbers():
    from benchmark.perf.bench_populations import family_trial, members
    from benchmark.training.population import population_key

    for family in ("points", "mlp", "infogan"):
        trials = members(family_trial("began", family, 16), 3)
        assert len({population_key(t) for t in trials}) == 1
        assert len({(t.seed, t.lr) for t in trials}) == 3
        assert trials[0].generator == family


def test_auto_violations_name_a_choice_measured_slower_than_alone():
    from benchmark.perf.bench_populations import auto_violations

    rows = [
        {"family": "mlp", "model": "ns", "population": 1, "vs_alone": 1.0, "auto": False},
        {"family": "mlp", "model": "ns", "population": 16, "vs_alone": 0.9, "auto": True},
        {"family": "points", "model": "ns", "population": 16, "vs_alone": 2.4, "auto": True},
    ]
    assert auto_violations(rows) == ["mlp ns: auto picks 16, measured 0.90x a trial alone"]

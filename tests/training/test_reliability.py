"""Kills, damaged files, changed specs and bad disks: a rerun loses nothing and leaves nothing
behind; a damaged file is named with what to do, or rebuilt; never a traceback, never a
silent wrong result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.cli import main
from benchmark.evaluation.refstats import load_or_compute, refstats_path
from benchmark.files import read_json
from benchmark.polygons import cache_path, generate_polygons
from benchmark.training import loop
from benchmark.training.trial_dir import claim
from tests.helpers import subprocess_env, tiny, tiny_spec

# SIGKILLs its own process at one rename, chosen by GANBENCH_TEST_KILL_AT:
# "before:<suffix>[#n]" kills between the n-th temporary write of a file whose name ends with
# <suffix> and its rename; "after:<suffix>[#n]" right after that rename.
KILL_PLUGIN = '''
"""Kill points for tests: SIGKILL this process at a chosen rename."""
import os
import signal

_replace = os.replace
_seen = {}


def _kill_point(src, dst):
    when, _, rest = os.environ.get("GANBENCH_TEST_KILL_AT", "").partition(":")
    suffix, _, nth = rest.partition("#")
    hit = bool(suffix) and os.path.basename(os.fspath(dst)).endswith(suffix)
    if hit:
        _seen[suffix] = _seen.get(suffix, 0) + 1
        hit = _seen[suffix] == int(nth or 1)
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    _replace(src, dst)
    if hit and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)


os.replace = _kill_point
'''

TRIAL = ("trial", "--plugin", "ganbench_testplugin", "--dataset", "tiny", "--model", "ns")
TRIAL += ("--steps", "8", "--eval-every-epochs", "4", "--batch-size", "16", "--no-progress")
FID = ("--metrics", "fid", "--feature-extractor", "tiny", "--fid-n-real", "32")
FID += ("--fid-n-fake", "32")


def temporaries(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.tmp"))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---- kills -------------------------------------------------------------------------------


def test_kills_at_every_rename_leave_nothing_behind(plugin_dir, tmp_path):
    """Real SIGKILLs: inside a cache write, inside a checkpoint write, and between storing
    result.json and deleting the checkpoint. Each rerun tidies what the killed one left."""
    (plugin_dir / "ganbench_killplugin.py").write_text(KILL_PLUGIN)
    out, cache = tmp_path / "trial", tmp_path / "cache"
    env = {**subprocess_env(plugin_dir), "GANBENCH_CACHE": str(cache), "GANBENCH_TEST_MARKERS": ""}
    argv = [sys.executable, "-m", "benchmark", *TRIAL, *FID, "--out", str(out)]
    argv += ["--plugin", "ganbench_killplugin"]

    def run(kill_at: str) -> int:
        done = subprocess.run(
            argv, env={**env, "GANBENCH_TEST_KILL_AT": kill_at}, capture_output=True, text=True
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    assert run("before:.npz") == -9  # writing the reference statistics, before training
    assert len(temporaries(cache)) == 1 and not list(cache.rglob("*.npz"))
    assert not (out / "trial.json").exists()  # nothing of the trial was written yet

    assert run("before:checkpoint.pt#2") == -9
    assert not temporaries(cache) and len(list(cache.rglob("*.npz"))) == 1
    assert [p.name.split("~")[0] for p in temporaries(out)] == [".checkpoint.pt"]
    assert (out / "checkpoint.pt").exists() and not (out / "result.json").exists()

    assert run("after:result.json") == -9
    assert not temporaries(out, cache)
    assert (out / "result.json").exists() and (out / "checkpoint.pt").exists()
    stored = (out / "result.json").read_bytes()

    assert run("") == 0  # the finished trial is read back, and its spare checkpoint goes
    assert not (out / "checkpoint.pt").exists() and not temporaries(out, cache)
    assert (out / "result.json").read_bytes() == stored
    result = read_json(out / "result.json")
    assert (result["status"], result["d_steps"]) == ("ok", 8)
    # every 4 steps from the reference's first (step index 4, i.e. 5 updates), and the end
    assert [c["d_steps"] for c in result["checkpoints"]] == [5, 8]


def test_a_sweep_rerun_tidies_its_finished_trials(plugin, tmp_path):
    """What a kill after result.json leaves (the checkpoint, a temporary file) goes on rerun."""
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",))
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    (directory,) = (tmp_path / "tiny" / "trials").iterdir()
    (directory / "checkpoint.pt").write_bytes(b"x" * 1000)
    (directory / ".generator.pt~host~1~abc.tmp").write_bytes(b"x" * 1000)
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    assert sorted(p.name for p in directory.iterdir()) == [
        ".lock", "generator.pt", "metrics.jsonl", "result.json", "runs.log", "samples.png",
        "trial.json",
    ]  # fmt: skip


def test_a_second_trial_command_on_the_same_out_is_refused(plugin, tmp_path, capsys):
    out = tmp_path / "trial"
    with claim(out, wait=False) as held:  # as a first `trial` command running there
        assert held
        assert main([*TRIAL, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: out='{out}' is not allowed") and "no other process" in line
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # it trained nothing


# ---- damaged files -----------------------------------------------------------------------

DAMAGED_JSON = {
    "empty": b"",
    "empty object": b"{}",
    "a list": b"[]",
    "not UTF-8": b"\xff\xfe{",
    "truncated": b'{"trial_id": "',
}


@pytest.mark.parametrize("name", ["result.json", "trial.json"])
def test_a_damaged_record_is_named_with_what_to_do(plugin, tmp_path, capsys, name):
    out = tmp_path / "trial"
    assert main([*TRIAL, "--out", str(out)]) == 0
    intact = (out / name).read_bytes()
    remedy = "delete it to run the trial again" if name == "result.json" else "delete or move"
    for what, data in DAMAGED_JSON.items():
        (out / name).write_bytes(data)
        capsys.readouterr()
        assert main([*TRIAL, "--out", str(out)]) == 2, what
        line = one_error_line(capsys)
        assert line.startswith(f"error: {out / name}: damaged (") and remedy in line, line
    (out / name).write_bytes(intact)
    assert main([*TRIAL, "--out", str(out)]) == 0


def test_a_result_of_another_trial_is_not_taken_for_this_one(plugin, tmp_path, capsys):
    out = tmp_path / "trial"
    assert main([*TRIAL, "--out", str(out)]) == 0
    record = read_json(out / "result.json")
    (out / "result.json").write_text(pd.Series({**record, "trial_id": "0" * 16}).to_json())
    capsys.readouterr()
    assert main([*TRIAL, "--out", str(out)]) == 2
    assert "it is the result of trial 0000000000000000" in one_error_line(capsys)


def test_sweeps_name_a_damaged_result(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",))
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    (path,) = (tmp_path / "tiny" / "trials").glob("*/result.json")
    path.write_bytes(b"{")
    capsys.readouterr()
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 2
    assert one_error_line(capsys).startswith(f"error: {path}: damaged (JSONDecodeError")
    # ...and so does a seeds phase that takes its settings from that sweep.
    seeds = tmp_path / "seeds.toml"
    seeds.write_text(
        f'plugins = ["ganbench_testplugin"]\nphase = "seeds"\nfrom = "{tmp_path / "tiny"}"\n'
        'datasets = ["tiny"]\nmodels = ["ns"]\nreport_seeds = 1\nmetric = "d_steps"\n'
        'direction = "max"\n'
    )
    assert main(["sweep", str(seeds), "--no-report", "--dry-run"]) == 2
    assert f"{path}: damaged (JSONDecodeError" in one_error_line(capsys)


def _checkpoint_then_die(monkeypatch) -> None:
    real_commit = loop.commit_checkpoints

    def save_then_die(staged):
        real_commit(staged)
        raise KeyboardInterrupt  # as if killed right after the first checkpoint

    monkeypatch.setattr(loop, "commit_checkpoints", save_then_die)


def test_a_damaged_checkpoint_restarts_the_trial_and_says_so(tmp_path, monkeypatch, capsys):
    """Flipped bytes inside a tensor would load silently and end "ok" with other weights; a
    truncated or empty file would stop every rerun. Each now restarts from step 0."""
    trial = tiny("ns", steps=8)  # checkpoints after 7 and 8 D steps
    loop.run_trial(trial, tmp_path / "straight", progress=False)
    straight = torch.load(tmp_path / "straight" / "generator.pt", weights_only=True)
    for damage in ("flipped byte", "truncated", "empty"):
        with monkeypatch.context() as patch:
            _checkpoint_then_die(patch)
            with pytest.raises(KeyboardInterrupt):
                loop.run_trial(trial, tmp_path / damage, progress=False)
        path = tmp_path / damage / "checkpoint.pt"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # inside a tensor: torch.load alone would not notice
        cut = {"flipped byte": len(data), "truncated": len(data) // 2, "empty": 0}[damage]
        path.write_bytes(bytes(data[:cut]))
        capsys.readouterr()
        result = loop.run_trial(trial, tmp_path / damage, progress=False)
        err = capsys.readouterr().err
        assert f"warning: {path}: damaged (" in err and "the trial restarts from step 0" in err
        assert (result["status"], result["d_steps"]) == ("ok", 8)
        resumed = torch.load(tmp_path / damage / "generator.pt", weights_only=True)
        for name, tensor in straight.items():
            torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=0, msg=name)


CACHE_DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "flipped byte": lambda data: (
        data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1 :]
    ),
    "garbage": lambda data: b"not a zip archive at all",
}


@pytest.mark.parametrize("damage", sorted(CACHE_DAMAGE))
def test_damaged_reference_statistics_are_recomputed(tmp_path, damage):
    fields = {"dataset": "x", "count": 20}
    features = torch.randn(20, 4, generator=torch.Generator().manual_seed(0))
    first, hit = load_or_compute(fields, lambda: features, root=tmp_path)
    assert not hit
    path = refstats_path(fields, tmp_path)
    path.write_bytes(CACHE_DAMAGE[damage](path.read_bytes()))
    again, hit = load_or_compute(fields, lambda: features, root=tmp_path)
    assert not hit  # recomputed, not read
    np.testing.assert_array_equal(again.sigma, first.sigma)
    assert load_or_compute(fields, lambda: features, root=tmp_path)[1]  # and stored intact


def test_reference_statistics_with_wrong_shapes_or_nan_are_recomputed(tmp_path):
    fields = {"dataset": "y", "count": 20}
    features = torch.randn(20, 4, generator=torch.Generator().manual_seed(1))
    first, _ = load_or_compute(fields, lambda: features, root=tmp_path)
    path = refstats_path(fields, tmp_path)
    with np.load(path) as stored:
        arrays = dict(stored)
    for bad in ({"sigma": arrays["sigma"][:2]}, {"mu": arrays["mu"] * np.nan}):
        with open(path, "wb") as handle:
            np.savez(handle, **{**arrays, **bad})
        again, hit = load_or_compute(fields, lambda: features, root=tmp_path)
        assert not hit
        np.testing.assert_array_equal(again.mu, first.mu)


@pytest.mark.parametrize("damage", sorted(CACHE_DAMAGE))
def test_a_damaged_polygons_cache_is_regenerated(damage):
    sizes = (20, 5, 5)
    first = generate_polygons(sizes=sizes)
    path = cache_path(sizes=sizes)
    path.write_bytes(CACHE_DAMAGE[damage](path.read_bytes()))
    again = generate_polygons(sizes=sizes)
    for split, images in first.items():
        np.testing.assert_array_equal(again[split], images)


# ---- changed specs, unscored sweeps, bad disks ---------------------------------------------


def test_a_changed_spec_is_refused_naming_what_changed(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",), steps=4)
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    tiny_spec(spec, models=("ns",), steps=8)
    capsys.readouterr()
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {spec}: steps=8 is not allowed; expected 4 as in the 1 trial")
    assert str(tmp_path / "tiny" / "trials") in line
    assert len(list((tmp_path / "tiny" / "trials").iterdir())) == 1  # nothing ran
    # Growing the plan (more seeds) keeps every trial it had: that is allowed.
    tiny_spec(spec, models=("ns",), steps=4, seeds=2)
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    assert len(pd.read_csv(tmp_path / "tiny" / "results.csv")) == 2


def test_a_sweep_whose_trials_all_diverged_is_finished(plugin, tmp_path, capsys):
    """Divergence is a result: every trial is stored and counted, and the sweep exits 0 (the
    report of such a sweep is the analysis' part)."""
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "wgan"), extra='loss = "test_nan"\n')
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 0
    assert "2 of 2 trials finished, 0 failed" in capsys.readouterr().out
    frame = pd.read_csv(tmp_path / "tiny" / "results.csv")
    assert list(frame["status"]) == ["diverged", "diverged"]


def test_a_failed_report_suggests_a_command_with_the_sweeps_options(
    plugin, tmp_path, capsys, monkeypatch
):
    import analysis

    def fail(*args, **kwargs):
        raise ValueError("metric 'f1' has no value")

    monkeypatch.setattr(analysis, "build_report", fail)
    spec = tiny_spec(
        tmp_path / "tiny.toml", models=("ns",), extra='metric = "d_steps"\ndirection = "max"\n'
    )
    assert main(["sweep", str(spec), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2:] == [
        "report failed: ValueError: metric 'f1' has no value",
        f"rebuild it with: python -m benchmark report {tmp_path / 'tiny'} --metric d_steps "
        "--direction max --expected-trials 1",
    ]


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_an_unusable_cache_is_refused_before_training(plugin, tmp_path, capsys, monkeypatch, kind):
    (tmp_path / "afile").write_text("x")
    cache = tmp_path / "afile" / ("sub" if kind == "under a file" else "")
    monkeypatch.setenv("GANBENCH_CACHE", str(cache).rstrip("/"))
    monkeypatch.setenv("GANBENCH_TEST_MARKERS", "0")  # the plugin's run log would make `out`
    out = tmp_path / "trial"
    assert main([*TRIAL, *FID, "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: GANBENCH_CACHE='{str(cache).rstrip('/')}' is not allowed")
    assert not out.exists()
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",))
    assert main(["sweep", str(spec), "--no-report", "--no-progress"]) == 2
    assert "GANBENCH_CACHE=" in one_error_line(capsys)
    assert not (tmp_path / "tiny").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folders_are_refused_before_training(plugin, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main([*TRIAL, "--out", str(locked / "trial")]) == 2
        assert "is read-only" in one_error_line(capsys)
        monkeypatch.setenv("GANBENCH_CACHE", str(locked))
        assert main([*TRIAL, *FID, "--out", str(tmp_path / "trial")]) == 2
        assert "GANBENCH_CACHE=" in one_error_line(capsys)
        assert not (tmp_path / "trial" / "trial.json").exists()
    finally:
        locked.chmod(0o755)

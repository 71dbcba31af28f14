"""The edges of the file system and of a sweep's life: names that make no folder, a missing
data root, dangling links, read-only folders, a damaged results.csv, a report during a
sweep, a sweep that scored nothing, and two sweeps of different plans on one directory.
Each is refused in one line (exit 2) before anything is written, or handled as a result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.files import read_json
from tests.helpers import SWEEP, TRIAL, marker_counts, subprocess_env, tiny_spec

# ---- refusals before anything is written -------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "shown"),
    [
        (".toml", "", "name='.toml'"),
        ("..toml", "", "name='.'"),
        ("...toml", "", "name='..'"),
        ("s.toml", 'name = "a/b"\n', "name='a/b'"),
        ("s.toml", f'name = "{"x" * 201}"\n', "at most 200"),
    ],
)
def test_a_sweep_name_that_is_no_folder_is_refused(plugin, tmp_path, capsys, file, text, shown):
    spec = tiny_spec(tmp_path / file, extra=text)
    before = sorted(tmp_path.iterdir())
    assert main(["sweep", str(spec), *SWEEP]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and shown in err[0], err
    assert sorted(tmp_path.iterdir()) == before


def test_an_over_long_out_component_is_refused(plugin, tmp_path, capsys):
    out = tmp_path / ("x" * 300) / "trial"
    assert main([*TRIAL, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at most 255 bytes" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_data_root_is_refused_before_the_sweep_writes(plugin, tmp_path, capsys):
    text = tiny_spec(tmp_path / "m.toml").read_text().replace('["tiny"]', '["mnist"]')
    spec = tmp_path / "m.toml"
    spec.write_text(text + f'data_root = "{tmp_path / "nowhere"}"\n')
    assert main(["sweep", str(spec), *SWEEP]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"data_root='{tmp_path / 'nowhere'}'" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml"]


IMAGES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
LABELS = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.mark.parametrize(
    ("files", "conditional", "absent"),
    [
        ((), False, IMAGES[0]),  # a data root without the dataset's folder
        (IMAGES[:1], False, IMAGES[1]),
        (IMAGES, True, LABELS[0]),  # images but no labels, which a conditional trial needs
    ],
)
def test_a_data_root_lacking_the_datasets_files_is_refused_before_the_sweep_writes(
    plugin, tmp_path, capsys, files, conditional, absent
):
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for file in files:
        (root / "mnist" / file).write_bytes(b"")  # only their presence is checked
    text = tiny_spec(tmp_path / "m.toml").read_text().replace('["tiny"]', '["mnist"]')
    variant = '[[variants]]\nname = "cond"\nconditional = true\n' if conditional else ""
    spec = tmp_path / "m.toml"
    spec.write_text(text + f'data_root = "{root}"\n' + variant)
    before = sorted(tmp_path.rglob("*"))
    assert main(["sweep", str(spec), *SWEEP]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"data_root='{root}'" in err[0], err
    assert f"{absent} (or un-gzipped)" in err[0] and f"in {root / 'mnist'}" in err[0], err
    assert ("with labels" in err[0]) == conditional, err
    assert sorted(tmp_path.rglob("*")) == before


def test_a_conditional_trial_without_labels_is_refused_before_it_writes(tmp_path, capsys):
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for file in IMAGES:
        (root / "mnist" / file).write_bytes(b"")
    out = tmp_path / "out" / "trial"
    args = ["trial", "--dataset", "mnist", "--model", "ns", "--conditional"]
    assert main([*args, "--data-root", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and LABELS[0] in err[0] and str(root / "mnist") in err[0], err
    assert not (tmp_path / "out").exists()


def test_cifar10_npz_without_labels_is_named_for_conditional_trials(tmp_path):
    import numpy as np

    from benchmark.datasets import DATASETS

    (tmp_path / "cifar10").mkdir()
    np.savez(tmp_path / "cifar10" / "train.npz", x=np.zeros((2, 32, 32, 3), np.uint8))
    missing = DATASETS.get("cifar10").missing
    assert missing(tmp_path, False) is None
    assert missing(tmp_path, True) == f"labels (an array y) in train.npz in {tmp_path / 'cifar10'}"
    np.savez(tmp_path / "cifar10" / "train.npz", x=np.zeros((2, 32, 32, 3), np.uint8), y=[0, 1])
    assert missing(tmp_path, True) is None
    assert "cifar-10-batches-py" in missing(tmp_path / "elsewhere", False)


def test_a_dangling_symlink_sweep_folder_is_refused(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml")
    (tmp_path / "tiny").symlink_to(tmp_path / "gone")
    assert main(["sweep", str(spec), *SWEEP]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a symlink to" in err[0] and "does not exist" in err[0], err
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("code", ["import sys; sys.exit(3)", "raise KeyboardInterrupt"])
def test_a_plugin_that_ends_the_process_is_refused(plugin_dir, tmp_path, monkeypatch, capsys, code):
    (tmp_path / "ganbench_exitplugin.py").write_text(code + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ganbench_exitplugin", raising=False)
    assert main(["list", "--plugin", "ganbench_exitplugin"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plugins='ganbench_exitplugin'" in err[0], err


# ---- a damaged results.csv ---------------------------------------------------------------


@pytest.fixture
def finished(plugin, tmp_path) -> Path:
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "wgan"), seeds=2)
    assert main(["sweep", str(spec), *SWEEP]) == 0
    return tmp_path / "tiny"


def test_a_results_csv_that_is_a_directory_is_refused(finished, capsys):
    csv = finished / "results.csv"
    csv.unlink()
    csv.mkdir()
    capsys.readouterr()
    assert main(["report", str(finished)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {csv}: cannot be read (Is a directory)"]
    assert not (finished / "report").exists() or not list((finished / "report").iterdir())


def test_a_truncated_results_csv_is_rebuilt(finished):
    from analysis.load import load_results

    csv = finished / "results.csv"
    whole = csv.read_bytes()
    expected = pd.read_csv(csv)
    for cut in (len(whole) - 7, whole.rindex(b"\n", 0, len(whole) - 1) + 1):  # mid-row, a row
        csv.write_bytes(whole[:cut])
        frame = load_results(finished)
        assert sorted(frame["trial_id"]) == sorted(expected["trial_id"])
        rebuilt = pd.read_csv(csv)  # rewritten whole, from the trials' result.json
        assert sorted(rebuilt.columns) == sorted(expected.columns)
        pd.testing.assert_frame_equal(
            rebuilt[expected.columns].sort_values("trial_id").reset_index(drop=True),
            expected.sort_values("trial_id").reset_index(drop=True),
            check_dtype=False,  # the rebuild stores numeric columns as floats (0.0 for 0)
        )


# ---- a sweep that scored nothing ---------------------------------------------------------

NAN_PLUGIN = '''
"""A model whose D loss is NaN from the first step: every trial diverges unscored."""
from benchmark.losses import LOSSES, Loss
from benchmark.models import MODELS, ModelPreset

LOSSES.register(
    "nanloss",
    Loss(d=lambda real, fake, state: real.mean() * float("nan"), g=lambda fake, state: fake.mean()),
)
MODELS.register("nanmodel", ModelPreset(loss="nanloss"))
'''


def test_a_sweep_whose_every_trial_diverged_is_reported(plugin, tmp_path, monkeypatch, capsys):
    (tmp_path / "ganbench_nanplugin.py").write_text(NAN_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ganbench_nanplugin", raising=False)
    spec = tiny_spec(tmp_path / "nan.toml", models=("nanmodel",), seeds=2, eval_every=2)
    text = spec.read_text().replace(
        '"ganbench_testplugin"', '"ganbench_testplugin", "ganbench_nanplugin"'
    )
    text = text.replace("metrics = []", 'metrics = ["fid"]\nfeature_extractor = "tiny"')
    spec.write_text(text + "fid_n_real = 32\nfid_n_fake = 32\n")
    assert main(["sweep", str(spec), "--no-progress"]) == 0
    results = pd.read_csv(tmp_path / "nan" / "results.csv")
    assert list(results["status"]) == ["diverged", "diverged"]
    assert list(results["diverged_at"]) == [1, 1]
    report = (tmp_path / "nan" / "report" / "report.md").read_text()
    assert (
        "No trial finished with a `fid_min` value (2 diverged): there is nothing to rank." in report
    )
    capsys.readouterr()
    assert main(["report", str(tmp_path / "nan")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "nan" / "report" / "report.md")


# ---- racing sweeps -----------------------------------------------------------------------


def test_two_sweeps_of_one_name_and_different_plans_started_together(plugin_dir, tmp_path):
    """The plan is checked and recorded under the sweep directory's lock: whichever comes
    second is refused (exit 2, naming the setting that differs) before it trains."""
    specs = [
        tiny_spec(tmp_path / f"{steps}.toml", models=("ns",), steps=steps, extra='name = "race"\n')
        for steps in (4, 6)
    ]
    env = subprocess_env(plugin_dir)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmark", "sweep", str(spec), *SWEEP],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    (refused,) = [err for code, err in outcomes if code == 2]
    assert refused.startswith("error: ") and "steps=" in refused and "another plan" in refused
    (trial,) = (tmp_path / "race" / "trials").iterdir()
    assert marker_counts(tmp_path / "race") == {trial.name: (1, 1)}  # one sweep trained
    winner = [4, 6][[code for code, _ in outcomes].index(0)]
    assert read_json(trial / "result.json")["d_steps"] == winner


def test_a_report_during_a_sweep_leaves_results_csv_to_the_sweep(finished):
    """While a sweep runs (it holds .running shared), a report builds its table in memory;
    once none runs, the rebuilt table is written."""
    import fcntl

    from analysis.load import load_results

    csv = finished / "results.csv"
    whole = csv.read_bytes()
    csv.write_bytes(whole[: len(whole) // 2])
    with open(finished / ".running", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)  # as a running sweep
        assert len(load_results(finished)) == 4
        assert csv.read_bytes() == whole[: len(whole) // 2]
    assert len(load_results(finished)) == 4
    assert len(pd.read_csv(csv)) == 4


@pytest.mark.parametrize("folder", ["trials", "report"])
def test_a_read_only_trials_or_report_folder_is_refused(finished, monkeypatch, capsys, folder):
    """os.access is what the check asks (root passes every real permission check, so the
    answer is simulated); the refusal comes before anything is written."""
    (finished / folder).mkdir(exist_ok=True)
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and Path(p).name != folder)
    before = sorted(str(p) for p in finished.rglob("*"))
    capsys.readouterr()
    argv = ["sweep", str(finished.parent / "tiny.toml"), *SWEEP]
    assert main(argv if folder == "trials" else ["report", str(finished)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"({finished / folder} is read-only)" in err[0], err
    assert sorted(str(p) for p in finished.rglob("*")) == before

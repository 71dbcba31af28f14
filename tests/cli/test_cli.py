"""The trial command as a user sees it: one-line errors with exit code 2, before any training."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys

import pytest


def run_cli(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


BASE = ("trial", "--dataset", "polygons", "--model", "ns", "--steps", "4")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--lr", "0"), "error: lr=0.0 is not allowed; expected a number > 0"),
        (("--beta1", "1.5"), "error: beta1=1.5 is not allowed; expected a number in [0, 1]"),
        (("--n-disc", "0"), "error: n_disc=0 is not allowed; expected an integer >= 1"),
        (("--clip", "-0.01"), "error: clip=-0.01 is not allowed; expected a number > 0 (or unset)"),
        (("--lam", "-1"), "error: lam=-1.0 is not allowed; expected a number >= 0"),
        (("--gamma", "2"), "error: gamma=2.0 is not allowed; expected a number in [0, 1]"),
        (("--loss", "nope"), "error: loss='nope' is not allowed; expected one of ['began', "),
    ],
)
def test_out_of_range_values(tmp_path, extra, message):
    done = run_cli(*BASE, "--out", str(tmp_path / "t"), *extra)
    assert done.returncode == 2
    assert done.stderr.strip().startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t").exists()  # stopped before any work


def test_unknown_model_and_dataset(tmp_path):
    done = run_cli("trial", "--dataset", "polygons", "--model", "gan9", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "model='gan9' is not allowed; expected one of ['began', 'dragan'" in done.stderr
    done = run_cli("trial", "--dataset", "imagenet", "--model", "ns", "--out", str(tmp_path))
    assert done.returncode == 2
    assert "dataset='imagenet' is not allowed; expected one of ['celeba', 'cifar10'" in done.stderr


def test_unknown_parameter_name(tmp_path):
    done = run_cli(*BASE, "--out", str(tmp_path), "--learning-rate", "1e-3")
    assert done.returncode == 2
    assert "unrecognized arguments: --learning-rate 1e-3" in done.stderr


def test_missing_data_file_names_the_files(tmp_path):
    done = run_cli(
        "trial", "--dataset", "mnist", "--model", "ns", "--out", str(tmp_path / "t"),
        "--data-root", str(tmp_path / "empty"),
    )  # fmt: skip
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "train-images-idx3-ubyte.gz" in line and str(tmp_path / "empty" / "mnist") in line
    assert not (tmp_path / "t").exists()


PLUGIN = """
from benchmark.losses import LOSSES, Loss

LOSSES.register(
    "test_plugin_loss", Loss(d=lambda r, f, s: (f - r).mean(), g=lambda f, s: -f.mean())
)
"""


def test_a_loss_from_a_user_module_is_picked_up_by_name(tmp_path):
    (tmp_path / "my_losses.py").write_text(PLUGIN)
    out = tmp_path / "trial"
    done = run_cli(
        *BASE, "--out", str(out), "--plugin", "my_losses", "--loss", "test_plugin_loss",
        "--no-progress", "--batch-size", "8", "--eval-every-epochs", "0.001",
        env={"PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert (result["loss"], result["plugins"], result["status"]) == (
        "test_plugin_loss",
        ["my_losses"],
        "ok",
    )
    # Without the plugin, the name is unknown and the error says so.
    done = run_cli(*BASE, "--out", str(tmp_path / "t2"), "--loss", "test_plugin_loss")
    assert done.returncode == 2 and "loss='test_plugin_loss' is not allowed" in done.stderr


def test_a_trick_the_loss_cannot_take_exits_2_naming_option_and_loss(tmp_path):
    done = run_cli(
        "trial", "--dataset", "polygons", "--model", "wgan_gp", "--steps", "4",
        "--out", str(tmp_path / "t"), "--label-smoothing", "0.1",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: label_smoothing=0.1 is not allowed; expected 0: loss 'wgan' has no real/fake "
        "targets (losses with targets: ['ls', 'mm', 'ns'])"
    )
    assert not (tmp_path / "t").exists()


# ---- help ----------------------------------------------------------------------------------


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    from benchmark.cli import COMMANDS, build_parser

    parsers = {}
    for command in COMMANDS:
        sub = next(a for a in build_parser(command)._actions if a.dest == "command")
        parsers[command] = sub.choices[command]
    return parsers


def test_every_option_of_every_command_has_a_one_line_help():
    """Walks the parsers: each option says what it is; one that takes a value (and is not
    required) names its default. The report's options are the analysis package's."""
    missing = []
    for command, parser in command_parsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = (action.help or "").strip()
            name = f"{command} {'/'.join(action.option_strings) or action.dest}"
            if not text or "\n" in text:
                missing.append(f"{name}: no one-line help")
            takes_value = action.option_strings and action.nargs != 0 and not action.required
            if takes_value and command != "report" and "default" not in text:
                missing.append(f"{name}: help names no default")
    assert missing == []


def test_every_trial_field_has_help_with_its_default():
    from benchmark.cli.trial import trial_option_help
    from benchmark.config import TrialConfig

    options = TrialConfig.options
    assert list(options) == [f.name for f in dataclasses.fields(TrialConfig)]
    assert all(option.help for option in options.values())

    def shown(name: str) -> str:
        return trial_option_help(options[name])

    assert shown("steps") == (
        "training length in D steps, for short runs (one D step = one real batch) "
        "(D steps; default: unset (epochs))"
    )
    assert shown("eval_every_epochs") == (
        "reference epochs between evaluated checkpoints (and the last step) (epochs; default: 5.0)"
    )
    assert shown("lr") == "Adam learning rate of D and G (default: the model's preset)"
    assert shown("metrics").endswith("(default: none (a single trial evaluates only when asked))")
    assert shown("channels_last").endswith("(default: off)")
    parser = command_parsers()["trial"]
    helps = {a.dest: a.help for a in parser._actions}
    assert helps["polygon_steps"] == shown("polygon_steps")


def test_help_prints_and_exits_zero():
    done = run_cli("trial", "--help")
    assert done.returncode == 0
    assert "--polygon-n-recall" in done.stdout and "(default: 200)" in done.stdout

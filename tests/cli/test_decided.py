"""Cases where the right behaviour had to be decided (docs/failures.md): each
decision, pinned. A plugin that ends the run, options a mode ignores, a damaged sweep.json,
a report that cannot write, a signal before the command starts or during the report, a
network that takes dimension 0 for its batch, MLP networks on points."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from benchmark import interrupt
from benchmark.cli import EXIT_WRITE_FAILED, main
from benchmark.errors import ConfigError
from benchmark.losses import LOSSES, Loss
from benchmark.models import resolve_trial
from tests.helpers import SWEEP, TRIAL, subprocess_env, tiny_spec


def _raise(error: BaseException):
    def d(real, fake, state):
        raise error

    return d


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        # A stop, not the trial's failure: submitit ends a job it requeues with SystemExit.
        (SystemExit(3), 3, "stopped: SystemExit(3) raised inside the run"),
        (SystemExit(0), 1, "stopped: SystemExit(0) raised inside the run"),
        (KeyboardInterrupt(), interrupt.EXIT_INTERRUPTED, "interrupted by KeyboardInterrupt"),
    ],
)
def test_a_loss_that_ends_the_run_stops_it_in_one_line(plugin, tmp_path, capsys, error, code, line):
    LOSSES.register("test_ends", Loss(d=_raise(error), g=lambda fake, state: fake.mean()))
    out = tmp_path / "trial"
    assert main([*TRIAL, "--loss", "test_ends", "--out", str(out)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line) and "resumable" in err[0], err
    assert not (out / "result.json").exists()  # nothing recorded: a rerun trains it


def test_a_stop_asked_for_during_the_report_ends_with_the_interrupted_line(
    plugin, tmp_path, capsys, monkeypatch
):
    import benchmark.cli.sweep as sweep_command

    def report_then_signal(spec, planned):
        interrupt.request(signal.SIGTERM)  # as the handler does when SIGTERM arrives
        return True

    monkeypatch.setattr(sweep_command, "_report", report_then_signal)
    spec = tiny_spec(
        tmp_path / "tiny.toml", models=("ns",), extra='metric = "d_steps"\ndirection = "max"\n'
    )
    assert main(["sweep", str(spec), "--no-progress"]) == interrupt.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("interrupted by SIGTERM")
    assert (tmp_path / "tiny" / "results.csv").exists()  # the sweep itself had finished


@pytest.mark.slow
def test_a_signal_during_start_up_stops_with_the_interrupted_line(plugin_dir, tmp_path):
    """SIGTERM while `python -m benchmark` still imports torch: the command starts, stops at
    once with the interrupted line and exit 75, and writes nothing."""
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",))
    argv = [sys.executable, "-m", "benchmark", "sweep", str(spec), *SWEEP]
    process = subprocess.Popen(argv, env=subprocess_env(plugin_dir), stderr=subprocess.PIPE)
    time.sleep(0.3)  # past the interpreter's start, within the imports (seconds)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == interrupt.EXIT_INTERRUPTED, err
    assert err.decode().strip().startswith("interrupted by SIGTERM"), err
    assert not (tmp_path / "tiny").exists()


def test_a_damaged_sweep_json_is_named_by_the_report(plugin, tmp_path, capsys):
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",))
    assert main(["sweep", str(spec), *SWEEP]) == 0
    record = tmp_path / "tiny" / "sweep.json"
    record.write_text('{"metric": "w1", ')
    capsys.readouterr()
    assert main(["report", str(tmp_path / "tiny")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{record}: damaged" in err[0] and "rerun the sweep" in err[0], err


def test_a_report_that_cannot_write_exits_74(tmp_path, capsys, monkeypatch):
    import analysis.__main__ as report_command

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "report.md"))

    monkeypatch.setattr(report_command, "build_report", full)
    assert main(["report", str(tmp_path)]) == EXIT_WRITE_FAILED
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'report.md'}: cannot be written (No space left on device)"]


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("--device", "foo", "device='foo'"),
        ("--device", "cuda", "device='cuda'"),
        ("--data-root", "/nowhere", "data-root='/nowhere'"),
    ],
)
def test_gpu_check_tiny_refuses_the_options_it_would_ignore(tmp_path, capsys, option, value, shown):
    out = tmp_path / "check"
    assert main(["gpu-check", "--tiny", "--out", str(out), option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and shown in err[0] and "--tiny" in err[0], err
    assert not out.exists()


def test_mlp_networks_are_refused_on_points():
    with pytest.raises(ConfigError, match="made for images"):
        resolve_trial("ns", "ring", generator="mlp", discriminator="points", metrics=())
    with pytest.raises(ConfigError, match="discriminator='mlp'"):
        resolve_trial("ns", "ring", generator="points", discriminator="mlp", metrics=())
    with pytest.raises(ConfigError, match="discriminator='mlp_began'"):
        resolve_trial("began", "ring", generator="points", discriminator="mlp_began", metrics=())


def test_a_training_length_past_10_to_the_8_d_steps_is_refused():
    with pytest.raises(ConfigError, match=r"steps=1000000000000 .* \[1, 100,000,000\]"):
        resolve_trial("ns", "ring", steps=10**12, metrics=())
    # 1e12 epochs of the ring's 100,000 points at batch 64: far past 10^8 steps
    with pytest.raises(
        ConfigError, match=r"epochs=1000000000000.0 .* at most 64000 \(10\^8 D steps\)"
    ):
        resolve_trial("ns", "ring", epochs=1e12, batch_size=64, metrics=())
    points = {"generator": "points", "discriminator": "points", "metrics": ()}
    resolve_trial("ns", "ring", epochs=64_000, batch_size=64, **points)  # the bound itself


class _BatchFirst(nn.Module):
    """A network written for (B, ...) inputs only: it folds the member axis into its batch."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(x.reshape(-1, 4))


class _Summed(_BatchFirst):
    """Keeps the member axis into its layers, but sums the batch away."""

    def forward(self, x):
        return self.linear(x).sum(dim=1)


class _Leading(_BatchFirst):
    def forward(self, x):
        return self.linear(x)


def test_a_network_that_drops_the_member_axis_is_named_with_both_shapes():
    from benchmark.training.stacked import StackedNetwork

    inputs = torch.zeros(2, 3, 4)  # members, batch, features
    with pytest.raises(
        ValueError, match=r"layer 'linear' .* input of shape \(6, 4\), not \(M=2, B"
    ):
        StackedNetwork([_BatchFirst(), _BatchFirst()])(inputs)
    with pytest.raises(ValueError, match=r"_Summed returned shape \(2, 2\) for inputs of shape "):
        StackedNetwork([_Summed(), _Summed()])(inputs)
    assert StackedNetwork([_Leading(), _Leading()])(inputs).shape == (2, 3, 2)

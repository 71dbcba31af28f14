"""Progress off a terminal: whole lines every 10% or 60 s, so a log stays short."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from benchmark.progress import LineProgress, progress_bar
from tests.helpers import REPO


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_ten_percent():
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(1000, desc="ns/polygons seed 0", unit="step", file=out, clock=clock)
    for _ in range(1000):
        clock.now += 0.01
        bar.update(1)
        bar.set_postfix({"d_loss": "1.2"}, refresh=False)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "ns/polygons seed 0: 100/1,000 steps (10%), 1 s, 100 step/s, d_loss=1.2"
    assert lines[-1].startswith("ns/polygons seed 0: 1,000/1,000 steps (100%), 10 s")


def test_a_line_after_a_minute_without_one_and_a_last_line_on_close():
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(10_000, initial=2_000, desc="t", unit="step", file=out, clock=clock)
    for _ in range(3):
        clock.now += 61
        bar.update(10)  # far from the next 10% mark
    clock.now += 1
    bar.update(5)  # neither a mark nor a minute: no line
    bar.set_postfix(failed=0)
    bar.close()
    bar.close()  # closing twice prints nothing more
    lines = out.getvalue().splitlines()
    assert lines == [
        "t: 2,010/10,000 steps (20%), 61 s, 0.164 step/s",
        "t: 2,020/10,000 steps (20%), 122 s, 0.164 step/s",
        "t: 2,030/10,000 steps (20%), 183 s, 0.164 step/s",
        "t: 2,035/10,000 steps (20%), 184 s, 0.19 step/s, failed=0",
    ]


def test_a_file_gets_lines_and_a_disabled_bar_prints_nothing():
    out = io.StringIO()  # not a terminal
    assert isinstance(progress_bar(10, "t", "step", file=out), LineProgress)
    quiet = progress_bar(10, "t", "step", enabled=False, file=out)
    quiet.update(10)
    quiet.close()
    assert out.getvalue() == ""


def test_a_1000_step_trial_logs_about_ten_lines(tmp_path):
    """The trial command with stderr to a file (as under nohup or SLURM)."""
    plugin = tmp_path / "tinydata.py"
    plugin.write_text(
        "import torch\n"
        "from benchmark.datasets import DATASETS, DatasetSpec, ImageData\n"
        "def _tiny(root, download):\n"
        "    images = torch.randint(0, 256, (96, 1, 8, 8), dtype=torch.uint8,\n"
        "                           generator=torch.Generator().manual_seed(0))\n"
        "    return ImageData('tiny', images[:64], images[64:])\n"
        "DATASETS.register('tiny', DatasetSpec('tiny', (1, 8, 8), 'none', _tiny, "
        "needs_root=False))\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{REPO}", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "stderr.log"
    started = time.monotonic()
    with open(log, "w") as stderr:
        done = subprocess.run(
            [sys.executable, "-m", "benchmark", "trial", "--plugin", "tinydata",
             "--dataset", "tiny", "--model", "ns", "--networks", "mlp", "--batch-size", "8",
             "--steps", "1000", "--out", str(tmp_path / "t")],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=600,
        )  # fmt: skip
    seconds = time.monotonic() - started
    lines = log.read_text().splitlines()
    assert done.returncode == 0, log.read_text()
    # One line per 10% (the bar is updated every 50 steps), plus one per minute of a slow run.
    assert 10 <= len(lines) <= 10 + int(seconds // 60), lines
    assert lines[-1].startswith("ns/tiny seed 0: 1,000/1,000 steps (100%)")
    assert "\r" not in log.read_text()

"""What the tests share: the test doubles (tiny datasets and losses, registered here and
nowhere else), the sweep-test plugin a child process imports, and small helpers.

Importing this module registers `test_squares`, `test_quadrants` and the loss `test_nan`.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from benchmark.datasets import DATASETS, DatasetSpec, ImageData
from benchmark.losses import LOSSES, Loss
from benchmark.models import resolve_trial
from benchmark.training import loop

# ---- an 8x8 image dataset of squares, a loss that goes NaN ---------------------------------


def tiny_images(n: int, seed: int) -> torch.Tensor:
    """8x8 gray squares at random places: cheap, but with structure to learn."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    corners = torch.randint(0, 5, (n, 2), generator=g)
    for i, (r, c) in enumerate(corners.tolist()):
        images[i, 0, r : r + 4, c : c + 4] = 255
    return images


if "test_squares" not in DATASETS:
    DATASETS.register(
        "test_squares",
        DatasetSpec(
            name="test_squares",
            shape=(1, 8, 8),
            files="generated in the test",
            load=lambda root, download: ImageData(
                "test_squares", tiny_images(256, 0), tiny_images(64, 1)
            ),
            needs_root=False,
            epoch=48,  # 6 D steps at batch 8: evaluations after 7 and 12 steps with tiny()
        ),
    )
if "test_nan" not in LOSSES:
    LOSSES.register(
        "test_nan", Loss(d=lambda r, f, s: r.mean() * math.nan, g=lambda f, s: f.mean())
    )


def tiny(model: str = "ns", **overrides):
    values = dict(steps=12, eval_every_epochs=1, batch_size=8, metrics=())
    values.update(overrides)
    return resolve_trial(model, "test_squares", **values)


def kill_after_first_checkpoint(monkeypatch):
    real_commit = loop.commit_checkpoints
    calls = []

    def save_then_die(staged):
        real_commit(staged)
        calls.extend(
            loop.load_checkpoint(p, torch.device("cpu"))["training"]["step"] for _, p in staged
        )
        raise KeyboardInterrupt  # as if the process were killed right after the write

    monkeypatch.setattr(loop, "commit_checkpoints", save_then_die)
    return calls


# ---- a labelled dataset: squares in one of four quadrants -----------------------------------

SIDE = 8
CLASSES = 4  # a square's quadrant


def labelled_squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 images with a 4x4 white square in one of four quadrants; the label is the quadrant."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(CLASSES, (n,), generator=g)
    images = torch.zeros(n, 1, SIDE, SIDE, dtype=torch.uint8)
    for i, y in enumerate(labels.tolist()):
        r, c = 4 * (y // 2), 4 * (y % 2)
        images[i, 0, r : r + 4, c : c + 4] = 255
    return images, labels


def _load_quadrants(root, download) -> ImageData:
    (train, train_labels), (test, test_labels) = labelled_squares(256, 0), labelled_squares(64, 1)
    return ImageData("test_quadrants", train, test, train_labels, test_labels)


if "test_quadrants" not in DATASETS:
    DATASETS.register(
        "test_quadrants",
        DatasetSpec(
            name="test_quadrants",
            shape=(1, SIDE, SIDE),
            files="generated in the test",
            load=_load_quadrants,
            needs_root=False,
            epoch=48,
            classes=CLASSES,
        ),
    )


# ---- sweeps: the plugin a child process imports, specs, markers -----------------------------

REPO = Path(__file__).resolve().parent.parent

# A plugin for sweep tests: an 8x8 dataset (tiny networks, ~1 s trials), a model whose loss
# raises, one whose loss ends its process, and a marker line per trial that trains
# (GANBENCH_TEST_MARKERS=1).
PLUGIN = '''
"""Sweep-test plugin: dataset tiny, models boom and die, and run markers."""
import os
from pathlib import Path

import torch

from benchmark.training import loop
from benchmark.datasets import DATASETS, DatasetSpec, ImageData
from benchmark.losses import LOSSES, Loss
from benchmark.models import MODELS, ModelPreset


def _tiny(root, download):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (96, 1, 8, 8), generator=g, dtype=torch.uint8)
    return ImageData("tiny", images[:64], images[64:])


def _boom(real, fake, state):
    raise RuntimeError("boom")


# An epoch of 16 images: one D step at batch 16, so eval_every_epochs counts D steps.
DATASETS.register(
    "tiny", DatasetSpec("tiny", (1, 8, 8), "none", _tiny, needs_root=False, epoch=16)
)
def _die(real, fake, state):
    # A process that ends without a word, as a segfault in an extension or the OOM killer ends
    # one: $GANBENCH_TEST_DIE is "exit" (os._exit(3)) or a signal's name.
    how = os.environ.get("GANBENCH_TEST_DIE", "exit")
    if how == "exit":
        os._exit(3)
    import signal

    os.kill(os.getpid(), getattr(signal, how))


LOSSES.register("boom", Loss(d=_boom, g=lambda fake, state: fake.mean()))
MODELS.register("boom", ModelPreset(loss="boom"))
LOSSES.register("die", Loss(d=_die, g=lambda fake, state: fake.mean()))
MODELS.register("die", ModelPreset(loss="die"))

_run_population = loop.run_population


def _mark(directory, word):
    if os.environ.get("GANBENCH_TEST_MARKERS") == "1":
        with open(Path(directory) / "runs.log", "a") as log:
            log.write(f"{word} {os.getpid()}\\n")


def _marked(trials, directories, **kwargs):
    fresh = [not (Path(d) / "result.json").exists() for d in directories]
    for directory, new in zip(directories, fresh):
        if new:
            Path(directory).mkdir(parents=True, exist_ok=True)
            _mark(directory, "start")
    results = _run_population(trials, directories, **kwargs)
    for directory, new in zip(directories, fresh):
        if new:
            _mark(directory, "end")
    return results


loop.run_population = _marked

# Chaos hooks (tests/sweep/test_chaos.py), off unless asked for: each D step sleeps
# $GANBENCH_TEST_STEP_SLEEP seconds (a longer run, not more arithmetic: the bits are the
# same), and this process's $GANBENCH_TEST_FAIL_REPLACE-th os.replace fails as a full disk.
if os.environ.get("GANBENCH_TEST_STEP_SLEEP"):
    import time

    from benchmark.training import step as _step

    _pause = float(os.environ["GANBENCH_TEST_STEP_SLEEP"])
    _train_step = _step.GANTraining.train_step

    def _slow_step(self, *args, **kwargs):
        time.sleep(_pause)
        return _train_step(self, *args, **kwargs)

    _step.GANTraining.train_step = _slow_step

if os.environ.get("GANBENCH_TEST_FAIL_REPLACE"):
    import errno

    _fail_at = int(os.environ["GANBENCH_TEST_FAIL_REPLACE"])
    _replace = os.replace
    _replaced = [0]

    def _failing_replace(src, dst, *args, **kwargs):
        _replaced[0] += 1
        if _replaced[0] == _fail_at:
            raise OSError(errno.ENOSPC, "No space left on device (injected)", str(dst))
        return _replace(src, dst, *args, **kwargs)

    os.replace = _failing_replace
'''

TINY_SPEC = """
plugins = ["ganbench_testplugin"]
datasets = ["tiny"]
models = {models}
seeds = {seeds}
steps = {steps}
eval_every_epochs = {eval_every}
batch_size = 16
metrics = []
device = "cpu"
"""


def write_plugin(directory: Path) -> Path:
    (directory / "ganbench_testplugin.py").write_text(PLUGIN)
    return directory


def tiny_spec(path: Path, models=("ns", "wgan"), seeds=1, steps=4, eval_every=4, extra=""):
    text = TINY_SPEC.format(models=list(models), seeds=seeds, steps=steps, eval_every=eval_every)
    path.write_text(text.replace("'", '"') + textwrap.dedent(extra))
    return path


def subprocess_env(plugin_dir: Path) -> dict[str, str]:
    """For `python -m benchmark` in a child: the plugin and this checkout importable, one
    thread each (the test machine has two cores), markers on."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = f"{plugin_dir}:{REPO}"
    env["OMP_NUM_THREADS"] = "1"
    env["GANBENCH_TEST_MARKERS"] = "1"
    return env


def marker_counts(directory: Path) -> dict[str, tuple[int, int]]:
    """trial id -> (starts, ends) from each trial's runs.log."""
    counts = {}
    for trial in sorted((directory / "trials").iterdir()):
        lines = (trial / "runs.log").read_text().split() if (trial / "runs.log").exists() else []
        counts[trial.name] = (lines[0::2].count("start"), lines[0::2].count("end"))
    return counts


TRIAL = ("trial", "--plugin", "ganbench_testplugin", "--dataset", "tiny", "--model", "ns")
SWEEP = ("--no-report", "--no-progress")


def start_sweep(spec: Path, plugin_dir: Path, log: Path) -> subprocess.Popen:
    """`python -m benchmark sweep` in a child process, its output in `log`."""
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark", "sweep", str(spec), "--no-report"],
        cwd=REPO,
        env=subprocess_env(plugin_dir),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children (Linux: from /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has ended: only its exit status is left)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status

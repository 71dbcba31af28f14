"""Publish a finished sweep under results/: what a reader needs to see and check, no checkpoints.

    python -m analysis.publish runs/mixtures-grid results/mixtures-grid \
        --command "python -m benchmark sweep runs/mixtures-grid.toml" --seconds 2900

copies `results.csv`, `sweep.json`, `references.json`, every trial's `trial.json` and
`result.json` (so a trial can be retrained from its record and its scores compared), and the
stored samples of the trials the report draws (each arm's best); leaves out generator
checkpoints and training logs. Then builds the report in `<out>/report` and writes `RUN.md`:
the command, the commit it ran at, the machine, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from analysis.load import load_results
from analysis.report import build_report
from analysis.samples import best_trials
from analysis.scores import add_scores, choose_metric
from benchmark.data_kinds import SAMPLES_NPZ, SAMPLES_PNG
from benchmark.results import (
    REFERENCES,
    RESULT,
    RESULTS_CSV,
    SWEEP_RECORD,
    TRIALS,
)

RECORDS = ("trial.json", RESULT)


def publish(
    sweep_dir: Path, out: Path, command: str, seconds: float | None, commit: str | None = None
) -> Path:
    """Copy the sweep's results to `out`, build its report there; returns RUN.md's path."""
    from analysis.__main__ import sweep_metric

    frame = load_results(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (RESULTS_CSV, SWEEP_RECORD, REFERENCES):
        if (sweep_dir / name).exists():
            shutil.copy2(sweep_dir / name, out / name)
    for trial in sorted((sweep_dir / TRIALS).glob("*/")):
        for name in RECORDS:
            if (trial / name).exists():
                (out / TRIALS / trial.name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(trial / name, out / TRIALS / trial.name / name)
    metric, direction = sweep_metric(sweep_dir)
    chosen, _ = choose_metric(frame, metric, direction)
    for trial_id in best_trials(add_scores(frame, chosen))["trial_id"]:
        for name in (SAMPLES_NPZ, SAMPLES_PNG):
            source = sweep_dir / TRIALS / str(trial_id) / name
            if source.exists():
                shutil.copy2(source, out / TRIALS / str(trial_id) / name)
    build_report(out, metric, direction=direction)
    path = out / "RUN.md"
    path.write_text(run_record(frame, command, seconds, commit))
    return path


def run_record(
    frame: pd.DataFrame, command: str, seconds: float | None, commit: str | None = None
) -> str:
    """RUN.md: how the results were made; `commit` is the one the sweep ran at (default:
    the checkout's, marked when it has uncommitted changes)."""
    dirty = commit is None and bool(_git("status", "--porcelain", "--untracked-files=no"))
    commit = commit or _git("rev-parse", "HEAD") or "unknown"
    recorded = ("torch_version", "ganbench_version", "device", "cpu_threads", "population")
    versions = {c: sorted(frame[c].dropna().astype(str).unique()) for c in recorded if c in frame}
    lines = [
        "# How these results were made",
        "",
        f"- Command: `{command}`",
        f"- Commit: `{commit}`" + (" (with uncommitted changes)" if dirty else ""),
        f"- Machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        *(f"- {name}: {', '.join(values)}" for name, values in versions.items()),
        f"- Trials: {len(frame)}",
    ]
    if seconds is not None:
        lines.append(f"- Wall time: {seconds / 60:.1f} min ({seconds:.0f} s), compile included")
    if "flops" in frame:
        lines.append(f"- Compute: {frame['flops'].sum() / 1e15:.2f} PFLOP counted")
    lines += [
        "",
        "Rebuild the report from these files alone: `python -m analysis <this folder>`.",
        "",
    ]
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.publish", description=__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--command", required=True, help="the command that ran the sweep")
    parser.add_argument("--seconds", type=float, default=None, help="its wall time")
    parser.add_argument("--commit", default=None, help="the commit it ran at (default: HEAD)")
    args = parser.parse_args(argv)
    print(publish(args.sweep_dir, args.out, args.command, args.seconds, args.commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())

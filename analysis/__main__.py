"""Command line: `python -m analysis runs/<name> [--metric COLUMN] [--out DIR]`.

Also `python -m benchmark report ...`, through `add_arguments` and `run`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.report import build_report
from benchmark.errors import EXIT_WRITE_FAILED, ResultsError
from benchmark.results import COLUMNS, read_sweep_record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options, shared by both command lines."""
    parser.add_argument("sweep_dir", help="sweep directory holding results.csv or trials/")
    parser.add_argument(
        "--metric",
        default=None,
        help=f"result column to rank by: {', '.join(sorted(COLUMNS))}, or another column with "
        "--direction (default: the sweep's own, from its sweep.json; else fid_min, falling "
        "back to f1 when FID is all NaN)",
    )
    parser.add_argument(
        "--direction", choices=("min", "max"), default=None, help="which way is better"
    )
    parser.add_argument("--out", default=None, help="report directory (default SWEEP/report)")
    parser.add_argument(
        "--expected-trials",
        type=int,
        default=None,
        help="trials planned per model (and ablation variant) and dataset (default: the "
        "largest count seen)",
    )


def sweep_metric(sweep_dir: str | Path) -> tuple[str, str | None]:
    """The metric and direction the sweep ranks by (its sweep.json), else fid_min (a sweep
    recorded before sweep.json named one, or a folder of trials from elsewhere)."""
    record = read_sweep_record(sweep_dir) or {}
    if "metric" not in record:
        return "fid_min", None
    return str(record["metric"]), record.get("direction")


def run(args: argparse.Namespace) -> int:
    """Build the report; exit 2 with a one-line message when the results are unusable, 74
    (as the sweep's own rule) when a file cannot be written."""
    metric, direction = args.metric, args.direction
    try:
        if metric is None:
            metric, stored_direction = sweep_metric(args.sweep_dir)
            direction = direction or stored_direction
        path = build_report(args.sweep_dir, metric, args.out, args.expected_trials, direction)
    except (ResultsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a report folder or results.csv this process cannot write
        print(f"error: {error.filename}: cannot be written ({error.strerror})", file=sys.stderr)
        return EXIT_WRITE_FAILED
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Build tables, figures and report.md from a sweep's stored results.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

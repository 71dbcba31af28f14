"""Command line: `python -m analysis runs/<name> [--metric fid_min] [--out DIR]`."""

from __future__ import annotations

import argparse
import sys

from analysis.load import ResultsError
from analysis.metrics import METRICS
from analysis.report import build_report


def main(argv: list[str] | None = None) -> int:
    """Build the report; exit 2 with a one-line message when the results are unusable."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Build tables, figures and report.md from a sweep's stored results.",
    )
    parser.add_argument("sweep_dir", help="sweep directory holding results.csv or trials/")
    parser.add_argument(
        "--metric",
        default="fid_min",
        choices=sorted(METRICS),
        help="result column to rank by (default fid_min; falls back to f1 if FID is all NaN)",
    )
    parser.add_argument("--out", default=None, help="report directory (default SWEEP/report)")
    parser.add_argument(
        "--expected-trials",
        type=int,
        default=None,
        help="trials planned per model and dataset (default: the largest count seen)",
    )
    args = parser.parse_args(argv)
    try:
        path = build_report(args.sweep_dir, args.metric, args.out, args.expected_trials)
    except (ResultsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

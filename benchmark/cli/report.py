"""The `report` command: refuse bad arguments in one line, then build the report (analysis)."""

from __future__ import annotations

import argparse

from benchmark.errors import ConfigError
from benchmark.files import check_writable_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from analysis.__main__ import add_arguments as add_report_arguments

    add_report_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from analysis.__main__ import run as build_report

    # The report folder (default: the sweep's report/) must be writable before any work.
    check_writable_dir(args.out if args.out is not None else Path(args.sweep_dir) / "report", "out")
    if args.expected_trials is not None and args.expected_trials < 1:
        raise ConfigError("expected_trials", args.expected_trials, "an integer >= 1")
    return build_report(args)

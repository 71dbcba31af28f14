"""The `sweep` command: plan a spec, check it, run it on an executor, then its report."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from benchmark import interrupt
from benchmark.sweep.executors import EXECUTORS, RunContext
from benchmark.sweep.plan import plan, print_plan
from benchmark.sweep.run import (
    check_machine,
    claim_plan,
    forget_failed,
    preflight,
    run_sweep,
    running,
    summary,
    write_references,
    write_results,
    write_sweep_record,
)
from benchmark.sweep.spec import POPULATION_SIZES, SweepSpec, is_population_size, load_spec


def _population_size(text: str) -> int | str:
    value = text if text == "auto" else int(text) if text.isdigit() else text
    if not is_population_size(value):
        raise argparse.ArgumentTypeError(
            f"population={text!r} is not allowed; expected {POPULATION_SIZES}"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a sweep spec, e.g. runs/quick.toml")
    parser.add_argument(
        "--executor", choices=EXECUTORS.names(), help="where trials run (default: the spec's)"
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: the spec's, else cuda if any)"
    )
    parser.add_argument(
        "--data-root", default=None, help="data folder (default: the spec's, else $GANBENCH_DATA)"
    )
    parser.add_argument(
        "--weights", default=None, help="Inception weights (default: $GANBENCH_INCEPTION)"
    )
    parser.add_argument(
        "--population",
        type=_population_size,
        default=None,
        help='trials trained together as one program: a size or "auto" (default: the spec\'s, 1)',
    )
    parser.add_argument("--download", action="store_true", help="fetch missing datasets first")
    parser.add_argument("--retry-failed", action="store_true", help="re-run failed trials")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--no-report", action="store_true", help="skip the analysis report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or lines")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    trials = plan(spec)
    data_root = args.data_root or spec.data_root
    preflight(spec, trials, data_root, args.download)
    if args.dry_run:
        print_plan(spec, trials)
        return 0
    context = RunContext(
        data_root=data_root,
        device=args.device or spec.device,
        weights=args.weights,
        download=args.download,
        progress=not args.no_progress,
        population=args.population or spec.population,
    )
    check_machine(spec, trials, context, args.executor or spec.executor, not args.no_report)
    if args.retry_failed:
        print(f"{forget_failed(spec, trials)} failed trials will run again", file=sys.stderr)
    claim_plan(spec, trials)
    with running(spec.directory):
        write_sweep_record(spec, trials)
        write_references(spec)
        failed, unfinished = run_sweep(spec, trials, context, args.executor)
        frame = write_results(spec, trials)
    table = summary(frame, spec.metric, spec.direction)
    print(f"\nsweep {spec.name}: {len(frame)} of {len(trials)} trials finished, {failed} failed")
    if not table.empty:
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
    print(f"results: {spec.directory / 'results.csv'}")
    per_cell = Counter((t.dataset, t.model, t.extra.get("variant")) for t in trials)
    planned = max(per_cell.values(), default=0)  # trials planned per (dataset, arm) cell
    reported = args.no_report or not len(frame) or _report(spec, planned)
    interrupt.check()  # a stop asked for during the report: it is written, then the line and 75
    return 0 if failed == 0 and unfinished == 0 and reported else 1


def _report(spec: SweepSpec, trials_per_cell: int) -> bool:
    """Build the analysis report; False if it failed (results.csv is written either way)."""
    try:
        from analysis import build_report
    except ImportError:
        print("(the report needs the analysis package; skipped)")
        return True
    try:
        path = build_report(
            spec.directory,
            metric=spec.metric,
            direction=spec.direction,
            expected_trials=trials_per_cell,
        )
    except Exception as error:  # the results are safe; the report can be rebuilt on its own
        command = (
            f"python -m benchmark report {spec.directory} --metric {spec.metric} "
            f"--direction {spec.direction} --expected-trials {trials_per_cell}"
        )
        print(f"report failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"rebuild it with: {command}", file=sys.stderr)
        return False
    print(f"report: {path}")
    return True

"""The `trial` and `list` commands: run one trial from the command line; show the registries."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from benchmark.cli import option_default, option_help
from benchmark.config import TrialConfig
from benchmark.models import MODELS, networks_for, resolve_trial
from benchmark.results import FAILED, OK
from benchmark.training.trial_dir import LOCK


def trial_option_help(option) -> str:
    """An option's help (benchmark/cli, `option_help`); the metrics list every registered
    metric (plugins' too), from the one registry."""
    if option.name == "metrics":
        from benchmark.results import METRICS

        listed = "; ".join(f"{m.name}: {m.description}" for m in METRICS.values())
        text = f"metrics at each checkpoint, comma-separated ({listed})"
        return f"{text} (default: {option_default(option)})"
    return option_help(option)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmark.cli import add_trial_options
    from benchmark.networks import FAMILIES

    parser.add_argument("--dataset", required=True, help="a registered dataset, e.g. mnist")
    parser.add_argument("--model", required=True, help="a model preset, e.g. wgan_gp")
    parser.add_argument("--out", required=True, help="the trial directory (created)")
    parser.add_argument(
        "--plugin", action="append", default=[], help="module to import first (default: none)"
    )
    parser.add_argument("--data-root", default=None, help="data folder (default: $GANBENCH_DATA)")
    parser.add_argument(
        "--device", default=None, help="torch device (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--weights", default=None, help="Inception weights (default: $GANBENCH_INCEPTION)"
    )
    parser.add_argument("--download", action="store_true", help="fetch a missing dataset")
    parser.add_argument(
        "--retry-failed", action="store_true", help="run again a trial whose stored result failed"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    parser.add_argument(
        "--networks",
        choices=FAMILIES.names(),
        default=None,
        help="network family replacing the preset's G and D, BEGAN's autoencoder kept "
        "(default: the dataset's: points for the 2-D mixtures, else the model's preset)",
    )
    add_trial_options(parser, TrialConfig, trial_option_help)


def run(args: argparse.Namespace) -> int:
    from benchmark.cli import overrides_from
    from benchmark.datasets import DatasetMissing, check_data
    from benchmark.errors import ConfigError
    from benchmark.files import check_writable_dir
    from benchmark.training.devices import resolve_device
    from benchmark.training.loop import run_trial
    from benchmark.training.trial_dir import claim, forget_failure

    overrides = overrides_from(args, TrialConfig)
    overrides["plugins"] = tuple(args.plugin)
    if args.networks is not None:
        family = networks_for(args.model, args.dataset, args.networks)
        overrides.update({k: v for k, v in family.items() if overrides.get(k) is None})
    if overrides.get("metrics") is None:
        overrides["metrics"] = ()  # a single trial evaluates only when asked
    trial = resolve_trial(args.model, args.dataset, **overrides)
    resolve_device(args.device)
    check_data(trial.dataset, args.data_root, trial.conditional, args.download)
    out = check_writable_dir(args.out, "out")
    created = [path for path in (out, *out.parents) if not path.exists()]  # deepest first
    lock_created = not (out / LOCK).exists()
    try:
        with claim(out, wait=False) as claimed:  # the same claim a sweep takes on a trial
            if not claimed:
                raise ConfigError("out", args.out, "a trial directory no other process runs")
            if args.retry_failed and forget_failure(out):
                print(f"{out}: its failed result is removed; it runs again", file=sys.stderr)
            result = run_trial(
                trial,
                out,
                data_root=args.data_root,
                device=args.device,
                weights=args.weights,
                download=args.download,
                progress=not args.no_progress,
            )
    except (ConfigError, DatasetMissing):
        if lock_created:  # refused before any work: leave nothing behind
            (out / LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                for path in created:
                    path.rmdir()
        raise
    shown = ("trial_id", "status", "error", "d_steps", "g_steps", "seconds", "fid_min", "fid_final")
    print(json.dumps({k: result.get(k) for k in shown}, indent=2))
    if result["status"] == FAILED:
        print(f"{out}: failed; --retry-failed runs it again", file=sys.stderr)
    return 0 if result["status"] == OK else 1


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin", action="append", default=[], help="module to import first (default: none)"
    )


def run_list(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS
    from benchmark.losses import LOSSES
    from benchmark.networks import DISCRIMINATORS, FAMILIES, GENERATORS
    from benchmark.penalties import PENALTIES

    for label, registry in (
        ("models", MODELS),
        ("losses", LOSSES),
        ("penalties", PENALTIES),
        ("networks", FAMILIES),
        ("generators", GENERATORS),
        ("discriminators", DISCRIMINATORS),
        ("datasets", DATASETS),
    ):
        print(f"{label:15s} {', '.join(registry.names())}")
    return 0

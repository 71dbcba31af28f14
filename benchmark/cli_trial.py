"""The `trial` and `list` commands: run one trial from the command line; show the registries."""

from __future__ import annotations

import argparse
import contextlib
import json

from benchmark.config import TrialConfig, resolve_trial

# Fields that are set by dedicated options or belong to a sweep, not to a single trial.
_SKIP = {"dataset", "model", "extra", "sweep", "phase", "sample", "seed_role", "plugins"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmark.__main__ import add_dataclass_options

    parser.add_argument("--dataset", required=True, help="a registered dataset, e.g. mnist")
    parser.add_argument("--model", required=True, help="a model preset, e.g. wgan_gp")
    parser.add_argument("--out", required=True, help="the trial directory")
    parser.add_argument("--plugin", action="append", default=[], help="module to import first")
    parser.add_argument("--data-root", default=None, help="default: $GANBENCH_DATA")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument(
        "--weights", default=None, help="Inception weights (or $GANBENCH_INCEPTION)"
    )
    parser.add_argument("--download", action="store_true", help="fetch a missing dataset")
    parser.add_argument("--no-progress", action="store_true")
    add_dataclass_options(parser, TrialConfig, _SKIP)


def run(args: argparse.Namespace) -> int:
    from benchmark.__main__ import overrides_from
    from benchmark.datasets import DatasetMissing
    from benchmark.executors import claim
    from benchmark.io import check_writable_dir
    from benchmark.registry import ConfigError
    from benchmark.trainer import resolve_device, run_trial

    overrides = overrides_from(args, TrialConfig, _SKIP)
    overrides["plugins"] = tuple(args.plugin)
    if overrides.get("metrics") is None:
        overrides["metrics"] = ()  # a single trial evaluates only when asked
    trial = resolve_trial(args.model, args.dataset, **overrides)
    resolve_device(args.device)
    out = check_writable_dir(args.out, "out")
    created = [path for path in (out, *out.parents) if not path.exists()]  # deepest first
    lock_created = not (out / ".lock").exists()
    try:
        with claim(out, wait=False) as claimed:  # the same claim a sweep takes on a trial
            if not claimed:
                raise ConfigError("out", args.out, "a trial directory no other process runs")
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
            (out / ".lock").unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                for path in created:
                    path.rmdir()
        raise
    shown = ("trial_id", "status", "error", "d_steps", "g_steps", "seconds", "fid_min", "fid_final")
    print(json.dumps({k: result.get(k) for k in shown}, indent=2))
    return 0 if result["status"] == "ok" else 1


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", action="append", default=[], help="module to import first")


def run_list(args: argparse.Namespace) -> int:
    from benchmark.datasets import DATASETS
    from benchmark.losses import LOSSES
    from benchmark.models import MODELS
    from benchmark.networks import DISCRIMINATORS, GENERATORS
    from benchmark.penalties import PENALTIES

    for registry in (MODELS, LOSSES, PENALTIES, GENERATORS, DISCRIMINATORS, DATASETS):
        print(f"{registry.kind + 's':15s} {', '.join(registry.names())}")
    return 0

"""The `trial` and `list` commands: run one trial from the command line; show the registries."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import fields

from benchmark.config import TrialConfig, resolve_trial
from benchmark.models import MODELS, ModelPreset
from benchmark.results import FAILED, OK
from benchmark.training.trial_dir import LOCK

# Fields that are set by dedicated options or belong to a sweep, not to a single trial.
_SKIP = {"dataset", "model", "extra", "sweep", "phase", "sample", "seed_role", "plugins"}

# One line per TrialConfig field, with its unit; `--help` appends the default, read from
# the model presets or TrialConfig itself. tests/test_cli.py checks every field has one.
FIELD_HELP = {
    "dataset": "registered dataset (python -m benchmark list)",
    "model": "model preset: a loss, a penalty, networks and default hyperparameters",
    "loss": "loss function by name (python -m benchmark list)",
    "penalty": "gradient penalty by name: none, gp, dragan, r1, r1r2",
    "generator": "generator network by name",
    "discriminator": "discriminator network by name",
    "lr": "Adam learning rate of D and G",
    "beta1": "Adam beta1, in [0, 1]",
    "beta2": "Adam beta2, in [0, 1)",
    "n_disc": "D steps per G step (the reference's disc_iters)",
    "d_bn": "batch norm in D",
    "spectral_norm": "spectral norm on every weight layer of D",
    "clip": "WGAN weight clip: every D parameter in [-clip, clip]",
    "lam": "weight of the gradient penalty (gp, dragan)",
    "lambda_k": "BEGAN: learning rate of the balance term k",
    "gamma": "BEGAN: diversity ratio, in [0, 1]",
    "bn_momentum": "batch-norm momentum of running statistics, in (0, 1]",
    "batch_size": "images per batch (D and G)",
    "z_dim": "latent size",
    "latent": "latent distribution: uniform (U[-1, 1]) or normal (N(0, I))",
    "label_smoothing": "one-sided label smoothing: real target 1 - alpha (sigmoid losses)",
    "label_flip": "share of D's targets flipped at random, in [0, 0.5] (sigmoid losses)",
    "conditional": "class-conditional G(z, y) and D(x, y), for a dataset with labels",
    "conditioning": "how a conditional D takes the label: projection or concat",
    "epochs": "training length in reference epochs of the dataset (unset: the paper's)",
    "steps": "training length in D steps, for short runs (one D step = one real batch)",
    "eval_every_epochs": "reference epochs between evaluated checkpoints (and the last step)",
    "resample_z_for_g": "a fresh z for the G update instead of the D update's (WGAN-GP)",
    "data_order": "uniform (each real batch drawn with replacement) or epochs (a walk through "
    "the training set, reshuffled every epoch)",
    "latent_pool": "0 (a fresh z every step), or N: a fixed set of N z walked in an order "
    "reshuffled every epoch",
    "resample_real_for_g": "a fresh real batch for a relativistic G update instead of the D "
    "update's",
    "seed": "random seed of init, batches and z",
    "metrics": "metrics at each checkpoint (the registered ones: benchmark/results.py)",
    "fid_n_real": "test images in the FID reference statistics",
    "fid_n_fake": "generated images scored by FID",
    "feature_extractor": "feature network for FID, KID and ipr by name",
    "polygon_n_precision": "generated samples scored for polygon precision",
    "polygon_n_recall": "test triangles G must reconstruct for polygon recall",
    "polygon_steps": "Adam steps of the z inversion for polygon recall",
    "amp_dtype": "autocast dtype: fp32 (off) or bf16",
    "channels_last": "channels-last memory format (speed only)",
    "compile": "run the whole training step as one compiled program (speed; rounding only)",
    "plugins": "modules imported first, comma-separated, so their registrations exist",
    "sweep": "name of the sweep that planned the trial",
    "phase": "study phase: default, wide, narrow, seeds",
    "sample": "index of the setting in its search (0 = the model's preset)",
    "seed_role": "seeds phase: select or report",
    "extra": "free-form notes kept with the trial",
}
# Defaults that differ from TrialConfig's on this command line.
_CLI_DEFAULTS = {
    "metrics": "none (a single trial evaluates only when asked)",
    "epochs": "the dataset's reference length: 20, CIFAR-10 100, CelebA 40",
    "steps": "unset (epochs)",
    "conditioning": "projection; concat for BEGAN's autoencoder D",
}


def field_default(name: str) -> str:
    """The default of a trial option, as --help shows it."""
    if name in _CLI_DEFAULTS:
        return _CLI_DEFAULTS[name]
    if name in {f.name for f in fields(ModelPreset)}:
        return "the model's preset"
    value = TrialConfig.__dataclass_fields__[name].default
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int) else str(value)


def field_help(name: str) -> str:
    if name == "metrics":  # every registered metric (plugins' too), from the one registry
        from benchmark.results import METRICS

        listed = "; ".join(f"{m.name}: {m.description}" for m in METRICS.values())
        text = f"metrics at each checkpoint, comma-separated ({listed})"
        return f"{text} (default: {field_default(name)})"
    return f"{FIELD_HELP.get(name, '')} (default: {field_default(name)})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from benchmark.cli import add_dataclass_options
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
        "(default: the model's preset, the paper's infogan)",
    )
    add_dataclass_options(parser, TrialConfig, _SKIP, field_help)


def run(args: argparse.Namespace) -> int:
    from benchmark.cli import overrides_from
    from benchmark.datasets import DatasetMissing, check_data
    from benchmark.errors import ConfigError
    from benchmark.files import check_writable_dir
    from benchmark.networks import FAMILIES
    from benchmark.training.devices import resolve_device
    from benchmark.training.loop import run_trial
    from benchmark.training.trial_dir import claim, forget_failure

    overrides = overrides_from(args, TrialConfig, _SKIP)
    overrides["plugins"] = tuple(args.plugin)
    if args.networks is not None:
        family = FAMILIES.get(args.networks).networks_for(MODELS.get(args.model).discriminator)
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

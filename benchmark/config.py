"""The trial configuration: one frozen, validated record of everything that defines a run.

A trial's id is a hash of this record, so two runs with the same id are the same
experiment. Machine-specific settings (data root, device, weights path) are not part
of it; they are arguments of `run_trial`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from benchmark.datasets import DATASETS
from benchmark.errors import ConfigError
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES
from benchmark.models import MODELS
from benchmark.networks import DISCRIMINATORS, GENERATORS
from benchmark.penalties import PENALTIES
from benchmark.registry import load_plugins
from benchmark.results import METRICS
from benchmark.schedule import steps_per_epochs

AMP_DTYPES = ("fp32", "bf16")


@dataclass(frozen=True)
class TrialConfig:
    """One trial, fully resolved. Hyperparameters a model does not use are None."""

    dataset: str
    model: str
    loss: str
    penalty: str = "none"
    generator: str = "infogan"
    discriminator: str = "infogan"
    # Optimisation (Adam with the same lr for D and G; eps 1e-8).
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_disc: int = 1
    # Discriminator options and loss-specific hyperparameters.
    d_bn: bool = True
    spectral_norm: bool = False
    clip: float | None = None
    lam: float | None = None
    lambda_k: float | None = None
    gamma: float | None = None
    bn_momentum: float = 0.001
    # What the G update sees, as its model's source does: a fresh z or the z of that step's D
    # update (the reference: fresh only for WGAN-GP), and for a loss whose G update needs a real
    # batch (the relativistic ones) a fresh real batch or the D update's. Fresh draws come z
    # first, then the real batch.
    resample_z_for_g: bool = False
    resample_real_for_g: bool = False
    # The practitioners' tricks (Radford et al. 2015; the "GAN hacks" list), all off by default:
    # D's real target 1 - label_smoothing (one-sided), a share label_flip of D's targets
    # swapped, and the latent z ~ `latent` (benchmark/latents.py). Smoothing and flipping
    # need a loss with real/fake targets (mm, ns, ls); any other loss refuses them.
    label_smoothing: float = 0.0
    label_flip: float = 0.0
    latent: str = "uniform"
    # The order of the step's draws (benchmark/training/order.py): "uniform", each real batch
    # drawn with replacement (the reference), or "epochs", a walk through the training set
    # reshuffled every epoch; `latent_pool` N > 0 walks a fixed set of N z the same way
    # (0: a fresh z every step). Welfert et al. 2023 train so.
    data_order: str = "uniform"
    latent_pool: int = 0
    # Class-conditional G(z, y) and D(x, y) (benchmark/conditional.py), for a dataset with
    # labels; `conditioning` is D's way to take the label: "projection" or "concat" (unset: the
    # D's default, projection, or concat for BEGAN's autoencoder; written out when conditional).
    conditional: bool = False
    conditioning: str | None = None
    # Schedule (benchmark/schedule.py), in reference epochs of the dataset so that no spec does
    # the arithmetic: `epochs` unset means the dataset's reference length; `steps` (D steps)
    # replaces it for short runs. One D step = one real batch.
    batch_size: int = 64
    z_dim: int = 64
    epochs: float | None = None
    steps: int | None = None
    eval_every_epochs: float = 5.0
    seed: int = 0
    # Evaluation at every checkpoint.
    metrics: tuple[str, ...] = ("fid",)
    fid_n_real: int = 10_000
    fid_n_fake: int = 10_000
    feature_extractor: str = "inception"
    # The paper's polygon metrics: samples scored for precision, test triangles the
    # generator must reconstruct for recall, and Adam steps of that inversion.
    polygon_n_precision: int = 1000
    polygon_n_recall: int = 200
    polygon_steps: int = 100
    # Execution options that can change the numbers, hence part of the identity.
    amp_dtype: str = "fp32"
    channels_last: bool = False
    # The whole training step as one compiled program (benchmark/training/compiled.py): the
    # same arithmetic and draws as op by op, rounded as its fused loops round.
    compile: bool = False
    plugins: tuple[str, ...] = ()
    # Book-keeping from the sweep that planned this trial.
    sweep: str = ""
    phase: str = "default"
    sample: int = 0
    seed_role: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs is None and self.steps is None:
            # The dataset's reference length, written out so the record says what ran.
            length = DATASETS.get(self.dataset, "dataset").epochs
            object.__setattr__(self, "epochs", length)
        # One spelling per value (20 and 20.0 are the same length), so the id is stable.
        for name in ("epochs", "eval_every_epochs"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        if self.conditional is True and self.conditioning is None:
            # The D's own default, written out so the record says what ran.
            from benchmark.conditional import default_conditioning

            discriminator = DISCRIMINATORS.get(self.discriminator, "discriminator")
            object.__setattr__(self, "conditioning", default_conditioning(discriminator))
        validate(self)

    @property
    def trial_id(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        # Fields added after results were recorded are left out at their default, so that
        # every earlier trial keeps its id (and its stored trial.json still matches).
        for name, default in OMITTED_AT_DEFAULT.items():
            if data[name] == default:
                del data[name]
        data["metrics"] = list(self.metrics)
        data["plugins"] = list(self.plugins)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError("trial field", unknown[0], f"one of {sorted(known)}")
        data = dict(data)
        for name in ("metrics", "plugins"):
            if name in data:
                data[name] = tuple(data[name])
        load_plugins(data.get("plugins", ()))
        return cls(**data)


OMITTED_AT_DEFAULT = {
    "resample_real_for_g": False,
    "conditional": False,
    "conditioning": None,
    "data_order": "uniform",
    "latent_pool": 0,
}


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(name, value, allowed)


# Upper bounds on sizes, so a typo is refused instead of exhausting memory: a batch of 65,536
# CelebA images is 3 GB as floats; z_dim 65,536 makes G's first layer 256 MB; 200,000 features
# per side are 1.6 GB at 2048-d (the study uses 10,000). Seeds must fit torch's 64-bit seed.
# A training length exhausts time, not memory: 10^8 D steps is a thousand times the longest
# reference run (CelebA's 40 epochs, about 100,000 steps), so a typo of a few zeros is caught.
MAX_BATCH = 65_536
MAX_STEPS = 100_000_000
MAX_LATENT_POOL = 10_000_000  # 10^7 z of 64 floats: 2.6 GB
DATA_ORDERS = ("uniform", "epochs")
MAX_Z_DIM = 65_536
MAX_EVAL_IMAGES = 200_000
MAX_POLYGON_STEPS = 100_000
MAX_SEED = 2**63 - 1
FLOAT_FIELDS = ("lr", "beta1", "beta2", "clip", "lam", "lambda_k", "gamma", "bn_momentum")
FLOAT_FIELDS += ("epochs", "eval_every_epochs", "label_smoothing", "label_flip")


def _int_in(trial: TrialConfig, name: str, low: int, high: int | None = None) -> None:
    value = getattr(trial, name)
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if high is None:
        _check(ok, name, value, f"an integer >= {low}")
    else:
        _check(ok and value <= high, name, value, f"an integer in [{low}, {high:,}]")


def validate(trial: TrialConfig) -> None:
    """Raise ConfigError naming the first bad field, its value and what is allowed."""
    from benchmark.evaluation.extractors import FEATURE_EXTRACTORS

    dataset = DATASETS.get(trial.dataset, "dataset")
    LOSSES.get(trial.loss, "loss")
    PENALTIES.get(trial.penalty, "penalty")
    GENERATORS.get(trial.generator, "generator")
    DISCRIMINATORS.get(trial.discriminator, "discriminator")
    for name in FLOAT_FIELDS:
        value = getattr(trial, name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        _check(value is None or (number and math.isfinite(value)), name, value, "a finite number")
    _check(trial.lr > 0, "lr", trial.lr, "a number > 0")
    _check(0 <= trial.beta1 <= 1, "beta1", trial.beta1, "a number in [0, 1]")
    _check(0 <= trial.beta2 < 1, "beta2", trial.beta2, "a number in [0, 1)")
    _int_in(trial, "n_disc", 1)
    _int_in(trial, "batch_size", 1, MAX_BATCH)
    _int_in(trial, "z_dim", 1, MAX_Z_DIM)
    if trial.steps is not None:
        _int_in(trial, "steps", 1, MAX_STEPS)
    _check(
        trial.steps is None or trial.epochs is None,
        "epochs",
        trial.epochs,
        f"unset when steps is set (steps = {trial.steps})",
    )
    _check(trial.epochs is None or trial.epochs > 0, "epochs", trial.epochs, "a number > 0")
    if trial.epochs is not None:  # as many D steps as `steps` allows at most
        most = MAX_STEPS * trial.batch_size / dataset.epoch
        _check(trial.epochs <= most, "epochs", trial.epochs, f"at most {most:g} (10^8 D steps)")
    _check(
        trial.eval_every_epochs > 0, "eval_every_epochs", trial.eval_every_epochs, "a number > 0"
    )
    for name in ("epochs", "eval_every_epochs"):
        value = getattr(trial, name)
        _check(
            value is None or steps_per_epochs(value, dataset.epoch, trial.batch_size) >= 1,
            name,
            value,
            f"at least one D step: >= {trial.batch_size / dataset.epoch:.3g} epochs of "
            f"{dataset.epoch:,} images at batch {trial.batch_size}",
        )
    _check(trial.clip is None or trial.clip > 0, "clip", trial.clip, "a number > 0 (or unset)")
    _check(trial.lam is None or trial.lam >= 0, "lam", trial.lam, "a number >= 0")
    _check(
        trial.lambda_k is None or trial.lambda_k >= 0, "lambda_k", trial.lambda_k, "a number >= 0"
    )
    _check(trial.gamma is None or 0 <= trial.gamma <= 1, "gamma", trial.gamma, "a number in [0, 1]")
    _check(0 < trial.bn_momentum <= 1, "bn_momentum", trial.bn_momentum, "a number in (0, 1]")
    LATENTS.get(trial.latent, "latent")
    _check(
        0 <= trial.label_smoothing < 1,
        "label_smoothing",
        trial.label_smoothing,
        "a number in [0, 1)",
    )
    _check(0 <= trial.label_flip <= 0.5, "label_flip", trial.label_flip, "a number in [0, 0.5]")
    for name in ("label_smoothing", "label_flip"):
        value = getattr(trial, name)
        _check(
            value == 0 or LOSSES.get(trial.loss).d_targets is not None,
            name,
            value,
            f"0: loss {trial.loss!r} has no real/fake targets "
            f"(losses with targets: {[n for n in LOSSES.names() if LOSSES.get(n).d_targets]})",
        )
    _check(
        trial.penalty == "none" or trial.lam is not None,
        "lam",
        trial.lam,
        f"a number >= 0 (penalty {trial.penalty!r} needs it)",
    )
    _check(
        not trial.resample_real_for_g or LOSSES.get(trial.loss).g_needs_real,
        "resample_real_for_g",
        trial.resample_real_for_g,
        f"false: loss {trial.loss!r} uses no real batch in its G update",
    )
    for name in LOSSES.get(trial.loss).needs:
        value = getattr(trial, name)
        _check(value is not None, name, value, f"a number (loss {trial.loss!r} needs it)")
    for metric in trial.metrics:
        _check(metric in METRICS, "metrics", metric, f"a subset of {METRICS.names()}")
        kind = "points" if dataset.is_points else "images"
        allowed = [name for name in METRICS.names() if METRICS.get(name).data == kind]
        _check(
            metric in allowed,
            "metrics",
            metric,
            f"a subset of {sorted(allowed)} (dataset {trial.dataset!r} holds {kind})",
        )
    _check(trial.data_order in DATA_ORDERS, "data_order", trial.data_order, f"one of {DATA_ORDERS}")
    _int_in(trial, "latent_pool", 0, MAX_LATENT_POOL)
    if trial.data_order == "epochs":  # a walk hands out one batch per D step
        _check(not trial.resample_real_for_g, "resample_real_for_g", True,
               "false with data_order 'epochs' (one batch of the walk per step)")  # fmt: skip
    if trial.latent_pool:
        _check(not trial.resample_z_for_g, "resample_z_for_g", True,
               "false with a latent_pool (one batch of the walk per step)")  # fmt: skip
        _check(trial.latent_pool >= trial.batch_size, "latent_pool", trial.latent_pool,
               f"0, or at least batch_size ({trial.batch_size})")  # fmt: skip
    _check_networks(trial.generator, trial.discriminator, dataset.shape, trial.dataset)
    _check_conditional(trial, dataset)
    for name in ("fid_n_real", "fid_n_fake"):
        _int_in(trial, name, 2, MAX_EVAL_IMAGES)
    FEATURE_EXTRACTORS.get(trial.feature_extractor, "feature_extractor")
    _check(trial.amp_dtype in AMP_DTYPES, "amp_dtype", trial.amp_dtype, f"one of {AMP_DTYPES}")
    for name in ("polygon_n_precision", "polygon_n_recall"):
        _int_in(trial, name, 1, MAX_EVAL_IMAGES)
    _int_in(trial, "polygon_steps", 1, MAX_POLYGON_STEPS)
    _int_in(trial, "seed", 0, MAX_SEED)


@functools.cache
def _check_networks(
    generator: str, discriminator: str, shape: tuple[int, ...], dataset: str
) -> None:
    """Build G and D on the meta device (no memory, no arithmetic): a network made for images
    refuses points and the other way round, before anything runs."""
    import torch

    from benchmark.networks import NetworkOptions

    for field_name, registry, name in (
        ("generator", GENERATORS, generator),
        ("discriminator", DISCRIMINATORS, discriminator),
    ):
        try:
            with torch.device("meta"):
                registry.get(name)(NetworkOptions(shape=shape))
        except (ValueError, TypeError, RuntimeError) as error:
            kind = f"samples of shape {shape}"
            raise ConfigError(
                field_name, name, f"a network for {kind} (dataset {dataset!r}): {error}"
            ) from None


def _check_conditional(trial: TrialConfig, dataset) -> None:
    """A conditional trial needs a dataset with labels and a D that can take them."""
    from benchmark.conditional import check_conditioning

    _check(isinstance(trial.conditional, bool), "conditional", trial.conditional, "true or false")
    if not trial.conditional:
        _check(
            trial.conditioning is None,
            "conditioning",
            trial.conditioning,
            "unset (conditional is false)",
        )
        return
    labelled = [name for name in DATASETS.names() if DATASETS.get(name).classes]
    _check(
        dataset.classes is not None,
        "conditional",
        trial.conditional,
        f"false: dataset {trial.dataset!r} has no labels (datasets with labels: {labelled})",
    )
    check_conditioning(DISCRIMINATORS.get(trial.discriminator), trial.conditioning)


HYPERPARAMETERS = ("lr", "beta1", "n_disc", "d_bn", "clip", "lam", "lambda_k", "gamma")


def resolve_trial(model: str, dataset: str, **overrides: Any) -> TrialConfig:
    """The model's preset, with `overrides` applied; None in overrides means "keep the preset"."""
    load_plugins(overrides.get("plugins") or ())
    preset = MODELS.get(model, "model")
    values = dataclasses.asdict(preset)
    values.update({key: value for key, value in overrides.items() if value is not None})
    known = {f.name for f in fields(TrialConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError("parameter", unknown[0], f"one of {sorted(known)}")
    for name in ("metrics", "plugins"):
        if name in values:
            values[name] = tuple(values[name])
    return TrialConfig(dataset=dataset, model=model, **values)

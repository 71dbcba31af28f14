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
from typing import Any

from benchmark.datasets import DATASETS
from benchmark.errors import ConfigError
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES
from benchmark.networks import DISCRIMINATORS, GENERATORS
from benchmark.options import MAX_STEPS, OPTIONS, REQUIRED_NAMES, Option, check_option
from benchmark.penalties import PENALTIES
from benchmark.registry import load_plugins
from benchmark.results import FEATURE_EXTRACTORS, METRICS
from benchmark.schedule import steps_per_epochs


class _Trial:
    """The methods of a trial record; its fields are the options of `benchmark/options.py`."""

    options: dict[str, Option]  # the declarations the class was built from, by name

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
        for option in self.options.values():  # left out at their default: the ids stay
            if option.added_later and data[option.name] == option.default:
                del data[option.name]
        for name, value in data.items():
            if isinstance(value, tuple):
                data[name] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        unknown = sorted(set(data) - set(cls.options))
        if unknown:
            raise ConfigError("trial field", unknown[0], f"one of {sorted(cls.options)}")
        data = dict(data)
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = tuple(value)
        load_plugins(data.get("plugins", ()))
        return cls(**data)


def trial_class(options: tuple[Option, ...], name: str = "TrialConfig") -> type:
    """A frozen dataclass with one field per option, in order (those without default first)."""

    def declared(option: Option) -> tuple[str, str, Any]:
        if option.name in REQUIRED_NAMES:
            return option.name, option.type, dataclasses.field()
        if isinstance(option.default, dict):
            return option.name, option.type, dataclasses.field(default_factory=dict)
        return option.name, option.type, dataclasses.field(default=option.default)

    cls = dataclasses.make_dataclass(
        name,
        [declared(option) for option in options],
        bases=(_Trial,),
        namespace={"options": {option.name: option for option in options}},
        frozen=True,
    )
    cls.__module__ = __name__  # pickled by name, as `benchmark.config.TrialConfig`
    return cls


#: One trial, fully resolved: one field per option of `benchmark/options.py`. Hyperparameters
#: a model does not use are None.
TrialConfig = trial_class(OPTIONS)


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigError(name, value, allowed)


# The registries an option's name is looked up in (`Option.registry`).
REGISTRIES = {
    "dataset": DATASETS,
    "loss": LOSSES,
    "penalty": PENALTIES,
    "generator": GENERATORS,
    "discriminator": DISCRIMINATORS,
    "latent": LATENTS,
    "feature_extractor": FEATURE_EXTRACTORS,
}


def validate(trial: Any) -> None:
    """Raise ConfigError naming the first bad field, its value and what is allowed: each
    option against its declaration, then the checks that involve several options."""
    for option in trial.options.values():
        value = getattr(trial, option.name)
        allowed = check_option(option, value)
        _check(allowed is None, option.name, value, allowed or "")
        if option.registry and value is not None:
            REGISTRIES[option.registry].get(value, option.name)
    dataset = DATASETS.get(trial.dataset, "dataset")
    _check(
        trial.steps is None or trial.epochs is None,
        "epochs",
        trial.epochs,
        f"unset when steps is set (steps = {trial.steps})",
    )
    if trial.epochs is not None:  # as many D steps as `steps` allows at most
        most = MAX_STEPS * trial.batch_size / dataset.epoch
        _check(trial.epochs <= most, "epochs", trial.epochs, f"at most {most:g} (10^8 D steps)")
    for name in ("epochs", "eval_every_epochs"):
        value = getattr(trial, name)
        _check(
            value is None or steps_per_epochs(value, dataset.epoch, trial.batch_size) >= 1,
            name,
            value,
            f"at least one D step: >= {trial.batch_size / dataset.epoch:.3g} epochs of "
            f"{dataset.epoch:,} images at batch {trial.batch_size}",
        )
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
        allowed = [name for name in METRICS.names() if METRICS.get(name).data == dataset.kind]
        _check(
            metric in allowed,
            "metrics",
            metric,
            f"a subset of {sorted(allowed)} (dataset {trial.dataset!r} holds {dataset.kind})",
        )
    if trial.data_order == "epochs":  # a walk hands out one batch per D step
        _check(not trial.resample_real_for_g, "resample_real_for_g", True,
               "false with data_order 'epochs' (one batch of the walk per step)")  # fmt: skip
    if trial.latent_pool:
        _check(not trial.resample_z_for_g, "resample_z_for_g", True,
               "false with a latent_pool (one batch of the walk per step)")  # fmt: skip
        _check(trial.latent_pool >= trial.batch_size, "latent_pool", trial.latent_pool,
               f"0, or at least batch_size ({trial.batch_size})")  # fmt: skip
    if trial.d_norm is not None:  # d_norm names D's one normalisation; the flags agree
        for name, on in (("d_bn", "batch_norm"), ("spectral_norm", "spectral_norm")):
            _check(getattr(trial, name) == (trial.d_norm == on), name, getattr(trial, name),
                   f"{trial.d_norm == on} with d_norm {trial.d_norm!r}")  # fmt: skip
    _check_networks(
        trial.generator, trial.discriminator, dataset.shape, trial.dataset, trial.d_norm
    )
    _check_conditional(trial, dataset)


@functools.cache
def _check_networks(
    generator: str, discriminator: str, shape: tuple[int, ...], dataset: str, d_norm: str | None
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
                options = NetworkOptions(shape=shape, d_layer_norm=d_norm == "layer_norm")
                registry.get(name)(options)
        except (ValueError, TypeError, RuntimeError) as error:
            kind = f"samples of shape {shape}"
            raise ConfigError(
                field_name, name, f"a network for {kind} (dataset {dataset!r}): {error}"
            ) from None


def _check_conditional(trial: Any, dataset) -> None:
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

"""Hyperparameter search spaces as data (wide, narrow, default, quick, mixture, landscape),
sampled deterministically.

The ranges are the reference study's (docs/options.md, "Search spaces"); `quick` is the polygon
demonstration's, `mixture` the 2-D mixture study's (the default sweep). A parameter a
model's preset leaves unset (None) does not apply to that model and is never searched: clip
only for wgan, lam only for the gradient penalties (its range depends on the penalty: GP and
DRAGAN have the paper's, R1 and R1+R2 their own), lambda_k and gamma only for began. Sample
#0 of every search but `quick` and `mixture` is the model's preset default; every other
sample is drawn from a generator seeded by (sweep seed, dataset, model, i), so growing a
search from 50 to 100 samples keeps the first 50, and nothing depends on the order in which
trials are planned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.errors import ConfigError
from benchmark.models import MODELS, ModelPreset
from benchmark.options import HYPERPARAMETERS
from benchmark.registry import Registry


@dataclass(frozen=True)
class LogUniform:
    """10^U[low, high]."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(10 ** rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return 10**self.low <= value <= 10**self.high


@dataclass(frozen=True)
class Uniform:
    """U[low, high]."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def contains(self, value: Any) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    """One of a few values, equally likely."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        value = self.values[int(rng.integers(len(self.values)))]
        return value.item() if isinstance(value, np.generic) else value

    def contains(self, value: Any) -> bool:
        return value in self.values


def Fixed(value: Any) -> Choice:  # noqa: N802 - reads as a range kind, like the others
    return Choice((value,))


Range = LogUniform | Uniform | Choice


@dataclass(frozen=True)
class Space:
    """Ranges by TrialConfig field; `with_penalty` replaces some for gradient-penalty models,
    `by_penalty[name]` some for the models with that penalty (its lam's range)."""

    ranges: Mapping[str, Range] = field(default_factory=dict)
    with_penalty: Mapping[str, Range] = field(default_factory=dict)
    by_penalty: Mapping[str, Mapping[str, Range]] = field(default_factory=dict)
    # Sample #0 is the model's preset, unless the presets do not fit the space's purpose.
    preset_first: bool = True
    # A study's reported settings instead of ranges: sample i is settings[i], the same for
    # every model; a spec asks for at most len(settings) samples.
    settings: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        drawn = {*self.ranges, *self.with_penalty, *(k for s in self.settings for k in s)}
        drawn.update(name for ranges in self.by_penalty.values() for name in ranges)
        undeclared = sorted(drawn - set(HYPERPARAMETERS))
        if undeclared:  # a draw belongs to an option declared a hyperparameter
            raise ValueError(
                f"search space draws {undeclared[0]!r}: not a hyperparameter option "
                f"(benchmark/options.py: {list(HYPERPARAMETERS)})"
            )

    def ranges_for(self, preset: ModelPreset) -> dict[str, Range]:
        """The ranges that apply to a model: those of parameters its preset sets."""
        ranges = dict(self.ranges)
        if preset.penalty != "none":
            ranges.update(self.with_penalty)
        ranges.update(self.by_penalty.get(preset.penalty, {}))
        return {
            name: r for name, r in sorted(ranges.items()) if getattr(preset, name, None) is not None
        }


SPACES: Registry[Space] = Registry("space")

# The zero-centred penalties' gamma spans orders of magnitude with the data and the network:
# 0.01 (StyleGAN2-ADA, CIFAR-10), 0.05 to 0.005 (Huang et al. 2024, CIFAR-10), 10 (Mescheder
# et al. 2018), 150 (Huang et al. 2024, FFHQ 256). The wide range covers the small-image
# values and Mescheder's; the narrow one the middle three decades.
ZERO_CENTRED_WIDE = {"lam": LogUniform(-3, 2)}
ZERO_CENTRED_NARROW = {"lam": LogUniform(-2, 1)}
# The L2 penalty on D's weights: compare_gan's first study drew its lambda from 10^[-4, 1] in
# either range (compare_gan/src/params.py:271-273, commit 51029dc).
L2_LAM = {"lam": LogUniform(-4, 1)}

SPACES.register("default", Space())
SPACES.register(
    "wide",
    Space(
        {
            "lr": LogUniform(-5, -2),
            "beta1": Uniform(0, 1),
            "n_disc": Choice((1, 5)),
            "d_bn": Choice((True, False)),
            "clip": LogUniform(-3, 0),
            "lam": LogUniform(-1, 2),
            "lambda_k": LogUniform(-4, -2),
            "gamma": Uniform(0, 1),
        },
        by_penalty={"r1": ZERO_CENTRED_WIDE, "r1r2": ZERO_CENTRED_WIDE, "l2": L2_LAM},
    ),
)
SPACES.register(
    "narrow",
    Space(
        {
            "lr": LogUniform(-4, -3),
            "beta1": Fixed(0.5),
            "n_disc": Fixed(1),
            "d_bn": Choice((True, False)),
            "clip": LogUniform(-2, 0),
            "lam": LogUniform(-1, 1),
            "lambda_k": Fixed(1e-3),
            "gamma": Uniform(0.6, 0.9),
        },
        # Batch norm in D mixes the samples whose per-sample gradient norm a penalty constrains.
        with_penalty={"d_bn": Fixed(False)},
        by_penalty={"r1": ZERO_CENTRED_NARROW, "r1r2": ZERO_CENTRED_NARROW, "l2": L2_LAM},
    ),
)


# The polygon demonstration (runs/polygons-quick.toml): MLP networks trained 3,000 steps on
# polygons.
# The presets' learning rates are tuned for 15,625 steps and most of them leave G drawing
# noise at 3,000, and an MLP D with batch norm, which sees the real and the fake batch apart,
# cannot see a shift common to a whole batch (its G drew grey backgrounds): so no preset at
# #0, lr from the narrow range's upper half, D without batch norm, one D step per G step.
# One space for every model, as the paper's narrow one, but for DRAGAN's lambda (below). WGAN
# and WGAN-GP do not learn in 3,000 steps of these MLPs under their own papers' settings
# either (five D steps per G step leave G 600 updates, too few even for NS), and BEGAN draws
# one shape for every z; runs/polygons-quick.toml lists what was tried.
SPACES.register(
    "quick",
    Space(
        {
            "lr": LogUniform(-3.7, -3),
            "beta1": Fixed(0.5),
            "n_disc": Fixed(1),
            "d_bn": Fixed(False),
            "clip": LogUniform(-2, -1),
            "lam": LogUniform(-1, 1),
            "lambda_k": Fixed(1e-3),
            "gamma": Uniform(0.6, 0.9),
        },
        # DRAGAN is NS with a penalty on D's gradient near the data, and the penalty slows it:
        # in 3,000 steps it drew triangles at lambda 0.01 (F1 0.29) and 0.03 (0.15), speckled
        # shapes at 0.1 (0.002) and 1 (0).
        by_penalty={"dragan": {"lam": LogUniform(-2, -1.5)}},
        preset_first=False,
    ),
)


# The 2-D mixture study (runs/mixtures-*.toml, runs/quick.toml): the paper's narrow space for
# the point networks, with two changes. The learning rate spans 10^[-3.5, -2.5]: in the pilot
# (results/mixtures-pilot/, 6 settings per model of 10^[-4, -2.5] on the grid, batch 256),
# every trial that held 20 or more modes with 30 % of its samples within 3 sigma by 5,000
# steps (MM, NS, LSGAN, DRAGAN) had a learning rate of 1.4e-3 to 2.4e-3; three of 4.4e-4 to
# 6.3e-4 got there by 10,000 steps, none below 4e-4 at any length. D has no batch norm: the
# literature's point networks have none (so every model searches the same networks, and
# each model's trials form one population). No preset at #0: the presets' settings are tuned
# for images.
MIXTURE = {
    "beta1": Fixed(0.5),
    "n_disc": Fixed(1),
    "d_bn": Fixed(False),
    "clip": LogUniform(-2, 0),
    "lam": LogUniform(-1, 1),
    "lambda_k": Fixed(1e-3),
    "gamma": Uniform(0.6, 0.9),
}
SPACES.register(
    "mixture",
    Space(
        {"lr": LogUniform(-3.5, -2.5), **MIXTURE},
        by_penalty={"r1": ZERO_CENTRED_NARROW, "r1r2": ZERO_CENTRED_NARROW},
        preset_first=False,
    ),
)
# The pilot's space (results/mixtures-pilot/pilot.toml): the same with the learning rate over
# 10^[-4, -2.5], where the study's range was chosen from.
SPACES.register(
    "mixture_pilot",
    Space(
        {"lr": LogUniform(-4, -2.5), **MIXTURE},
        by_penalty={"r1": ZERO_CENTRED_NARROW, "r1r2": ZERO_CENTRED_NARROW},
        preset_first=False,
    ),
)


# Kurach et al. 2019's settings: the (learning rate, beta1, beta2, n_disc) of every best
# configuration the study reports (tables 5 to 7), distinct, in the order google/compare_gan
# v2.0 lists them to reproduce (compare_gan/src/generate_tasks_lib.py, at the lines noted;
# BestModelSNDCGan, BestModelResnet19, BestModelResnetCifar). The code keeps these, not the
# ranges they were searched from; the configurations themselves, with their normalisation and
# penalty, are the arms of runs/cifar10-landscape.toml and runs/celeba-landscape.toml.
LANDSCAPE_SETTINGS = (
    (0.0001, 0.5, 0.999, 1),  # :157
    (0.0002, 0.5, 0.999, 1),  # :170
    (0.000412, 0.246, 0.341, 1),  # :183
    (0.000254, 0.222, 0.599, 1),  # :196
    (6.2e-05, 0.608, 0.62, 1),  # :222
    (0.0002, 0.5, 0.9, 1),  # :264
    (0.000154, 0.246, 0.734, 1),  # :277
    (0.000264, 0.011, 0.966, 1),  # :290
    (0.00192, 0.097, 0.938, 1),  # :303
    (3.38e-05, 0.3753, 0.9982, 1),  # :417
    (3.22e-05, 0.585, 0.9904, 1),  # :443
    (1.93e-05, 0.1947, 0.8819, 1),  # :457
    (0.0002851, 0.1019, 0.998, 1),  # :513
    (0.0001, 0.5, 0.9, 5),  # :542
    (0.0001281, 0.7108, 0.9792, 1),  # :555
    (0.0002, 0.5, 0.999, 5),  # :599
    (0.0001, 0.5, 0.999, 5),  # :611
)
SPACES.register(
    "landscape",
    Space(
        settings=tuple(
            {"lr": lr, "beta1": beta1, "beta2": beta2, "n_disc": n_disc}
            for lr, beta1, beta2, n_disc in LANDSCAPE_SETTINGS
        ),
        preset_first=False,
    ),
)


def _entropy(*parts: object) -> list[int]:
    """A stable seed from strings and ints (Python's hash() changes between processes)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def sample_hyperparameters(
    space: str, model: str, dataset: str, index: int, seed: int = 0
) -> dict[str, Any]:
    """Hyperparameters of sample `index` of a search; sample 0 is the model's preset (unless
    the space says otherwise)."""
    preset = MODELS.get(model, "model")
    chosen = SPACES.get(space, "space")
    if chosen.settings:  # the study's own settings, in its order
        if not 0 <= index < len(chosen.settings):
            raise ConfigError("samples", index + 1, f"at most {len(chosen.settings)} in {space!r}")
        return dict(chosen.settings[index])
    ranges = chosen.ranges_for(preset)
    if index == 0 and chosen.preset_first:
        return {name: getattr(preset, name) for name in ranges}
    rng = np.random.default_rng(_entropy(seed, dataset, model, index))
    return {name: r.sample(rng) for name, r in ranges.items()}

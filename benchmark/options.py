"""Every trial option, declared once: its type, default, help, unit, role and checks.

`OPTIONS` is the one table. `TrialConfig` (benchmark/config.py) is built from it, and so are
the command line's `--options` with their help (benchmark/cli/trial.py), the per-option checks
of every trial and spec (`check_option`), which options a model preset may set
(benchmark/models.py), the population key (benchmark/training/population.py), the
hyperparameter columns of the analysis and the numeric columns of results.csv
(benchmark/results.py). A new option is one `Option(...)` line here (and the code that reads
it). Torch-free, so that the analysis can read it.

Roles in a population (benchmark/training/population.py): `shared` options are structure that
every member of one population has in common; `member` options are numbers each member holds
its own of; a trial with a `solo` option set trains alone; `bookkeeping` options are the
sweep's notes, never structure. Checks that involve registries or several options at once
(a loss that needs `gamma`, a metric for the dataset's kind) are in `benchmark.config.validate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SHARED, MEMBER, SOLO, BOOKKEEPING = "shared", "member", "solo", "bookkeeping"

# Upper bounds on sizes, so a typo is refused instead of exhausting memory: a batch of 65,536
# CelebA images is 3 GB as floats; z_dim 65,536 makes G's first layer 256 MB; 200,000 features
# per side are 1.6 GB at 2048-d (the study uses 10,000). Seeds must fit torch's 64-bit seed.
# A training length exhausts time, not memory: 10^8 D steps is a thousand times the longest
# reference run (CelebA's 40 epochs, about 100,000 steps), so a typo of a few zeros is caught.
MAX_BATCH = 65_536
MAX_STEPS = 100_000_000
MAX_LATENT_POOL = 10_000_000  # 10^7 z of 64 floats: 2.6 GB
MAX_Z_DIM = 65_536
MAX_EVAL_IMAGES = 200_000
MAX_POLYGON_STEPS = 100_000
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Integer:
    """An integer in [low, high] (high None: no upper bound)."""

    low: int
    high: int | None = None

    def allows(self, value: Any) -> bool:
        whole = isinstance(value, int) and not isinstance(value, bool)
        return whole and self.low <= value and (self.high is None or value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"an integer >= {self.low}"
        return f"an integer in [{self.low}, {self.high:,}]"


@dataclass(frozen=True)
class Number:
    """A number above `low` and below `high` (open or closed ends; None: unbounded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str = ""

    def allows(self, value: Any) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}{self.note}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"a number in {left}{self.low:g}, {self.high:g}{right}{self.note}"


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    def allows(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return f"one of {self.values}"


Check = Integer | Number | OneOf

#: D's normalisations (`d_norm`).
D_NORMS = ("none", "batch_norm", "layer_norm", "spectral_norm")


@dataclass(frozen=True)
class Option:
    """One trial option. `type` is the annotation's text (`float | None`: unset allowed)."""

    name: str
    type: str
    default: Any
    help: str
    unit: str = ""
    role: str = SHARED
    # Searched by the hyperparameter spaces (benchmark/search.py) and a column that tells
    # settings apart in the analysis.
    hyperparameter: bool = False
    # A model preset may set it; `trial --help` then names the preset as its default.
    preset: bool = False
    check: Check | None = None
    # The registry a name must be found in (benchmark.config.REGISTRIES).
    registry: str = ""
    # Set by the command's own arguments (or a sweep), not by a `--option` of `trial`.
    cli: bool = True
    # What `trial --help` gives as the default, where the field's own would mislead.
    cli_default: str | None = None
    # Added after results were recorded: left out of the trial id at its default, so that
    # every earlier trial keeps its id (and its stored trial.json still matches).
    added_later: bool = False

    @property
    def optional(self) -> bool:
        return self.type.endswith("| None")

    @property
    def base_type(self) -> str:
        return self.type.removesuffix(" | None")


def _o(name: str, type_: str, default: Any, help_: str, **more: Any) -> Option:
    return Option(name, type_, default, help_, **more)


OPTIONS: tuple[Option, ...] = (
    _o("dataset", "str", None, "registered dataset (python -m benchmark list)",
       registry="dataset", cli=False),
    _o("model", "str", None, "model preset: a loss, a penalty, networks and default "
       "hyperparameters", cli=False),
    _o("loss", "str", None, "loss function by name (python -m benchmark list)",
       registry="loss", preset=True),
    _o("penalty", "str", "none", "D penalty by name: none, gp, dragan, r1, r1r2, l2",
       registry="penalty", preset=True),
    _o("generator", "str", "infogan", "generator network by name", registry="generator",
       preset=True),
    _o("discriminator", "str", "infogan", "discriminator network by name",
       registry="discriminator", preset=True),
    # Optimisation (Adam with the same lr for D and G; eps 1e-8).
    _o("lr", "float", 1e-4, "Adam learning rate of D and G", role=MEMBER, hyperparameter=True,
       preset=True, check=Number(0, low_open=True)),
    _o("beta1", "float", 0.5, "Adam beta1, in [0, 1]", role=MEMBER, hyperparameter=True,
       preset=True, check=Number(0, 1)),
    _o("beta2", "float", 0.999, "Adam beta2, in [0, 1)", role=MEMBER, hyperparameter=True,
       preset=True, check=Number(0, 1, high_open=True)),
    _o("n_disc", "int", 1, "D steps per G step (the reference's disc_iters)",
       hyperparameter=True, preset=True, check=Integer(1)),
    # Discriminator options and loss-specific hyperparameters (None: the model has none).
    _o("d_bn", "bool", True, "batch norm in D", hyperparameter=True, preset=True),
    # Spectral norm's parametrization has no member-batched layer: such a trial trains alone.
    _o("spectral_norm", "bool", False, "spectral norm on every weight layer of D", role=SOLO,
       preset=True),
    # Whether spectral norm, when on, also covers D's output layer (its last weight layer; with
    # projection, the class embedding too). The relativistic presets' source leaves it free
    # (benchmark/models.py). Structure, so shared: `spectral_norm` already trains a trial
    # alone, and a solo option that is true by default would train every trial alone.
    _o("spectral_norm_output", "bool", True, "with spectral_norm: spectral norm on D's output "
       "layer too (false: on the layers before it only)", preset=True, added_later=True),
    # D's one normalisation as Kurach et al. 2019 name it (compare_gan v2.0 src/gans/consts.py:
    # 25-31, `discriminator_normalization`); unset: as d_bn and spectral_norm say, which a set
    # value fixes (benchmark/models.py, `resolve_trial`). Their weight_norm is declared there
    # but no discriminator of theirs applies it, so it is not offered.
    _o("d_norm", "str | None", None, "D's normalisation: none, batch_norm, layer_norm or "
       "spectral_norm (sets d_bn and spectral_norm; layer norm where D's batch norm would be)",
       check=OneOf(D_NORMS), added_later=True),
    _o("clip", "float | None", None, "WGAN weight clip: every D parameter in [-clip, clip]",
       role=MEMBER, hyperparameter=True, preset=True,
       check=Number(0, low_open=True, note=" (or unset)")),
    _o("lam", "float | None", None, "weight of the gradient penalty (gp, dragan)", role=MEMBER,
       hyperparameter=True, preset=True, check=Number(0)),
    _o("lambda_k", "float | None", None, "BEGAN: learning rate of the balance term k",
       role=MEMBER, hyperparameter=True, preset=True, check=Number(0)),
    _o("gamma", "float | None", None, "BEGAN: diversity ratio, in [0, 1]", role=MEMBER,
       hyperparameter=True, preset=True, check=Number(0, 1)),
    _o("bn_momentum", "float", 0.001, "batch-norm momentum of running statistics, in (0, 1]",
       check=Number(0, 1, low_open=True)),
    # What the G update sees, as its model's source does: a fresh z or the z of that step's D
    # update (the reference: fresh only for WGAN-GP), and for a loss whose G update needs a
    # real batch (the relativistic ones) a fresh real batch or the D update's. Fresh draws
    # come z first, then the real batch.
    _o("resample_z_for_g", "bool", False, "a fresh z for the G update instead of the D "
       "update's (WGAN-GP)", preset=True),
    _o("resample_real_for_g", "bool", False, "a fresh real batch for a relativistic G update "
       "instead of the D update's", preset=True, added_later=True),
    # The practitioners' tricks (Radford et al. 2015; the "GAN hacks" list), all off by
    # default. Smoothing and flipping need a loss with real/fake targets (mm, ns, ls).
    _o("label_smoothing", "float", 0.0, "one-sided label smoothing: real target 1 - alpha "
       "(sigmoid losses)", check=Number(0, 1, high_open=True)),
    _o("label_flip", "float", 0.0, "share of D's targets flipped at random, in [0, 0.5] "
       "(sigmoid losses)", check=Number(0, 0.5)),
    _o("latent", "str", "uniform", "latent distribution: uniform (U[-1, 1]) or normal "
       "(N(0, I))", registry="latent", preset=True),
    # The order of the step's draws (benchmark/training/order.py). Welfert et al. 2023 train
    # with a walk through the data and a fixed set of z.
    _o("data_order", "str", "uniform", "uniform (each real batch drawn with replacement) or "
       "epochs (a walk through the training set, reshuffled every epoch)",
       check=OneOf(("uniform", "epochs")), added_later=True),
    _o("latent_pool", "int", 0, "0 (a fresh z every step), or N: a fixed set of N z walked in "
       "an order reshuffled every epoch", unit="z", check=Integer(0, MAX_LATENT_POOL),
       added_later=True),
    # Class-conditional G(z, y) and D(x, y) (benchmark/conditional.py), for a dataset with
    # labels; unset `conditioning` is the D's default, written out when conditional.
    _o("conditional", "bool", False, "class-conditional G(z, y) and D(x, y), for a dataset "
       "with labels", added_later=True),
    _o("conditioning", "str | None", None, "how a conditional D takes the label: projection "
       "or concat", cli_default="projection; concat for BEGAN's autoencoder D",
       added_later=True),
    # Schedule (benchmark/schedule.py), in reference epochs of the dataset so that no spec does
    # the arithmetic: `steps` replaces `epochs` for short runs. One D step = one real batch.
    _o("batch_size", "int", 64, "images per batch (D and G)", unit="samples", preset=True,
       check=Integer(1, MAX_BATCH)),
    _o("z_dim", "int", 64, "latent size", check=Integer(1, MAX_Z_DIM)),
    _o("epochs", "float | None", None, "training length in reference epochs of the dataset "
       "(unset: the paper's)", unit="epochs", check=Number(0, low_open=True),
       cli_default="the dataset's reference length: 20, CIFAR-10 100, CelebA 40"),
    _o("steps", "int | None", None, "training length in D steps, for short runs (one D step = "
       "one real batch)", unit="D steps", check=Integer(1, MAX_STEPS),
       cli_default="unset (epochs)"),
    _o("eval_every_epochs", "float", 5.0, "reference epochs between evaluated checkpoints (and "
       "the last step)", unit="epochs", check=Number(0, low_open=True)),
    _o("seed", "int", 0, "random seed of init, batches and z", role=MEMBER,
       check=Integer(0, MAX_SEED)),
    # Evaluation at every checkpoint.
    _o("metrics", "tuple[str, ...]", ("fid",), "metrics at each checkpoint (the registered "
       "ones: benchmark/results.py)", cli_default="none (a single trial evaluates only when "
       "asked)"),
    _o("fid_n_real", "int", 10_000, "test images in the FID reference statistics",
       unit="images", check=Integer(2, MAX_EVAL_IMAGES)),
    _o("fid_n_fake", "int", 10_000, "generated images scored by FID", unit="images",
       check=Integer(2, MAX_EVAL_IMAGES)),
    _o("feature_extractor", "str", "inception", "feature network for FID, KID and ipr by name",
       registry="feature_extractor"),
    # The paper's polygon metrics: samples scored for precision, test triangles the generator
    # must reconstruct for recall, and Adam steps of that inversion.
    _o("polygon_n_precision", "int", 1000, "generated samples scored for polygon precision",
       check=Integer(1, MAX_EVAL_IMAGES)),
    _o("polygon_n_recall", "int", 200, "test triangles G must reconstruct for polygon recall",
       check=Integer(1, MAX_EVAL_IMAGES)),
    _o("polygon_steps", "int", 100, "Adam steps of the z inversion for polygon recall",
       check=Integer(1, MAX_POLYGON_STEPS)),
    # Execution options that can change the numbers, hence part of the identity.
    _o("amp_dtype", "str", "fp32", "autocast dtype: fp32 (off) or bf16",
       check=OneOf(("fp32", "bf16"))),
    # channels_last tunes one network's convolutions: such a trial trains alone.
    _o("channels_last", "bool", False, "channels-last memory format (speed only)", role=SOLO),
    # The whole training step as one compiled program (benchmark/training/compiled.py): the
    # same arithmetic and draws as op by op, rounded as its fused loops round.
    _o("compile", "bool", False, "run the whole training step as one compiled program (speed; "
       "rounding only)"),
    _o("plugins", "tuple[str, ...]", (), "modules imported first, comma-separated, so their "
       "registrations exist", cli=False),
    # Book-keeping from the sweep that planned this trial.
    _o("sweep", "str", "", "name of the sweep that planned the trial", role=BOOKKEEPING,
       cli=False),
    _o("phase", "str", "default", "study phase: default, wide, narrow, seeds", role=BOOKKEEPING,
       cli=False),
    _o("sample", "int", 0, "index of the setting in its search (0 = the model's preset)",
       role=BOOKKEEPING, cli=False),
    _o("seed_role", "str", "", "seeds phase: select or report", role=BOOKKEEPING, cli=False),
    _o("extra", "dict[str, Any]", {}, "free-form notes kept with the trial", role=BOOKKEEPING,
       cli=False),
)  # fmt: skip

BY_NAME = {option.name: option for option in OPTIONS}


def names(*, role: str | None = None, hyperparameter: bool | None = None) -> tuple[str, ...]:
    """Option names, in declaration order, with the given role and/or hyperparameter flag."""
    return tuple(
        o.name
        for o in OPTIONS
        if (role is None or o.role == role)
        and (hyperparameter is None or o.hyperparameter == hyperparameter)
    )


#: The options that tell one setting of a search from another (results columns).
HYPERPARAMETERS = names(hyperparameter=True)
#: Options recorded as numbers (results.csv reads these columns as numeric).
NUMERIC = tuple(o.name for o in OPTIONS if o.base_type in ("int", "float"))


#: The options without a default, first in TrialConfig's fields.
REQUIRED_NAMES = ("dataset", "model", "loss")


def check_option(option: Option, value: Any) -> str | None:
    """What `option` allows, if `value` is not allowed; None if it is (registries aside)."""
    if value is None:
        return None if option.optional else f"a value ({option.base_type})"
    kind = option.base_type
    if kind == "bool" and not isinstance(value, bool):
        return "true or false"
    if kind == "float":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value)):
            return "a finite number"
    if option.check is not None and not option.check.allows(value):
        return str(option.check)
    return None

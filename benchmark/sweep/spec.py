"""Sweep specs: a TOML file under runs/ read into a validated, frozen `SweepSpec`.

A spec names what to run (datasets, models, a search space or a finished sweep to take the
best settings from, seeds), how each trial is configured (any TrialConfig field, under its
own name) and where it runs (device, executor and its options). Every key is checked before
anything runs; an error names the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.options import Option, check_option
from benchmark.registry import load_plugins
from benchmark.results import COLUMNS, METRICS, PHASES, TRIALS, metric_of

# Plans larger than this are a typo, not a study (the paper's largest phase has 100 samples).
MAX_SAMPLES = 10_000
MAX_SEEDS = 10_000

# TrialConfig fields a spec may not set: the sweep sets them per trial.
PLANNED_FIELDS = ("dataset", "model", "seed", "sweep", "phase", "sample", "seed_role", "extra")
TRIAL_FIELDS = tuple(name for name in TrialConfig.options if name not in PLANNED_FIELDS)


@dataclass(frozen=True)
class Variant:
    """One arm of an ablation: TrialConfig fields set on top of the spec's, for `models` (all
    of the spec's when empty). Its name is stored in each trial's `extra["variant"]`."""

    name: str
    trial: dict[str, Any]
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepSpec:
    """One sweep: what to run, how each trial is configured, and where it runs."""

    path: Path
    name: str
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    # One paragraph for the top of the report: what the sweep is for and what it is not.
    description: str = ""
    # A network family (benchmark.networks.FAMILIES) replacing the presets' networks.
    networks: str | None = None
    phase: str = "default"
    space: str = "default"
    samples: int = 1
    seeds: tuple[int, ...] = (0,)
    search_seed: int = 0
    metric: str = "fid_min"
    direction: str = "min"
    # The seeds phase: re-run the best setting of `source` with these many seeds.
    source: Path | None = None
    select_seeds: int = 0
    report_seeds: int = 0
    # Where trials run; machine-specific, so not part of a trial's identity.
    executor: str = "local"
    executor_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    device: str | None = None
    data_root: str | None = None
    # Trials trained together as one population (benchmark/training): a size, or "auto" (by
    # device kind and family, training.population.auto_size). Not part of any trial's identity.
    population: int | str = 1
    # TrialConfig fields fixed for every trial (they win over the search space).
    trial: dict[str, Any] = field(default_factory=dict)
    # Arms of an ablation ([[variants]] tables): every planned setting runs once per variant.
    variants: tuple[Variant, ...] = ()

    @property
    def directory(self) -> Path:
        """runs/<name>/: the trials, results.csv, the report and the slurm logs."""
        return self.path.parent / self.name

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.trial.get("metrics", TrialConfig.options["metrics"].default))


MAX_POPULATION = 4096
POPULATION_SIZES = f'an integer in [1, {MAX_POPULATION}] (trials per population), or "auto"'


def is_population_size(value: Any) -> bool:
    return value == "auto" or (_is_int(value) and 1 <= value <= MAX_POPULATION)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _option_check(option: Option) -> tuple[Callable[[Any], bool], str]:
    """A check for a TOML value against a trial option's declaration (benchmark/options.py):
    its type, and its declared range or choices; and what it allows, in words."""
    if option.base_type.startswith("tuple"):
        return _is_str_list, "a list of strings"
    is_type, text = {
        "bool": (lambda v: isinstance(v, bool), "true or false"),
        "int": (_is_int, "an integer"),
        "float": (_is_number, "a number"),
        "str": (lambda v: isinstance(v, str), "a string"),
    }[option.base_type]
    text = str(option.check) if option.check is not None else text

    def allows(value: Any) -> bool:
        return is_type(value) and check_option(option, value) is None

    return allows, f"{text} (or leave it out)" if option.optional else text


class _Reader:
    """Pops keys from a TOML table, checking each; `finish` refuses what is left over."""

    def __init__(self, table: dict[str, Any], where: str, prefix: str = "") -> None:
        self.table, self.where, self.prefix = dict(table), where, prefix

    def error(self, key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(self.prefix + key, value, allowed, where=self.where)

    def get(self, key: str, default: Any, check: Callable[[Any], bool], allowed: str) -> Any:
        if key not in self.table:
            return default
        value = self.table.pop(key)
        if not check(value):
            raise self.error(key, value, allowed)
        return value

    def finish(self, known: typing.Iterable[str]) -> None:
        if self.table:
            key = sorted(self.table)[0]
            raise self.error(key, self.table[key], f"a known key: one of {sorted(known)}")


# A sweep's (and a variant's) name makes a folder of its own: no "." or "..", no separator,
# and short enough for any file system (NAME_MAX is 255 bytes on most; room for suffixes).
MAX_NAME = 200
FOLDER_NAME = (
    f"a folder name: a letter or digit, then letters, digits, '.', '_', '-' (at most {MAX_NAME})"
)


def is_folder_name(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME
        and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) is not None
    )


def _read_variants(r: _Reader, models: tuple[str, ...]) -> list[Variant]:
    """[[variants]] tables: a distinct `name`, optional `models`, TrialConfig fields."""
    tables = r.get(
        "variants",
        [],
        lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(t, dict) for t in v),
        "an array of tables [[variants]], each with a name and TrialConfig fields",
    )
    variants: list[Variant] = []
    for index, table in enumerate(tables):
        v = _Reader(table, r.where, prefix=f"variants[{index}].")
        name = v.get(
            "name",
            None,
            is_folder_name,
            FOLDER_NAME,
        )
        if name is None or name in {variant.name for variant in variants}:
            raise v.error("name", name, "a name, distinct from the other variants'")
        only = v.get(
            "models",
            [],
            lambda m: _is_str_list(m) and len(m) > 0 and set(m) <= set(models),
            f"a non-empty subset of the spec's models {list(models)}",
        )
        trial = {}
        for key in TRIAL_FIELDS:
            if key != "plugins" and key in v.table:
                value = v.get(key, None, *_option_check(TrialConfig.options[key]))
                trial[key] = tuple(value) if isinstance(value, list) else value
        v.finish(("name", "models", *TRIAL_FIELDS))
        variants.append(Variant(name=name, trial=trial, models=tuple(only)))
    return variants


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("spec", str(path), "an existing .toml file")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise ConfigError("spec", str(path), f"a readable file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        allowed = f"UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start})"
        raise ConfigError("spec", str(path), allowed) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("toml", str(error), "valid TOML", where=str(path)) from None


SPEC_KEYS = (
    "name",
    "description",
    "networks",
    "phase",
    "datasets",
    "models",
    "space",
    "samples",
    "seeds",
    "search_seed",
    "metric",
    "direction",
    "from",
    "select_seeds",
    "report_seeds",
    "executor",
    "device",
    "data_root",
    "population",
)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec; raises ConfigError naming the file, key and value."""
    from benchmark.sweep.executors import EXECUTORS

    path = Path(path)
    r = _Reader(read_toml(path), str(path))
    what = _read_what(r, path)
    trial, variants, networks = _read_trial_options(r, what)
    metric, direction = _read_ranking(r, trial, what["datasets"])
    options = _read_phase(r, what["phase"], networks)
    placement = _read_placement(r)
    r.finish((*SPEC_KEYS, "plugins", "variants", *EXECUTORS.names(), *TRIAL_FIELDS))
    what.pop("plugins")
    return SweepSpec(
        path=path,
        **what,
        networks=networks,
        metric=metric,
        direction=direction,
        trial=trial,
        variants=tuple(variants),
        **placement,
        **options,
    )


def _names_in(registry) -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: _is_str_list(v) and len(v) > 0 and set(v) <= set(registry.names()),
        f"a non-empty list of {registry.names()}",
    )


def _read_what(r: _Reader, path: Path) -> dict[str, Any]:
    """Plugins (imported first), name, description, phase, datasets and models."""
    from benchmark.datasets import DATASETS
    from benchmark.models import MODELS

    plugins = r.get("plugins", [], _is_str_list, "a list of module names")
    try:
        load_plugins(plugins)
    except ConfigError as error:
        raise r.error("plugins", error.value, error.allowed) from None
    name = r.get("name", path.stem, is_folder_name, FOLDER_NAME)
    if not is_folder_name(name):  # from the file's name: .toml, ..toml, a.b/c are not folders
        raise r.error("name", name, f"{FOLDER_NAME} (rename the spec file, or set name)")
    description = r.get("description", "", lambda v: isinstance(v, str), "a string")
    phase = r.get("phase", "default", lambda v: v in PHASES, f"one of {list(PHASES)}")
    datasets = r.get("datasets", None, *_names_in(DATASETS))
    models = r.get("models", None, *_names_in(MODELS))
    for key, value in (("datasets", datasets), ("models", models)):
        if value is None:
            raise r.error(key, None, "a non-empty list (the key is required)")
    return dict(
        plugins=plugins,
        name=name,
        description=description,
        phase=phase,
        datasets=tuple(datasets),
        models=tuple(models),
    )


def _read_trial_options(
    r: _Reader, what: dict[str, Any]
) -> tuple[dict[str, Any], list[Variant], str | None]:
    """The trial options every trial takes (each checked against its declaration), the
    variants, and the network family."""
    from benchmark.networks import FAMILIES

    trial: dict[str, Any] = {"plugins": what["plugins"]} if what["plugins"] else {}
    for key in TRIAL_FIELDS:
        if key != "plugins" and key in r.table:
            value = r.get(key, None, *_option_check(TrialConfig.options[key]))
            trial[key] = tuple(value) if isinstance(value, list) else value
    for metric in trial.get("metrics", ()):
        if metric not in METRICS:
            raise r.error("metrics", metric, f"a subset of {METRICS.names()}")
    variants = _read_variants(r, what["models"])
    if variants and what["phase"] == "seeds":
        raise r.error("variants", [v.name for v in variants], 'nothing in phase = "seeds"')
    networks = r.get("networks", None, lambda v: v in FAMILIES, f"one of {FAMILIES.names()}")
    for key in ("generator", "discriminator"):
        if networks is not None and key in trial:
            raise r.error(key, trial[key], "nothing when `networks` names the family")
    return trial, variants, networks


def _read_ranking(r: _Reader, trial: dict[str, Any], datasets: tuple[str, ...]) -> tuple[str, str]:
    """The result column the sweep ranks by and its direction; by default the headline column
    of the trials' metrics (unset: those of the datasets' kinds, benchmark/data_kinds.py)."""
    from benchmark.data_kinds import DATA_KINDS
    from benchmark.datasets import DATASETS

    kinds = [DATA_KINDS.get(DATASETS.get(name).kind) for name in datasets]
    metrics = trial.get("metrics") or [m for kind in kinds for m in kind.metrics]
    default_metric = (
        "w1"
        if "mixture" in metrics
        else "f1"
        if "polygon" in metrics and "fid" not in metrics
        else "fid_min"
    )
    metric = r.get("metric", default_metric, lambda v: isinstance(v, str) and v, "a result column")
    direction = r.get(
        "direction",
        COLUMNS[metric].best_word if metric in COLUMNS else None,
        lambda v: v in ("min", "max"),
        '"min" or "max"',
    )
    if direction is None:
        raise r.error("direction", None, f'"min" or "max" (metric {metric!r} has no default)')
    source_metric = metric_of(metric)
    chosen = trial.get("metrics")  # unset: the default, or a seeds phase's source trials'
    if chosen and source_metric is not None and source_metric not in chosen:
        raise r.error("metric", metric, f"a column the trials' metrics {list(chosen)} produce")
    return metric, direction


def _read_phase(r: _Reader, phase: str, networks: str | None) -> dict[str, Any]:
    """A seeds phase's source and seed counts, or a search's space, samples and seeds."""
    from benchmark.search import SPACES

    search_seed = r.get("search_seed", 0, lambda v: _is_int(v) and v >= 0, "an integer >= 0")
    options: dict[str, Any] = {"search_seed": search_seed}
    if phase == "seeds":
        source = r.get("from", None, lambda v: isinstance(v, str) and v, "a sweep directory")
        if source is None:
            raise r.error("from", None, "a finished sweep directory (required in phase seeds)")
        if not (Path(source) / TRIALS).is_dir():
            raise r.error("from", source, "a sweep directory holding trials/<id>/result.json")
        options["source"] = Path(source)
        options["select_seeds"] = r.get(
            "select_seeds",
            0,
            lambda v: _is_int(v) and 0 <= v <= MAX_SEEDS,
            f"an integer in [0, {MAX_SEEDS:,}]",
        )
        options["report_seeds"] = r.get(
            "report_seeds",
            None,
            lambda v: _is_int(v) and 1 <= v <= MAX_SEEDS,
            f"an integer in [1, {MAX_SEEDS:,}]",
        )
        if options["report_seeds"] is None:
            raise r.error("report_seeds", None, "an integer >= 1 (required in phase seeds)")
        for key in ("space", "samples", "seeds", "search_seed"):
            if key in r.table:
                raise r.error(key, r.table[key], "nothing: phase seeds takes its settings from")
        if networks is not None:
            raise r.error(
                "networks", networks, "nothing in phase seeds (the source sweep fixed them)"
            )
    else:
        for key in ("from", "select_seeds", "report_seeds"):
            if key in r.table:
                raise r.error(key, r.table[key], 'nothing outside phase = "seeds"')
        default_space = phase if phase in SPACES else "default"
        space = r.get("space", default_space, lambda v: v in SPACES, f"one of {SPACES.names()}")
        samples = r.get(
            "samples",
            1,
            lambda v: _is_int(v) and 1 <= v <= MAX_SAMPLES,
            f"an integer in [1, {MAX_SAMPLES:,}]",
        )
        if space == "default" and samples != 1:
            raise r.error("samples", samples, '1 (space "default" has one setting per model)')
        settings = len(SPACES.get(space).settings)
        if settings and samples > settings:
            raise r.error("samples", samples, f"at most {settings} (space {space!r} lists them)")
        seeds = r.get(
            "seeds",
            1,
            lambda v: (
                (_is_int(v) and 1 <= v <= MAX_SEEDS)
                or (
                    isinstance(v, list)
                    and 0 < len(v) <= MAX_SEEDS
                    and all(_is_int(s) and s >= 0 for s in v)
                    and len(set(v)) == len(v)
                )
            ),
            f"a count in [1, {MAX_SEEDS:,}], or a list of distinct integers >= 0",
        )
        seeds = tuple(range(seeds)) if _is_int(seeds) else tuple(seeds)
        options.update(space=space, samples=samples, seeds=seeds)
    return options


def _read_placement(r: _Reader) -> dict[str, Any]:
    """Where the trials run: executor (and every executor's table), device, data, population."""
    from benchmark.sweep.executors import EXECUTORS

    executor = r.get("executor", "local", lambda v: v in EXECUTORS, f"one of {EXECUTORS.names()}")
    executor_options = {}
    for kind in EXECUTORS:
        table = r.get(kind, {}, lambda v: isinstance(v, dict), f"a table [{kind}]")
        executor_options[kind] = EXECUTORS.get(kind).read_options(table, r.where)
    device = r.get(
        "device", None, lambda v: isinstance(v, str) and v, 'a torch device (cpu, cuda) or "auto"'
    )
    data_root = r.get("data_root", None, lambda v: isinstance(v, str) and v, "a directory")
    return dict(
        executor=executor,
        executor_options=executor_options,
        device=None if device == "auto" else device,  # None: cuda when there is one, else cpu
        data_root=data_root,
        population=r.get("population", 1, is_population_size, POPULATION_SIZES),
    )

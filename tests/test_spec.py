"""Sweep specs: defaults, the shipped specs, and errors that name file, key, value, allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.registry import ConfigError
from benchmark.spec import load_spec
from benchmark.sweep import plan

REPO = Path(__file__).resolve().parent.parent
PAPER_DATASETS = ("mnist", "fashion_mnist", "cifar10", "celeba", "polygons")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text('datasets = ["mnist"]\nmodels = ["ns"]\n' + text)
    return path


def test_minimal_spec_defaults(tmp_path):
    spec = load_spec(write(tmp_path, ""))
    assert spec.name == "s" and spec.directory == tmp_path / "s"
    assert (spec.phase, spec.space, spec.samples, spec.seeds) == ("default", "default", 1, (0,))
    assert (spec.metric, spec.direction, spec.executor) == ("fid_min", "min", "local")
    assert spec.executor_options["local"] == {"workers_per_gpu": 1}
    assert spec.executor_options["slurm"]["timeout_min"] == 24 * 60
    assert spec.trial == {}


def test_phase_sets_the_space_and_fields_go_to_the_trial(tmp_path):
    spec = load_spec(
        write(tmp_path, 'phase = "narrow"\nsamples = 5\nseeds = [3, 1]\nsteps = 9\nlr = 1e-3\n')
    )
    assert (spec.space, spec.samples, spec.seeds) == ("narrow", 5, (3, 1))
    assert spec.trial == {"steps": 9, "lr": 1e-3}


@pytest.mark.parametrize(
    ("text", "key", "value", "allowed"),
    [
        ("colour = 1\n", "colour", "1", "a known key"),
        ("samples = 0\n", "samples", "0", "an integer in [1, 10,000]"),
        ('phase = "long"\n', "phase", "'long'", "one of ['default', 'wide', 'narrow', 'seeds']"),
        ('space = "huge"\n', "space", "'huge'", "one of ['default', 'narrow', 'wide']"),
        ("samples = 3\n", "samples", "3", '1 (space "default"'),
        ('lr = "fast"\n', "lr", "'fast'", "a number"),
        ("steps = 1.5\n", "steps", "1.5", "an integer"),
        ('metrics = ["fid", "is"]\n', "metrics", "'is'", "a subset of"),
        ('executor = "k8s"\n', "executor", "'k8s'", "one of ['local', 'slurm']"),
        ("[slurm]\ngpus = 2\n", "gpus", "2", "one of ['additional', 'array_parallelism'"),
        ("[local]\nworkers_per_gpu = 0\n", "workers_per_gpu", "0", "an integer >= 1"),
        ("seed = 3\n", "seed", "3", "a known key"),
        ('from = "runs/x"\n', "from", "'runs/x'", 'nothing outside phase = "seeds"'),
        ('metric = "sharpness"\n', "direction", "None", '"min" or "max"'),
        ('plugins = ["no_such_module_here"]\n', "plugins", "'no_such_module_here'", "importable"),
    ],
)
def test_errors_name_file_key_value_and_allowed(tmp_path, text, key, value, allowed):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}={value} is not allowed; expected ")
    assert allowed in message
    assert info.value.where == str(path)


@pytest.mark.parametrize(
    ("text", "message", "allowed"),
    [
        (
            'datasets = ["mnist", "svhn"]\nmodels = ["ns"]\n',
            "datasets=['mnist', 'svhn']",
            "'polygons'",
        ),
        ('datasets = ["mnist"]\nmodels = ["ns", "gan3"]\n', "models=['ns', 'gan3']", "'wgan_gp'"),
        ('datasets = ["mnist"]\n', "models=None", "required"),
    ],
)
def test_unknown_models_and_datasets(tmp_path, text, message, allowed):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: {message} is not allowed")
    assert allowed in str(info.value)


def test_a_bad_combination_is_refused_with_the_file(tmp_path):
    # mm with a gradient penalty needs lam; only building the trials can tell.
    path = write(tmp_path, 'penalty = "gp"\n')
    spec = load_spec(path)
    with pytest.raises(ConfigError, match=rf"^{path}: lam=None .*penalty 'gp' needs it"):
        plan(spec)


def test_seeds_phase_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"from=None .*required in phase seeds"):
        load_spec(write(tmp_path, 'phase = "seeds"\nreport_seeds = 3\n'))
    with pytest.raises(ConfigError, match=r"from='nowhere' .*sweep directory"):
        load_spec(write(tmp_path, 'phase = "seeds"\nfrom = "nowhere"\nreport_seeds = 3\n'))
    (tmp_path / "src" / "trials").mkdir(parents=True)
    source = f'phase = "seeds"\nfrom = "{tmp_path / "src"}"\n'
    with pytest.raises(ConfigError, match=r"report_seeds=None"):
        load_spec(write(tmp_path, source))
    with pytest.raises(ConfigError, match=r"samples=3 .*phase seeds takes its settings"):
        load_spec(write(tmp_path, source + "report_seeds = 2\nsamples = 3\n"))
    spec = load_spec(write(tmp_path, source + "report_seeds = 2\nselect_seeds = 1\n"))
    assert (spec.source, spec.select_seeds, spec.report_seeds) == (tmp_path / "src", 1, 2)


def test_bad_toml(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("datasets = [\n")
    with pytest.raises(ConfigError, match=rf"^{path}: toml="):
        load_spec(path)


PAPER_LENGTHS = {
    "mnist": (15_625, 3_125),
    "fashion_mnist": (15_625, 3_125),
    "polygons": (15_625, 3_125),
    "cifar10": (78_125, 15_625),
    "celeba": (101_250, 20_250),
}


@pytest.mark.parametrize("dataset", PAPER_DATASETS)
def test_the_paper_specs(dataset, tmp_path, monkeypatch):
    # The seeds specs name runs/<dataset>-wide, relative to the repository root.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / f"{dataset}-wide" / "trials").mkdir(parents=True)
    specs = {}
    for phase in ("wide", "narrow", "seeds"):
        path = shutil.copy(REPO / "runs" / f"{dataset}-{phase}.toml", tmp_path / "runs")
        specs[phase] = load_spec(Path(path).relative_to(tmp_path))
    metrics = ("fid", "polygon") if dataset == "polygons" else ("fid",)
    for phase, spec in specs.items():
        assert spec.name == f"{dataset}-{phase}" and spec.phase == phase
        assert spec.datasets == (dataset,)
        assert spec.models == ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
        assert (spec.trial["steps"], spec.trial["checkpoint_every"]) == PAPER_LENGTHS[dataset]
        assert spec.trial["metrics"] == metrics
        assert (spec.trial["fid_n_real"], spec.trial["fid_n_fake"]) == (10_000, 10_000)
        assert spec.metric == "fid_min"
        assert "bn_momentum" not in spec.trial  # the reference 0.001
    assert (specs["wide"].space, specs["wide"].samples) == ("wide", 100)
    assert (specs["narrow"].space, specs["narrow"].samples) == ("narrow", 50)
    assert specs["seeds"].source == Path(f"runs/{dataset}-wide")
    assert specs["seeds"].report_seeds == 50
    trials = plan(specs["wide"])
    assert len(trials) == 700 and len({t.trial_id for t in trials}) == 700
    assert len(plan(specs["narrow"])) == 350


def test_quick_spec():
    spec = load_spec(REPO / "runs" / "quick.toml")
    assert spec.datasets == ("polygons",) and spec.metric == "f1" and spec.direction == "max"
    assert spec.trial["metrics"] == ("polygon",)

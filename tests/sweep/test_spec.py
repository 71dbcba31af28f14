"""Sweep specs: defaults, the shipped specs, and errors that name file, key, value, allowed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.errors import ConfigError
from benchmark.models import resolve_trial
from benchmark.schedule import trial_schedule
from benchmark.sweep.plan import plan
from benchmark.sweep.spec import load_spec
from tests.helpers import REPO

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
    assert spec.executor_options["local"] == {"workers_per_gpu": 1, "cpu_workers": 1}
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
        (
            'space = "huge"\n',
            "space",
            "'huge'",
            "one of ['default', 'landscape', 'mixture', 'mixture_pilot', 'narrow', 'quick', "
            "'wide']",
        ),
        ("samples = 3\n", "samples", "3", '1 (space "default"'),
        ('lr = "fast"\n', "lr", "'fast'", "a number"),
        ("steps = 1.5\n", "steps", "1.5", "an integer"),
        ('metrics = ["fid", "is"]\n', "metrics", "'is'", "a subset of"),
        ('executor = "k8s"\n', "executor", "'k8s'", "one of ['local', 'slurm']"),
        ("[slurm]\ngpus = 2\n", "gpus", "2", "one of ['additional', 'array_parallelism'"),
        ("[local]\nworkers_per_gpu = 0\n", "workers_per_gpu", "0", "an integer >= 1"),
        ("[local]\ncpu_workers = 0\n", "cpu_workers", "0", "an integer >= 1 (trials at once"),
        (
            'networks = "resnet"\n',
            "networks",
            "'resnet'",
            "one of ['infogan', 'mlp', 'points', 'resnet5', 'resnet_cifar', 'sndcgan', 'welfert']",
        ),
        ('networks = "mlp"\ngenerator = "infogan"\n', "generator", "'infogan'", "nothing when"),
        ("description = 3\n", "description", "3", "a string"),
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


# The reference's schedule (compare_gan v1 generate_tasks_lib.TuneParams, abstract_gan.train):
# epoch = 50,000 images (CelebA 162,000); steps = epochs * epoch // 64; a checkpoint after the
# step with index i > 0, i % (5 * epoch // 64) == 0 (i + 1 updates done), and at the end.
MNIST_EVALS = [3_907, 7_813, 11_719, 15_625]
PAPER_SCHEDULES = {
    "mnist": (15_625, MNIST_EVALS),
    "fashion_mnist": (15_625, MNIST_EVALS),
    "polygons": (15_625, MNIST_EVALS),
    "cifar10": (78_125, [3_906 * k + 1 for k in range(1, 21)] + [78_125]),
    "celeba": (101_250, [12_656 * k + 1 for k in range(1, 9)] + [101_250]),
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
        schedule = trial_schedule(resolve_trial("ns", dataset, **spec.trial))
        assert (schedule.steps, schedule.eval_steps) == PAPER_SCHEDULES[dataset]
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
    for trial in trials:  # every planned trial, whatever its sampled n_disc, keeps the schedule
        schedule = trial_schedule(trial)
        assert (schedule.steps, schedule.eval_steps) == PAPER_SCHEDULES[dataset]
    assert len(plan(specs["narrow"])) == 350


def test_description_and_networks(tmp_path):
    spec = load_spec(write(tmp_path, 'description = "A test."\nnetworks = "mlp"\n'))
    assert (spec.description, spec.networks) == ("A test.", "mlp")
    assert load_spec(write(tmp_path, "")).description == ""


def test_polygons_quick_spec():
    spec = load_spec(REPO / "runs" / "polygons-quick.toml")
    assert spec.datasets == ("polygons",) and spec.metric == "f1" and spec.direction == "max"
    assert spec.trial["metrics"] == ("polygon",)
    # It says what it is, and where the paper's protocol is.
    assert spec.description.startswith("A reduced-scale demonstration, not the paper's study")
    assert "MLP" in spec.description and "runs/<dataset>-wide.toml" in spec.description
    assert "\n" not in spec.description


# ---- ablations: [[variants]] --------------------------------------------------------------

VARIANTS = """
[[variants]]
name = "none"

[[variants]]
name = "smooth"
models = ["ns"]
label_smoothing = 0.1

[[variants]]
name = "normal_z"
latent = "normal"
"""


def test_variants_plan_every_setting_once_per_arm(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["mnist"]\nmodels = ["ns", "wgan_gp"]\nsteps = 9\n' + VARIANTS)
    spec = load_spec(path)
    assert [v.name for v in spec.variants] == ["none", "smooth", "normal_z"]
    assert spec.variants[1].models == ("ns",) and spec.variants[1].trial == {"label_smoothing": 0.1}
    trials = plan(spec)
    arms = [(t.model, t.extra["variant"], t.label_smoothing, t.latent) for t in trials]
    assert arms == [
        ("ns", "none", 0.0, "uniform"),
        ("ns", "smooth", 0.1, "uniform"),
        ("ns", "normal_z", 0.0, "normal"),
        ("wgan_gp", "none", 0.0, "uniform"),
        ("wgan_gp", "normal_z", 0.0, "normal"),
    ]
    assert len({t.trial_id for t in trials}) == 5 and {t.steps for t in trials} == {9}


def test_a_spec_without_variants_plans_trials_without_one(tmp_path):
    (trial,) = plan(load_spec(write(tmp_path, "steps = 9\n")))
    assert trial.extra == {}


def test_a_variant_a_loss_cannot_take_is_refused_naming_the_spec(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'datasets = ["mnist"]\nmodels = ["ns", "wgan_gp"]\n[[variants]]\nname = "smooth"\n'
        "label_smoothing = 0.1\n"
    )
    spec = load_spec(path)
    with pytest.raises(ConfigError) as info:
        plan(spec)
    assert str(info.value) == (
        f"{path}: label_smoothing=0.1 is not allowed; expected 0: loss 'wgan' has no "
        "real/fake targets (losses with targets: ['ls', 'mm', 'ns'])"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[variants]]\nlr = 1e-3\n", "variants[0].name=None is not allowed; expected a name"),
        (
            '[[variants]]\nname = "a"\n[[variants]]\nname = "a"\n',
            "variants[1].name='a' is not allowed; expected a name, distinct",
        ),
        (
            '[[variants]]\nname = "a"\nmodels = ["wgan"]\n',
            "variants[0].models=['wgan'] is not allowed; expected a non-empty subset of the "
            "spec's models ['ns']",
        ),
        ('[[variants]]\nname = "a"\nlatent = 1\n', "variants[0].latent=1 is not allowed"),
        ('[[variants]]\nname = "a"\nseed = 1\n', "variants[0].seed=1 is not allowed"),
        ("variants = 3\n", "variants=3 is not allowed; expected an array of tables"),
    ],
)
def test_variant_errors_name_the_table_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: {message}")


def test_variants_are_refused_in_the_seeds_phase(tmp_path):
    (tmp_path / "src" / "trials").mkdir(parents=True)
    text = f'phase = "seeds"\nfrom = "{tmp_path / "src"}"\nreport_seeds = 2\n'
    with pytest.raises(ConfigError, match=r"variants=\['a'\] is not allowed; expected nothing"):
        load_spec(write(tmp_path, text + '[[variants]]\nname = "a"\n'))


def test_the_tricks_specs():
    """NS, LS and WGAN-GP with the tricks off and on; WGAN-GP only takes the latent."""
    quick = load_spec(REPO / "runs" / "tricks-quick.toml")
    full = load_spec(REPO / "runs" / "tricks-polygons-wide.toml")
    for spec in (quick, full):
        assert spec.datasets == ("polygons",) and spec.models == ("ns", "ls", "wgan_gp")
        assert [v.name for v in spec.variants] == ["none", "smooth", "flip", "normal_z", "all"]
    trials = plan(quick)
    arms = {(t.model, t.extra["variant"]) for t in trials}
    assert len(trials) == 12 and {v for m, v in arms if m == "wgan_gp"} == {"none", "normal_z"}
    for trial in trials:
        tricks = (trial.label_smoothing, trial.label_flip, trial.latent)
        assert (
            tricks
            == {
                "none": (0.0, 0.0, "uniform"),
                "smooth": (0.1, 0.0, "uniform"),
                "flip": (0.0, 0.05, "uniform"),
                "normal_z": (0.0, 0.0, "normal"),
                "all": (0.1, 0.05, "normal"),
            }[trial.extra["variant"]]
        )
        assert (trial.steps, trial.metrics) == (200, ("polygon",))
    assert quick.trial["polygon_n_recall"] == 50 and quick.device == "cpu"
    trials = plan(full)
    assert len(trials) == 1200
    schedule = trial_schedule(trials[0])
    assert (schedule.steps, schedule.eval_steps) == PAPER_SCHEDULES["polygons"]
    # The arms are paired: sample i is the same setting in every variant of a model.
    ns_sample_7 = {
        (t.lr, t.beta1, t.n_disc, t.d_bn) for t in trials if t.model == "ns" and t.sample == 7
    }
    assert len(ns_sample_7) == 1


def test_the_modern_losses_specs():
    models = ("ns", "wgan_gp", "rsgan", "ragan", "rpgan", "ns_r1")
    quick = load_spec(REPO / "runs" / "modern-quick.toml")
    full = load_spec(REPO / "runs" / "modern-polygons-wide.toml")
    for spec in (quick, full):
        assert spec.datasets == ("polygons",) and spec.models == models
        assert (spec.phase, spec.space) == ("wide", "wide")
    trials = plan(quick)
    assert len(trials) == 18 and {t.steps for t in trials} == {200}
    defaults = {t.model: t for t in trials if t.sample == 0}
    assert (defaults["rpgan"].loss, defaults["rpgan"].penalty, defaults["rpgan"].lam) == (
        "rsgan",
        "r1r2",
        0.0125,
    )
    assert (defaults["ns_r1"].penalty, defaults["ns_r1"].lam) == ("r1", 5.0)
    trials = plan(full)
    assert len(trials) == 600
    schedule = trial_schedule(trials[0])
    assert (schedule.steps, schedule.eval_steps) == PAPER_SCHEDULES["polygons"]

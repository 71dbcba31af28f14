"""Trial options are declared once (benchmark/options.py): everything else derives from that."""

from __future__ import annotations

import argparse
import dataclasses
import math
import pickle

import pytest

from benchmark import options
from benchmark.cli import add_trial_options, overrides_from
from benchmark.config import TrialConfig, trial_class
from benchmark.errors import ConfigError
from benchmark.models import MODELS, ModelPreset, networks_for, resolve_trial
from benchmark.options import MEMBER, OPTIONS, SHARED, Integer, Number, OneOf, Option
from benchmark.search import SPACES, Space, Uniform
from benchmark.sweep.spec import _option_check
from benchmark.training.population import population_key


def toy_trial_class(role: str) -> type:
    """TrialConfig with one more declared option, `toy`: nothing else is written for it."""
    toy = Option("toy", "int", 3, "a toy knob", unit="widgets", role=role, check=Integer(1, 9))
    return trial_class((*OPTIONS, toy), "ToyTrial")


def test_a_new_option_needs_one_declaration():
    toy_trial = toy_trial_class(MEMBER)
    # The command line: an --option with its help, unit and default, read back as an override.
    parser = argparse.ArgumentParser()
    add_trial_options(parser, toy_trial)
    (action,) = [a for a in parser._actions if a.dest == "toy"]
    assert action.option_strings == ["--toy"]
    assert action.help == "a toy knob (widgets; default: 3)"
    assert overrides_from(parser.parse_args(["--toy", "5"]), toy_trial)["toy"] == 5
    # The checks of every trial and of a spec's value, with the declared range in words.
    with pytest.raises(ConfigError, match=r"toy=0 is not allowed; expected an integer in \[1, 9\]"):
        toy_trial(dataset="grid", model="ns", loss="ns", generator="points",
                  discriminator="points", metrics=("mixture",), toy=0)  # fmt: skip
    allows, allowed = _option_check(toy_trial.options["toy"])
    assert (allows(5), allows(0), allows(2.5), allowed) == (
        True,
        False,
        False,
        "an integer in [1, 9]",
    )
    # The trial's identity and the population key, by the declared role.
    base = dict(dataset="grid", model="ns", loss="ns", generator="points", discriminator="points")
    base["metrics"] = ("mixture",)
    two, five = toy_trial(**base, toy=2), toy_trial(**base, toy=5)
    assert two.to_dict()["toy"] == 2 and two.trial_id != five.trial_id
    assert population_key(two) == population_key(five)  # members may differ in it
    shared = toy_trial_class(SHARED)
    assert population_key(shared(**base, toy=2)) != population_key(shared(**base, toy=5))


def test_trial_config_is_the_table():
    assert [f.name for f in dataclasses.fields(TrialConfig)] == [o.name for o in OPTIONS]
    for option in OPTIONS:
        if option.name not in options.REQUIRED_NAMES:
            field = TrialConfig.__dataclass_fields__[option.name]
            default = field.default if field.default_factory is dataclasses.MISSING else {}
            assert default == option.default, option.name
    trial = resolve_trial("ns", "grid", steps=10)
    assert pickle.loads(pickle.dumps(trial)) == trial  # pickled by name, for worker processes
    assert type(pickle.loads(pickle.dumps(trial))) is TrialConfig


@pytest.mark.parametrize(
    ("check", "good", "bad", "words"),
    [
        (Integer(1), [1, 10**9], [0, -1, 1.0, True], "an integer >= 1"),
        (Integer(2, 200_000), [2, 200_000], [1, 200_001], "an integer in [2, 200,000]"),
        (Number(0, low_open=True), [1e-9, 5], [0, -1], "a number > 0"),
        (Number(0), [0, 3.5], [-1e-9], "a number >= 0"),
        (Number(0, 1, high_open=True), [0, 0.999], [1, -0.1], "a number in [0, 1)"),
        (Number(0, 1, low_open=True), [1, 0.001], [0, 1.1], "a number in (0, 1]"),
        (Number(0, 0.5), [0, 0.5], [0.51], "a number in [0, 0.5]"),
        (OneOf(("fp32", "bf16")), ["bf16"], ["fp16"], "one of ('fp32', 'bf16')"),
    ],
)
def test_each_check_allows_its_range_and_says_it(check, good, bad, words):
    assert all(check.allows(value) for value in good)
    assert not any(check.allows(value) for value in bad)
    assert str(check) == words


def test_types_come_from_the_declaration():
    by_name = options.BY_NAME
    assert options.check_option(by_name["lr"], math.inf) == "a finite number"
    assert options.check_option(by_name["lr"], "fast") == "a finite number"
    assert options.check_option(by_name["lr"], 0.0) == "a number > 0"
    assert options.check_option(by_name["d_bn"], 1) == "true or false"
    assert options.check_option(by_name["clip"], None) is None  # optional: unset allowed
    assert options.check_option(by_name["n_disc"], None) == "a value (int)"
    with pytest.raises(ConfigError, match="d_bn=1 is not allowed; expected true or false"):
        resolve_trial("ns", "mnist", d_bn=1)


def test_the_lists_of_names_derive_from_the_roles():
    assert options.HYPERPARAMETERS == (
        "lr", "beta1", "beta2", "n_disc", "d_bn", "clip", "lam", "lambda_k", "gamma",
    )  # fmt: skip
    assert options.names(role=MEMBER) == (
        "lr", "beta1", "beta2", "clip", "lam", "lambda_k", "gamma", "seed",
    )  # fmt: skip
    assert options.names(role=options.SOLO) == ("spectral_norm", "channels_last")
    assert set(options.NUMERIC) >= {"seed", "sample", "lr", "n_disc", "steps", "epochs"}
    assert "d_bn" not in options.NUMERIC


def test_a_preset_sets_only_preset_options_and_reads_defaults_for_the_rest():
    assert MODELS.get("ls_raw").n_disc == 1  # not set by the preset: the declared default
    assert MODELS.get("wgan").clip == 0.01
    with pytest.raises(ValueError, match="preset option 'z_dim'"):
        ModelPreset(loss="ns", z_dim=8)
    with pytest.raises(ValueError, match="names its loss"):
        ModelPreset(lr=1e-3)


def test_a_space_draws_only_declared_hyperparameters():
    with pytest.raises(ValueError, match="search space draws 'z_dim'"):
        Space({"z_dim": Uniform(1, 2)})
    assert SPACES.get("wide").ranges  # the registered spaces passed the same check


def test_the_dataset_chooses_the_default_network_family():
    assert networks_for("ns", "grid") == {"generator": "points", "discriminator": "points"}
    assert networks_for("began", "ring") == {
        "generator": "points",
        "discriminator": "points_began",
    }
    assert networks_for("ns", "mnist") == {"generator": "infogan", "discriminator": "infogan"}
    assert networks_for("ns", "grid", "welfert")["generator"] == "welfert"
    assert networks_for("ns", "mnist", "mlp") == {"generator": "mlp", "discriminator": "mlp"}
    trial = resolve_trial("ns", "ring", steps=10)
    assert (trial.generator, trial.discriminator) == ("points", "points")
    own = resolve_trial("ns", "ring", steps=10, generator="welfert", discriminator="welfert")
    assert (own.generator, own.discriminator) == ("welfert", "welfert")  # an override wins


def test_every_option_is_in_the_options_page():
    """docs/options.md lists every option a trial or spec can set (a new one shows up here)."""
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "options.md").read_text()
    table = page[page.index("## Every trial option") :]
    listed = {name for line in table.splitlines() for name in line.split("`")[1::2]}
    missing = [o.name for o in OPTIONS if o.cli and o.name not in listed]
    assert missing == []

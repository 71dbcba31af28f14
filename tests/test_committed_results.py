"""The committed results (results/): their reports rebuild to the same bytes, and trials
retrained from their records score the same bits."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from analysis.__main__ import main as analysis_main
from benchmark.config import TrialConfig
from benchmark.results import RESULT, TRIALS

RESULTS = Path(__file__).parents[1] / "results"
STUDIES = ("mixtures-grid", "mixtures-grid-seeds", "mixtures-ring", "mixtures-ring-seeds")
PILOTS = ("mixtures-pilot/pilot", "mixtures-pilot/pilot-ring")


@pytest.mark.parametrize("name", STUDIES + PILOTS)
def test_a_committed_report_rebuilds_to_the_same_bytes(name, tmp_path):
    committed = RESULTS / name
    copy = tmp_path / Path(name).name
    shutil.copytree(committed, copy, ignore=shutil.ignore_patterns("report"))
    assert analysis_main([str(copy)]) == 0
    files = sorted(p.name for p in (committed / "report").iterdir())
    assert sorted(p.name for p in (copy / "report").iterdir()) == files
    for file in files:  # text, tables and figures (PNG and SVG), byte for byte
        assert (copy / "report" / file).read_bytes() == (
            committed / "report" / file
        ).read_bytes(), file
    assert not list(committed.rglob("generator.pt"))  # no checkpoints committed


def _population(study: str, model: str) -> tuple[list[TrialConfig], list[dict]]:
    """The trials of one model in a seeds phase (one population, in planned seed order)."""
    records = []
    for folder in sorted((RESULTS / study / TRIALS).iterdir()):
        trial = json.loads((folder / "trial.json").read_text())
        if trial["model"] == model:
            records.append((trial, json.loads((folder / RESULT).read_text())))
    records.sort(key=lambda pair: pair[0]["seed"])
    return [TrialConfig.from_dict(t) for t, _ in records], [r for _, r in records]


@pytest.mark.slow
def test_trials_retrained_from_their_records_score_the_committed_bits(tmp_path):
    """The ring study's seeds phase trained each model's ten seeds as one population of ten
    (compiled, one thread per worker): NS GAN's ten, retrained from their trial.json the same
    way, give the committed scores bit for bit."""
    from benchmark.training.compiled import compiler_missing
    from benchmark.training.loop import run_population

    if compiler_missing():
        pytest.skip("the committed trials ran compiled; this machine has no C++ compiler")
    trials, results = _population("mixtures-ring-seeds", "ns")
    assert len(trials) == 10 and {r["population"] for r in results} == {10}
    threads = torch.get_num_threads()
    torch.set_num_threads(int(results[0]["cpu_threads"]))
    try:
        dirs = [tmp_path / t.trial_id for t in trials]
        again = run_population(trials, dirs, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    for new, old in zip(again, results, strict=True):
        for score in ("w1", "modes", "hq", "reverse_kl", "energy"):
            assert new[score] == old[score], (new["trial_id"], score)


@pytest.mark.parametrize("dataset", ["grid", "ring"])
def test_the_committed_trials_are_the_specs_plan(dataset, tmp_path):
    """The search's trials are runs/mixtures-<dataset>.toml's plan, and the seeds phase's are
    the plan of its seeds spec read from the committed search: each model's best setting,
    re-run with fresh seeds."""
    from benchmark.sweep.plan import plan
    from benchmark.sweep.spec import load_spec

    runs = Path(__file__).parents[1] / "runs"
    search = plan(load_spec(runs / f"mixtures-{dataset}.toml"))
    stored = {p.name for p in (RESULTS / f"mixtures-{dataset}" / TRIALS).iterdir()}
    assert {t.trial_id for t in search} == stored
    text = (runs / f"mixtures-{dataset}-seeds.toml").read_text()
    source = f'from = "runs/mixtures-{dataset}"'
    assert source in text
    spec = tmp_path / f"mixtures-{dataset}-seeds.toml"
    spec.write_text(text.replace(source, f'from = "{RESULTS / f"mixtures-{dataset}"}"'))
    seeds = plan(load_spec(spec))
    stored = {p.name for p in (RESULTS / f"mixtures-{dataset}-seeds" / TRIALS).iterdir()}
    assert {t.trial_id for t in seeds} == stored and len(seeds) == 70

"""Welfert et al. 2023's ring study, piece by piece against their code (SankarLab/
AlphaGan-Papers-Results, commit 5460544) and their per-seed results (commit bf0c76a): the
data, the networks, LSGAN's 0-1 coding, the mode count, the published rates and the test
that compares a rate of ours with theirs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from analysis.welfert import WELFERT_2023, compare_rate
from benchmark.datasets import DATASETS
from benchmark.evaluation.welfert_metrics import welfert_scores
from benchmark.losses import LOSSES
from benchmark.mixtures import MIXTURES, generate
from benchmark.networks import DISCRIMINATORS, FAMILIES, GENERATORS, NetworkOptions
from benchmark.results import METRICS

RING = MIXTURES.get("ring_welfert")


def test_the_ring_as_their_make_ring_lists_it():
    # means = [(cos 2 pi i / 8, sin 2 pi i / 8) for i in range(1, 9)], stds sqrt(1e-4)
    assert np.allclose(RING.centres[0], (math.sqrt(0.5), math.sqrt(0.5)))  # 45 degrees first
    assert np.allclose(RING.centres[-1], (1.0, 0.0))
    assert RING.sigma == pytest.approx(0.01)
    splits = generate(RING)
    assert splits["train"].shape == (50_000, 2) and splits["test"].shape == (25_000, 2)
    spread = splits["train"] - RING.centre_array[splits["train_labels"]]
    assert spread.std() == pytest.approx(0.01, rel=0.02)
    spec = DATASETS.get("ring_welfert")
    # 400 epochs of 50,000 points; the spec walks them in 390 full batches of 128 an epoch
    # (their DataLoader adds one of 80: 156,400 steps against the spec's 156,000)
    assert (spec.epoch, spec.epochs, spec.classes) == (50_000, 400, 8)


def test_their_networks_shapes_and_weight_counts():
    g = GENERATORS.get("welfert")(NetworkOptions(shape=(2,), z_dim=2))
    d = DISCRIMINATORS.get("welfert")(NetworkOptions(shape=(2,)))
    assert sum(p.numel() for p in g.parameters()) == 483_202
    assert sum(p.numel() for p in d.parameters()) == 121_401
    widths = [
        (m.in_features, m.out_features) for m in g.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert widths == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    slopes = [m.negative_slope for m in d.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert slopes == [0.2] * 4
    assert g(torch.zeros(5, 2)).shape == (5, 2) and d(torch.zeros(5, 2)).shape == (5,)
    assert FAMILIES.get("welfert").networks_for("infogan") == {
        "generator": "welfert",
        "discriminator": "welfert",
    }
    with pytest.raises(ValueError, match="made for points"):
        GENERATORS.get("welfert")(NetworkOptions(shape=(1, 28, 28), z_dim=2))


def test_lsgan_on_the_raw_output_with_the_0_1_coding():
    loss = LOSSES.get("ls_raw")
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])
    # 1/2 mean((D(x) - 1)^2) + 1/2 mean(D(G(z))^2) = 1/2 (0 + 4) / 2 + 1/2 (0 + 4) / 2
    assert loss.d(real, fake, {}).item() == pytest.approx(2.0)
    # 1/2 mean((D(G(z)) - 1)^2) = 1/2 (1 + 1) / 2
    assert loss.g(fake, {}).item() == pytest.approx(0.5)


def test_their_mode_count_on_constructed_samples():
    c = RING.centre_array
    points = np.stack([c[0], c[0], c[0], c[0] * 1.1, c[1] + [0.05, 0.0]])
    scores = welfert_scores(points, c, RING.sigma)
    # nearest: mode 0 four times (one of them 0.1 away: not HQ), mode 1 once (0.05: not HQ)
    assert scores["welfert_modes"] == 1
    assert (scores["welfert_success"], scores["welfert_failure"]) == (0.0, 0.0)
    assert scores["welfert_hqs"] == pytest.approx(3 / 5)
    p = np.array([5, 2, 1, 1, 1, 1, 1, 1]) / 13  # (counts + 1) / (5 + 8)
    q = 1 / 8
    assert scores["welfert_kl"] == pytest.approx(
        q * (math.log(13 / 40) + math.log(13 / 16) + 6 * math.log(13 / 8))
    )
    assert scores["welfert_rkl"] == pytest.approx(
        5 / 13 * math.log(40 / 13) + 2 / 13 * math.log(16 / 13) + 6 / 13 * math.log(8 / 13)
    )
    assert scores["welfert_tvd"] == pytest.approx(
        0.5 * ((5 / 13 - q) + (2 / 13 - q) + 6 * (q - 1 / 13))
    )
    m = (p + q) / 2
    jsd = 0.5 * (np.sum(q * np.log(q / m)) + np.sum(p * np.log(p / m)))
    assert scores["welfert_jsd"] == pytest.approx(jsd)
    # every mode covered: success; none: failure
    assert welfert_scores(c, c, RING.sigma)["welfert_success"] == 1.0
    assert welfert_scores(c * 1.5, c, RING.sigma)["welfert_failure"] == 1.0
    assert METRICS.get("welfert").samples == 25_000


def test_the_published_rates_read_from_their_csvs():
    rates = {
        loss: (r.success / r.seeds, None if r.failure is None else r.failure / r.seeds)
        for loss, r in WELFERT_2023.items()
    }
    assert rates == {"mm": (0.465, 0.295), "ns": (0.22, 0.01), "ls_raw": (0.325, None)}
    assert all(sum(r.histogram) == r.seeds for r in WELFERT_2023.values() if r.histogram)


def test_a_rate_beside_a_published_one():
    result = compare_rate(10, 40, 93, 200)
    # Fisher's two-sided p: the tables with the margins fixed, as likely as or less than ours
    n, row, column = 240, 40, 103

    def probability(a: int) -> float:
        return math.comb(column, a) * math.comb(n - column, row - a) / math.comb(n, row)

    observed = probability(10)
    p = sum(probability(a) for a in range(0, row + 1) if probability(a) <= observed * (1 + 1e-7))
    assert result["fisher_p"] == pytest.approx(p)
    # Clopper-Pearson: beta quantiles
    low, high = stats.beta.ppf(0.025, 10, 31), stats.beta.ppf(0.975, 11, 30)
    assert result["ours_ci"] == pytest.approx((low, high))
    assert (result["ours"], result["theirs"]) == (0.25, 0.465)


def test_the_spec_end_to_end_at_a_short_length(tmp_path, capsys):
    """runs/ring-welfert.toml as committed, cut to 3 seeds of 30 D steps on the CPU: the
    sweep trains and scores every trial, and the report sets the rates beside theirs."""
    from benchmark.cli import main
    from benchmark.sweep.spec import load_spec
    from tests.helpers import REPO

    text = (REPO / "runs" / "ring-welfert.toml").read_text()
    for old, new in [
        ("seeds = 200", "seeds = 3"),
        ("steps = 156000", "steps = 30"),
        ('device = "auto"', 'device = "cpu"'),
        ("population = 50", "population = 3"),
        ("compile = true", "compile = false"),
    ]:
        assert old in text
        text = text.replace(old, new)
    spec = tmp_path / "ring-welfert.toml"
    spec.write_text(text)
    assert load_spec(spec).models == ("mm", "ns", "ls_raw")
    assert main(["sweep", str(spec), "--no-progress"]) == 0
    frame = __import__("pandas").read_csv(tmp_path / "ring-welfert" / "results.csv")
    assert len(frame) == 9 and set(frame["status"]) == {"ok"}
    assert frame["welfert_modes"].between(0, 8).all() and (frame["d_steps"] == 30).all()
    report = (tmp_path / "ring-welfert" / "report" / "report.md").read_text()
    assert "### Against the published study (Welfert et al. 2023)" in report
    for row in ("| mm | success |", "| mm | failure |", "| ns | failure |", "| ls_raw | success |"):
        assert row in report
    assert "| ls_raw | failure |" not in report  # not published
    assert "93/200 (46.5%)" in report and "65/200 (32.5%)" in report
    assert (tmp_path / "ring-welfert" / "report" / "welfert.png").exists()


def test_a_trial_without_a_final_score_counts_as_no_mode_covered():
    import pandas as pd

    from analysis.welfert import comparison_rows, outcomes

    frame = pd.DataFrame(
        {
            "dataset": ["ring_welfert"] * 4 + ["ring"],
            "model": ["mm", "mm", "mm", "hinge", "mm"],
            "welfert_modes": [8, float("nan"), 3, 8, 8],  # the ring's row is another study
        }
    )
    assert outcomes(frame) == {"mm": [0, 3, 8], "hinge": [8]}
    rows = {(r["model"], r["rate"]): (r["count"], r["n"]) for r in comparison_rows(frame)}
    assert rows == {("mm", "success"): (1, 3), ("mm", "failure"): (1, 3)}  # hinge: unpublished

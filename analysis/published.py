"""Published results this benchmark reproduces, with their sources, and the comparison of a
rate of ours with a published one.

Welfert, Otstot, Kurri and Sankar 2023 ("Towards addressing GAN training instabilities:
dual-objective GANs with tunable parameters", ISIT): 8-Gaussian ring, 200 seeds per loss,
modes covered at the end of training (benchmark/evaluation/welfert_metrics.py). The mode-count
histograms are counted from their per-seed CSVs (SankarLab/AlphaGan-Papers-Results, commit
bf0c76a, `metrics/ring_S_metrics.csv` and `metrics/ring_NS_metrics.csv`, the settings with
alpha_D = alpha_G = 1, i.e. the cross-entropy losses). LSGAN's rate is the paper's own
(Appendix E-B, "LSGAN achieves a success rate of 32.5%"): no per-seed file of it was
published. Their NS rows are 200 runs of 150 seeds (seeds 1-50 twice, 51-100 never run), as
the paper's table counts them.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

SOURCE = "SankarLab/AlphaGan-Papers-Results@bf0c76a"


@dataclass(frozen=True)
class PublishedRing:
    """One loss's published outcome over seeds: the histogram of modes covered (0..8), or
    only the success count where no per-seed record was published."""

    loss: str
    source: str
    seeds: int
    histogram: tuple[int, ...] | None = None
    successes: int | None = None

    @property
    def success(self) -> int:
        return self.histogram[-1] if self.histogram is not None else self.successes

    @property
    def failure(self) -> int | None:
        return self.histogram[0] if self.histogram is not None else None


WELFERT_2023 = {
    "mm": PublishedRing(
        "mm",
        f"{SOURCE} metrics/ring_S_metrics.csv, d_alpha-1-g_alpha-1",
        200,
        histogram=(59, 2, 9, 10, 8, 8, 4, 7, 93),
    ),
    "ns": PublishedRing(
        "ns",
        f"{SOURCE} metrics/ring_NS_metrics.csv, non_saturating, d_alpha-1-g_alpha-1",
        200,
        histogram=(2, 0, 6, 21, 24, 19, 28, 56, 44),
    ),
    "ls_raw": PublishedRing(
        "ls_raw", "the paper, Appendix E-B (32.5% of 200 seeds)", 200, successes=65
    ),
}


def compare_rate(ours: int, n_ours: int, theirs: int, n_theirs: int, level: float = 0.95) -> dict:
    """Our rate beside a published one: each with its exact (Clopper-Pearson) interval, and
    the two-sided p-value of Fisher's exact test that the two rates are equal."""
    ours_ci = stats.binomtest(ours, n_ours).proportion_ci(level, method="exact")
    theirs_ci = stats.binomtest(theirs, n_theirs).proportion_ci(level, method="exact")
    table = [[ours, n_ours - ours], [theirs, n_theirs - theirs]]
    return {
        "ours": ours / n_ours,
        "ours_ci": (ours_ci.low, ours_ci.high),
        "theirs": theirs / n_theirs,
        "theirs_ci": (theirs_ci.low, theirs_ci.high),
        "fisher_p": float(stats.fisher_exact(table).pvalue),
    }

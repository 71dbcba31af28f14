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


DATASET = "ring_welfert"
MODES = 8


def outcomes(frame) -> dict[str, list[int]]:
    """Per model, the modes each trial of the ring study covered at its end. A trial with no
    final score (diverged: a non-finite loss or generator) counts as 0, as a NaN generator's
    samples would in their count."""
    import pandas as pd

    if "welfert_modes" not in frame or DATASET not in set(frame["dataset"]):
        return {}
    rows = frame[frame["dataset"] == DATASET]
    modes = pd.to_numeric(rows["welfert_modes"], errors="coerce").fillna(0).astype(int)
    return {model: sorted(modes[rows["model"] == model]) for model in rows["model"].unique()}


def comparison_rows(frame) -> list[dict]:
    """For each model the study published: our success (all 8 modes) and failure (none)
    counts beside theirs (`compare_rate`)."""
    rows = []
    for model, modes in outcomes(frame).items():
        if model not in WELFERT_2023:
            continue
        theirs, n = WELFERT_2023[model], len(modes)
        for rate, ours, published in (
            ("success", modes.count(MODES), theirs.success),
            ("failure", modes.count(0), theirs.failure),
        ):
            if published is None:
                continue
            rows.append(
                {"model": model, "rate": rate, "n": n, "count": ours,
                 "published_n": theirs.seeds, "published_count": published,
                 **compare_rate(ours, n, published, theirs.seeds)}
            )  # fmt: skip
    return rows


def comparison_lines(frame, out) -> list[str]:
    """The report's section: the table of rates and the mode-count histograms beside theirs
    (welfert.png); nothing for a sweep without the study's dataset and metric."""
    rows = comparison_rows(frame)
    if not rows:
        return []
    lines = [
        "### Against the published study (Welfert et al. 2023)",
        "",
        "Success is all 8 modes covered at the end of training, failure none (a mode is "
        "covered by a sample within 3 sigma of its centre; a trial that diverged counts as "
        "none). Intervals: exact (Clopper-Pearson) 95%; p: Fisher's exact test of equal "
        f"rates. Published: {SOURCE} (per-seed CSVs), LSGAN from the paper's text.",
        "",
        "| model | rate | ours | 95% CI | published | 95% CI | Fisher p |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['rate']} | {r['count']}/{r['n']} ({100 * r['ours']:.1f}%) | "
            f"{100 * r['ours_ci'][0]:.1f}–{100 * r['ours_ci'][1]:.1f}% | "
            f"{r['published_count']}/{r['published_n']} ({100 * r['theirs']:.1f}%) | "
            f"{100 * r['theirs_ci'][0]:.1f}–{100 * r['theirs_ci'][1]:.1f}% | {r['fisher_p']:.3g} |"
        )
    paths = histogram_figure(frame, out)
    lines += ["", f"![modes covered, ours and published]({paths[0].name})", "",
              "Share of trials by modes covered at the end, ours beside the published "
              "per-seed results.", ""]  # fmt: skip
    return lines


def histogram_figure(frame, out):
    """welfert.png/.svg: per model, the share of trials covering 0..8 modes, ours and theirs."""
    import matplotlib.pyplot as plt
    import numpy as np

    from analysis import plots

    ours = outcomes(frame)
    models = [m for m in ours if m in WELFERT_2023]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.4), squeeze=False)
    bins = np.arange(MODES + 1)
    for ax, model in zip(axes[0], models, strict=True):
        counts = np.bincount(ours[model], minlength=MODES + 1)
        ax.bar(bins - 0.2, counts / counts.sum(), width=0.4, label=f"ours (n={counts.sum()})")
        published = WELFERT_2023[model]
        if published.histogram is not None:
            theirs = np.asarray(published.histogram)
            ax.bar(bins + 0.2, theirs / theirs.sum(), width=0.4,
                   label=f"published (n={theirs.sum()})")  # fmt: skip
        else:
            ax.bar([MODES + 0.2], [published.success / published.seeds], width=0.4,
                   color="C1", hatch="//", label="published: 8 modes only")  # fmt: skip
        ax.set(title=model, xlabel="modes covered", xticks=bins, ylim=(0, 1))
        ax.legend(fontsize="small")
    axes[0][0].set_ylabel("share of trials")
    fig.tight_layout()
    paths = plots.save(fig, out, "welfert")
    plt.close(fig)
    return paths

"""Build a sweep's report directory: report.md, <metric>_table.{md,csv,tex} (fid_table for
FID), ranking.csv, stats.csv and figures.

Besides the results, two optional files of the sweep directory are read:
- `sweep.json`: `{"description": "<text>", ...}`; the description heads report.md.
- `noise_floor.json`: the FID between two sets of real images of one dataset at the sample
  size of the evaluation, `{"<dataset>": {"fid": 2.1, "n": 10000, "split": "train vs test"}}`:
  the bias floor (what a perfect generator scores), not the noise of a difference between
  models. The report also shows the seed-to-seed spread of the seeds phase, the noise.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns

from analysis import paper, plots, samples, welfert
from analysis.answer import (
    DEFAULT_SETTING,
    defaults,
    markdown_table,
    random_samples,
    ranking,
    verdict,
)
from analysis.best_arm import MIN_SCORED, MIN_TRIALS, TEST_SHARE
from analysis.cost import cost_sentence, cost_unit
from analysis.labels import label_accuracy_lines
from analysis.load import load_results
from analysis.power import power_lines
from analysis.protocol import protocol
from analysis.references import load_references, standing_lines
from analysis.scores import (
    DATASET_ORDER,
    UNSCORED_RULE,
    add_scores,
    choose_metric,
    dataset_label,
    label,
    ordered,
    phases,
    rank_groups,
)
from analysis.stats import compare_groups, kruskal
from analysis.tables import markdown, summarise, write_tables
from benchmark.results import Column, read_sweep_record

SEARCH_PHASES = ("wide", "narrow")
RANKED_PHASES = ("default", "wide", "narrow")  # the seeds phase has one setting per model
ALPHA = 0.05
THEME = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook")}


def build_report(
    sweep_dir: str | Path,
    metric: str = "fid_min",
    out: str | Path | None = None,
    expected_trials: int | None = None,
    direction: str | None = None,
) -> Path:
    """Write the report of the sweep in `sweep_dir` to `out` (default `<sweep_dir>/report`).

    `metric` is the result column to rank by (its direction comes from the metric registry);
    `expected_trials` is the number of trials planned per arm (model, or model and ablation
    variant) and dataset in a search phase (default: the largest count seen); `direction`
    ("min"/"max") is needed only for a column the registry does not know. Returns the path
    of report.md. Raises ResultsError naming the file when the results are missing or
    malformed.
    """
    sweep_dir = Path(sweep_dir)
    frame = _mark_default_settings(load_results(sweep_dir), sweep_dir)
    chosen, metric_note = choose_metric(frame, metric, direction)
    frame = add_scores(frame, chosen)
    by_phase, phase_notes = phases(frame)
    out = Path(out) if out is not None else sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    summaries = {
        phase: summarise(rows, chosen, None if phase == "seeds" else expected_trials)
        for phase, rows in by_phase.items()
    }
    published = {
        phase: tuple(
            d for d in rows["dataset"].unique()
            if not paper.comparable(rows[rows["dataset"] == d], d, chosen.name, phase)
        )
        for phase, rows in by_phase.items()
    }  # fmt: skip
    *_, table_md = write_tables(summaries, chosen, out, published)
    split = {p: random_samples(r, p) for p, r in by_phase.items() if p in RANKED_PHASES}
    ranks = {p: ranking(r, chosen) for p, (r, _) in split.items()}
    default_rows = {p: defaults(d) for p, (_, d) in split.items()}
    if ranks:
        pd.concat([r.assign(phase=p) for p, r in ranks.items()]).to_csv(
            out / "ranking.csv", index=False
        )
    tests = statistics(by_phase)
    tests.to_csv(out / "stats.csv", index=False)
    references, reference_note = load_references(sweep_dir)
    figures = make_figures(by_phase, chosen, out, references)

    text = "\n".join(
        [
            f"# Report: sweep `{sweep_dir.name}`",
            "",
            *_description(sweep_dir),
            *_answer_section(ranks, default_rows, chosen, _cost_note(split, ranks)),
            *standing_lines(references, ranks, chosen),
            *welfert.comparison_lines(frame, out),
            *([f"({reference_note})", ""] if reference_note else []),
            *power_lines(split, ranks, chosen),
            *_samples_section(by_phase, chosen, sweep_dir, out),
            *protocol(frame, chosen, metric_note),
            *_noise_section(sweep_dir, by_phase, chosen),
            "## Results",
            "",
            *[f"- {note}" for note in phase_notes],
            "",
            table_md,
            *label_accuracy_lines(frame),
            *_stats_section(tests, chosen),
            *_figure_section(figures),
            *_caveats(),
        ]
    )
    path = out / "report.md"
    path.write_text(text.rstrip() + "\n")
    return path


def statistics(by_phase: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Kruskal-Wallis and pairwise Mann-Whitney U (Holm within phase and dataset), all rows."""
    parts = []
    for phase, rows in by_phase.items():
        for dataset in ordered(rows["dataset"].unique(), DATASET_ORDER):
            groups = rank_groups(rows[rows["dataset"] == dataset])
            h, p = kruskal(groups)
            pairs = compare_groups(groups, ALPHA)
            pairs.insert(0, "dataset", dataset)
            pairs.insert(0, "phase", phase)
            pairs["kruskal_H"], pairs["kruskal_p"] = h, p
            parts.append(pairs)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def make_figures(
    by_phase: dict[str, pd.DataFrame], metric: Column, out: Path, references: dict | None = None
) -> list[dict]:
    """Draw and save every figure the data supports; return name, caption and paths.
    `references` (a mixture sweep's references.json) adds the reference samplers' lines."""
    budget = partial(plots.budget_curves, references=references)
    compute = partial(plots.compute_curves, references=references)
    spread = partial(plots.distribution, references=references)
    made = []
    with matplotlib.rc_context(THEME):
        for phase, rows in by_phase.items():
            search = phase in SEARCH_PHASES
            builders = [
                ("budget", budget, search, "Expected best score of k trials drawn "
                 "at random (without replacement) from the arm's own random samples, given "
                 "that one of them was scored (exact, from order statistics); a search's "
                 "default setting (sample 0 where the space starts from the model's preset) is "
                 "not a random sample: dotted line. Band: 95% bootstrap-t "
                 "interval of that expectation (jackknife standard errors), drawn for k ≤ "
                 f"n/{round(1 / TEST_SHARE)} only, where its coverage was measured (tests); "
                 "beyond, the best of n trials cannot tell how much better an unseen trial "
                 "could be. " + UNSCORED_RULE + " A model with no scored trial has no curve; "
                 "its panel says so. Grey lines: the other models of the dataset."),
                ("compute", compute, search, "The same against expected compute "
                 "spent: k random trials cost k times the arm's mean trial cost (counted "
                 "`flops`, or `seconds` for results that predate FLOP counts: the axis names "
                 "the unit), so a costlier loss or penalty buys fewer trials for the same "
                 "budget. Exact; same band. Dashed: the equal-compute budget of the answer's "
                 "table."),
                ("distribution", spread, True, "Score of every scored trial per "
                 "model; tick labels count unscored trials, which have no value to draw."),
                ("sensitivity_lr", lambda r, m, p: plots.sensitivity(r, m, p, "lr"), search,
                 "Score against learning rate (log axis), coloured by n_disc; crosses on the "
                 "top edge are unscored trials."),
                ("sensitivity_beta1", lambda r, m, p: plots.sensitivity(r, m, p, "beta1"),
                 search, "Score against Adam β1, coloured by n_disc."),
                ("training", plots.training_curves, search, "FID at each checkpoint of the "
                 "best trial of each model (the minimum over checkpoints is `fid_min`)."),
            ]  # fmt: skip
            for name, build, wanted, caption in builders:
                fig = build(rows, metric, phase) if wanted else None
                if fig is not None:
                    paths = plots.save(fig, out, f"{name}_{phase}")
                    made.append({"name": f"{name}_{phase}", "caption": caption, "paths": paths})
    return made


def _mark_default_settings(frame: pd.DataFrame, sweep_dir: Path) -> pd.DataFrame:
    """No trial runs a default setting when the sweep says its sample 0 is drawn at random
    (sweep.json `sample0_default`); otherwise sample 0 of a search is the default."""
    drawn = (read_sweep_record(sweep_dir) or {}).get("sample0_default") is False
    return frame.assign(**{DEFAULT_SETTING: False}) if drawn else frame


def _description(sweep_dir: Path) -> list[str]:
    """The sweep's own description from sweep.json, as a quote; nothing when absent."""
    description = (read_sweep_record(sweep_dir) or {}).get("description")
    if not description:
        return []
    return [*(f"> {line}" if line else ">" for line in str(description).splitlines()), ""]


def _cost_note(split: dict[str, tuple[pd.DataFrame, pd.DataFrame]], ranks) -> str:
    """What the equal-compute columns count, and why (`analysis.cost.cost_sentence`)."""
    costs = {}
    for phase, table in ranks.items():
        rows = split[phase][0]
        for dataset in table.loc[table["budget"] == "compute", "dataset"].unique():
            where = f"{dataset_label(dataset)} ({phase})"
            costs[where] = cost_unit(rows[rows["dataset"] == dataset])
    return cost_sentence(costs)


def _answer_section(
    ranks: dict[str, pd.DataFrame],
    default_rows: dict[str, pd.DataFrame],
    metric: Column,
    cost_note: str = "",
) -> list[str]:
    """The direct answer: verdicts, the ranking table and the default settings per phase."""
    lines = ["## Which loss is better under this budget?", ""]
    if not ranks:
        return [*lines, "No search phase in this sweep: see the tables below.", ""]
    for phase, table in ranks.items():
        if table.empty:
            continue
        lines += [f"### Phase `{phase}`", ""]
        datasets = ordered(table["dataset"].unique(), DATASET_ORDER)
        lines += [f"- {line}" for d in datasets for line in verdict(table, d, metric)] + [""]
        for dataset in datasets:
            frame = markdown_table(table, dataset, metric)
            lines += [f"**{dataset_label(dataset)}**", "", markdown(frame), ""]
        lines += _default_lines(default_rows.get(phase), metric)
    share = round(1 / TEST_SHARE)
    has_defaults = any(rows is not None and not rows.empty for rows in default_rows.values())
    sample0 = (
        "Sample 0 of a search, the default setting, is not a random sample and is left out "
        "(shown below the tables). "
        if has_defaults
        else "Every sample of these searches, sample 0 included, is drawn at random. "
    )
    lines += [
        f"Each cell: the expected best `{metric.name}` ({metric.best_word} over trials) of k "
        "hyperparameter samples drawn at random from the arm's own trials (all trials: the "
        "best observed; equal compute: k = budget / the arm's mean trial cost, so that every "
        "arm's expected compute equals the budget; a fractional k mixes the two neighbouring "
        f"whole numbers). {sample0}{UNSCORED_RULE} The expectation is over "
        "draws with at least one scored trial; '(none scored: x%)' is the chance that a "
        f"draw has none. [95% bootstrap-t interval of that expectation], given where the arm "
        f"is tested: k ≤ n/{share}, n ≥ {MIN_TRIALS} and at least {MIN_SCORED} scored trials.",
        "",
        *([cost_note, ""] if cost_note else []),
        "Test: the arms of one budget form a 95% confidence set for the best arm (max-t "
        "bootstrap over all pairs of arms, jackknife standard errors; null of each "
        "comparison: equal expected best, whatever the spreads). **Bold**: the best estimate; "
        "no mark: cannot be told apart from the best — this is not a tie, only that the "
        "data do not exclude it; '<': worse than another arm, with family-wise error ≤ "
        f"{ALPHA} over all arms and pairs; '(not tested)': fewer than {MIN_TRIALS} trials, "
        f"{MIN_SCORED} scored trials or {share}·k trials. "
        "P(best): the share of bootstrap resamples in which the arm has the best estimate "
        "(the uncertainty of the ranking, not a posterior probability). Gaps to the best with "
        "their simultaneous intervals, and the global test: [ranking.csv](ranking.csv).",
        "",
    ]
    return lines


def _default_lines(table: pd.DataFrame | None, metric: Column) -> list[str]:
    """Each arm's default setting (sample 0), apart from the random samples."""
    if table is None or table.empty:
        return []
    parts = []
    for dataset, part in table.groupby("dataset", sort=False):
        cells = ", ".join(
            f"{label(r.model)} {'—' if np.isnan(r.value) else metric.fmt(r.value)}"
            + (f" ({r.n} trials)" if r.n > 1 else "")
            for r in part.itertuples()
        )
        parts.append(f"{dataset_label(dataset)}: {cells}")
    return [f"Default setting (sample 0) of each arm, {metric.name}: " + "; ".join(parts) + ".", ""]


def _noise_section(sweep_dir: Path, by_phase: dict[str, pd.DataFrame], metric: Column) -> list[str]:
    """How large a difference measurement noise alone makes, per dataset."""
    lines = ["## Measurement noise", ""]
    floor = {}
    path = sweep_dir / "noise_floor.json"
    if path.exists():
        try:
            floor = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            lines.append(f"- noise_floor.json could not be read: {error}")
    datasets = ordered({d for rows in by_phase.values() for d in rows["dataset"]}, DATASET_ORDER)
    for dataset in datasets:
        entry = floor.get(dataset) if isinstance(floor, dict) else None
        name = dataset_label(dataset)
        if isinstance(entry, dict) and "fid" in entry:
            split, n = entry.get("split", "two halves"), entry.get("n", "not recorded")
            lines.append(
                f"- {name}: FID between two sets of real images ({split}, n = {n}) is "
                f"{float(entry['fid']):.2f}. This is a bias floor, the FID a perfect "
                "generator would get at this sample size, not the noise of a difference: two "
                "models closer than this can still differ reliably (the FID estimate is "
                "biased upwards at finite n by an amount that depends on the model)."
            )
        seeds = by_phase.get("seeds")
        part = None if seeds is None else seeds[(seeds["dataset"] == dataset) & seeds["finished"]]
        spread = part.groupby("arm")["value"].std().dropna() if part is not None else None
        if spread is not None and len(spread):
            lines.append(
                f"- {name}: {'' if entry else 'no real-data floor stored; '}the seed-to-seed "
                "spread of each model's "
                f"selected setting (std of {metric.name} over report seeds) is "
                f"{spread.median():.{metric.digits + 1}f} (median over {len(spread)} models; "
                f"{spread.min():.{metric.digits + 1}f}–{spread.max():.{metric.digits + 1}f}): "
                "the noise of one run. Two single runs of equally good settings differ by "
                "about √2 times this; the intervals of the answer above already include "
                "this noise, since each trial is one run."
            )
        elif not entry:
            lines.append(
                f"- {name}: not measured (no noise_floor.json entry and no scored seeds-phase "
                "trials)."
            )
    return [*lines, ""]


def _stats_section(tests: pd.DataFrame, metric: Column) -> list[str]:
    lines = [
        "## Statistical tests",
        "",
        f"Two-sided Mann–Whitney U between every pair of models on {metric.label}, Holm "
        f"correction within each phase and dataset, significance at {ALPHA} after correction. "
        "Unscored trials rank below every scored trial. δ is Cliff's delta: "
        "P(A better than B) − P(B better than A). These tests ask whether one model's "
        "trials tend to score better than another's (a typical hyperparameter setting), "
        "not which has the better expected best of k: they can disagree with the answer "
        "above, which is about the best of k samples.",
        "",
    ]
    if tests.empty:
        return [*lines, "No test could be run (fewer than two models with two trials).", ""]
    for (phase, dataset), part in tests.groupby(["phase", "dataset"], sort=False):
        h, p = part["kruskal_H"].iloc[0], part["kruskal_p"].iloc[0]
        lines.append(f"**Phase `{phase}`, {dataset_label(dataset)}.** Kruskal–Wallis across "
                     f"models: H = {h:.2f}, p = {_p(p)}.")  # fmt: skip
        sig = part[part["significant"]]
        if len(sig):
            table = pd.DataFrame(
                {
                    "better": [
                        label(m) for m in np.where(sig["delta_a_better"] > 0, sig["a"], sig["b"])
                    ],
                    "worse": [
                        label(m) for m in np.where(sig["delta_a_better"] > 0, sig["b"], sig["a"])
                    ],
                    "|δ|": sig["delta_a_better"].abs().map("{:.2f}".format),
                    "p (Holm)": sig["p_holm"].map(_p),
                    "n": sig["n_a"].astype(str) + " / " + sig["n_b"].astype(str),
                }
            ).set_index("better")
            lines += ["", f"Significant at {ALPHA} after correction:", "", markdown(table), ""]
        else:
            lines += ["", f"No pair differs significantly at {ALPHA} after correction.", ""]
        rest = part[~part["significant"]]
        if len(rest):
            pairs = ", ".join(
                f"{label(a)}–{label(b)}" for a, b in zip(rest["a"], rest["b"], strict=True)
            )
            lines += [f"Not significant: {pairs}.", ""]
    return [*lines, "All pairs with U, raw and Holm p-values and δ: [stats.csv](stats.csv).", ""]


def _p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def _samples_section(
    by_phase: dict[str, pd.DataFrame], metric: Column, sweep_dir: Path, out: Path
) -> list[str]:
    """The best trial's samples per model and dataset, drawn from the files the trials stored."""
    lines = []
    with matplotlib.rc_context(THEME):
        for phase, rows in by_phase.items():
            for name, figure in samples.sample_figures(rows, metric, sweep_dir):
                png, other = plots.save(figure, out, f"{name}_{phase}")
                lines += [f"![{name}_{phase}]({png.name})", ""]
    if not lines:
        return []
    caption = (
        f"The final samples of each model's best trial (by `{metric.name}`), phase by phase "
        "([SVG] beside each PNG). One trial per model, chosen on the score shown: a picture "
        "of what the loss can do at best here, not of its typical trial."
    )
    return ["## What the models generate", "", caption, "", *lines]


def _figure_section(figures: list[dict]) -> list[str]:
    lines = ["## Figures", ""]
    for figure in figures:
        png, other = figure["paths"]
        lines += [
            f"### {figure['name']}",
            "",
            f"![{figure['name']}]({png.name})",
            "",
            f"{figure['caption']} ([{other.suffix[1:].upper()}]({other.name}))",
            "",
        ]
    return lines


def _caveats() -> list[str]:
    return [
        "## Caveats",
        "",
        "- Best-of-K is optimistic: the minimum over many trials rewards luck as well as the "
        "loss, and more so for models with a wide spread. Compare the budget curves and the "
        "medians, not only the best values.",
        "- The seeds phase guards against this: the setting is chosen on `select` seeds and "
        "every number for that phase is computed on fresh `report` seeds only.",
        "- Tests are over hyperparameter samples (search phases) or seeds (seeds phase); "
        "a significant difference says the distributions differ under this search space and "
        "budget, not that one loss is better under every setting.",
        "",
    ]

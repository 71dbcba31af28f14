"""Reference points of the 2-D mixture studies: what a perfect sampler and a uniform blur score.

A sweep on a mixture writes `references.json` (benchmark/sweep/run.py, `write_references`):
per dataset, the scores of the next test points (a perfect sampler at the evaluation's sample
size) and of points uniform over the mixture's box (a generator that learned the
support and none of the modes). The report states them beside the answer and draws them as
lines in the budget, compute and distribution figures: a loss whose best score sits at the
blur's line has filled the square, not found the modes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from analysis.scores import DATASET_ORDER, dataset_label, label, ordered
from benchmark.results import REFERENCES, Column

#: The reference samplers, in the order they are named: key, words, line style.
SAMPLERS = (
    ("perfect", "a perfect sampler", "-."),
    ("uniform", "a uniform blur over the mixture's box", (0, (5, 2))),
)
TAGS = {"perfect": "perfect sampler", "uniform": "uniform blur"}
LINE_COLOUR = "0.3"


def load_references(sweep_dir: str | Path) -> tuple[dict, str | None]:
    """The sweep's references by dataset, and a note when the file exists but cannot be read
    (the report says so instead of failing); ({}, None) when there is none."""
    path = Path(sweep_dir) / REFERENCES
    if not path.exists():
        return {}, None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return {}, f"{path} could not be read ({error}); no reference points are shown"
    if not isinstance(record, dict):
        return {}, f"{path}: expected a JSON object; no reference points are shown"
    return record, None


def reference_values(references: dict, dataset: str, metric: str) -> dict[str, float]:
    """{sampler: score} of `metric` on `dataset`, for the samplers that have a finite one."""
    entry = references.get(dataset)
    if not isinstance(entry, dict):
        return {}
    out = {}
    for key, _, _ in SAMPLERS:
        value = entry.get(key, {}).get(metric) if isinstance(entry.get(key), dict) else None
        if isinstance(value, int | float) and math.isfinite(value):
            out[key] = float(value)
    return out


def reference_sentence(references: dict, dataset: str, metric: Column, name: str) -> str | None:
    """One line: both samplers' primary score and their modes and HQ share, or None."""
    entry = references.get(dataset)
    values = reference_values(references, dataset, metric.name)
    if not values or not isinstance(entry, dict):
        return None
    parts = []
    for key, words, _ in SAMPLERS:
        if key not in values:
            continue
        scores = entry[key]
        extra = []
        if isinstance(scores.get("modes"), int | float):
            extra.append(f"{scores['modes']:.0f} modes")
        if isinstance(scores.get("hq"), int | float):
            extra.append(f"{100 * scores['hq']:.1f}% HQ")
        more = f" ({', '.join(extra)})" if extra else ""
        parts.append(f"{words} {metric.fmt(values[key])}{more}")
    n = entry.get("n")
    size = f" on {n:,} points" if isinstance(n, int) else ""
    return f"{name}: {metric.name}{size}: " + "; ".join(parts) + "."


def draw_references(ax, references: dict, dataset: str, metric: str) -> list[str]:
    """Horizontal lines at the samplers' scores on one panel; returns the samplers drawn."""
    drawn = []
    for key, _, style in SAMPLERS:
        value = reference_values(references, dataset, metric).get(key)
        if value is None:
            continue
        ax.axhline(value, color=LINE_COLOUR, ls=style, lw=1.1, zorder=1)
        ax.text(0.02, value, TAGS[key], transform=ax.get_yaxis_transform(), ha="left",
                va="bottom", fontsize=7, color=LINE_COLOUR)  # fmt: skip
        drawn.append(key)
    return drawn


#: The figures' caption words for the lines.
LEGEND = "grey dash-dot: a perfect sampler; grey dashed: a uniform blur over the mixture's box"


def standing_lines(references: dict, ranks: dict, metric: Column) -> list[str]:
    """The section that says where the answer stands: per dataset, both samplers' scores and
    each arm's best trial placed between them (0 % at the blur, 100 % at the perfect
    sampler), for the first phase that ranked the dataset."""
    lines, seen = [], set()
    for table in ranks.values():
        best = table[table["budget"] == "all trials"]
        for dataset in ordered(best["dataset"].unique(), DATASET_ORDER):
            sentence = reference_sentence(references, dataset, metric, dataset_label(dataset))
            values = reference_values(references, dataset, metric.name)
            if sentence is None or dataset in seen or len(values) < 2:
                continue
            seen.add(dataset)
            blur, perfect = values["uniform"], values["perfect"]
            cells, closer = [], 0
            for row in best[best["dataset"] == dataset].itertuples():
                if not math.isfinite(row.value):
                    continue
                share = (row.value - blur) / (perfect - blur) if perfect != blur else math.nan
                closer += share > 0.5
                cells.append(f"{label(row.model)} {metric.fmt(row.value)} ({100 * share:.0f}%)")
            lines += [f"- {sentence} Best trial of each model (0% at the blur, 100% at the "
                      f"perfect sampler): {', '.join(cells)}; {closer} of {len(cells)} nearer "
                      "the perfect sampler than the blur."]  # fmt: skip
    if not lines:
        return []
    return [
        "### Where the scores stand",
        "",
        "The same score for two reference samplers on the same test points: a perfect "
        "sampler (fresh points of the mixture) and a uniform blur over the mixture's box (the "
        "centres' bounding box padded by half the distance between the nearest two centres; on "
        "the grid, [-5, 5]²), which has learned the support and none of the modes. A loss "
        "whose best trial sits near the blur has filled the square, not found the modes; "
        "the blur's own mode count shows how little `modes` alone says.",
        "",
        *lines,
        "",
    ]

"""The report's section on the conditional arms: their label accuracy.

`label_accuracy` is the share of a conditional arm's samples that land in the class they were
asked for; this section shows it per dataset and arm, beside the reference classifier's own
accuracy where one scored the samples."""

from __future__ import annotations

import pandas as pd

from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms


def label_accuracy_lines(rows: pd.DataFrame) -> list[str]:
    """A Markdown section on what conditioning buys, for sweeps with conditional trials: per
    dataset and conditional arm, `label_accuracy` (the share of samples in the class they were
    asked for) of the arm's best trial by the primary score, its median over scored trials,
    and the reference classifier's own test accuracy where one scored them."""
    if "label_accuracy" not in rows.columns or rows["label_accuracy"].isna().all():
        return []
    lines = [
        "## Label accuracy of the conditional arms",
        "",
        "The share of samples that land in the class they were asked for (class-balanced fixed "
        "labels): the nearest mode for the 2-D mixtures, the reference classifier for images "
        "(its own accuracy on the real test images bounds what a score near 1 can mean). "
        "Chance is 1 / classes.",
        "",
        "| dataset | arm | best trial | median | trials | classifier test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    scored = rows[rows["finished"] & rows["label_accuracy"].notna()]
    for dataset in ordered(scored["dataset"].unique(), DATASET_ORDER):
        part = scored[scored["dataset"] == dataset]
        for arm in ordered_arms(part["arm"].unique()):
            cell = part[part["arm"] == arm]
            best = cell.loc[cell["score"].idxmin(), "label_accuracy"]
            reference = cell.get("classifier_accuracy")
            known = reference is not None and reference.notna().any()
            classifier = f"{reference.dropna().iloc[0]:.3f}" if known else "—"
            lines.append(
                f"| {dataset_label(dataset)} | {label(arm)} | {best:.3f} | "
                f"{cell['label_accuracy'].median():.3f} | {len(cell)} | {classifier} |"
            )
    return [*lines, ""]

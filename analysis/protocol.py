"""The report's protocol section: what was run, on what, and what it cost."""

from __future__ import annotations

import pandas as pd

from analysis.cost import FLOPS, flop_text
from analysis.scores import (
    DATASET_ORDER,
    MODEL_ORDER,
    PHASE_ORDER,
    UNSCORED_RULE,
    VARIANT,
    label,
    ordered,
)
from benchmark.results import Column


def _values(frame: pd.DataFrame, column: str) -> str:
    """Distinct values of a column with their trial counts, or 'not recorded'."""
    if column not in frame.columns or frame[column].isna().all():
        return "not recorded"
    values = frame[column].dropna()
    if pd.api.types.is_float_dtype(values) and (values == values.round()).all():
        values = values.astype(int)
    counts = values.astype(str).value_counts()
    if len(counts) == 1:
        return f"`{counts.index[0]}`"
    return ", ".join(f"`{value}` ({n} trials)" for value, n in counts.items())


def protocol(frame: pd.DataFrame, metric: Column, metric_note: str) -> list[str]:
    """The protocol section's lines: phases, data, models, training length, score, FID,
    versions, hardware and compute spent."""
    counts = frame.groupby(["phase", "status"]).size().unstack(fill_value=0)
    per_phase = "; ".join(
        f"{phase}: {int(row.sum())} trials ("
        + ", ".join(f"{int(n)} {status}" for status, n in row.items() if n)
        + ")"
        for phase, row in counts.loc[ordered(counts.index, PHASE_ORDER)].iterrows()
    )
    sha = frame["inception_sha256"].dropna().astype(str).str[:12].unique() if (
        "inception_sha256" in frame.columns) else []  # fmt: skip
    steps = (
        "; ".join(
            f"{d}: {_values(g[g['status'] == 'ok'], 'd_steps')}"
            for d, g in frame.groupby("dataset")
        )
        if "d_steps" in frame.columns
        else "not recorded"
    )
    variants = _values(frame, VARIANT)
    if variants != "not recorded":
        variants = (
            f" Ablation variants, each analysed as its own arm (model · variant): {variants}."
        )
    else:
        variants = ""
    lines = [
        "## Protocol",
        "",
        f"- Sweep: {_values(frame, 'sweep')}; {len(frame)} trials. {per_phase}.",
        f"- Datasets: {', '.join(ordered(frame['dataset'].unique(), DATASET_ORDER))}; models: "
        + ", ".join(f"{label(m)} (`{m}`)" for m in ordered(frame["model"].unique(), MODEL_ORDER))
        + f".{variants}",
        f"- Training length (D steps, trials that did not diverge): {steps}.",
        f"- Primary score: `{metric.name}` ({metric.label}; "
        f"{'higher' if metric.higher_is_better else 'lower'} is better).",
        f"- Unscored trials: {UNSCORED_RULE}",
        _fid_protocol(frame, sha),
        f"- Versions: torch {_values(frame, 'torch_version')}, ganbench "
        f"{_values(frame, 'ganbench_version')}.",
        f"- Hardware: {_values(frame, 'device')}. Compute spent: {_spent(frame)}.",
    ]
    if metric_note:
        lines.append(f"- **Note:** {metric_note}")
    return [*lines, ""]


def _fid_protocol(frame: pd.DataFrame, sha) -> str:
    """How FID was measured; one plain line when no trial computed it (e.g. polygon metrics
    only), instead of a row of 'not recorded'."""
    if "fid_n_real" not in frame or frame["fid_n_real"].isna().all():
        return "- FID: not computed by these trials."
    return (
        f"- FID: {_values(frame, 'fid_n_real')} real vs {_values(frame, 'fid_n_fake')} generated "
        f"images; resize: {_values(frame, 'fid_resize')}; samples quantised to uint8 before "
        f"the feature network; Inception weights sha256: "
        f"{', '.join(f'`{s}…`' for s in sha) if len(sha) else 'not recorded'}."
    )


def _spent(frame: pd.DataFrame) -> str:
    """The wall-clock hours per kind of device, as the runs took them on their machines, and
    the counted FLOPs (training, evaluation) of the trials that record them."""
    seconds = frame["seconds"] if "seconds" in frame.columns else pd.Series(dtype=float)
    kinds = frame["device"].astype(str).str.lower().str.startswith("cpu").map(
        {True: "CPU", False: "GPU"}) if "device" in frame.columns else None  # fmt: skip
    hours = (
        ", ".join(f"{h:.2f} {k}-hours" for k, h in (seconds.groupby(kinds).sum() / 3600).items())
        if kinds is not None and seconds.notna().any()
        else "not recorded"
    )
    if FLOPS not in frame.columns or frame[FLOPS].isna().all():
        return f"{hours}; FLOPs not recorded (results from before FLOP counts)"
    counted = frame[frame[FLOPS].notna()]
    parts = [
        f"{flop_text(counted[column].sum())} {name}"
        for column, name in (("train_flops", "training"), ("eval_flops", "evaluation"))
        if column in counted.columns and counted[column].notna().all()
    ]
    text = f"{hours}; {flop_text(counted[FLOPS].sum())} counted"
    text += f" ({', '.join(parts)})" if parts else ""
    if len(counted) < len(frame):
        text += f" over the {len(counted)} of {len(frame)} trials that record it"
    return text

"""What a trial's compute is counted in: the unit of the equal-compute budget and its curves.

A trial's result records its compute in floating-point operations counted from its structure
(`flops` = `train_flops` of its D and G steps + `eval_flops` of its evaluations), the same on
every run of a spec, besides the wall-clock `seconds` it took. Seconds measure the machine as
much as the loss: a program that ran beside the first minutes of a sweep makes the arms that
ran then look several times costlier. So the budget is counted in FLOPs wherever every trial
has them; results recorded before FLOP counts fall back to seconds, and the report says which
unit it used and why. `seconds` stay in the tables as what a run took on its machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

FLOPS, SECONDS = "flops", "seconds"
#: SI prefixes of a FLOP count, largest first.
PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


@dataclass(frozen=True)
class Cost:
    """The results column a trial's cost is read from, and how to put it in words."""

    column: str  # FLOPS or SECONDS
    words: str  # what the column is: "counted FLOPs", "wall-clock seconds"
    why: str  # why this column, for the report

    def text(self, value: float) -> str:
        """An amount of it, e.g. '1.23 TFLOP' or '2.5 h'."""
        return cost_text(value, self.column)

    def axis(self, largest: float, kind: str = "device") -> tuple[str, float]:
        """An axis's unit and the divisor of its values, such that `largest` reads plainly;
        `kind` ("GPU", "CPU") says whose seconds they are."""
        if self.column == FLOPS:
            prefix, scale = flop_prefix(largest)
            return f"{prefix}FLOP", scale
        unit, scale = time_unit(largest)
        return f"{kind} {unit}", scale


def cost_unit(rows: pd.DataFrame) -> Cost | None:
    """The unit of a part's compute: `flops` when every trial of `rows` has it, else
    `seconds` (when any trial has them), else None. The one place that decides it."""
    if FLOPS in rows.columns and len(rows) and rows[FLOPS].notna().all():
        return Cost(FLOPS, "counted FLOPs", "`flops`, each trial's training and evaluation "
                    "counted from its structure, the same on every run of a spec")  # fmt: skip
    if SECONDS not in rows.columns or rows[SECONDS].isna().all():
        return None
    if FLOPS not in rows.columns:
        why = "these results predate FLOP counts (no `flops` column)"
    elif rows[FLOPS].isna().all():
        why = "these trials predate FLOP counts (no `flops` value)"
    else:  # a FLOP budget would leave out the trials without one, or guess their cost
        why = "some of these trials predate FLOP counts (no `flops` value)"
    return Cost(SECONDS, "wall-clock seconds", f"{why}; another load on the machine bends it")


def cost_sentence(costs: dict[str, Cost | None]) -> str:
    """What compute is counted in and why, one sentence; `costs` maps each part, in words
    (a dataset and phase), to its unit. Empty when no part has one."""
    places: dict[Cost, list[str]] = {}
    for where, cost in costs.items():
        if cost is not None:
            places.setdefault(cost, []).append(where)
    if len(places) == 1:
        (cost,) = places
        return f"Compute is {cost.words}: {cost.why}."
    parts = [f"{c.words} for {', '.join(where)} ({c.why})" for c, where in places.items()]
    return f"Compute is {'; '.join(parts)}." if parts else ""


def cost_text(value: float, column: str) -> str:
    """An amount of the results column `column` (FLOPS or SECONDS) in words."""
    return flop_text(value) if column == FLOPS else duration_text(value)


def flop_prefix(value: float) -> tuple[str, float]:
    """The SI prefix that puts `value` FLOPs at 1 to 999 of it, and its size; rounded to three
    significant digits first, so that 999.7e9 is '1 T', not '1e+03 G'."""
    rounded = float(f"{abs(value):.3g}")
    for scale, prefix in PREFIXES:
        if rounded >= scale:
            return prefix, scale
    return "", 1.0


def flop_text(value: float) -> str:
    """A FLOP count in words: 1.23e12 -> '1.23 TFLOP'."""
    prefix, scale = flop_prefix(value)
    return f"{value / scale:.3g} {prefix}FLOP"


def duration_text(seconds: float) -> str:
    """A duration in words: hours from 0.1 h up, else seconds."""
    return f"{seconds / 3600:.3g} h" if seconds >= 360 else f"{seconds:.3g} s"


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit of an axis whose largest value is `seconds`, and its size in seconds."""
    if seconds < 300:
        return "seconds", 1.0
    if seconds < 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0

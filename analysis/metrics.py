"""Registry of the result columns a report can rank by, with their direction and format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A result column used as a score: which way is better and how to print it."""

    name: str
    label: str
    higher_is_better: bool
    digits: int

    @property
    def sign(self) -> float:
        """Multiply by this to get a score where lower is better."""
        return -1.0 if self.higher_is_better else 1.0

    @property
    def best_word(self) -> str:
        return "max" if self.higher_is_better else "min"

    def fmt(self, value: float) -> str:
        return f"{value:.{self.digits}f}"


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric; names are unique."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


for _metric in (
    Metric("fid_min", "FID (min over checkpoints)", False, 1),
    Metric("fid_final", "FID (final checkpoint)", False, 1),
    Metric("kid", "KID", False, 4),
    Metric("f1", "polygon F1", True, 3),
    Metric("precision", "polygon precision", True, 3),
    Metric("recall", "polygon recall", True, 3),
    Metric("ipr_precision", "improved precision", True, 3),
    Metric("ipr_recall", "improved recall", True, 3),
    Metric("w1", "W1 distance to the data", False, 3),
    Metric("energy", "energy distance to the data", False, 3),
    Metric("modes", "modes captured", True, 0),
    Metric("hq", "high-quality share", True, 3),
    Metric("reverse_kl", "reverse KL of the mode histogram", False, 3),
    Metric("label_accuracy", "share of conditional samples in their class", True, 3),
):
    register(_metric)

#: Used when the requested FID column holds no value at all (no Inception weights).
FALLBACK_METRIC = "f1"


def get_metric(name: str, direction: str | None = None) -> Metric:
    """Look a metric up by column name; `direction` ("min" or "max") admits any other column
    or overrides the registered direction. The error lists the allowed values."""
    if direction not in (None, "min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', not {direction!r}")
    known = METRICS.get(name)
    if direction is None:
        if known is None:
            raise ValueError(
                f"unknown metric {name!r}; choose one of {sorted(METRICS)} or give a direction"
            )
        return known
    label, digits = (known.label, known.digits) if known else (name, 3)
    return Metric(name, label, direction == "max", digits)

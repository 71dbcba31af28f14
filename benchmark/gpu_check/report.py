"""The summary of `python -m benchmark gpu-check`: one JSON record and its Markdown rendering,
both rewritten atomically after every item, so that a run stopped at any moment (its own
time limit, or a kill from outside) leaves two valid files holding everything finished."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmark.files import atomic_write, write_json

JSON_NAME = "gpu-check.json"
MARKDOWN_NAME = "gpu-check.md"


class Summary:
    """The run's record; `save()` writes both files (atomically, each a complete document)."""

    def __init__(self, out: Path, record: dict[str, Any]) -> None:
        self.out = out
        self.record = record

    def add(self, section: str, key: str, row: dict[str, Any]) -> None:
        self.record.setdefault(section, {}).setdefault(key, []).append(row)
        self.save()

    def note(self, text: str) -> None:
        """Something that did not run or did not fit, in words."""
        self.record.setdefault("not_done", []).append(text)
        self.save()

    def save(self) -> None:
        write_json(self.out / JSON_NAME, self.record)
        text = markdown(self.record)
        atomic_write(self.out / MARKDOWN_NAME, lambda tmp: tmp.write_text(text))


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) < 1e-2 or abs(value) >= 1e5
            else f"{value:.{digits}f}"
        )
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_number(cell) for cell in row) + " |" for row in rows]
    return lines


def _status(row: dict[str, Any]) -> str:
    if "skipped" in row:
        return f"skipped: {row['skipped']}"
    if "error" in row:
        return f"error: {row['error']}"
    return "ok" if row.get("ok") else "DIFFERS"


def markdown(record: dict[str, Any]) -> str:
    """The summary as Markdown: run, device and versions; equivalence; speed; study; not done."""
    state = record.get("state", "running")
    device = record.get("device", {})
    lines = [
        f"# gpu-check ({'tiny, ' if record.get('tiny') else ''}{state})",
        "",
        f"- command: `{record.get('command', '')}`",
        f"- started {record.get('started')}, {_number(record.get('elapsed_s'), 1)} s of "
        f"{_number(record.get('time_limit_s'), 1)} s",
        f"- device: {device.get('name')} ({device.get('type')}); "
        f"compared against: {device.get('reference')}",
        "- versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(record.get("versions", {}).items())),
        f"- budget (s): {record.get('budget_s')}",
        f"- networks: {record.get('networks')}; dataset: {record.get('dataset')}; "
        f"feature extractor: {record.get('extractor')}",
    ]
    equivalence = record.get("equivalence", {})
    lines += ["", "## Equivalence", ""]
    if equivalence.get("what"):
        lines += [equivalence["what"], ""]
    for key, title in (
        ("devices", "Weights after a few float64 steps"),
        ("population", "A population against its members alone"),
    ):
        rows = equivalence.get(key, [])
        if rows:
            lines += [f"{title}:", ""]
            lines += _table(
                ["model", "steps", "max relative difference", "tolerance", "result"],
                [
                    [
                        r["model"],
                        r["steps"],
                        r.get("max_relative_difference"),
                        r["tolerance"],
                        _status(r),
                    ]
                    for r in rows
                ],
            )
            lines.append("")
    for row in equivalence.get("features", []):
        if "skipped" in row:
            lines.append(f"FID features on both devices: {_status(row)}")
            continue
        lines.append(
            f"FID features of {row.get('images')} images: max relative difference "
            f"{_number(row.get('max_relative_difference'))} (tolerance {row.get('tolerance')}): "
            f"{_status(row)}"
        )
    speed = record.get("speed", {})
    lines += ["", "## Speed", ""]
    rows = speed.get("steps", [])
    if rows:
        lines += [
            f"D steps/s per population (batch {record.get('batch_size')}); "
            "member steps/s = steps/s x members:",
            "",
        ]
        lines += _table(
            ["model", "step", "size", "members", "steps/s", "member steps/s", "note"],
            [
                [
                    r["model"],
                    r.get("step", "op by op"),
                    r["size"],
                    r["population"],
                    r.get("steps_per_s"),
                    r.get("member_steps_per_s"),
                    r.get("skipped", ""),
                ]
                for r in rows
            ],
        )
    for row in speed.get("auto", []):
        lines.append(f'\n`population = "auto"` chose {row.get("members")} ({row.get("note", "")})')
    rows = [r for r in speed.get("fid", []) if r.get("kind") == "precision"]
    if rows:
        lines += [
            "",
            "FID extraction and the FID of one generated set in each precision "
            "(real and generated features both in that precision):",
            "",
        ]
        lines += _table(
            ["precision", "images", "images/s", "FID", "note"],
            [
                [
                    r["precision"],
                    r["images"],
                    r.get("images_per_s"),
                    r.get("fid"),
                    r.get("skipped", ""),
                ]
                for r in rows
            ],
        )
    spread = speed.get("precision_effect")
    if spread:
        lines += ["", spread["text"]]
    ring = record.get("ring", {})
    lines += ["", "## Ring (Welfert et al. 2023)", ""]
    if ring.get("rows"):
        lines.append(
            f"`{ring['spec']}`, minimax and NS, {ring['seeds']} seeds each at {ring['steps']} "
            f"D steps ({_number(ring.get('seconds'), 1)} s"
            + (", stopped at the time limit" if ring.get("stopped") else "")
            + "): success is all 8 modes covered at the end, failure none."
        )
        lines.append("")
        lines += _table(
            ["model", "rate", "ours", "95% CI", "published", "Fisher p"],
            [
                [r["model"], r["rate"], f"{r['count']}/{r['seeds']}",
                 _interval(r.get("ours_ci")), r["published"], _number(r.get("fisher_p"))]
                for r in ring["rows"]
            ],
        )  # fmt: skip
    elif ring.get("skipped"):
        lines.append(ring["skipped"])
    study = record.get("study", {})
    lines += ["", "## Study", ""]
    if study.get("plan"):
        lines += [study["plan"], ""]
    result = study.get("result")
    if result:
        models = result.get("models", [])
        if models:
            steps = models[0]["eval_steps"]
            lines += _table(
                ["model", "seeds done/planned"] + [f"FID @{s}" for s in steps] + ["min FID"],
                [
                    [m["model"], f"{m['seeds_finished']}/{m['seeds_planned']}"]
                    + [_mean_sd(c["fid_mean"], c["fid_sd"], c["seeds"]) for c in m["checkpoints"]]
                    + [_mean_sd(m["fid_min_mean"], m["fid_min_sd"], m["fid_min_seeds"])]
                    for m in models
                ],
            )
            lines.append("")
            lines.append(
                "FID: mean ± sd over the seeds that reached the checkpoint (n in brackets). "
                f"Study time {_number(result.get('seconds'), 1)} s"
                + (", stopped at the time limit" if result.get("stopped_at_time_limit") else "")
                + "."
            )
    lines += ["", "## Not done", ""]
    lines += [f"- {text}" for text in record.get("not_done", [])] or ["- nothing"]
    return "\n".join(lines) + "\n"


def _mean_sd(mean: float | None, sd: float | None, n: int) -> str:
    if mean is None:
        return "-"
    return f"{mean:.3g}" + (f" ± {sd:.2g}" if sd is not None else "") + f" ({n})"


def _interval(bounds) -> str:
    return "" if not bounds else f"{100 * bounds[0]:.1f}–{100 * bounds[1]:.1f}%"

"""Read a sweep's stored results into one validated DataFrame (one row per trial)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("trial_id", "phase", "dataset", "model", "status")
STATUSES = ("ok", "diverged", "failed")
PHASES = ("wide", "narrow", "seeds", "default")
NUMERIC_COLUMNS = (
    "seed", "sample", "lr", "beta1", "beta2", "n_disc", "clip", "lam", "lambda_k", "gamma",
    "d_steps", "g_steps", "images_seen", "seconds", "fid_min", "fid_final", "fid_n_real",
    "fid_n_fake", "kid", "ipr_precision", "ipr_recall", "precision", "recall", "f1",
)  # fmt: skip
STEP_PREFIX = "fid_step_"


class ResultsError(ValueError):
    """A results file is missing, empty or malformed; the message names the file."""


def load_results(sweep_dir: str | Path, write_csv: bool = True) -> pd.DataFrame:
    """Load `results.csv`, or build it from `trials/*/result.json` when it is missing.

    The CSV is rebuilt (and rewritten when `write_csv`) if trials hold results it lacks,
    so a report of a sweep that is still running never reads a stale table.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ResultsError(f"{sweep_dir}: no such sweep directory")
    csv = sweep_dir / "results.csv"
    done = sorted(sweep_dir.glob("trials/*/result.json"))
    if csv.exists():
        frame = read_csv(csv)
        missing = {p.parent.name for p in done} - set(frame["trial_id"].astype(str))
        if not missing:
            return frame
    if not done:
        raise ResultsError(f"{csv}: missing, and no {sweep_dir / 'trials/*/result.json'} found")
    frame = validate(pd.DataFrame([_read_result(p) for p in done]), sweep_dir / "trials")
    if write_csv:
        _write_csv_atomic(frame, csv)
    return frame


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate one results table."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ResultsError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ResultsError(f"{path}: cannot be parsed as CSV ({error})") from None
    return validate(frame, path)


def validate(frame: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """Check columns, rows and values; coerce numeric columns. Errors name `source`."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ResultsError(
            f"{source}: missing required column(s) {missing}; found {list(frame.columns)}"
        )
    if frame.empty:
        raise ResultsError(f"{source}: no rows (no trial has finished)")
    frame = frame.copy()
    for column in ("trial_id", "phase", "dataset", "model", "status"):
        if frame[column].isna().any():
            raise ResultsError(f"{source}: column {column!r} has empty values")
        frame[column] = frame[column].astype(str)
    bad = sorted(set(frame["status"]) - set(STATUSES))
    if bad:
        raise ResultsError(f"{source}: column 'status' has {bad}; allowed: {list(STATUSES)}")
    numeric = [c for c in frame.columns if c in NUMERIC_COLUMNS or c.startswith(STEP_PREFIX)]
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        unparsed = values.isna() & frame[column].notna()
        if unparsed.any():
            example = frame.loc[unparsed, column].iloc[0]
            raise ResultsError(f"{source}: column {column!r} is not numeric (e.g. {example!r})")
        frame[column] = values.astype(float)
    if frame["trial_id"].duplicated().any():
        dup = frame.loc[frame["trial_id"].duplicated(), "trial_id"].iloc[0]
        raise ResultsError(f"{source}: trial_id {dup!r} appears more than once")
    return frame


def step_columns(frame: pd.DataFrame) -> list[str]:
    """The `fid_step_<d_steps>` columns, in order of D steps."""
    columns = [c for c in frame.columns if c.startswith(STEP_PREFIX)]
    return sorted(columns, key=lambda c: int(c[len(STEP_PREFIX) :]))


def _read_result(path: Path) -> dict[str, Any]:
    """One result.json as a flat row: scalars kept, checkpoints become fid_step_<d> columns."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: expected a JSON object, found {type(record).__name__}")
    row = {k: v for k, v in record.items() if v is None or isinstance(v, str | int | float)}
    row = {k: (np.nan if v is None else v) for k, v in row.items()}
    row.setdefault("trial_id", path.parent.name)
    for point in record.get("checkpoints") or []:
        try:
            steps, fid = int(point["d_steps"]), point.get("fid")
        except (KeyError, TypeError, ValueError):
            raise ResultsError(f"{path}: checkpoint without integer 'd_steps': {point}") from None
        fid = np.nan if fid is None or (isinstance(fid, float) and math.isnan(fid)) else fid
        row[f"{STEP_PREFIX}{steps}"] = fid
    return row


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write through a temporary file and rename, so a reader never sees half a table."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)

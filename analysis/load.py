"""Read a sweep's stored results into one validated DataFrame (one row per trial)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import ResultsError
from benchmark.results import (
    REQUIRED_COLUMNS,
    RESULT,
    RESULTS_CSV,
    RUNNING_LOCK,
    STATUSES,
    STEP_PREFIX,
    TRIALS,
    numeric_columns,
    result_row,
    results_frame,
    write_results_csv,
)


def load_results(sweep_dir: str | Path, write_csv: bool = True) -> pd.DataFrame:
    """Load `results.csv`, or build it from `trials/*/result.json` when it is missing.

    The CSV is rebuilt (and rewritten when `write_csv`) if trials hold results it lacks,
    so a report of a sweep that is still running never reads a stale table. It is rebuilt
    with `results_frame`, the function the sweep writes it with, so it keeps one schema.
    A folder holding only `results.csv` (a table copied or published without its trials) is
    read as it is, unless it does not end in a newline: cut short, with nothing to rebuild
    it from, its last row may have lost values that would pass as empty cells.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ResultsError(f"{sweep_dir}: no such sweep directory")
    csv = sweep_dir / RESULTS_CSV
    done = sorted(sweep_dir.glob(f"{TRIALS}/*/{RESULT}"))
    stored = csv.exists() or csv.is_symlink()
    if stored and not done:
        frame = read_csv(csv)  # its own errors first: an empty file says so
        if not _ends_with_newline(csv):
            raise ResultsError(
                f"{csv}: does not end in a newline, so it may have been cut short (its last "
                f"row losing values), and there is no {TRIALS}/*/{RESULT} to rebuild it from"
            )
        return frame
    if stored:
        # A table cut short (a full disk, a copy interrupted mid-row) is rebuilt, not read:
        # its last row would pass with the values it lost as empty cells.
        whole = _ends_with_newline(csv)
        try:
            frame = read_csv(csv)
        except ResultsError:
            if whole:
                raise
            frame = None
        if frame is not None:
            missing = {p.parent.name for p in done} - set(frame["trial_id"].astype(str))
            if not missing and whole and len(frame) == len(done):
                return frame
    if not done:
        raise ResultsError(f"{csv}: missing, and no {sweep_dir / 'trials/*/result.json'} found")
    records = []
    for path in done:
        record = _read_result(path)
        try:
            result_row(record)
        except ValueError as error:
            raise ResultsError(f"{path}: {error}") from None
        records.append(record)
    frame = validate(results_frame(records), sweep_dir / TRIALS)
    if write_csv and not sweep_running(sweep_dir):  # a running sweep writes it when it ends
        write_results_csv(frame, csv)
    return frame


def sweep_running(sweep_dir: Path) -> bool:
    """Whether a sweep is running in `sweep_dir` (it holds `RUNNING_LOCK` shared)."""
    path = sweep_dir / RUNNING_LOCK
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def _ends_with_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"
    except OSError as error:  # a directory, an unreadable file, a dangling link
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate one results table."""
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except OSError as error:  # a directory, an unreadable file, a dangling link
        raise ResultsError(f"{path}: cannot be read ({error.strerror or error})") from None
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
    numeric = numeric_columns()
    numeric = [c for c in frame.columns if c in numeric or c.startswith(STEP_PREFIX)]
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
    """One result.json as a dict; the trial id defaults to the folder name."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(record, dict):
        raise ResultsError(f"{path}: expected a JSON object, found {type(record).__name__}")
    record.setdefault("trial_id", path.parent.name)
    return record

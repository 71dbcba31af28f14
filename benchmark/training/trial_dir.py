"""A trial's directory: records, the checkpoint format, leftovers, the claim, file names."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from benchmark.config import TrialConfig
from benchmark.errors import DamagedFile, TrialMismatch
from benchmark.files import (
    atomic_write,
    commit_writes,
    read_record,
    remove_stale_temporaries,
    stage_write,
)
from benchmark.results import FAILED, RESULT

TRIAL_REMEDY = "delete or move its directory to run the trial again"
RESULT_REMEDY = "delete it to run the trial again"


def load_result(path: Path) -> dict[str, Any]:
    """A stored result.json; DamagedFile naming it (and what to do) if it is not a result."""
    return read_record(path, ("trial_id", "status"), RESULT_REMEDY)


def read_trial_record(path: Path) -> dict[str, Any]:
    """A stored trial.json; DamagedFile naming it (and what to do) if it is not a trial."""
    return read_record(path, ("dataset", "model", "loss"), TRIAL_REMEDY)


def read_result(directory: Path, trial: TrialConfig) -> dict[str, Any] | None:
    """The trial's stored result, None if it has none; DamagedFile if it cannot be trusted."""
    path = directory / RESULT
    if not path.exists():
        return None
    result = load_result(path)
    if result["trial_id"] != trial.trial_id:
        raise DamagedFile(path, f"it is the result of trial {result['trial_id']}", RESULT_REMEDY)
    return result


def check_trial_dir(trial: TrialConfig, directory: Path) -> bool:
    """Whether the directory holds this trial's trial.json; TrialMismatch if it holds another
    trial's, DamagedFile if it is unreadable. Writes nothing."""
    path = directory / TRIAL_RECORD
    if not path.exists():
        return False
    stored = read_trial_record(path)
    if stored != trial.to_dict():
        changed = sorted(
            key
            for key in set(stored) | set(trial.to_dict())
            if stored.get(key) != trial.to_dict().get(key)
        )
        raise TrialMismatch(
            TRIAL_RECORD,
            str(path),
            f"the same config as planned (differs in {', '.join(changed)}); "
            "use another directory or delete it",
        )
    return True


def forget_failure(directory: Path, died_only: bool = False) -> bool:
    """Delete a failed trial's result (and error.log) so that it runs again; whether it did.
    With `died_only`, only a trial whose worker process died (`record_death`). Call it while
    holding the trial's claim."""
    path = directory / RESULT
    if not path.exists():
        return False
    result = load_result(path)
    if result.get("status") != FAILED or (died_only and not result.get(WORKER_DIED)):
        return False
    path.unlink()
    (directory / ERROR_LOG).unlink(missing_ok=True)
    return True


def record_death(trial: TrialConfig, directory: Path, error: str) -> dict[str, Any] | None:
    """Record as failed a trial whose worker process died without a word (a segfault, the OOM
    killer): the result names the exit, error.log says why there is no traceback, and the
    checkpoint stays, so the sweep's next run retries it from there (`forget_failure` with
    `died_only`). Returns the result: this one, or one another process stored meanwhile;
    None while another process holds the trial."""
    from benchmark.files import write_json

    with claim(directory, wait=False) as claimed:
        if not claimed:
            return None
        stored = read_result(directory, trial)
        if stored is not None:
            return stored
        text = f"{error}\nNo traceback: the process ended without running any handler.\n"
        write_error_log(directory, text)
        result = {
            **trial.to_dict(),
            "trial_id": trial.trial_id,
            "status": FAILED,
            "error": f"WorkerDied: {error}",
            WORKER_DIED: True,
        }
        write_json(directory / RESULT, result)
        return result


def remove_leftovers(directory: Path) -> None:
    """What a killed run of this trial left: temporary files of interrupted writes, and the
    checkpoint of a trial whose result is stored. Call it only while holding the trial's claim
    (or when no other process can be writing the directory)."""
    remove_stale_temporaries(directory, everything=True)
    if (directory / RESULT).exists():
        (directory / CHECKPOINT).unlink(missing_ok=True)


CHECKPOINT = "checkpoint.pt"  # what a trial resumes from; removed when its result is stored
TRIAL_RECORD = "trial.json"  # the trial's config, written before it trains
METRICS_LOG = "metrics.jsonl"  # losses every LOG_EVERY steps and every checkpoint's scores
ERROR_LOG = "error.log"  # the traceback of a failed trial
WORKER_DIED = "worker_died"  # in the result of a trial whose process died: retried on a rerun
GENERATOR = "generator.pt"  # the final G's weights
LOCK = ".lock"  # the claim: an exclusive flock while a process works on the trial
# A checkpoint file is this magic, the sha256 of the payload (hex) and a newline, then the
# payload (torch.save's bytes); a file that fails the check is never loaded.
_CHECKPOINT_MAGIC = b"ganbench-checkpoint-v1 "


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    commit_checkpoints([stage_checkpoint(path, state)])


def stage_checkpoint(path: Path, state: dict[str, Any]) -> tuple[Path, Path]:
    """Write the checkpoint to a synced temporary file; `_commit_checkpoints` renames it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = _CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(payload)

    return stage_write(path, write)


def commit_checkpoints(staged: Sequence[tuple[Path, Path]]) -> None:
    commit_writes(staged)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The saved state, or None (with a line on stderr) if the file fails its integrity check:
    the trial then restarts from step 0, which ends with the same weights, only later."""
    data = path.read_bytes()
    header, _, payload = data.partition(b"\n")
    problem = ""
    if not header.startswith(_CHECKPOINT_MAGIC):
        problem = "not a ganbench checkpoint" if data else "empty"
    elif header[len(_CHECKPOINT_MAGIC) :] != hashlib.sha256(payload).hexdigest().encode():
        problem = "sha256 mismatch: truncated or altered"
    if not problem:
        try:
            return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
        except Exception as error:  # a payload that passed its hash but cannot be unpickled
            problem = f"{type(error).__name__}: {error}"
    print(f"warning: {path}: damaged ({problem}); the trial restarts from step 0", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


def write_error_log(directory: Path, text: str) -> None:
    """error.log beside a failed trial's result; a file that cannot be written stops the run
    as any other write does (`WriteFailed`), before the failure is recorded."""
    atomic_write(directory / ERROR_LOG, lambda tmp: tmp.write_text(text))


def write_metrics(path: Path, history: list[dict], evaluations: list[dict]) -> None:

    lines = [json.dumps({"kind": "train", **h}) for h in history]
    lines += [json.dumps({"kind": "eval", **e}) for e in evaluations]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


@contextmanager
def claim(directory: Path, wait: bool) -> Iterator[bool]:
    """Hold the trial's lock for the body; yields False if another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / LOCK, "a")  # noqa: SIM115 - the lock lives as long as the body
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        handle.close()  # releases the lock

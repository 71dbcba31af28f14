"""Atomic file writes: a reader (or a rerun after a kill) never sees a half-written file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a shared cache must stay readable
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_safe(value: Any) -> Any:
    """NaN and inf are not JSON; store them as null (the status column says why)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def write_json(path: str | Path, data: Any) -> Path:
    text = json.dumps(_json_safe(data), indent=2, sort_keys=True) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def cache_dir() -> Path:
    """Where derived data (reference statistics, generated datasets) is cached.

    `GANBENCH_CACHE` if set, else the user's cache directory; never inside the package.
    """
    root = os.environ.get("GANBENCH_CACHE")
    if root:
        path = Path(root)
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("ganbench"))
    path.mkdir(parents=True, exist_ok=True)
    return path

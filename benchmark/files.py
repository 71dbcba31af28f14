"""Files on disk: atomic writes, damaged-file checks, writable directories, the cache folder.

A reader (or a rerun after a kill) never sees a half-written file, a temporary file a killed
writer left behind is removed by the next writer of the same file, and a damaged record is
reported by name instead of surfacing as a decoder's traceback.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError, DamagedFile, WriteFailed

_UMASK = os.umask(0)
os.umask(_UMASK)
# Temporary files are named .<target>~<host>~<pid>~<random>.tmp, so a later writer can tell
# one whose writer died (same host, no such process) from one still being written.
_SEP = "~"
NAME_MAX = 255  # bytes in one file name, on Linux and macOS file systems
PATH_MAX = 4096  # bytes in a whole path, on Linux (macOS: 1024); longer ones fail to open


def _host() -> str:
    return socket.gethostname().replace(_SEP, "-") or "host"


def _writer_alive(tmp: Path) -> bool:
    """Whether the process that made this temporary file may still be writing it."""
    parts = tmp.name[: -len(".tmp")].split(_SEP)
    if len(parts) < 4 or parts[-3] != _host() or not parts[-2].isdigit():
        return True  # another host's (or an unknown) writer: not ours to judge
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: Path, target: str = "", everything: bool = False) -> int:
    """Delete `.<target>*.tmp` files in `directory` whose writer died (all of them when
    `everything`, for a caller that holds the directory's claim); returns how many."""
    removed = 0
    for tmp in directory.glob(f".{target}*.tmp") if directory.is_dir() else ():
        if everything or not _writer_alive(tmp):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary file beside `path`, fsync it, then rename over `path`;
    any OSError on the way (ENOSPC, EACCES, EROFS, ...) is a `WriteFailed` naming `path`, and
    leaves the previous `path` as it was."""
    path = Path(path)
    commit_writes([stage_write(path, write)])
    return path


def stage_write(path: str | Path, write: Callable[[Path], None]) -> tuple[Path, Path]:
    """The first half of `atomic_write`: `write(tmp)` and fsync; returns (tmp, path) for
    `commit_writes`. Several files staged first and renamed together change all or none of
    them when the disk fills (a rename needs no space)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent, path.name + _SEP)
        prefix = f".{path.name}{_SEP}{_host()}{_SEP}{os.getpid()}{_SEP}"
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a shared cache must stay readable
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
    except BaseException as error:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteFailed):
            raise WriteFailed(path, error) from error
        raise
    return tmp, path


def commit_writes(staged: Sequence[tuple[Path, Path]]) -> None:
    """Rename each staged (tmp, path) over its path, in order; on any error the temporary
    files not yet renamed are removed (a `WriteFailed` naming the path that failed)."""
    done = 0
    try:
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as error:
                raise WriteFailed(path, error) from error
            done += 1
    finally:
        for tmp, _ in staged[done:]:
            tmp.unlink(missing_ok=True)


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


def read_record(path: str | Path, required: tuple[str, ...], remedy: str) -> dict[str, Any]:
    """A JSON object holding the `required` keys, or DamagedFile naming the file and `remedy`."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DamagedFile(path, f"{type(error).__name__}: {error}", remedy) from None
    except OSError as error:
        raise DamagedFile(path, f"unreadable: {error.strerror or error}", remedy) from None
    if not isinstance(data, dict):
        raise DamagedFile(path, f"a JSON {type(data).__name__}, not an object", remedy)
    missing = [key for key in required if key not in data]
    if missing:
        raise DamagedFile(path, f"no {missing[0]!r} field", remedy)
    return data


def check_writable_dir(path: str | Path, field: str, where: str = "") -> Path:
    """Refuse (ConfigError naming `field`) a path that is empty, is or lies under a file, or
    whose nearest existing folder this process cannot write; creates nothing."""
    text = str(path)
    if not text.strip():
        raise ConfigError(field, text, "a directory path (not empty)", where)
    path = Path(text).expanduser()
    too_long = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX]
    if too_long:
        allowed = (
            f"a path whose every name is at most {NAME_MAX} bytes ({too_long[0][:20]}... is not)"
        )
        raise ConfigError(field, text, allowed, where)
    if len(os.fsencode(str(path.absolute()))) >= PATH_MAX:
        allowed = f"a path of fewer than {PATH_MAX} bytes, the working directory included"
        raise ConfigError(field, f"{text[:200]}... ({len(text):,} characters)", allowed, where)
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a link to nothing: mkdir would fail on it
            target = os.readlink(existing)
            allowed = f"a directory ({existing} is a symlink to {target}, which does not exist)"
            raise ConfigError(field, text, allowed, where)
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == path else f"lies under {existing}, which is"
        raise ConfigError(field, text, f"a directory (it {what} a file)", where)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(field, text, f"a writable directory ({existing} is read-only)", where)
    return path


CACHE_FIELD = "GANBENCH_CACHE"


def cache_dir() -> Path:
    """Where derived data (reference statistics, generated datasets) is cached.

    `GANBENCH_CACHE` if set, else the user's cache directory; never inside the package.
    A cache that cannot be a directory (a file, a path under a file) is refused, naming it;
    a read-only one may still serve the files it holds (see `write_cache`).
    """
    root = os.environ.get(CACHE_FIELD)
    if not root:
        from platformdirs import user_cache_dir

        root = user_cache_dir("ganbench")
    path = Path(root).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
        raise ConfigError(CACHE_FIELD, str(root), f"a directory for caches ({problem})") from None
    return path


def write_cache(path: Path, write: Callable[[Path], None]) -> Path:
    """`atomic_write` into the cache; a cache this process cannot write is a ConfigError
    naming the path (the callers run before training, so nothing is spent on it)."""
    try:
        return atomic_write(path, write)
    except OSError as error:
        raise ConfigError(
            CACHE_FIELD, str(path.parent), f"a writable cache directory ({error.strerror})"
        ) from None

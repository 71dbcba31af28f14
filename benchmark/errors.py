"""The project's errors: bad input, a stored file that cannot be used, a write that failed.

Torch-free, so the analysis (which never imports torch) raises and catches the same classes.
"""

from __future__ import annotations

from pathlib import Path

# A file could not be written (a full disk, a read-only folder): EX_IOERR of sysexits.h.
EXIT_WRITE_FAILED = 74


class ConfigError(ValueError):
    """Bad user input: names the field, the value and what is allowed."""

    def __init__(self, field: str, value: object, allowed: str, where: str = "") -> None:
        self.field, self.value, self.allowed, self.where = field, value, allowed, where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{field}={value!r} is not allowed; expected {allowed}")

    def __reduce__(self):
        # Rebuilt from its fields (pickle's default passes the message alone): a worker process
        # sends its errors to the parent, which decides by their type.
        return _rebuild, (type(self), self.__dict__, str(self))


class DamagedFile(ConfigError):
    """A stored file cannot be read back as what it should be; says which and what to do."""

    def __init__(self, path: str | Path, problem: str, remedy: str) -> None:
        ValueError.__init__(self, f"{path}: damaged ({problem}); {remedy}")
        self.field, self.value, self.allowed = Path(path).name, str(path), remedy
        self.where = str(path)  # the message names the file already; callers add no prefix


class WriteFailed(OSError):  # noqa: N818 - an OSError, as the callers of atomic_write expect
    """A file could not be written (a full disk, a read-only or vanished folder). Not a result
    of the trial being written: the run stops with what it stored so far intact, and a rerun
    resumes once the cause is fixed."""

    def __init__(self, path: str | Path, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error), str(path))
        self.path = Path(path)

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}"

    def __reduce__(self):
        return _rebuild, (
            type(self),
            self.__dict__,
            None,
            (self.errno, self.strerror, self.filename),
        )


class TrialMismatch(ConfigError):
    """The directory holds a different trial than the one planned."""


class ResultsError(ValueError):
    """A results file is missing, empty or malformed; the message names the file."""


def _rebuild(kind: type, fields: dict, message: str | None, args: tuple = ()) -> BaseException:
    """An error of `kind` with `fields`, without calling its __init__ (see __reduce__)."""
    error = kind.__new__(kind)
    base = OSError if issubclass(kind, OSError) else Exception  # OSError's init sets errno
    base.__init__(error, *(args or (message,)))
    error.__dict__.update(fields)
    return error

"""Progress display: a live bar on a terminal, a plain line every few percent or seconds elsewhere.

A bar redraws itself many times a second; written to a file (CI, nohup, a SLURM log) every
redraw becomes a line, and a log of a sweep grows to thousands of them. Off a terminal,
`LineProgress` prints one line each time the count passes the next `LINE_PERCENT` mark or
`LINE_SECONDS` after its last line, so a trial writes about a dozen lines whatever its length.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

LINE_PERCENT = 10
LINE_SECONDS = 60.0


class LineProgress:
    """The part of tqdm's interface the trainer and the sweep use, printing whole lines."""

    def __init__(
        self,
        total: int,
        initial: int = 0,
        desc: str = "",
        unit: str = "it",
        file: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.file = file or sys.stderr
        self.clock = clock
        self.start = self.last_time = clock()
        self.start_n = self.printed_n = initial
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self.next_mark = self._mark_after(initial)

    def _mark_after(self, n: int) -> int:
        """The smallest count above n at a multiple of LINE_PERCENT percent of the total."""
        step = max(1, self.total * LINE_PERCENT / 100)
        return int((n // step + 1) * step)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.next_mark or self.clock() - self.last_time >= LINE_SECONDS:
            self._line()

    def set_postfix(
        self, ordered_dict: Mapping[str, Any] | None = None, refresh: bool = True, **kwargs: Any
    ) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def write(self, text: str) -> None:
        print(text, file=self.file, flush=True)

    def close(self) -> None:
        if not self.closed and self.n != self.printed_n:
            self._line()
        self.closed = True

    def _line(self) -> None:
        now = self.clock()
        elapsed = now - self.start
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.n / self.total if self.total else 100.0
        text = f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}s ({percent:.0f}%), "
        text += f"{elapsed:.0f} s, {rate:.3g} {self.unit}/s"
        if self.postfix:
            text += ", " + ", ".join(f"{key}={value}" for key, value in self.postfix.items())
        self.write(text)
        self.last_time, self.printed_n = now, self.n
        self.next_mark = self._mark_after(self.n)


def progress_bar(
    total: int,
    desc: str,
    unit: str,
    *,
    initial: int = 0,
    enabled: bool = True,
    position: int = 0,
    file: TextIO | None = None,
) -> Any:
    """A tqdm bar on a terminal, LineProgress elsewhere; a silent bar when not `enabled`."""
    from tqdm.auto import tqdm

    stream = file or sys.stderr
    if enabled and not stream.isatty():
        return LineProgress(total, initial, desc, unit, file=stream)
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not enabled,
        position=position,
        leave=position == 0,
        dynamic_ncols=True,
        file=stream,
    )

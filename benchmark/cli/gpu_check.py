"""The `gpu-check` command: check and measure a GPU install in one run (benchmark/gpu_check)."""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any

from benchmark.errors import ConfigError
from benchmark.gpu_check import (
    DEFAULT_TIME_LIMIT,
    MAX_TIME_LIMIT,
    WATCHDOG_S,
    _versions,
    check_imports,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for gpu-check.json and .md")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="seconds for the whole run (default 480; --tiny: 125)",
    )
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU (CI)")
    parser.add_argument(
        "--weights",
        default=None,
        help="Inception weights (default: $GANBENCH_INCEPTION, except with --tiny)",
    )
    parser.add_argument("--data-root", default=None, help="datasets (default: $GANBENCH_DATA)")
    parser.add_argument("--device", default=None, help="default: cuda if available")


def run(args: argparse.Namespace) -> int:
    """Check and measure; returns 0 when every equivalence check passed, 1 otherwise."""
    from benchmark.files import check_writable_dir

    started = time.monotonic()
    limit = args.time_limit
    if limit is None:
        limit = DEFAULT_TIME_LIMIT["tiny" if args.tiny else "full"]
    if not (math.isfinite(limit) and 0 < limit <= MAX_TIME_LIMIT):
        raise ConfigError("time-limit", limit, f"a number of seconds in (0, {MAX_TIME_LIMIT:g}]")
    if args.tiny:  # a generated dataset on the CPU: an option that would be ignored is refused
        if args.device not in (None, "cpu"):
            raise ConfigError("device", args.device, "cpu or none with --tiny (it runs on the CPU)")
        if args.data_root is not None:
            allowed = "none with --tiny (it trains a generated dataset)"
            raise ConfigError("data-root", args.data_root, allowed)
    out = check_writable_dir(args.out, "out")  # the text as given: Path("") would be "."
    imports = check_imports()
    from benchmark.gpu_check.run import Run

    run = Run(args, out, limit, started, imports)
    previous = signal.signal(signal.SIGTERM, _stop)
    # Each item is planned to end before the limit; should one overrun all the same (a slower
    # machine than its estimate), the watchdog ends the run at the limit with the summary of
    # everything before that item.
    watchdog = threading.Timer(
        max(0.0, started + limit - WATCHDOG_S - time.monotonic()), run.overrun
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        run.record["command"] = command_line(args, limit)
        run.record["started"] = datetime.now().isoformat(timespec="seconds")
        run.record["versions"] = _versions()
        return run.all()
    except Terminated as stop:
        name = signal.Signals(stop.signum).name
        print(f"gpu-check: stopped by {name}; what finished is in {out}", file=sys.stderr)
        return 128 + stop.signum
    finally:
        watchdog.cancel()
        watchdog.join()
        signal.signal(signal.SIGTERM, previous)


def command_line(args: argparse.Namespace, limit: float) -> str:
    """The command that repeats this run (weights and data as given, or from the environment)."""
    words = ["python", "-m", "benchmark", "gpu-check", "--out", str(args.out)]
    words += ["--time-limit", f"{limit:g}"] + (["--tiny"] if args.tiny else [])
    for option in ("weights", "data_root", "device"):
        if getattr(args, option):
            words += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    return shlex.join(words)


class Terminated(BaseException):  # noqa: N818 - a stop request, like KeyboardInterrupt
    """SIGTERM arrived: unwinds through the parts, which save what finished (a BaseException,
    so no part records it as its own error)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: Any) -> None:
    raise Terminated(signum)

"""The command line: `python -m benchmark trial|sweep|fid|report|list|gpu-check ...`.

Trial options are generated from their declarations (benchmark/options.py), so an option
has the same name on the command line (`--n-disc`), in a sweep spec (`n_disc`) and in the
results (`n_disc`). Bad input stops with a one-line error and exit code 2, before any work.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

from benchmark import interrupt
from benchmark.datasets import DatasetMissing
from benchmark.errors import EXIT_WRITE_FAILED, ConfigError, WriteFailed
from benchmark.options import Option
from benchmark.registry import load_plugins

# Subcommands whose code lives in other modules: name -> (module, help). Each module
# provides add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "trial": ("benchmark.cli.trial", "train and evaluate one trial"),
    "sweep": ("benchmark.cli.sweep", "run a sweep spec (runs/<name>.toml)"),
    "fid": ("benchmark.cli.fid", "FID (and KID, precision/recall) between two image sets"),
    "report": ("benchmark.cli.report", "build the tables and plots of a finished sweep"),
    "list": ("benchmark.cli.trial", "list registered models, losses, penalties, datasets"),
    "gpu-check": ("benchmark.cli.gpu_check", "check and measure a GPU install in one run"),
}


def _preload_plugins(argv: Sequence[str]) -> None:
    """Import `--plugin` modules before building the parser, so their names are known."""
    modules = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--plugin"]
    modules += [arg.split("=", 1)[1] for arg in argv if arg.startswith("--plugin=")]
    load_plugins(modules)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the error first), not a usage block."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (keeps start-up fast)."""
    parser = Parser(prog="python -m benchmark", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        parser_of_command = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        module = importlib.import_module(module_name)
        prefix = "list_" if name == "list" else ""
        getattr(module, f"add_{prefix}arguments")(parser_of_command)
        parser_of_command.set_defaults(_run=getattr(module, "run_list" if prefix else "run"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; returns its exit code: 2, with one line on stderr, for bad input; 75
    (`interrupt.EXIT_INTERRUPTED`) when stopped by SIGTERM or SIGINT, 74 when a file could
    not be written; after either, rerunning the same command resumes."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with interrupt.handling():
        try:
            _preload_plugins(argv)
            command = next((arg for arg in argv if not arg.startswith("-")), None)
            try:
                args = build_parser(command).parse_args(argv)
            except SystemExit as stop:  # --help, or a usage error already printed in one line
                return stop.code if isinstance(stop.code, int) else 2
            interrupt.check()  # a signal during start-up (`benchmark.__main__`) stops here
            return int(args._run(args) or 0)
        except (ConfigError, DatasetMissing) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except (interrupt.Interrupted, KeyboardInterrupt) as stop:
            # A KeyboardInterrupt here was raised by code (a plugin): Ctrl-C is a handled signal.
            resume = "every unfinished trial is resumable; rerun the same command to finish"
            print(f"{str(stop) or 'interrupted by KeyboardInterrupt'}: {resume}", file=sys.stderr)
            return interrupt.EXIT_INTERRUPTED
        except SystemExit as stop:
            # sys.exit inside a run (a plugin's): a stop, never a trial's failure, since a
            # SystemExit mid-step is also how submitit ends a job it requeues.
            code = stop.code if isinstance(stop.code, int) and stop.code != 0 else 1
            print(
                f"stopped: SystemExit({stop.code!r}) raised inside the run (a plugin calling "
                f"sys.exit?); every unfinished trial is resumable; exit code {code}",
                file=sys.stderr,
            )
            return code
        except WriteFailed as error:
            resume = "free space (or make it writable) and rerun the same command to resume"
            print(
                f"error: {error}; nothing recorded for the trials it stopped: {resume}",
                file=sys.stderr,
            )
            return EXIT_WRITE_FAILED


def option_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def add_trial_options(
    parser: argparse.ArgumentParser, cls: type, help_of: Callable[[Option], str] | None = None
) -> None:
    """One --option per declared trial option of `cls` that the command line sets (benchmark/
    options.py), typed from its declaration; unset means "default"."""
    for option in cls.options.values():
        if not option.cli:
            continue
        name, text = option_name(option.name), (help_of or option_help)(option)
        if option.base_type == "bool":
            action = argparse.BooleanOptionalAction
            parser.add_argument(name, action=action, default=None, help=text)
        elif option.base_type.startswith("tuple"):
            parser.add_argument(name, type=_comma_list, default=None, metavar="A,B", help=text)
        else:
            kind = {"int": int, "float": float, "str": str}[option.base_type]
            parser.add_argument(name, type=kind, default=None, help=text)


def option_default(option: Option) -> str:
    """The default of a trial option, as --help shows it."""
    if option.cli_default is not None:
        return option.cli_default
    if option.preset:
        return "the model's preset"
    value = option.default
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int) else str(value)


def option_help(option: Option) -> str:
    """The option's help line: its text, its unit and its default."""
    unit = f"{option.unit}; " if option.unit else ""
    return f"{option.help} ({unit}default: {option_default(option)})"


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item for item in (part.strip() for part in text.split(",")) if item)


def overrides_from(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    return {name: getattr(args, name) for name, o in cls.options.items() if o.cli}


if __name__ == "__main__":
    sys.exit(main())

"""Sessions: tests, lint, sweep, analyze, bench. Virtualenvs are reused between runs."""

from __future__ import annotations

import os

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with the pinned torch/torchvision pair."""
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, "-e", target)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (real-data tests run when GANBENCH_DATA is set)."""
    install(session, "dev")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def sweep(session: nox.Session) -> None:
    """Run a sweep spec (default runs/quick.toml) and then its report."""
    install(session)
    args = list(session.posargs)
    if not any(arg.endswith(".toml") for arg in args):
        args.insert(0, "runs/quick.toml")  # `nox -s sweep -- --dry-run` plans the quick spec
    session.run("python", "-m", "benchmark", "sweep", *args)


@nox.session
def analyze(session: nox.Session) -> None:
    """Rebuild the report of a sweep directory: nox -s analyze -- runs/<name>."""
    install(session)
    if not session.posargs:
        session.error("usage: nox -s analyze -- runs/<name>")
    session.run("python", "-m", "analysis", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Throughput benchmarks: D steps/s per model, FID images/s, trials/hour."""
    install(session)
    session.run("python", "-m", "benchmark.bench", *session.posargs, env=dict(os.environ))

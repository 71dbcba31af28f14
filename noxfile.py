"""Sessions: tests, lint, sweep, analyze, bench, gpu-check. Virtualenvs are reused between runs."""

from __future__ import annotations

import os

import nox
from nox.command import CommandFailed

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

CONSTRAINTS = ("-c", "constraints.txt")


def install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with the pinned torch/torchvision pair.

    With `nox --no-venv` (a machine whose Python already has the dependencies, such as a GPU
    node without a network) nothing is installed: the session runs this checkout directly.
    """
    if session.venv_backend == "none":
        session.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
        )
        return
    target = f".[{','.join(extras)}]" if extras else "."
    session.install(*CONSTRAINTS, "-e", target)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (real-data tests run when GANBENCH_DATA is set)."""
    install(session, "dev")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def tests_floor(session: nox.Session) -> None:
    """The analysis tests at the lowest versions pyproject.toml allows (its `>=` bounds), so a
    declared floor is a tested one; no torch: the analysis never imports it."""
    import re
    import tomllib
    from glob import glob
    from pathlib import Path

    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    names = ("numpy", "pandas", "scipy", "seaborn", "matplotlib", "jinja2", "pytest")
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    bounds = [re.match(r"([A-Za-z0-9_.-]+)>=([0-9][0-9.]*)", spec) for spec in specs]
    pins = [f"{m[1]}=={m[2]}" for m in bounds if m and m[1] in names]
    if len(pins) != len(names):
        session.error(f"a floor is missing in pyproject.toml: found {pins} for {names}")
    session.install(*pins)
    session.install("--no-deps", "-e", ".")
    tests = sorted(glob("tests/analysis/test_*.py")) + ["tests/test_best_setting.py"]
    session.run("pytest", "-W", "ignore::DeprecationWarning", *tests, *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    if session.venv_backend != "none":
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
    """Throughput benchmarks: D steps/s per model, FID images/s, trials/hour, and the
    compiled step against a JAX program of the same trial (JAX is installed here only)."""
    install(session)
    if session.venv_backend != "none":
        try:
            session.install("jax[cpu]")
        except CommandFailed:
            session.log("JAX could not be installed: the bench runs without its JAX peer")
    session.run("python", "-m", "benchmark.perf.bench", *session.posargs, env=dict(os.environ))


@nox.session(name="gpu-check")
def gpu_check(session: nox.Session) -> None:
    """Check and measure a GPU install in one run (8 minutes): nox -s gpu-check -- --out DIR.
    On a machine whose Python has the dependencies and no network: nox --no-venv -s gpu-check."""
    install(session)
    args = list(session.posargs)
    if "--out" not in args and not any(arg.startswith("--out=") for arg in args):
        args += ["--out", "gpu-check"]
    session.run("python", "-m", "benchmark", "gpu-check", *args, env=dict(os.environ))

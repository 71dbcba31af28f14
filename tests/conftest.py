"""Shared fixtures: small threads for a 2-core machine, a cache folder per test session."""

from __future__ import annotations

import os
import sys

import pytest

try:  # the analysis tests run without torch (the lowest-versions session installs none)
    import torch
except ImportError:
    torch = None
else:
    # OMP_NUM_THREADS wins when set: two threads on two cores shared with other work spin
    # against each other (tiny trials ran 9x slower than with one thread).
    torch.set_num_threads(
        int(os.environ.get("OMP_NUM_THREADS") or max(1, min(2, os.cpu_count() or 1)))
    )


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's cached data out of the user's cache directory."""
    if "GANBENCH_CACHE" not in os.environ or os.environ.get("GANBENCH_TEST_SHARED_CACHE") != "1":
        monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def float64():
    """Networks, data and arithmetic in float64 for one test (exactness comparisons)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory):
    """A folder holding the sweep-test plugin (helpers.PLUGIN), for child processes too."""
    from tests.helpers import write_plugin

    return write_plugin(tmp_path_factory.mktemp("plugin"))


@pytest.fixture
def plugin(plugin_dir, monkeypatch):
    """Import the test plugin for one test, then restore the registries and the trainer."""
    from benchmark.datasets import DATASETS
    from benchmark.losses import LOSSES
    from benchmark.models import MODELS
    from benchmark.training import loop

    monkeypatch.syspath_prepend(str(plugin_dir))
    for registry in (DATASETS, LOSSES, MODELS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))
    monkeypatch.setattr(loop, "run_population", loop.run_population)
    monkeypatch.delitem(sys.modules, "ganbench_testplugin", raising=False)
    monkeypatch.setenv("GANBENCH_TEST_MARKERS", "1")
    yield plugin_dir
    sys.modules.pop("ganbench_testplugin", None)

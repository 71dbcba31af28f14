"""The reference-statistics cache: hit, miss, and invalidation by every key input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.evaluation.metrics import mean_cov
from benchmark.evaluation.refstats import key_fields, load_or_compute, refstats_path

BASE = dict(
    dataset="mnist",
    split="test",
    count=40,
    extractor="tiny",
    weights_sha256="a" * 64,
    preprocessing="uint8-round-half-up|gray-tile3|tf1|32x32|(x-128)/128",
    data_sha256="b" * 64,
)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))


class CountingFeatures:
    """A feature source that counts its calls (each call is a cache miss)."""

    def __init__(self) -> None:
        self.calls = 0
        self.features = torch.from_numpy(np.random.default_rng(0).normal(size=(40, 6))).float()

    def __call__(self) -> torch.Tensor:
        self.calls += 1
        return self.features


def test_miss_then_hit_returns_the_same_statistics(tmp_path) -> None:
    source = CountingFeatures()
    fields = key_fields(**BASE)
    first, hit = load_or_compute(fields, source)
    assert not hit and source.calls == 1
    path = refstats_path(fields)
    assert path.parent == tmp_path / "refstats" and path.exists()
    second, hit = load_or_compute(fields, source)
    assert hit and source.calls == 1
    mu, sigma = mean_cov(source.features)
    np.testing.assert_array_equal(second.mu, mu)
    np.testing.assert_array_equal(second.sigma, sigma)
    np.testing.assert_array_equal(second.features, source.features.numpy())
    assert second.n == first.n == 40 and second.key == first.key
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left nothing behind


@pytest.mark.parametrize(
    "change",
    [
        {"dataset": "fashion_mnist"},
        {"split": "train"},
        {"count": 39},
        {"extractor": "inception"},
        {"weights_sha256": "c" * 64},
        {"preprocessing": "uint8-round-half-up|gray-tile3|tf1|299x299|(x-128)/128"},
        {"data_sha256": "d" * 64},
    ],
)
def test_any_key_input_change_is_a_miss(change) -> None:
    source = CountingFeatures()
    load_or_compute(key_fields(**BASE), source)
    changed = key_fields(**{**BASE, **change})
    assert refstats_path(changed) != refstats_path(key_fields(**BASE))
    _, hit = load_or_compute(changed, source)
    assert not hit and source.calls == 2
    _, hit = load_or_compute(key_fields(**BASE), source)  # the original entry is still valid
    assert hit and source.calls == 2


def test_format_version_change_is_a_miss(monkeypatch) -> None:
    import benchmark.evaluation.refstats as refstats

    source = CountingFeatures()
    load_or_compute(key_fields(**BASE), source)
    monkeypatch.setattr(refstats, "FORMAT_VERSION", refstats.FORMAT_VERSION + 1)
    _, hit = load_or_compute(key_fields(**BASE), source)
    assert not hit and source.calls == 2


def test_corrupt_or_foreign_file_is_recomputed() -> None:
    source = CountingFeatures()
    fields = key_fields(**BASE)
    path = refstats_path(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz")
    _, hit = load_or_compute(fields, source)
    assert not hit and source.calls == 1
    # A file at the right name whose stored fields differ is not trusted either.
    other = key_fields(**{**BASE, "count": 7})
    load_or_compute(other, source)
    path.write_bytes(refstats_path(other).read_bytes())  # a valid file made for other fields
    _, hit = load_or_compute(fields, source)
    assert not hit and source.calls == 3
    _, hit = load_or_compute(fields, source)
    assert hit and source.calls == 3

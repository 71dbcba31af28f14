"""Real Inception weights on real data: MNIST train vs test is close, MNIST vs Fashion-MNIST far.

Needs GANBENCH_INCEPTION (either weights format) and GANBENCH_DATA; skipped without them.
CPU cost: 1500 images through InceptionV3 at 299x299: ~4.5 minutes at 5.5 images/s on 2 idle
cores, 7 minutes measured with the cores shared.

Thresholds, with n = 500 per set (small-sample FID is biased upward, roughly by a constant
over n): MNIST train[:n] vs test[:n] measured 21.6 at n = 500 (15.8 at 1000, 9.5 at 2000), so
< 40 leaves room for another CPU or BLAS; MNIST test vs Fashion-MNIST test measured 203.4 at
n = 500, so > 100 (and > 4x the same-distribution value) separates the two with a wide margin.
"""

from __future__ import annotations

import os

import pytest

from benchmark.evaluation import build_extractor, extract_features, frechet_distance, mean_cov

N = 500

pytestmark = [
    pytest.mark.slow,
    pytest.mark.realdata,
    pytest.mark.skipif(
        not (os.environ.get("GANBENCH_INCEPTION") and os.environ.get("GANBENCH_DATA")),
        reason="needs GANBENCH_INCEPTION (Inception weights) and GANBENCH_DATA (MNIST, Fashion)",
    ),
]


def test_fid_mnist_train_test_small_and_mnist_fashion_large() -> None:
    from benchmark.datasets import load_dataset

    extractor = build_extractor("inception")  # weights from GANBENCH_INCEPTION
    assert extractor.dim == 2048 and len(extractor.sha256) == 64
    mnist = load_dataset("mnist")
    fashion = load_dataset("fashion_mnist")
    train = mean_cov(extract_features(extractor, mnist.train[:N], batch_size=100))
    test = mean_cov(extract_features(extractor, mnist.test[:N], batch_size=100))
    other = mean_cov(extract_features(extractor, fashion.test[:N], batch_size=100))
    same = frechet_distance(*train, *test)
    different = frechet_distance(*test, *other)
    assert 0.0 < same < 40.0
    assert different > 100.0
    assert different > 4 * same

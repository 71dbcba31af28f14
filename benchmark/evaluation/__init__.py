"""Evaluation: feature extractors, FID/KID/precision-recall, polygon metrics, the Evaluator.

Public API: `Evaluator` (the trainer's interface) and `NonFiniteGenerator` (what it raises
for a generator that outputs NaN or inf), `FEATURE_EXTRACTORS` / `build_extractor` /
`extract_features`, `METRICS`, `mean_cov`, `frechet_distance`, `kid`,
`improved_precision_recall`, `polygon_metrics` / `PolygonSettings`, and the reference-statistics
cache `load_or_compute`.
"""

from benchmark.evaluation.evaluator import Evaluator, NonFiniteGenerator, fixed_z
from benchmark.evaluation.extractors import (
    ENV_INCEPTION,
    FeatureExtractor,
    WeightsUnavailable,
    build_extractor,
    extract_features,
)
from benchmark.evaluation.metrics import (
    frechet_distance,
    improved_precision_recall,
    kid,
    mean_cov,
)
from benchmark.evaluation.polygon_metrics import PolygonSettings, polygon_metrics
from benchmark.evaluation.preprocess import FID_RESIZE, preprocess, to_uint8
from benchmark.evaluation.refstats import RefStats, key_fields, load_or_compute
from benchmark.results import FEATURE_EXTRACTORS, METRICS

__all__ = [
    "ENV_INCEPTION",
    "FEATURE_EXTRACTORS",
    "FID_RESIZE",
    "METRICS",
    "Evaluator",
    "NonFiniteGenerator",
    "FeatureExtractor",
    "PolygonSettings",
    "RefStats",
    "WeightsUnavailable",
    "build_extractor",
    "extract_features",
    "fixed_z",
    "frechet_distance",
    "improved_precision_recall",
    "key_fields",
    "kid",
    "load_or_compute",
    "mean_cov",
    "polygon_metrics",
    "preprocess",
    "to_uint8",
]

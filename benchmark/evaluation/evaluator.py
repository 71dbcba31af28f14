"""`Evaluator`: the trainer's view of evaluation; scores a generator at every checkpoint.

It draws z ~ U[-1, 1]^z_dim (or the trial's other `latent`) once from a fixed seed (the same
z at every call), samples G in
eval mode (restoring its mode afterwards), and computes the requested metrics. The real
statistics are computed once, lazily, through the on-disk reference-statistics cache.

A conditional generator (`classes` set) is sampled at fixed, class-balanced labels (sample i
has class i mod K) and also scored by `label_accuracy`: the share of samples in the class they
were asked for, by the nearest mode for the 2-D mixtures and by the dataset's reference
classifier (classifier.py) for images.

A generator whose output holds NaN or inf is never scored: every batch it produces is checked
before any metric sees it, and `NonFiniteGenerator` is raised instead (quantising NaN to uint8
gives undefined values, which would make a finite score; the reference scores such a generator
FID 31337, the trainer records it diverged).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from benchmark.errors import ConfigError
from benchmark.evaluation.extractors import (
    FeatureExtractor,
    build_extractor,
    extract_features,
)
from benchmark.evaluation.mixture_metrics import SAMPLES as MIXTURE_SAMPLES
from benchmark.evaluation.polygon_metrics import PolygonSettings
from benchmark.evaluation.preprocess import FID_RESIZE, to_uint8
from benchmark.evaluation.refstats import RefStats, images_sha256, key_fields, load_or_compute
from benchmark.latents import LATENTS
from benchmark.results import FEATURE_EXTRACTORS, METRICS


def fixed_z(n: int, z_dim: int, seed: int, latent: str = "uniform") -> Tensor:
    """z ~ U[-1, 1]^(n, z_dim) (or another registered latent) from a CPU generator seeded with
    `seed` (device independent)."""
    generator = torch.Generator().manual_seed(seed)
    return LATENTS.get(latent, "latent").sample(n, z_dim, generator, torch.device("cpu"))


class NonFiniteGenerator(ArithmeticError):
    """The generator's output holds NaN or inf: it cannot be scored."""


def finite_images(images: Tensor) -> Tensor:
    """`images`, or NonFiniteGenerator if they hold NaN or inf (one host sync a batch, which
    evaluation makes anyway)."""
    if not bool(torch.isfinite(images).all()):
        raise NonFiniteGenerator("the generator's output holds non-finite values")
    return images


class _FiniteOutputs(nn.Module):
    """G with every output checked by `finite_images` (for metrics that call G themselves)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, *labels: Tensor) -> Tensor:
        return finite_images(self.generator(z, *labels))


class Evaluator:
    """Scores generators against the first `n_real` test images with the requested metrics."""

    def __init__(
        self,
        *,
        dataset: str,
        test_images: Tensor,
        metrics: Sequence[str],
        n_real: int = 10_000,
        n_fake: int = 10_000,
        extractor: str = "inception",
        weights: str | None = None,
        download: bool = False,
        device: torch.device | str = "cpu",
        z_dim: int = 64,
        z_seed: int = 0,
        latent: str = "uniform",
        batch_size: int = 500,
        polygon: PolygonSettings | None = None,
        classes: int | None = None,
        test_labels: Tensor | None = None,
        train_images: Tensor | None = None,
        train_labels: Tensor | None = None,
    ) -> None:
        """`classes`: a conditional generator's number of classes (None: unconditional); for
        an image dataset its reference classifier is trained on (or read for) `train_images`
        and `train_labels` and measured on the test images and `test_labels`."""
        for name in metrics:
            METRICS.get(name, "metrics")
        points = any(METRICS.get(name).data == "points" for name in metrics)
        if points and (test_images.dtype != torch.float32 or test_images.ndim != 2):
            raise ValueError(
                f"the mixture metrics need float32 test points (N, D), got {test_images.dtype} "
                f"{tuple(test_images.shape)}"
            )
        if not points and (test_images.dtype != torch.uint8 or test_images.ndim != 4):
            raise ValueError(
                f"test_images must be uint8 (N, C, H, W), got {test_images.dtype} "
                f"{tuple(test_images.shape)}"
            )
        if n_real < 2 or n_fake < 2:
            raise ConfigError("fid_n_real/fid_n_fake", (n_real, n_fake), "at least 2 each")
        self.dataset = dataset
        self.metrics = tuple(dict.fromkeys(metrics))
        self.test_images = test_images
        self.n_real = min(int(n_real), len(test_images))
        self.n_fake = int(n_fake)
        self.extractor_name = extractor
        self.weights = weights
        self.download = download
        self.device = torch.device(device)
        self.z_dim = z_dim
        self.batch_size = batch_size
        self.polygon = polygon or PolygonSettings()
        self.needs_features = any(METRICS.get(m).needs_features for m in self.metrics)
        n_z = max(
            self.n_fake if self.needs_features else 0,
            self._polygon_n(),
            MIXTURE_SAMPLES if points else 0,
            *(METRICS.get(name).samples for name in self.metrics),
        )
        self.z = fixed_z(n_z, z_dim, z_seed, latent)
        self.classes = classes
        self.labels = None
        self._classifier = None
        self._classifier_data = None
        if classes is not None:
            from benchmark.conditional import balanced_labels

            # Image label accuracy is measured on n_fake samples (more z if FID needs none).
            n_labelled = MIXTURE_SAMPLES if points else self.n_fake
            if len(self.z) < n_labelled:
                self.z = fixed_z(n_labelled, z_dim, z_seed, latent)
            self.labels = balanced_labels(len(self.z), classes)
            if not points:
                data = (train_images, train_labels, test_labels)
                if any(t is None for t in data):
                    raise ValueError(
                        "a conditional image evaluator needs labelled train and test data"
                    )
                self._classifier_data = data
        self._extractor: FeatureExtractor | None = None
        self._real: RefStats | None = None
        self._fake: Tensor | None = None
        self.cache_hit: bool | None = None
        if self.needs_features:  # the name is checked now; the weights load on first use
            FEATURE_EXTRACTORS.get(extractor, "feature_extractor")

    def _polygon_n(self) -> int:
        return self.polygon.n_precision if "polygon" in self.metrics else 0

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            self._extractor = build_extractor(
                self.extractor_name, self.weights, self.device, self.download
            )
        return self._extractor

    def prepare(self) -> None:
        """Load the weights, the real statistics and the reference classifier now (a trial
        calls this before training, so missing weights or an unusable cache stop it before
        any work is spent)."""
        if self.needs_features:
            self.real_stats()
        if self._classifier_data is not None:
            self.classifier()

    def classifier(self):
        """The dataset's reference classifier (classifier.py), read from the cache or trained."""
        if self._classifier is None:
            from benchmark.evaluation.classifier import load_or_train

            train, train_labels, test_labels = self._classifier_data
            self._classifier, _ = load_or_train(
                self.dataset,
                self.classes,
                train,
                train_labels,
                self.test_images,
                test_labels,
                self.device,
            )
        return self._classifier

    def _sample(self, generator: nn.Module, start: int, stop: int) -> Tensor:
        """G at the fixed z[start:stop] (and their labels, for a conditional G), checked finite."""
        inputs = [self.z[start:stop].to(self.device)]
        if self.labels is not None:
            inputs.append(self.labels[start:stop].to(self.device))
        return finite_images(generator(*inputs))

    def label_accuracy(self, generator: nn.Module) -> float:
        """The share of n_fake samples that the reference classifier puts in their class."""
        classifier = self.classifier()
        predicted = []
        with torch.inference_mode():
            for start in range(0, self.n_fake, self.batch_size):
                images = to_uint8(
                    self._sample(generator, start, min(start + self.batch_size, self.n_fake))
                )
                predicted.append(classifier.predict(images))
        return float((torch.cat(predicted) == self.labels[: self.n_fake]).double().mean())

    def real_stats(self) -> RefStats:
        """The real statistics (first `n_real` test images), from the cache or computed once."""
        if self._real is None:
            images = self.test_images[: self.n_real]
            fields = key_fields(
                dataset=self.dataset,
                split="test",
                count=self.n_real,
                extractor=self.extractor.name,
                weights_sha256=self.extractor.sha256,
                preprocessing=self.extractor.preprocessing,
                data_sha256=images_sha256(images),
            )
            self._real, self.cache_hit = load_or_compute(
                fields, lambda: extract_features(self.extractor, images, self.batch_size)
            )
        return self._real

    def fake_features(self, generator: nn.Module) -> Tensor:
        """Features of G(z) for the first `n_fake` fixed z, quantised on the device;
        NonFiniteGenerator if an image holds NaN or inf."""
        feats = torch.empty(self.n_fake, self.extractor.dim, dtype=torch.float32)
        with torch.inference_mode():
            for start in range(0, self.n_fake, self.batch_size):
                images = to_uint8(
                    self._sample(generator, start, min(start + self.batch_size, self.n_fake))
                )
                feats[start : start + len(images)] = self.extractor(images).float().cpu()
        return feats

    def samples(self, generator: nn.Module, n: int) -> Tensor:
        """G at the first `n` fixed z (and their labels), on the device, checked finite: what a
        registered metric with `samples = n` scores."""
        with torch.inference_mode():
            return self._sample(generator, 0, n)

    def checked(self, generator: nn.Module) -> nn.Module:
        """G with every output checked finite, for a metric that calls G itself."""
        return _FiniteOutputs(generator)

    def real_features(self) -> Tensor:
        """The real images' features (from the reference statistics)."""
        return torch.from_numpy(np.asarray(self.real_stats().features))

    def features(self, generator: nn.Module) -> Tensor:
        """`fake_features(G)`, extracted once per `evaluate` call for all metrics."""
        if self._fake is None:
            self._fake = self.fake_features(generator)
        return self._fake

    def evaluate(self, generator: nn.Module) -> dict[str, float]:
        """Scores of G: keys among fid, kid, ipr_precision, ipr_recall, precision, recall, f1,
        modes, hq, reverse_kl, w1, energy. NonFiniteGenerator if any sample G makes on the way
        holds NaN or inf."""
        was_training = generator.training
        generator.eval()
        try:
            out: dict[str, float] = {}
            self._fake = None  # G's features, extracted once for every metric that reads them
            for metric in METRICS.values():  # in registration order: a stable key order
                if metric.name in self.metrics:
                    out.update(metric.computation()(self, generator))
            self._fake = None
            if self._classifier_data is not None:
                out["label_accuracy"] = self.label_accuracy(generator)
            return out
        finally:
            generator.train(was_training)

    def record(self) -> dict[str, object]:
        """fid_n_real, fid_n_fake, fid_resize, inception_sha256, feature_extractor (+ polygon)."""
        has_fid = "fid" in self.metrics
        record: dict[str, object] = {
            "fid_n_real": self.n_real if has_fid else None,
            "fid_n_fake": self.n_fake if has_fid else None,
            "fid_resize": FID_RESIZE if has_fid else None,
            "inception_sha256": self.extractor.sha256 if self.needs_features else None,
            "feature_extractor": self.extractor_name if self.needs_features else None,
        }
        if "polygon" in self.metrics:
            record.update(self.polygon.record())
        if "mixture" in self.metrics:
            record["mixture_n"] = MIXTURE_SAMPLES
        if self._classifier_data is not None:
            record["label_accuracy_n"] = self.n_fake
            record.update(self.classifier().record())
        return record

"""The Evaluator (the trainer's interface) and the `fid` command, with the tiny extractor."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.cli.fid import add_arguments, load_images, run
from benchmark.errors import ConfigError
from benchmark.evaluation import (
    Evaluator,
    NonFiniteGenerator,
    PolygonSettings,
    build_extractor,
    extract_features,
    fixed_z,
)
from benchmark.evaluation.metrics import (
    frechet_distance,
    improved_precision_recall,
    kid,
    mean_cov,
)

Z_DIM = 8


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path))


class SpyGenerator(nn.Module):
    """z (B, 8) -> (B, 1, 28, 28) in [0, 1]; remembers the z and the mode of every call."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(Z_DIM, 28 * 28)
        self.bn = nn.BatchNorm1d(28 * 28)
        self.seen: list[torch.Tensor] = []
        self.modes: list[bool] = []

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.seen.append(z.detach().clone())
        self.modes.append(self.training)
        return torch.sigmoid(self.bn(self.fc(z))).reshape(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def test_images() -> torch.Tensor:
    return torch.randint(0, 256, (64, 1, 28, 28), generator=torch.Generator().manual_seed(1)).to(
        torch.uint8
    )


def make(test_images: torch.Tensor, **kwargs) -> Evaluator:
    options = dict(
        dataset="toy",
        test_images=test_images,
        metrics=["fid", "kid", "ipr"],
        n_real=48,
        n_fake=40,
        extractor="tiny",
        z_dim=Z_DIM,
        z_seed=3,
        batch_size=16,
    )
    return Evaluator(**{**options, **kwargs})


def test_evaluate_matches_independent_computation(test_images) -> None:
    evaluator = make(test_images)
    generator = SpyGenerator()
    scores = evaluator.evaluate(generator)
    assert set(scores) == {"fid", "kid", "ipr_precision", "ipr_recall"}

    tiny = build_extractor("tiny")
    real = extract_features(tiny, test_images[:48])
    z = fixed_z(40, Z_DIM, 3)
    generator.eval()
    with torch.no_grad():
        fake = extract_features(tiny, generator(z))
    assert scores["fid"] == pytest.approx(frechet_distance(*mean_cov(real), *mean_cov(fake)))
    assert scores["kid"] == pytest.approx(kid(real, fake)[0])
    precision, recall = improved_precision_recall(real, fake)
    assert (scores["ipr_precision"], scores["ipr_recall"]) == (precision, recall)


def test_same_z_every_call_eval_mode_and_mode_restored(test_images) -> None:
    evaluator = make(test_images)
    generator = SpyGenerator().train()
    first = evaluator.evaluate(generator)
    calls = len(generator.seen)
    second = evaluator.evaluate(generator)
    assert first == second
    assert generator.training  # restored
    assert not any(generator.modes)  # sampled in eval mode
    for a, b in zip(generator.seen[:calls], generator.seen[calls:], strict=True):
        assert torch.equal(a, b)
    z = torch.cat(generator.seen[:calls])
    assert torch.equal(z, fixed_z(40, Z_DIM, 3)) and z.min() >= -1 and z.max() <= 1
    generator.eval()
    evaluator.evaluate(generator)
    assert not generator.training


class NaNOnCall(SpyGenerator):
    """Finite weights; its output on call number `bad` (0-based) holds one NaN pixel."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad = bad

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        images = super().forward(z)
        if len(self.seen) - 1 == self.bad:
            images = images.clone()
            images[0, 0, 3, 5] = math.nan
        return images


class _Recording:
    """An extractor that records the images it is given."""

    def __init__(self, extractor, seen: list[torch.Tensor]) -> None:
        self.extractor, self.seen = extractor, seen

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images)
        return self.extractor(images)

    def __getattr__(self, name: str):
        return getattr(self.extractor, name)


@pytest.mark.parametrize("metrics", [["fid", "kid"], ["polygon"]])
def test_a_generator_with_non_finite_output_is_never_scored(test_images, metrics) -> None:
    """Its NaN images never reach a metric (cast to uint8 they are undefined values that make
    a finite score): the evaluator raises instead, and restores G's mode."""
    evaluator = make(test_images, metrics=metrics, polygon=PolygonSettings(n_precision=40))
    evaluator.prepare()  # the real statistics: the extractor's only calls so far
    extracted: list[torch.Tensor] = []
    if evaluator.needs_features:
        evaluator._extractor = _Recording(evaluator.extractor, extracted)
    generator = NaNOnCall(bad=1).train()  # batches of 16: the second one is bad
    with pytest.raises(NonFiniteGenerator, match="non-finite values"):
        evaluator.evaluate(generator)
    assert len(generator.seen) == 2 and generator.training
    assert len(extracted) == (1 if evaluator.needs_features else 0)  # only the first batch
    assert evaluator.evaluate(NaNOnCall(bad=-1))  # the same generator without NaN scores


def test_real_statistics_are_cached_across_evaluators(test_images) -> None:
    first = make(test_images)
    first.evaluate(SpyGenerator())
    assert first.cache_hit is False
    second = make(test_images)
    second.evaluate(SpyGenerator())
    assert second.cache_hit is True
    third = make(test_images, n_real=47)
    third.evaluate(SpyGenerator())
    assert third.cache_hit is False


def test_record(test_images) -> None:
    record = make(test_images).record()
    assert record == {
        "fid_n_real": 48,
        "fid_n_fake": 40,
        "fid_resize": "tf1-bilinear (torch-fidelity)",
        "inception_sha256": build_extractor("tiny").sha256,
        "feature_extractor": "tiny",
    }
    no_fid = make(test_images, metrics=["polygon"]).record()
    for key in ("fid_n_real", "fid_n_fake", "fid_resize", "inception_sha256", "feature_extractor"):
        assert no_fid[key] is None


def test_unknown_metric_or_extractor_is_a_config_error(test_images) -> None:
    with pytest.raises(ConfigError, match="metrics"):
        make(test_images, metrics=["fid", "is"])
    with pytest.raises(ConfigError, match="feature_extractor"):
        make(test_images, extractor="vgg")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_fid_command_on_npz_and_folders(tmp_path, capsys) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    np.savez(tmp_path / "a.npz", x=a)
    np.savez(tmp_path / "b.npz", x=b[:, None])  # (N, C, H, W) is read as well
    folder = tmp_path / "b_png"
    folder.mkdir()
    for i, image in enumerate(b):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    assert torch.equal(load_images(folder), load_images(tmp_path / "b.npz"))

    tiny = build_extractor("tiny")
    real = extract_features(tiny, torch.from_numpy(a)[:, None])
    fake = extract_features(tiny, torch.from_numpy(b)[:, None])
    fid = frechet_distance(*mean_cov(real), *mean_cov(fake))
    precision, recall = improved_precision_recall(real, fake)

    for source in (tmp_path / "b.npz", folder):
        args = _parse(str(tmp_path / "a.npz"), str(source), "--extractor", "tiny", "--kid", "--pr")
        assert run(args) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == f"FID: {fid:.3f}"
        assert lines[1].startswith(f"KID: {kid(real, fake)[0]:.6f}")
        assert lines[2:] == [f"Precision: {precision:.4f}", f"Recall: {recall:.4f}"]


def test_fid_command_channels_last_rgb(tmp_path) -> None:
    x = np.random.default_rng(1).integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", x=x)
    assert torch.equal(load_images(tmp_path / "c.npz"), torch.from_numpy(x).permute(0, 3, 1, 2))


def test_fid_command_never_downloads_unless_asked(tmp_path, monkeypatch, capsys) -> None:
    import urllib.error

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from benchmark.cli import main

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=images)
    monkeypatch.delenv("GANBENCH_INCEPTION", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no cached copy either
    monkeypatch.setattr(fe, "load_state_dict_from_url", offline)
    a = str(tmp_path / "a.npz")
    assert main(["fid", a, a]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "GANBENCH_INCEPTION" in err and "--weights PATH" in err
    assert "--download" in err
    assert main(["fid", a, a, "--download"]) == 2  # asked, but offline
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the download failed" in err and "no network" in err

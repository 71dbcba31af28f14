"""Preprocessing (quantise, tile, TF1 resize, scale) and feature extractors (tiny, inception)."""

from __future__ import annotations

import hashlib
import urllib.error

import pytest
import torch
from torch import nn
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from benchmark.evaluation.extractors import (
    InceptionExtractor,
    WeightsUnavailable,
    build_extractor,
    extract_features,
    weights_format,
)
from benchmark.evaluation.preprocess import preprocess, to_rgb, to_uint8


def test_quantisation_rounds_half_up_at_the_boundaries() -> None:
    eps = 1e-6
    x = torch.tensor(
        [0.0, 1.0, -0.1, 1.2, 0.5]
        + [0.5 / 255 - eps, 0.5 / 255 + eps, 1.5 / 255 - eps, 1.5 / 255 + eps]
        + [127.5 / 255 - eps, 254.5 / 255 - eps, 254.5 / 255 + eps]
    )
    expected = [0, 255, 0, 255, 128, 0, 1, 1, 2, 127, 254, 255]
    assert to_uint8(x).tolist() == expected
    assert to_uint8(x.double()).tolist() == expected
    assert to_uint8(x).dtype == torch.uint8


def test_quantisation_of_uint8_and_exact_levels_is_identity() -> None:
    levels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(levels), levels)
    assert torch.equal(to_uint8(levels.float() / 255), levels)


def test_gray_is_tiled_to_three_channels() -> None:
    gray = torch.randint(0, 256, (2, 1, 5, 5), dtype=torch.uint8)
    rgb = to_rgb(gray)
    assert rgb.shape == (2, 3, 5, 5)
    for c in range(3):
        assert torch.equal(rgb[:, c], gray[:, 0])
    assert torch.equal(preprocess(gray, 11), preprocess(gray.repeat(1, 3, 1, 1), 11))


def test_resize_and_scale_equal_torch_fidelity() -> None:
    images = torch.randint(0, 256, (3, 3, 28, 28), dtype=torch.uint8)
    expected = (
        interpolate_bilinear_2d_like_tensorflow1x(
            images.float(), size=(299, 299), align_corners=False
        )
        - 128
    ) / 128
    assert torch.equal(preprocess(images, 299), expected)
    # Float generator output goes through the same path after quantisation.
    assert torch.equal(preprocess(images.float() / 255, 299), expected)


def test_tiny_features_do_not_depend_on_batch_size_and_are_deterministic() -> None:
    images = torch.randint(0, 256, (23, 1, 28, 28), dtype=torch.uint8)
    tiny = build_extractor("tiny")
    reference = extract_features(tiny, images, batch_size=23)
    assert reference.shape == (23, 64) and reference.dtype == torch.float32
    for batch_size in (1, 5, 8):
        torch.testing.assert_close(
            extract_features(tiny, images, batch_size), reference, rtol=1e-5, atol=1e-6
        )
    again = build_extractor("tiny")
    assert again.sha256 == tiny.sha256 and len(tiny.sha256) == 64
    torch.testing.assert_close(extract_features(again, images), reference, rtol=0, atol=0)


def test_tiny_rejects_weights() -> None:
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="weights"):
        build_extractor("tiny", weights="x.pth")


@pytest.fixture(scope="module")
def random_inception_state_dict(tmp_path_factory) -> str:
    """torch-fidelity's InceptionV3 with PyTorch's default random init, saved as a state dict."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("random", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(net.state_dict(), path)
    return str(path)


def test_inception_state_dict_format_and_batch_size_invariance(random_inception_state_dict) -> None:
    path = random_inception_state_dict
    assert weights_format(path) == "state_dict"
    extractor = build_extractor("inception", weights=path)
    assert extractor.format == "state_dict"
    with open(path, "rb") as handle:
        assert extractor.sha256 == hashlib.sha256(handle.read()).hexdigest()
    images = torch.rand(5, 1, 28, 28)  # gray generator output in [0, 1]
    whole = extract_features(extractor, images, batch_size=5)
    assert whole.shape == (5, 2048) and torch.isfinite(whole).all()
    torch.testing.assert_close(
        extract_features(extractor, images, batch_size=2), whole, rtol=1e-4, atol=1e-5
    )


class _ScriptedFeatures(nn.Module):
    """A stand-in with the TorchScript layout: (N, 3, 299, 299) scaled input -> (N, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 299, 299)
        return self.linear(x.mean(dim=(2, 3)))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script/save deprecation
def test_torchscript_format_is_detected_and_fed_preprocessed_input(tmp_path) -> None:
    torch.manual_seed(0)
    module = _ScriptedFeatures()
    path = tmp_path / "inception.pt"
    torch.jit.save(torch.jit.script(module), str(path))
    assert weights_format(path) == "torchscript"
    extractor = build_extractor("inception", weights=str(path))
    assert extractor.format == "torchscript"
    images = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        expected = module(preprocess(images, 299))
    torch.testing.assert_close(extract_features(extractor, images, 3), expected)


def test_inception_offline_without_weights_fails_with_one_line(monkeypatch) -> None:
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.delenv("GANBENCH_INCEPTION", raising=False)
    monkeypatch.setattr(fe, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable) as info:
        InceptionExtractor()
    message = str(info.value)
    assert "GANBENCH_INCEPTION" in message and "--weights PATH" in message
    assert "\n" not in message

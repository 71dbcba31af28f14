"""Label accuracy of conditional generators: the reference classifier (trained, measured,
cached by a hash like the reference statistics) and the Evaluator's class-balanced samples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.evaluation import Evaluator
from benchmark.evaluation import classifier as reference
from benchmark.mixtures import GRID, MIXTURES, generate
from tests.helpers import CLASSES, SIDE, labelled_squares

# The toy recipe: the quadrant of a white square is learnt in a few dozen steps.
TOY_RECIPE = {**reference.RECIPE, "epochs": 20, "lr": 1e-2}


@pytest.fixture
def toy_recipe(monkeypatch):
    monkeypatch.setattr(reference, "RECIPE", TOY_RECIPE)


def _data():
    (train, train_labels), (test, test_labels) = labelled_squares(256, 0), labelled_squares(64, 1)
    return train, train_labels, test, test_labels


def test_the_classifier_is_trained_measured_and_cached_by_its_data(toy_recipe, tmp_path):
    train, train_labels, test, test_labels = _data()
    first, hit = reference.load_or_train("toy", CLASSES, *_data(), root=tmp_path)
    assert not hit and first.test_accuracy == 1.0  # four separable quadrants
    again, hit = reference.load_or_train("toy", CLASSES, *_data(), root=tmp_path)
    assert hit and again.key == first.key and again.test_accuracy == 1.0
    stored, read = first.network.state_dict(), again.network.state_dict()
    assert all(torch.equal(stored[k], read[k]) for k in stored)
    # Other labels (two swapped) are another classifier; a damaged file is trained again.
    swapped = train_labels.clone()
    swapped[:2] = swapped[:2].flip(0)
    other, hit = reference.load_or_train("toy", CLASSES, train, swapped, test, test_labels,
                                         root=tmp_path)  # fmt: skip
    assert not hit and other.key != first.key
    (tmp_path / f"{first.key}.pt").write_bytes(b"damaged")
    rebuilt, hit = reference.load_or_train("toy", CLASSES, *_data(), root=tmp_path)
    assert not hit and rebuilt.key == first.key and rebuilt.test_accuracy == 1.0


def test_accuracy_is_the_share_of_matching_predictions():
    predicted = torch.tensor([0, 1, 2, 3, 0, 0, 1, 1])
    assert reference.accuracy(predicted, torch.tensor([0, 1, 2, 3, 1, 1, 1, 0])) == 5 / 8


class QuadrantGenerator(nn.Module):
    """Draws class (y + shift) mod 4 whatever z: shift 0 is a perfect conditional G."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        images = torch.zeros(len(z), 1, SIDE, SIDE)
        for i, label in enumerate(((y + self.shift) % CLASSES).tolist()):
            r, c = 4 * (label // 2), 4 * (label % 2)
            images[i, 0, r : r + 4, c : c + 4] = 1.0
        return images


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (1, 0.0)])
def test_image_label_accuracy_uses_the_reference_classifier(toy_recipe, shift, expected):
    train, train_labels, test, test_labels = _data()
    evaluator = Evaluator(
        dataset="toy", test_images=test, metrics=("fid",), n_real=64, n_fake=40,
        extractor="tiny", classes=CLASSES, test_labels=test_labels, train_images=train,
        train_labels=train_labels,
    )  # fmt: skip
    evaluator.prepare()
    assert evaluator.labels[:40].tolist() == [0, 1, 2, 3] * 10  # class-balanced, fixed
    scores = evaluator.evaluate(QuadrantGenerator(shift))
    assert scores["label_accuracy"] == expected and "fid" in scores
    record = evaluator.record()
    assert record["label_accuracy_n"] == 40 and record["classifier_accuracy"] == 1.0
    assert record["classifier_key"] == evaluator.classifier().key


class ModeGenerator(nn.Module):
    """Puts sample i on the centre of mode (y + shift) mod 25."""

    def __init__(self, shift: int) -> None:
        super().__init__()
        self.shift = shift
        self.centres = nn.Parameter(torch.from_numpy(GRID.centre_array).float())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.centres[(y + self.shift) % GRID.modes]


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (3, 0.0)])
def test_mixture_label_accuracy_of_a_conditional_generator(shift, expected):
    test = torch.from_numpy(generate(MIXTURES.get("grid"))["test"])
    evaluator = Evaluator(dataset="grid", test_images=test, metrics=("mixture",), classes=25)
    scores = evaluator.evaluate(ModeGenerator(shift))
    assert scores["label_accuracy"] == expected
    assert scores["modes"] == 25.0  # class-balanced labels: 100 samples on each mode
    assert "classifier_accuracy" not in evaluator.record()


def test_a_conditional_trial_records_its_label_accuracy_and_resumes_to_the_same_weights(
    toy_recipe, tmp_path, monkeypatch
):
    from benchmark.models import resolve_trial
    from benchmark.training.loop import run_trial
    from tests.helpers import kill_after_first_checkpoint

    trial = resolve_trial(
        "ns", "test_quadrants", steps=12, eval_every_epochs=1, batch_size=8, metrics=("fid",),
        feature_extractor="tiny", fid_n_real=64, fid_n_fake=40, conditional=True,
    )  # fmt: skip
    straight = run_trial(trial, tmp_path / "straight", progress=False)
    assert straight["status"] == "ok" and straight["conditional"] is True
    assert straight["conditioning"] == "projection" and straight["classifier_accuracy"] == 1.0
    assert 0 <= straight["label_accuracy"] <= 1 and straight["label_accuracy_n"] == 40
    assert [c["d_steps"] for c in straight["checkpoints"]] == [7, 12]
    assert all("label_accuracy" in c for c in straight["checkpoints"])
    assert (tmp_path / "straight" / "samples.png").exists()
    calls = kill_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_trial(trial, tmp_path / "killed", progress=False)
    assert calls == [7]
    monkeypatch.undo()
    monkeypatch.setattr(reference, "RECIPE", TOY_RECIPE)
    resumed = run_trial(trial, tmp_path / "killed", progress=False)
    assert resumed["label_accuracy"] == straight["label_accuracy"]
    a = torch.load(tmp_path / "straight" / "generator.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "generator.pt", weights_only=True)
    assert "embed.weight" in a and all(torch.equal(a[k], b[k]) for k in a)


def test_a_conditional_mixture_trial_saves_the_labels_of_its_points(tmp_path):
    import numpy as np

    from benchmark.models import resolve_trial
    from benchmark.training.loop import run_trial

    trial = resolve_trial("ns", "grid", generator="points", discriminator="points", steps=5,
                          batch_size=32, metrics=("mixture",), conditional=True)  # fmt: skip
    result = run_trial(trial, tmp_path, progress=False)
    assert result["status"] == "ok" and 0 <= result["label_accuracy"] <= 1
    with np.load(tmp_path / "samples.npz") as saved:
        assert saved["labels"].tolist() == (np.arange(2500) % 25).tolist()
        assert saved["points"].shape == (2500, 2)

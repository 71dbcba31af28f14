"""The reference classifier of a labelled image dataset: what `label_accuracy` asks of a sample.

A conditional generator should draw the class it is given. For image datasets the project
trains one small CNN per dataset on its training split and scores a generated image as in its
class when the classifier assigns it there (`label_accuracy`, the share of such samples). The
classifier is trained on the CPU from a fixed seed (so it is one file whatever device the
trials use), cached under `cache_dir()/classifiers/` by the sha256 of everything that makes it
(recipe, data and labels), like the reference statistics (refstats.py), and its accuracy on the
test split is recorded beside every score it gives (`classifier_accuracy`, `classifier_key`):
a classifier that is 90% right on real test images bounds what a score near 1 can mean.

Network: conv 5x5/2 (16) - ReLU - conv 5x5/2 (32) - ReLU - FC K, on images in [0, 1]; Adam
(lr 1e-3), batch 128, 5 epochs. Measured (CPU, one thread): MNIST 98.45% test accuracy in
18 s, Fashion-MNIST 88.2% in 21 s, the staged 4,000-image CIFAR-10 subset 40.0% (on its 400
held-out images) in 2 s; with 2 epochs 98.0%, 85.8% and 30.8% (docs/conditional.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.evaluation.refstats import images_sha256
from benchmark.files import cache_dir, write_cache

FORMAT_VERSION = 1
RECIPE = {"arch": "conv16-conv32-fc", "epochs": 5, "batch": 128, "lr": 1e-3, "seed": 0}


class SmallCNN(nn.Module):
    """conv 5x5 stride 2 (16) - ReLU - conv 5x5 stride 2 (32) - ReLU - FC(classes): logits."""

    def __init__(self, shape: tuple[int, int, int], classes: int) -> None:
        super().__init__()
        c, h, w = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * ((h + 3) // 4) * ((w + 3) // 4), classes),
        )

    def forward(self, images: Tensor) -> Tensor:
        """Logits (N, K) of images in [0, 1] (float) or uint8."""
        if images.dtype == torch.uint8:
            images = images.float() / 255
        return self.net(images)


@dataclass(frozen=True)
class ReferenceClassifier:
    """A trained classifier, its test accuracy and its cache key (sha256 of its fields)."""

    network: SmallCNN
    test_accuracy: float
    key: str

    def record(self) -> dict[str, object]:
        return {"classifier_accuracy": self.test_accuracy, "classifier_key": self.key}

    @torch.inference_mode()
    def predict(self, images: Tensor, batch_size: int = 500) -> Tensor:
        """Class indices (N,) of images on the classifier's device."""
        device = next(self.network.parameters()).device
        return torch.cat(
            [
                self.network(images[i : i + batch_size].to(device)).argmax(dim=1).cpu()
                for i in range(0, len(images), batch_size)
            ]
        )


def accuracy(predicted: Tensor, labels: Tensor) -> float:
    """The share of samples whose predicted class is their label."""
    return float((predicted.cpu() == labels.cpu()).double().mean())


def _labels_sha256(labels: Tensor) -> str:
    return hashlib.sha256(labels.cpu().to(torch.int64).contiguous().numpy().tobytes()).hexdigest()


def classifier_fields(
    dataset: str, classes: int, train: Tensor, train_labels: Tensor, test: Tensor, test_labels
) -> dict[str, object]:
    """Everything that makes the classifier: the key's inputs (also stored in the file)."""
    return {
        "format": FORMAT_VERSION,
        "recipe": RECIPE,
        "dataset": dataset,
        "classes": classes,
        "shape": list(train.shape[1:]),
        "train_sha256": images_sha256(train),
        "train_labels_sha256": _labels_sha256(train_labels),
        "test_sha256": images_sha256(test),
        "test_labels_sha256": _labels_sha256(test_labels),
    }


def fields_key(fields: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def train_classifier(
    train: Tensor, labels: Tensor, classes: int, recipe: dict = RECIPE
) -> SmallCNN:
    """The recipe's network trained on uint8 images (N, C, H, W) with int64 labels, on the
    CPU from the recipe's seed: the same weights on every run."""
    generator = torch.Generator().manual_seed(recipe["seed"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe["seed"])
        network = SmallCNN(tuple(train.shape[1:]), classes)
    optimiser = torch.optim.Adam(network.parameters(), lr=recipe["lr"])
    for _ in range(recipe["epochs"]):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), recipe["batch"]):
            index = order[start : start + recipe["batch"]]
            loss = F.cross_entropy(network(train[index]), labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return network.eval()


def load_or_train(
    dataset: str,
    classes: int,
    train: Tensor,
    train_labels: Tensor,
    test: Tensor,
    test_labels: Tensor,
    device: torch.device | str = "cpu",
    root: str | Path | None = None,
) -> tuple[ReferenceClassifier, bool]:
    """(classifier on `device`, hit): the cached classifier made from exactly these data and
    recipe, else one trained now, measured on the test split and stored."""
    fields = classifier_fields(dataset, classes, train, train_labels, test, test_labels)
    key = fields_key(fields)
    path = (Path(root) if root is not None else cache_dir() / "classifiers") / f"{key}.pt"
    stored = _read(path, fields)
    hit = stored is not None
    if stored is None:
        network = train_classifier(train, train_labels, classes, RECIPE)
        test_accuracy = accuracy(ReferenceClassifier(network, 0.0, key).predict(test), test_labels)
        buffer = io.BytesIO()
        state = {"fields": json.dumps(fields, sort_keys=True), "accuracy": test_accuracy}
        torch.save({**state, "state": network.state_dict()}, buffer)
        write_cache(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    else:
        network, test_accuracy = stored
    return ReferenceClassifier(network.to(device), test_accuracy, key), hit


def _read(path: Path, fields: dict[str, object]) -> tuple[SmallCNN, float] | None:
    """The stored network and accuracy if the file is intact and made from `fields`."""
    if not path.exists():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if json.loads(stored["fields"]) != json.loads(json.dumps(fields)):
            return None
        network = SmallCNN(tuple(fields["shape"]), int(fields["classes"]))
        network.load_state_dict(stored["state"])
        return network.eval(), float(stored["accuracy"])
    except (OSError, KeyError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):
        return None  # damaged or another format: trained again and overwritten

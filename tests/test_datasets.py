"""Tests for the dataset loaders: file formats, splits, errors, and the real data when staged."""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark import datasets, mixtures, polygons
from benchmark.datasets import DATASETS, DatasetMissing, ImageData, celeba, cifar10, load_dataset
from benchmark.errors import ConfigError

REAL = os.environ.get("GANBENCH_DATA")
needs_data = pytest.mark.skipif(not REAL, reason="set GANBENCH_DATA to check the real data")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test caches into its own folder; GANBENCH_DATA is kept only for real-data tests."""
    monkeypatch.setenv("GANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANBENCH_DATA", raising=False)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of uint8 values, gzipped when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


# ---- idx, MNIST-like ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny.idx", "tiny.idx.gz"])
def test_read_idx_known_header_and_pixels(tmp_path, name):
    path = tmp_path / name
    raw = b"\x00\x00\x08\x03" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x02" + b"\x00\x00\x00\x03"
    raw += bytes(range(12))
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    array = datasets.read_idx(path)
    assert array.dtype == np.uint8
    np.testing.assert_array_equal(array, np.arange(12).reshape(2, 2, 3))


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "float.idx").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + bytes(4))
    with pytest.raises(ValueError, match="not an idx file of unsigned bytes"):
        datasets.read_idx(tmp_path / "float.idx")
    (tmp_path / "short.idx").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(4))
    with pytest.raises(ValueError, match=r"header says \(5,\), found 4 values"):
        datasets.read_idx(tmp_path / "short.idx")


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")]
)
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_dataset_from_tiny_files(tmp_path, name, folder, suffix):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / folder / f"train-images-idx3-ubyte{suffix}", train)
    write_idx(tmp_path / folder / f"t10k-images-idx3-ubyte{suffix}", test)
    data = load_dataset(name, tmp_path)
    assert data.name == name and data.shape == (1, 28, 28)
    np.testing.assert_array_equal(data.train.numpy(), train[:, None])
    np.testing.assert_array_equal(data.test.numpy(), test[:, None])


# ---- errors -----------------------------------------------------------------------------


def test_unknown_dataset_names_field_and_choices():
    with pytest.raises(ConfigError) as error:
        load_dataset("imagenet")
    # Other test modules register their own small datasets, so check the built-in ones.
    assert str(error.value).startswith("dataset='imagenet' is not allowed; expected one of [")
    for name in ("'celeba'", "'cifar10'", "'fashion_mnist'", "'mnist'", "'polygons'"):
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")]
)
def test_missing_idx_files_message(tmp_path, name, folder):
    with pytest.raises(DatasetMissing) as error:
        load_dataset(name, tmp_path)
    url = datasets.MNIST_URLS[0] if name == "mnist" else datasets.FASHION_MNIST_URLS[0]
    assert str(error.value) == (
        f"dataset '{name}' not found: expected train-images-idx3-ubyte.gz (or un-gzipped), "
        f"t10k-images-idx3-ubyte.gz (or un-gzipped) under {tmp_path / folder}; "
        f"download with --download, or fetch them from {url}"
    )
    assert isinstance(error.value, FileNotFoundError)


def test_missing_cifar10_message(tmp_path):
    with pytest.raises(DatasetMissing) as error:
        load_dataset("cifar10", tmp_path)
    assert str(error.value) == (
        "dataset 'cifar10' not found: expected cifar-10-batches-py/{data_batch_1..5, test_batch} "
        "(the python version), or .npz files with x uint8 (N, 32, 32, 3), the test set in a file "
        f"whose name contains 'test' under {tmp_path / 'cifar10'}; download with --download, or "
        "fetch and unpack https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    )


def test_missing_celeba_message(tmp_path):
    with pytest.raises(DatasetMissing) as error:
        load_dataset("celeba", tmp_path)
    assert str(error.value) == (
        f"dataset 'celeba' not found: expected *.jpg or *.png (img_align_celeba) under "
        f"{tmp_path / 'celeba' / 'img_align_celeba'}; CelebA has no --download; fetch "
        f"img_align_celeba.zip from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
    )


def test_data_root_argument_then_environment_then_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"data_root=None is not allowed.*GANBENCH_DATA"):
        datasets.data_root(None)
    with pytest.raises(ConfigError, match="data_root"):
        load_dataset("mnist")
    monkeypatch.setenv("GANBENCH_DATA", str(tmp_path / "env"))
    assert datasets.data_root(None) == tmp_path / "env"
    assert datasets.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.data_root(str(tmp_path)) == tmp_path


# ---- CIFAR-10 ---------------------------------------------------------------------------


def test_held_out_size():
    assert [cifar10.held_out_size(n) for n in (25, 4000, 50_000, 200_000)] == [
        2,
        400,
        5000,
        10_000,
    ]


def test_cifar10_train_only_npz_splits_off_the_last_tenth(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (25, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "cifar10").mkdir()
    np.savez(tmp_path / "cifar10" / "cifar10_train_first25.npz", x=x, y=np.zeros(25, np.uint8))
    data = load_dataset("cifar10", tmp_path)
    assert data.shape == (3, 32, 32)
    assert data.train.shape == (23, 3, 32, 32) and data.test.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(data.train.numpy(), x[:23].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.test.numpy(), x[23:].transpose(0, 3, 1, 2))


def test_cifar10_npz_with_test_file(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    test = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "cifar10").mkdir()
    np.savez(tmp_path / "cifar10" / "train.npz", x=train)
    np.savez(tmp_path / "cifar10" / "test.npz", x=test)
    data = load_dataset("cifar10", tmp_path)
    np.testing.assert_array_equal(data.train.numpy(), train.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(data.test.numpy(), test.transpose(0, 3, 1, 2))


def test_cifar10_npz_wrong_layout(tmp_path):
    (tmp_path / "cifar10").mkdir()
    np.savez(tmp_path / "cifar10" / "x.npz", x=np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"x must be uint8 \(N, 32, 32, 3\)"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_python_batches(tmp_path):
    """Rows of the python batches are 1024 red, then green, then blue values."""
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = {}
    for i, name in enumerate([*cifar10.CIFAR10_BATCHES, "test_batch"]):
        rows[name] = np.full((2, 3072), i, dtype=np.uint8)
        rows[name][:, 1024:2048] = 100 + i  # the green plane
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rows[name], b"labels": [0, 1]}, handle)
    data = load_dataset("cifar10", tmp_path)
    assert data.train.shape == (10, 3, 32, 32) and data.test.shape == (2, 3, 32, 32)
    assert data.train[:, 0, 0, 0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert data.train[:, 1, 31, 31].tolist() == [100, 100, 101, 101, 102, 102, 103, 103, 104, 104]
    assert data.test[:, 0].unique().tolist() == [5] and data.test[:, 1].unique().tolist() == [105]
    assert data.train_labels.tolist() == [0, 1] * 5 and data.test_labels.tolist() == [0, 1]


def write_cifar_batches(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*cifar10.CIFAR10_BATCHES, "test_batch"]):
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": np.full((1, 3072), i, np.uint8), b"labels": [0]}, handle)


def test_cifar10_archive_is_unpacked_when_downloading(tmp_path):
    """With --download and the archive already there, only the unpacking runs (no network)."""
    write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "cifar10").mkdir()
    with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = load_dataset("cifar10", tmp_path, download=True)
    assert data.train[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4]
    assert data.test[:, 0, 0, 0].tolist() == [5]
    assert sorted(p.name for p in (tmp_path / "cifar10").iterdir()) == [
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
    ]


def test_download_checks_md5_and_writes_atomically(tmp_path):
    """A file:// URL exercises the fetch without a network."""
    source = tmp_path / "source.bin"
    source.write_bytes(b"ganbench")
    good = hashlib.md5(b"ganbench").hexdigest()
    datasets.core._download(source.as_uri(), tmp_path / "out" / "copy.bin", good)
    assert (tmp_path / "out" / "copy.bin").read_bytes() == b"ganbench"
    with pytest.raises(OSError, match=f"differs from the published {'0' * 32}"):
        datasets.core._download(source.as_uri(), tmp_path / "out" / "bad.bin", "0" * 32)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["copy.bin"]


# ---- CelebA -----------------------------------------------------------------------------

RED, BLUE, GREEN = (200, 10, 10), (10, 10, 200), (10, 200, 10)


def celeba_face(left_colour, right_colour) -> Image.Image:
    """A 178x218 aligned-CelebA-sized image: the centre 160x160 crop (left 9, top 29) holds
    two colour halves, and the border around it is green so that any crop error shows."""
    image = Image.new("RGB", (178, 218), GREEN)
    image.paste(Image.new("RGB", (80, 160), left_colour), (9, 29))
    image.paste(Image.new("RGB", (80, 160), right_colour), (89, 29))
    return image


@pytest.fixture
def celeba_root(tmp_path, monkeypatch):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    celeba_face(RED, BLUE).save(folder / "000001.png")
    celeba_face(BLUE, RED).save(folder / "000002.png")
    celeba_face(RED, RED).save(folder / "000003.jpg", quality=95)
    celeba_face(BLUE, BLUE).save(folder / "000004.png")
    celeba_face(RED, BLUE).save(folder / "000005.jpg", quality=95)
    (folder / "list_eval_partition.txt").write_text("not an image\n")
    monkeypatch.setattr(celeba, "CELEBA_TRAIN_SIZE", 3)
    return tmp_path


def test_celeba_crop_resize_and_split(celeba_root):
    data = load_dataset("celeba", celeba_root)
    assert data.shape == (3, 64, 64)
    assert data.train.shape == (3, 3, 64, 64) and data.test.shape == (2, 3, 64, 64)
    # Lossless PNGs: away from the seam in the middle, each half is exactly its colour.
    left, right = data.train[0, :, :, :30], data.train[0, :, :, 34:]
    assert left.reshape(3, -1).unique(dim=1).T.tolist() == [list(RED)]
    assert right.reshape(3, -1).unique(dim=1).T.tolist() == [list(BLUE)]
    assert data.test[0].reshape(3, -1).unique(dim=1).T.tolist() == [list(BLUE)]  # 000004.png
    # JPEGs only approximately, and away from the crop edge, where JPEG blocks blend in the
    # green border; 000003 is train, 000005 (sorted last) is test.
    red = torch.tensor(RED, dtype=torch.float32)[:, None, None]
    inner = data.train[2, :, 6:-6, 6:-6].float()
    torch.testing.assert_close(inner, red.expand_as(inner), atol=4, rtol=0)
    inner = data.test[1, :, 6:-6, 6:28].float()
    torch.testing.assert_close(inner, red.expand_as(inner), atol=4, rtol=0)


def _tf1_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """TF1 `resize_images` (bilinear, align_corners False, no half-pixel centres), written
    from its definition: output pixel i samples the input at i * in / out, linearly."""

    def axis_weights(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.arange(size) * (n_in / size)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, n_in - 1), src - low

    image = image.astype(np.float64)
    y0, y1, fy = axis_weights(image.shape[0])
    x0, x1, fx = axis_weights(image.shape[1])
    rows = image[y0] * (1 - fy)[:, None, None] + image[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def test_celeba_preprocessing_is_the_references_crop_and_tf1_bilinear_resize():
    image = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    got = celeba.celeba_preprocess(image)
    crop = image[29 : 29 + 160, 9 : 9 + 160]  # (218 - 160) // 2, (178 - 160) // 2
    expected = np.floor(_tf1_bilinear(crop, 64) + 0.5).astype(np.uint8)  # rounded half up
    assert got.shape == (3, 64, 64) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected.transpose(2, 0, 1))
    # Not an antialiased resize: a PIL bicubic (the old preprocessing) differs.
    bicubic = np.asarray(Image.fromarray(crop).resize((64, 64), Image.Resampling.BICUBIC))
    assert np.abs(bicubic.astype(int) - expected.astype(int)).max() > 50


def test_celeba_is_cached(celeba_root, monkeypatch):
    first = load_dataset("celeba", celeba_root)
    assert len(list((celeba_root / "cache").glob("celeba-*.npy"))) == 1

    def fail(path):
        raise AssertionError("decoded again despite a cache file")

    monkeypatch.setattr(celeba, "_celeba_image", fail)
    second = load_dataset("celeba", celeba_root)
    assert torch.equal(first.train, second.train) and torch.equal(first.test, second.test)


def test_celeba_too_few_images(celeba_root, monkeypatch):
    monkeypatch.setattr(celeba, "CELEBA_TRAIN_SIZE", 5)
    with pytest.raises(DatasetMissing, match=r"incomplete: 5 images under .*needs more than 5 "):
        load_dataset("celeba", celeba_root)


# ---- polygons, ImageData, to_float --------------------------------------------------------


def test_polygons_need_no_data_root(monkeypatch):
    small = polygons.generate_polygons

    def generate_small():
        return small(sizes=(20, 5, 4))

    monkeypatch.setattr(polygons, "generate_polygons", generate_small)
    data = load_dataset("polygons")
    assert data.shape == (1, 28, 28)
    assert data.train.shape == (20, 1, 28, 28) and data.test.shape == (5, 1, 28, 28)
    expected = small(sizes=(20, 5, 4))
    np.testing.assert_array_equal(data.test.numpy(), expected["test"])
    np.testing.assert_array_equal(datasets.polygons_holdout().numpy(), expected["holdout"])


def test_image_data_validates_and_makes_contiguous():
    train = torch.arange(48, dtype=torch.uint8).reshape(4, 2, 2, 3).permute(0, 3, 1, 2)
    assert not train.is_contiguous()
    data = ImageData("toy", train, torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    assert data.train.is_contiguous() and data.shape == (3, 2, 2)
    assert torch.equal(data.train, train)
    with pytest.raises(ValueError, match=r"toy train: expected uint8 images \(N, C, H, W\)"):
        ImageData("toy", torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"train samples torch.uint8 \(3, 2, 2\) differ from"):
        ImageData("toy", data.train, torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
    points = ImageData("dots", torch.zeros(5, 2), torch.ones(3, 2))
    assert points.shape == (2,) and points.is_points and not data.is_points
    with pytest.raises(ValueError, match=r"train samples torch.float32 \(2,\) differ from"):
        ImageData("dots", torch.zeros(5, 2), torch.zeros(1, 1, 2, 2, dtype=torch.uint8))


def test_to_float():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8)
    torch.testing.assert_close(datasets.to_float(images), torch.tensor([0.0, 0.2, 1.0]))
    with pytest.raises(TypeError, match="expected uint8"):
        datasets.to_float(images.float())


# ---- real data (GANBENCH_DATA) ---------------------------------------------------------


@pytest.mark.realdata
@needs_data
@pytest.mark.parametrize(
    ("name", "first_train", "first_test", "mean"),
    [
        # Train means are the published normalisation constants 0.1307 and 0.2860.
        ("mnist", 27_525, 18_454, 0.1307),
        ("fashion_mnist", 76_247, 33_456, 0.2860),
    ],
)
def test_real_idx_datasets(name, first_train, first_test, mean):
    data = load_dataset(name, REAL)
    assert data.train.shape == (60_000, 1, 28, 28) and data.test.shape == (10_000, 1, 28, 28)
    assert data.train.dtype == torch.uint8 and data.train.is_contiguous()
    assert int(data.train[0].sum()) == first_train
    assert int(data.test[0].sum()) == first_test
    assert data.train.double().mean().item() / 255 == pytest.approx(mean, abs=1e-4)


@pytest.mark.realdata
@needs_data
def test_real_cifar10_staged_subset():
    """The staged exact 4,000 train images: the last 400 (10%) become the test split."""
    data = load_dataset("cifar10", REAL)
    assert data.train.shape == (3600, 3, 32, 32) and data.test.shape == (400, 3, 32, 32)
    assert data.train.dtype == torch.uint8 and data.test.is_contiguous()
    assert int(data.train[0].sum()) == 317_790
    assert int(data.test[0].sum()) == 215_670
    # The data README gives the per-channel mean / 255 of all 4,000 as (0.4916, 0.4818, 0.4447).
    both = torch.cat([data.train, data.test]).double()
    mean = (both.mean(dim=(0, 2, 3)) / 255).tolist()
    assert mean == pytest.approx([0.4916, 0.4818, 0.4447], abs=6e-5)


# ---- labels ---------------------------------------------------------------------------------


def test_idx_labels_are_read_when_their_files_are_there(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte.gz", images)
    assert not load_dataset("mnist", tmp_path).labelled  # images alone: unlabelled
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.array([7, 0, 9], np.uint8))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
    data = load_dataset("mnist", tmp_path)
    assert data.train_labels.dtype == torch.int64 and data.train_labels.tolist() == [7, 0, 9]
    assert data.test_labels.tolist() == [1, 2, 3] and DATASETS.get("mnist").classes == 10


def test_cifar10_npz_labels_follow_the_held_out_split(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (25, 32, 32, 3), dtype=np.uint8)
    y = np.arange(25, dtype=np.uint8) % 10
    (tmp_path / "cifar10").mkdir()
    np.savez(tmp_path / "cifar10" / "cifar10_train_first25.npz", x=x, y=y)
    data = load_dataset("cifar10", tmp_path)
    assert data.train_labels.tolist() == (np.arange(23) % 10).tolist()
    assert data.test_labels.tolist() == [3, 4]


def test_a_mixture_points_label_is_the_mode_it_was_drawn_from():
    data = load_dataset("grid")
    centres = torch.from_numpy(mixtures.GRID.centre_array).float()
    assert DATASETS.get("grid").classes == 25 and DATASETS.get("ring").classes == 8
    nearest = torch.cdist(data.test, centres).argmin(dim=1)  # sigma 0.05, modes 2 apart
    assert torch.equal(nearest, data.test_labels)


def test_labels_must_be_one_per_sample():
    with pytest.raises(ValueError, match=r"toy train_labels: expected one label per sample"):
        ImageData("toy", torch.zeros(3, 2), torch.zeros(2, 2), torch.zeros(2), torch.zeros(2))

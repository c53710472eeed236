"""Loaders on tiny files written in every supported layout (no real data needed)."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.datasets import (
    DEBIAN_FASHION_MNIST_DIR,
    DatasetNotFoundError,
    load_cifar10,
    load_cifar100,
    load_digits_images,
    load_fashion_mnist,
    load_image_folder,
    load_stl10,
)


# ---------------------------------------------------------------------------------- digits

def test_digits_images_shape_scale_and_labels():
    from sklearn.datasets import load_digits

    X, y = load_digits_images()
    assert X.shape == (1797, 8, 8, 1) and X.dtype == np.uint8
    assert y.dtype == np.int64 and sorted(np.unique(y).tolist()) == list(range(10))
    digits = load_digits()
    np.testing.assert_array_equal(y, digits.target)
    # 0..16 mapped onto 0..255: 16 -> 255, 8 -> 128 (127.5 rounded to even), 0 -> 0
    source = digits.images[..., None]
    assert np.all(X[source == 16] == 255) and np.all(X[source == 0] == 0)
    assert np.all(X[source == 8] == 128)

    bunch = load_digits_images(return_X_y=False)
    assert bunch.images is bunch.data
    np.testing.assert_array_equal(bunch.images, X)
    assert bunch.target_names.tolist() == [str(i) for i in range(10)]


# ---------------------------------------------------------------------------------- fashion

def _idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


def _write_fashion(directory, prefix, images, labels, gz):
    directory.mkdir(parents=True, exist_ok=True)
    files = ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels))
    for stem, array in files:
        data = _idx_bytes(array)
        if gz:
            with gzip.open(directory / (stem + ".gz"), "wb") as handle:
                handle.write(data)
        else:
            (directory / stem).write_bytes(data)


@pytest.mark.parametrize("layout", ["torchvision", "flat"])
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_layouts(tmp_path, layout, gz):
    rng = np.random.RandomState(0)
    train_images = rng.randint(0, 256, (5, 28, 28))
    train_labels = np.array([0, 3, 9, 3, 1])
    test_images = rng.randint(0, 256, (3, 28, 28))
    test_labels = np.array([2, 2, 7])
    directory = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision" else tmp_path
    _write_fashion(directory, "train", train_images, train_labels, gz)
    _write_fashion(directory, "t10k", test_images, test_labels, gz)

    X, y = load_fashion_mnist(tmp_path, split="train")
    assert X.shape == (5, 28, 28, 1) and X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(X[..., 0], train_images)
    np.testing.assert_array_equal(y, train_labels)

    bunch = load_fashion_mnist(str(tmp_path), split="test", return_X_y=False)
    np.testing.assert_array_equal(bunch.images[..., 0], test_images)
    np.testing.assert_array_equal(bunch.target, test_labels)
    assert bunch.target_names[9] == "Ankle boot"


def test_fashion_mnist_missing_names_both_ways(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as info:
        load_fashion_mnist(tmp_path)
    assert "download=True" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)
    # the folders it looked in, in order, for callers that word their own message (the CLI)
    assert info.value.searched == (tmp_path / "FashionMNIST" / "raw", tmp_path / "raw", tmp_path)


def test_fashion_mnist_download_only_when_allowed(tmp_path, monkeypatch):
    """download=True hands over to torchvision (faked here: no network), into the data home."""
    import torchvision.datasets

    import as3l_sklearn.datasets as datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            _write_fashion(Path(root) / "FashionMNIST" / "raw", "train" if train else "t10k",
                           np.ones((2, 28, 28)), [4, 5], gz=True)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "data_home"))
    with pytest.raises(DatasetNotFoundError):
        load_fashion_mnist(split="test")
    assert calls == []
    X, y = load_fashion_mnist(split="test", download=True)
    assert calls == [(str(tmp_path / "data_home"), False, True)]
    assert X.shape == (2, 28, 28, 1) and y.tolist() == [4, 5]
    X, y = load_fashion_mnist(split="test")  # found again without downloading
    assert len(calls) == 1 and y.tolist() == [4, 5]
    load_fashion_mnist(tmp_path / "mine", split="train", download=True)
    assert calls[-1] == (str(tmp_path / "mine"), True, True)


def test_fashion_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, split="validation")
    with pytest.raises(TypeError, match="root"):
        load_fashion_mnist(root=3)


def test_fashion_mnist_corrupt_file(tmp_path):
    _write_fashion(tmp_path, "train", np.zeros((2, 28, 28)), [0, 1], gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_fashion_mnist(tmp_path)
    path.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        load_fashion_mnist(tmp_path)


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_package():
    X, y = load_fashion_mnist(split="test")
    assert X.shape == (10000, 28, 28, 1) and X.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


# ---------------------------------------------------------------------------------- CIFAR

def _pickle(path, obj):
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def test_cifar10(tmp_path, monkeypatch):
    rng = np.random.RandomState(0)
    directory = tmp_path / "cifar-10-batches-py"
    directory.mkdir()
    batches = []
    for i in range(1, 6):
        images = rng.randint(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        labels = [i - 1, 9 - i]
        batches.append((images, labels))
        # stored as rows of 3072 bytes: the R plane, then G, then B
        _pickle(directory / f"data_batch_{i}", {"data": images.transpose(0, 3, 1, 2).reshape(2, -1),
                                                "labels": labels})
    test_images = rng.randint(0, 256, (3, 32, 32, 3)).astype(np.uint8)
    _pickle(directory / "test_batch", {"data": test_images.transpose(0, 3, 1, 2).reshape(3, -1),
                                       "labels": [4, 5, 6]})
    names = ["airplane", "automobile", "bird", "cat", "deer",
             "dog", "frog", "horse", "ship", "truck"]
    _pickle(directory / "batches.meta", {"label_names": names})

    X, y = load_cifar10(tmp_path)
    assert X.shape == (10, 32, 32, 3) and X.dtype == np.uint8
    np.testing.assert_array_equal(X, np.concatenate([b[0] for b in batches]))
    assert y.tolist() == [0, 8, 1, 7, 2, 6, 3, 5, 4, 4]

    # the same pixels as torchvision's reader (our fake files lack the md5 sums it checks)
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    reference = tv_cifar.CIFAR10(str(tmp_path), train=True, download=False)
    np.testing.assert_array_equal(X, reference.data)
    np.testing.assert_array_equal(y, reference.targets)

    bunch = load_cifar10(directory, split="test", return_X_y=False)  # the folder itself works too
    np.testing.assert_array_equal(bunch.images, test_images)
    assert bunch.target.tolist() == [4, 5, 6] and bunch.target_names[4] == "deer"


def test_cifar100_fine_and_coarse(tmp_path):
    rng = np.random.RandomState(1)
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    images = rng.randint(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    _pickle(directory / "train", {"data": images.transpose(0, 3, 1, 2).reshape(4, -1),
                                  "fine_labels": [0, 99, 50, 1], "coarse_labels": [0, 19, 10, 0]})
    _pickle(directory / "test", {"data": images[:1].transpose(0, 3, 1, 2).reshape(1, -1),
                                 "fine_labels": [7], "coarse_labels": [3]})
    _pickle(directory / "meta", {"fine_label_names": [f"f{i}" for i in range(100)],
                                 "coarse_label_names": [f"c{i}" for i in range(20)]})
    X, y = load_cifar100(tmp_path)
    np.testing.assert_array_equal(X, images)
    assert y.tolist() == [0, 99, 50, 1]
    bunch = load_cifar100(tmp_path, "test", label_type="coarse", return_X_y=False)
    assert bunch.target.tolist() == [3] and len(bunch.target_names) == 20
    with pytest.raises(ValueError, match="label_type"):
        load_cifar100(tmp_path, label_type="medium")


def test_cifar_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(tmp_path)
    with pytest.raises(ValueError, match="root"):
        load_cifar100(tmp_path / "nope")
    with pytest.raises(ValueError, match="The 'root' parameter of load_cifar10 must be an instance of 'str'"):
        load_cifar10(None)


# ---------------------------------------------------------------------------------- STL-10

def _stl_bytes(images):
    # the binary files store each image column-major per channel: (n, C, W, H) in C order
    return np.ascontiguousarray(images.transpose(0, 3, 2, 1)).tobytes()


def test_stl10_splits(tmp_path):
    rng = np.random.RandomState(2)
    directory = tmp_path / "stl10_binary"
    directory.mkdir()
    train = rng.randint(0, 256, (2, 96, 96, 3)).astype(np.uint8)
    test = rng.randint(0, 256, (1, 96, 96, 3)).astype(np.uint8)
    unlabeled = rng.randint(0, 256, (3, 96, 96, 3)).astype(np.uint8)
    (directory / "train_X.bin").write_bytes(_stl_bytes(train))
    (directory / "train_y.bin").write_bytes(bytes([1, 10]))
    (directory / "test_X.bin").write_bytes(_stl_bytes(test))
    (directory / "test_y.bin").write_bytes(bytes([5]))
    (directory / "unlabeled_X.bin").write_bytes(_stl_bytes(unlabeled))
    (directory / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")

    X, y = load_stl10(tmp_path)
    np.testing.assert_array_equal(X, train)
    assert y.tolist() == [0, 9] and y.dtype == np.int64
    X, y = load_stl10(tmp_path, "test")
    np.testing.assert_array_equal(X, test)
    assert y.tolist() == [4]
    X, y = load_stl10(tmp_path, "unlabeled")
    np.testing.assert_array_equal(X, unlabeled)
    assert y.tolist() == [-1, -1, -1]
    bunch = load_stl10(directory, "train+unlabeled", return_X_y=False)
    np.testing.assert_array_equal(bunch.images, np.concatenate([train, unlabeled]))
    assert bunch.target.tolist() == [0, 9, -1, -1, -1]
    assert bunch.target_names[9] == "class9"

    with pytest.raises(ValueError, match="split"):
        load_stl10(tmp_path, "val")
    (directory / "test_y.bin").unlink()
    with pytest.raises(DatasetNotFoundError, match="test_y.bin"):
        load_stl10(tmp_path, "test")


def test_stl10_orientation_matches_torchvision(tmp_path, monkeypatch):
    """Our numpy reader gives the same pixels as torchvision's STL10 on the same bytes."""
    from torchvision.datasets import STL10

    rng = np.random.RandomState(3)
    directory = tmp_path / "stl10_binary"
    directory.mkdir()
    raw = rng.randint(0, 256, 2 * 3 * 96 * 96).astype(np.uint8)
    raw.tofile(directory / "test_X.bin")
    (directory / "test_y.bin").write_bytes(bytes([1, 2]))
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)  # our fake files lack the md5
    reference = STL10(str(tmp_path), split="test", download=False)
    mine, y = load_stl10(tmp_path, "test")
    np.testing.assert_array_equal(mine, reference.data.transpose(0, 2, 3, 1))  # n C H W -> n H W C
    np.testing.assert_array_equal(y, reference.labels)


# ---------------------------------------------------------------------------------- folders

def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)


def test_image_folder_labels_unlabeled_and_resize(tmp_path):
    rng = np.random.RandomState(4)
    cat = rng.randint(0, 256, (6, 5, 3)).astype(np.uint8)
    _save(tmp_path / "cat" / "b.png", cat)
    _save(tmp_path / "cat" / "nested" / "c.png", cat)
    _save(tmp_path / "dog" / "a.png", rng.randint(0, 256, (6, 5, 3)).astype(np.uint8))
    _save(tmp_path / "unlabeled" / "u.png", rng.randint(0, 256, (12, 10, 3)).astype(np.uint8))
    _save(tmp_path / "loose.png", rng.randint(0, 256, (6, 5)).astype(np.uint8))  # grayscale
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty_class").mkdir()
    (tmp_path / ".hidden").mkdir()
    _save(tmp_path / ".hidden" / "h.png", cat)

    bunch = load_image_folder(tmp_path, return_X_y=False)
    # most common size is 6x5 (H x W); mixed gray/colour -> RGB
    assert bunch.images.shape == (5, 6, 5, 3) and bunch.images.dtype == np.uint8
    assert bunch.target.tolist() == [0, 0, 1, -1, -1]
    assert bunch.target_names.tolist() == ["cat", "dog"]
    names = [p.split("/")[-1] for p in bunch.filenames]
    assert names == ["b.png", "c.png", "a.png", "loose.png", "u.png"]
    np.testing.assert_array_equal(bunch.images[0], cat)  # not resized, not altered
    gray = bunch.images[3]
    assert np.all(gray[..., 0] == gray[..., 1])  # grayscale expanded to RGB

    X, y = load_image_folder(tmp_path, image_size=4)
    assert X.shape == (5, 4, 4, 3)
    X, y = load_image_folder(tmp_path, image_size=(3, 7), color_mode="grayscale")
    assert X.shape == (5, 3, 7, 1)


def test_image_folder_grayscale_and_only_unlabeled(tmp_path):
    _save(tmp_path / "x.png", np.full((4, 4), 7, dtype=np.uint8))
    _save(tmp_path / "y.png", np.full((4, 4), 9, dtype=np.uint8))
    X, y = load_image_folder(tmp_path)
    assert X.shape == (2, 4, 4, 1) and X[:, 0, 0, 0].tolist() == [7, 9]
    assert y.tolist() == [-1, -1]


def test_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="path=.*does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="path=.*holds no image"):
        load_image_folder(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="path=.*is not a folder"):
        load_image_folder(tmp_path / "file.png")
    with pytest.raises(TypeError, match="path"):
        load_image_folder(None)
    (tmp_path / "file.png").unlink()
    _save(tmp_path / "ok.png", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(tmp_path, image_size=(0, 3))
    with pytest.raises(ValueError, match="color_mode"):
        load_image_folder(tmp_path, color_mode="cmyk")

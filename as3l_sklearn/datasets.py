"""Image data sets as ``uint8`` arrays: the embedded default, benchmarks, and your own folders.

Every loader returns images ``X`` as a ``uint8`` array of shape ``n x H x W x C`` (the layout
that :func:`as3l_sklearn.utils.check_images` and every estimator take) and labels ``y`` as
``int64``, with ``-1`` marking unlabeled samples (STL-10's unlabeled split, loose images of an
image folder), as in :mod:`sklearn.semi_supervised`.

Return type
-----------
By default each loader returns the tuple ``(X, y)``. With ``return_X_y=False`` it returns a
:class:`sklearn.utils.Bunch` in the manner of :func:`sklearn.datasets.load_digits`, with

* ``images`` -- the ``uint8`` ``n x H x W x C`` array (``X``);
* ``data`` -- the same array (what the estimators take as ``X``; it is *not* flattened);
* ``target`` -- ``int64`` labels, ``-1`` for unlabeled samples;
* ``target_names`` -- class names, ``target_names[target[i]]`` is the name of sample ``i``;
* ``DESCR`` -- where the data came from;

and loader-specific extras (``files``, ``filenames`` and ``skipped`` for
:func:`load_image_folder`). The default differs
from scikit-learn's (``return_X_y=False``) on purpose: ``X, y = load_fashion_mnist()`` is how
the rest of this project and its examples use the loaders.

Files are parsed with numpy only; torchvision is used only to download Fashion-MNIST when the
caller passes ``download=True``. Nothing is ever downloaded otherwise.

Examples
--------
>>> from as3l_sklearn.datasets import load_digits_images
>>> X, y = load_digits_images()
>>> X.shape, X.dtype, y.dtype
((1797, 8, 8, 1), dtype('uint8'), dtype('int64'))
"""

from __future__ import annotations

import gzip
import os
import pickle
import stat
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .utils import check_image_size
from .utils._param_validation import ImageSize, Integral, Interval, StrOptions, check_param, validate_params

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "DatasetNotFoundError",
    "ImageFolderArray",
    "load_cifar10",
    "load_cifar100",
    "load_digits_images",
    "load_fashion_mnist",
    "load_image_folder",
    "load_stl10",
]

#: Where ``apt-get install dataset-fashion-mnist`` puts the Fashion-MNIST files.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

IMAGE_EXTENSIONS = (
    ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
)


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """The data set's files (or the given folder) are not there.

    Both a :class:`FileNotFoundError` and a :class:`ValueError`, so either ``except`` catches it.

    Attributes
    ----------
    searched : tuple of pathlib.Path
        The folders looked in, in order, when the loader searches several
        (:func:`load_fashion_mnist`); empty otherwise.
    """

    def __init__(self, message: str, *, searched=()):
        super().__init__(message)
        self.searched = tuple(Path(folder) for folder in searched)


def _result(X, y, target_names, return_X_y, descr, **extra):
    if not isinstance(X, ImageFolderArray):  # a lazy folder stays lazy
        X = np.ascontiguousarray(X, dtype=np.uint8)
    y = np.asarray(y, dtype=np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, images=X, target=y, target_names=np.asarray(target_names, dtype=object),
                 DESCR=descr, **extra)


#: constraints of the loaders' arguments
_PATH = [str, os.PathLike]
_TRAIN_TEST = [StrOptions({"train", "test"})]


def _check_root(root, name="root") -> Path:
    """``root`` as a path to an existing directory (its type is the loader's constraint)."""
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"{name}={str(root)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{name}={str(root)!r} is not a directory")
    return path


# --------------------------------------------------------------------------------------------
# digits (embedded default)


@validate_params({"return_X_y": ["boolean"]}, prefer_skip_nested_validation=True)
def load_digits_images(*, return_X_y: bool = True):
    """scikit-learn's bundled handwritten digits as ``uint8`` images (the embedded default).

    The 1,797 images of :func:`sklearn.datasets.load_digits` hold integers ``0..16``; they are
    rescaled to ``0..255`` (``round(v * 255 / 16)``) and given a channel axis, so they look to
    the estimators like any other grayscale image set. Always available, no download.

    Parameters
    ----------
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring).

    Returns
    -------
    X : ndarray of shape (1797, 8, 8, 1), uint8
    y : ndarray of shape (1797,), int64
        Digits ``0..9``; ``target_names`` are ``"0"`` .. ``"9"``.

    Examples
    --------
    >>> X, y = load_digits_images()
    >>> int(X.max()), sorted(set(y.tolist())) == list(range(10))
    (255, True)
    >>> load_digits_images(return_X_y=False).target_names[:3].tolist()
    ['0', '1', '2']
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[..., None]
    names = [str(t) for t in digits.target_names]
    return _result(X, digits.target, names, return_X_y,
                   "scikit-learn's digits (UCI optdigits), 8x8 grayscale, rescaled to 0..255")


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (idx files)


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (the MNIST format): magic, big-endian dims, then uint8 data."""
    with _open_maybe_gz(path) as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise ValueError(f"{path} is truncated: expected {expected} bytes of data for shape "
                         f"{tuple(dims)}, found {len(raw) - offset}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(tuple(dims))


def _find_idx(directory: Path, stem: str):
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _default_data_home() -> Path:
    # sklearn.datasets.get_data_home() without its side effect of creating the folder
    return Path(os.environ.get("SCIKIT_LEARN_DATA", "~/scikit_learn_data")).expanduser()


def _fashion_mnist_dirs(root):
    if root is None:
        # the Debian package, then where download=True puts the files when root is None
        return [DEBIAN_FASHION_MNIST_DIR, _default_data_home() / "FashionMNIST" / "raw"]
    root = Path(root).expanduser()
    return [root / "FashionMNIST" / "raw", root / "raw", root]


@validate_params(
    {"root": [*_PATH, None], "split": _TRAIN_TEST, "download": ["boolean"], "return_X_y": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_fashion_mnist(root=None, split: str = "train", *, download: bool = False,
                       return_X_y: bool = True):
    """Fashion-MNIST (60,000 train / 10,000 test 28x28 grayscale images of 10 clothing classes).

    Looked up, in order:

    * ``root=None``: the files of Debian's ``dataset-fashion-mnist`` package in
      ``/usr/share/datasets/fashion-mnist/`` (``sudo apt-get install dataset-fashion-mnist``),
      then an earlier download in ``<scikit-learn data home>/FashionMNIST/raw/``;
    * ``root`` given: a torchvision root ``<root>/FashionMNIST/raw/``, or ``<root>/raw/``, or the
      files directly in ``<root>``;

    each holding ``{train,t10k}-images-idx3-ubyte`` and ``{train,t10k}-labels-idx1-ubyte``,
    gzipped (``.gz``) or not. When they are absent and ``download=True``, torchvision downloads
    them into ``root`` (default: scikit-learn's data home, ``$SCIKIT_LEARN_DATA`` or
    ``~/scikit_learn_data``); otherwise a
    :class:`DatasetNotFoundError` (a ``FileNotFoundError`` and a ``ValueError``) says how to get
    them.

    Parameters
    ----------
    root : str or path-like, optional
        Directory to look in (and to download into); ``None`` looks at the Debian package.
    split : {"train", "test"}, default="train"
    download : bool, default=False
        Allow a download (network access) when the files are not found.
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring).

    Returns
    -------
    X : ndarray of shape (n, 28, 28, 1), uint8
    y : ndarray of shape (n,), int64
        Classes ``0..9``: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker,
        Bag, Ankle boot.

    Examples
    --------
    >>> X, y = load_fashion_mnist(split="test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 28, 28, 1)
    """
    prefix = "train" if split == "train" else "t10k"
    images_stem, labels_stem = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def find():
        for directory in _fashion_mnist_dirs(root):
            images, labels = _find_idx(directory, images_stem), _find_idx(directory, labels_stem)
            if images is not None and labels is not None:
                return images, labels
        return None

    found = find()
    if found is None and download:
        from torchvision.datasets import FashionMNIST

        target = _default_data_home() if root is None else Path(root).expanduser()
        FashionMNIST(str(target), train=(split == "train"), download=True)
        found = find()
    if found is None:
        searched = ", ".join(str(d) for d in _fashion_mnist_dirs(root))
        raise DatasetNotFoundError(
            f"Fashion-MNIST {split!r} files ({images_stem}[.gz], {labels_stem}[.gz]) not found in "
            f"{searched}. Either install the Debian package (sudo apt-get install "
            "dataset-fashion-mnist; then root=None finds it) or pass download=True to fetch them "
            "with torchvision into root (network access needed).",
            searched=_fashion_mnist_dirs(root),
        )
    images_path, labels_path = found
    X = _read_idx(images_path)
    y = _read_idx(labels_path)
    if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{images_path} and {labels_path} do not match: images {X.shape}, "
                         f"labels {y.shape}")
    return _result(X[..., None], y, FASHION_MNIST_CLASSES, return_X_y,
                   f"Fashion-MNIST {split} split, read from {images_path.parent}")


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 (torchvision's python pickle batches)


def _unpickle(path: Path) -> dict:
    # The CIFAR batches are Python pickles (as torchvision reads them): only load files you trust.
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="latin1")


def _cifar_dir(root, folder: str) -> Path:
    root = _check_root(root)
    for candidate in (root / folder, root):
        if (candidate / ("batches.meta" if folder.startswith("cifar-10-") else "meta")).is_file():
            return candidate
    raise DatasetNotFoundError(
        f"{folder}/ not found under root={str(root)!r}. Expected torchvision's layout "
        f"<root>/{folder}/ (download it once with torchvision.datasets."
        f"{'CIFAR10' if folder.startswith('cifar-10-') else 'CIFAR100'}(root, download=True))"
    )


def _cifar_images(data) -> np.ndarray:
    data = np.asarray(data, dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _read_cifar(directory: Path, batch_names, label_key: str, meta_name: str, names_key: str,
                dataset: str):
    """Images, labels and class names of the pickled batches ``batch_names`` in ``directory``."""
    missing = [n for n in batch_names if not (directory / n).is_file()]
    if missing:
        raise DatasetNotFoundError(f"{dataset} files {missing} missing in {directory}")
    batches = [_unpickle(directory / n) for n in batch_names]
    X = np.concatenate([_cifar_images(b["data"]) for b in batches])
    y = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
    return X, y, _unpickle(directory / meta_name)[names_key]


@validate_params({"root": _PATH, "split": _TRAIN_TEST, "return_X_y": ["boolean"]},
                 prefer_skip_nested_validation=True)
def load_cifar10(root, split: str = "train", *, return_X_y: bool = True):
    """CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, 10 classes) from a local root.

    Reads torchvision's layout ``<root>/cifar-10-batches-py/`` (``data_batch_1`` ..
    ``data_batch_5``, ``test_batch``, ``batches.meta``); ``root`` may also be that folder.
    These files are Python pickles: load only files you trust.

    Parameters
    ----------
    root : str or path-like
    split : {"train", "test"}, default="train"
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring).

    Returns
    -------
    X : ndarray of shape (n, 32, 32, 3), uint8
    y : ndarray of shape (n,), int64

    Examples
    --------
    >>> X, y = load_cifar10("~/data", split="test")  # doctest: +SKIP
    """
    directory = _cifar_dir(root, "cifar-10-batches-py")
    names = ["data_batch_%d" % i for i in range(1, 6)] if split == "train" else ["test_batch"]
    X, y, class_names = _read_cifar(directory, names, "labels", "batches.meta", "label_names",
                                    "CIFAR-10")
    return _result(X, y, class_names, return_X_y,
                   f"CIFAR-10 {split} split, read from {directory}")


@validate_params(
    {"root": _PATH, "split": _TRAIN_TEST, "label_type": [StrOptions({"fine", "coarse"})],
     "return_X_y": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_cifar100(root, split: str = "train", *, label_type: str = "fine",
                  return_X_y: bool = True):
    """CIFAR-100 (50,000 train / 10,000 test 32x32 colour images) from a local root.

    Reads torchvision's layout ``<root>/cifar-100-python/`` (``train``, ``test``, ``meta``);
    ``root`` may also be that folder. These files are Python pickles: load only files you trust.

    Parameters
    ----------
    root : str or path-like
    split : {"train", "test"}, default="train"
    label_type : {"fine", "coarse"}, default="fine"
        The 100 fine classes or the 20 coarse superclasses.
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring).

    Returns
    -------
    X : ndarray of shape (n, 32, 32, 3), uint8
    y : ndarray of shape (n,), int64

    Examples
    --------
    >>> X, y = load_cifar100("~/data", split="test")  # doctest: +SKIP
    """
    directory = _cifar_dir(root, "cifar-100-python")
    X, y, class_names = _read_cifar(directory, [split], f"{label_type}_labels", "meta",
                                    f"{label_type}_label_names", "CIFAR-100")
    return _result(X, y, class_names, return_X_y,
                   f"CIFAR-100 {split} split ({label_type} labels), read from {directory}")


# --------------------------------------------------------------------------------------------
# STL-10 (binary files)


def _stl10_images(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype=np.uint8)
    if data.size % (3 * 96 * 96):
        raise ValueError(f"{path} does not hold whole 3x96x96 images ({data.size} bytes)")
    # stored column-major per channel: (n, C, W, H) in C order
    return data.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)


@validate_params(
    {"root": _PATH, "split": [StrOptions({"train", "test", "unlabeled", "train+unlabeled"})],
     "return_X_y": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def load_stl10(root, split: str = "train", *, return_X_y: bool = True):
    """STL-10 (96x96 colour images, 10 classes; 5,000 train, 8,000 test, 100,000 unlabeled).

    Reads the binary layout ``<root>/stl10_binary/`` (``train_X.bin``, ``train_y.bin``,
    ``test_X.bin``, ``test_y.bin``, ``unlabeled_X.bin``, ``class_names.txt``) that
    ``torchvision.datasets.STL10(root, download=True)`` leaves; ``root`` may also be that folder.
    The unlabeled images get ``y = -1``. The whole unlabeled split takes 2.8 GB of memory.

    Parameters
    ----------
    root : str or path-like
    split : {"train", "test", "unlabeled", "train+unlabeled"}, default="train"
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring).

    Returns
    -------
    X : ndarray of shape (n, 96, 96, 3), uint8
    y : ndarray of shape (n,), int64
        Classes ``0..9`` (the files store ``1..10``), ``-1`` for unlabeled images.

    Examples
    --------
    >>> X, y = load_stl10("~/data", split="train+unlabeled")  # doctest: +SKIP
    """
    root = _check_root(root)
    directory = root / "stl10_binary" if (root / "stl10_binary").is_dir() else root
    parts = split.split("+")
    needed = []
    for part in parts:
        needed.append(f"{part}_X.bin")
        if part != "unlabeled":
            needed.append(f"{part}_y.bin")
    missing = [n for n in needed if not (directory / n).is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"STL-10 files {missing} not found in {directory}. Expected the binary layout "
            "<root>/stl10_binary/ (download it once with torchvision.datasets.STL10(root, "
            "download=True))"
        )
    images, labels = [], []
    for part in parts:
        X_part = _stl10_images(directory / f"{part}_X.bin")
        if part == "unlabeled":
            y_part = np.full(X_part.shape[0], -1, dtype=np.int64)
        else:
            y_part = np.fromfile(directory / f"{part}_y.bin", dtype=np.uint8).astype(np.int64) - 1
            if y_part.shape[0] != X_part.shape[0]:
                raise ValueError(f"{part}_X.bin has {X_part.shape[0]} images but {part}_y.bin "
                                 f"has {y_part.shape[0]} labels")
        images.append(X_part)
        labels.append(y_part)
    X = images[0] if len(images) == 1 else np.concatenate(images)
    y = np.concatenate(labels)
    names_file = directory / "class_names.txt"
    if names_file.is_file():
        names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    else:
        names = ["airplane", "bird", "car", "cat", "deer",
                 "dog", "horse", "monkey", "ship", "truck"]
    return _result(X, y, names, return_X_y, f"STL-10 {split} split, read from {directory}")


# --------------------------------------------------------------------------------------------
# a user's own folder of images

#: Longer side, in pixels, that the default image size is capped at (``max_size``).
DEFAULT_MAX_SIZE = 256

# EXIF orientations 5..8 turn the picture a quarter turn: width and height swap
_QUARTER_TURN_ORIENTATIONS = (5, 6, 7, 8)
_GRAY_MODES = ("1", "L", "I", "I;16", "F")


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def _folder_key(path) -> tuple:
    """Identity of a folder on disk, the same whichever link or path leads to it."""
    status = os.stat(path)
    return status.st_dev, status.st_ino


def _image_files(directory: Path, visited: set) -> list:
    """Image files under ``directory`` (recursively, following links), skipping hidden entries.

    ``visited`` holds the identities of the folders already read (or reserved for another
    class); a folder reached again -- a link back to an ancestor, a loop between two folders,
    a link into another class folder -- is skipped with a warning, so that no image is read
    twice or under another class.
    """
    files = []

    def report(error):
        warnings.warn(f"load_image_folder: cannot list folder {error.filename}: {error}",
                      UserWarning, stacklevel=4)

    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True, onerror=report):
        kept = []
        for name in sorted(dirnames):
            if name.startswith("."):
                continue
            sub = os.path.join(dirpath, name)
            try:
                key = _folder_key(sub)
            except OSError:
                continue  # a dangling link
            if key in visited:
                warnings.warn(f"load_image_folder: skipped {sub}: it leads to a folder that is "
                              "already read (a link loop or a second link to it)",
                              UserWarning, stacklevel=5)
                continue
            visited.add(key)
            kept.append(name)
        dirnames[:] = kept
        files.extend(Path(dirpath) / f for f in filenames if _is_image_name(f))
    return sorted(files, key=lambda f: f.parts)


def _folder_entries(root: Path, labels: str, unlabeled_dir: str) -> list:
    """``(file, class name or None)`` for every image file, in the order of the returned ``X``."""
    # the root and every folder above it: a link to any of them leads back into the root
    visited = {_folder_key(folder) for folder in [root, *root.resolve().parents]}
    if labels == "none":
        return [(f, None) for f in _image_files(root, visited)]

    subdirs = []
    for sub in sorted(root.iterdir()):
        if sub.name.startswith(".") or not sub.is_dir():
            continue
        key = _folder_key(sub)
        if key in visited:
            warnings.warn(f"load_image_folder: skipped {sub}: it leads to a folder that is "
                          "already read", UserWarning, stacklevel=4)
            continue
        # reserved before any walk, so that a link inside one class folder into another (or
        # back to the root) is skipped instead of labelling that folder's images twice
        visited.add(key)
        subdirs.append(sub)
    entries = []
    for class_dir in subdirs:
        if class_dir.name != unlabeled_dir:
            entries.extend((f, class_dir.name) for f in _image_files(class_dir, visited))
    loose = sorted((f for f in root.iterdir() if _is_image_name(f.name) and not f.is_dir()),
                   key=lambda f: f.parts)
    unlabeled_root = root / unlabeled_dir
    if unlabeled_root in subdirs:
        loose += _image_files(unlabeled_root, visited)
    entries.extend((f, None) for f in loose)
    return entries


def _not_regular_file(file: Path):
    """Why ``file`` is not a plain file (opening a FIFO would block for ever), or None.

    A file that cannot be examined at all (a dangling link) raises :class:`OSError`.
    """
    if not stat.S_ISREG(os.stat(file).st_mode):
        return "it is not a regular file (a pipe, device or socket)"
    return None


def _orientation(picture) -> int:
    """The EXIF orientation tag (1 = upright) read with the header, without decoding pixels."""
    from PIL import Image

    try:
        # Image.getexif reads the EXIF block parsed with the header (JPEG, WebP, TIFF); PNG's
        # own getexif would decode every pixel to find a late eXIf chunk
        return int(Image.Image.getexif(picture).get(0x0112, 1))
    except Exception:  # a damaged EXIF block does not make the picture unreadable
        return 1


def _read_header(file: Path):
    """``(width, height, mode)`` as the picture will be after EXIF orientation; no pixel read."""
    from PIL import Image

    with Image.open(file) as picture:
        width, height = picture.size
        if _orientation(picture) in _QUARTER_TURN_ORIENTATIONS:
            width, height = height, width
        return width, height, picture.mode


def _read_resized(file: Path, mode: str, width: int, height: int) -> np.ndarray:
    """One picture, upright, in ``mode``, resized to ``width x height``: ``H x W x C`` uint8.

    Only this picture is held at full size, and only until the function returns.
    """
    from PIL import Image, ImageOps

    with Image.open(file) as picture:
        if picture.format in ("JPEG", "MPO"):
            # the JPEG decoder can scale by 1/2, 1/4 or 1/8 while decoding: a 12-megapixel
            # photo then never exists at full size. Ask in stored (pre-rotation) orientation.
            turned = _orientation(picture) in _QUARTER_TURN_ORIENTATIONS
            picture.draft(None, (height, width) if turned else (width, height))
        picture.load()
        try:
            ImageOps.exif_transpose(picture, in_place=True)
        except Exception:  # a damaged EXIF block: keep the picture as stored
            pass
        converted = _to_mode(picture, mode)
        if converted.size != (width, height):
            converted = converted.resize((width, height), Image.BILINEAR)
        channels = 1 if mode == "L" else 3
        return np.asarray(converted, dtype=np.uint8).reshape(height, width, channels)


@validate_params(
    {
        "path": _PATH,
        "image_size": [ImageSize(1), None],
        "labels": [StrOptions({"subfolders", "none"})],
        "color_mode": [StrOptions({"auto", "rgb", "grayscale"})],
        "max_size": [Interval(Integral, 1, None, closed="left"), None],
        "on_error": [StrOptions({"raise", "warn"})],
        "unlabeled_dir": [str],
        "return_X_y": ["boolean"],
        "lazy": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(path, image_size=None, *, labels: str = "subfolders",
                      color_mode: str = "auto", max_size=DEFAULT_MAX_SIZE,
                      on_error: str = "raise", unlabeled_dir: str = "unlabeled",
                      return_X_y: bool = True, lazy: bool = False):
    """Load a folder of images, resized while loading; optionally labeled by sub-folder.

    With ``labels="subfolders"`` (the default) the layout is that of
    :class:`torchvision.datasets.ImageFolder`, plus unlabeled images::

        path/
            cat/ img1.png img2.jpg ...          -> label of "cat"
            dog/ ...                            -> label of "dog"
            unlabeled/ a.png b.png ...          -> -1
            c.png d.png ...                     -> -1

    Classes are the first-level sub-folder names in sorted order (images in nested folders
    below a class folder belong to that class). With ``labels="none"`` every image under
    ``path``, at any depth, is unlabeled (``y`` is all ``-1``, no class names): the right
    reading of a folder of photos whose sub-folders are not classes.

    Hidden files and folders and files without an image extension are skipped. Links are
    followed, but a folder is read once: a link back to an ancestor, a loop, or a link into
    another class folder is skipped with a warning. Anything that is not a regular file (a
    pipe named ``x.png``) is skipped with a warning naming it.

    Pictures are read one at a time: a first pass reads only each file's header (size, mode,
    EXIF orientation), then each picture is decoded (JPEGs at a reduced scale when that is
    enough), turned upright by its EXIF orientation, converted, resized and written into the
    output array before the next one is opened. With ``lazy=True`` the second pass is left
    out: ``X`` is an :class:`ImageFolderArray` that decodes the pictures when they are
    indexed, so a folder larger than memory streams through the estimators batch by batch.

    Parameters
    ----------
    path : str or path-like
        The folder.
    image_size : int or (height, width), optional
        Size every image is resized to (bilinear). ``None``: the most common size among the
        (upright) images, scaled down, keeping its aspect ratio, so that its longer side is at
        most ``max_size``.
    labels : {"subfolders", "none"}, default="subfolders"
        ``"subfolders"``: first-level sub-folders are classes, images in ``unlabeled_dir`` and
        directly in ``path`` are unlabeled. ``"none"``: every image is unlabeled.
    color_mode : {"auto", "rgb", "grayscale"}, default="auto"
        ``"auto"`` gives 1 channel when every image is grayscale (read from the headers),
        else 3 (RGB).
    max_size : int or None, default=256
        Cap, in pixels, on the longer side of the default size (``image_size=None``), so that
        a folder of 4032x3024 phone photos gives 256x192 images, not a 1.5 GB array. ``None``
        keeps the most common size whatever it is. Ignored when ``image_size`` is given.
    on_error : {"raise", "warn"}, default="raise"
        What an unreadable image file does: ``"raise"`` a :class:`ValueError` naming it;
        ``"warn"``: skip it with a warning naming it (the Bunch lists it in ``skipped``).
    unlabeled_dir : str, default="unlabeled"
        Name of the sub-folder whose images are unlabeled (``labels="subfolders"``).
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring)
        that also holds, in the order of ``X``, ``files`` (each image's path relative to
        ``path``, with ``/`` separators: the name the annotation round trip matches on) and
        ``filenames`` (absolute paths), and ``skipped`` (relative paths of the files left
        out: unreadable with ``on_error="warn"``, or not regular files).
    lazy : bool, default=False
        Return ``X`` as an :class:`ImageFolderArray` (same shape and dtype; pictures
        decoded and resized when indexed) instead of reading every picture now. Only the
        headers are read here, so a file whose header reads but whose pixels do not is
        reported (a ``ValueError`` naming it) when it is first indexed, whatever ``on_error``.
        The estimators (``SimSiamEmbedder``, ``PriorGuidedFlexMatchClassifier``) read it one
        batch at a time; ``SimSiamEmbedder(num_workers=4)`` decodes in 4 worker processes.

    Returns
    -------
    X : ndarray of shape (n, H, W, C), uint8, or ImageFolderArray when ``lazy=True``
    y : ndarray of shape (n,), int64
        Index into the sorted class names, ``-1`` for unlabeled images.

    Raises
    ------
    ValueError
        If ``path`` does not exist, is not a folder, or holds no readable image; if an image
        cannot be read and ``on_error="raise"`` (the message names the file).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["cat/a.png", "dog/b.png", "unlabeled/c.png"]:
    ...     (root / name).parent.mkdir(exist_ok=True)
    ...     Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(root / name)
    >>> X, y = load_image_folder(root)
    >>> X.shape, y.tolist()
    ((3, 4, 4, 1), [0, 1, -1])
    >>> bunch = load_image_folder(root, labels="none", return_X_y=False)
    >>> bunch.files.tolist(), bunch.target.tolist()
    (['cat/a.png', 'dog/b.png', 'unlabeled/c.png'], [-1, -1, -1])
    """
    root = Path(path).expanduser().absolute()
    if not root.exists():
        raise DatasetNotFoundError(f"path={str(path)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"path={str(path)!r} is not a folder")
    entries = _folder_entries(root, labels, unlabeled_dir)
    if not entries:
        where = ("at any depth" if labels == "none" else
                 f"in class sub-folders, in {unlabeled_dir}/ and in the folder itself")
        raise ValueError(f"path={str(path)!r} holds no image (looked for "
                         f"{', '.join(IMAGE_EXTENSIONS)} {where})")
    reader = _FolderReader(root, on_error, path)
    kept, headers = reader.read_headers(entries)
    if color_mode == "auto":
        gray = all(mode in _GRAY_MODES for _, _, mode in headers)
        color_mode = "grayscale" if gray else "rgb"
    height, width = _output_size(image_size, headers, max_size)
    if lazy:
        X = ImageFolderArray([str(f) for f, _ in kept], image_size=(height, width), color_mode=color_mode)
        return reader.result(X, kept, return_X_y, f"image folder {root} (lazy)")
    X, kept = reader.read_pixels(kept, "L" if color_mode == "grayscale" else "RGB", height, width)
    return reader.result(X, kept, return_X_y, f"image folder {root}")


def _output_size(image_size, headers, max_size) -> tuple:
    """``(height, width)`` of the loaded images: ``image_size``, else the most common
    (upright) size of the headers, scaled down so that its longer side is at most ``max_size``."""
    if image_size is not None:
        return check_image_size(image_size)
    # PIL sizes are (width, height); the most common wins, ties go to the first seen
    width, height = Counter((w, h) for w, h, _ in headers).most_common(1)[0][0]
    if max_size is not None and max(width, height) > max_size:
        scale = max_size / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return height, width


class _FolderReader:
    """The two passes of :func:`load_image_folder` over the files of ``root``, with the
    ``on_error`` policy and the list of files left out (``skipped``, relative paths).

    Warnings name the caller of :func:`load_image_folder` (``stacklevel`` counts this method,
    the pass, ``load_image_folder`` and its parameter check).
    """

    def __init__(self, root: Path, on_error: str, path):
        self.root = root
        self.on_error = on_error
        self.path = path  # as given, for the messages
        self.skipped = []

    def relative(self, file: Path) -> str:
        return file.relative_to(self.root).as_posix()

    def leave_out(self, file: Path, exc, *, problem=None) -> None:
        """An unreadable file: raise with ``on_error="raise"`` (a file that is not a regular
        file, ``problem``, is always left out), else warn and record it in ``skipped``."""
        if problem is None and self.on_error == "raise":
            raise ValueError(f"cannot read image {file}: {exc} (pass on_error='warn' to skip "
                             "unreadable files)") from exc
        message = f"skipped {file}: {problem}" if problem else f"skipped unreadable image {file}: {exc}"
        warnings.warn(f"load_image_folder: {message}", UserWarning, stacklevel=5)
        self.skipped.append(self.relative(file))

    def read_headers(self, entries):
        """Pass 1, headers only (size, mode, orientation; nothing decoded): the entries kept
        and their ``(width, height, mode)``."""
        headers, kept = [], []
        for file, class_name in entries:
            try:
                problem = _not_regular_file(file)
                if problem is not None:
                    self.leave_out(file, None, problem=problem)
                    continue
                headers.append(_read_header(file))
            except Exception as exc:  # OSError for a dangling link; PIL raises many types
                self.leave_out(file, exc)
                continue
            kept.append((file, class_name))
        if not kept:
            raise ValueError(f"path={str(self.path)!r} holds no readable image; skipped: {self.skipped}")
        return kept, headers

    def read_pixels(self, kept, mode: str, height: int, width: int):
        """Pass 2, one picture at a time straight into the output array: ``(X, kept)``."""
        X = np.empty((len(kept), height, width, 1 if mode == "L" else 3), dtype=np.uint8)
        loaded = np.ones(len(kept), dtype=bool)
        for i, (file, _) in enumerate(kept):
            try:
                X[i] = _read_resized(file, mode, width, height)
            except Exception as exc:  # a header that reads but pixels that do not (truncated)
                self.leave_out(file, exc)
                loaded[i] = False
        if loaded.all():
            return X, kept
        kept = [entry for entry, ok in zip(kept, loaded) if ok]
        if not kept:
            raise ValueError(f"path={str(self.path)!r} holds no readable image; skipped: {self.skipped}")
        return X[loaded], kept

    def result(self, X, kept, return_X_y: bool, description: str):
        """``(X, y)`` or the Bunch; classes are the sub-folders with at least one image kept,
        in sorted order."""
        class_names = sorted({name for _, name in kept if name is not None})
        code = {name: i for i, name in enumerate(class_names)}
        y = np.array([-1 if name is None else code[name] for _, name in kept], dtype=np.int64)
        return _result(X, y, class_names, return_X_y, description,
                       filenames=np.array([str(f) for f, _ in kept], dtype=object),
                       files=np.array([self.relative(f) for f, _ in kept], dtype=object),
                       skipped=self.skipped)


class ImageFolderArray:
    """Image files seen as a uint8 ``n x H x W x C`` array, decoded when indexed.

    It holds file names only: indexing (an int, a slice, an index or boolean array) opens
    those pictures, turns them upright (EXIF), converts them to grayscale or RGB and resizes
    them (bilinear) exactly as :func:`load_image_folder` does, and returns an ndarray.
    ``np.asarray`` reads everything. It pickles as its file list, so DataLoader worker
    processes can decode batches in parallel.

    Parameters
    ----------
    files : sequence of str or path-like
        The image files, in the order of the array.
    image_size : (height, width)
        Size every picture is resized to.
    color_mode : {"rgb", "grayscale"}, default="rgb"
        3 channels (RGB) or 1 (grayscale).

    Attributes
    ----------
    shape : tuple of 4 ints
        ``(n, H, W, C)``.
    dtype : numpy.dtype
        ``uint8``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.full((6, 8), 255, dtype=np.uint8)).save(root / "a.png")
    >>> X = ImageFolderArray([root / "a.png"], image_size=(3, 4), color_mode="grayscale")
    >>> X.shape, int(X[0].max()), X[[0, 0]].shape
    ((1, 3, 4, 1), 255, (2, 3, 4, 1))
    """

    dtype = np.dtype(np.uint8)
    ndim = 4
    #: tells the estimators that reading it costs a decode per image (no full scans)
    lazy = True

    def __init__(self, files, image_size, color_mode: str = "rgb"):
        check_param(color_mode, "color_mode", [StrOptions({"rgb", "grayscale"})], "ImageFolderArray")
        check_param(image_size, "image_size", [ImageSize(1)], "ImageFolderArray")
        self.files = [str(f) for f in files]
        self.image_size = check_image_size(image_size)
        self.color_mode = color_mode
        channels = 1 if color_mode == "grayscale" else 3
        self.shape = (len(self.files), *self.image_size, channels)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size  # what the array would take if read whole

    def __len__(self) -> int:
        return self.shape[0]

    def _read(self, i: int) -> np.ndarray:
        height, width = self.image_size
        mode = "L" if self.color_mode == "grayscale" else "RGB"
        try:
            picture = _read_resized(Path(self.files[i]), mode, width, height)
        except Exception as exc:  # PIL raises many types for unreadable files
            raise ValueError(f"cannot read image {self.files[i]}: {exc}") from exc
        return picture.reshape(self.shape[1:])

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self._read(range(len(self))[key])
        if isinstance(key, slice):
            indices = range(len(self))[key]
        else:
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (len(self),):
                    raise IndexError(f"boolean index of shape {key.shape} does not match {len(self)} images")
                key = np.flatnonzero(key)
            if key.ndim != 1 or key.dtype.kind not in "iu":
                raise IndexError("ImageFolderArray takes an int, a slice or a 1-D integer or boolean index array")
            indices = [range(len(self))[int(i)] for i in key]  # IndexError when out of range
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.uint8)
        for row, i in enumerate(indices):
            out[row] = self._read(i)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"ImageFolderArray({len(self)} files, shape={self.shape}, dtype=uint8)"


def _to_mode(picture, mode: str):
    if picture.mode == mode:
        return picture
    if picture.mode in ("I", "I;16", "F"):  # high bit depth grayscale: scale to 8 bits
        values = np.asarray(picture, dtype=np.float64)
        top = 65535.0 if picture.mode == "I;16" or values.max() > 255 else 255.0
        from PIL import Image

        scaled = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        picture = Image.fromarray(scaled, mode="L")
        return picture if mode == "L" else picture.convert(mode)
    transparent_palette = picture.mode == "P" and "transparency" in picture.info
    if picture.mode in ("RGBA", "LA", "PA") or transparent_palette:
        picture = picture.convert("RGBA")  # transparent pixels over white, not black
        from PIL import Image

        background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, picture)
    return picture.convert(mode)

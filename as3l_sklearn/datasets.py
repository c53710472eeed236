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

and loader-specific extras (``filenames`` for :func:`load_image_folder`). The default differs
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
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "DatasetNotFoundError",
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
    """


def _result(X, y, target_names, return_X_y, descr, **extra):
    X = np.ascontiguousarray(X, dtype=np.uint8)
    y = np.asarray(y, dtype=np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, images=X, target=y, target_names=np.asarray(target_names, dtype=object),
                 DESCR=descr, **extra)


def _check_split(split, allowed, name="split"):
    if split not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {split!r}")
    return split


def _check_root(root, name="root") -> Path:
    if root is None:
        raise ValueError(f"{name} is required: the directory that holds the data set files")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(root).__name__}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"{name}={str(root)!r} does not exist")
    if not path.is_dir():
        raise ValueError(f"{name}={str(root)!r} is not a directory")
    return path


# --------------------------------------------------------------------------------------------
# digits (embedded default)


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
    _check_split(split, ("train", "test"))
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"root must be a path (str or os.PathLike) or None, got {type(root).__name__}")
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
            "with torchvision into root (network access needed)."
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
    _check_split(split, ("train", "test"))
    directory = _cifar_dir(root, "cifar-10-batches-py")
    names = ["data_batch_%d" % i for i in range(1, 6)] if split == "train" else ["test_batch"]
    X, y, class_names = _read_cifar(directory, names, "labels", "batches.meta", "label_names",
                                    "CIFAR-10")
    return _result(X, y, class_names, return_X_y,
                   f"CIFAR-10 {split} split, read from {directory}")


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
    _check_split(split, ("train", "test"))
    _check_split(label_type, ("fine", "coarse"), name="label_type")
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
    _check_split(split, ("train", "test", "unlabeled", "train+unlabeled"))
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


def _image_files(directory: Path) -> list:
    """Image files under ``directory`` (recursively), sorted, skipping hidden entries."""
    files = []
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(Path(dirpath) / f for f in sorted(filenames)
                     if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(files)


def _check_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    else:
        try:
            size = tuple(int(s) for s in image_size)
        except TypeError as exc:
            raise TypeError(
                f"image_size must be an int or a (height, width) pair, got {image_size!r}") from exc
    if len(size) != 2 or min(size) < 1:
        raise ValueError(
            f"image_size must be a positive int or a (height, width) pair, got {image_size!r}")
    return size


def load_image_folder(path, image_size=None, *, color_mode: str = "auto",
                      unlabeled_dir: str = "unlabeled", return_X_y: bool = True):
    """Load a folder of images: class sub-folders are labeled, loose images are unlabeled.

    Layout (the same as :class:`torchvision.datasets.ImageFolder`, plus unlabeled images)::

        path/
            cat/ img1.png img2.jpg ...          -> label of "cat"
            dog/ ...                            -> label of "dog"
            unlabeled/ a.png b.png ...          -> -1
            c.png d.png ...                     -> -1

    Classes are the sub-folder names in sorted order (images in nested folders below a class
    folder belong to that class). Hidden files and files without an image extension are skipped.

    Parameters
    ----------
    path : str or path-like
        The folder.
    image_size : int or (height, width), optional
        Size every image is resized to (bilinear). ``None``: the most common size among the
        images (images of another size are resized to it).
    color_mode : {"auto", "rgb", "grayscale"}, default="auto"
        ``"auto"`` gives 1 channel when every image is grayscale, else 3 (RGB).
    unlabeled_dir : str, default="unlabeled"
        Name of the sub-folder whose images are unlabeled.
    return_X_y : bool, default=True
        Return ``(X, y)``; if False, a :class:`~sklearn.utils.Bunch` (see the module docstring)
        that also holds ``filenames`` (one path per image, in the order of ``X``).

    Returns
    -------
    X : ndarray of shape (n, H, W, C), uint8
    y : ndarray of shape (n,), int64
        Index into the sorted class names, ``-1`` for unlabeled images.

    Raises
    ------
    ValueError
        If ``path`` does not exist, is not a folder, or holds no image; if an image cannot be read.

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
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (str or os.PathLike), got {path!r}")
    root = Path(path).expanduser()
    if not root.exists():
        raise DatasetNotFoundError(f"path={str(path)!r} does not exist")
    if not root.is_dir():
        raise ValueError(f"path={str(path)!r} is not a folder")
    size = _check_image_size(image_size)
    _check_split(color_mode, ("auto", "rgb", "grayscale"), name="color_mode")

    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    class_dirs = [d for d in subdirs if d.name != unlabeled_dir]
    entries = []  # (file, label)
    class_names = []
    for class_dir in class_dirs:
        files = _image_files(class_dir)
        if not files:
            continue  # an empty folder is not a class
        label = len(class_names)
        class_names.append(class_dir.name)
        entries.extend((f, label) for f in files)
    loose = sorted(f for f in root.iterdir() if f.is_file() and not f.name.startswith(".")
                   and f.name.lower().endswith(IMAGE_EXTENSIONS))
    unlabeled_root = root / unlabeled_dir
    if unlabeled_root.is_dir():
        loose += _image_files(unlabeled_root)
    entries.extend((f, -1) for f in loose)
    if not entries:
        raise ValueError(
            f"path={str(path)!r} holds no image (looked for {', '.join(IMAGE_EXTENSIONS)} in class "
            f"sub-folders, in {unlabeled_dir}/ and in the folder itself)"
        )

    from PIL import Image

    pictures = []
    for file, _ in entries:
        try:
            with Image.open(file) as picture:
                picture.load()
                pictures.append(picture.copy())
        except Exception as exc:  # PIL raises many types for unreadable files
            raise ValueError(f"cannot read image {file}: {exc}") from exc

    if color_mode == "auto":
        gray = all(p.mode in ("1", "L", "I", "I;16", "F") for p in pictures)
        color_mode = "grayscale" if gray else "rgb"
    mode = "L" if color_mode == "grayscale" else "RGB"
    if size is None:
        # PIL sizes are (width, height); the most common wins, ties go to the first seen
        width, height = Counter(p.size for p in pictures).most_common(1)[0][0]
        size = (height, width)
    height, width = size
    channels = 1 if mode == "L" else 3
    X = np.empty((len(pictures), height, width, channels), dtype=np.uint8)
    for i, picture in enumerate(pictures):
        picture = _to_mode(picture, mode)
        if picture.size != (width, height):
            picture = picture.resize((width, height), Image.BILINEAR)
        X[i] = np.asarray(picture, dtype=np.uint8).reshape(height, width, channels)
    y = np.array([label for _, label in entries], dtype=np.int64)
    return _result(X, y, class_names, return_X_y, f"image folder {root}",
                   filenames=np.array([str(f) for f, _ in entries], dtype=object))


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

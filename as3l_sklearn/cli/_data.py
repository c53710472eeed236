"""The data of an ``as3l`` run: the training pool and test set of the chosen data set, and
the labels a person gave (``--annotations``), matched to the pool by file name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split

from .. import datasets
from ..embedding._simsiam import AUTO_MAX_SIDE
from ..metrics import labeled_mask
from ..selection import read_annotations
from ..selection._annotation import _class_list
from ._config import RunConfig
from ._errors import UserError

#: the data sets read from a torchvision-style local root, with their own test split
TORCHVISION_STYLE = ("fashion-mnist", "cifar10", "cifar100", "stl10")
#: pool size on a CPU for the TORCHVISION_STYLE data sets when --n-train is not given
CPU_POOL_SIZE = 10000


@dataclass(frozen=True)
class PoolData:
    """The training pool and the test set of a run.

    Attributes
    ----------
    X_train, y_train : ndarray
        The pool's images (``n, H, W, C``) and labels (-1 where unknown).
    X_test, y_test : ndarray
        The test images and labels (-1 where unknown; possibly none).
    files : list of str
        The name of every pool image: its path relative to the folder, or its row in the
        data set for array data; the identity the annotation round trip matches labels on.
    target_names : list of str or None
        The data set's class names (labels are indices into them); None for an unlabeled
        folder.
    color_mode : {"grayscale", "rgb"}
        How ``as3l predict`` prepares new images for the saved model.
    test_labeled : bool
        Whether there is a test set with every label known: the classifier's test accuracy
        is measured on it (False too when the labels used are the user's own classes).
    skipped : tuple of str
        Files of a folder that were left out because they could not be read (relative paths).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    files: list
    target_names: list | None
    color_mode: str
    test_labeled: bool
    skipped: tuple = ()


class _Split(NamedTuple):
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    files: np.ndarray  # of object: str names, indexable by an array
    target_names: list | None
    color_mode: str | None  # None: from the images' channels
    skipped: tuple = ()  # unreadable files of a folder, left out


def load_data(config: RunConfig) -> PoolData:
    """Load the chosen data set as the training pool and a test set (labels -1 where unknown),
    with at most ``--n-train`` pool images (10,000 of the big data sets on a CPU)."""
    rng = np.random.RandomState(config.seed)  # the folder's test split, then the subset
    if config.dataset == "digits":
        split = _load_digits(config)
    elif config.dataset in TORCHVISION_STYLE:
        split = _load_torchvision_style(config)
    else:
        split = _load_folder(config, rng)
    X_train, y_train, files = split.X_train, split.y_train, split.files
    n_train = config.n_train
    if n_train is None and config.dataset in TORCHVISION_STYLE and config.device_kind == "cpu":
        n_train = CPU_POOL_SIZE
    if n_train is not None and n_train < len(X_train):
        keep = np.sort(rng.choice(len(X_train), size=n_train, replace=False))
        X_train, y_train, files = X_train[keep], y_train[keep], files[keep]
    y_test = np.asarray(split.y_test)
    return PoolData(
        X_train=X_train, y_train=np.asarray(y_train), X_test=split.X_test, y_test=y_test,
        files=[str(f) for f in files], target_names=split.target_names,
        color_mode=split.color_mode or ("grayscale" if X_train.shape[-1] == 1 else "rgb"),
        test_labeled=bool(len(y_test)) and bool(labeled_mask(y_test).all()),
        skipped=tuple(split.skipped))


def _load_digits(config: RunConfig) -> _Split:
    bunch = datasets.load_digits_images(return_X_y=False)
    rows = np.arange(len(bunch.target))
    train, test = train_test_split(rows, test_size=config.test_size, stratify=bunch.target,
                                   random_state=config.seed)
    return _Split(bunch.images[train], bunch.target[train], bunch.images[test],
                  bunch.target[test], np.array([str(i) for i in train], dtype=object),
                  [str(n) for n in bunch.target_names], None)


def _load_torchvision_style(config: RunConfig) -> _Split:
    if config.dataset == "fashion-mnist":
        train_bunch, test_bunch = _load_fashion_mnist(config.root)
    elif config.dataset == "stl10":
        train_bunch = datasets.load_stl10(config.root, split="train+unlabeled", return_X_y=False)
        test_bunch = datasets.load_stl10(config.root, split="test", return_X_y=False)
    else:
        loader = datasets.load_cifar10 if config.dataset == "cifar10" else datasets.load_cifar100
        train_bunch = loader(config.root, split="train", return_X_y=False)
        test_bunch = loader(config.root, split="test", return_X_y=False)
    files = np.array([str(i) for i in range(len(train_bunch.images))], dtype=object)
    return _Split(train_bunch.images, train_bunch.target, test_bunch.images, test_bunch.target,
                  files, [str(n) for n in train_bunch.target_names], None)


def _load_fashion_mnist(root) -> tuple:
    """Fashion-MNIST's train and test splits; missing files are a :class:`UserError` naming
    what the command offers (the loader's own message suggests ``download=True``, which the
    command has no flag for: it never downloads)."""
    try:
        return tuple(datasets.load_fashion_mnist(root=root, split=split, return_X_y=False)
                     for split in ("train", "test"))
    except datasets.DatasetNotFoundError as exc:
        searched = ", ".join(str(d) for d in exc.searched)
        raise UserError(
            f"--dataset fashion-mnist: the Fashion-MNIST files were not found (looked in "
            f"{searched}). Install them with Debian's package (sudo apt-get install "
            "dataset-fashion-mnist; then no flag is needed), or pass --root DIR, a folder "
            "holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in DIR/FashionMNIST/raw/, "
            "DIR/raw/ or DIR itself (torchvision.datasets.FashionMNIST(DIR, download=True) "
            "makes one)") from None


def folder_max_side(config: RunConfig) -> int:
    """Longer side a folder's photos are loaded at: the encoder's (``--encoder``: e.g. 224,
    what its weights were trained at), else SimSiam's default for the device (32 px on CPU)."""
    if config.resolved_encoder is not None:
        return max(config.resolved_encoder.image_size)
    return AUTO_MAX_SIDE[config.device_kind]


def _load_folder(config: RunConfig, rng: np.random.RandomState) -> _Split:
    """``--dataset folder``: every image unlabeled, or (``--labeled-subfolders``) sub-folders
    as classes with ``--test-size`` of the labeled images held out as the test set."""
    bunch = datasets.load_image_folder(
        config.path, image_size=config.image_size,
        labels="subfolders" if config.labeled_subfolders else "none",
        max_size=folder_max_side(config), on_error="warn", return_X_y=False)
    X, y = bunch.images, bunch.target
    test = np.zeros(len(y), dtype=bool)
    target_names = None
    if config.labeled_subfolders:
        target_names = [str(n) for n in bunch.target_names]
        labeled = np.flatnonzero(labeled_mask(y))
        if labeled.size >= 10 and len(np.unique(y[labeled])) > 1:
            # hold out part of the labeled images to measure the classifier
            held_out = rng.choice(labeled, size=int(round(config.test_size * labeled.size)),
                                  replace=False)
            test[held_out] = True
    files = np.asarray(bunch.files, dtype=object)[~test]
    return _Split(X[~test], y[~test], X[test], y[test], files, target_names,
                  "grayscale" if X.shape[-1] == 1 else "rgb",
                  tuple(str(f) for f in getattr(bunch, "skipped", ())))


# --------------------------------------------------------------------------------------------
# labels a person gave


class Labels(NamedTuple):
    """The labels read from ``--annotations``: one per pool image (-1 unlabeled; class
    indices, or strings of the user's own classes), the class names, and how many pool
    images each file labeled (file -> count, in the order given)."""

    y_partial: np.ndarray
    class_names: list
    per_file: dict


def read_labels(config: RunConfig, data: PoolData) -> Labels:
    """Read every ``--annotations`` file by file name (before any training: a typo is an
    error up front) and merge them by file name.

    Labels of the data set's own classes become indices into its names (unless
    ``--classes`` gives other names); others stay strings. A file is checked against
    ``--classes``, else the ``class_names.txt`` beside it, else the one beside the other
    files (:func:`shared_class_list`). The class names are then the class list, whichever way
    it came, else the labels present: the class coverage counts against the same list
    either way. An image two files label differently is a :class:`UserError` naming both.
    """
    shared = None if config.classes else shared_class_list(config.annotations)
    per_file = [(source, _read_label_file(config, data, source, shared))
                for source in config.annotations]
    indexed = data.target_names is not None and config.classes is None
    y_partial = merge_labels(per_file, data.files, data.target_names if indexed else None)
    counts = {source: int(labeled_mask(y).sum()) for source, y in per_file}
    if indexed:
        return Labels(y_partial, list(data.target_names), counts)
    class_list = config.classes or shared
    labeled = labeled_mask(y_partial)
    present = sorted({str(v) for v in np.asarray(y_partial, dtype=object)[labeled]})
    return Labels(y_partial, list(class_list) if class_list else present, counts)


def _read_label_file(config: RunConfig, data: PoolData, source: str, shared) -> np.ndarray:
    """The labels of one ``--annotations`` file, one per pool image (-1 unlabeled)."""
    files = data.files
    # a file with its own class_names.txt is checked against it (and the errors name it);
    # one without, against the list beside the other files
    class_names = config.classes
    if class_names is None and class_list_beside(source) is None:
        class_names = shared
    y_partial = read_annotations(source, n_samples=len(files), files=files,
                                 class_names=class_names)
    if not labeled_mask(y_partial).any():
        raise UserError(f"--annotations {source}: no label matches an image of the pool")
    if data.target_names is not None and config.classes is None:
        return _to_class_indices(y_partial, data.target_names, source)
    return y_partial


def shared_class_list(sources) -> list | None:
    """The class list of the ``class_names.txt`` files beside the label files ``sources``
    (None when there is none); two lists that differ are a :class:`UserError` (one list of
    classes holds for every round)."""
    found = [(source, names) for source in sources
             if (names := class_list_beside(source)) is not None]
    if not found:
        return None
    first_source, first = found[0]
    for source, names in found[1:]:
        if set(names) != set(first):
            raise UserError(
                f"--annotations: the class lists beside {first_source} ({', '.join(first)}) "
                f"and {source} ({', '.join(names)}) differ; pass --classes A,B,C to give the "
                "list that holds for every file")
    return first


def class_list_in_force(config: RunConfig, data: PoolData) -> list | None:
    """The classes labels are checked against: ``--classes``, else the data set's own class
    names, else the ``class_names.txt`` beside the ``--annotations`` files; None when the
    labels are free (every distinct label is a class)."""
    if config.classes:
        return list(config.classes)
    if data.target_names is not None:
        return list(data.target_names)
    return shared_class_list(config.annotations or ())


def merge_labels(per_file, files, class_names=None) -> np.ndarray:
    """One label vector from the labels of several files (``[(file, labels), ...]``, each
    one per pool image of ``files``, -1 unlabeled); an image labeled differently in two
    files is a :class:`UserError` naming both files and the image (``class_names``: the
    names of labels that are class indices, for the message)."""
    first_source, merged = per_file[0]
    merged = merged.copy()
    origin = np.full(len(merged), first_source, dtype=object)  # the file of each label
    for source, labels in per_file[1:]:
        if (labels.dtype.kind in "iu") != (merged.dtype.kind in "iu"):
            raise UserError(
                f"--annotations: {first_source if merged.dtype.kind in 'iu' else source} holds "
                "integer labels and the other file class names; labels must be all integers "
                "or all class names (pass --classes to check them)")
        given, known = labeled_mask(labels), labeled_mask(merged)
        differ = np.flatnonzero(given & known & (labels != merged))
        if differ.size:
            i = differ[0]
            more = f" ({differ.size - 1} more images differ)" if differ.size > 1 else ""
            raise UserError(
                f"--annotations: {files[i]} is labeled {_shown(merged[i], class_names)!r} in "
                f"{origin[i]} but {_shown(labels[i], class_names)!r} in {source}{more}; "
                "correct one of the two files")
        new = given & ~known
        merged[new], origin[new] = labels[new], source
    return merged


def _shown(label, class_names) -> str:
    """A label as the person wrote it: the class name of a class index."""
    return str(label) if class_names is None else str(class_names[int(label)])


def class_list_beside(annotations) -> list | None:
    """The class list of ``class_names.txt`` beside the label file (what
    :func:`~as3l_sklearn.selection.read_annotations` checks the labels against), or None."""
    names, _ = _class_list(None, Path(annotations))
    return None if names is None else [str(n) for n in names]


def _to_class_indices(y_partial, target_names, source: str) -> np.ndarray:
    """Labels read from a file, as indices into the data set's class names (-1 unlabeled)."""
    lookup = {name: i for i, name in enumerate(target_names)}
    result = np.full(len(y_partial), -1, dtype=np.int64)
    for i in np.flatnonzero(labeled_mask(y_partial)):
        label = str(y_partial[i])
        if label not in lookup:
            raise UserError(f"--annotations {source}: label {label!r} is not a class of this "
                            f"data set ({', '.join(target_names)})")
        result[i] = lookup[label]
    return result

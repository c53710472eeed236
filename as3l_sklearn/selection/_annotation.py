"""Annotation round trip: export selected images for a person, read their labels back."""

from __future__ import annotations

import csv
import numbers
from pathlib import Path

import numpy as np

from ..utils import check_images

MANIFEST = "manifest.csv"
CLASS_NAMES = "class_names.txt"
COLUMNS = ("index", "file", "label")


def export_for_annotation(X, indices, path, class_names=None, *, overwrite: bool = False) -> Path:
    """Write the selected images as PNG files plus a ``manifest.csv`` to fill in.

    The manifest has the columns ``index`` (row of ``X``), ``file`` (PNG name relative to
    ``path``) and ``label`` (empty). A person (or a labelling tool) writes a class into each
    ``label`` cell; :func:`read_annotations` reads the result back as a partial label vector.

    Parameters
    ----------
    X : array-like
        All images, ``uint8`` ``n x H x W x C`` (or ``n x H x W``), or float ``n x C x H x W``
        (see :func:`as3l_sklearn.utils.check_images`). Float images are written as they are
        when in ``[0, 1]``; otherwise each image is min-max scaled to ``[0, 255]`` for viewing.
    indices : array-like of int
        Rows of ``X`` to export, e.g. from ``selector.select(n_budget)``; the manifest keeps
        their order (best first).
    path : str or path-like
        Output folder (created if missing).
    class_names : sequence of str, optional
        Allowed labels. Written to ``class_names.txt`` beside the manifest;
        :func:`read_annotations` then rejects any other label.
    overwrite : bool, default=False
        Replace an existing manifest. By default an existing one raises, so that filled-in
        labels are never lost.

    Returns
    -------
    manifest : pathlib.Path
        Path of the written ``manifest.csv``.

    See Also
    --------
    read_annotations : Read the filled-in manifest back.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from as3l_sklearn import export_for_annotation
    >>> X = np.zeros((5, 8, 8, 1), dtype=np.uint8)
    >>> folder = tempfile.mkdtemp()
    >>> manifest = export_for_annotation(X, [3, 1], folder)
    >>> manifest.read_text().splitlines()
    ['index,file,label', '3,0000_index3.png,', '1,0001_index1.png,']
    """
    from PIL import Image

    images = check_images(X, name="X")
    n_samples = images.shape[0]
    indices = _check_indices(indices, n_samples)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        bad = [name for name in class_names
               if not name.strip() or name.strip() != name or "\n" in name]
        if not class_names or bad or len(set(class_names)) != len(class_names):
            raise ValueError("class_names must be distinct, non-blank names without surrounding "
                             f"spaces, got {class_names!r}")
        if "-1" in class_names:
            raise ValueError("class_names must not contain '-1', which marks unlabeled samples")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST
    if manifest.exists() and not overwrite:
        raise ValueError(f"path {str(folder)!r} already holds a {MANIFEST}; "
                         "pass overwrite=True to replace it")

    channels = images.shape[1]
    if channels not in (1, 3, 4):
        raise ValueError(f"X has {channels} channels per image; PNG export needs 1, 3 or 4")
    rows = []
    for rank, index in enumerate(indices):
        pixels = _to_uint8(images[index]).transpose(1, 2, 0)
        if channels == 1:
            pixels = pixels[:, :, 0]
        name = f"{rank:04d}_index{index}.png"
        # PIL infers the mode from uint8 H x W (L), H x W x 3 (RGB) or H x W x 4 (RGBA)
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / name)
        rows.append((index, name, ""))
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    if class_names is not None:
        (folder / CLASS_NAMES).write_text("\n".join(class_names) + "\n")
    elif (folder / CLASS_NAMES).exists():
        (folder / CLASS_NAMES).unlink()  # a stale list from an earlier export would mislead
    return manifest


def _check_indices(indices, n_samples):
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.size == 0:
        raise ValueError("indices must be a non-empty 1-D array of row numbers, "
                         f"got shape {indices.shape}")
    if indices.dtype.kind not in "iu":
        whole = indices.dtype.kind == "f" and np.all(np.isfinite(indices)) \
            and np.all(indices == np.round(indices))
        if whole:
            indices = indices.astype(np.int64)
        else:
            raise TypeError(f"indices must hold integers, got dtype {indices.dtype}")
    if indices.min() < 0 or indices.max() >= n_samples:
        raise ValueError(f"indices must be in [0, {n_samples}) (X has {n_samples} images), "
                         f"got values from {indices.min()} to {indices.max()}")
    if np.unique(indices).size != indices.size:
        raise ValueError("indices must be distinct")
    return [int(i) for i in indices]


def _to_uint8(image):
    low, high = float(image.min()), float(image.max())
    if low < 0 or high > 1:
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def read_annotations(path, n_samples: int | None = None) -> np.ndarray:
    """Read a filled-in annotation manifest as a partial label vector (``-1`` elsewhere).

    Parameters
    ----------
    path : str or path-like
        The folder written by :func:`export_for_annotation`, or the ``manifest.csv`` itself.
    n_samples : int, optional
        Length of the returned vector (the number of images in the pool). Defaults to the
        largest index in the manifest plus one; pass it so that indices past the pool are
        caught.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        ``int64`` when every label is an integer; otherwise an ``object`` array of string
        labels with the integer ``-1`` for unlabeled samples (the convention of
        :mod:`sklearn.semi_supervised`).

    Raises
    ------
    ValueError
        Naming the file and row (line number) for: a missing column, an index that is not
        an integer or out of range, a duplicate index, a blank label, the label ``-1``, or a
        label missing from ``class_names.txt`` when the export wrote one.

    See Also
    --------
    export_for_annotation : Write the manifest and images.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from as3l_sklearn import export_for_annotation, read_annotations
    >>> folder = tempfile.mkdtemp()
    >>> manifest = export_for_annotation(np.zeros((5, 8, 8, 1), np.uint8), [3, 1], folder)
    >>> _ = manifest.write_text("index,file,label\\n3,0000_index3.png,7\\n1,0001_index1.png,2\\n")
    >>> read_annotations(folder, n_samples=5).tolist()
    [-1, 2, -1, 7, -1]
    """
    path = Path(path)
    manifest = path / MANIFEST if path.is_dir() else path
    if not manifest.is_file():
        raise ValueError(f"path: no annotation manifest found at {str(manifest)!r}")
    if n_samples is not None:
        is_int = (isinstance(n_samples, numbers.Integral)
                  and not isinstance(n_samples, (bool, np.bool_)))
        if not is_int or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer or None, got {n_samples!r}")
        n_samples = int(n_samples)
    names_file = manifest.parent / CLASS_NAMES
    allowed = None
    if names_file.is_file():
        allowed = {line.strip() for line in names_file.read_text().splitlines() if line.strip()}

    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{manifest}: the file is empty; "
                             f"expected the columns {','.join(COLUMNS)}")
        header = [column.strip().lower() for column in header]
        missing = [c for c in ("index", "label") if c not in header]
        if missing:
            raise ValueError(f"{manifest}: missing column(s) {missing}; "
                             f"the header must hold {','.join(COLUMNS)}")
        index_col, label_col = header.index("index"), header.index("label")
        entries = []
        seen = {}
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue  # an empty line left by an editor
            where = f"{manifest}, line {line}"
            if len(row) <= max(index_col, label_col):
                raise ValueError(
                    f"{where}: expected {len(header)} columns, got {len(row)}: {row!r}")
            raw_index, label = row[index_col].strip(), row[label_col].strip()
            try:
                index = int(raw_index)
            except ValueError:
                raise ValueError(f"{where}: index {raw_index!r} is not an integer") from None
            if index < 0 or (n_samples is not None and index >= n_samples):
                bound = "" if n_samples is None else f" (n_samples={n_samples})"
                raise ValueError(f"{where}: index {index} is out of range{bound}")
            if index in seen:
                raise ValueError(f"{where}: index {index} is a duplicate of line {seen[index]}")
            if not label:
                raise ValueError(f"{where}: the label of index {index} is blank; fill it in, "
                                 "or delete the row to leave the sample unlabeled")
            if label == "-1":
                raise ValueError(f"{where}: the label -1 is reserved for unlabeled samples")
            if allowed is not None and label not in allowed:
                raise ValueError(f"{where}: label {label!r} is not one of the class names in "
                                 f"{names_file.name}: {sorted(allowed)}")
            seen[index] = line
            entries.append((index, label))
    if not entries:
        raise ValueError(f"{manifest}: no annotated rows")

    if n_samples is None:
        n_samples = max(index for index, _ in entries) + 1
    as_ints = [_as_int(label) for _, label in entries]
    if all(value is not None for value in as_ints):
        y = np.full(n_samples, -1, dtype=np.int64)
        for (index, _), value in zip(entries, as_ints):
            y[index] = value
        return y
    y = np.full(n_samples, -1, dtype=object)
    for index, label in entries:
        y[index] = label
    return y


def _as_int(label: str):
    try:
        return int(label)
    except ValueError:
        return None

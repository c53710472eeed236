"""Annotation round trip: export selected images for a person, read their labels back by file.

:func:`export_for_annotation` writes ``selection.csv`` (``file,label,preview``) naming each
selected image by its original file, :func:`read_annotations` reads labels back from that file
or from what labelling tools write (Label Studio CSV and JSON-MIN exports, CVAT-style and
spreadsheet ``filename,label`` CSVs), matching rows to the current pool by file name, and
:func:`write_label_studio_tasks` writes a Label Studio task file with URLs its local-files
server answers, the priors as pre-annotations and the labels a person gave as annotations.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import warnings
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, quote, unquote, urlsplit

import numpy as np

from ..utils import check_images
from ..utils._param_validation import Integral, Interval, validate_params

SELECTION = "selection.csv"
MANIFEST = "manifest.csv"  # written by as3l-sklearn before the export by file name; still read
CLASS_NAMES = "class_names.txt"
SELECTION_COLUMNS = ("file", "label", "preview")
COLUMNS = ("index", "file", "label")  # the old manifest's columns

#: Header names (compared case-insensitively) that a column of file names may have, best first:
#: our own ``file``, then what CVAT, spreadsheets and Label Studio (``image``) write.
FILE_COLUMNS = ("file", "filename", "file_name", "filepath", "file_path", "image", "image_path",
                "img", "path", "name")
#: Header names a column of labels may have (Label Studio names it after the ``<Choices>`` tag).
LABEL_COLUMNS = ("label", "class", "choice", "choices", "category", "class_name")
#: Label Studio's local-files server: ``?d=`` a path relative to its
#: ``LOCAL_FILES_DOCUMENT_ROOT``, served when a local-files storage of the project holds it.
LABEL_STUDIO_LOCAL_FILES = "/data/local-files/?d="
# the prefix Label Studio puts before an uploaded file's name: 8 hex digits and a dash
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")
_INTEGER = re.compile(r"^[+-]?[0-9]+(\.0*)?$")
_INT64_MAX = np.iinfo(np.int64).max
# largest vector read_annotations infers when n_samples is None (16.7 M labels, 134 MB)
_MAX_INFERRED_SAMPLES = 2 ** 24


# --------------------------------------------------------------------------------------------
# export


@validate_params(
    {"X": ["array-like"], "indices": ["array-like"], "path": [str, os.PathLike],
     "class_names": ["array-like", None], "files": ["array-like", None], "overwrite": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def export_for_annotation(X, indices, path, class_names=None, *, files=None,
                          overwrite: bool = False) -> Path:
    """Write ``selection.csv`` naming the selected images, with PNG previews, to fill in.

    ``selection.csv`` has the columns ``file`` (the image's original file relative to the input
    folder when ``files`` is given, else its row of ``X``), ``label`` (empty: to fill in) and
    ``preview`` (the PNG preview of that image written beside it, ``0000_<name>.png`` for the
    first row). Rows follow the selection order (best first). A person, a spreadsheet or a
    labelling tool fills in the labels; :func:`read_annotations` reads them back by file name,
    so images added to or removed from the folder in between do not shift any label.

    Parameters
    ----------
    X : array-like
        All images, ``uint8`` ``n x H x W x C`` (or ``n x H x W``), or float ``n x C x H x W``
        (see :func:`as3l_sklearn.utils.check_images`). Float images are written as they are
        when in ``[0, 1]``; otherwise each image is min-max scaled to ``[0, 255]`` for viewing.
    indices : array-like of int
        Rows of ``X`` to export, e.g. from ``selector.select(n_budget)``.
    path : str or path-like
        Output folder (created if missing).
    class_names : sequence of str, optional
        Allowed labels. Written to ``class_names.txt`` beside ``selection.csv``;
        :func:`read_annotations` then rejects any other label.
    files : sequence of str, optional
        One name per row of ``X``: the image's path relative to the input folder (e.g.
        ``load_image_folder(..., return_X_y=False).files``). Without it the ``file`` column
        holds the row number, for array data.
    overwrite : bool, default=False
        Replace an existing ``selection.csv``. By default an existing one raises, so that
        filled-in labels are never lost.

    Returns
    -------
    selection : pathlib.Path
        Path of the written ``selection.csv`` (UTF-8).

    See Also
    --------
    read_annotations : Read the filled-in labels back.
    write_label_studio_tasks : The same selection as Label Studio tasks.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from as3l_sklearn import export_for_annotation
    >>> X = np.zeros((5, 8, 8, 1), dtype=np.uint8)
    >>> folder = tempfile.mkdtemp()
    >>> files = ["a.jpg", "b.jpg", "trip/c.jpg", "d.jpg", "e.jpg"]
    >>> selection = export_for_annotation(X, [2, 1], folder, files=files)
    >>> selection.read_text().splitlines()
    ['file,label,preview', 'trip/c.jpg,,0000_c.png', 'b.jpg,,0001_b.png']
    """
    from PIL import Image

    images = check_images(X, name="X")
    n_samples = images.shape[0]
    indices = _check_indices(indices, n_samples)
    class_names = _check_class_names(class_names)
    files = _check_files(files, n_samples)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    selection = folder / SELECTION
    if selection.exists() and not overwrite:
        raise ValueError(f"path {str(folder)!r} already holds a {SELECTION}; "
                         "pass overwrite=True to replace it")

    channels = images.shape[1]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"X has {channels} channels per image; PNG export needs 1, 2, 3 or 4")
    rows = []
    for rank, index in enumerate(indices):
        pixels = _to_uint8(images[index]).transpose(1, 2, 0)
        if channels == 1:
            pixels = pixels[:, :, 0]
        file = str(index) if files is None else files[index]
        stem = f"index{index}" if files is None else PurePosixPath(file).stem
        # the rank keeps previews in selection order and distinct when two stems are equal
        preview = f"{rank:04d}_{_safe_name(stem)}.png"
        # PIL infers the mode from uint8 H x W (L), H x W x 2 (LA), x 3 (RGB) or x 4 (RGBA)
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / preview)
        rows.append((file, "", preview))
    with selection.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SELECTION_COLUMNS)
        writer.writerows(rows)
    if class_names is not None:
        (folder / CLASS_NAMES).write_text("\n".join(class_names) + "\n", encoding="utf-8")
    elif (folder / CLASS_NAMES).exists():
        (folder / CLASS_NAMES).unlink()  # a stale list from an earlier export would mislead
    return selection


def _safe_name(stem: str) -> str:
    # a preview name any file system and spreadsheet takes
    cleaned = re.sub(r"[^\w.-]+", "_", stem, flags=re.ASCII).strip("._")
    return cleaned[:60] or "image"


def _check_class_names(class_names):
    """The class names as a list of str (one string is refused by the callers' constraints),
    distinct, non-blank, without ``-1`` and distinct case-insensitively."""
    if class_names is None:
        return None
    class_names = [str(name) for name in class_names]
    bad = [name for name in class_names
           if not name.strip() or name.strip() != name or "\n" in name]
    if not class_names or bad or len(set(class_names)) != len(class_names):
        raise ValueError("class_names must be distinct, non-blank names without surrounding "
                         f"spaces, got {class_names!r}")
    if "-1" in class_names:
        raise ValueError("class_names must not contain '-1', which marks unlabeled samples")
    folded = [name.casefold() for name in class_names]
    if len(set(folded)) != len(folded):
        raise ValueError("class_names must differ by more than letter case (labels are "
                         f"matched to them case-insensitively), got {class_names!r}")
    return class_names


def _check_files(files, n_samples, name="files"):
    if files is None:
        return None
    if isinstance(files, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of relative paths, not one string")
    files = [str(f) for f in np.asarray(files, dtype=object).ravel()]
    if n_samples is not None and len(files) != n_samples:
        raise ValueError(f"{name} must name every image: got {len(files)} names for "
                         f"{n_samples} images")
    if any(not f.strip() for f in files):
        raise ValueError(f"{name} must not hold blank names")
    return [f.replace("\\", "/") for f in files]


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


# --------------------------------------------------------------------------------------------
# Label Studio tasks


def write_label_studio_tasks(path, files, *, priors=None, classes=None, labels=None, folder=None,
                             document_root=None, image_root=None, from_name: str = "choice",
                             to_name: str = "image") -> Path:
    """Write a Label Studio task file: images served from a folder, priors as pre-annotations.

    Each task is ``{"data": {"image": URL, "file": FILE}, ...}``. ``FILE`` is the image's path
    relative to ``folder`` (the input folder); ``URL`` is where Label Studio serves it. An
    image with a prior gets a prediction (its most likely class and that probability,
    ``model_version`` ``"as3l-prior"``) that the labeller confirms or corrects; an image that
    a person has already labeled (``labels``) gets that label as an annotation instead, so
    the person's label wins over the model's and the task counts as done. The project's
    labelling configuration must name its tags after ``from_name`` and ``to_name``::

        <View>
          <Image name="image" value="$image"/>
          <Choices name="choice" toName="image" choice="single">
            <Choice value="cat"/> <Choice value="dog"/>
          </Choices>
        </View>

    **Serving the images.** By default the URLs point at Label Studio's local-files server,
    ``/data/local-files/?d=PATH`` with ``PATH`` relative to its document root. Label Studio
    serves a file only from a local-files storage whose path lies *below* the document root
    (a storage equal to the root is refused), so the document root defaults to the parent of
    ``folder``: for ``folder="/home/me/photos"`` the image ``trip/a.jpg`` becomes
    ``/data/local-files/?d=photos/trip/a.jpg``. Start Label Studio with
    ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
    ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/home/me``, and add a local-files storage with
    the absolute path of ``folder`` to the project (no sync needed) before importing the file.
    Label Studio's CSV, JSON-MIN and JSON exports keep ``file`` and are read back by
    :func:`read_annotations`.

    Parameters
    ----------
    path : str or path-like
        The JSON file to write (an existing folder gets ``tasks.json`` inside). Overwritten.
    files : sequence of str
        The images, as paths relative to ``folder`` (e.g. the ``file`` column of
        ``selection.csv``).
    priors : array-like of shape (n_files, n_classes), optional
        Class probabilities of each image (a propagator's ``predict_proba`` on those rows).
    classes : sequence of str, optional
        The class names of the columns of ``priors``; required with ``priors``. With
        ``labels``, every label must be one of them.
    labels : array-like of shape (n_files,), optional
        What a person labeled, ``-1`` (or ``None``, ``""``) for an image not labeled yet, e.g.
        :func:`read_annotations` on the same files. A labeled image's task carries the label
        as an annotation and no prediction.
    folder : str or path-like, optional
        The folder ``files`` are relative to (the input folder). Without it, ``files`` are
        taken as paths relative to the document root.
    document_root : str or path-like, optional
        Label Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``; ``folder`` must lie below it.
        Default: the parent of ``folder``.
    image_root : str, optional
        Prefix of every image URL instead of the local-files server (e.g. an ``https://``
        address serving ``folder``), followed by the URL-quoted ``FILE``. Not with ``folder``
        or ``document_root``.
    from_name, to_name : str, default="choice", "image"
        Names of the ``<Choices>`` and ``<Image>`` tags in the labelling configuration.

    Returns
    -------
    tasks : pathlib.Path
        Path of the written JSON file (UTF-8).

    See Also
    --------
    read_annotations : Read the project's CSV, JSON-MIN or JSON export back.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from as3l_sklearn import write_label_studio_tasks
    >>> home = Path(tempfile.mkdtemp())
    >>> tasks = write_label_studio_tasks(home / "tasks.json", ["IMG 1.jpg", "IMG 2.jpg"],
    ...                                  priors=[[0.2, 0.8], [0.6, 0.4]], classes=["cat", "dog"],
    ...                                  labels=[-1, "dog"], folder=home / "photos")
    >>> first, second = json.loads(tasks.read_text())
    >>> first["data"]["image"]
    '/data/local-files/?d=photos/IMG%201.jpg'
    >>> first["predictions"][0]["score"], first["predictions"][0]["result"][0]["value"]
    (0.8, {'choices': ['dog']})
    >>> second["annotations"][0]["result"][0]["value"], "predictions" in second
    ({'choices': ['dog']}, False)
    """
    files = _check_files(files, None)
    if not files:
        raise ValueError("files must name at least one image")
    for name, value in (("from_name", from_name), ("to_name", to_name)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if image_root is not None:
        if not isinstance(image_root, str):
            raise TypeError(f"image_root must be a string, got {type(image_root).__name__}")
        if folder is not None or document_root is not None:
            raise ValueError("pass image_root (images served from elsewhere) or folder and "
                             "document_root (Label Studio's local files), not both")
    else:
        image_root = LABEL_STUDIO_LOCAL_FILES + quote(_local_files_prefix(folder, document_root),
                                                      safe="/")
    if classes is not None:
        classes = [str(c) for c in classes]
    if priors is not None:
        if classes is None:
            raise ValueError("classes is required with priors: the class name of each column")
        priors = np.asarray(priors, dtype=np.float64)
        if priors.ndim != 2 or priors.shape != (len(files), len(classes)):
            raise ValueError(f"priors must have shape (n_files, n_classes) = ({len(files)}, "
                             f"{len(classes)}), got {priors.shape}")
        if not np.all(np.isfinite(priors)):
            raise ValueError("priors must be finite")
    labels = _check_task_labels(labels, len(files), classes)
    tasks = []
    for i, file in enumerate(files):
        task = {"data": {"image": image_root + quote(file, safe="/"), "file": file}}
        if labels is not None and labels[i] is not None:
            # the person's label wins: an annotation, and no model guess beside it
            task["annotations"] = [{"result": _choices_result(labels[i], from_name, to_name)}]
        elif priors is not None:
            best = int(np.argmax(priors[i]))
            task["predictions"] = [{
                "model_version": "as3l-prior",
                "score": round(float(priors[i, best]), 6),
                "result": _choices_result(classes[best], from_name, to_name),
            }]
        tasks.append(task)
    target = Path(path)
    if target.is_dir():
        target = target / "tasks.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def _choices_result(label: str, from_name: str, to_name: str):
    return [{"from_name": from_name, "to_name": to_name, "type": "choices",
             "value": {"choices": [label]}}]


def _local_files_prefix(folder, document_root) -> str:
    """``folder``'s path relative to ``document_root`` with a trailing ``/`` ('' without folder).

    Label Studio serves ``/data/local-files/?d=PATH`` only for files below a local-files
    storage, and refuses a storage equal to its document root: ``folder`` must lie strictly
    below the root, which defaults to the parent of ``folder``.
    """
    if folder is None:
        return ""
    for name, value in (("folder", folder), ("document_root", document_root)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"{name} must be a path, got {type(value).__name__}")
    folder = Path(os.path.abspath(folder))
    if document_root is None:
        if folder.parent == folder:
            raise ValueError(f"folder {str(folder)!r} has no parent to serve it from; pass "
                             "document_root, or move the images into a sub-folder")
        document_root = folder.parent
    root = Path(os.path.abspath(document_root))
    for below, above in ((folder, root), (Path(os.path.realpath(folder)),
                                          Path(os.path.realpath(root)))):
        if above in below.parents:  # strictly below: Label Studio refuses folder == root
            return below.relative_to(above).as_posix() + "/"
    raise ValueError(
        f"folder {str(folder)!r} must be a sub-folder of document_root {str(root)!r}: Label "
        "Studio serves local files only from a storage below LOCAL_FILES_DOCUMENT_ROOT, and "
        "refuses a storage equal to it")


def _check_task_labels(labels, n_files, classes):
    """One label (str) or None per file; a label must be one of ``classes`` when given."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise TypeError("labels must be a sequence of labels, one per file, not one string")
    values = np.asarray(labels, dtype=object).ravel()
    if len(values) != n_files:
        raise ValueError(f"labels must have one entry per file: got {len(values)} for "
                         f"{n_files} files")
    checked = []
    for value in values:
        label = "" if value is None else str(value).strip()
        # -1 marks an unlabeled image, as in read_annotations' output
        checked.append(None if not label or _is_minus_one(label) else label)
    if classes is not None:
        unknown = sorted({label for label in checked if label is not None} - set(classes))
        if unknown:
            raise ValueError(f"labels {unknown[:10]} are not among classes {classes}")
    return checked


# --------------------------------------------------------------------------------------------
# import


@validate_params(
    {"path": [str, os.PathLike], "n_samples": [Interval(Integral, 1, None, closed="left"), None],
     "files": ["array-like", None], "class_names": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def read_annotations(path, n_samples: int | None = None, *, files=None,
                     class_names=None) -> np.ndarray:
    """Read labels back as a partial label vector (``-1`` for every image left unlabeled).

    Reads, detected from the content:

    * our ``selection.csv`` (``file,label[,preview]``) and the older ``manifest.csv``
      (``index,file,label``);
    * Label Studio's CSV export (the image column, e.g. ``image``, and the ``<Choices>`` column,
      ``choice`` by default; ``id``, ``annotator``, ``annotation_id``, ``created_at``,
      ``lead_time`` and other columns are ignored) and JSON-MIN export (a list of objects with
      ``image`` and ``choice``; ``{"choices": [...]}`` holding one choice is accepted);
    * ``filename,label`` CSVs as CVAT and spreadsheets write them: header names are compared
      case-insensitively (``file``, ``filename``, ``image``, ``path``, ``name`` ... and
      ``label``, ``class``, ``choice``, ``category``); comma, semicolon or tab delimited; UTF-8,
      UTF-16 with a byte order mark, or (failing UTF-8) cp1252 / latin-1.

    **Matching.** With ``files`` (the current pool's paths relative to the input folder, e.g.
    ``load_image_folder(..., return_X_y=False).files``), each row goes to the image with the same
    relative path; else the one whose path ends the row's path (``photos/a.jpg`` finds
    ``a.jpg``); else the only one with that base name, also after removing the ``1a2b3c4d-``
    prefix Label Studio gives uploads (``/data/upload/3/1a2b3c4d-IMG_1038.jpg``) or taking the
    ``?d=`` path of its local-files URLs. Rows whose image is not in the pool (removed since the
    export) are left out with one warning listing them; a base name shared by several images is
    a :class:`ValueError`. Without ``files``, rows are keyed by row number: the ``index`` column
    of ``manifest.csv`` or a numeric ``file`` column (array data).

    **Labels.** Surrounding spaces are removed. A row with a blank label leaves its image
    unlabeled (except in the old ``manifest.csv``, where it is an error). With a class list
    (``class_names``, or ``class_names.txt`` beside the file), a label must be one of the
    names, compared case-insensitively and returned as written in the list. Without one,
    integer labels (``1``, ``1.0``) are integers; labels must be all integers or all names;
    every distinct name is a class, so labels that differ only in case or spaces
    (``Sneaker``, ``sneaker``) or have no letter or digit (``?``) get a ``UserWarning``
    naming them and their rows.

    Parameters
    ----------
    path : str or path-like
        A file in one of the formats above, or the folder written by
        :func:`export_for_annotation` (its ``selection.csv``, else its ``manifest.csv``).
    n_samples : int, optional
        Length of the returned vector. Defaults to ``len(files)``, or else the largest row
        number plus one; pass it so that row numbers past the pool are caught.
    files : sequence of str, optional
        The pool's relative paths, one per image, to match rows by file name.
    class_names : sequence of str, optional
        The allowed labels; default: ``class_names.txt`` beside the file, if there is one.

    Returns
    -------
    y : ndarray of shape (n_samples,)
        ``int64`` when every label is an integer; otherwise an ``object`` array of string
        labels with the integer ``-1`` for unlabeled samples (the convention of
        :mod:`sklearn.semi_supervised`).

    Raises
    ------
    ValueError
        Naming the file and row (line, or item of a JSON list) for: a file that cannot be
        decoded or parsed, a missing column, a row number that is not an integer or out of
        range, a file name shared by several images, two different labels for one image, the
        label ``-1``, an integer label too large for ``int64``, integer labels mixed with names,
        a label missing from the class list, or a file with no labeled row.

    See Also
    --------
    export_for_annotation : Write ``selection.csv`` and the previews.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from pathlib import Path
    >>> from as3l_sklearn import read_annotations
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "labels.csv").write_text("Filename;Label\\nb.jpg;Dog\\nc.jpg; cat\\n")
    >>> read_annotations(folder / "labels.csv", files=["a.jpg", "b.jpg", "c.jpg"],
    ...                  class_names=["cat", "dog"]).tolist()
    [-1, 'dog', 'cat']
    """
    source = _annotation_file(path)
    files = _check_files(files, None)
    if n_samples is None and files is not None:
        n_samples = len(files)
    elif files is not None and len(files) != n_samples:
        raise ValueError(f"files names {len(files)} images but n_samples={n_samples}")
    class_names, names_origin = _class_list(class_names, source)
    rows, legacy = _read_rows(source)
    entries = _labeled_rows(rows, legacy, files, n_samples, source)
    values = _parse_labels(entries, class_names, names_origin)
    if class_names is None:
        _warn_if_labels_look_like_typos(source, entries)
    integer = all(isinstance(v, int) for v in values.values())
    y = np.full(max(entries) + 1 if n_samples is None else int(n_samples), -1,
                dtype=np.int64 if integer else object)
    for index, value in values.items():
        y[index] = value
    return y


def _class_list(class_names, source: Path):
    """``(class_names, where they come from)``: the argument, else ``class_names.txt``
    beside ``source``, else ``(None, None)``."""
    if class_names is not None:
        return _check_class_names(class_names), "class_names"
    names_file = source.parent / CLASS_NAMES
    if not names_file.is_file():
        return None, None
    try:
        return _check_class_names([line.strip() for line in _read_text(names_file).splitlines()
                                   if line.strip()]), str(names_file)
    except ValueError as exc:
        raise ValueError(f"{names_file}: {exc}") from None


def _labeled_rows(rows, legacy: bool, files, n_samples, source: Path) -> dict:
    """Image index -> ``(where, label)`` of every labeled row; rows of files not in the pool
    are left out with one warning listing them."""
    lookup = _pool_lookup(files)
    entries = {}
    not_in_pool = []
    for where, index, file, label in rows:
        if label is None:
            if legacy:
                raise ValueError(f"{where}: the label of index {index} is blank; fill it in, "
                                 "or delete the row to leave the sample unlabeled")
            continue  # an image the labeller skipped stays unlabeled
        if _is_minus_one(label):
            raise ValueError(f"{where}: the label -1 is reserved for unlabeled samples")
        if index is None:
            index = _row_image(where, file, files, lookup)
            if index is None:
                not_in_pool.append(file)
                continue
        _check_row_index(where, index, n_samples)
        if index in entries and _label_key(entries[index][1]) != _label_key(label):
            what = f"index {index}" if file is None or files is None else f"file {file!r}"
            there = entries[index][0].rsplit(", ", 1)[-1]
            raise ValueError(f"{where}: {what} is a duplicate of {there} with another label "
                             f"({label[:80]!r}, there {entries[index][1][:80]!r})")
        entries.setdefault(index, (where, label))
    if not_in_pool:
        shown = ", ".join(not_in_pool[:10]) + (" ..." if len(not_in_pool) > 10 else "")
        # stacklevel: this function, read_annotations, its parameter check, the caller
        warnings.warn(f"{source}: {len(not_in_pool)} labeled file(s) are not in the pool (removed "
                      f"since the export?) and were left out: {shown}", UserWarning, stacklevel=4)
    if not entries:
        raise ValueError(f"{source}: no annotated rows (every label is blank"
                         f"{' or names a file not in the pool' if not_in_pool else ''})")
    return entries


def _row_image(where: str, file, files, lookup):
    """The index of the image a row without an index names: its row number when there is no
    pool (array data), else the pool's image of that file (None: not in the pool)."""
    if file is None:
        raise ValueError(f"{where}: the row names no image")
    if files is None:
        if _INTEGER.match(file) and "." not in file:
            return int(file)
        raise ValueError(
            f"{where}: the row names the file {file!r}; pass files= (the pool's relative "
            "paths, e.g. load_image_folder(..., return_X_y=False).files) to match rows to "
            "images by file name")
    return _match_file(file, files, lookup, where)


def _check_row_index(where: str, index: int, n_samples) -> None:
    if index < 0 or (n_samples is not None and index >= n_samples):
        bound = "" if n_samples is None else f" (n_samples={n_samples})"
        raise ValueError(f"{where}: index {index} is out of range{bound}")
    if n_samples is None and index >= _MAX_INFERRED_SAMPLES:
        raise ValueError(f"{where}: index {index} is larger than {_MAX_INFERRED_SAMPLES - 1}; "
                         "pass n_samples (the number of images in the pool)")


def _annotation_file(path) -> Path:
    """The annotation file ``path`` names: the file itself, or a folder's ``selection.csv``
    (else its ``manifest.csv``)."""
    path = Path(path)
    if path.is_dir():
        for name in (SELECTION, MANIFEST):
            if (path / name).is_file():
                return path / name
        raise ValueError(f"path: no annotation file found in {str(path)!r} "
                         f"(looked for {SELECTION} and {MANIFEST})")
    if not path.is_file():
        raise ValueError(f"path: no annotation file found at {str(path)!r}")
    return path


def _read_text(path: Path) -> str:
    """The file's text: a byte order mark decides, else UTF-8, else cp1252, else latin-1."""
    raw = path.read_bytes()
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
                          (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}: cannot decode the file as {encoding} (it starts with "
                                 f"that byte order mark): {exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        # what spreadsheets on Western-European Windows save as "CSV"
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # never fails: every byte is a character


def _read_rows(source: Path):
    """``[(where, index or None, file or None, label or None)]`` and whether it is a manifest."""
    text = _read_text(source)
    if not text.strip():
        raise ValueError(f"{source}: the file is empty; expected a header such as "
                         f"{','.join(SELECTION_COLUMNS[:2])}")
    if text.lstrip()[:1] in ("[", "{"):
        return _json_rows(source, text), False
    return _csv_rows(source, text)


def _find_column(header, candidates):
    for name in candidates:
        if name in header:
            return header.index(name)
    return None


def _csv_rows(source: Path, text: str):
    lines = text.splitlines()
    # Excel may start a CSV with a "sep=;" line that names the delimiter
    declared = re.fullmatch(r"sep=(.)", lines[0].strip(), flags=re.IGNORECASE)
    first_line = lines[1] if declared and len(lines) > 1 else lines[0]
    if declared:
        delimiter = declared.group(1)
    else:
        try:
            delimiter = csv.Sniffer().sniff(first_line, delimiters=",;\t").delimiter
        except csv.Error:
            # one column, or a header the sniffer cannot decide on: the most frequent candidate
            counts = {d: first_line.count(d) for d in ",;\t"}
            delimiter = max(counts, key=counts.get) if any(counts.values()) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        if declared:
            next(reader)
        header = [column.strip().lower() for column in next(reader)]
        index_col = header.index("index") if "index" in header else None
        file_col = _find_column(header, FILE_COLUMNS)
        label_col = _find_column(header, LABEL_COLUMNS)
        if label_col is None or (index_col is None and file_col is None):
            raise ValueError(
                f"{source}: missing column(s): found {header}; the header must name the images "
                f"(one of {', '.join(FILE_COLUMNS)}, or index) and the labels (one of "
                f"{', '.join(LABEL_COLUMNS)})")
        legacy = index_col is not None  # manifest.csv: rows keyed by index
        key_col = index_col if legacy else file_col
        rows = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # an empty line left by an editor
            where = f"{source}, line {line}"
            if len(row) <= max(key_col, label_col):
                raise ValueError(
                    f"{where}: expected {len(header)} columns, got {len(row)}: {row!r}"[:500])
            key = row[key_col].strip()
            label = _cell_label(row[label_col], where)
            if legacy:
                try:
                    index = int(key)
                except ValueError:
                    raise ValueError(f"{where}: index {key[:40]!r} is not an integer") from None
                rows.append((where, index, None, label))
            else:
                rows.append((where, None, key or None, label))
    except csv.Error as exc:
        raise ValueError(f"{source}, line {reader.line_num}: cannot parse the CSV: {exc} (a "
                         f"cell longer than {csv.field_size_limit()} characters is refused)"
                         ) from None
    return rows, legacy


def _cell_label(cell: str, where: str):
    """The one label of a cell, or None when blank; Label Studio writes several as JSON."""
    label = cell.strip()
    if label.startswith("{") and label.endswith("}"):
        try:
            return _choice_label(json.loads(label), where)
        except json.JSONDecodeError:
            pass  # a label that only looks like JSON
    return label or None


def _choice_label(value, where: str):
    """One label from a JSON-MIN ``choice`` value: a string, ``{"choices": [...]}`` or a list."""
    if isinstance(value, dict):
        if "choices" not in value:
            raise ValueError(f"{where}: expected a choice, got {json.dumps(value)[:200]}")
        value = value["choices"]
    if isinstance(value, list):
        if len(value) > 1:
            raise ValueError(f"{where}: {len(value)} choices {value[:10]!r} for one image; "
                             "one label per image is expected (choice=\"single\")")
        value = value[0] if value else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: expected a label, got {json.dumps(value)[:200]}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip() or None


def _json_rows(source: Path, text: str):
    try:
        items = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{source}: cannot parse the JSON: {exc}") from None
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ValueError(f"{source}: expected a JSON list of labeled images")
    rows = []
    for number, item in enumerate(items, start=1):
        where = f"{source}, item {number}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
        keys = {str(k).lower(): k for k in item}
        data = item.get("data") if isinstance(item.get("data"), dict) else None
        if data is not None and "annotations" in item:
            # Label Studio's full JSON export: the file in data, the answer in annotations
            data_keys = {str(k).lower(): k for k in data}
            file_key = next((data_keys[k] for k in FILE_COLUMNS if k in data_keys), None)
            file = data.get(file_key) if file_key is not None else None
            label = _full_export_label(item["annotations"], where)
        else:
            file_key = next((keys[k] for k in FILE_COLUMNS if k in keys), None)
            label_key = next((keys[k] for k in LABEL_COLUMNS if k in keys), None)
            if file_key is None and "index" not in keys:
                raise ValueError(f"{where}: no image key (one of {', '.join(FILE_COLUMNS)}) in "
                                 f"{sorted(keys)[:20]}")
            file = item.get(file_key) if file_key is not None else None
            label = (_choice_label(item[label_key], where)
                     if label_key is not None else None)
            if file is None and "index" in keys:
                index = item[keys["index"]]
                if not isinstance(index, int) or isinstance(index, bool):
                    raise ValueError(f"{where}: index {index!r} is not an integer")
                rows.append((where, index, None, label))
                continue
        if file is not None and not isinstance(file, str):
            file = str(file)
        rows.append((where, None, file.strip() if file else None, label))
    return rows


def _full_export_label(annotations, where):
    labels = set()
    for annotation in annotations if isinstance(annotations, list) else []:
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        for result in annotation.get("result") or []:
            if isinstance(result, dict) and result.get("type") == "choices":
                label = _choice_label(result.get("value", {}), where)
                if label is not None:
                    labels.add(label)
    if len(labels) > 1:
        raise ValueError(f"{where}: annotators disagree ({sorted(labels)}); one label per "
                         "image is expected")
    return labels.pop() if labels else None


def _pool_lookup(files):
    """Relative path -> index, and base name -> indices, of the pool."""
    if files is None:
        return None
    exact, by_name = {}, {}
    for index, file in enumerate(files):
        exact.setdefault(file, index)
        by_name.setdefault(PurePosixPath(file).name, []).append(index)
    return exact, by_name


def _candidate_paths(file: str):
    """What a row's file may name: the path itself, or a URL's ``?d=`` path or path part."""
    file = file.replace("\\", "/")
    if "://" in file or file.startswith("/data/") or "?" in file:
        parts = urlsplit(file)
        local = parse_qs(parts.query).get("d")  # Label Studio's local files: ?d=dir/a.jpg
        candidates = [local[0]] if local else [unquote(parts.path)]
    else:
        candidates = [file, unquote(file)] if "%" in file else [file]
    return [c.removeprefix("./") for c in candidates]


def _match_file(file, files, lookup, where):
    """The pool index a row's file names, or None when it is not in the pool."""
    exact, by_name = lookup
    candidates = _candidate_paths(file)
    for candidate in candidates:
        if candidate in exact:
            return exact[candidate]
    for candidate in candidates:
        parts = PurePosixPath(candidate).parts
        # the longest pool path of two parts or more that ends the candidate path: a tool
        # that saw the images from the folder's parent writes "photos/trip/a.jpg"
        for start in range(1, len(parts) - 1):
            suffix = "/".join(parts[start:])
            if suffix in exact:
                return exact[suffix]
        name = PurePosixPath(candidate).name
        upload = _UPLOAD_PREFIX.match(name)
        for base in ([name, upload.group(1)] if upload else [name]):
            holders = by_name.get(base, [])
            if len(holders) == 1:
                return holders[0]
            if len(holders) > 1:
                shown = ", ".join(files[i] for i in holders[:5])
                raise ValueError(f"{where}: the file {file!r} is ambiguous: {len(holders)} images "
                                 f"in the pool are named {base!r} ({shown}); write its path "
                                 "relative to the input folder")
    return None


def _as_int(label: str):
    """The integer a label spells ("1", "+1", "1.0"), or None; raises when past int64."""
    if not _INTEGER.match(label):
        return None
    value = int(label.split(".")[0])
    if abs(value) > _INT64_MAX:
        raise OverflowError
    return value


def _parse_labels(entries, class_names, names_origin):
    """Index -> label: a class name from the list, else all integers or all strings."""
    values = {}
    if class_names is not None:
        exact = {name: name for name in class_names}
        folded = {name.casefold(): name for name in class_names}
        numeric = {}
        for name in class_names:
            try:
                number = _as_int(name)
            except OverflowError:
                number = None
            if number is not None:
                numeric[number] = name
        for index, (where, label) in entries.items():
            name = exact.get(label) or folded.get(label.casefold())
            if name is None:
                try:
                    number = _as_int(label)
                except OverflowError:
                    number = None
                name = numeric.get(number) if number is not None else None
            if name is None:
                raise ValueError(f"{where}: label {label[:80]!r} is not one of the class names "
                                 f"in {names_origin}: {class_names}")
            values[index] = name
        if all(_INTEGER.match(name) for name in class_names):
            values = {index: _as_int(name) for index, name in values.items()}
        return values

    first_kind = None
    for index, (where, label) in entries.items():
        try:
            number = _as_int(label)
        except OverflowError:
            raise ValueError(f"{where}: label {label!r} is an integer too large for int64 "
                             "labels; use class names or smaller integers") from None
        kind = "integer" if number is not None else "name"
        if first_kind is None:
            first_kind = (kind, where.rsplit(", ", 1)[-1], label)
        elif kind != first_kind[0]:
            article = "an" if kind == "integer" else "a"
            raise ValueError(
                f"{where}: label {label[:80]!r} is {article} {kind} but {first_kind[1]} has the "
                f"{first_kind[0]} {first_kind[2][:80]!r}; labels must be all integers or all "
                "class names (pass class_names to check them)")
        values[index] = number if number is not None else label
    return values


def _warn_if_labels_look_like_typos(source: Path, entries) -> None:
    """Warn, naming the rows, about labels that would silently become classes of their own.

    Without a class list every distinct label is a class: ``Sneaker`` and ``sneaker`` would be
    two, and ``?`` (a labeller's "don't know") a third.
    """
    rows_by_label = {}  # label -> the rows that carry it, in file order
    for where, label in entries.values():
        rows_by_label.setdefault(label, []).append(where.rsplit(", ", 1)[-1])

    def shown(label):
        rows = rows_by_label[label]
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return f"{label[:80]!r} ({', '.join(rows[:3])}{more})"

    spellings = {}  # normalised name -> the spellings seen
    for label in rows_by_label:
        if _INTEGER.match(label) is None:  # "1" and "1.0" are one integer class already
            spellings.setdefault(" ".join(label.split()).casefold(), []).append(label)
    problems = [
        " and ".join(shown(label) for label in variants) + " differ only in case or spaces"
        for variants in spellings.values() if len(variants) > 1
    ]
    problems += [f"{shown(label)} has no letter or digit" for label in rows_by_label
                 if not any(character.isalnum() for character in label)]
    if problems:
        listed = "; ".join(problems[:10]) + ("; ..." if len(problems) > 10 else "")
        warnings.warn(
            f"{source}: without a class list every distinct label becomes a class, and these "
            f"look like typos: {listed}. Pass class_names (as3l: --classes, or a "
            f"{CLASS_NAMES} beside the file) to check the labels", UserWarning, stacklevel=4)


def _label_key(label: str):
    # what makes two spellings of a label the same answer: "1" = "1.0", "Shirt" = "shirt"
    try:
        number = _as_int(label)
    except OverflowError:
        number = None
    return number if number is not None else label.casefold()


def _is_minus_one(label: str) -> bool:
    return bool(_INTEGER.match(label)) and int(label.split(".")[0]) == -1

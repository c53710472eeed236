"""What the ``as3l`` command writes and guards in ``--output``: the lock, the CSV files, the
saved model, the figures and the thumbnails.

The writers here write to the path they are given; the run gives them a temporary name
that becomes the result's once the file is complete (see :mod:`._atomic`, :mod:`._resume`).
"""

from __future__ import annotations

import csv
import errno
import io
import os
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
from PIL import Image
from sklearn.decomposition import PCA

from ._errors import UserError

#: name of the lock file an ``as3l`` run holds in its ``--output`` folder
LOCK_NAME = ".as3l.lock"
#: what ``model.joblib`` holds (a dict) is recognised by this key and version
MODEL_FORMAT = "as3l-model"
MODEL_FORMAT_VERSION = 1
#: the embedding map names at most this many classes in its legend
MAX_LEGEND_CLASSES = 20
#: the columns of a run's predictions.csv: ``label`` is the person's label where there is
#: one (``annotated`` 1, confidence 1), else the model's; ``model_label`` is always the model's
PREDICTION_COLUMNS = ("file", "label", "confidence", "model_label", "model_confidence",
                      "prior_label", "prior_confidence", "annotated")
#: the columns of ``as3l predict``'s predictions.csv (the model's labels only)
PREDICT_COLUMNS = ("file", "label", "confidence")


# --------------------------------------------------------------------------------------------
# one writer per output folder


class OutputLock:
    """An exclusive lock on an output folder, held for the whole run.

    The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local file systems)
    holding the owner's process id. A lock whose process no longer exists is stale (a run
    killed with SIGKILL, a crashed machine) and is taken over.
    """

    def __init__(self, folder: Path, flag: str = "--output"):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.flag = flag
        self._held = False

    def acquire(self) -> "OutputLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # the second try follows the removal of a stale lock
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = _lock_owner(self.path)
                if owner is not None and _process_exists(owner):
                    raise UserError(
                        f"{self.flag} {self.folder} is in use by another as3l run (process {owner}, "
                        f"lock file {self.path}); wait for it to finish or choose another {self.flag}"
                    ) from None
                try:  # stale: its process is gone
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(handle, "w") as file:
                file.write(f"{os.getpid()}\n")
            self._held = True
            return self
        raise UserError(f"could not lock {self.flag} {self.folder} ({self.path})")

    def release(self) -> None:
        if self._held:
            self._held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def _lock_owner(path: Path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None  # unreadable or half-written: treated as stale


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # exists, owned by someone else
    return True


# --------------------------------------------------------------------------------------------
# CSV outputs


def label_names(labels, classes, class_names) -> list[str]:
    """Display names of ``labels`` (values of ``classes``); ``class_names`` aligned with ``classes``."""
    lookup = {c: str(n) for c, n in zip(list(classes), class_names)}
    return [lookup.get(label, str(label)) for label in list(labels)]


def write_predictions(path: Path, files, proba, classes, class_names, *, prior=None,
                      annotated=None, labels=None) -> Path:
    """Write ``predictions.csv``: one row per image, its label and that label's confidence.

    With ``prior`` (label distributions over ``classes``), ``annotated`` (bool per image) and
    ``labels`` (the person's label of each annotated image, as a class name) the file has
    the columns of :data:`PREDICTION_COLUMNS`: an annotated image's ``label`` is the
    person's, with confidence 1 (what a person wrote is never replaced by a guess), and the
    model's own guess is in ``model_label`` / ``model_confidence`` for every image. Without
    them (``as3l predict``) the columns are :data:`PREDICT_COLUMNS`, the model's labels.
    """
    proba = np.asarray(proba, dtype=float)
    best = proba.argmax(axis=1)
    names = label_names(np.asarray(classes)[best], classes, class_names)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if prior is None:
            writer.writerow(PREDICT_COLUMNS)
            writer.writerows([file, names[i], f"{proba[i, best[i]]:.4f}"]
                             for i, file in enumerate(files))
            return Path(path)
        writer.writerow(PREDICTION_COLUMNS)
        annotated = np.zeros(len(files), dtype=bool) if annotated is None else annotated
        prior_best = np.asarray(prior).argmax(axis=1)
        prior_names = label_names(np.asarray(classes)[prior_best], classes, class_names)
        for i, file in enumerate(files):
            model = [names[i], f"{proba[i, best[i]]:.4f}"]
            given = bool(annotated[i]) and labels is not None and labels[i] not in (None, "")
            writer.writerow([file, *([labels[i], "1.0000"] if given else model), *model,
                             prior_names[i], f"{float(prior[i, prior_best[i]]):.4f}",
                             int(bool(annotated[i]))])
    return Path(path)


def write_selection(path: Path, files, indices, labels=None) -> Path:
    """Write ``selection.csv``: the chosen images in selection order, with the label used (if any)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["rank", "file", "label"])
        for rank, index in enumerate(indices):
            label = "" if labels is None or labels[rank] is None else labels[rank]
            writer.writerow([rank, files[index], label])
    return Path(path)


# --------------------------------------------------------------------------------------------
# the saved model


def save_model(path: Path, classifier, class_names, *, input_shape, color_mode, source) -> Path:
    """Save the fitted classifier with what ``as3l predict`` needs to prepare new images.

    The classifier is moved to the CPU first (``set_params(device="cpu")`` where the estimator
    supports it is not enough for skorch nets, so the estimators' own pickling is trusted to
    map GPU storages to the CPU; see docs/persistence.md).
    """
    bundle = {
        "format": MODEL_FORMAT,
        "version": MODEL_FORMAT_VERSION,
        "classifier": classifier,
        "classes": list(classifier.classes_),
        "class_names": [str(n) for n in class_names],
        # images are loaded at this (height, width, channels) before predict_proba
        "input_shape": [int(s) for s in input_shape],
        "color_mode": color_mode,
        "source": source,
    }
    joblib.dump(bundle, path)
    return Path(path)


def load_model(path) -> dict:
    """Load what :func:`save_model` wrote; a :class:`UserError` names the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MODEL {path} does not exist (it is the model.joblib an as3l run writes "
                        "in its --output)")
    try:
        bundle = joblib.load(path)
    except Exception as exc:  # unpickling raises many types
        raise UserError(f"MODEL {path} could not be loaded: {type(exc).__name__}: {exc}") from exc
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise UserError(f"MODEL {path} is not a model written by the as3l command")
    return bundle


# --------------------------------------------------------------------------------------------
# figures (PNG bytes; written to files with --plot and inlined in report.html)


@dataclass
class Figure:
    name: str  # file name, e.g. "embedding_map.png"
    title: str
    png: bytes


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None without matplotlib.

    Imported here, not at the top of the module: matplotlib is optional (the ``plot``
    extra; report.html then says the figures are missing), and the backend must be chosen
    before pyplot is first imported.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _png(plt, fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def make_figures(f_fine, indices, colour_labels, priors, truth_of_unlabeled, unlabeled, classes,
                 curves, colour_by_truth=True, colour_names=None) -> list[Figure]:
    """The figures that have data: the embedding map always, the reliability diagram when the
    true labels of unlabeled images are known, the learning curve when there is a monitored
    test set. Empty list when matplotlib is missing.

    ``colour_names``, when given, names the classes of the embedding map: ``colour_labels``
    are then integer indices into it, and the legend names each class present (up to
    :data:`MAX_LEGEND_CLASSES`; more colours than that could not be told apart anyway).
    """
    plt = _pyplot()
    if plt is None:
        return []
    figures = [_embedding_map(plt, f_fine, indices, colour_labels, colour_by_truth, colour_names)]
    if truth_of_unlabeled is not None and unlabeled.any():
        figures.append(_prior_reliability(plt, priors[unlabeled], truth_of_unlabeled, classes))
    curves = {name: rows for name, rows in curves.items() if rows}
    if curves:
        figures.append(_accuracy_versus_step(plt, curves))
    return figures


def _embedding_map(plt, f_fine, indices, colour_labels, colour_by_truth, colour_names) -> Figure:
    """The fine-tuned features in 2-D (PCA), coloured by class, the selected images marked."""
    n_components = min(2, f_fine.shape[1], f_fine.shape[0])
    coords = PCA(n_components=n_components, random_state=0).fit_transform(f_fine)
    if n_components == 1:
        coords = np.column_stack([coords[:, 0], np.zeros(len(coords))])
    labels = np.asarray(colour_labels)
    # integer class indices sort as numbers (legend order 0, 1, 2, ..., 10), anything else as text
    labels = labels.astype(int) if colour_names is not None else labels.astype(str)
    present, codes = np.unique(labels, return_inverse=True)
    named = colour_names is not None and len(present) <= MAX_LEGEND_CLASSES
    palette = plt.get_cmap("tab10" if len(present) <= 10 else "tab20")
    fig, ax = plt.subplots(figsize=(7.5, 5) if named else (6, 5))
    ax.scatter(coords[:, 0], coords[:, 1], c=palette(codes % palette.N), s=4, alpha=0.5)
    selected = ax.scatter(coords[indices, 0], coords[indices, 1], c="black", marker="*", s=120,
                          label="selected")
    ax.set_title("Fine-tuned features (PCA), selected images marked\n"
                 + ("colour: true class" if colour_by_truth else "colour: prior pseudo-label"),
                 fontsize=10)
    if named:
        # proxy markers: the map's own 4-point dots would be too small to read in a legend
        handles = [plt.Line2D([], [], linestyle="", marker="o", markersize=6,
                              label=str(colour_names[label]), color=palette(code % palette.N))
                   for code, label in enumerate(present)]
        ax.legend(handles=handles + [selected], loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  fontsize=8, title="true class" if colour_by_truth else "prior pseudo-label",
                  title_fontsize=8)
    else:
        ax.legend(loc="best")
    return Figure("embedding_map.png", "Embedding map", _png(plt, fig))


def _prior_reliability(plt, priors, truth, classes) -> Figure:
    """Reliability diagram of the priors of the unlabeled images against their true labels."""
    confidence = priors.max(axis=1)
    correct = np.asarray(classes)[priors.argmax(axis=1)] == truth
    bins = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(confidence, bins) - 1, 0, 9)
    accuracy = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(10)]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.bar(bins[:-1], accuracy, width=0.1, align="edge", edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlabel("prior confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability of the prior pseudo-labels")
    ax.legend(loc="upper left")
    return Figure("prior_reliability.png", "Reliability of the priors", _png(plt, fig))


def _accuracy_versus_step(plt, curves) -> Figure:
    """The monitored test accuracy of each classifier along its training steps."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in curves.items():
        ax.plot([r["step"] for r in rows], [r["monitor_accuracy"] for r in rows], label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy versus step")
    ax.legend(loc="lower right")
    return Figure("accuracy_vs_step.png", "Test accuracy versus training step", _png(plt, fig))


def thumbnail_png(image, side: int = 96) -> bytes:
    """One ``H x W x C`` uint8 image as PNG bytes, enlarged (nearest) so small images stay visible."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    scale = max(1, side // max(picture.size))
    if scale > 1:
        picture = picture.resize((picture.size[0] * scale, picture.size[1] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()

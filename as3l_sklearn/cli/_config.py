"""What a checked command line asks for, frozen: no stage changes what the user asked.

:func:`~as3l_sklearn.cli._parser.parse_command` builds a :class:`RunConfig` (``as3l`` /
``as3l run``) or a :class:`PredictConfig` (``as3l predict``) once the flags passed every
check; values that need resolving (the device, ``--annotations`` folders) are resolved
then, and a ``torchrun`` rank's own folders are put in with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotation only
    from ._encoder import EncoderSpec


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/as3l``, or ``~/.cache/as3l``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "as3l"


def cache_location(no_cache: bool, cache_dir: str | None) -> str | Path | None:
    """The stage cache folder ``--cache-dir`` / ``--no-cache`` ask for (None: no cache)."""
    return None if no_cache else (cache_dir or default_cache_dir())


@dataclass(frozen=True)
class RunConfig:
    """The main job (``as3l [run] ...``): every flag, checked, with resolved values.

    Each field but ``resolved_device`` is the flag of the same name (``--n-train`` is
    ``n_train``) as parsed, except where a value is resolved before any work:

    * ``annotations``: a tuple of the label files, one per ``--annotations`` in the order
      given (a folder given is replaced by its ``selection.csv``, or ``manifest.csv``);
      None without the flag. With ``export_annotations`` too, the run is the next labelling
      round (:attr:`next_round`);
    * ``classes``: a tuple (the flag parses to a list);
    * ``resolved_encoder``: ``--encoder`` and ``--encoder-weights`` resolved (None without);
    * under ``torchrun``: ``no_cache`` is True on every rank (no rank may skip a stage the
      others train), and on ranks other than 0, ``output`` and ``export_annotations`` are
      scratch folders and ``quiet`` is True (rank 0 alone writes and prints).

    ``report.json`` records these fields as ``config`` (:meth:`flags`).
    """

    dataset: str
    path: str | None
    labeled_subfolders: bool
    root: str | None
    n_train: int | None
    test_size: float
    budget: int
    selector: str
    backbone: str
    image_size: int | None
    embed_epochs: int | None
    embed_steps: int | None
    retrain_embedding: bool
    encoder: str | None
    encoder_weights: str | None
    encoder_tune: bool
    encoder_compare_simsiam: bool
    max_iter: int | None
    time_budget: float | None
    preset: str
    prior: str
    prior_mode: str
    threshold: str
    compare: bool
    annotations: tuple[str, ...] | None
    export_annotations: str | None
    classes: tuple[str, ...] | None
    label_studio_root: str | None
    output: str
    overwrite: bool
    cache_dir: str | None
    no_cache: bool
    plot: bool
    device: str
    seed: int
    quiet: bool
    verbose: bool
    #: the device the run trains on: ``--device`` with ``auto`` resolved (``cuda`` is this
    #: rank's GPU under ``torchrun``)
    resolved_device: str
    #: ``--encoder`` / ``--encoder-weights`` resolved (the weights file, its size and time,
    #: the input size and normalisation): :class:`~._encoder.EncoderSpec`, None without
    resolved_encoder: EncoderSpec | None = None

    def flags(self) -> dict:
        """The flags as ``report.json`` records them (every field but the resolved ones)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if not f.name.startswith("resolved_")}

    @property
    def next_round(self) -> bool:
        """``--annotations`` with ``--export-annotations``: export ``--budget`` new images to
        label, chosen given the labels so far, then stop."""
        return bool(self.annotations) and bool(self.export_annotations)

    @property
    def device_kind(self) -> str:
        """``"cuda"`` or ``"cpu"``: which of the measured defaults (image side, steps) apply."""
        return "cuda" if self.resolved_device.startswith("cuda") else "cpu"

    @property
    def verbosity(self) -> int:
        """The estimators' ``verbose``: 0 with ``--quiet``, 2 with ``--verbose``, else 1."""
        return 0 if self.quiet else (2 if self.verbose else 1)

    @property
    def cache_location(self) -> str | Path | None:
        """The stage cache folder, None with ``--no-cache`` (see :func:`cache_location`)."""
        return cache_location(self.no_cache, self.cache_dir)


@dataclass(frozen=True)
class PredictConfig:
    """``as3l predict MODEL PATH [PATH ...] --output DIR``: the flags, checked, and the
    resolved device. ``paths`` are the folders, image files and ``.npy`` arrays to predict."""

    model: str
    paths: tuple[str, ...]
    output: str
    overwrite: bool
    device: str
    quiet: bool
    #: ``--device`` with ``auto`` resolved
    resolved_device: str

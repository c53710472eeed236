"""Label Studio's local files for a folder run: where the task files' image URLs point
(``--label-studio-root``, Label Studio's ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, by
default the input folder's parent) and what to set to serve them."""

from __future__ import annotations

import os
from pathlib import Path

from ..selection._annotation import _local_files_prefix


def document_root(folder, root=None) -> Path:
    """The document root the task files use: ``root``, else the parent of ``folder``."""
    folder = Path(os.path.abspath(folder))
    return Path(os.path.abspath(root)) if root is not None else folder.parent


def check_document_root(folder, root=None) -> str:
    """``folder``'s path below the document root (``photos/``); a ``ValueError`` when Label
    Studio could not serve ``folder`` from it (not strictly below the root)."""
    return _local_files_prefix(folder, root)


def task_location(config) -> dict:
    """The ``folder=`` and ``document_root=`` arguments of ``write_label_studio_tasks`` for a
    folder run."""
    return {"folder": config.path, "document_root": config.label_studio_root}


def setup(config, tasks) -> dict:
    """What to set in Label Studio to open ``tasks`` (``report.json``'s ``label_studio``)."""
    return {"tasks": str(tasks),
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root(config.path,
                                                                        config.label_studio_root)),
            "local_files_storage_path": str(Path(os.path.abspath(config.path)))}


def instructions(label_studio: dict) -> str:
    """The lines printed at the end of a folder run: the two environment variables to start
    Label Studio with, the storage to add, the task file to import."""
    root = label_studio["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"]
    return (
        "Label Studio: start it with\n"
        f"    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true "
        f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root} label-studio start\n"
        f"  add a source storage of type 'Local files' with the absolute path "
        f"{label_studio['local_files_storage_path']} (no sync needed), then import "
        f"{label_studio['tasks']}")

"""The results of a run as one set, and resuming an unfinished run.

``--output`` holds the results of one run at a time. ``report.json`` names that run (its
id, start time, command line), its status and the files that belong to it:

* ``"running"``: written when the run starts writing into ``--output`` (its first file),
  before the earlier run's results are removed. A run killed with SIGKILL (or a power cut)
  leaves this status: nothing in the folder claims to be a complete set.
* ``"complete"`` or ``"exported"`` (an export run, which the import run completes): the
  last file written is the final ``report.json``, after every other file.
* ``"interrupted"`` (Ctrl-C, with what was done) and ``"failed"`` (an error, named).

A new run with the same ``--output`` resumes an unfinished one (interrupted, failed, killed:
the stage cache keeps what it had computed) without ``--overwrite``; only a completed run's
results need ``--overwrite``. Each file is written whole (:mod:`._atomic`).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ._atomic import atomic_path, atomic_write_text, remove_leftovers
from ._errors import UserError

#: every file an ``as3l`` run may write in ``--output``: what a new run removes of the
#: earlier run's results (and nothing else of the folder)
RESULT_FILES = ("predictions.csv", "selection.csv", "model.joblib", "report.json", "report.html",
                "label_studio_tasks.json", "embedding_map.png", "prior_reliability.png",
                "accuracy_vs_step.png")
#: statuses of a run that ended without its full results
UNFINISHED = ("running", "interrupted", "failed")


@dataclass(frozen=True)
class RunRecord:
    """Who wrote an ``--output`` folder: this run's id, start time, process and command line."""

    id: str
    started: str
    pid: int
    command: str

    @classmethod
    def new(cls, command_line=None) -> "RunRecord":
        argv = list(sys.argv[1:] if command_line is None else command_line)
        return cls(id=uuid.uuid4().hex[:12], started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   pid=os.getpid(), command=shlex.join(["as3l", *argv]))

    def as_dict(self, status: str) -> dict:
        return {"id": self.id, "started": self.started, "pid": self.pid, "command": self.command,
                "status": status}


# --------------------------------------------------------------------------------------------
# the earlier run in --output


@dataclass(frozen=True)
class EarlierRun:
    """What ``report.json`` says of the run that wrote ``--output`` before."""

    status: str  # complete, exported, interrupted, failed, running; "" when there is none
    started: str = ""
    command: str = ""
    stage: str = ""

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED and self.status != ""

    def describe(self) -> str:
        when = f" (started {self.started}: {self.command})" if self.started else ""
        if self.status == "running":
            return f"was killed before it finished{when}"
        if self.status == "interrupted":
            return f"was interrupted{f' during {self.stage!r}' if self.stage else ''}{when}"
        if self.status == "failed":
            return f"failed{when}"
        return f"completed{when}"


def earlier_run(folder) -> EarlierRun:
    """The earlier run recorded in ``folder/report.json`` (reports of older versions, without
    a ``run`` section, too)."""
    report_path = Path(folder) / "report.json"
    if not report_path.exists():
        return EarlierRun("")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return EarlierRun("running")  # unreadable: not a complete set
    if not isinstance(report, dict):
        return EarlierRun("running")
    run = report.get("run") if isinstance(report.get("run"), dict) else {}
    status = run.get("status")
    if status is None:  # a report of an older version
        status = ("interrupted" if report.get("interrupted")
                  else "exported" if report.get("exported_only") else "complete")
    return EarlierRun(str(status), str(run.get("started", "")), str(run.get("command", "")),
                      str(report.get("stage_reached") or ""))


def check_output_folder(folder, overwrite: bool) -> EarlierRun:
    """Refuse an ``--output`` that holds a completed run's results, unless ``--overwrite``;
    return the earlier run (status ``""`` when there is none).

    An unfinished run (interrupted, failed, killed) is resumed without ``--overwrite``, and an
    export run's results are completed by the import run that follows it.
    """
    earlier = earlier_run(folder)
    if overwrite or earlier.status in ("", "exported", *UNFINISHED):
        return earlier
    raise UserError(f"--output {folder} already holds the results of an earlier run that "
                    f"{earlier.describe()}; choose another --output, or pass --overwrite to "
                    "replace them")


# --------------------------------------------------------------------------------------------
# this run's files


@dataclass
class OutputFolder:
    """``--output`` as this run writes it: each file whole, and the files as one set.

    Before the first file, :meth:`open` marks the folder with a ``report.json`` of status
    ``"running"`` naming this run, then removes the earlier run's results
    (:data:`RESULT_FILES`, nothing else) and temporary files left by killed runs. A run that
    fails before writing anything leaves the folder as it was.
    """

    folder: Path
    record: RunRecord
    flag: str = "--output"
    #: the files this run wrote, in order (names inside ``folder``)
    written: list = field(default_factory=list)
    opened: bool = False

    def path(self, name: str) -> Path:
        return self.folder / name

    def open(self) -> None:
        """Mark the folder as this run's (``report.json``: running) and clear the earlier set."""
        if self.opened:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_leftovers(self.folder)
        marker = {"run": self.record.as_dict("running"), "files": [],
                  "note": "this run is in progress, or was killed before it finished: the "
                          "files beside this report are not a complete set"}
        atomic_write_text(self.path("report.json"), json.dumps(marker, indent=2), self.flag)
        self.opened = True
        for name in RESULT_FILES:
            if name != "report.json":
                try:
                    self.path(name).unlink()
                except FileNotFoundError:
                    pass

    @contextmanager
    def writing(self, name: str):
        """Yield a temporary path for ``name``; it becomes ``folder/name`` when the block ends
        (see :func:`~._atomic.atomic_path`)."""
        self.open()
        with atomic_path(self.path(name), self.flag) as temp:
            yield temp
        if name not in self.written:
            self.written.append(name)

    def write_bytes(self, name: str, data: bytes) -> Path:
        with self.writing(name) as temp:
            temp.write_bytes(data)
        return self.path(name)

    def write_text(self, name: str, text: str) -> Path:
        with self.writing(name) as temp:
            temp.write_text(text, encoding="utf-8")
        return self.path(name)

    def write_report(self, report: dict, status: str, default=None) -> Path:
        """Write ``report.json`` with this run's record and status and the files it wrote
        (``report.json`` itself last)."""
        files = [name for name in self.written if name != "report.json"] + ["report.json"]
        report["run"] = dict(self.record.as_dict(status),
                             finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        report["files"] = files
        return self.write_text("report.json", json.dumps(report, indent=2, default=default))

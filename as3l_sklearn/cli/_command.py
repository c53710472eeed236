"""The main job of the ``as3l`` command with its guards: locks on the output folders, the
earlier run in ``--output`` (resumed when unfinished), Ctrl-C, errors as exit statuses,
one-line warnings, ``torchrun``."""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import torch.distributed as dist

from ..utils._distributed import (DistributedContext, get_distributed, launched_by_torchrun,
                                  resolve_distributed_device)
from ._cache import StageCache
from ._config import RunConfig
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from ._label_studio import instructions
from ._outputs import OutputLock
from ._progress import StageTimer, sigint_handled
from ._report import format_report, write_failed_report, write_reports
from ._resume import UNFINISHED, EarlierRun, OutputFolder, RunRecord, check_output_folder
from ._stages import next_annotations_flags, run_pipeline, write_model_outputs
from ._state import RunContext, RunState
from ._warnings import one_line_warnings


def run_command(config: RunConfig, command_line=None) -> int:
    """Run the main job of ``config`` (joining the process group under ``torchrun``);
    return the exit status.

    0: done; 2: a user error (printed without a traceback); 130: stopped by Ctrl-C, with what
    was done written to ``--output`` and ``report.json`` marked ``"interrupted": true``.
    Under ``torchrun`` every rank runs the chain with DDP training and rank 0 alone writes
    (see :func:`join_process_group`). ``command_line`` (the arguments, without the program
    name; default ``sys.argv[1:]``) is recorded in ``report.json``.
    """
    try:
        config, group, scratch = join_process_group(config)
    except (RuntimeError, ValueError) as exc:
        print(f"as3l: error: could not join the torchrun process group: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(config, group, RunRecord.new(command_line))
    finally:
        if group is not None and dist.is_initialized():
            dist.destroy_process_group()
        if scratch is not None:
            scratch.cleanup()


def join_process_group(config: RunConfig):
    """Under ``torchrun``: join the process group and make rank 0 alone write outputs.

    Every rank runs the whole chain (selection and propagation are cheap and deterministic;
    SimSiam and FlexMatch shard their batches with DDP), with the stage cache off so that no
    rank skips a stage the others train. Ranks other than 0 are quiet and write into a
    scratch folder removed at the end. Returns ``(config, process group or None, scratch
    folder or None)``, the config with this rank's device, cache and folders.
    """
    if not launched_by_torchrun():
        return config, None, None
    group = get_distributed(config.resolved_device)
    if group is None:
        return config, None, None
    config = replace(config, resolved_device=resolve_distributed_device(config.resolved_device),
                     no_cache=True)
    if group.is_main:
        return config, group, None
    scratch = tempfile.TemporaryDirectory(prefix=f"as3l-rank{group.rank}-")
    export = config.export_annotations
    config = replace(config, output=str(Path(scratch.name) / "output"), quiet=True,
                     export_annotations=str(Path(scratch.name) / "export") if export else export)
    return config, group, scratch


def _run(config: RunConfig, group: DistributedContext | None, record: RunRecord) -> int:
    main_rank = group is None or group.is_main
    run = RunContext(config=config, timer=StageTimer(config.quiet),
                     cache=StageCache(config.cache_location),
                     output=OutputFolder(Path(config.output), record))
    state = RunState()
    new_folders = [Path(f) for f in (config.output, config.export_annotations)
                   if f is not None and not Path(f).exists()]
    with one_line_warnings(), sigint_handled(), ExitStack() as locks:
        try:
            earlier = _lock_output_folders(config, locks)
            _note_resumed(run, state, earlier)
            run_pipeline(run, state)
            write_reports(run, state)
        except KeyboardInterrupt:
            return _stop_interrupted(run, state, main_rank)
        except (UserError, ValueError, TypeError, OSError) as exc:
            # OSError: a folder or file that cannot be written (read-only, a file in the way)
            print(f"as3l: error: {exc}", file=sys.stderr)
            write_failed_report(run, state, str(exc))
            locks.close()
            _remove_if_empty(new_folders)
            return EXIT_USAGE
    if not main_rank:
        return EXIT_OK
    _print_end(config, state.report)
    return EXIT_OK


def _print_end(config: RunConfig, report: dict) -> None:
    """The final report and where the results are."""
    print(format_report(report))
    if config.export_annotations:
        # the labels so far and the new ones: the next run reads them all
        label_files = [*(config.annotations or ()),
                       str(Path(config.export_annotations) / "selection.csv")]
        print(f"\nreport written to {Path(config.output) / 'report.json'}; label the images in "
              f"{config.export_annotations}, then run again with "
              f"{next_annotations_flags(label_files)}")
    else:
        print(f"\nresults in {config.output}: predictions.csv, selection.csv, model.joblib, "
              "report.json, report.html")
    if "label_studio" in report:
        print(instructions(report["label_studio"]))


def _lock_output_folders(config: RunConfig, locks: ExitStack) -> EarlierRun:
    """Refuse an ``--output`` with a completed earlier run's results (an unfinished run is
    resumed); lock ``--output`` (and the export folder) until the run ends."""
    earlier = check_output_folder(Path(config.output), config.overwrite)
    locks.enter_context(OutputLock(Path(config.output)))
    if config.export_annotations:
        locks.enter_context(OutputLock(Path(config.export_annotations), "--export-annotations"))
    return earlier


def _note_resumed(run: RunContext, state: RunState, earlier: EarlierRun) -> None:
    """Say (and record) that this run resumes an unfinished earlier one in ``--output``."""
    if earlier.status not in UNFINISHED:
        return
    state.report["resumed"] = {"status": earlier.status, "started": earlier.started,
                               "command": earlier.command}
    run.timer.say(f"--output {run.config.output}: the earlier run there {earlier.describe()}; "
                  "this run resumes it (the stages it finished come from the stage cache)")


def _remove_if_empty(folders) -> None:
    """Remove the folders a failed run created, if it left them empty (never a folder that
    existed before the run)."""
    for folder in folders:
        try:
            folder.rmdir()  # only an empty folder is removed
        except OSError:
            pass


def _stop_interrupted(run: RunContext, state: RunState, main_rank: bool) -> int:
    """After Ctrl-C: mark the report, keep what was done, say where it is."""
    report, stage = state.report, run.timer.current
    report["interrupted"] = True
    report["stage_reached"] = stage
    keep_partial_outputs(run, state)
    try:
        write_reports(run, state, "interrupted")
    except (UserError, OSError) as exc:
        print(f"as3l: error: {exc}", file=sys.stderr)
    if main_rank:
        print(format_report(report))
    print(f"\nas3l: interrupted during '{stage}'; what was done is in {run.config.output}. Run "
          "the same command again to resume: the stages that finished come from the stage "
          "cache (no --overwrite needed)", file=sys.stderr)
    return EXIT_INTERRUPTED


def keep_partial_outputs(run: RunContext, state: RunState) -> None:
    """After Ctrl-C: save the classifier as it was when training stopped, if it had started
    and the estimator kept its weights (it returns fitted from an interrupted fit)."""
    classifier, report = state.classifier, state.report
    if classifier is None or not hasattr(classifier, "classes_"):
        return
    if "model.joblib" in run.output.written and "classifier" in report:
        return  # training had finished; the interruption came later
    try:
        write_model_outputs(run, state)
        report["partial_model"] = ("model.joblib and predictions.csv hold the classifier as it "
                                   "was when training stopped")
    except Exception as exc:  # a half-built model: keep the rest of what was done
        report["partial_model"] = f"not saved: {type(exc).__name__}: {exc}"

"""The reports of an ``as3l`` run: ``report.json``, ``report.html`` (and with ``--plot`` the
figures as PNG files), written from whatever the :class:`RunState` holds, and the summary
printed at the end."""

from __future__ import annotations

import numpy as np

from ..metrics import labeled_mask
from . import _report_html
from ._outputs import Figure, make_figures, thumbnail_png
from ._self_checks import classifier_text
from ._state import RunContext, RunState


def write_reports(run: RunContext, state: RunState, status: str | None = None) -> None:
    """Write the figures (with ``--plot``), report.html and, last, report.json from what is
    done; ``report.json`` names the run, its ``status`` (default: ``"exported"`` after an
    export run, ``"interrupted"`` after Ctrl-C, else ``"complete"``) and its files."""
    config, report = run.config, state.report
    report["seconds"] = {k: round(v, 2) for k, v in run.timer.seconds.items()}
    report["cached_stages"] = list(run.timer.cached)
    figures, thumbnails = _figures(state), _thumbnails(state)
    if config.plot:
        report["plots"] = []
        for figure in figures:
            report["plots"].append(str(run.output.write_bytes(figure.name, figure.png)))
    run.output.write_text("report.html", _report_html.render(
        report, figures, thumbnails,
        thumbnails_show="labeled" if state.labeled_images is not None else "selected"))
    if status is None:
        status = ("interrupted" if report.get("interrupted")
                  else "exported" if report.get("exported_only") else "complete")
    run.output.write_report(report, status, default=json_default)


def write_failed_report(run: RunContext, state: RunState, error: str) -> None:
    """After an error, once the run had started writing into ``--output``: ``report.json``
    says the run failed and why (its files are not a complete set). Nothing is written when
    the run had not touched the folder, or when even this cannot be written."""
    if not run.output.opened:
        return
    state.report["error"] = error
    state.report["seconds"] = {k: round(v, 2) for k, v in run.timer.seconds.items()}
    try:
        run.output.write_report(state.report, "failed", default=json_default)
    except Exception:  # the disk that failed the run may fail this too: report.json then
        pass           # still says "running", which is no complete set either


def _figures(state: RunState) -> list[Figure]:
    """The figures of a run that got through propagation (none before)."""
    if state.priors is None:
        return []
    data = state.data
    y_true = data.y_train if labeled_mask(data.y_train).all() else None
    # true classes when known, else the prior pseudo-labels (indices into the names)
    colours = y_true if y_true is not None else np.asarray(state.priors).argmax(axis=1)
    names = data.target_names if y_true is not None else state.prior_names
    return make_figures(state.fine_features, state.indices, colours, state.priors,
                        y_true[state.evaluable] if y_true is not None else None, state.evaluable,
                        state.prior_classes, state.curves or {},
                        colour_by_truth=y_true is not None, colour_names=names)


def _thumbnails(state: RunState) -> list:
    """``(png, file, label)`` of the selected images (of the labeled ones with
    ``--annotations``), once the selection is made."""
    if state.indices is None:
        return []
    files, indices = state.data.files, state.indices
    labels = state.selected_labels or [""] * len(indices)
    if state.labeled_images is not None:
        indices, labels = state.labeled_images
    return [(thumbnail_png(state.data.X_train[i]), files[i], label)
            for i, label in zip(indices, labels)]


def json_default(value):
    """What ``json.dumps`` writes for numpy scalars and arrays (and ``str`` of anything else)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def prior_line(prior: dict) -> str:
    """The priors' line: accuracy and ECE where the truth is known, the label-free
    calibration always."""
    estimate = prior.get("estimated_accuracy")
    calibration = (f"temperature {prior['temperature']:.2f}"
                   + (f" for an estimated accuracy of {estimate:.3f} (label-free)"
                      if estimate is not None else ""))
    if "accuracy" not in prior:
        return f"priors: {calibration}"
    return (f"priors: accuracy {prior['accuracy']:.3f}, ECE {prior['ece']:.3f} "
            f"({prior['ece_uncalibrated']:.3f} before the {calibration}), "
            f"covered {prior['covered_fraction']:.1%}")


def format_report(report: dict) -> str:
    """The final report as a few human-readable lines."""
    lines = ["", "AS3L report", "-----------"]
    if "data" in report:
        lines.append(f"data: {report['data']['dataset']}, {report['data']['n_train']} training / "
                     f"{report['data']['n_test']} test images, device {report['device']}")
    sel = report.get("selection")
    if sel:
        coverage = (f", class coverage {sel['class_coverage']}/{sel['n_classes']} "
                    "(of the labeled set used)" if "class_coverage" in sel else "")
        lines.append(f"selection: {len(sel['indices'])} images by {sel['selector']}{coverage}")
    if "round" in report:
        r = report["round"]
        lines.append(f"next round: {len(r['new_picks'])} new images to label in {r['export']}, "
                     f"none of the {r['labels_read']['count']} labeled so far")
    if "prior" in report:
        lines.append(prior_line(report["prior"]))
    if "classifier" in report:
        lines.append(f"classifier: {classifier_text(report['classifier'])}")
    if "baseline" in report:
        b = report["baseline"]
        acc = b["classifier"].get("test_accuracy")
        lines.append("baseline (random + plain FlexMatch): class coverage "
                     f"{b['selection']['class_coverage']}, "
                     + (f"test accuracy {acc:.3f}" if acc is not None else "no labeled test set"))
    if report.get("seconds"):
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f}s"
                                                   for k, v in report["seconds"].items()))
        total = sum(report["seconds"].values())
        estimate = report.get("plan", {}).get("estimated_total_seconds")
        lines.append(f"total {total:.0f} s"
                     + (f" (estimated {estimate:.0f} s)" if estimate else ""))
    data = report.get("data", {})
    if data.get("skipped_unreadable"):
        lines.append(f"unreadable images skipped: {data['skipped_unreadable']} ("
                     + ", ".join(data.get("skipped_files", []))
                     + (", ..." if data["skipped_unreadable"] > len(data.get("skipped_files", []))
                        else "") + ")")
    if report.get("interrupted"):
        lines.append(f"INTERRUPTED during: {report.get('stage_reached')}")
    return "\n".join(lines)

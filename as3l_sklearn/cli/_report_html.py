"""``report.html``: one self-contained page (figures and thumbnails inline as base64 PNG, no
external reference) summarising an ``as3l`` run."""

from __future__ import annotations

import base64
import html

from ._self_checks import classifier_text, describe_self_checks

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }
.thumbs { display: flex; flex-wrap: wrap; gap: 0.8em; }
.thumbs figure { margin: 0; text-align: center; font-size: 0.85em; }
.thumbs img { image-rendering: pixelated; border: 1px solid #888; }
.note { color: #555; font-size: 0.9em; }
"""


def _img(png: bytes, alt: str, **attributes) -> str:
    extra = "".join(f' {k}="{html.escape(str(v))}"' for k, v in attributes.items())
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}"{extra}>'


def _table(rows, header=None) -> str:
    parts = ["<table>"]
    if header:
        parts.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def headline_rows(report: dict) -> list:
    """(what, value) pairs of the numbers a reader looks at first."""
    rows = []
    data = report.get("data", {})
    rows.append(("data", f"{data.get('dataset')}: {data.get('n_train')} images in the pool, "
                         f"{data.get('n_test')} test images"))
    rows.append(("device", report.get("device")))
    skipped = data.get("skipped_unreadable")
    if skipped:
        names = data.get("skipped_files", [])
        rows.append(("unreadable images skipped", f"{skipped}: " + ", ".join(names)
                     + (", ..." if skipped > len(names) else "")))
    read = report.get("labels_read")
    if read:
        rows.append(("labels read", f"{read['count']}: " + ", ".join(
            f"{file} ({n})" for file, n in read["files"].items())))
    selection = report.get("selection", {})
    if "indices" in selection:
        rows.append(("images selected", len(selection["indices"])))
    next_round = report.get("round")
    if next_round:
        rows.append(("next round", f"{len(next_round['new_picks'])} new images to label in "
                                   f"{next_round['export']}, none of the labeled ones"))
    if "class_coverage" in selection:
        rows.append(("class coverage of the labeled set used",
                     f"{selection['class_coverage']} / {selection.get('n_classes', '?')}"))
    prior = report.get("prior")
    if prior and "accuracy" in prior:
        rows.append(("prior accuracy / ECE", f"{prior['accuracy']:.3f} / {prior['ece']:.3f}"))
    if prior and prior.get("estimated_accuracy") is not None:
        rows.append(("prior calibration (label-free)",
                     f"temperature {prior['temperature']:.2f}, estimated accuracy "
                     f"{prior['estimated_accuracy']:.3f}"))
    classifier = report.get("classifier")
    if classifier:
        rows.append(("classifier", classifier_text(classifier)))
    baseline = report.get("baseline")
    if baseline and baseline["classifier"].get("test_accuracy") is not None:
        rows.append(("baseline (random + plain FlexMatch)",
                     f"test accuracy {baseline['classifier']['test_accuracy']:.3f}"))
    if report.get("interrupted"):
        rows.append(("interrupted", f"during {report.get('stage_reached')}"))
    return rows


def flexmatch_steps_text(report: dict) -> str:
    """The FlexMatch steps the run trained, with the planned number beside them when they
    differ (re-planned after a FlexMatch step ran slower or faster than estimated); what was planned
    when FlexMatch did not run (an export run) or did not finish (Ctrl-C)."""
    plan = report.get("plan", {})
    planned = plan.get("flexmatch_steps")
    replanned = plan.get("flexmatch_steps_replanned")
    classifier = report.get("classifier")
    if classifier is not None:
        run = classifier["steps"]
    elif report.get("exported_only"):
        return f"not run (export only; {planned} planned)"
    elif report.get("interrupted"):
        return f"not finished (interrupted; {planned if replanned is None else replanned} planned)"
    else:
        run = planned if replanned is None else replanned
    if run == planned:
        return str(run)
    notes = [f"planned {planned}"]
    if replanned is not None:
        slowdown = plan.get("measured_slowdown")
        ran = f"{slowdown}x its estimate" if slowdown is not None else "off its estimate"
        notes.append(f"re-planned to {replanned} after a FlexMatch step ran {ran}")
    return f"{run} ({'; '.join(notes)})"


def render(report: dict, figures, thumbnails, *, thumbnails_show: str = "selected") -> str:
    """The page as a string.

    Parameters
    ----------
    report : dict
        The run's report (as in report.json).
    figures : list of Figure
        From ``as3l_sklearn.cli._outputs.make_figures``.
    thumbnails : list of (png bytes, file, label)
        The images to show, with their labels ("" when none).
    thumbnails_show : {"selected", "labeled"}, default="selected"
        What ``thumbnails`` are: this run's selection in selection order, or (a run with
        ``--annotations``) the images the user labeled, which this run's selection need not
        contain.
    """
    if thumbnails_show not in ("selected", "labeled"):
        raise ValueError(
            f"thumbnails_show must be 'selected' or 'labeled', got {thumbnails_show!r}")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>AS3L report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>AS3L report</h1>"]
    parts.append("<h2>Headline numbers</h2>" + _table(headline_rows(report)))
    if "test_accuracy" in report.get("classifier", {}):
        parts.append('<p class="note">Test accuracy is the final (EMA) model\'s; the test set was '
                     "only monitored, no checkpoint was chosen on it.</p>")
    parts += _self_checks_section(report)
    parts += _plan_and_times(report)
    if thumbnails and thumbnails_show == "labeled":
        parts += _labeled_thumbnails(report, thumbnails)
    elif thumbnails:
        parts += _selected_thumbnails(thumbnails)
    parts += _figures(figures)
    verification = report.get("annotations")
    if verification:
        parts.append("<h2>Annotations</h2>" + _table([
            ("file", verification.get("path")),
            ("selected and labeled", len(verification.get("selected_labeled", []))),
            ("selected, not labeled",
             ", ".join(verification.get("selected_unlabeled", [])) or "none"),
            ("labeled, not selected",
             ", ".join(verification.get("labeled_not_selected", [])) or "none"),
        ]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _self_checks_section(report: dict) -> list[str]:
    """The run's checks of itself (no test label used), as printed at the end of the run."""
    checks = report.get("self_checks")
    if not checks:
        return []
    verdict, *details = describe_self_checks(checks)
    return ["<h2>Self-checks</h2>", f"<p>{html.escape(verdict)}</p><ul>"
            + "".join(f"<li>{html.escape(line.strip())}</li>" for line in details) + "</ul>"]


def simsiam_steps_text(report: dict) -> str:
    """SimSiam's steps as the plan table shows them: the planned ones, and where its time
    limit stopped the steps it was given beyond its default (a machine slower than estimated)."""
    planned = report["plan"]["simsiam_steps"]
    stopped = report.get("embedding", {}).get("stopped_at_step")
    if stopped is None:
        return str(planned)
    return f"{stopped} (planned {planned}; stopped when its share of the time budget was spent)"


def _plan_and_times(report: dict) -> list[str]:
    parts = []
    plan = report.get("plan")
    if plan:
        parts.append("<h2>Plan</h2>" + _table([
            ("backbone", plan["backbone"]), ("SimSiam steps", simsiam_steps_text(report)),
            ("FlexMatch steps", flexmatch_steps_text(report)),
            ("estimated time (s)", plan["estimated_total_seconds"]),
            ("time budget (s)", plan["time_budget_seconds"] or "none")]))
    seconds = report.get("seconds", {})
    if seconds:
        cached = set(report.get("cached_stages", []))
        rows = [(name, f"{value:.1f}", "yes" if name in cached else "")
                for name, value in seconds.items()]
        rows.append(("total", f"{sum(seconds.values()):.1f}", ""))
        parts.append("<h2>Stage times</h2>"
                     + _table(rows, header=("stage", "seconds", "from cache")))
    return parts


def _labeled_thumbnails(report: dict, thumbnails) -> list[str]:
    verification = report.get("annotations", {})
    parts = ["<h2>Labeled images</h2>"
             f'<p class="note">The {len(thumbnails)} images labeled in '
             f"{html.escape(str(verification.get('path', '--annotations')))}, with their "
             "labels (this run's own selection is listed under Annotations).</p>"
             '<div class="thumbs">']
    for png, file, label in thumbnails:
        parts.append(f"<figure>{_img(png, f'labeled image {file}')}"
                     f"<figcaption>{html.escape(f'{file}: {label}')}</figcaption></figure>")
    parts.append("</div>")
    return parts


def _selected_thumbnails(thumbnails) -> list[str]:
    parts = ["<h2>Selected images</h2><div class=\"thumbs\">"]
    for rank, (png, file, label) in enumerate(thumbnails):
        caption = f"#{rank} {file}" + (f": {label}" if label not in (None, "") else ": (no label)")
        parts.append(f"<figure>{_img(png, f'selected image {file}')}"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</div>")
    return parts


def _figures(figures) -> list[str]:
    parts = [f"<h2>{html.escape(figure.title)}</h2>" + _img(figure.png, figure.title)
             for figure in figures]
    if "prior_reliability.png" not in {f.name for f in figures}:
        parts.append("<h2>Reliability of the priors</h2><p class=\"note\">Not drawn: the true "
                     "labels of the unlabeled images are unknown in this run.</p>")
    if not figures:
        parts.append('<p class="note">No figures: matplotlib is not installed '
                     '(pip install "as3l-sklearn[plot]").</p>')
    return parts

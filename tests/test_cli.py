"""The ``as3l`` command on tiny settings: report, plots, comparison and the annotation round trip."""

import csv
import json

import numpy as np
import pytest

from as3l_sklearn.cli import build_parser, main

TINY = ["--n-train", "200", "--embed-epochs", "1", "--max-iter", "4", "--budget", "10", "--quiet"]


def test_demo_run_writes_report_and_plots(tmp_path, capsys):
    assert main(TINY + ["--output", str(tmp_path), "--compare", "--plot"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["selection"]["indices"]) == 10
    assert 1 <= report["selection"]["class_coverage"] <= 10
    assert 0.0 <= report["prior"]["accuracy"] <= 1.0
    assert 0.0 <= report["prior"]["ece"] <= 1.0
    assert 0.0 <= report["classifier"]["test_accuracy"] <= 1.0
    assert report["baseline"]["selection"]["selector"] == "random"
    assert set(report["seconds"]) >= {"load data", "embed (SimSiam)", "train prior-guided FlexMatch"}
    for name in ("embedding_map.png", "prior_reliability.png", "accuracy_vs_step.png"):
        assert (tmp_path / name).stat().st_size > 0
    out = capsys.readouterr().out
    assert "AS3L report" in out and "test accuracy" in out


def test_same_seed_same_selection(tmp_path):
    reports = []
    for run in ("a", "b"):
        assert main(TINY + ["--output", str(tmp_path / run), "--max-iter", "1"]) == 0
        reports.append(json.loads((tmp_path / run / "report.json").read_text()))
    assert reports[0]["selection"]["indices"] == reports[1]["selection"]["indices"]
    assert reports[0]["prior"] == reports[1]["prior"]


def test_annotation_round_trip_through_the_command(tmp_path):
    export = tmp_path / "to_label"
    assert main(TINY + ["--output", str(tmp_path / "a"), "--export-annotations", str(export)]) == 0
    manifest = export / "manifest.csv"
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    for row in rows:  # a person labels every image "7" or "1" by hand
        row["label"] = "7" if int(row["index"]) % 2 else "1"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(TINY + ["--output", str(tmp_path / "b"), "--annotations", str(manifest)]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["selection"]["indices"] == [int(r["index"]) for r in rows]
    assert "test_accuracy" in report["classifier"]


def test_bad_budget_is_a_clear_error(tmp_path, capsys):
    assert main(TINY + ["--output", str(tmp_path), "--budget", "0"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_folder_needs_a_path():
    with pytest.raises(SystemExit):
        main(["--dataset", "folder"])


def test_parser_defaults():
    args = build_parser().parse_args([])
    assert args.dataset == "digits" and args.budget == 10 and args.selector == "multicluster"


def test_no_checkpoint_is_chosen_on_the_test_set(tmp_path, monkeypatch):
    """Issue 11: the command passes its test set only as monitoring data (never as X_val),
    and reports the final model's accuracy."""
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier

    calls = []
    original_fit = PriorGuidedFlexMatchClassifier.fit

    def recording_fit(self, X, y, **kwargs):
        calls.append(kwargs)
        return original_fit(self, X, y, **kwargs)

    monkeypatch.setattr(PriorGuidedFlexMatchClassifier, "fit", recording_fit)
    assert main(TINY + ["--output", str(tmp_path), "--compare"]) == 0
    assert len(calls) == 2
    for kwargs in calls:
        assert kwargs.get("X_val") is None and kwargs.get("y_val") is None
        assert kwargs.get("X_monitor") is not None
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["classifier"]["model"].startswith("final EMA weights")
    curve = report["classifier"]["history"]
    assert report["classifier"]["test_accuracy"] == pytest.approx(curve[-1]["monitor_accuracy"])


def test_image_size_reaches_the_embedder(tmp_path, monkeypatch):
    from as3l_sklearn.embedding import SimSiamEmbedder

    seen = []
    original_fit = SimSiamEmbedder.fit

    def recording_fit(self, X, y=None):
        seen.append(self.image_size)
        result = original_fit(self, X, y)
        seen.append(self.image_size_)
        return result

    monkeypatch.setattr(SimSiamEmbedder, "fit", recording_fit)
    assert main(TINY + ["--output", str(tmp_path), "--image-size", "6", "--max-iter", "1"]) == 0
    assert seen[0] == 6 and tuple(np.atleast_1d(seen[1]))[-1] == 6

"""The ``as3l`` command on tiny settings: report, plots, comparison and the annotation round trip
on array data (the folder round trip, the outputs and the faults have their own files)."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from as3l_sklearn.cli import RunConfig, _stages, build_parser, main, parse_command

#: tiny settings every CLI test starts from (200 digits, 1 SimSiam epoch, 4 FlexMatch steps)
TINY = ["--n-train", "200", "--embed-epochs", "1", "--max-iter", "4", "--budget", "10", "--quiet"]


#: every test gets its own stage cache (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("private_cache")


def test_demo_run_writes_report_and_plots(tmp_path, capsys):
    assert main(TINY + ["--output", str(tmp_path), "--compare", "--plot"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["selection"]["indices"]) == 10
    assert 1 <= report["selection"]["class_coverage"] <= 10
    assert 0.0 <= report["prior"]["accuracy"] <= 1.0
    assert 0.0 <= report["prior"]["ece"] <= 1.0
    # the label-free calibration: a temperature and the accuracy it was fitted to
    assert 0.05 <= report["prior"]["temperature"] <= 20
    assert 0.0 <= report["prior"]["estimated_accuracy"] <= 1.0
    assert 0.0 <= report["prior"]["ece_uncalibrated"] <= 1.0
    assert 0.0 <= report["classifier"]["test_accuracy"] <= 1.0
    assert report["baseline"]["selection"]["selector"] == "random"
    assert report["interrupted"] is False
    assert set(report["seconds"]) >= {"load data", "embed (SimSiam)", "train prior-guided FlexMatch"}
    for name in ("embedding_map.png", "prior_reliability.png", "accuracy_vs_step.png"):
        assert (tmp_path / name).stat().st_size > 0
    out = capsys.readouterr().out
    assert "AS3L report" in out and "test accuracy" in out
    assert "estimated accuracy of" in out and "(label-free)" in out


def test_same_seed_same_selection(tmp_path):
    reports = []
    for run in ("a", "b"):  # --no-cache: the second run recomputes rather than reads the first
        assert main(TINY + ["--output", str(tmp_path / run), "--max-iter", "1", "--no-cache"]) == 0
        reports.append(json.loads((tmp_path / run / "report.json").read_text()))
    assert reports[0]["selection"]["indices"] == reports[1]["selection"]["indices"]
    assert reports[0]["prior"] == reports[1]["prior"]


def test_annotation_round_trip_through_the_command(tmp_path):
    """Array data: the file of an image is its row in the data set; labels come back by it."""
    export = tmp_path / "to_label"
    assert main(TINY + ["--output", str(tmp_path / "a"), "--export-annotations", str(export)]) == 0
    selection = export / "selection.csv"
    with open(selection, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10
    for row in rows:  # a person labels every image "7" or "1" by hand
        row["label"] = "7" if int(row["file"]) % 2 else "1"
    with open(selection, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    exported = json.loads((tmp_path / "a" / "report.json").read_text())
    assert exported["exported_only"] is True
    assert main(TINY + ["--output", str(tmp_path / "b"), "--annotations", str(selection)]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["selection"]["files"] == [r["file"] for r in rows]
    assert sorted(report["annotations"]["selected_labeled"]) == sorted(r["file"] for r in rows)
    assert report["annotations"]["selected_unlabeled"] == []
    # issue 12 item 9: coverage is that of the labels actually used, here two classes
    assert report["selection"]["class_coverage"] == 2
    assert "test_accuracy" in report["classifier"]


def test_bad_budget_is_a_clear_error(tmp_path, capsys):
    assert main(TINY + ["--output", str(tmp_path), "--budget", "0"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_folder_needs_a_path(capsys):
    assert main(["--dataset", "folder"]) == 2
    assert "folder path" in capsys.readouterr().err


def test_missing_fashion_mnist_says_how_to_get_it_with_this_command(tmp_path, monkeypatch, capsys):
    """Before: the loader's message said "pass download=True", which the command has no flag
    for. Now it names the Debian package and --root."""
    from as3l_sklearn import datasets

    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "no-data-home"))
    assert main(TINY + ["--dataset", "fashion-mnist", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install dataset-fashion-mnist" in err and "--root DIR" in err
    assert "no-debian-package" in err  # where it looked
    assert "download=True)" in err and "pass download=True" not in err
    assert "Traceback" not in err
    empty_root = tmp_path / "empty-root"
    empty_root.mkdir()
    assert main(TINY + ["--dataset", "fashion-mnist", "--root", str(empty_root), "--output",
                        str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "empty-root" in err and "--root DIR" in err


def test_parser_defaults():
    args = build_parser().parse_args([])
    assert args.dataset == "digits" and args.budget == 10 and args.selector == "stablecover"
    assert args.preset == "default" and args.time_budget is None and not args.overwrite


def test_run_is_the_default_sub_command(tmp_path, capsys):
    """`as3l run ...` and `as3l ...` are the same job, down to every resolved value; the
    configuration is frozen (no stage changes what was asked)."""
    labels = tmp_path / "to_label"
    labels.mkdir()
    (labels / "selection.csv").write_text("rank,file,label\n0,3,7\n")
    flags = TINY + ["--output", str(tmp_path / "run"), "--seed", "3", "--annotations", str(labels)]
    config = parse_command(flags)
    assert isinstance(config, RunConfig) and parse_command(["run"] + flags) == config
    assert config.output == str(tmp_path / "run") and config.seed == 3 and config.budget == 10
    # resolved once, before any work: the folder's selection.csv, the device
    assert config.annotations == (str(labels / "selection.csv"),)
    assert config.resolved_device == "cpu" and not config.next_round
    assert "resolved_device" not in config.flags()
    assert config.flags()["annotations"] == config.annotations
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.output = "elsewhere"
    # the same help and the same errors with or without the sub-command's name
    for argv in (["-h"], ["run", "-h"]):
        assert main(argv) == 0
    default_help, run_help = capsys.readouterr().out.split("usage: ")[1:]
    assert default_help == run_help and "--budget" in run_help
    assert main(["--budget", "0"]) == main(["run", "--budget", "0"]) == 2
    default_error, run_error = capsys.readouterr().err.split("usage: ")[1:]
    assert default_error == run_error and "as3l: error: argument --budget" in run_error


def test_predict_is_a_sub_command(capsys):
    assert main(["predict", "-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: as3l predict") and "MODEL" in out and "PATH" in out
    assert main(["predict"]) == 2
    assert "as3l predict: error: the following arguments are required: MODEL, PATH" in (
        capsys.readouterr().err)
    assert main(["predict", "m.joblib", "x.npy", "--output", "out", "--bogus"]) == 2
    assert "as3l predict: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_help_and_flag_errors_do_not_wait_for_torch():
    """`as3l -h` and a mistyped flag answer before torch and the estimators load (seconds
    on a busy machine; the run and `as3l predict` load them once the flags parsed)."""
    code = ("import sys; from as3l_sklearn.cli import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules; sys.exit(status)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    for argv, status in ((["-h"], 0), (["predict", "-h"], 0), (["--budget", "0"], 2),
                         (["--bogus"], 2)):
        result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                                text=True, env=env, timeout=120)
        assert result.returncode == status, result.stderr


def test_a_stage_added_to_the_pipeline_sees_the_state_and_reports(tmp_path, monkeypatch):
    """The contract later stages rely on: a function in PIPELINE runs in order, reads what
    the stages before it put in the state, adds its report section, and `done` ends the row."""
    seen = []

    def count_stage(run, state):
        seen.append(len(state.data.files))
        state.report["count"] = {"pool": len(state.data.files), "budget": run.config.budget}
        state.done = True

    def never_stage(run, state):
        raise AssertionError("a stage after done ran")

    monkeypatch.setattr(_stages, "PIPELINE", (_stages.start_stage, _stages.load_stage,
                                              count_stage, never_stage))
    assert main(TINY + ["--output", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert seen == [200] and report["count"] == {"pool": 200, "budget": 10}
    assert list(report["seconds"]) == ["load data"] and report["interrupted"] is False


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
    curve = report["classifier"]["history"]
    # the returned weights are the final ones, or (chosen by the label-free checks against the
    # prior, which see no test image) the model fitted to the prior at the start
    if report["self_checks"]["classifier"]["chosen"] == "final":
        assert report["classifier"]["model"].startswith("final EMA weights")
        assert not report["classifier"]["fell_back"]
        assert report["classifier"]["test_accuracy"] == pytest.approx(curve[-1]["monitor_accuracy"])
    else:
        assert report["classifier"]["model"].startswith("the model fitted to the prior")
        assert report["classifier"]["fell_back"]


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
    assert tuple(np.atleast_1d(seen[0]))[-1] == 6 and tuple(np.atleast_1d(seen[1]))[-1] == 6


def test_report_prints_the_prior_calibration_without_the_truth():
    """A folder run without labels for its pool: only the label-free calibration is known."""
    from as3l_sklearn.cli._report import format_report
    from as3l_sklearn.cli._report_html import headline_rows

    report = {"prior": {"temperature": 0.8, "estimated_accuracy": 0.9}}
    text = format_report(report)
    assert "priors: temperature 0.80 for an estimated accuracy of 0.900 (label-free)" in text
    assert "accuracy 0." not in text.replace("estimated accuracy", "")
    rows = dict(headline_rows(report))
    assert rows["prior calibration (label-free)"] == "temperature 0.80, estimated accuracy 0.900"
    assert "prior accuracy / ECE" not in rows

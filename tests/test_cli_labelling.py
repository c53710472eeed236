"""The labelling loop a person runs with ``as3l`` on a folder of images (issue: "the user's
labels are overwritten", "Ctrl-C then the same command is refused", partial writes, five new
images retrain everything, ``as3l predict`` on image files): their labels win, results are
written whole, unfinished runs resume, Label Studio's URLs follow ``--label-studio-root``,
new images reuse the cached encoder, and ``as3l predict`` converts images by one rule."""

import contextlib
import csv
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.cli import main
from as3l_sklearn.datasets import load_digits_images

from .test_cli import TINY

SMALL = [a for a in TINY if a not in ("--n-train", "200")]
ROOT = Path(__file__).resolve().parents[1]


#: every test gets its own stage cache (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("private_cache")


def _write_folder(root, indices):
    """Digits as 8x8 gray PNGs, ``img_XXX.png``; returns {file: "even" or "odd"}."""
    X, y = load_digits_images()
    root.mkdir(parents=True, exist_ok=True)
    truth = {}
    for i in indices:
        Image.fromarray(X[i, :, :, 0]).save(root / f"img_{i:03d}.png")
        truth[f"img_{i:03d}.png"] = "even" if y[i] % 2 == 0 else "odd"
    return truth


def _write_labels(path, labels):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(labels.items())
    return path


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _report(folder):
    return json.loads((Path(folder) / "report.json").read_text())


# ------------------------------------------------------------------------------ one labelled run
# shared by the module: a folder with an unreadable file, labels of which some contradict
# what the model will say, and the model it leaves (for ``as3l predict``)


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier

    base = tmp_path_factory.mktemp("labelled")
    images = base / "photos"
    truth = _write_folder(images, range(40))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    # the person labels 12 images; the model (patched) calls every image "even"
    given = {file: truth[file] for file in sorted(truth)[:12]}
    labels = _write_labels(base / "labels.csv", given)
    original = PriorGuidedFlexMatchClassifier.predict_proba
    PriorGuidedFlexMatchClassifier.predict_proba = lambda self, X: np.tile(
        [0.9, 0.1], (len(X), 1))
    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            status = main(SMALL + ["--dataset", "folder", str(images), "--classes", "even,odd",
                                   "--annotations", str(labels), "--output", str(base / "run"),
                                   "--label-studio-root", str(base.parent),
                                   "--cache-dir", str(base / "cache")])
    finally:
        PriorGuidedFlexMatchClassifier.predict_proba = original
    assert status == 0, stderr.getvalue()
    return {"base": base, "run": base / "run", "given": given, "truth": truth,
            "stderr": stderr.getvalue(), "stdout": stdout.getvalue()}


def test_the_persons_label_wins_over_the_models(labelled_run):
    """Before: an annotated image's ``label`` was the model's guess (3 of 19 contradicted
    what the person wrote); their label survived only in ``prior_label``."""
    given = labelled_run["given"]
    rows = {r["file"]: r for r in _rows(labelled_run["run"] / "predictions.csv")}
    assert len(rows) == 40 and "broken.png" not in rows
    contradicted = [f for f, label in given.items() if label == "odd"]
    assert contradicted  # the model says "even" of every image
    for file, row in rows.items():
        assert (row["model_label"], row["model_confidence"]) == ("even", "0.9000")
        if file in given:
            expected = (given[file], "1.0000", "1")
            assert (row["label"], row["confidence"], row["annotated"]) == expected
        else:
            assert (row["label"], row["confidence"], row["annotated"]) == ("even", "0.9000", "0")


def test_the_pool_task_file_keeps_the_persons_labels_and_serves_from_the_root(labelled_run):
    """The pool's Label Studio tasks: labeled images carry the person's label as an
    annotation; image URLs are relative to --label-studio-root (two levels above here)."""
    base, given = labelled_run["base"], labelled_run["given"]
    tasks = json.loads((labelled_run["run"] / "label_studio_tasks.json").read_text())
    prefix = f"/data/local-files/?d={base.name}/photos/"
    assert len(tasks) == 40
    for task in tasks:
        file = task["data"]["file"]
        assert task["data"]["image"] == prefix + file
        if file in given:
            assert task["annotations"][0]["result"][0]["value"] == {"choices": [given[file]]}
            assert "predictions" not in task
        else:
            assert task["predictions"] and "annotations" not in task
    # what to set in Label Studio is printed (and recorded)
    out = labelled_run["stdout"]
    assert f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={base.parent}" in out
    assert "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true" in out and str(base / "photos") in out
    setup = _report(labelled_run["run"])["label_studio"]
    assert setup["local_files_storage_path"] == str(base / "photos")


def test_unreadable_images_are_reported_and_warnings_are_one_line(labelled_run):
    """Before: skipped files were only in the warnings, which printed their source line."""
    report = _report(labelled_run["run"])
    assert report["data"]["skipped_unreadable"] == 1
    assert report["data"]["skipped_files"] == ["broken.png"]
    page = (labelled_run["run"] / "report.html").read_text(encoding="utf-8")
    assert "unreadable images skipped" in page and "broken.png" in page
    lines = [line for line in labelled_run["stderr"].splitlines() if "broken.png" in line]
    assert len(lines) == 1 and lines[0].startswith("as3l: warning: load_image_folder: skipped")
    assert ".py:" not in labelled_run["stderr"] and "warnings.warn(" not in labelled_run["stderr"]


def test_report_names_its_run_and_files(labelled_run):
    report = _report(labelled_run["run"])
    run = report["run"]
    assert run["status"] == "complete" and len(run["id"]) == 12 and run["started"]
    assert run["command"].startswith("as3l --embed-epochs 1 ") and "--annotations" in run["command"]
    assert report["files"][-1] == "report.json"
    assert set(report["files"]) == {"selection.csv", "predictions.csv", "model.joblib",
                                    "label_studio_tasks.json", "report.html", "report.json"}
    assert set(report["files"]) == {p.name for p in labelled_run["run"].iterdir()}


# ------------------------------------------------------------------------------ as3l predict


def _rgb_digits(indices, side=32):
    X, _ = load_digits_images()
    return np.stack([np.asarray(Image.fromarray(X[i, :, :, 0]).convert("RGB").resize(
        (side, side), Image.NEAREST)) for i in indices])


def test_predict_takes_folders_image_files_and_npy_by_one_rule(labelled_run, tmp_path, capsys):
    """Before: image files were refused ("unrecognized arguments"), a folder of 32x32 RGB
    images was converted silently, and the same images as .npy were refused."""
    model = str(labelled_run["run"] / "model.joblib")
    images = _rgb_digits([100, 101, 102])
    folder = tmp_path / "new"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"n{i}.png")
    np.save(tmp_path / "new.npy", images)
    files = [str(folder / f"n{i}.png") for i in range(3)]
    results = {}
    for name, paths in (("folder", [str(folder)]), ("files", files),
                        ("npy", [str(tmp_path / "new.npy")])):
        assert main(["predict", model, *paths, "--output", str(tmp_path / name), "--quiet"]) == 0
        err = capsys.readouterr().err
        assert "converted 3 images from 32x32 RGB to the model's 8x8 grayscale" in err
        rows = _rows(tmp_path / name / "predictions.csv")
        results[name] = [(r["label"], r["confidence"]) for r in rows]
        assert len(rows) == 3
    assert [r["file"] for r in _rows(tmp_path / "files" / "predictions.csv")] == files
    assert results["folder"] == results["files"] == results["npy"]
    # several PATHs at once: every name distinct
    Image.fromarray(images[0]).save(tmp_path / "single.png")
    assert main(["predict", model, str(folder), str(tmp_path / "new.npy"),
                 str(tmp_path / "single.png"), "--output", str(tmp_path / "all"), "--quiet"]) == 0
    assert "converted 7 images" in capsys.readouterr().err
    names = [r["file"] for r in _rows(tmp_path / "all" / "predictions.csv")]
    assert len(names) == len(set(names)) == 7


def test_predict_says_what_is_wrong_with_model(labelled_run, tmp_path, capsys, monkeypatch):
    """Before: a folder given as MODEL "does not exist"."""
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((2, 8, 8, 1), dtype=np.uint8))
    run = labelled_run["run"]
    assert main(["predict", str(run), str(images), "--output", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    inside = run / "model.joblib"
    assert f"MODEL {run} is a folder; pass the model.joblib inside it: {inside}" in err
    assert main(["predict", str(tmp_path / "nope.joblib"), str(images), "--output",
                 str(tmp_path / "p")]) == 2
    assert f"MODEL {tmp_path / 'nope.joblib'} does not exist" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["predict", str(run / "model.joblib"), str(tmp_path / "notes.txt"), "--output",
                 str(tmp_path / "p")]) == 2
    assert "neither a folder, an image file" in capsys.readouterr().err
    # a failure once --output was made (here in the model) leaves no empty --output
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier

    def failing(self, X):
        raise ValueError("the model failed")

    monkeypatch.setattr(PriorGuidedFlexMatchClassifier, "predict_proba", failing)
    assert main(["predict", str(run / "model.joblib"), str(images), "--output",
                 str(tmp_path / "p")]) == 2
    assert "the model failed" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


# ------------------------------------------------------------------------------ new images


def test_a_few_new_images_reuse_the_cached_encoder(tmp_path, simsiam_fits, capsys):
    """Before: five new images (1.7 % more) made SimSiam train again from scratch."""
    images = tmp_path / "photos"
    truth = _write_folder(images, range(60))
    cache = ["--cache-dir", str(tmp_path / "cache")]
    common = SMALL + ["--dataset", "folder", str(images), "--classes", "even,odd"] + cache
    assert main(common + ["--export-annotations", str(tmp_path / "to_label"),
                          "--output", str(tmp_path / "export")]) == 0
    assert len(simsiam_fits) == 1
    given = {f: truth[f] for f in sorted(truth)[:10]}
    labels = _write_labels(tmp_path / "labels.csv", given)
    truth.update(_write_folder(images, [300, 301]))  # 2 new images: 3 % of the pool

    assert main(common + ["--annotations", str(labels), "--output", str(tmp_path / "a")]) == 0
    assert len(simsiam_fits) == 1  # the encoder of the export run embedded the new pool
    embedding = _report(tmp_path / "a")["embedding"]
    assert embedding["source"] == "cached encoder" and embedding["new_images"] == 2
    assert sorted(embedding["new_files"]) == ["img_300.png", "img_301.png"]
    rows = {r["file"]: r for r in _rows(tmp_path / "a" / "predictions.csv")}
    assert len(rows) == 62 and {"img_300.png", "img_301.png"} <= set(rows)
    assert {f for f, r in rows.items() if r["annotated"] == "1"} == set(given)
    assert all(rows[f]["label"] == label for f, label in given.items())

    truth.update(_write_folder(images, range(400, 420)))  # 20 more: 22 of 82 new (27 %)
    assert main(common + ["--annotations", str(labels), "--output", str(tmp_path / "b")]) == 0
    assert len(simsiam_fits) == 2
    embedding = _report(tmp_path / "b")["embedding"]
    assert embedding["source"] == "trained" and "more than 20%" in embedding["reason"]

    _write_folder(images, [500])  # 1 new image, but asked to retrain
    assert main(common + ["--annotations", str(labels), "--output", str(tmp_path / "c"),
                          "--retrain-embedding"]) == 0
    assert len(simsiam_fits) == 3
    assert _report(tmp_path / "c")["embedding"]["source"] == "trained"


# ------------------------------------------------------------------------------ resume


def test_an_interrupted_run_resumes_without_overwrite(tmp_path, monkeypatch, simsiam_fits, capsys):
    """Before: Ctrl-C, then the same command: "already holds the results of an earlier run
    ... pass --overwrite", without saying that the earlier run was interrupted."""
    from as3l_sklearn.embedding import ClusterFineTuner

    command = TINY + ["--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    original = ClusterFineTuner.fit_transform

    def interrupted(self, X, y=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(ClusterFineTuner, "fit_transform", interrupted)
    assert main(command) == 130
    assert "Run the same command again to resume" in capsys.readouterr().err
    assert _report(tmp_path / "run")["run"]["status"] == "interrupted"
    monkeypatch.setattr(ClusterFineTuner, "fit_transform", original)
    assert main(command) == 0
    report = _report(tmp_path / "run")
    assert report["resumed"]["status"] == "interrupted" and report["run"]["status"] == "complete"
    assert "embed (SimSiam)" in report["cached_stages"] and len(simsiam_fits) == 1
    capsys.readouterr()
    assert main(command) == 2  # a completed run's results need --overwrite
    err = capsys.readouterr().err
    assert "earlier run that completed" in err and "--overwrite" in err


def test_sigkill_during_an_overwrite_run_leaves_no_mix_that_looks_complete(tmp_path):
    """Before: SIGKILL during an --overwrite run left the new selection.csv beside the old
    model, predictions and a report.json saying "interrupted": false."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    command = TINY + ["--output", str(out), "--cache-dir", str(cache)]
    assert main(command) == 0
    old_selection = (out / "selection.csv").read_text()
    ready = tmp_path / "training-started"
    script = ("import pathlib, sys, time\n"
              "from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier\n"
              "def hang(self, *args, **kwargs):\n"
              "    pathlib.Path(sys.argv[1]).write_text('training')\n"
              "    time.sleep(600)\n"
              "PriorGuidedFlexMatchClassifier.fit = hang\n"
              "from as3l_sklearn.cli import main\n"
              "sys.exit(main(sys.argv[2:]))\n")
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    # the second run selects other images (another seed), then is killed while training
    child = subprocess.Popen([sys.executable, "-c", script, str(ready), *command, "--overwrite",
                              "--seed", "1"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child run never reached training"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=60)
    report = _report(out)
    assert report["run"]["status"] == "running" and "--seed 1" in report["run"]["command"]
    # the new run's selection, and none of the old run's other results
    assert (out / "selection.csv").read_text() != old_selection
    present = {p.name for p in out.iterdir()}
    assert not present & {"model.joblib", "predictions.csv", "report.html"}
    # the same command resumes it without --overwrite and completes the set
    assert main(command + ["--seed", "1"]) == 0
    report = _report(out)
    assert report["resumed"]["status"] == "running" and report["run"]["status"] == "complete"
    assert {"model.joblib", "predictions.csv", "report.html"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".as3l-tmp-")]


# ------------------------------------------------------------------------------ whole files


def test_a_full_disk_names_the_file_and_flag_and_leaves_nothing_half_written(
        tmp_path, monkeypatch, capsys):
    """Before: exit 2 with "[Errno 28] No space left on device" (no path, no flag) and a
    truncated model.joblib beside predictions.csv."""
    from as3l_sklearn.cli import _stages

    def full_disk(path, *args, **kwargs):
        Path(path).write_bytes(b"\x80" * 4096)  # what joblib had written when the disk filled
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_stages, "save_model", full_disk)
    out = tmp_path / "run"
    assert main(TINY + ["--output", str(out), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert f"as3l: error: --output {out}: could not write model.joblib: No space left" in err
    assert "[Errno 28]" in err and "Traceback" not in err
    assert not (out / "model.joblib").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".as3l-tmp-")]
    report = _report(out)
    assert report["run"]["status"] == "failed" and "model.joblib" in report["error"]
    assert "model.joblib" not in report["files"]


def test_the_export_folder_is_written_whole(tmp_path, monkeypatch, capsys):
    """A full disk while exporting: the error names the file and --export-annotations, and
    the folder keeps no partial export (no previews without their selection.csv)."""
    from as3l_sklearn.cli import _stages

    original = _stages.export_for_annotation

    def full_disk(X, indices, path, **kwargs):
        original(X, indices, path, **kwargs)  # the previews and selection.csv, then:
        failed = Path(path) / "class_names.txt"
        raise OSError(errno.ENOSPC, "No space left on device", str(failed))

    monkeypatch.setattr(_stages, "export_for_annotation", full_disk)
    export = tmp_path / "to_label"
    export.mkdir()
    (export / "notes.txt").write_text("mine")
    assert main(TINY + ["--output", str(tmp_path / "run"), "--no-cache",
                        "--export-annotations", str(export)]) == 2
    err = capsys.readouterr().err
    assert (f"--export-annotations {export}: could not write class_names.txt: No space left"
            in err)
    assert sorted(p.name for p in export.iterdir()) == ["notes.txt"]


def test_a_failed_run_removes_the_empty_output_folder_it_created(tmp_path, capsys):
    """Before: a run that failed at loading left an empty --output folder."""
    assert main(TINY + ["--output", str(tmp_path / "new" / "run"), "--budget", "5000"]) == 2
    assert not (tmp_path / "new" / "run").exists()
    (tmp_path / "existing").mkdir()
    assert main(TINY + ["--output", str(tmp_path / "existing"), "--budget", "5000"]) == 2
    assert (tmp_path / "existing").is_dir()  # a folder that was there before stays


# ------------------------------------------------------------------------------ the cache


def test_a_damaged_cache_entry_is_recomputed_not_reported_as_a_hit(tmp_path, simsiam_fits, capsys):
    """Before: a truncated cache file printed a 52-line joblib traceback, was recomputed,
    and the report still said "from the cache"."""
    cache = tmp_path / "cache"
    common = TINY + ["--cache-dir", str(cache)]
    assert main(common + ["--output", str(tmp_path / "a"), "--export-annotations",
                          str(tmp_path / "x1")]) == 0
    entry = max(cache.rglob("*.pkl"), key=lambda p: p.stat().st_size)  # SimSiam's: the largest
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    capsys.readouterr()
    assert main(common + ["--output", str(tmp_path / "b"), "--export-annotations",
                          str(tmp_path / "x2")]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "cached result" in line]
    assert len(warnings) == 1 and warnings[0].startswith("as3l: warning: the cached result of "
                                                         "'embed (SimSiam)' could not be read")
    assert "Traceback" not in err and len(simsiam_fits) == 2
    report = _report(tmp_path / "b")
    assert "embed (SimSiam)" not in report["cached_stages"]
    assert "fine-tune features (Eq. 1)" in report["cached_stages"]  # undamaged entries serve


@pytest.mark.parametrize("code, reason", [(errno.EROFS, "Read-only file system"),
                                          (errno.ENOSPC, "No space left on device")])
def test_a_cache_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch, capsys, code, reason):
    """Before: a full --cache-dir ended the run at fine-tuning."""
    import joblib

    cache = tmp_path / "cache"
    original = joblib.numpy_pickle.dump

    def dump(value, filename, *args, **kwargs):
        """joblib's dump, failing in the cache folder (root writes to read-only folders)."""
        where = filename if isinstance(filename, (str, os.PathLike)) else filename.name
        if str(cache) in str(where):
            raise OSError(code, reason, str(filename))
        return original(value, filename, *args, **kwargs)

    monkeypatch.setattr(joblib, "dump", dump)
    monkeypatch.setattr(joblib.numpy_pickle, "dump", dump)
    out = tmp_path / "run"
    assert main(TINY + ["--output", str(out), "--cache-dir", str(cache), "--max-iter", "1"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if "as3l: warning" in line and "stage cache" in line]
    assert len(warnings) == 1 and reason in warnings[0]  # once, not once per stage
    assert "carries on without caching" in warnings[0]
    assert _report(out)["run"]["status"] == "complete" and (out / "model.joblib").exists()


# ------------------------------------------------------------------------------ small items


def test_class_coverage_counts_the_class_list_however_it_came(tmp_path):
    """Before: coverage 9/9 with class_names.txt, 9/10 with --classes (the same list)."""
    images = tmp_path / "photos"
    truth = _write_folder(images, range(30))
    common = SMALL + ["--dataset", "folder", str(images), "--max-iter", "1", "--budget", "4"]
    export = tmp_path / "to_label"
    assert main(common + ["--classes", "even,odd,other", "--export-annotations", str(export),
                          "--output", str(tmp_path / "export")]) == 0
    with open(export / "selection.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    given = {row["file"]: truth[row["file"]] for row in rows}
    _write_labels(export / "selection.csv", given)  # class_names.txt stays beside it
    _write_labels(tmp_path / "labels.csv", given)
    assert main(common + ["--annotations", str(export / "selection.csv"),
                          "--output", str(tmp_path / "txt")]) == 0
    assert main(common + ["--annotations", str(tmp_path / "labels.csv"), "--classes",
                          "even,odd,other", "--output", str(tmp_path / "flag")]) == 0
    by_file, by_flag = (_report(tmp_path / name)["selection"] for name in ("txt", "flag"))
    assert by_file["n_classes"] == by_flag["n_classes"] == 3
    assert by_file["class_coverage"] == by_flag["class_coverage"] == len(set(given.values()))


def test_the_estimators_resume_advice_is_given_in_command_terms(capsys):
    """Before: a CLI user was told to "fit again with warm_start=True"."""
    import inspect
    import warnings

    from as3l_sklearn.classification import _flexmatch
    from as3l_sklearn.cli._warnings import one_line_warnings

    assert "fit again with warm_start=True to resume" in inspect.getsource(_flexmatch)
    with one_line_warnings():
        warnings.warn("training interrupted at step 12: keeping the last EMA weights; "
                      "fit again with warm_start=True to resume", RuntimeWarning)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("as3l: warning: training interrupted at "
                                                   "step 12: the model keeps the last EMA weights")
    assert "warm_start" not in err and "run the same command again" in err


def test_label_studio_root_is_checked_before_any_work(tmp_path, simsiam_fits, capsys):
    images = tmp_path / "photos"
    _write_folder(images, range(12))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    common = SMALL + ["--dataset", "folder", str(images), "--export-annotations",
                      str(tmp_path / "to_label"), "--output", str(tmp_path / "run")]
    for root in (elsewhere, images):  # not above the folder; the folder itself
        assert main(common + ["--label-studio-root", str(root)]) == 2
        err = capsys.readouterr().err
        assert "--label-studio-root" in err and "must be a sub-folder of document_root" in err
    assert main(TINY + ["--label-studio-root", str(tmp_path)]) == 2
    assert "only for --dataset folder" in capsys.readouterr().err
    assert simsiam_fits == [] and not (tmp_path / "run").exists()

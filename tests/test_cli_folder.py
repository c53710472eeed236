"""A folder of images as people have it, through the whole round trip (issue 13 items 2-3):
export by file name, label, add an image, import, predictions per file, Label Studio tasks,
and ``as3l predict`` on a folder."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.cli import main
from as3l_sklearn.datasets import load_digits_images

from .test_cli import TINY

SMALL = [a for a in TINY if a not in ("--n-train", "200")]


#: every test gets its own stage cache (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("private_cache")


def _write_folder(root, n_images=60):
    """Digits as PNGs in a folder whose sub-folders are batches, not classes; returns
    {relative file: "even" or "odd"} (what a person would label)."""
    X, y = load_digits_images()
    truth = {}
    for i in range(n_images):
        name = f"batch{i % 2 + 1}/img_{i:03d}.png" if i % 3 else f"loose_{i:03d}.png"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(X[i, :, :, 0]).save(path)
        truth[name] = "even" if y[i] % 2 == 0 else "odd"
    return truth


def fill_selection(selection, truth):
    """Label every row of an exported ``selection.csv`` as the person would; its files."""
    with open(selection, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = truth[row["file"]]
    with open(selection, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [row["file"] for row in rows]


def _assert_labels_used_are_the_labels_written(run, truth, labeled_files):
    """The import run used each written label on its own file with its own value: the
    selection.csv label column, and the prior of each annotated image (a labeled image's
    prior is its own label, one-hot)."""
    with open(run / "selection.csv", newline="", encoding="utf-8") as handle:
        selected = list(csv.DictReader(handle))
    assert selected
    for row in selected:
        assert row["label"] == (truth[row["file"]] if row["file"] in labeled_files else "")
    with open(run / "predictions.csv", newline="", encoding="utf-8") as handle:
        annotated = {r["file"]: r for r in csv.DictReader(handle) if r["annotated"] == "1"}
    assert sorted(annotated) == sorted(labeled_files)
    for file, row in annotated.items():
        assert row["prior_label"] == truth[file] and float(row["prior_confidence"]) == 1.0


def test_folder_round_trip_with_an_image_added_in_between(tmp_path, capsys):
    """Before: sub-folders became classes and a test set, and labels were matched by row, so
    an image added before the import shifted every label onto the wrong file."""
    images = tmp_path / "photos"
    truth = _write_folder(images)
    export = tmp_path / "to_label"
    assert main(SMALL + ["--dataset", "folder", str(images), "--export-annotations", str(export),
                         "--classes", "even,odd", "--output", str(tmp_path / "run"), "--plot"]) == 0
    exported = json.loads((tmp_path / "run" / "report.json").read_text())
    assert exported["data"]["n_test"] == 0  # no test set invented from folder names
    assert exported["exported_only"] is True
    tasks = json.loads((export / "label_studio_tasks.json").read_text())
    assert len(tasks) == 10
    labeled_files = fill_selection(export / "selection.csv", truth)
    assert all(f in truth for f in labeled_files)  # names relative to the input folder

    # a new photo arrives; it sorts first, so every row index after it moves by one
    X, _ = load_digits_images()
    Image.fromarray(X[100, :, :, 0]).save(images / "aaa_new.png")

    assert main(SMALL + ["--dataset", "folder", str(images), "--annotations",
                         str(export / "selection.csv"), "--output", str(tmp_path / "run"), "--plot"]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    verification = report["annotations"]
    # every exported label lands on its own file, whatever this run selects
    assert sorted(verification["selected_labeled"] + verification["labeled_not_selected"]) == sorted(labeled_files)
    with open(tmp_path / "run" / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 61 and "aaa_new.png" in {r["file"] for r in rows}
    assert sorted(r["file"] for r in rows if r["annotated"] == "1") == sorted(labeled_files)
    assert {r["label"] for r in rows} <= {"even", "odd"}
    _assert_labels_used_are_the_labels_written(tmp_path / "run", truth, labeled_files)
    # report.html shows the images the person labeled, with their labels
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Labeled images</h2>" in page and "<h2>Selected images</h2>" not in page
    assert all(f"{file}: {truth[file]}</figcaption>" in page for file in labeled_files)
    used = {truth[f] for f in labeled_files}
    assert report["selection"]["class_coverage"] == len(used)
    assert report["selection"]["n_classes"] == 2
    # the import run's tasks, one per pool image: the person's label as an annotation on the
    # images they labeled (no model guess beside it), the prior as a pre-annotation elsewhere
    tasks = json.loads((tmp_path / "run" / "label_studio_tasks.json").read_text())
    assert len(tasks) == 61
    for task in tasks:
        file = task["data"]["file"]
        assert task["data"]["image"] == "/data/local-files/?d=photos/" + file
        if file in labeled_files:
            assert "predictions" not in task
            [annotation] = task["annotations"]
            assert annotation["result"][0]["value"] == {"choices": [truth[file]]}
        else:
            assert "annotations" not in task and task["predictions"]
    # no labeled test set: no empty accuracy plot, no reliability diagram without truth
    assert (tmp_path / "run" / "embedding_map.png").exists()
    assert not (tmp_path / "run" / "accuracy_vs_step.png").exists()
    assert not (tmp_path / "run" / "prior_reliability.png").exists()

    # the saved model predicts a folder of new images by file name
    new = tmp_path / "new"
    new.mkdir()
    for i in range(3):
        Image.fromarray(X[200 + i, :, :, 0]).save(new / f"n{i}.png")
    assert main(["predict", str(tmp_path / "run" / "model.joblib"), str(new), "--output",
                 str(tmp_path / "pred"), "--quiet"]) == 0
    with open(tmp_path / "pred" / "predictions.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [r["file"] for r in predicted] == ["n0.png", "n1.png", "n2.png"]
    assert {r["label"] for r in predicted} <= {"even", "odd"}


def test_label_studio_json_min_export_through_the_command(tmp_path):
    """The export run's label_studio_tasks.json, labelled in Label Studio and exported as
    JSON-MIN, is read back by main() by file name (one task left unlabelled)."""
    images = tmp_path / "photos"
    truth = _write_folder(images, n_images=40)
    export = tmp_path / "to_label"
    assert main(SMALL + ["--dataset", "folder", str(images), "--export-annotations", str(export),
                         "--classes", "even,odd", "--output", str(tmp_path / "run")]) == 0
    with open(export / "selection.csv", newline="", encoding="utf-8") as handle:
        selected = [row["file"] for row in csv.DictReader(handle)]
    tasks = json.loads((export / "label_studio_tasks.json").read_text())
    assert len(tasks) == len(selected) == 10
    # as Label Studio writes JSON-MIN: the task's data fields, the <Choices> answer under its
    # name (a string, or a dict when the tool keeps the list), bookkeeping columns; a skipped
    # task has no answer
    items, labeled_files = [], []
    for i, (task, file) in enumerate(zip(tasks, selected)):
        item = dict(task["data"], id=i + 1, annotator=1, annotation_id=i + 1,
                    created_at="2026-12-07T10:00:00Z", updated_at="2026-12-07T10:00:00Z",
                    lead_time=2.5)
        if i < len(tasks) - 1:
            answer = truth[file].capitalize() if i % 3 == 0 else truth[file]
            item["choice"] = {"choices": [answer]} if i % 2 else answer
            labeled_files.append(file)
        items.append(item)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    json_min = downloads / "project-1-at-2026-12-07-10-05-1a2b3c4d.json"
    json_min.write_text(json.dumps(items, indent=2))

    assert main(SMALL + ["--dataset", "folder", str(images), "--annotations", str(json_min),
                         "--classes", "even,odd", "--output", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    verification = report["annotations"]
    assert sorted(verification["selected_labeled"]) == sorted(labeled_files)
    assert verification["selected_unlabeled"] == [selected[-1]]
    assert verification["labeled_not_selected"] == []
    _assert_labels_used_are_the_labels_written(tmp_path / "run", truth, labeled_files)


def test_folder_without_labels_needs_the_round_trip(tmp_path, capsys):
    images = tmp_path / "photos"
    _write_folder(images, n_images=12)
    assert main(SMALL + ["--dataset", "folder", str(images), "--output", str(tmp_path / "run")]) == 2
    assert "--export-annotations" in capsys.readouterr().err


def test_export_without_a_class_list_warns_that_typos_become_classes(tmp_path, capsys):
    """Before: nothing said that without --classes no class_names.txt is written, so that on
    import 'sneaker' beside 'Sneaker', or '?', silently become classes of their own."""
    images = tmp_path / "photos"
    _write_folder(images, n_images=20)
    common = SMALL + ["--dataset", "folder", str(images), "--output", str(tmp_path / "run")]
    assert main(common + ["--export-annotations", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "as3l: warning: no class list (--classes)" in err and "typos" in err
    assert not (tmp_path / "a" / "class_names.txt").exists()
    assert main(common + ["--export-annotations", str(tmp_path / "b"), "--classes", "even,odd",
                          "--overwrite"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert (tmp_path / "b" / "class_names.txt").read_text().split() == ["even", "odd"]


def test_labeled_subfolders_are_classes_only_when_asked(tmp_path):
    X, y = load_digits_images()
    images = tmp_path / "classes"
    for i in range(40):
        label = "even" if y[i] % 2 == 0 else "odd"
        (images / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(X[i, :, :, 0]).save(images / label / f"{i}.png")
    assert main(SMALL + ["--dataset", "folder", str(images), "--labeled-subfolders", "--budget", "4",
                         "--output", str(tmp_path / "run")]) == 0
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"]["n_test"] == 12  # 30 % of the labeled images held out
    assert "test_accuracy" in report["classifier"]
    with open(tmp_path / "run" / "predictions.csv", newline="") as handle:
        files = [r["file"] for r in csv.DictReader(handle)]
    assert len(files) == 28 and all(f.split("/")[0] in ("even", "odd") for f in files)
    assert np.isfinite(report["prior"]["accuracy"])

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


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


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


def _fill(selection, truth):
    with open(selection, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = truth[row["file"]]
    with open(selection, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return [row["file"] for row in rows]


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
    labeled_files = _fill(export / "selection.csv", truth)
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
    used = {truth[f] for f in labeled_files}
    assert report["selection"]["class_coverage"] == len(used)
    assert report["selection"]["n_classes"] == 2
    # the import run's tasks carry the priors as pre-annotations, one per pool image
    tasks = json.loads((tmp_path / "run" / "label_studio_tasks.json").read_text())
    assert len(tasks) == 61 and all(task.get("predictions") for task in tasks)
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


def test_folder_without_labels_needs_the_round_trip(tmp_path, capsys):
    images = tmp_path / "photos"
    _write_folder(images, n_images=12)
    assert main(SMALL + ["--dataset", "folder", str(images), "--output", str(tmp_path / "run")]) == 2
    assert "--export-annotations" in capsys.readouterr().err


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

"""The next labelling round from the command line: ``--annotations`` (once per round) with
``--export-annotations DIR`` exports ``--budget`` new images chosen given the labels so far,
with the prior pseudo-labels as Label Studio pre-annotations; a later run trains on every
round's labels."""

import csv
import json

import pytest
from PIL import Image

from as3l_sklearn.cli import main, parse_command
from as3l_sklearn.datasets import load_digits_images

from .test_cli import TINY
from .test_cli_folder import fill_selection

SMALL = [a for a in TINY if a not in ("--n-train", "200")]


#: every test gets its own stage cache (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("private_cache")


def _write_folder(root, n_images):
    """Digits as 8x8 gray PNGs; returns {file: "even" or "odd"} (what a person would label)."""
    X, y = load_digits_images()
    root.mkdir(parents=True)
    truth = {}
    for i in range(n_images):
        Image.fromarray(X[i, :, :, 0]).save(root / f"img_{i:03d}.png")
        truth[f"img_{i:03d}.png"] = "even" if y[i] % 2 == 0 else "odd"
    return truth


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def test_two_labelling_rounds_then_training_on_both(tmp_path, capsys):
    """Before: the parser refused --annotations with --export-annotations, and a second
    --annotations replaced the first."""
    images = tmp_path / "photos"
    truth = _write_folder(images, 40)
    folder = SMALL + ["--dataset", "folder", str(images)]
    r1, r2 = tmp_path / "round1", tmp_path / "round2"
    assert main(folder + ["--classes", "even,odd", "--export-annotations", str(r1),
                          "--output", str(tmp_path / "run1")]) == 0
    first = fill_selection(r1 / "selection.csv", truth)
    capsys.readouterr()

    # round 2: the same data and flags, so SimSiam and fine-tuning come from the cache
    assert main(folder + ["--annotations", str(r1), "--export-annotations", str(r2),
                          "--output", str(tmp_path / "run2")]) == 0
    out = capsys.readouterr().out
    with open(r2 / "selection.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    second = [row["file"] for row in rows]
    assert len(second) == 10 and not set(second) & set(first)
    assert all(row["label"] == "" and (r2 / row["preview"]).is_file() for row in rows)
    assert (r2 / "class_names.txt").read_text().split() == ["even", "odd"]
    # every new task carries the prior's class as a pre-annotation, none an annotation
    tasks = json.loads((r2 / "label_studio_tasks.json").read_text())
    assert [task["data"]["file"] for task in tasks] == second
    for task in tasks:
        assert "annotations" not in task
        assert task["data"]["image"] == "/data/local-files/?d=photos/" + task["data"]["file"]
        [prediction] = task["predictions"]
        assert prediction["model_version"] == "as3l-prior" and 0 < prediction["score"] <= 1
        assert prediction["result"][0]["value"]["choices"][0] in ("even", "odd")
    report = _report(tmp_path / "run2")
    assert report["run"]["status"] == "exported" and report["exported_only"] is True
    selection_csv = str(r1 / "selection.csv")
    assert report["round"]["labels_read"] == {"count": 10, "files": {selection_csv: 10}}
    assert report["round"]["new_picks"] == second and report["round"]["excludes_labeled"] is True
    assert report["round"]["next_annotations"] == [selection_csv, str(r2 / "selection.csv")]
    assert "classifier" not in report and not (tmp_path / "run2" / "model.joblib").exists()
    cached = set(report["cached_stages"])
    assert {"embed (SimSiam)", "fine-tune features (Eq. 1)"} <= cached
    assert "select 10 images (stablecover)" not in cached  # the labeled images are in its key
    assert f"--annotations {selection_csv} --annotations {r2 / 'selection.csv'}" in out
    page = (tmp_path / "run2" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Selected images</h2>" in page and "none of the labeled ones" in page

    # a final run trains on both rounds: every labeled image keeps the person's label
    fill_selection(r2 / "selection.csv", truth)
    assert main(folder + ["--annotations", selection_csv, "--annotations", str(r2),
                          "--output", str(tmp_path / "run3")]) == 0
    with open(tmp_path / "run3" / "predictions.csv", newline="", encoding="utf-8") as handle:
        annotated = {row["file"]: row["label"] for row in csv.DictReader(handle)
                     if row["annotated"] == "1"}
    assert annotated == {file: truth[file] for file in first + second}
    assert _report(tmp_path / "run3")["labels_read"]["count"] == 20


def _write_labels(path, labels):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label"])
        writer.writerows(labels.items())
    return path


def test_conflicting_labels_across_files_name_both_files(tmp_path, capsys):
    images = tmp_path / "photos"
    truth = _write_folder(images, 12)
    files = sorted(truth)
    a = _write_labels(tmp_path / "a.csv", {files[0]: "even", files[1]: "odd"})
    b = _write_labels(tmp_path / "b.csv", {files[2]: "even", files[1]: "even"})
    # the folder PATH may follow the repeated flag: it is not taken as a label file
    argv = SMALL + ["--dataset", "folder", "--annotations", str(a), "--annotations", str(b),
                    str(images), "--output", str(tmp_path / "run")]
    assert parse_command(argv).annotations == (str(a), str(b))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (f"{files[1]} is labeled 'odd' in {a} but 'even' in {b}" in err
            and "Traceback" not in err)
    assert not (tmp_path / "xdg-cache").exists()  # refused before SimSiam


def test_the_next_round_needs_images_left_and_a_new_folder(tmp_path, capsys):
    images = tmp_path / "photos"
    truth = _write_folder(images, 12)
    labels = _write_labels(tmp_path / "labels.csv",
                           {file: truth[file] for file in sorted(truth)[:9]})
    common = SMALL + ["--dataset", "folder", str(images), "--annotations", str(labels),
                      "--output", str(tmp_path / "run")]
    assert main(common + ["--export-annotations", str(tmp_path / "round2"), "--budget", "4"]) == 2
    err = capsys.readouterr().err
    assert "--budget 4: only 3 of the 12 images of the pool are not labeled yet" in err
    assert not (tmp_path / "xdg-cache").exists()  # refused before SimSiam
    # the export folder of the next round must not be where the labels read lie
    assert main(common + ["--export-annotations", str(tmp_path), "--overwrite"]) == 2
    assert "the next round's images go to a new folder" in capsys.readouterr().err
    assert labels.is_file()

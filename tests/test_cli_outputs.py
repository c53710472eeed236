"""What one ``as3l`` run leaves in ``--output`` (issue 13 items 1, 4 and 6): predictions.csv,
selection.csv, a model that ``as3l predict`` applies to new images, the plan printed first,
and a self-contained report.html. One tiny run is shared by the module."""

import csv
import json
from html.parser import HTMLParser

import numpy as np
import pytest

from as3l_sklearn.cli import main
from as3l_sklearn.datasets import load_digits_images

from .test_cli import TINY


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    cache = tmp_path_factory.mktemp("cache")
    assert main(TINY + ["--output", str(output), "--cache-dir", str(cache), "--plot"]) == 0
    return output


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_predictions_csv_has_one_row_per_pool_image(demo_run):
    """Before: no per-image output at all."""
    rows = _rows(demo_run / "predictions.csv")
    assert list(rows[0]) == ["file", "label", "confidence", "prior_label", "prior_confidence", "annotated"]
    assert len(rows) == 200
    report = json.loads((demo_run / "report.json").read_text())
    annotated = [r["file"] for r in rows if r["annotated"] == "1"]
    assert sorted(annotated) == sorted(report["selection"]["files"])
    digits_names = {str(d) for d in range(10)}
    for row in rows:
        assert row["label"] in digits_names and row["prior_label"] in digits_names
        assert 0.0 <= float(row["confidence"]) <= 1.0 and 0.0 <= float(row["prior_confidence"]) <= 1.0


def test_selection_csv_lists_the_selected_files_with_their_labels(demo_run):
    rows = _rows(demo_run / "selection.csv")
    report = json.loads((demo_run / "report.json").read_text())
    assert [r["file"] for r in rows] == report["selection"]["files"]
    # demo mode: the labels used are the digits' own
    X, y = load_digits_images()
    assert all(r["label"] == str(y[int(r["file"])]) for r in rows)


def test_saved_model_predicts_new_images(demo_run, tmp_path, capsys):
    """Before: no saved model, no way to predict new images."""
    import joblib

    bundle = joblib.load(demo_run / "model.joblib")
    assert bundle["class_names"] == [str(d) for d in range(10)] or len(bundle["class_names"]) <= 10
    assert bundle["input_shape"] == [8, 8, 1]
    X, _ = load_digits_images()
    np.save(tmp_path / "new.npy", X[:7])
    assert main(["predict", str(demo_run / "model.joblib"), str(tmp_path / "new.npy"),
                 "--output", str(tmp_path / "pred"), "--quiet"]) == 0
    rows = _rows(tmp_path / "pred" / "predictions.csv")
    assert [r["file"] for r in rows] == [str(i) for i in range(7)]
    assert list(rows[0]) == ["file", "label", "confidence"]
    expected = bundle["classifier"].predict(X[:7])
    assert [r["label"] for r in rows] == [bundle["class_names"][list(bundle["classes"]).index(c)]
                                          for c in expected]


def test_predict_rejects_images_of_another_shape(demo_run, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 9, 9, 1), dtype=np.uint8))
    assert main(["predict", str(demo_run / "model.joblib"), str(tmp_path / "wrong.npy"),
                 "--output", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert "PATH" in err and "(8, 8, 1)" in err and "Traceback" not in err


def test_predict_with_a_missing_model_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), dtype=np.uint8))
    assert main(["predict", str(tmp_path / "nope.joblib"), str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "pred")]) == 2
    assert "MODEL" in capsys.readouterr().err


class _Resources(HTMLParser):
    """Collects every tag and every attribute that could load something."""

    def __init__(self):
        super().__init__()
        self.tags, self.sources, self.headings = [], [], []
        self._in_heading = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster", "action") and value is not None:
                self.sources.append(value)
        self._in_heading = tag in ("h1", "h2")

    def handle_data(self, data):
        if self._in_heading:
            self.headings.append(data.strip())
            self._in_heading = False


def test_report_html_is_self_contained(demo_run):
    """Before: no report.html. It must open offline: every image inline, no external URL."""
    text = (demo_run / "report.html").read_text(encoding="utf-8")
    parser = _Resources()
    parser.feed(text)
    parser.close()
    assert parser.tags[0] == "html" and "body" in parser.tags
    assert parser.sources, "the report has no images"
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)
    assert "http://" not in text and "https://" not in text and "@import" not in text
    assert "<link" not in text and "<script" not in text
    for heading in ("Headline numbers", "Stage times", "Selected images", "Embedding map",
                    "Reliability of the priors", "Test accuracy versus training step"):
        assert heading in parser.headings
    # one thumbnail per selected image, plus the three figures
    assert len(parser.sources) == 10 + 3


def test_plan_is_printed_before_the_first_stage(tmp_path, capsys):
    """Before: nothing said how long the run would take until it was over."""
    assert main([a for a in TINY if a != "--quiet"] + ["--output", str(tmp_path), "--cache-dir",
                                                        str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert out.index("plan:") < out.index("embed (SimSiam) ...")
    assert "estimated time" in out and "estimate" in out
    assert "\x1b[" not in out  # no ANSI colour codes when stdout is not a terminal
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["plan"]["flexmatch_steps"] == 4 and report["plan"]["estimated_total_seconds"] > 0


def test_time_budget_chooses_fewer_steps():
    from as3l_sklearn._cli_plan import make_plan

    common = dict(n_images=10000, image_shape=(28, 28, 1), size=(28, 28), backbone="small_cnn_2x2",
                  device="cpu", compare=False, n_test=10000, default_simsiam_steps=1000,
                  default_flexmatch_steps=1000)
    short = make_plan(time_budget=120, **common)
    default = make_plan(time_budget=480, **common)
    full = make_plan(time_budget=None, **common)
    assert short.flexmatch_steps < default.flexmatch_steps < full.flexmatch_steps == 1000
    assert short.simsiam_steps <= default.simsiam_steps <= full.simsiam_steps == 1000
    assert default.total_seconds <= 480 * 1.01
    assert short.total_seconds <= 120 * 1.01
    kept = make_plan(time_budget=120, simsiam_steps=7, flexmatch_steps=9, **{
        k: v for k, v in common.items()})
    assert (kept.simsiam_steps, kept.flexmatch_steps) == (7, 9)

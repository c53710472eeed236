"""What one ``as3l`` run leaves in ``--output`` (issue 13 items 1, 4 and 6): predictions.csv,
selection.csv, a model that ``as3l predict`` applies to new images, the plan printed first,
and a self-contained report.html. One tiny run is shared by the module."""

import csv
import html
import json
import shutil
import subprocess
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
    assert list(rows[0]) == ["file", "label", "confidence", "model_label", "model_confidence",
                             "prior_label", "prior_confidence", "annotated"]
    assert len(rows) == 200
    report = json.loads((demo_run / "report.json").read_text())
    annotated = [r["file"] for r in rows if r["annotated"] == "1"]
    assert sorted(annotated) == sorted(report["selection"]["files"])
    digits_names = {str(d) for d in range(10)}
    _, y = load_digits_images()
    for row in rows:
        assert {row["label"], row["model_label"], row["prior_label"]} <= digits_names
        for column in ("confidence", "model_confidence", "prior_confidence"):
            assert 0.0 <= float(row[column]) <= 1.0
        if row["annotated"] == "1":  # the label given (demo mode: the data set's own) wins
            assert row["label"] == str(y[int(row["file"])]) and row["confidence"] == "1.0000"
        else:
            assert row["label"] == row["model_label"]
            assert row["confidence"] == row["model_confidence"]


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


def test_predict_rejects_float_images_of_another_shape(demo_run, tmp_path, capsys):
    """uint8 images of another size are converted (see test_cli_labelling.py); float ones
    cannot be, and the error names PATH and the shape the model takes."""
    np.save(tmp_path / "wrong.npy", np.zeros((3, 9, 9, 1), dtype=np.float32))
    assert main(["predict", str(demo_run / "model.joblib"), str(tmp_path / "wrong.npy"),
                 "--output", str(tmp_path / "pred")]) == 2
    err = capsys.readouterr().err
    assert "PATH" in err and "(8, 8, 1)" in err and "Traceback" not in err


def test_predict_with_a_missing_model_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), dtype=np.uint8))
    assert main(["predict", str(tmp_path / "nope.joblib"), str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "pred")]) == 2
    assert "MODEL" in capsys.readouterr().err


def test_predict_with_an_output_under_a_file_is_a_clear_error(demo_run, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8, 1), dtype=np.uint8))
    (tmp_path / "a_file").write_text("not a folder")
    assert main(["predict", str(demo_run / "model.joblib"), str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "a_file" / "pred")]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "is a file, not a folder" in err and "Traceback" not in err


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


def _plan_row(page: str, what: str) -> str:
    start = page.index(f"<td>{what}</td><td>") + len(f"<td>{what}</td><td>")
    return page[start:page.index("</td>", start)]


def test_report_html_plan_shows_where_simsiam_stopped():
    """SimSiam's steps beyond its default stop when its time is spent: the table says where."""
    from as3l_sklearn.cli._report_html import render

    plan = {"backbone": "small_cnn_2x2", "simsiam_steps": 2917, "flexmatch_steps": 0,
            "estimated_total_seconds": 470.0, "time_budget_seconds": 480.0}
    stopped = {"plan": plan, "embedding": {"stopped_at_step": 2200}, "classifier": {"steps": 0}}
    assert _plan_row(render(stopped, [], []), "SimSiam steps") == html.escape(
        "2200 (planned 2917; stopped when its share of the time budget was spent)")
    assert _plan_row(render({"plan": plan, "classifier": {"steps": 0}}, [], []),
                     "SimSiam steps") == "2917"


def test_report_html_plan_shows_the_flexmatch_steps_run():
    """Before: the Plan table showed the planned FlexMatch steps even after the re-plan had
    cut them (540 shown, 20 run)."""
    from as3l_sklearn.cli._report_html import render

    plan = {"backbone": "small_cnn_2x2", "simsiam_steps": 1000, "flexmatch_steps": 540,
            "estimated_total_seconds": 470.0, "time_budget_seconds": 480.0}
    replanned = {"plan": dict(plan, flexmatch_steps_replanned=20, measured_slowdown=7.4),
                 "classifier": {"steps": 20}}
    assert _plan_row(render(replanned, [], []), "FlexMatch steps") == html.escape(
        "20 (planned 540; re-planned to 20 after a FlexMatch step ran 7.4x its estimate)")
    as_planned = {"plan": plan, "classifier": {"steps": 540}}
    assert _plan_row(render(as_planned, [], []), "FlexMatch steps") == "540"
    exported = {"plan": plan, "exported_only": True}
    assert _plan_row(render(exported, [], []), "FlexMatch steps").startswith("not run")


def test_report_html_of_the_demo_run_shows_its_flexmatch_steps(demo_run):
    page = (demo_run / "report.html").read_text(encoding="utf-8")
    report = json.loads((demo_run / "report.json").read_text())
    assert _plan_row(page, "FlexMatch steps") == str(report["classifier"]["steps"]) == "4"


def test_report_html_shows_the_labeled_images_of_an_import_run():
    """Before: an import run showed this run's new picks as "Selected images", not the
    images the user labeled."""
    from as3l_sklearn.cli._report_html import render

    png = b"\x89PNG fake"
    report = {"annotations": {"path": "to_label/selection.csv", "selected_labeled": ["b.png"],
                              "selected_unlabeled": ["c.png"], "labeled_not_selected": ["a.png"]}}
    page = render(report, [], [(png, "a.png", "cat"), (png, "b.png", "dog")],
                  thumbnails_show="labeled")
    assert "<h2>Labeled images</h2>" in page and "Selected images" not in page
    assert "a.png: cat</figcaption>" in page and "b.png: dog</figcaption>" in page
    assert "to_label/selection.csv" in page
    with pytest.raises(ValueError, match="thumbnails_show"):
        render(report, [], [], thumbnails_show="picked")


@pytest.mark.parametrize("colour_by_truth", [False, True])
def test_embedding_map_legend_names_the_classes(monkeypatch, colour_by_truth):
    """Before: the map coloured by prior pseudo-label had no legend saying which colour is
    which class."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from as3l_sklearn.cli._outputs import make_figures

    legends = []
    original = Axes.legend

    def recording_legend(self, *args, **kwargs):
        legend = original(self, *args, **kwargs)
        legends.append([text.get_text() for text in legend.get_texts()])
        return legend

    monkeypatch.setattr(Axes, "legend", recording_legend)
    rng = np.random.RandomState(0)
    features = rng.normal(size=(60, 5))
    priors = rng.dirichlet(np.ones(3), size=60)
    colours = priors.argmax(axis=1)
    names = ["cat", "dog", "fox"]
    figures = make_figures(features, [0, 1, 2], colours, priors, None, np.zeros(60, dtype=bool),
                           np.array(names, dtype=object), {}, colour_by_truth=colour_by_truth,
                           colour_names=names)
    assert [f.name for f in figures] == ["embedding_map.png"]
    assert legends[0] == [names[c] for c in np.unique(colours)] + ["selected"]
    # more classes than a legend can tell apart: only the selected images are named
    legends.clear()
    many = np.arange(60) % 30
    make_figures(features, [0], many, priors, None, np.zeros(60, dtype=bool), names, {},
                 colour_names=[f"class {i}" for i in range(30)])
    assert legends[0] == ["selected"]


def _chromium(page, profile, *flags):
    """Headless Debian chromium on ``page``, offline-minded (no network services, no first-run
    or sync traffic, a throw-away profile); returns the completed process."""
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               *flags, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (Debian package)")
def test_report_html_renders_in_a_headless_browser(demo_run, tmp_path):
    """report.html as a browser draws it: the DOM chromium builds has every section and every
    image inline, and the screenshot shows the figures decoded (the page's own style is grey
    only, so coloured pixels can come from the matplotlib figures alone)."""
    from PIL import Image

    page = demo_run / "report.html"
    dom = _chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    parser = _Resources()
    parser.feed(dom.stdout)
    assert "<title>AS3L report</title>" in dom.stdout
    for heading in ("Headline numbers", "Plan", "Stage times", "Selected images", "Embedding map",
                    "Reliability of the priors", "Test accuracy versus training step"):
        assert heading in parser.headings
    assert len(parser.sources) == 10 + 3
    assert all(src.startswith("data:image/png;base64,") for src in parser.sources)

    screenshot = tmp_path / "report.png"
    drawn = _chromium(page, tmp_path / "profile-png", f"--screenshot={screenshot}",
                      "--window-size=1200,3600", "--hide-scrollbars")
    assert drawn.returncode == 0 and screenshot.is_file(), drawn.stderr[-2000:]
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 50  # text, tables, thumbnails and plots, not blank
    saturated = (pixels.max(axis=1) - pixels.min(axis=1)) > 80
    assert saturated.sum() > 2000, "no coloured pixels: the inline figures did not decode"


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


def test_small_images_keep_the_fixed_cost_of_a_step():
    """Before: the cost of a step was the 28x28 cost scaled by the pixels, so 8x8 digits got
    1/12 of it (SimSiam estimated 8 s, ran 60.5 s) and the re-plan then cut FlexMatch from 540
    to 20 steps. A step has a fixed overhead whatever the image size."""
    from as3l_sklearn.cli import _plan
    from as3l_sklearn.cli._plan import make_plan

    common = dict(backbone="small_cnn_2x2", device="cpu", compare=False, n_test=540,
                  time_budget=None, default_simsiam_steps=1000, default_flexmatch_steps=1000)
    digits = make_plan(n_images=1257, image_shape=(8, 8, 1), size=(8, 8), **common)
    fmnist = make_plan(n_images=1257, image_shape=(28, 28, 1), size=(28, 28), **common)
    for stage, overhead in (("SimSiam", _plan.SIMSIAM_SECONDS_PER_STEP),
                            ("FlexMatch", _plan.FLEXMATCH_SECONDS_PER_STEP)):
        per_step = digits.seconds[stage] / 1000
        assert per_step >= overhead > 0
        assert per_step < fmnist.seconds[stage] / 1000  # still cheaper than larger images
    # SimSiam's overhead dominates at 8x8: not the 28x28 estimate scaled by the pixels
    assert digits.seconds["SimSiam"] > 2 * fmnist.seconds["SimSiam"] * 64 / 784
    # colour costs a little more than gray at the same size
    rgb = make_plan(n_images=1257, image_shape=(28, 28, 3), size=(28, 28), **common)
    gray_seconds = fmnist.seconds["FlexMatch"]
    assert gray_seconds < rgb.seconds["FlexMatch"] < 1.5 * gray_seconds


def test_time_budget_chooses_fewer_steps():
    from as3l_sklearn.cli._plan import make_plan

    common = dict(n_images=10000, image_shape=(28, 28, 1), size=(28, 28), backbone="small_cnn_2x2",
                  device="cpu", compare=False, n_test=10000, default_simsiam_steps=1000,
                  default_flexmatch_steps=1000)
    short = make_plan(time_budget=120, **common)
    longer = make_plan(time_budget=1100, **common)  # over the floor of useful FlexMatch steps
    full = make_plan(time_budget=None, **common)
    assert short.flexmatch_steps < longer.flexmatch_steps < full.flexmatch_steps == 1000
    assert short.simsiam_steps <= longer.simsiam_steps <= full.simsiam_steps == 1000
    assert longer.total_seconds <= 1100 * 1.01
    assert short.total_seconds <= 120 * 1.01
    kept = make_plan(time_budget=120, simsiam_steps=7, flexmatch_steps=9, **{
        k: v for k, v in common.items()})
    assert (kept.simsiam_steps, kept.flexmatch_steps) == (7, 9)

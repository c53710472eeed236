"""The ``as3l`` run checks itself without a test set: a collapsed classifier and a losing
encoder are caught, said, and acted on; the checks reach report.json and report.html."""

import csv
import json

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from as3l_sklearn.cli import _stages, main

TINY = ["--n-train", "200", "--embed-epochs", "1", "--max-iter", "4", "--budget", "20", "--quiet"]


#: every test gets its own stage cache (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("private_cache")


class _CollapseAtTheEnd(Callback):
    """Makes the averaged model predict the first class everywhere once training ends."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            net.ema_module_.head.bias[:] = -1e4
            net.ema_module_.head.bias[0] = 1e4


def _collapsing_classifier(monkeypatch):
    make = _stages.make_classifier

    def make_classifier(config, state, steps, **params):
        params.setdefault("callbacks", [("collapse", _CollapseAtTheEnd())])
        return make(config, state, steps, **params)

    monkeypatch.setattr(_stages, "make_classifier", make_classifier)


def test_a_collapsed_classifier_is_caught_and_replaced(tmp_path, monkeypatch, capsys):
    _collapsing_classifier(monkeypatch)
    assert main(TINY[:-1] + ["--output", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    checks = report["self_checks"]
    final = checks["classifier"]["candidates"]["final"]
    assert final["collapsed"] and final["largest_class_share"] > 0.9
    assert checks["classifier"]["returned"] == "prior_start" and report["classifier"]["fell_back"]
    assert "fitted to the prior at the start" in checks["returned_model"]
    with open(tmp_path / "predictions.csv", newline="") as handle:
        models = {row["model_label"] for row in csv.DictReader(handle)}
    assert len(models) >= 5  # the returned model, not the collapsed one
    out, err = capsys.readouterr()
    assert "fails the checks against its prior (it collapsed onto few classes)" in err
    assert "COLLAPSED" in out and "returned model: fitted to the prior at the start" in out
    assert "failed the self-checks" in out  # the summary says it too
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Self-checks</h2>" in page and "COLLAPSED" in page


def test_a_losing_encoder_is_caught_and_the_prior_leans_on_pixels(tmp_path, monkeypatch, capsys):
    def noise_features(f_self, n_clusters, seed, device, verbose):
        return np.random.RandomState(seed).normal(size=(len(f_self), 16)).astype(np.float32)

    monkeypatch.setattr(_stages, "fine_tune_features", noise_features)
    assert main(TINY[:-1] + ["--output", str(tmp_path), "--max-iter", "0"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    check = report["feature_check"]
    assert check["choice"] == "pixels" and check["weights"]["pixels"] > 0.8, check
    assert check["scores"]["pixels"]["stability"] > check["scores"]["f_fine"]["stability"]
    # the prior follows the pixels: far above the noise features' own prior
    assert report["prior"]["accuracy"] > report["prior"]["accuracy_f_fine"] + 0.2, report["prior"]
    assert report["self_checks"]["features"]["choice"] == "pixels"
    assert "the learned features (f_fine) lost to pixels" in capsys.readouterr().out


def test_held_out_labels_are_reported_with_two_labels_per_class(tmp_path, capsys):
    assert main(TINY[:-1] + ["--output", str(tmp_path), "--max-iter", "0", "--selector", "random"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    scores = report["feature_check"]["scores"][report["feature_check"]["choice"]]
    if scores["n_held_out"]:  # random picks: at least one class may hold a single label
        assert 0 <= scores["held_out_accuracy"] <= 1
        assert "each held out, come back" in capsys.readouterr().out
    else:
        assert scores["held_out_accuracy"] is None


def test_summary_says_which_model_was_returned():
    from as3l_sklearn.cli._self_checks import classifier_text

    assert classifier_text({"steps": 30, "test_accuracy": 0.5}) == "test accuracy 0.500 after 30 steps"
    assert "fitted to the prior (no FlexMatch step)" in classifier_text({"steps": 0})
    assert "after 30 steps failed the self-checks" in classifier_text({"steps": 30, "fell_back": True})

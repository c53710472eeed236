"""Same seed, same model, whatever the caller's torch thread count (issue 12, item 9).

CPU training in torch splits its reductions by thread, so 1 and 2 threads give different
rounding, which SGD amplifies: measured on 500 digits, SimSiam features then differed by up
to 3.1 and a 10-image selection shared 3 of 10 images. joblib also lowers the thread count
inside its workers, so ``GridSearchCV(n_jobs=2)`` trained other models than ``n_jobs=1``.
The torch estimators now fit with a fixed thread count (``n_threads="auto"``: ``min(4,
os.cpu_count())``), restore the caller's setting after, and record what they used in
``torch_settings_``.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from as3l_sklearn import (
    ClusterFineTuner,
    LinearEvaluationClassifier,
    PriorGuidedFlexMatchClassifier,
    SimSiamEmbedder,
    SupervisedClassifier,
)
from as3l_sklearn.utils import resolve_n_threads, torch_threads


def _digits(n=200):
    from as3l_sklearn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return X[:n], y[:n]


def _partial(y):
    partial = np.full(len(y), -1)
    partial[::6] = y[::6]  # labels in every fold
    return partial


def _embedder(**params):
    return SimSiamEmbedder(**{"backbone": "small_cnn_2x2", "projector_dim": 32, "predictor_dim": 8, "max_steps": 12,
                              "batch_size": 32, "device": "cpu", "random_state": 0, **params})


CASES = {
    "SimSiamEmbedder": (lambda: _embedder(), lambda m, X, y: m.fit(X).transform(X)),
    "PriorGuidedFlexMatchClassifier": (
        lambda: PriorGuidedFlexMatchClassifier(backbone="small_cnn", max_iter=6, batch_size=16, mu=2, device="cpu",
                                               random_state=0),
        lambda m, X, y: m.fit(X, _partial(y)).predict_proba(X)),
    "SupervisedClassifier": (
        lambda: SupervisedClassifier(backbone="small_cnn", max_iter=6, batch_size=16, device="cpu", random_state=0),
        lambda m, X, y: m.fit(X, _partial(y)).predict_proba(X)),
    "ClusterFineTuner": (
        lambda: ClusterFineTuner(n_clusters=5, n_runs=2, max_epochs=5, batch_size=32, device="cpu", random_state=0),
        lambda m, X, y: m.fit_transform(X.reshape(len(X), -1).astype(np.float32) / 255.0)),
}


def _run(name, caller_threads):
    make, run = CASES[name]
    X, y = _digits()
    model = make()
    with torch_threads(caller_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        output = run(model, X, y)
        assert torch.get_num_threads() == caller_threads  # the caller's setting is back
    return model, output


@pytest.mark.parametrize("name", list(CASES))
def test_caller_thread_count_does_not_change_the_model(name):
    # before: the fit used whatever torch.set_num_threads the caller had set
    one, out_one = _run(name, 1)
    two, out_two = _run(name, 2)
    np.testing.assert_array_equal(out_one, out_two)
    expected = resolve_n_threads("auto")
    for model in (one, two):
        assert model.torch_settings_["n_threads"] == expected
        assert model.torch_settings_["threads_fixed"] is True
        assert model.torch_settings_["torch_version"] == torch.__version__
        assert model.torch_settings_["device"] == "cpu"


def test_n_threads_none_keeps_the_callers_setting_and_records_it():
    X, _ = _digits(64)
    with torch_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = _embedder(n_threads=None, max_steps=2).fit(X)
    assert model.torch_settings_["n_threads"] == 1
    assert model.torch_settings_["threads_fixed"] is False


def test_n_threads_is_validated_by_name():
    X, _ = _digits(64)
    for bad in (0, -2, 1.5, "many", True):
        with pytest.raises(ValueError, match="n_threads"):
            _embedder(n_threads=bad).fit(X)


def _feature_sum(estimator, X, y):
    # a score that moves with any change of the SimSiam weights
    return float(np.abs(estimator[0].transform(X)).sum())


def test_cross_val_score_n_jobs_2_matches_n_jobs_1():
    # before: joblib's workers ran torch with fewer threads than the parent, so every fold
    # trained another encoder
    X, y = _digits(128)
    pipe = make_pipeline(_embedder(max_steps=6), LinearEvaluationClassifier(embedder="passthrough"))
    with torch_threads(2), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        serial = cross_val_score(pipe, X, _partial(y), cv=KFold(2), scoring=_feature_sum, n_jobs=1,
                                 error_score="raise")
        parallel = cross_val_score(pipe, X, _partial(y), cv=KFold(2), scoring=_feature_sum, n_jobs=2,
                                   error_score="raise")
    np.testing.assert_array_equal(serial, parallel)

"""Checks every public estimator passes, from one registry of tiny configurations.

After imbalanced-learn's ``tests/test_common.py``: scikit-learn's estimator checks over every
public estimator, each expected failure justified here, plus the promises of DESIGN.md that
hold for all of them -- every parameter is declared in ``_parameter_constraints`` and a bad
value fails with an error naming it (scikit-learn's ``check_param_validation``), the same
``random_state`` gives the same result, fitted estimators pickle, and a model fitted on a GPU
reloads on a machine without CUDA.
"""

import inspect
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

import as3l_sklearn
from as3l_sklearn import (
    ClusterFineTuner,
    CoresetSelector,
    KMedoidsSelector,
    LinearEvaluationClassifier,
    CombinedPropagator,
    LLGCPropagator,
    MaxHerdingSelector,
    MultiClusterSelector,
    PriorGuidedFlexMatchClassifier,
    ProbCoverSelector,
    RandomSelector,
    SeededKMeansPropagator,
    SimSiamEmbedder,
    StableCoverSelector,
    SupervisedClassifier,
    TypiClustSelector,
)


class _NoiseView(torch.nn.Module):
    """A stand-in augmentation for 1 x 1 x d "images": the SimSiam views are noisy copies."""

    def forward(self, x, generator=None):
        return x + 0.1 * torch.randn(x.shape, generator=generator).to(x.device)


def _flat_backbone(width: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(width), torch.nn.ReLU())


def _checked_instances():
    """Tiny configurations for scikit-learn's checks, which feed tabular data of 1-10 features.

    The image estimators read each row as a 1 x 1 x d image (``image_shape=(1, 1, -1)``) and
    encode it with a flatten + linear backbone: everything else (training loop, validation,
    pickling) is the real code path.
    """
    return [
        SimSiamEmbedder(backbone=_flat_backbone(4), augment=_NoiseView(), projector_dim=8, predictor_dim=4,
                        max_epochs=1, batch_size=16, image_shape=(1, 1, -1), device="cpu"),
        ClusterFineTuner(n_clusters=2, n_runs=2, max_epochs=2, device="cpu"),
        MultiClusterSelector(random_state=0),
        RandomSelector(random_state=0),
        KMedoidsSelector(random_state=0),
        CoresetSelector(random_state=0),
        TypiClustSelector(random_state=0),
        ProbCoverSelector(random_state=0),
        MaxHerdingSelector(random_state=0),
        StableCoverSelector(random_state=0),
        SeededKMeansPropagator(n_clusters=[2, 3], random_state=0),
        LLGCPropagator(n_neighbors=5),
        CombinedPropagator(cluster_propagator=SeededKMeansPropagator(n_clusters=[2, 3], random_state=0),
                           graph_propagator=LLGCPropagator(n_neighbors=5)),
        PriorGuidedFlexMatchClassifier(backbone=_flat_backbone(16), image_shape=(1, 1, -1), max_iter=20,
                                       batch_size=8, mu=2, lr=0.1, device="cpu", random_state=0),
        SupervisedClassifier(backbone=_flat_backbone(16), image_shape=(1, 1, -1), max_iter=20, batch_size=8,
                             lr=0.1, device="cpu", random_state=0),
        LinearEvaluationClassifier(embedder="passthrough"),
    ]


def _expected_failed_checks(estimator):
    if type(estimator).__name__ in ("SeededKMeansPropagator", "LLGCPropagator", "CombinedPropagator",
                                    "PriorGuidedFlexMatchClassifier",
                                    "SupervisedClassifier", "LinearEvaluationClassifier"):
        return {
            # The check trains on the binary labels {-1, 1} and expects both as classes; -1
            # marks unlabeled samples in scikit-learn's semi-supervised convention, which every
            # classifier here follows, so a class named -1 cannot exist.
            "check_classifiers_classes": "-1 marks unlabeled samples, so it cannot be a class label",
        }
    return {}


def test_registry_covers_every_public_estimator():
    public = {name for name in as3l_sklearn.__all__
              if inspect.isclass(getattr(as3l_sklearn, name, None))}
    assert public == {type(e).__name__ for e in _checked_instances()}


@parametrize_with_checks(_checked_instances(), expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        # fully labeled y in the checks is fine for semi-supervised estimators; they warn, as
        # sklearn.semi_supervised does, and tiny check data trips the "few samples" warnings.
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


@pytest.mark.parametrize("estimator", _checked_instances(), ids=lambda e: type(e).__name__)
def test_check_param_validation(estimator):
    """scikit-learn's own test of ``_parameter_constraints`` (sklearn/tests/test_common.py):
    every parameter is declared, and a value of a wrong type or out of range raises
    ``InvalidParameterError`` (a ValueError and a TypeError) naming the parameter, from fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_param_validation(type(estimator).__name__, estimator)


# --------------------------------------------------------------------------------------------
# Determinism and persistence on real (tiny) images
# --------------------------------------------------------------------------------------------
def _digits(n=120):
    from as3l_sklearn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return X[:n], y[:n]


def _features(n=120):
    from sklearn.decomposition import PCA

    X, y = _digits(n)
    return PCA(n_components=8, random_state=0).fit_transform(X.reshape(len(X), -1) / 255.0), y


def _partial(y, per_class=2):
    partial = np.full(len(y), -1)
    for c in np.unique(y):
        partial[np.flatnonzero(y == c)[:per_class]] = c
    return partial


def _image_estimators():
    return {
        "SimSiamEmbedder": SimSiamEmbedder(backbone="small_cnn", projector_dim=16, predictor_dim=8, max_epochs=1,
                                           batch_size=32, device="cpu", random_state=0),
        "PriorGuidedFlexMatchClassifier": PriorGuidedFlexMatchClassifier(
            backbone="small_cnn", max_iter=3, batch_size=8, mu=2, device="cpu", random_state=0),
        "SupervisedClassifier": SupervisedClassifier(backbone="small_cnn", max_iter=3, batch_size=8, device="cpu",
                                                     random_state=0),
    }


def _feature_estimators():
    return {
        "ClusterFineTuner": ClusterFineTuner(n_clusters=5, n_runs=2, max_epochs=3, device="cpu", random_state=0),
        "SeededKMeansPropagator": SeededKMeansPropagator(n_clusters=[10, 20], random_state=0),
        "LLGCPropagator": LLGCPropagator(n_neighbors=10),
        "CombinedPropagator": CombinedPropagator(random_state=0),
    }


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if isinstance(estimator, (SimSiamEmbedder, ClusterFineTuner)):
            return estimator.fit(X)
        return estimator.fit(X, _partial(y))


def _output(estimator, X):
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(X)
    return estimator.transform(X)


def _all_fitted_cases():
    cases = [(name, est, "images") for name, est in _image_estimators().items()]
    cases += [(name, est, "features") for name, est in _feature_estimators().items()]
    return cases


@pytest.mark.parametrize("name, estimator, data", _all_fitted_cases(), ids=[c[0] for c in _all_fitted_cases()])
def test_same_random_state_same_result_and_pickle_round_trip(name, estimator, data):
    X, y = _digits() if data == "images" else _features()
    first = _fit(clone(estimator), X, y)
    second = _fit(clone(estimator), X, y)
    np.testing.assert_allclose(_output(first, X), _output(second, X), rtol=1e-5, atol=1e-6)

    reloaded = pickle.loads(pickle.dumps(first))
    np.testing.assert_allclose(_output(reloaded, X), _output(first, X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("selector", [MultiClusterSelector, RandomSelector, KMedoidsSelector, CoresetSelector,
                                      TypiClustSelector, ProbCoverSelector])
def test_same_random_state_same_selection(selector):
    F, _ = _features()
    first = selector(random_state=3).fit(F).select(10)
    second = pickle.loads(pickle.dumps(selector(random_state=3).fit(F))).select(10)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", list(_image_estimators()))
def test_model_fitted_on_gpu_reloads_on_cpu(name):
    """Simulate a CUDA-fitted model: its net says it lives on "cuda" when it is pickled.

    On a machine without CUDA, unpickling must map the weights to the CPU (skorch's
    ``map_location`` handling) and predict as before.
    """
    if torch.cuda.is_available():
        pytest.skip("simulates a machine without CUDA")
    X, y = _digits(60)
    fitted = _fit(_image_estimators()[name], X, y)
    expected = _output(fitted, X)
    fitted.net_.device = "cuda"
    payload = pickle.dumps(fitted)
    fitted.net_.device = "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reloaded = pickle.loads(payload)
    assert str(reloaded.net_.device) == "cpu"
    np.testing.assert_allclose(_output(reloaded, X), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(_image_estimators()))
def test_cuda_fit_then_cpu_predictions_match(name):
    X, y = _digits(60)
    estimator = clone(_image_estimators()[name]).set_params(device="cuda")
    fitted = _fit(estimator, X, y)
    reloaded = pickle.loads(pickle.dumps(fitted))
    assert np.isfinite(_output(reloaded, X)).all()

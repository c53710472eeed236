"""One table of bad inputs across every public estimator.

Each row: an estimator (tiny settings), a bad input, the exception it must raise, and a
pattern the message must contain -- the name of the offending argument, so a user knows what
to fix. Rows that are *not* errors (string labels, a single labeled class) are checked to work.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from as3l_sklearn.cluster import kmeans, knn_search
from as3l_sklearn.utils import UnlabeledInScoreWarning, check_features, check_images

from as3l_sklearn import (
    ClusterFineTuner,
    CoresetSelector,
    KMedoidsSelector,
    CombinedPropagator,
    LLGCPropagator,
    MultiClusterSelector,
    PriorGuidedFlexMatchClassifier,
    ProbCoverSelector,
    RandomSelector,
    SeededKMeansPropagator,
    SimSiamEmbedder,
    SupervisedClassifier,
    TypiClustSelector,
)

RNG = np.random.RandomState(0)
F = RNG.normal(size=(40, 5)).astype(np.float32)
F_NAN = F.copy()
F_NAN[3, 2] = np.nan
F_INF = F.copy()
F_INF[1, 1] = np.inf
IMAGES = (RNG.rand(40, 8, 8, 1) * 255).astype(np.uint8)
IMAGES_NAN = IMAGES.transpose(0, 3, 1, 2).astype(np.float32) / 255
IMAGES_NAN[0, 0, 0, 0] = np.nan
Y = np.full(40, -1)
Y[:4] = [0, 1, 0, 1]
Y_ALL_UNLABELED = np.full(40, -1)
Y_STRINGS = np.array(["cat", "dog", "cat", "dog"] + [-1] * 36, dtype=object)
Y_ONE_CLASS = np.array([0, 0] + [-1] * 38)
Y_FRACTIONAL = np.array([0.5, 1.0] + [-1.0] * 38)
# -1 as it comes back from a CSV file, pandas or np.array(["cat", -1]): unlabeled, not a class
Y_STRING_MINUS_ONE = np.array(["cat", "dog", "cat", "dog"] + ["-1", " -1"] * 18, dtype=object)
# finite in float64 but infinite in float32 (features are used as float32)
F_HUGE = F.astype(np.float64) * 1e300
# finite float32 whose squared distances overflow float32 (faiss aborted the process)
F_DISTANCES_OVERFLOW = F * np.float32(1e19)
# finite, non-zero float64 that is all zeros in float32: every distance 0
F_TINY = F.astype(np.float64) * 1e-300

SELECTORS = [MultiClusterSelector, RandomSelector, KMedoidsSelector, CoresetSelector,
             TypiClustSelector, ProbCoverSelector]
PROPAGATORS = {
    "SeededKMeansPropagator": lambda: SeededKMeansPropagator(n_clusters=[3, 5], random_state=0),
    "LLGCPropagator": lambda: LLGCPropagator(n_neighbors=5),
    "CombinedPropagator": lambda: CombinedPropagator(random_state=0),
}
CLASSIFIERS = {
    "PriorGuidedFlexMatchClassifier": lambda: PriorGuidedFlexMatchClassifier(
        backbone="small_cnn", max_iter=2, batch_size=4, mu=2, device="cpu", random_state=0),
    "SupervisedClassifier": lambda: SupervisedClassifier(
        backbone="small_cnn", max_iter=2, batch_size=4, device="cpu", random_state=0),
}


def _embedder():
    return SimSiamEmbedder(backbone="small_cnn", max_epochs=1, batch_size=16, device="cpu", random_state=0)


def _tuner(**params):
    return ClusterFineTuner(**{"n_clusters": 3, "n_runs": 2, "max_epochs": 1, "device": "cpu", **params})


CASES = []
for cls in SELECTORS:
    name = cls.__name__
    CASES += [
        (f"{name}-nan", lambda c=cls: c(random_state=0).fit(F_NAN), ValueError, r"\bX\b"),
        (f"{name}-inf", lambda c=cls: c(random_state=0).fit(F_INF), ValueError, r"\bX\b"),
        (f"{name}-1d", lambda c=cls: c(random_state=0).fit(F[:, 0]), ValueError, r"\bX\b"),
        (f"{name}-empty", lambda c=cls: c(random_state=0).fit(F[:0]), ValueError, r"\bX\b"),
        (f"{name}-strings", lambda c=cls: c(random_state=0).fit(np.full((40, 5), "cat", dtype=object)),
         (TypeError, ValueError), r"\bX\b|float|string"),
        (f"{name}-budget-zero", lambda c=cls: c(random_state=0).fit(F).select(0), ValueError, "n_budget"),
        (f"{name}-budget-too-big", lambda c=cls: c(random_state=0).fit(F).select(41), ValueError, "n_budget"),
        (f"{name}-budget-float", lambda c=cls: c(random_state=0).fit(F).select(2.5), TypeError, "n_budget"),
        (f"{name}-select-before-fit", lambda c=cls: c(random_state=0).select(3), NotFittedError, "fit"),
        (f"{name}-overflow-float32", lambda c=cls: c(random_state=0).fit(F_HUGE), ValueError,
         r"^X .*overflow float32"),
        (f"{name}-distances-overflow-float32",
         lambda c=cls: c(random_state=0).fit(F_DISTANCES_OVERFLOW), ValueError,
         r"^X .*overflow float32"),
        (f"{name}-underflow-float32", lambda c=cls: c(random_state=0).fit(F_TINY), ValueError,
         r"^X .*underflow float32"),
        (f"{name}-random_state-string", lambda c=cls: c(random_state="seven").fit(F), ValueError,
         "random_state"),
    ]
for name, make in PROPAGATORS.items():
    CASES += [
        (f"{name}-all-unlabeled", lambda m=make: m().fit(F, Y_ALL_UNLABELED), ValueError, r"\by\b"),
        (f"{name}-length-mismatch", lambda m=make: m().fit(F, Y[:30]), ValueError, r"\by\b"),
        (f"{name}-nan", lambda m=make: m().fit(F_NAN, Y), ValueError, r"\bX\b"),
        (f"{name}-fractional-labels", lambda m=make: m().fit(F, Y_FRACTIONAL), ValueError, r"\by\b"),
        (f"{name}-wrong-n-features", lambda m=make: m().fit(F, Y).predict(F[:, :3]), ValueError, "features"),
        (f"{name}-1d", lambda m=make: m().fit(F[:, 0], Y), ValueError,
         r"^X must be a 2-D array.*1-D"),
        (f"{name}-overflow-float32", lambda m=make: m().fit(F_HUGE, Y), ValueError,
         r"^X .*overflow float32"),
        (f"{name}-distances-overflow-float32", lambda m=make: m().fit(F_DISTANCES_OVERFLOW, Y),
         ValueError, r"^X .*overflow float32"),
        (f"{name}-underflow-float32", lambda m=make: m().fit(F_TINY, Y), ValueError,
         r"^X .*underflow float32"),
    ]
CASES += [
    ("SeededKMeansPropagator-random_state-string",
     lambda: SeededKMeansPropagator(random_state="seven").fit(F, Y), ValueError, "random_state"),
    ("kmeans-overflow-float32", lambda: kmeans(F_HUGE, 3), ValueError, r"^X .*overflow float32"),
    ("kmeans-distances-overflow-float32", lambda: kmeans(F_DISTANCES_OVERFLOW, 3), ValueError,
     r"^X .*overflow float32"),
    ("knn_search-distances-overflow-float32", lambda: knn_search(F_DISTANCES_OVERFLOW, F, 3),
     ValueError, r"^database .*overflow float32"),
    ("ClusterFineTuner-overflow-float32", lambda: _tuner().fit(F_HUGE), ValueError,
     r"^X .*overflow float32"),
    ("ClusterFineTuner-distances-overflow-float32", lambda: _tuner().fit(F_DISTANCES_OVERFLOW),
     ValueError, r"^X .*overflow float32"),
    ("ClusterFineTuner-underflow-float32", lambda: _tuner().fit(F_TINY), ValueError,
     r"^X .*underflow float32"),
    ("SimSiamEmbedder-ambiguous-float-layout",
     lambda: _embedder().fit(np.zeros((4, 3, 8, 3), np.float32)),
     ValueError, r"^X has shape \(4, 3, 8, 3\).*image_shape"),
    ("SeededKMeansPropagator-K-zero", lambda: SeededKMeansPropagator(n_clusters=[0]).fit(F, Y),
     ValueError, "n_clusters"),
    ("SeededKMeansPropagator-K-not-int", lambda: SeededKMeansPropagator(n_clusters=["ten"]).fit(F, Y),
     (TypeError, ValueError), "n_clusters"),
    ("ClusterFineTuner-fewer-samples-than-K", lambda: _tuner(n_clusters=50).fit(F), ValueError, "n_clusters"),
    ("ClusterFineTuner-nan", lambda: _tuner().fit(F_NAN), ValueError, r"\bX\b"),
    ("ClusterFineTuner-wrong-n-features", lambda: _tuner().fit(F).transform(F[:, :3]), ValueError, "features"),
    ("SimSiamEmbedder-nan", lambda: _embedder().fit(IMAGES_NAN), ValueError, r"\bX\b"),
    ("SimSiamEmbedder-5d", lambda: _embedder().fit(IMAGES[None]), ValueError, r"\bX\b"),
    ("SimSiamEmbedder-strings", lambda: _embedder().fit(IMAGES.astype(str)), TypeError, r"\bX\b"),
    ("SimSiamEmbedder-empty", lambda: _embedder().fit(IMAGES[:0]), ValueError, r"\bX\b"),
    ("SimSiamEmbedder-flat-without-image_shape", lambda: _embedder().fit(F), ValueError, "image_shape"),
    ("SimSiamEmbedder-unseen-image-size", lambda: _embedder().fit(IMAGES).transform(np.zeros((3, 10, 10, 1), np.uint8)),
     ValueError, r"\bX\b.*shape"),
    ("SimSiamEmbedder-unseen-channels", lambda: _embedder().fit(IMAGES).transform(np.zeros((3, 8, 8, 3), np.uint8)),
     ValueError, r"\bX\b.*(shape|channel)"),
]
for name, make in CLASSIFIERS.items():
    CASES += [
        (f"{name}-all-unlabeled", lambda m=make: m().fit(IMAGES, Y_ALL_UNLABELED), ValueError, r"\by\b"),
        (f"{name}-length-mismatch", lambda m=make: m().fit(IMAGES, Y[:30]), ValueError, r"\by\b"),
        (f"{name}-nan", lambda m=make: m().fit(IMAGES_NAN, Y), ValueError, r"\bX\b"),
        (f"{name}-5d", lambda m=make: m().fit(IMAGES[None], Y), ValueError, r"\bX\b"),
        (f"{name}-unseen-image-size",
         lambda m=make: m().fit(IMAGES, Y).predict(np.zeros((3, 10, 10, 1), np.uint8)), ValueError, r"\bX\b.*shape"),
    ]
CASES += [
    ("FlexMatch-prior-wrong-shape",
     lambda: CLASSIFIERS["PriorGuidedFlexMatchClassifier"]().fit(IMAGES, Y, prior_proba=np.full((40, 3), 1 / 3)),
     ValueError, "prior_proba"),
    ("FlexMatch-prior-not-normalised",
     lambda: CLASSIFIERS["PriorGuidedFlexMatchClassifier"]().fit(IMAGES, Y, prior_proba=np.ones((40, 2))),
     ValueError, "prior_proba"),
    ("FlexMatch-prior-nan",
     lambda: CLASSIFIERS["PriorGuidedFlexMatchClassifier"]().fit(IMAGES, Y, prior_proba=np.full((40, 2), np.nan)),
     ValueError, "prior_proba"),
]


def _pil_images(*sizes, mode="RGB"):
    Image = pytest.importorskip("PIL.Image")
    return [Image.new(mode, size) for size in sizes]


# the shared validators the estimators call (as3l_sklearn.utils), for inputs that do not
# depend on an estimator
CASES += [
    ("check_features-1d", lambda: check_features(F[:, 0]), ValueError,
     r"^X must be a 2-D array of shape \(n_samples, n_features\), got a 1-D input"),
    ("check_images-1d", lambda: check_images(F[:, 0]), ValueError,
     r"^X must be 4-D images.*shape \(40,\)"),
    ("check_images-pil-different-sizes", lambda: check_images(_pil_images((8, 8), (10, 8))),
     ValueError, r"^X is a list of PIL images of 2 different sizes \(width x height: 8x8, 10x8\)"),
    ("check_images-pil-different-modes",
     lambda: check_images(_pil_images((8, 8)) + _pil_images((8, 8), mode="L")),
     ValueError, r"^X is a list of PIL images of different modes"),
    ("check_images-one-pil-image", lambda: check_images(_pil_images((8, 8))[0]), ValueError,
     r"^X is a single PIL image"),
    ("check_images-arrays-of-different-shapes",
     lambda: check_images([np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)]),
     ValueError, r"^X is a list of images of 2 different shapes"),
    ("check_images-ambiguous-float-layout", lambda: check_images(np.zeros((2, 3, 32, 3))),
     ValueError, r"^X has shape \(2, 3, 32, 3\), which reads both"),
]


@pytest.mark.parametrize("case, call, error, pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_a_clear_error(case, call, error, pattern):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=pattern):
            call()


WORKING = []
for name, make in PROPAGATORS.items():
    WORKING += [(f"{name}-string-labels", lambda m=make: m().fit(F, Y_STRINGS), {"cat", "dog"}),
                (f"{name}-string-minus-one-is-unlabeled",
                 lambda m=make: m().fit(F, Y_STRING_MINUS_ONE), {"cat", "dog"}),
                (f"{name}-one-class", lambda m=make: m().fit(F, Y_ONE_CLASS), {0})]
for name, make in CLASSIFIERS.items():
    WORKING += [(f"{name}-string-labels", lambda m=make: m().fit(IMAGES, Y_STRINGS), {"cat", "dog"})]


@pytest.mark.parametrize("case, call, classes", WORKING, ids=[w[0] for w in WORKING])
def test_string_labels_and_a_single_class_work(case, call, classes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = call()
    assert set(fitted.classes_.tolist()) == classes
    predictions = fitted.predict(IMAGES if "Classifier" in case else F)
    assert set(np.unique(predictions).tolist()) <= classes


@pytest.mark.parametrize("name", list(PROPAGATORS))
def test_single_labeled_class_warns(name):
    with pytest.warns(UserWarning):
        PROPAGATORS[name]().fit(F, Y_ONE_CLASS)


# inputs that used to fail or give a wrong answer and are now accepted
ACCEPTED = [
    ("check_images-float-rgba-channels-last",
     lambda: check_images(np.zeros((2, 8, 10, 4), np.float32)).shape == (2, 4, 8, 10)),
    ("check_images-pil-same-size",
     lambda: check_images(_pil_images((10, 8), (10, 8))).shape == (2, 3, 8, 10)),
]
for cls in SELECTORS:
    ACCEPTED += [(f"{cls.__name__}-numpy-Generator",
                  lambda c=cls: c(random_state=np.random.default_rng(0)).fit(F).select(3).shape
                  == (3,))]
for name in ("SeededKMeansPropagator", "CombinedPropagator"):
    ACCEPTED += [(f"{name}-numpy-Generator",
                  lambda n=name: PROPAGATORS[n]().set_params(random_state=np.random.default_rng(0))
                  .fit(F, Y).predict(F).shape == (40,))]


@pytest.mark.parametrize("case, call", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_formerly_failing_inputs_are_accepted(case, call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert call()


@pytest.mark.parametrize("name", list(PROPAGATORS))
def test_score_with_unlabeled_y_warns(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = PROPAGATORS[name]().fit(F, Y)
    with pytest.warns(UnlabeledInScoreWarning, match="make_labeled_scorer"):
        fitted.score(F, Y)

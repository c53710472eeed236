"""Bad input to the torch estimators (issue 12, items 7, 8 and 10).

* an RGB-fitted encoder or classifier given grayscale images (and the reverse): a
  ``ValueError`` naming ``X`` and the channels expected and given, not a convolution
  ``RuntimeError`` from inside torch;
* a :class:`numpy.random.Generator` as ``random_state``: accepted (a seed is drawn from it),
  as the numpy estimators do;
* a model fitted on uint8 images (scaled to [0, 1]) given float images in 0..255, or the
  reverse: an :class:`~as3l_sklearn.utils.ImageRangeWarning` (the images are used as given);
* ``score`` with ``-1`` in ``y``: an :class:`~as3l_sklearn.utils.UnlabeledInScoreWarning`
  pointing at ``make_labeled_scorer`` / ``SemiSupervisedKFold``.
"""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline

from as3l_sklearn import (
    ClusterFineTuner,
    LinearEvaluationClassifier,
    PriorGuidedFlexMatchClassifier,
    SimSiamEmbedder,
    SupervisedClassifier,
)
from as3l_sklearn.utils import ImageRangeWarning, UnlabeledInScoreWarning

RNG = np.random.RandomState(0)
RGB = RNG.randint(0, 256, (32, 8, 8, 3), dtype=np.uint8)
GRAY = RNG.randint(0, 256, (32, 8, 8), dtype=np.uint8)
Y = np.full(32, -1)
Y[:6] = [0, 1, 0, 1, 0, 1]


def _embedder(**params):
    return SimSiamEmbedder(**{"backbone": "small_cnn", "projector_dim": 16, "predictor_dim": 8, "max_steps": 2,
                              "batch_size": 16, "device": "cpu", "random_state": 0, **params})


def _flexmatch(**params):
    return PriorGuidedFlexMatchClassifier(**{"backbone": "small_cnn", "max_iter": 2, "batch_size": 4, "mu": 2,
                                             "device": "cpu", "random_state": 0, **params})


def _supervised(**params):
    return SupervisedClassifier(**{"backbone": "small_cnn", "max_iter": 2, "batch_size": 4, "device": "cpu",
                                   "random_state": 0, **params})


@pytest.fixture(scope="module")
def rgb_models():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embedder = _embedder().fit(RGB)
        return {
            "embedder": embedder,
            "flexmatch": _flexmatch().fit(RGB, Y),
            "supervised": _supervised().fit(RGB, Y),
            "linear": LinearEvaluationClassifier(embedder=embedder).fit(RGB, Y),
        }


# ----------------------------------------------------------------------------- channels
CHANNEL_CASES = {
    # before: a torch RuntimeError "weight of size [32, 3, 3, 3], expected input[...] to have 3
    # channels, but got 1 channels instead", raised inside the first training step
    "flexmatch-encoder-rgb-fit-gray": lambda m: _flexmatch(encoder=m["embedder"]).fit(GRAY, Y),
    "supervised-encoder-rgb-fit-gray": lambda m: _supervised(encoder=m["embedder"]).fit(GRAY, Y),
    # before: a ValueError about "shape (C, H, W)" that did not say what a channel mismatch is
    "embedder-rgb-transform-gray": lambda m: m["embedder"].transform(GRAY),
    "flexmatch-rgb-predict-gray": lambda m: m["flexmatch"].predict(GRAY),
    "supervised-rgb-predict_proba-gray": lambda m: m["supervised"].predict_proba(GRAY),
    "linear-rgb-predict-gray": lambda m: m["linear"].predict(GRAY),
    "flexmatch-rgb-embed-gray": lambda m: m["flexmatch"].embed(GRAY),
}


@pytest.mark.parametrize("case", list(CHANNEL_CASES))
def test_rgb_model_given_grayscale_images_names_X_and_the_channels(rgb_models, case):
    with pytest.raises(ValueError, match=r"^X has images .* 1 channel \(grayscale\).* 3 channels \(RGB\)"):
        CHANNEL_CASES[case](rgb_models)


def test_grayscale_model_given_rgb_images_names_X_and_the_channels():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embedder = _embedder().fit(GRAY)
    with pytest.raises(ValueError, match=r"^X has images .* 3 channels \(RGB\).* 1 channel \(grayscale\)"):
        embedder.transform(RGB)
    with pytest.raises(ValueError, match=r"^X has images .* 3 channels .*the encoder \(SimSiamEmbedder\)"):
        _flexmatch(encoder=embedder).fit(RGB, Y)


# ----------------------------------------------------------------------------- random_state
GENERATOR_CASES = {
    "SimSiamEmbedder": lambda rs: _embedder(random_state=rs).fit(RGB).transform(RGB),
    "PriorGuidedFlexMatchClassifier": lambda rs: _flexmatch(random_state=rs).fit(RGB, Y).predict_proba(RGB),
    "SupervisedClassifier": lambda rs: _supervised(random_state=rs).fit(RGB, Y).predict_proba(RGB),
    "LinearEvaluationClassifier": lambda rs: LinearEvaluationClassifier(embedder="passthrough", random_state=rs)
    .fit(RGB.reshape(32, -1)[:, :10].astype(float), Y).predict_proba(RGB.reshape(32, -1)[:, :10].astype(float)),
    "ClusterFineTuner": lambda rs: ClusterFineTuner(n_clusters=2, n_runs=2, max_epochs=2, device="cpu",
                                                    random_state=rs).fit_transform(RGB.reshape(32, -1)[:, :10] / 255.0),
}


@pytest.mark.parametrize("name", list(GENERATOR_CASES))
def test_numpy_generator_is_accepted_as_random_state(name):
    # before: ValueError "Generator(PCG64) ... cannot be used to seed a numpy.random.RandomState"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        first = GENERATOR_CASES[name](np.random.default_rng(7))
        second = GENERATOR_CASES[name](np.random.default_rng(7))
    # a Generator in the same state gives the same model, as an int seed does
    np.testing.assert_array_equal(first, second)


def test_random_state_of_another_type_is_rejected_naming_it():
    with pytest.raises(ValueError, match="random_state"):
        _embedder(random_state="seven").fit(RGB)


# ----------------------------------------------------------------------------- value range
def test_uint8_fit_then_float_0_255_warns(rgb_models):
    # before: silently different features (the float images are 255 times brighter)
    as_float = RGB.transpose(0, 3, 1, 2).astype(np.float32)  # 0..255, channels first
    for call in (lambda: rgb_models["embedder"].transform(as_float),
                 lambda: rgb_models["supervised"].predict(as_float),
                 lambda: rgb_models["flexmatch"].predict_proba(as_float)):
        with pytest.warns(ImageRangeWarning, match=r"X holds float images with values up to 2\d\d.*divide"):
            call()


def test_float_0_255_fit_then_uint8_warns():
    as_float = RGB.transpose(0, 3, 1, 2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embedder = _embedder().fit(as_float)
    with pytest.warns(ImageRangeWarning, match="X holds uint8 images"):
        embedder.transform(RGB)


def test_matching_scales_do_not_warn(rgb_models):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageRangeWarning)
        rgb_models["embedder"].transform(RGB)
        rgb_models["embedder"].transform(RGB.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        rgb_models["supervised"].predict(RGB)


# ----------------------------------------------------------------------------- score with -1
@pytest.mark.parametrize("name", ["flexmatch", "supervised", "linear"])
def test_score_with_unlabeled_y_warns(rgb_models, name):
    # before: a silently low accuracy (every -1 counted as a wrong class)
    with pytest.warns(UnlabeledInScoreWarning, match="make_labeled_scorer"):
        score = rgb_models[name].score(RGB, Y)
    # the score itself stays scikit-learn's accuracy over every entry of y
    assert score == pytest.approx(np.mean(rgb_models[name].predict(RGB) == Y))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlabeledInScoreWarning)
        rgb_models[name].score(RGB[:6], Y[:6])  # fully labeled: no warning


def test_cross_val_score_with_plain_kfold_warns():
    features = RNG.rand(32, 5)
    y = np.full(32, -1)
    y[::4] = np.arange(8) % 2  # labels in both folds
    with pytest.warns(UnlabeledInScoreWarning, match="SemiSupervisedKFold"):
        cross_val_score(make_pipeline(LinearEvaluationClassifier(embedder="passthrough")), features, y,
                        cv=KFold(2), error_score="raise")


def test_validation_images_with_other_channels_name_X_val():
    with pytest.raises(ValueError, match=r"^X_val has images .* 1 channel .* training images with 3 channels"):
        _supervised().fit(RGB, Y, X_val=GRAY[:4], y_val=[0, 1, 0, 1])


# ---------------------------------------------------------------- issue 12 leftovers
def _pil_images(sizes):
    Image = pytest.importorskip("PIL.Image")
    return [Image.fromarray(RNG.randint(0, 256, (h, w), dtype=np.uint8)) for h, w in sizes]


@pytest.mark.parametrize("make", [_embedder, _flexmatch, _supervised])
def test_pil_images_of_different_sizes_name_X_and_the_sizes(make):
    # before: numpy's "inhomogeneous shape" error from np.asarray(X).ndim
    images = _pil_images([(8, 8)] * 31 + [(9, 8)])
    args = () if make is _embedder else (Y,)
    with pytest.raises(ValueError, match=r"X.*(size|shape)") as info:
        make().fit(images, *args)
    assert "inhomogeneous" not in str(info.value)


@pytest.mark.parametrize("make", [_embedder, _flexmatch])
def test_pil_images_of_one_size_are_stacked(make):
    images = _pil_images([(8, 8)] * 32)
    args = () if make is _embedder else (Y,)
    model = make().fit(images, *args)
    assert model.image_shape_ == (1, 8, 8)


@pytest.mark.parametrize("make", [_embedder, _flexmatch, _supervised])
def test_1d_X_names_X(make):
    args = () if make is _embedder else (Y[:8],)
    with pytest.raises(ValueError, match=r"Expected 2D array.*X has shape \(8,\).*Reshape your data"):
        make().fit(np.arange(8.0), *args)


@pytest.mark.parametrize("make", [_flexmatch, _supervised])
def test_string_minus_one_marks_unlabeled_in_flexmatch(make):
    # before: a str array holding "-1" was refused; check_partial_labels reads "-1" as unlabeled
    y = np.array(["cat", "dog"] * 3 + ["-1"] * 26)  # a plain str array, as read from a CSV file
    model = make().fit(GRAY, y)
    assert list(model.classes_) == ["cat", "dog"]
    assert set(model.predict(GRAY)) <= {"cat", "dog"}

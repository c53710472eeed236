"""Numeric and semantic safety of the numpy estimators (issue 12, items 6-8 and 10).

Each test pins one input that used to crash the process, give a silently wrong answer, or
fail deep inside with an error that did not name the argument.
"""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_score

from as3l_sklearn import CombinedPropagator, CoresetSelector, LLGCPropagator, SeededKMeansPropagator
from as3l_sklearn.utils import (
    UnlabeledInScoreWarning,
    check_features,
    check_images,
    check_partial_labels,
    warn_if_unlabeled_in_score,
)

RNG = np.random.RandomState(0)
F = np.r_[RNG.normal(0, 1, (30, 4)), RNG.normal(5, 1, (30, 4))].astype(np.float32)
Y_TRUE = np.repeat([0, 1], 30)
Y_PARTIAL = Y_TRUE.copy()
Y_PARTIAL[RNG.rand(60) < 0.7] = -1
Y_PARTIAL[[0, 30]] = [0, 1]

PROPAGATORS = {
    "SeededKMeansPropagator": lambda: SeededKMeansPropagator(n_clusters=[2, 4], random_state=0),
    "LLGCPropagator": lambda: LLGCPropagator(n_neighbors=5),
    "CombinedPropagator": lambda: CombinedPropagator(random_state=0),
}


# ---------------------------------------------------------------------------------------
# item 10: score with -1 in y
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROPAGATORS))
def test_score_warns_when_y_holds_unlabeled(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PROPAGATORS[name]().fit(F, Y_PARTIAL)
    with pytest.warns(UnlabeledInScoreWarning, match="make_labeled_scorer"):
        model.score(F, Y_PARTIAL)
    # fully labeled y: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlabeledInScoreWarning)
        assert 0.0 <= model.score(F, Y_TRUE) <= 1.0


def test_cross_val_score_with_plain_kfold_warns():
    with pytest.warns(UnlabeledInScoreWarning, match="SemiSupervisedKFold"):
        cross_val_score(SeededKMeansPropagator(n_clusters=[2], random_state=0), F, Y_PARTIAL,
                        cv=KFold(3, shuffle=True, random_state=0))


def test_warn_if_unlabeled_in_score_helper():
    with pytest.warns(UnlabeledInScoreWarning, match="Foo.score"):
        assert warn_if_unlabeled_in_score(np.array(["cat", -1], dtype=object), "Foo")
    with pytest.warns(UnlabeledInScoreWarning):
        assert warn_if_unlabeled_in_score(np.array(["cat", "-1"]), "Foo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_unlabeled_in_score([0, 1, 2], "Foo")
        assert not warn_if_unlabeled_in_score(np.array(["cat", "dog"]), "Foo")


# ---------------------------------------------------------------------------------------
# item 6: features finite in float64 but too large for float32
# ---------------------------------------------------------------------------------------

OVERFLOW_RNG = np.random.RandomState(1)
F_BASE = OVERFLOW_RNG.normal(size=(200, 5))
OVERFLOWING = {
    # finite float64, infinite once cast to float32 (faiss needs float32)
    "float64-x1e300": F_BASE * 1e300,
    # finite float32, but the squared distances overflow float32
    "float32-x1e19": (F_BASE * 1e19).astype(np.float32),
}


@pytest.mark.parametrize("case", list(OVERFLOWING))
def test_check_features_rejects_values_that_overflow_float32(case):
    with pytest.raises(ValueError, match=r"^X .*overflow float32.*Scale the features"):
        check_features(OVERFLOWING[case], name="X")


UNDERFLOWING = {
    # finite, non-zero float64 that becomes all zeros in float32
    "float64-x1e-300": F_BASE * 1e-300,
    # float32 whose squared distances fall below float32's smallest normal number
    "float32-x1e-20": (F_BASE * 1e-20).astype(np.float32),
}


@pytest.mark.parametrize("case", list(UNDERFLOWING))
def test_features_whose_distances_underflow_float32_are_rejected(case):
    # k-means used to put every sample in one cluster, CoresetSelector picked [172, 0, 1, 2]
    with pytest.raises(ValueError, match=r"^X .*underflow float32.*Scale the features"):
        check_features(UNDERFLOWING[case], name="X")
    with pytest.raises(ValueError, match=r"^X .*underflow float32"):
        CoresetSelector(random_state=0).fit(UNDERFLOWING[case]).select(4)
    # all-zero features stay accepted (degenerate but exact); 1e-12 is fine
    assert check_features(np.zeros((3, 2))).shape == (3, 2)
    assert check_features(F_BASE * 1e-12).shape == F_BASE.shape


def test_check_features_accepts_large_values_below_the_limit():
    # the limit is on the row norm (1e18): every squared distance stays below float32's max
    F = F_BASE / np.linalg.norm(F_BASE, axis=1).max() * 0.9e18
    assert np.isfinite(check_features(F)).all()
    with pytest.raises(ValueError, match="norm up to 1.1e\\+18"):
        check_features(F / 0.9 * 1.1)


def test_coreset_refuses_overflowing_features_instead_of_picking_garbage():
    # used to pick [172, 0, 1, 2] (every distance inf) without a word
    with pytest.raises(ValueError, match=r"\bX\b.*overflow float32"):
        CoresetSelector(random_state=0).fit(OVERFLOWING["float32-x1e19"]).select(4)


def test_overflowing_features_never_kill_the_process():
    # faiss aborted the whole interpreter (exit 134, a dead Jupyter kernel) on these inputs,
    # so every entry point that reaches it runs in a child process
    script = textwrap.dedent("""
        import warnings
        import numpy as np
        warnings.simplefilter("ignore")
        from as3l_sklearn import (ClusterFineTuner, CombinedPropagator, CoresetSelector,
            KMedoidsSelector, LLGCPropagator, MultiClusterSelector, ProbCoverSelector,
            RandomSelector, SeededKMeansPropagator, TypiClustSelector)
        from as3l_sklearn.cluster import kmeans, knn_search, nearest_centers

        rng = np.random.RandomState(1)
        base = rng.normal(size=(200, 5))
        y = np.full(200, -1)
        y[:4] = [0, 1, 0, 1]
        calls = {
            "kmeans": lambda X: kmeans(X, 3, random_state=0),
            "knn_search": lambda X: knn_search(X, X, 3),
            "nearest_centers": lambda X: nearest_centers(X, X[:3]),
            "ClusterFineTuner": lambda X: ClusterFineTuner(
                n_clusters=3, n_runs=2, max_epochs=1, device="cpu", random_state=0).fit(X),
        }
        for cls in (MultiClusterSelector, RandomSelector, KMedoidsSelector, CoresetSelector,
                    TypiClustSelector, ProbCoverSelector):
            calls[cls.__name__] = lambda X, c=cls: c(random_state=0).fit(X).select(4)
        for cls in (SeededKMeansPropagator, LLGCPropagator, CombinedPropagator):
            calls[cls.__name__] = lambda X, c=cls: c().fit(X, y)
        for case, X in (("x1e300", base * 1e300), ("x1e19", (base * 1e19).astype(np.float32))):
            for name, call in calls.items():
                try:
                    call(X)
                    print("NO ERROR", case, name, flush=True)
                except ValueError as exc:
                    # the message names the argument: X, or knn_search's database
                    argument = "database" if name == "knn_search" else "X"
                    good = str(exc).startswith(argument + " ") and "overflow float32" in str(exc)
                    print("ok" if good else "BAD MESSAGE", case, name, str(exc)[:80], flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-2000:]}"
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 * 13 and all(line.startswith("ok ") for line in lines), done.stdout


def test_images_overflowing_float32_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity"):
        check_images(np.full((2, 3, 4, 4), 1e300))


# ---------------------------------------------------------------------------------------
# item 7: silent wrong answers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["object-array", "str-array", "pandas", "pandas-category"])
def test_string_minus_one_is_unlabeled_not_a_class(kind):
    names = np.array(["a", "b"], dtype=object)[Y_TRUE]
    y = np.where(Y_PARTIAL == -1, "-1", names).astype(object)
    y[5] = " -1"  # a stray space from a spreadsheet
    if kind == "str-array":
        y = y.astype(str)
    elif kind.startswith("pandas"):
        pd = pytest.importorskip("pandas")
        y = pd.Series(y, dtype="category" if kind == "pandas-category" else object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SeededKMeansPropagator(n_clusters=[2], random_state=0).fit(F, y)
    assert model.classes_.tolist() == ["a", "b"]
    classes, encoded = check_partial_labels(y)
    expected = Y_PARTIAL == -1
    expected[5] = True
    assert classes.tolist() == ["a", "b"]
    np.testing.assert_array_equal(encoded == -1, expected)


def test_float_rgba_channels_last_images_are_read_channels_last():
    # plt.imread gives float RGBA pictures H x W x 4: they used to be read as 8 channels of 10 x 4
    rgba = np.random.RandomState(0).rand(3, 8, 10, 4).astype(np.float32)
    images = check_images(rgba)
    assert images.shape == (3, 4, 8, 10)
    np.testing.assert_array_equal(images, rgba.transpose(0, 3, 1, 2))
    rgb = rgba[..., :3].astype(np.float64)
    np.testing.assert_array_equal(check_images(rgb), rgb.transpose(0, 3, 1, 2).astype(np.float32))
    # channels-first float input keeps its meaning
    assert check_images(np.zeros((3, 3, 8, 10))).shape == (3, 3, 8, 10)
    assert check_images(np.zeros((3, 16, 4, 4))).shape == (3, 16, 4, 4)


def test_ambiguous_float_image_layout_raises_instead_of_guessing():
    with pytest.raises(ValueError, match=r"^X has shape \(2, 3, 32, 3\).*image_shape"):
        check_images(np.zeros((2, 3, 32, 3)))
    # the flattened form settles it
    assert check_images(np.zeros((2, 288)), image_shape=(3, 32, 3)).shape == (2, 3, 32, 3)


def test_float_gray_alpha_channels_last_images_are_read_channels_last():
    # gray + alpha (LA) pictures H x W x 2 used to be read as 8 channels of 8 x 2
    gray_alpha = np.random.RandomState(0).rand(3, 8, 10, 2).astype(np.float32)
    np.testing.assert_array_equal(check_images(gray_alpha), gray_alpha.transpose(0, 3, 1, 2))
    # uint8 LA images are accepted too, converted or kept lazily
    as_uint8 = (gray_alpha * 255).astype(np.uint8)
    assert check_images(as_uint8).shape == (3, 2, 8, 10)
    assert check_images(as_uint8, lazy=True).shape == (3, 2, 8, 10)


@pytest.mark.parametrize("shape", [(3, 32, 32, 5), (3, 16, 16, 8)])
def test_float_images_whose_last_axis_is_smallest_but_no_channel_count_raise(shape):
    # (3, 32, 32, 5) used to be read as 32 channels of 32 x 5: 5-channel images, or not?
    with pytest.raises(ValueError, match=rf"^X has shape \({shape[0]}, {shape[1]}, .*reads both"):
        check_images(np.zeros(shape, np.float32))
    # channels-first shapes whose last axis is not the smallest keep their meaning
    assert check_images(np.zeros((3, 5, 32, 32))).shape == (3, 5, 32, 32)
    assert check_images(np.zeros((3, 64, 8, 8))).shape == (3, 64, 8, 8)


# ---------------------------------------------------------------------------------------
# item 8: errors that name the argument; a numpy Generator as random_state
# ---------------------------------------------------------------------------------------
def test_one_dimensional_X_names_X_and_the_expected_shape():
    with pytest.raises(ValueError, match=r"^X must be a 2-D array of shape "
                                         r"\(n_samples, n_features\), got a 1-D input of shape \(5,\)"):
        check_features(np.arange(5.0))
    with pytest.raises(ValueError, match=r"^X must be 4-D images.*shape \(5,\)"):
        check_images(np.arange(5.0))


def test_list_of_pil_images():
    Image = pytest.importorskip("PIL.Image")
    same = [Image.new("RGB", (10, 8), (255, 0, 0)), Image.new("RGB", (10, 8))]
    images = check_images(same)
    assert images.shape == (2, 3, 8, 10) and images[0, 0].min() == 1.0
    assert check_images([Image.new("P", (10, 8)), Image.new("RGB", (10, 8))]).shape == (2, 3, 8, 10)
    with pytest.raises(ValueError, match=r"^X is a list of PIL images of 2 different sizes "
                                         r"\(width x height: 8x8, 10x8\)"):
        check_images([Image.new("RGB", (8, 8)), Image.new("RGB", (10, 8))])
    with pytest.raises(ValueError, match=r"^X is a list of PIL images of different modes"):
        check_images([Image.new("RGB", (8, 8)), Image.new("L", (8, 8))])
    with pytest.raises(ValueError, match=r"^X is a single PIL image"):
        check_images(Image.new("RGB", (8, 8)))


def test_list_of_arrays_of_different_shapes_names_the_shapes():
    # numpy's own error spoke of "an inhomogeneous shape after 2 dimensions"
    ragged = [np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"^X is a list of images of 2 different shapes "
                                         r"\(\(8, 8, 3\), \(10, 8, 3\)\)"):
        check_images(ragged)
    assert check_images([np.zeros((8, 8, 3), np.uint8)] * 2).shape == (2, 3, 8, 8)


SELECTOR_CLASSES = ["MultiClusterSelector", "RandomSelector", "KMedoidsSelector", "CoresetSelector",
                    "TypiClustSelector", "ProbCoverSelector"]


@pytest.mark.parametrize("name", SELECTOR_CLASSES)
def test_selectors_accept_a_numpy_generator(name):
    import as3l_sklearn
    cls = getattr(as3l_sklearn, name)
    first = cls(random_state=np.random.default_rng(7)).fit(F).select(4)
    again = cls(random_state=np.random.default_rng(7)).fit(F).select(4)
    np.testing.assert_array_equal(first, again)  # same Generator seed, same selection
    with pytest.raises(ValueError, match="random_state"):
        cls(random_state="seven").fit(F)  # fails in fit, not later in select


@pytest.mark.parametrize("cls", [SeededKMeansPropagator, CombinedPropagator],
                         ids=lambda c: c.__name__)
def test_propagators_accept_a_numpy_generator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = cls(random_state=np.random.default_rng(3)).fit(F, Y_PARTIAL).label_distributions_
        again = cls(random_state=np.random.default_rng(3)).fit(F, Y_PARTIAL).label_distributions_
    np.testing.assert_array_equal(first, again)


def test_kmeans_and_semi_supervised_kfold_accept_a_numpy_generator():
    from as3l_sklearn.cluster import kmeans
    from as3l_sklearn.model_selection import SemiSupervisedKFold
    a = kmeans(F, 2, random_state=np.random.default_rng(0)).labels
    b = kmeans(F, 2, random_state=np.random.default_rng(0)).labels
    np.testing.assert_array_equal(a, b)
    cv = SemiSupervisedKFold(3, shuffle=True, random_state=np.random.default_rng(0))
    folds = [test.tolist() for _, test in cv.split(F, Y_PARTIAL)]
    assert sorted(sum(folds, [])) == np.flatnonzero(Y_PARTIAL != -1).tolist()
    with pytest.raises(ValueError, match="random_state"):
        kmeans(F, 2, random_state="zero")

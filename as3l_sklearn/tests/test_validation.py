"""Shared input validation: every bad input is a ValueError/TypeError that names the argument."""

import numpy as np
import pytest

from as3l_sklearn.utils import (
    check_budget,
    check_features,
    check_image_shape_consistent,
    check_image_size,
    check_images,
    check_n_clusters,
    check_partial_labels,
    check_random_state_or_generator,
    resolve_device,
    seed_torch,
    torch_generator,
)


# ------------------------------------------------------------------------------ features

def test_check_features_converts_to_contiguous_float32():
    F = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(3, 2))
    out = check_features(F)
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(out, F)


@pytest.mark.parametrize("bad, match", [
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.array([[0.0, np.inf]]), "infinity"),
    (np.zeros(3), "2-D.*Reshape your data"),
    (np.zeros((2, 2, 2)), "2-D.*3-D"),
    (np.zeros((0, 2)), "sample"),
])
def test_check_features_bad_values_name_the_argument(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        check_features(bad, name="features")
    assert "features" in str(info.value)


def test_check_features_strings():
    with pytest.raises((ValueError, TypeError)):
        check_features(np.array([["a", "b"]]), name="F")


# ------------------------------------------------------------------------------ images

def test_check_images_layouts():
    uint8 = np.full((2, 4, 5, 3), 255, dtype=np.uint8)
    out = check_images(uint8)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32 and out.max() == 1.0
    gray = check_images(np.zeros((2, 4, 5), dtype=np.uint8))
    assert gray.shape == (2, 1, 4, 5)
    floats = check_images(np.zeros((2, 3, 4, 5)))
    assert floats.shape == (2, 3, 4, 5)
    gray_float = check_images(np.zeros((2, 4, 5), dtype=np.float32))
    assert gray_float.shape == (2, 1, 4, 5)
    flat = check_images(np.arange(24, dtype=np.float32).reshape(2, 12), image_shape=(3, 2, 2))
    assert flat.shape == (2, 3, 2, 2) and flat[1, 0, 0, 0] == 12


@pytest.mark.parametrize("bad, kwargs, error, match", [
    (np.full((1, 2, 2, 2), np.nan), {}, ValueError, "NaN"),
    (np.full((1, 2, 2, 2), np.inf), {}, ValueError, "infinity"),
    (np.zeros(5), {}, ValueError, "4-D"),
    (np.zeros((1, 2, 2, 2, 2)), {}, ValueError, "4-D"),
    (np.zeros((2, 12)), {}, ValueError, "image_shape"),
    (np.zeros((2, 12)), {"image_shape": (3, 2, 3)}, ValueError, "image_shape"),
    (np.zeros((2, 12)), {"image_shape": (3, 4)}, ValueError, "image_shape"),
    (np.zeros((1, 4, 4, 5), dtype=np.uint8), {}, ValueError, "5 channels; expected 1, 2, 3 or 4"),
    (np.zeros((0, 4, 4, 3), dtype=np.uint8), {}, ValueError, "at least 1"),
    (np.array([[["a"]]]), {}, TypeError, "numbers"),
    (np.zeros((1, 2, 2), dtype=bool), {}, TypeError, "numbers"),
    (np.zeros((1, 2, 2), dtype=complex), {}, TypeError, "complex"),
    ([np.zeros((2, 2)), np.zeros((3, 3))], {}, ValueError, r"2 different shapes \(\(2, 2\), \(3, 3\)\)"),
])
def test_check_images_errors_name_the_argument(bad, kwargs, error, match):
    with pytest.raises(error, match=match) as info:
        check_images(bad, name="X_images", **kwargs)
    if "image_shape" not in str(info.value):
        assert "X_images" in str(info.value)


def test_check_images_accepts_torch_tensor():
    import torch

    out = check_images(torch.zeros(2, 1, 3, 3))
    assert isinstance(out, np.ndarray) and out.shape == (2, 1, 3, 3)


def test_check_image_shape_consistent():
    images = np.zeros((2, 3, 8, 8), dtype=np.float32)
    check_image_shape_consistent(images, (3, 8, 8))
    with pytest.raises(ValueError, match=r"X has images of shape .*\(3, 8, 8\).*\(1, 8, 8\)"):
        check_image_shape_consistent(images, (1, 8, 8))


# ------------------------------------------------------------------------------ partial labels

def test_partial_labels_integers():
    classes, encoded = check_partial_labels(np.array([7, -1, 3, 7]))
    assert classes.tolist() == [3, 7] and encoded.tolist() == [1, -1, 0, 1]
    assert encoded.dtype == np.int64
    # integer-valued floats and column vectors are fine
    classes, encoded = check_partial_labels(np.array([[1.0], [-1.0], [2.0]]))
    assert classes.tolist() == [1, 2] and encoded.tolist() == [0, -1, 1]


def test_partial_labels_strings_in_object_arrays():
    y = np.array(["dog", -1, "cat", "dog", -1], dtype=object)
    classes, encoded = check_partial_labels(y, n_samples=5)
    assert classes.tolist() == ["cat", "dog"] and encoded.tolist() == [1, -1, 0, 1, -1]


@pytest.mark.parametrize("y", [
    np.array(["dog", "-1", "cat", " -1"]),
    np.array(["dog", "-1", "cat", -1], dtype=object),
    np.array([b"dog", b"-1", b"cat", b"-1"]),
], ids=["str-array", "object-array", "bytes-array"])
def test_partial_labels_string_minus_one_is_unlabeled(y):
    # "-1" is how -1 comes back from CSV files, pandas and np.array(["cat", -1]); it used
    # to be refused (str arrays) or silently become a class "-1" (object arrays)
    classes, encoded = check_partial_labels(y, n_samples=4)
    assert [str(c) for c in classes] == ["cat", "dog"] and encoded.tolist() == [1, -1, 0, -1]


def test_partial_labels_pandas_series_and_categorical():
    pd = pytest.importorskip("pandas")
    for y in (pd.Series(["dog", "-1", "cat", "-1"]),
              pd.Series(["dog", "-1", "cat", "-1"], dtype="category"),
              pd.Series(["dog", "-1", "cat", "-1"], dtype="string")):
        classes, encoded = check_partial_labels(y)
        assert classes.tolist() == ["cat", "dog"] and encoded.tolist() == [1, -1, 0, -1]
    with pytest.raises(ValueError, match="y contains (missing values|NaN)"):
        check_partial_labels(pd.Series([1, None, -1], dtype="Int64"))


def test_partial_labels_all_unlabeled_allowed_only_when_asked():
    with pytest.raises(ValueError, match="y has 0 labeled samples"):
        check_partial_labels([-1, -1])
    classes, encoded = check_partial_labels([-1, -1], min_labeled=0)
    assert classes.size == 0 and encoded.tolist() == [-1, -1]


@pytest.mark.parametrize("bad, error, match", [
    (np.array([0.5, -1.0]), ValueError, "non-integer"),
    (np.array([1.0, np.nan]), ValueError, "NaN"),
    (np.array([1.0, np.inf]), ValueError, "infinity"),
    (np.array([True, False]), TypeError, "boolean"),
    (np.array(["a", 1, -1], dtype=object), TypeError, "mixes label types"),
    (np.array(["a", 2.5, -1], dtype=object), TypeError, "mixes label types"),
    (np.array([np.nan, -1], dtype=object), ValueError, "NaN"),
    (np.zeros((2, 2)), ValueError, "1-D"),
])
def test_partial_labels_errors_name_the_argument(bad, error, match):
    with pytest.raises(error, match=match) as info:
        check_partial_labels(bad, name="y_partial")
    assert "y_partial" in str(info.value)


def test_partial_labels_length_mismatch():
    with pytest.raises(ValueError, match="y has 2 labels but X has 3 samples"):
        check_partial_labels([0, 1], n_samples=3)


# ------------------------------------------------------------------------------ counts

def test_check_n_clusters():
    assert check_n_clusters(3, 10) == [3]
    assert check_n_clusters(np.array([2, 5]), 10) == [2, 5]
    with pytest.raises(ValueError, match="n_clusters=.*12 clusters but only 10 samples"):
        check_n_clusters([5, 12], 10)
    with pytest.raises(ValueError, match="n_clusters=11.*only 10 samples"):
        check_n_clusters(11, 10)
    with pytest.raises(ValueError, match="^n_clusters must be an int in the range .* non-empty sequence"):
        check_n_clusters([], 10)
    with pytest.raises(ValueError, match="^n_clusters must be an int in the range .* ints >= 1"):
        check_n_clusters([0, 3], 10)
    with pytest.raises(TypeError, match="n_clusters"):
        check_n_clusters(2.5, 10)
    with pytest.raises(TypeError, match="n_clusters"):
        check_n_clusters([2, 2.5], 10)
    with pytest.raises(TypeError, match="n_clusters"):
        check_n_clusters("10", 100)


def test_check_budget():
    assert check_budget(10, 10) == 10
    with pytest.raises(ValueError, match=r"^n_budget must be an int in the range \[1, inf\). Got 0 instead"):
        check_budget(0, 10)
    with pytest.raises(ValueError, match=r"n_budget=11 exceeds the number of fitted samples"):
        check_budget(11, 10)
    with pytest.raises(TypeError, match="^n_budget must be an int"):
        check_budget(2.0, 10)
    with pytest.raises(ValueError, match="^budget must be an int"):
        check_budget(-3, 10, name="budget")
    with pytest.raises(ValueError, match="^The 'n_budget' parameter of RandomSelector.select must be"):
        check_budget(0, 10, caller_name="RandomSelector.select")


# ------------------------------------------------------------------------------ torch helpers

def test_resolve_device():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device='gpu-please'"):
        resolve_device("gpu-please")
    with pytest.raises(TypeError, match="The 'device' parameter of resolve_device must be"):
        resolve_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_seeding_is_deterministic():
    import torch

    seed_torch(3)
    first = torch.rand(3)
    seed_torch(3)
    assert torch.equal(first, torch.rand(3))
    a = torch.rand(4, generator=torch_generator(5))
    b = torch.rand(4, generator=torch_generator(5))
    c = torch.rand(4, generator=torch_generator(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_check_images_refuses_ambiguous_integer_images():
    from as3l_sklearn.utils import check_images

    with pytest.raises(TypeError, match="X has integer dtype int64"):
        check_images(np.zeros((2, 8, 8, 1), dtype=np.int64))
    # flattened integer input with an explicit image_shape is unambiguous
    assert check_images(np.ones((2, 12), dtype=np.int64), image_shape=(3, 2, 2)).dtype == np.float32


def test_check_images_scales_flattened_uint8_like_uint8_images():
    from as3l_sklearn.utils import check_images

    flat = np.full((2, 4), 255, dtype=np.uint8)
    np.testing.assert_allclose(check_images(flat, image_shape=(1, 2, 2)), 1.0)


def test_check_image_size():
    assert check_image_size(28) == (28, 28)
    assert check_image_size(np.array([32, 16])) == (32, 16)
    for bad in (1, (1, 4), (4, 4, 4), "28", True, (4.0, 4), None):
        with pytest.raises(ValueError, match=r"^image_size must be an int >= 2 or a pair \(height, width\)"):
            check_image_size(bad, minimum=2)


def test_check_random_state_or_generator_names_the_argument():
    assert isinstance(check_random_state_or_generator(np.random.default_rng(0)), np.random.RandomState)
    assert check_random_state_or_generator(3).randint(100) == np.random.RandomState(3).randint(100)
    for bad in ("seed", -1, 2.5):
        with pytest.raises(ValueError, match="^seed must be an int in the range"):
            check_random_state_or_generator(bad, name="seed")

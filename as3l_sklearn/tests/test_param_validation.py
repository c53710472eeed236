"""The package's parameter constraints (``as3l_sklearn.utils._param_validation``).

Each constraint the constraint language of scikit-learn lacks is checked here with the
values it must accept and refuse; that the estimators declare and check their parameters is
``tests/test_common.py::test_check_param_validation``.
"""

from numbers import Integral, Real

import numpy as np
import pytest
import torch
from skorch.callbacks import Checkpoint, EarlyStopping

from as3l_sklearn.utils._param_validation import (
    DEVICE,
    N_THREADS,
    RANDOM_STATE,
    Fitted,
    ImageShape,
    ImageSize,
    IntSequence,
    Interval,
    InvalidParameterError,
    MeanStd,
    NamedCallbacks,
    TorchModule,
    check_param,
    validate_params,
)


@pytest.mark.parametrize("constraint, good, bad", [
    (Interval(Integral, 1, None, closed="left"), [1, np.int64(7)], [0, True, np.bool_(True), 1.0, "1"]),
    (Interval(Real, 0, 1, closed="both"), [0, 0.5, 1, np.float32(0.2)], [-1e-9, 1.1, True, np.nan, "0.5"]),
    (ImageSize(2), [2, (2, 3), [8, 8], np.array([4, 5]), torch.Size([6, 6])],
     [1, (1, 4), (4,), (4, 4, 4), (4.0, 4), (True, 4), "4", None]),
    (ImageShape(), [(1, 8, 8), [3, 4, 5]], [(1, 8), (0, 8, 8), (1, 1, -1), (1.0, 8, 8), "1x8x8"]),
    (ImageShape(inferred=True), [(1, 1, -1), (3, 4, 5)], [(-1, 1, -1), (1, -2, 4), (1, 0, -1)]),
    (IntSequence(1), [[2, 3], (10,), np.array([4])], [[], [0, 3], [2, 2.5], "23", 3, [True]]),
    (NamedCallbacks(), [[], [("ckpt", Checkpoint())], [("stop", EarlyStopping)]],
     [(("ckpt", Checkpoint()),), [("ckpt",)], [(1, Checkpoint())], [("ckpt", object())], [Checkpoint()]]),
    (MeanStd(), [(0.5, 0.2), ((0.5, 0.4, 0.3), [0.2, 0.2, 0.2])],
     ["imagenet", (0.5,), (0.5, 0.0), ((0.5, 0.5), (0.2,)), (np.nan, 1.0), ("a", "b")]),
    (TorchModule(), [torch.nn.Linear(2, 2)], [torch.zeros(2), "small_cnn", None]),
    (Fitted("net_", "SimSiamEmbedder"), [type("F", (), {"net_": 1})()], [object(), None]),
])
def test_constraints_accept_and_refuse(constraint, good, bad):
    for value in good:
        assert constraint.is_satisfied_by(value), value
    for value in bad:
        assert not constraint.is_satisfied_by(value), value


@pytest.mark.parametrize("constraints, good, bad", [
    (DEVICE, ["auto", "cpu", "cuda", "cuda:1"], ["gpu", "cuda:", "CPU", None, 0]),
    (N_THREADS, [1, "auto", None], [0, "all", 1.5, True]),
    (RANDOM_STATE, [None, 0, np.random.RandomState(0), np.random.default_rng(0)], [-1, "0", 1.5]),
])
def test_shared_parameter_constraints(constraints, good, bad):
    for value in good:
        assert check_param(value, "p", constraints) is value
    for value in bad:
        with pytest.raises(InvalidParameterError, match="^p must be .* Got .* instead"):
            check_param(value, "p", constraints)


def test_check_param_uses_scikit_learns_message():
    with pytest.raises(InvalidParameterError) as info:
        check_param(0, "n_budget", [Interval(Integral, 1, None, closed="left")], "RandomSelector.select")
    assert str(info.value) == ("The 'n_budget' parameter of RandomSelector.select must be an int in the "
                               "range [1, inf). Got 0 instead.")
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
    with pytest.raises(InvalidParameterError, match=r"^image_size must be an int >= 2 or a pair \(height, width\) "
                                                    r"of ints >= 2 or None. Got 1 instead.$"):
        check_param(1, "image_size", [ImageSize(2), None])


def test_own_constraints_work_in_validate_params():
    @validate_params({"size": [ImageSize(1)], "shape": [ImageShape(), None]}, prefer_skip_nested_validation=True)
    def resize(size, shape=None):
        return size

    assert resize((2, 3)) == (2, 3)
    with pytest.raises(InvalidParameterError, match="The 'shape' parameter of .*resize must be a tuple"):
        resize(2, shape=(1, 2))


def test_utils_modules_import_one_way():
    """``_param_validation`` <- ``_validation`` (no torch) <- ``_torch``: a module never imports
    one that comes after it, so there is no import circle among them."""
    import ast
    from pathlib import Path

    import as3l_sklearn.utils as utils

    order = ["_param_validation", "_validation", "_torch"]
    for position, name in enumerate(order):
        tree = ast.parse(Path(utils.__file__).with_name(f"{name}.py").read_text())
        relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
        absolute = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not relative & set(order[position:]), f"{name} imports {relative & set(order[position:])}"
        if name != "_torch":
            assert "torch" not in absolute, f"{name} imports torch"

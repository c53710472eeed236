"""Every public function declares its arguments with ``validate_params`` and names a bad one.

After scikit-learn's ``sklearn/tests/test_public_functions.py``: each function's constraints
cover exactly its parameters, and an argument of a wrong type, or of the right type but out of
range, raises ``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) naming it and
the function, before the function does anything.
"""

from importlib import import_module
from inspect import signature

import numpy as np
import pytest
from sklearn.utils._param_validation import (
    InvalidParameterError,
    generate_invalid_param_val,
    make_constraint,
)

#: stands for a path that does not exist (a folder under the test's tmp_path): nothing is
#: read or written there unless a check is missing, and then the test fails
PATH = "<no such path>"
#: function -> valid values of its required arguments (the others keep their defaults)
FUNCTIONS = {
    "as3l_sklearn.cluster.kmeans": {"X": np.zeros((4, 2)), "n_clusters": 2},
    "as3l_sklearn.cluster.seeding_sample_size": {"n_clusters": 2},
    "as3l_sklearn.cluster.nearest_centers": {"X": np.zeros((4, 2)), "centers": np.zeros((2, 2))},
    "as3l_sklearn.cluster.resolve_neighbor_index": {"index": "auto", "n_database": 10},
    "as3l_sklearn.cluster.knn_search": {"database": np.zeros((4, 2)), "queries": np.zeros((1, 2)), "k": 1},
    "as3l_sklearn.selection.export_for_annotation": {"X": np.zeros((2, 4, 4, 1), np.uint8), "indices": [0],
                                                     "path": PATH},
    "as3l_sklearn.selection.read_annotations": {"path": PATH},
    "as3l_sklearn.metrics.labeled_mask": {"y": [0, -1]},
    "as3l_sklearn.metrics.class_coverage": {"y_true": [0, 1], "indices": [0]},
    "as3l_sklearn.metrics.prior_accuracy": {"y_true": [0, 1], "proba": [[1.0, 0.0], [0.0, 1.0]]},
    "as3l_sklearn.metrics.expected_calibration_error": {"y_true": [0, 1], "proba": [[1.0, 0.0], [0.0, 1.0]]},
    "as3l_sklearn.metrics.make_labeled_scorer": {},
    "as3l_sklearn.datasets.load_digits_images": {},
    "as3l_sklearn.datasets.load_fashion_mnist": {},
    "as3l_sklearn.datasets.load_cifar10": {"root": PATH},
    "as3l_sklearn.datasets.load_cifar100": {"root": PATH},
    "as3l_sklearn.datasets.load_stl10": {"root": PATH},
    "as3l_sklearn.datasets.load_image_folder": {"path": PATH},
    "as3l_sklearn.nn.make_backbone": {},
    "as3l_sklearn.nn.wrn_bn_momentum": {},
    "as3l_sklearn.nn.pretrained_backbone": {"architecture": "resnet18"},
    "as3l_sklearn.utils.resolve_device": {},
    "as3l_sklearn.utils.resolve_n_threads": {"n_threads": None},
}


def _function(path):
    module_name, name = path.rsplit(".", 1)
    return getattr(import_module(module_name), name), name


@pytest.mark.parametrize("path", list(FUNCTIONS))
def test_function_param_validation(path, tmp_path):
    func, name = _function(path)
    constraints = getattr(func, "_skl_parameter_constraints", None)
    assert constraints is not None, f"{name} has no validate_params"
    params = [p.name for p in signature(func).parameters.values()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert set(constraints) == set(params), f"{name}: constraints {sorted(constraints)}, parameters {sorted(params)}"
    required = {key: str(tmp_path / "missing") if value is PATH else value
                for key, value in FUNCTIONS[path].items()}
    bad_type = type("BadType", (), {})()
    for param in params:
        if constraints[param] == "no_validation":
            continue
        match = rf"The '{param}' parameter of {name} must be .* Got .* instead."
        with pytest.raises(InvalidParameterError, match=match):
            func(**{**required, param: bad_type})
        for constraint in map(make_constraint, constraints[param]):
            try:
                bad_value = generate_invalid_param_val(constraint)
            except NotImplementedError:
                continue
            with pytest.raises(InvalidParameterError, match=match):
                func(**{**required, param: bad_value})

"""Shared helpers: input validation, device resolution and seeding.

Every estimator validates through these functions so that bad input fails the same way
everywhere: a ``ValueError`` or ``TypeError`` whose message names the argument. Parameters
of estimators and public functions are declared as scikit-learn constraints
(``_parameter_constraints``, ``validate_params``; see ``_param_validation.py``) and fail with
``InvalidParameterError``, which is both.

The modules import one way: ``_param_validation`` <- ``_validation`` (no torch) <- ``_torch``.
"""

from ._torch import (
    CUDAToCPUWarning,
    TorchPickleMixin,
    resolve_device,
    resolve_n_threads,
    seed_torch,
    torch_generator,
    torch_settings,
    torch_threads,
)
from ._validation import (
    ImageRangeWarning,
    UnlabeledInScoreWarning,
    check_budget,
    check_channels,
    check_features,
    check_image_shape_consistent,
    check_image_size,
    check_images,
    check_n_clusters,
    check_partial_labels,
    check_random_state_or_generator,
    is_unlabeled_value,
    unlabeled_mask,
    warn_if_unlabeled_in_score,
)

__all__ = [
    "CUDAToCPUWarning",
    "ImageRangeWarning",
    "TorchPickleMixin",
    "UnlabeledInScoreWarning",
    "check_budget",
    "check_channels",
    "check_features",
    "check_image_shape_consistent",
    "check_image_size",
    "check_images",
    "check_n_clusters",
    "check_partial_labels",
    "check_random_state_or_generator",
    "is_unlabeled_value",
    "resolve_device",
    "resolve_n_threads",
    "seed_torch",
    "torch_generator",
    "torch_settings",
    "torch_threads",
    "unlabeled_mask",
    "warn_if_unlabeled_in_score",
]

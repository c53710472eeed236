"""Shared helpers: input validation, device resolution and seeding.

Every estimator validates through these functions so that bad input fails the same way
everywhere: a ``ValueError`` or ``TypeError`` whose message names the argument.
"""

from ._torch import resolve_device, seed_torch, torch_generator
from ._torch import (
    CUDAToCPUWarning,
    ImageRangeWarning,
    TorchPickleMixin,
    check_channels,
    check_random_state_or_generator,
    resolve_n_threads,
    torch_settings,
    torch_threads,
)
from ._validation import (
    check_budget,
    check_features,
    check_image_size,
    check_images,
    check_n_clusters,
    check_partial_labels,
    check_positive_int,
    check_image_shape_consistent,
    check_real,
    is_unlabeled_value,
    UnlabeledInScoreWarning,
    unlabeled_mask,
    warn_if_unlabeled_in_score,
)

__all__ = [
    "check_budget",
    "check_features",
    "check_image_shape_consistent",
    "check_image_size",
    "check_images",
    "check_n_clusters",
    "check_partial_labels",
    "check_positive_int",
    "check_real",
    "resolve_device",
    "seed_torch",
    "torch_generator",
    "CUDAToCPUWarning",
    "ImageRangeWarning",
    "TorchPickleMixin",
    "check_channels",
    "check_random_state_or_generator",
    "resolve_n_threads",
    "torch_settings",
    "torch_threads",
    "is_unlabeled_value",
    "UnlabeledInScoreWarning",
    "unlabeled_mask",
    "warn_if_unlabeled_in_score",
]

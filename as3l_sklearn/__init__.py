"""as3l-sklearn: Active Self-Semi-Supervised Learning (AS3L) as scikit-learn estimators.

The public names are imported lazily (PEP 562) so that ``import as3l_sklearn`` stays cheap
and the light parts (metrics, model selection, selectors) do not pay torch's import time.

Examples
--------
>>> from as3l_sklearn import MultiClusterSelector, SeededKMeansPropagator
>>> MultiClusterSelector(n_runs=6)
MultiClusterSelector()
"""

import os
from importlib import import_module

# faiss and torch use OpenMP; its default "active" waiting makes idle threads spin, which made
# k-means 10-15x slower on a busy 2-core machine (benchmarks/bench_kmeans.py). Passive waiting
# costs nothing measurable here. Set before faiss/torch load; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__

# public name -> submodule that defines it
_PUBLIC = {
    # embedding
    "SimSiamEmbedder": "embedding",
    "ClusterFineTuner": "embedding",
    # selection
    "MultiClusterSelector": "selection",
    "RandomSelector": "selection",
    "KMedoidsSelector": "selection",
    "CoresetSelector": "selection",
    "TypiClustSelector": "selection",
    "ProbCoverSelector": "selection",
    "MaxHerdingSelector": "selection",
    "StableCoverSelector": "selection",
    "export_for_annotation": "selection",
    "read_annotations": "selection",
    "write_label_studio_tasks": "selection",
    # propagation
    "SeededKMeansPropagator": "propagation",
    "LLGCPropagator": "propagation",
    "CombinedPropagator": "propagation",
    # classification
    "PriorGuidedFlexMatchClassifier": "classification",
    "LinearEvaluationClassifier": "classification",
    "SupervisedClassifier": "classification",
}

__all__ = sorted(_PUBLIC) + [
    "__version__",
    "cluster",
    "datasets",
    "diagnostics",
    "metrics",
    "model_selection",
]


def __getattr__(name):
    if name in _PUBLIC:
        module = import_module(f".{_PUBLIC[name]}", __name__)
        return getattr(module, name)
    if name in ("cluster", "datasets", "diagnostics", "metrics", "model_selection", "augment", "nn", "utils"):
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__

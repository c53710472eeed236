"""Feature learning: self-supervised SimSiam embeddings and their cluster fine-tuning.

* :class:`SimSiamEmbedder` -- trains SimSiam on unlabeled images, ``transform`` gives
  ``f_self`` (paper section 3.2 / Chen & He 2021);
* :class:`ClusterFineTuner` -- one linear layer on frozen features trained towards multi-run
  k-means centers, ``transform`` gives ``f_fine`` (paper section 3.2.1, Eq. 1).
"""

from ._finetune import ClusterFineTuner

__all__ = [
    "ClusterFineTuner",
    "CollapseWarning",
    "SimSiamEmbedder",
    "TrainingInterruptedWarning",
    "effective_rank",
    "normalized_std",
]


def __getattr__(name):
    # SimSiamEmbedder pulls in skorch; import it only when asked for
    if name in __all__ and name != "ClusterFineTuner":
        from . import _simsiam

        return getattr(_simsiam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__

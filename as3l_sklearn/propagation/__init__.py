"""Prior pseudo-labels: propagate the labels of the annotated samples to the unlabeled ones.

* :class:`SeededKMeansPropagator` -- the AS3L propagation (section 3.3 of the paper):
  constrained seeded k-means over a list of cluster counts.
* :class:`LLGCPropagator` -- the LLGC label-spreading baseline (Table 5 of the paper), a thin
  wrapper of :class:`sklearn.semi_supervised.LabelSpreading`.

Both mark unlabeled samples with ``-1`` and expose ``classes_``, ``label_distributions_``
(the priors), ``transduction_`` and ``covered_``.
"""

from ._llgc import LLGCPropagator
from ._seeded_kmeans import SeededKMeansPropagator

__all__ = ["LLGCPropagator", "SeededKMeansPropagator"]

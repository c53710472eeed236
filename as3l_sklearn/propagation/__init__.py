"""Prior pseudo-labels: propagate the labels of the annotated samples to the unlabeled ones.

* :class:`SeededKMeansPropagator` -- the AS3L propagation (section 3.3 of the paper):
  constrained seeded k-means over a list of cluster counts.
* :class:`LLGCPropagator` -- LLGC label spreading (Table 5 of the paper) on the weighted,
  symmetric kNN graph of Iscen et al., with a leave-one-out temperature;
* :class:`CombinedPropagator` -- the average of the two (the recommended prior);
* :func:`calibrate_confidence` and :func:`temper` -- a label-free temperature for a prior.

Both mark unlabeled samples with ``-1`` and expose ``classes_``, ``label_distributions_``
(the priors), ``transduction_`` and ``covered_``.
"""

from ._calibration import calibrate_confidence, temper
from ._combined import CombinedPropagator
from ._llgc import LLGCPropagator
from ._seeded_kmeans import SeededKMeansPropagator

__all__ = [
    "CombinedPropagator",
    "LLGCPropagator",
    "SeededKMeansPropagator",
    "calibrate_confidence",
    "temper",
]

"""Semi-supervised classifiers: prior-guided FlexMatch (AS3L section 3.4) and its baselines.

* :class:`PriorGuidedFlexMatchClassifier` -- FlexMatch guided by prior pseudo-labels (Eq. 2-5);
  with no prior it is plain FlexMatch.
* :class:`LinearEvaluationClassifier` -- logistic regression on frozen self-supervised features.
* :class:`SupervisedClassifier` -- the same network trained on the labeled samples only.
"""

from ._baselines import LinearEvaluationClassifier, SupervisedClassifier
from ._flexmatch import PriorGuidedFlexMatchClassifier, check_prior_proba

__all__ = [
    "LinearEvaluationClassifier",
    "PriorGuidedFlexMatchClassifier",
    "SupervisedClassifier",
    "check_prior_proba",
]

"""Semi-supervised classifiers: prior-guided FlexMatch (AS3L section 3.4) and its baselines.

* :class:`PriorGuidedFlexMatchClassifier` -- FlexMatch guided by prior pseudo-labels (Eq. 2-5);
  with no prior it is plain FlexMatch.
* :class:`LinearEvaluationClassifier` -- logistic regression on frozen self-supervised features.
* :class:`SupervisedClassifier` -- the same network trained on the labeled samples only.

A Ctrl-C during ``fit`` keeps the weights reached and warns with
:class:`TrainingInterruptedWarning` (the class :class:`~as3l_sklearn.SimSiamEmbedder` uses too).
"""

from ._baselines import LinearEvaluationClassifier, SupervisedClassifier
from ._flexmatch import PriorGuidedFlexMatchClassifier, check_prior_proba
from ._self_check import check_against_prior
from ..nn._step_net import TrainingInterruptedWarning

__all__ = [
    "LinearEvaluationClassifier",
    "PriorGuidedFlexMatchClassifier",
    "SupervisedClassifier",
    "TrainingInterruptedWarning",
    "check_against_prior",
    "check_prior_proba",
]

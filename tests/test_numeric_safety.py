"""Numeric and semantic safety of the numpy estimators (issue 12, items 6-8 and 10).

Each test pins one input that used to crash the process, give a silently wrong answer, or
fail deep inside with an error that did not name the argument.
"""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_score

from as3l_sklearn import CombinedPropagator, LLGCPropagator, SeededKMeansPropagator
from as3l_sklearn.utils import UnlabeledInScoreWarning, warn_if_unlabeled_in_score

RNG = np.random.RandomState(0)
F = np.r_[RNG.normal(0, 1, (30, 4)), RNG.normal(5, 1, (30, 4))].astype(np.float32)
Y_TRUE = np.repeat([0, 1], 30)
Y_PARTIAL = Y_TRUE.copy()
Y_PARTIAL[RNG.rand(60) < 0.7] = -1
Y_PARTIAL[[0, 30]] = [0, 1]

PROPAGATORS = {
    "SeededKMeansPropagator": lambda: SeededKMeansPropagator(n_clusters=[2, 4], random_state=0),
    "LLGCPropagator": lambda: LLGCPropagator(n_neighbors=5),
    "CombinedPropagator": lambda: CombinedPropagator(random_state=0),
}


# ---------------------------------------------------------------------------------------
# item 10: score with -1 in y
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROPAGATORS))
def test_score_warns_when_y_holds_unlabeled(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PROPAGATORS[name]().fit(F, Y_PARTIAL)
    with pytest.warns(UnlabeledInScoreWarning, match="make_labeled_scorer"):
        model.score(F, Y_PARTIAL)
    # fully labeled y: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnlabeledInScoreWarning)
        assert 0.0 <= model.score(F, Y_TRUE) <= 1.0


def test_cross_val_score_with_plain_kfold_warns():
    with pytest.warns(UnlabeledInScoreWarning, match="SemiSupervisedKFold"):
        cross_val_score(SeededKMeansPropagator(n_clusters=[2], random_state=0), F, Y_PARTIAL,
                        cv=KFold(3, shuffle=True, random_state=0))


def test_warn_if_unlabeled_in_score_helper():
    with pytest.warns(UnlabeledInScoreWarning, match="Foo.score"):
        assert warn_if_unlabeled_in_score(np.array(["cat", -1], dtype=object), "Foo")
    with pytest.warns(UnlabeledInScoreWarning):
        assert warn_if_unlabeled_in_score(np.array(["cat", "-1"]), "Foo")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_unlabeled_in_score([0, 1, 2], "Foo")
        assert not warn_if_unlabeled_in_score(np.array(["cat", "dog"]), "Foo")

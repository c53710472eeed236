"""Cross-validation splitters that keep unlabeled samples (``y == -1``) in every training fold.

scikit-learn's splitters treat ``-1`` as a class: unlabeled samples land in test folds, where a
scorer compares predictions with ``-1`` (scikit-learn issue #2593), and they are withheld from
the transductive fit of that fold. The splitters here fold only the labeled samples and add
every unlabeled sample to every training fold. Use them with
:func:`as3l_sklearn.metrics.make_labeled_scorer`.

Examples
--------
>>> import numpy as np
>>> from as3l_sklearn.model_selection import SemiSupervisedKFold
>>> y = np.array([0, 1, -1, 0, 1, -1])
>>> for train, test in SemiSupervisedKFold(n_splits=2).split(np.zeros((6, 1)), y):
...     print(train.tolist(), test.tolist())
[2, 3, 4, 5] [0, 1]
[0, 1, 2, 5] [3, 4]
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from .metrics import _check_labels_1d, labeled_mask
from .utils import check_random_state_or_generator

__all__ = ["SemiSupervisedKFold", "SemiSupervisedStratifiedKFold"]


def _n_samples(X):
    if X is None:
        return None
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    return len(X)


def _split_labeled(splitter_cls, splitter, X, y):
    """Yield (train, test) with test folds drawn from the labeled samples only."""
    if y is None:
        raise ValueError(
            f"{type(splitter).__name__}.split needs y (class labels, -1 for unlabeled samples) to "
            "tell labeled from unlabeled samples; got y=None"
        )
    y = _check_labels_1d(y, "y")
    labeled = labeled_mask(y, name="y")
    n_samples = _n_samples(X)
    if n_samples is not None and n_samples != y.shape[0]:
        raise ValueError(f"X has {n_samples} samples but y has {y.shape[0]} labels")
    labeled_index = np.flatnonzero(labeled)
    unlabeled_index = np.flatnonzero(~labeled)
    n_splits = splitter.n_splits
    if labeled_index.shape[0] < n_splits:
        raise ValueError(
            f"n_splits={n_splits} is larger than the number of labeled samples in y "
            f"({labeled_index.shape[0]}; the other {unlabeled_index.shape[0]} are -1): every test "
            "fold needs at least one labeled sample"
        )
    y_labeled = y[labeled_index]
    if y_labeled.dtype == object:
        kinds = {type(v) for v in y_labeled}
        if all(issubclass(k, str) for k in kinds):
            y_labeled = y_labeled.astype(str)
    if isinstance(splitter.random_state, np.random.Generator):
        # scikit-learn's folds take no Generator: shuffle with a RandomState seeded from it
        # (a copy, so the splitter keeps the user's Generator and draws afresh each split)
        splitter = copy.copy(splitter)
        splitter.random_state = check_random_state_or_generator(splitter.random_state)
    # the parent class folds the labeled samples exactly as it would fold a fully labeled set
    inner = super(splitter_cls, splitter).split(np.zeros((labeled_index.shape[0], 1)), y_labeled)
    for train, test in inner:
        yield np.sort(np.concatenate([labeled_index[train], unlabeled_index])), labeled_index[test]


class SemiSupervisedKFold(KFold):
    """K-fold over the labeled samples; every unlabeled sample (``y == -1``) is in every train fold.

    The labeled samples are split into ``n_splits`` folds as :class:`~sklearn.model_selection.KFold`
    splits them (same ``shuffle`` / ``random_state`` semantics); each training set is the other
    labeled folds plus all unlabeled samples, each test set one labeled fold. So a grid search
    over a transductive semi-supervised model (label propagation, seeded k-means priors) fits on
    every unlabeled sample and never scores ``-1`` as a class.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2 and at most the number of labeled samples.
    shuffle : bool, default=False
        Shuffle the labeled samples before splitting.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the shuffle (only used when ``shuffle=True``).

    See Also
    --------
    SemiSupervisedStratifiedKFold : the same with class-stratified folds.
    as3l_sklearn.metrics.make_labeled_scorer : a scorer that ignores ``-1`` samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.semi_supervised import LabelSpreading
    >>> from as3l_sklearn.metrics import make_labeled_scorer
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(6, 1, (30, 2))]
    >>> y = np.repeat([0, 1], 30); y[rng.rand(60) < 0.7] = -1
    >>> search = GridSearchCV(LabelSpreading(kernel="knn"), {"n_neighbors": [5, 7]},
    ...                       cv=SemiSupervisedKFold(3, shuffle=True, random_state=0),
    ...                       scoring=make_labeled_scorer("accuracy")).fit(X, y)
    >>> float(search.best_score_)
    1.0
    """

    def split(self, X, y=None, groups=None):
        """Generate (train, test) indices; test folds hold labeled samples only.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Only its length is used.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled samples (integers, or an ``object`` array of strings
            with the integer ``-1``). Required.
        groups : ignored

        Yields
        ------
        train : ndarray of int
            Sorted indices: the other labeled folds and every unlabeled sample.
        test : ndarray of int
            Indices of one fold of labeled samples.
        """
        return _split_labeled(SemiSupervisedKFold, self, X, y)


class SemiSupervisedStratifiedKFold(StratifiedKFold):
    """Stratified k-fold over the labeled samples; unlabeled samples are in every train fold.

    As :class:`SemiSupervisedKFold`, but the labeled samples are split as
    :class:`~sklearn.model_selection.StratifiedKFold` splits them, preserving the class
    proportions in each test fold (``-1`` is not a class here).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds, at least 2 and at most the number of labeled samples.
    shuffle : bool, default=False
        Shuffle each class's labeled samples before splitting.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the shuffle (only used when ``shuffle=True``).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array(["cat", -1, "dog", "cat", -1, "dog"], dtype=object)
    >>> cv = SemiSupervisedStratifiedKFold(n_splits=2)
    >>> [test.tolist() for _, test in cv.split(np.zeros((6, 1)), y)]
    [[0, 2], [3, 5]]
    """

    def split(self, X, y, groups=None):
        """Generate (train, test) indices; test folds hold labeled samples only, stratified.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Only its length is used.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled samples. Required.
        groups : ignored

        Yields
        ------
        train : ndarray of int
            Sorted indices: the other labeled folds and every unlabeled sample.
        test : ndarray of int
            Indices of one stratified fold of labeled samples.
        """
        return _split_labeled(SemiSupervisedStratifiedKFold, self, X, y)

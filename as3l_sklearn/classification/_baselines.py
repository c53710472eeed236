"""Baselines of the paper's Table 1: linear evaluation and supervised training on the labels only."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..utils._param_validation import (
    RANDOM_STATE,
    HasMethods,
    ImageShape,
    Integral,
    Interval,
    Real,
    StrOptions,
    fit_context,
)
from ..utils._torch import TorchPickleMixin
from ..utils._validation import (
    PartiallyLabeledClassifierMixin,
    check_channels,
    check_features,
    check_image_shape_consistent,
    check_images,
    check_random_state_or_generator,
    images_before_array_checks,
)
from ._flexmatch import TRAINING_CONSTRAINTS, PriorGuidedFlexMatchClassifier, _check_target


def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    except TypeError:  # not a scikit-learn estimator: look for fitted attributes ourselves
        return any(name.endswith("_") and not name.startswith("_") for name in vars(estimator))
    return True


class LinearEvaluationClassifier(TorchPickleMixin, PartiallyLabeledClassifierMixin, BaseEstimator):
    """Logistic regression on frozen self-supervised features of the labeled samples.

    The paper's "linear evaluation" baseline (Table 1, after SimSiam): the encoder is frozen,
    features of the labeled samples are standardised and a multinomial logistic regression is
    fitted on them. Unlabeled samples (``-1``) only serve to fit an embedder that was not
    fitted yet.

    Parameters
    ----------
    embedder : None, "passthrough" or estimator with ``transform``, default=None
        A fitted :class:`~as3l_sklearn.SimSiamEmbedder` is used as it is (frozen). An unfitted
        embedder is cloned and fitted on all of ``X`` (self-supervised, labels unused).
        ``None`` fits a default ``SimSiamEmbedder(random_state=random_state)``.
        ``"passthrough"`` reads ``X`` as precomputed features.
    C : float, default=1.0
        Inverse regularisation strength of the logistic regression.
    max_iter : int, default=1000
        Iterations of the logistic regression solver.
    standardize : bool, default=True
        Standardise features (fitted on the labeled samples) before the regression.
    image_shape : tuple (C, H, W), optional
        For 2-D image input when an embedder is used.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the default embedder (``embedder=None``) and the logistic regression.

    Attributes
    ----------
    classes_ : ndarray
    embedder_ : estimator or None
        The (fitted) embedder used; ``None`` for ``"passthrough"``.
    classifier_ : Pipeline
        The fitted scaler and logistic regression.
    n_features_in_ : int
        For 2-D input.
    n_iter_ : int
        Iterations of the logistic regression solver.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.classification import LinearEvaluationClassifier
    >>> F = np.r_[np.zeros((5, 2)), np.ones((5, 2))] + 0.01 * np.arange(10)[:, None]
    >>> y = np.array([0, -1, -1, -1, -1, 1, -1, -1, -1, -1])
    >>> LinearEvaluationClassifier(embedder="passthrough").fit(F, y).predict(F).tolist()
    [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    """

    _parameter_constraints: dict = {
        "embedder": [StrOptions({"passthrough"}), HasMethods(["transform"]), None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "image_shape": [ImageShape(), None],
        "random_state": RANDOM_STATE,
    }

    def __init__(self, embedder=None, C=1.0, max_iter=1000, standardize=True, image_shape=None,
                 random_state=None):
        self.embedder = embedder
        self.C = C
        self.max_iter = max_iter
        self.standardize = standardize
        self.image_shape = image_shape
        self.random_state = random_state

    def _features(self, X, fitting: bool):
        if self.embedder == "passthrough":
            F = check_features(X, name="X")
            if fitting:
                self.n_features_in_ = F.shape[1]
            elif F.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {F.shape[1]} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
            return F
        X = images_before_array_checks(X, "X")  # PIL lists, ragged and 1-D input: messages naming X
        if np.ndim(X) == 2 and fitting:
            self.n_features_in_ = int(np.shape(X)[1])
        from ..embedding import SimSiamEmbedder

        # uint8 images stay uint8 on their way to a SimSiamEmbedder (it converts per batch);
        # any other embedder gets float32 n x C x H x W arrays as before
        images = check_images(X, image_shape=self.image_shape, name="X",
                              lazy=isinstance(self.embedder_, SimSiamEmbedder))
        if fitting:
            self.image_shape_ = tuple(images.shape[1:])
        elif tuple(images.shape[1:]) != tuple(self.image_shape_):
            check_channels(images, self.image_shape_[0], type(self).__name__)
            check_image_shape_consistent(images, self.image_shape_)
        return np.asarray(self.embedder_.transform(images), dtype=np.float32)

    # an unfitted embedder is fitted inside fit and checks its own parameters there
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit the regression on the labeled samples' frozen features (``-1`` = unlabeled)."""
        if sparse.issparse(X):
            raise TypeError("X is a sparse matrix, but dense data is required (images or features)")
        if self.embedder is None:
            from ..embedding import SimSiamEmbedder

            self.embedder_ = SimSiamEmbedder(random_state=self.random_state)
        elif isinstance(self.embedder, str):  # "passthrough"
            self.embedder_ = None
        elif _is_fitted(self.embedder):
            self.embedder_ = self.embedder
        else:
            self.embedder_ = clone(self.embedder)
        if self.embedder_ is not None and not _is_fitted(self.embedder_):
            X = images_before_array_checks(X, "X")
            images = check_images(X, image_shape=self.image_shape, name="X")
            self.embedder_.fit(images)
        n_samples = len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]
        classes, y_encoded = _check_target(y, n_samples)
        F = self._features(X, fitting=True)
        labeled = y_encoded >= 0
        self.classes_ = classes
        steps = [StandardScaler()] if self.standardize else []
        random_state = self.random_state
        if isinstance(random_state, np.random.Generator):  # LogisticRegression takes no Generator
            random_state = int(check_random_state_or_generator(random_state).randint(2**31 - 1))
        self.classifier_ = make_pipeline(*steps, LogisticRegression(C=float(self.C), max_iter=int(self.max_iter),
                                                                     random_state=random_state))
        if len(classes) == 1:
            self._single_class = True
        else:
            self._single_class = False
            self.classifier_.fit(F[labeled], y_encoded[labeled])
        self.n_iter_ = int(np.max(self.classifier_[-1].n_iter_)) if not self._single_class else 0
        return self

    def predict_proba(self, X):
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self, "classifier_")
        if sparse.issparse(X):
            raise TypeError("X is a sparse matrix, but dense data is required (images or features)")
        F = self._features(X, fitting=False)
        if self._single_class:
            return np.ones((F.shape[0], 1))
        return self.classifier_.predict_proba(F)

    def predict(self, X):
        """Predicted class labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.embedder == "passthrough" or self.image_shape is not None
        tags.target_tags.required = True
        return tags


class SupervisedClassifier(PriorGuidedFlexMatchClassifier):
    """The FlexMatch network, optimiser, schedule and weak augmentation trained on labeled samples only.

    The paper's supervised-only reference: the same training loop as
    :class:`PriorGuidedFlexMatchClassifier` with ``lambda_u = 0`` (no unlabeled batch, no
    pseudo-labels). Samples marked ``-1`` are ignored.

    Parameters
    ----------
    backbone, encoder, max_iter, batch_size, lr, momentum, nesterov, weight_decay, ema_decay, \
eval_every, device, image_shape, warm_start, callbacks, random_state, n_threads, num_workers, \
verbose
        As for :class:`PriorGuidedFlexMatchClassifier`. ``num_workers`` (default 0): DataLoader
        workers that read the images of each step (and of prediction) from a memory map or a
        lazy folder; the result does not depend on it.

    Attributes
    ----------
    classes_, net_, n_iter_, history_, best_step_, image_shape_
        As for :class:`PriorGuidedFlexMatchClassifier`.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.classification import SupervisedClassifier
    >>> X = np.random.RandomState(0).rand(10, 1, 8, 8).astype(np.float32)
    >>> y = np.array([0, 1] + [-1] * 8)
    >>> SupervisedClassifier(backbone="small_cnn", max_iter=2, batch_size=2,
    ...                      random_state=0).fit(X, y).predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = TRAINING_CONSTRAINTS

    # the FlexMatch-only settings, fixed (class attributes, so get_params lists only the above)
    prior = None
    prior_mode = "remove"
    switch_iter = 0
    update_every = 1
    mu = 1
    lambda_u = 0.0
    tau = 0.95
    threshold_warmup = True
    threshold = "flexmatch"
    prior_start = "none"
    self_check = "off"
    check_tolerance = 0.02

    def __init__(self, backbone="auto", encoder=None, max_iter="auto", batch_size=64, lr=0.03,
                 momentum=0.9, nesterov=True, weight_decay=5e-4, ema_decay=0.999, eval_every="auto",
                 device="auto", image_shape=None, warm_start=False, callbacks=None, random_state=None,
                 n_threads="auto", num_workers=0, verbose=0):
        self.backbone = backbone
        self.encoder = encoder
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.ema_decay = ema_decay
        self.eval_every = eval_every
        self.device = device
        self.image_shape = image_shape
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.random_state = random_state
        self.n_threads = n_threads
        self.num_workers = num_workers
        self.verbose = verbose

    def fit(self, X, y, X_val=None, y_val=None):
        """Train on the labeled samples of ``(X, y)`` (``-1`` = unlabeled, ignored).

        Parameters
        ----------
        X : array-like of images
        y : array-like of shape (n_samples,)
        X_val, y_val : optional
            Validation set for the history and best-weights keeping.

        Returns
        -------
        self
        """
        return super().fit(X, y, X_val=X_val, y_val=y_val)

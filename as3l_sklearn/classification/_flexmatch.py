"""Prior-guided FlexMatch (AS3L paper, section 3.4, Eq. 2-5) as a scikit-learn classifier."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from skorch.callbacks import Callback
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..nn import BACKBONES
from ..utils._param_validation import (
    DEVICE,
    N_THREADS,
    RANDOM_STATE,
    Fitted,
    HasMethods,
    ImageShape,
    Integral,
    Interval,
    NamedCallbacks,
    Real,
    StrOptions,
    TorchModule,
    fit_context,
)
from ..nn._step_net import TrainingInterruptedWarning, check_user_callbacks
from ..utils._progress import print_line
from ..utils._torch import (
    TorchPickleMixin,
    resolve_n_threads,
    seed_torch,
    torch_generator,
    torch_settings,
    torch_threads,
)
from ..utils._validation import (
    PartiallyLabeledClassifierMixin,
    check_channels,
    check_image_shape_consistent,
    check_images,
    check_partial_labels,
    image_range,
    images_before_array_checks,
    infer_image_shape,
    unlabeled_mask,
    warn_on_image_range,
)

#: The paper trains 112 x 1024 steps with the prior switched off after T = 6900 (section 4.1),
#: i.e. after 6 % of its run -- but 62 epochs over CIFAR-10's unlabeled pool.
PAPER_SWITCH_ITER = 6900
PAPER_MAX_ITER = 112 * 1024
#: ``switch_iter="auto"``: T as a fraction of ``max_iter``. Measured in the CPU setting
#: (benchmarks/bench_classifier.py --sweep-t: 300 steps, 10 and 40 labels, 2 seeds, scored on
#: validation images, never the test set): T at 50 % beat 20 % and 5 % in both prior modes at
#: both budgets; the paper's 6 % switched the prior off before the network had seen each
#: image once.
AUTO_SWITCH_FRACTION = 0.5
#: ``max_iter="auto"``: CPU-sane on small data, longer on a GPU.
AUTO_MAX_ITER_CPU = 1000
AUTO_MAX_ITER_GPU = 20 * 1024
#: ``prior_start="head"``: weight of a labeled image against an unlabeled one in the head's fit
#: (the labels are certain, the priors are not)
LABELED_WEIGHT = 10.0


def _auto_switch_iter(max_iter: int) -> int:
    return int(round(AUTO_SWITCH_FRACTION * max_iter))


_COUNT = Interval(Integral, 1, None, closed="left")
_AUTO = StrOptions({"auto"})
#: the parameters shared by :class:`PriorGuidedFlexMatchClassifier` and ``SupervisedClassifier``
TRAINING_CONSTRAINTS = {
    "backbone": [StrOptions({"auto", *BACKBONES}), TorchModule()],
    "encoder": [Fitted("net_", "SimSiamEmbedder"), None],
    "max_iter": [_COUNT, _AUTO],
    "batch_size": [_COUNT],
    "lr": [Interval(Real, 0, None, closed="neither")],
    # [0, 1) as in SimSiamEmbedder: a momentum of 1 never forgets a gradient
    "momentum": [Interval(Real, 0, 1, closed="left")],
    "nesterov": ["boolean"],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "ema_decay": [Interval(Real, 0, 1, closed="both")],
    "eval_every": [_COUNT, _AUTO],
    "device": DEVICE,
    "image_shape": [ImageShape(inferred=True), None],
    "warm_start": ["boolean"],
    "callbacks": [NamedCallbacks(), None],
    "random_state": RANDOM_STATE,
    "n_threads": N_THREADS,
    "num_workers": [Interval(Integral, 0, None, closed="left")],
    "verbose": ["verbose"],
}


def _check_target(y, n_samples, *, name="y"):
    """Partial labels as ``check_partial_labels``, plus scikit-learn's messages for common mistakes."""
    if y is None:
        raise ValueError(f"requires y to be passed, but the target y is None ({name}: class labels with -1 "
                         "for unlabeled samples)")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)  # scikit-learn's DataConversionWarning
    # string arrays: "-1" marks unlabeled samples, as everywhere (check_partial_labels)
    if y.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {y.dtype}")
    if y.dtype.kind == "f" and y.ndim == 1 and np.isfinite(y).all() and not np.all(y == np.round(y)):
        raise ValueError(f"Unknown label type: 'continuous'. {name} must hold class labels (and -1 for "
                         "unlabeled samples), not a regression target")
    return check_partial_labels(y, n_samples, name=name, min_labeled=1)


def _last_step(estimator):
    """The estimator that holds ``label_distributions_`` (the last step of a Pipeline)."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _align_prior(proba, prior_classes, classes, *, name):
    """Reorder prior columns to ``classes``; every class of ``y`` must be among the prior's."""
    proba = np.asarray(proba, dtype=np.float64)
    prior_classes = np.asarray(prior_classes)
    missing = [c.item() if hasattr(c, "item") else c for c in classes if not np.any(prior_classes == c)]
    if missing:
        raise ValueError(f"{name}: classes {missing!r} of y are missing from the prior estimator's "
                         f"classes_ {prior_classes.tolist()!r}")
    columns = [int(np.flatnonzero(prior_classes == c)[0]) for c in classes]
    aligned = proba[:, columns]
    totals = aligned.sum(axis=1, keepdims=True)
    # classes the prior knows but y lacks are dropped; rows then renormalised
    uniform = np.full_like(aligned, 1.0 / len(classes))
    return np.where(totals > 0, aligned / np.where(totals > 0, totals, 1.0), uniform)


def check_prior_proba(prior_proba, n_samples: int, n_classes: int, *, name: str = "prior_proba",
                      atol: float = 1e-3) -> np.ndarray:
    """Validate explicit priors: finite, non-negative, shape (n_samples, n_classes), rows summing to 1.

    Examples
    --------
    >>> check_prior_proba([[0.5, 0.5], [1.0, 0.0]], 2, 2).dtype
    dtype('float32')
    """
    try:
        proba = np.asarray(prior_proba, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array of shape (n_samples, n_classes)") from exc
    if proba.ndim != 2 or proba.shape != (n_samples, n_classes):
        raise ValueError(f"{name} must have shape (n_samples, n_classes) = ({n_samples}, {n_classes}), "
                         f"columns in classes_ order; got shape {proba.shape}")
    if not np.isfinite(proba).all():
        raise ValueError(f"{name} contains NaN or infinity")
    if (proba < 0).any():
        raise ValueError(f"{name} must be non-negative (class probabilities)")
    sums = proba.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(f"{name} rows must sum to 1 (tolerance {atol}); row {int(bad[0])} sums to "
                         f"{sums[bad[0]]:.6g} ({bad.size} rows off)")
    return (proba / sums[:, None]).astype(np.float32)


class PriorGuidedFlexMatchClassifier(TorchPickleMixin, PartiallyLabeledClassifierMixin, BaseEstimator):
    """FlexMatch semi-supervised training guided by prior pseudo-labels (AS3L, section 3.4).

    Each step draws a labeled batch of ``batch_size`` images and an unlabeled batch of
    ``mu * batch_size`` images (the unlabeled pool is the whole training set, labeled images
    included, as in FlexMatch), and minimises ``Loss_l + lambda_u * Loss_un`` (Eq. 2-4):
    cross-entropy on weakly augmented labeled images, plus cross-entropy of the strong view
    against hard pseudo-labels, masked by FlexMatch's classwise thresholds and averaged over
    the whole unlabeled batch.

    Pseudo-labels come from ``y_posterior`` (Eq. 5): for steps ``t <= T`` (``switch_iter``)
    ``normalize(y_prior + y_pred_weak)``; afterwards ``y_pred_weak`` alone
    (``prior_mode="remove"``), or ``normalize(y_prior' + y_pred_weak)`` with ``y_prior'``
    re-derived every ``update_every`` steps by re-fitting the propagator on the network's own
    penultimate features (``prior_mode="update"``). With no prior this is plain FlexMatch.

    FlexMatch thresholds follow the reference implementations (TorchSSL, USB): every training
    sample has a learning status, "unused" at first and set to the model's weak-view class once
    its confidence reaches ``tau``; ``sigma_c`` counts status ``c``;
    ``beta_c = sigma_c / max(max_c sigma_c, n_unused)`` with threshold warm-up (else
    ``/ max_c sigma_c``); a sample enters the loss when ``max(y) >= tau * M(beta_c)`` with
    ``M(x) = x / (2 - x)`` and ``c = argmax(y)``. Under prior guidance the mask and the hard
    label use ``y = y_posterior`` (the paper's Eq. 4 thresholds ``max(y_posterior)``), while the
    learning status keeps following the model's own weak prediction (as FlexMatch does).

    Parameters
    ----------
    backbone : {"auto", "small_cnn", "resnet18_cifar", "wrn28_2"} or torch.nn.Module, default="auto"
        Encoder architecture (see :func:`as3l_sklearn.nn.make_backbone`); a linear head is added.
        Ignored when ``encoder`` is given (its architecture and weights are used).
    encoder : fitted SimSiamEmbedder, optional
        Initialise the backbone with these self-supervised weights, as the paper does. The
        embedder itself is not modified.
    prior : estimator, optional
        Estimator fitted transductively on ``(X, y)`` inside :meth:`fit`, whose last step (for a
        Pipeline) exposes ``label_distributions_`` (n_samples, n_classes) and ``classes_``, e.g.
        ``Pipeline([("embed", SimSiamEmbedder()), ("fine", ClusterFineTuner()),
        ("prop", SeededKMeansPropagator())])``. Ignored for the initial priors when
        ``prior_proba`` is passed to :meth:`fit`; its last step is still the propagator that
        ``prior_mode="update"`` re-fits. ``None`` with no ``prior_proba``: plain FlexMatch.
    prior_mode : {"remove", "update"}, default="remove"
        What happens after ``switch_iter``. ``"update"`` re-fits a clone of the propagator (the
        last step of ``prior``, else a default :class:`~as3l_sklearn.SeededKMeansPropagator`) on
        the EMA network's penultimate features of all training images.
    switch_iter : int or "auto", default="auto"
        T of Eq. 5. ``"auto"`` is half of ``max_iter``, measured best of 5 %, 20 % and 50 % in
        the CPU setting for both prior modes (``benchmarks/bench_classifier.py --sweep-t``,
        scored on validation images). The paper's T = 6900 of 112 x 1024 steps (6 %) is
        ``switch_iter=round(0.06 * max_iter)`` for paper-length GPU runs.
    update_every : int or "auto", default="auto"
        Steps between prior refreshes after T in ``"update"`` mode; ``"auto"`` is
        ``max(switch_iter, max_iter // 10)`` (at most about ten re-clusterings).
    max_iter : int or "auto", default="auto"
        Total training steps (the paper: 112 x 1024). ``"auto"`` is 1000 steps on CPU (minutes
        for a small CNN on small images) and 20 x 1024 on CUDA. 0 (with a prior and
        ``prior_start="head"``): no step, the model fitted to the prior.
    batch_size : int, default=64
        Labeled batch size B.
    mu : int, default=7
        Unlabeled-to-labeled batch ratio.
    lambda_u : float, default=1.0
        Weight of the unlabeled loss, >= 0 (0 gives supervised training on the labeled samples).
    tau : float, default=0.95
        FlexMatch's fixed threshold, in [0, 1].
    threshold_warmup : bool, default=True
        FlexMatch's threshold warm-up.
    threshold : {"flexmatch", "freematch"}, default="flexmatch"
        The pseudo-label thresholds: FlexMatch's curriculum (above, with ``tau`` and
        ``threshold_warmup``), or FreeMatch's self-adaptive ones (Wang et al., ICLR 2023,
        "FreeMatch: Self-adaptive Thresholding for Semi-supervised Learning"): a global
        threshold, the moving average (momentum 0.999) of the model's weak-view confidence,
        scaled per class by the moving average of its class probabilities over the largest
        (``tau`` and ``threshold_warmup`` are then unused). The prior guidance is the same on
        top: under it the mask is taken on ``y_posterior``. FreeMatch's fairness loss is not
        included.
    prior_start : {"head", "none"}, default="head"
        Where training starts when there is a prior. ``"head"``: before the first step the
        linear head is fitted to the prior (a multinomial logistic regression to the prior's
        distributions, labeled images one-hot and weighted ``LABELED_WEIGHT`` times, on the
        frozen encoder's features of every training image, by L-BFGS: seconds), so the network
        starts as a model of the prior instead of at chance and the steps a short budget
        allows start from there (beyond the paper, which starts the head at random:
        ``"none"``). ``max_iter=0`` then returns that model.
    self_check : {"fallback", "warn", "off"}, default="fallback"
        Label-free checks after training, with a prior (``self_check_``): the final model
        against the prior it was guided by (its agreement with the prior's surest half, see
        :func:`~as3l_sklearn.classification.check_against_prior`, and class collapse).
        ``"fallback"``: when the final model fails them and ``prior_start="head"``, the model
        fitted to the prior at the start is returned instead (``fell_back_``) and a
        ``UserWarning`` says so; ``"warn"``: only the warning. With ``X_val`` the validation
        accuracy chooses the weights and the checks are reported only.
    check_tolerance : float, default=0.02
        How far the final model's agreement with the prior's surest half may fall below the
        prior's own expected accuracy on that half (its mean largest probability) before it
        fails the check.
    lr : float, default=0.03
        Initial learning rate of SGD, > 0, decayed as ``lr * cos(7 pi k / (16 K))``.
    momentum : float, default=0.9
        SGD momentum, in [0, 1) (as for :class:`~as3l_sklearn.SimSiamEmbedder`).
    nesterov : bool, default=True
    weight_decay : float, default=5e-4
        >= 0; applied to weights only, not to BatchNorm parameters and biases.
    ema_decay : float, default=0.999
        Decay, in [0, 1], of the exponential moving average of the weights used for evaluation and
        prediction. Step ``k`` uses ``min(ema_decay, (1 + k) / (10 + k))`` so that short runs
        are not dominated by the initial weights (a simplification of the reference code).
    eval_every : int or "auto", default="auto"
        Steps between history records (and validation when ``X_val`` is given); ``"auto"`` is
        ``max(1, max_iter // 20)``.
    device : str, default="auto"
        ``"auto"`` uses CUDA when available. Mixed precision (autocast) is used on CUDA only:
        bfloat16, or float16 with a gradient scaler on GPUs without bfloat16.
    image_shape : tuple (C, H, W), optional
        Needed for 2-D (flattened) input. One entry may be ``-1`` (inferred from the number of
        features, as in :func:`numpy.reshape`), e.g. ``(1, 1, -1)`` for feature vectors.
    warm_start : bool, default=False
        Resume from the fitted network, its optimiser, its EMA and its step counter, and train up
        to ``max_iter`` total steps (raise ``max_iter`` to train longer). The training data must
        be the same.
    callbacks : list of (name, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks for the training loop, which is skorch's own ``fit_loop``: one
        skorch epoch is ``eval_every`` steps (ending at a history record), one batch one step.
        ``net_.history`` holds per epoch the ``history_`` record's keys besides skorch's
        ``train_loss``, so e.g. ``EarlyStopping(monitor="val_accuracy", lower_is_better=False)``
        or ``Checkpoint(monitor="val_accuracy_best")`` work as on any skorch net. Names
        starting with ``flexmatch_`` and skorch's ``epoch_timer``/``train_loss`` plus our
        ``lr_schedule``/``ema`` are taken.
    random_state : int, RandomState, numpy Generator or None, default=None
        Seeds initialisation, batch sampling and augmentations (identical results on CPU with
        the same ``n_threads``). A ``Generator`` is accepted: one seed is drawn from it.
    n_threads : int, "auto" or None, default="auto"
        torch CPU threads used during ``fit`` and prediction (the caller's setting is restored
        after); a fixed count keeps results independent of the caller's thread settings and
        of joblib workers. ``"auto"``: ``min(4, os.cpu_count())``; ``None``: torch's current
        setting.
    num_workers : int, default=0
        DataLoader worker processes that read (decode) the images of each training step, and
        of prediction, when ``X`` is read from a source rather than held in memory: a
        ``np.memmap``, a read-only uint8 array or a lazy folder from
        ``load_image_folder(..., lazy=True)``. Each step's images are split between the
        workers, and the next step's are read while the current one trains. 0 reads in the
        main process; writable uint8 or float arrays in memory are always read there. Workers
        only read: the batch indices and the augmentations are drawn in the main process from
        the same generator, in the same order, so the result does not depend on
        ``num_workers``.
    verbose : int, default=0
        0 silent; 1 shows one progress bar (tqdm, on stderr) over the steps of the fit, with
        its ETA, loss and mask rate; 2 prints a line of the history every ``eval_every``
        steps instead.

    Attributes
    ----------
    classes_ : ndarray
        Sorted class labels seen in ``y`` (labeled samples only).
    net_ : FlexMatchNet
        The skorch network; ``net_.module_`` is trained, ``net_.ema_module_`` predicts.
    prior_ : ndarray of shape (n_samples, n_classes) or None
        The priors used for ``t <= T`` (columns in ``classes_`` order).
    switch_iter_, update_every_, max_iter_ : int
        The resolved step counts.
    n_iter_ : int
        Training steps run so far (all fits together under ``warm_start``).
    history_ : list of dict
        One record per ``eval_every`` steps: ``step``, ``loss``, ``loss_l``, ``loss_u``,
        ``mask_rate``, ``pseudo_label_accuracy`` (with ``y_true``), ``val_accuracy`` (with
        ``X_val``), ``monitor_accuracy`` (with ``X_monitor``), ``lr``, ``prior`` (whether
        guidance was on) and ``seconds``.
    best_step_ : int
        Step whose EMA weights are kept (best validation accuracy, else the last step).
    interrupted_ : bool
        Whether the last ``fit`` was stopped by Ctrl-C: it then warns with a
        :class:`~as3l_sklearn.classification.TrainingInterruptedWarning`, keeps the best (or
        last) EMA weights, and ``warm_start=True`` resumes. An ``EarlyStopping`` callback
        ending the fit is not an interruption.
    image_shape_ : tuple (C, H, W)
    n_features_in_ : int
        Only set for 2-D input.
    torch_settings_ : dict
        What ``fit`` ran with: ``n_threads``, ``threads_fixed``, ``deterministic_algorithms``,
        ``cudnn_deterministic``, ``device`` and ``torch_version``.
    input_range_ : dict
        The value scale of the training images; prediction warns with an
        ``ImageRangeWarning`` when ``X`` is on another (e.g. float 0..255 after a uint8 fit).
    distributed_ : dict or None
        ``{"world_size": N, "backend": ...}`` when ``fit`` ran under ``torchrun`` with DDP
        (every rank ends with the same fitted estimator), else ``None``.
    self_check_ : dict or None
        The label-free checks of the last fit (``None`` without a prior or with
        ``self_check="off"``): see :func:`~as3l_sklearn.classification.check_against_prior`;
        ``candidates`` holds ``"final"`` and, with ``prior_start="head"``, ``"prior_start"``;
        ``chosen`` is the candidate the checks rank first and ``returned`` the one whose
        weights the estimator holds (they differ with ``self_check="warn"`` or a validation set).
    fell_back_ : bool
        Whether the returned weights are the model fitted to the prior at the start, because
        the trained one failed the checks (``self_check="fallback"``).
    freematch_state_ : dict or None
        FreeMatch's estimates (``threshold="freematch"``), continued by ``warm_start``.

    See Also
    --------
    LinearEvaluationClassifier : logistic regression on frozen self-supervised features.
    SupervisedClassifier : the same network trained on the labeled samples only.

    Notes
    -----
    Simplifications with respect to the paper and FlexMatch: steps sample batches with
    replacement; the EMA has a short warm-up; the learning status covers every training image
    (labeled ones included, since they are in the unlabeled pool).

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 1, 8, 8).astype(np.float32)
    >>> y = np.full(40, -1); y[:4] = [0, 1, 0, 1]
    >>> clf = PriorGuidedFlexMatchClassifier(backbone="small_cnn", max_iter=2, batch_size=4, mu=2,
    ...                                      random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **TRAINING_CONSTRAINTS,
        "prior": [HasMethods(["fit"]), None],
        "prior_mode": [StrOptions({"remove", "update"})],
        "switch_iter": [Interval(Integral, 0, None, closed="left"), _AUTO],
        "update_every": [_COUNT, _AUTO],
        "mu": [_COUNT],
        "lambda_u": [Interval(Real, 0, None, closed="left")],
        "tau": [Interval(Real, 0, 1, closed="both")],
        "threshold_warmup": ["boolean"],
        "threshold": [StrOptions({"flexmatch", "freematch"})],
        "prior_start": [StrOptions({"head", "none"})],
        "self_check": [StrOptions({"fallback", "warn", "off"})],
        "check_tolerance": [Interval(Real, 0, 1, closed="both")],
        # 0: the model fitted to the prior, no step (needs prior_start="head" and a prior)
        "max_iter": [Interval(Integral, 0, None, closed="left"), _AUTO],
    }

    def __init__(self, backbone="auto", encoder=None, prior=None, prior_mode="remove",
                 switch_iter="auto", update_every="auto", max_iter="auto", batch_size=64, mu=7,
                 lambda_u=1.0, tau=0.95, threshold_warmup=True, threshold="flexmatch", prior_start="head",
                 self_check="fallback", check_tolerance=0.02, lr=0.03, momentum=0.9, nesterov=True,
                 weight_decay=5e-4, ema_decay=0.999, eval_every="auto", device="auto",
                 image_shape=None, warm_start=False, callbacks=None, random_state=None, n_threads="auto",
                 num_workers=0, verbose=0):
        self.backbone = backbone
        self.encoder = encoder
        self.prior = prior
        self.prior_mode = prior_mode
        self.switch_iter = switch_iter
        self.update_every = update_every
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.mu = mu
        self.lambda_u = lambda_u
        self.tau = tau
        self.threshold_warmup = threshold_warmup
        self.threshold = threshold
        self.prior_start = prior_start
        self.self_check = self_check
        self.check_tolerance = check_tolerance
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

    # ------------------------------------------------------------------ validation
    def _validate_params_(self, device):
        """The step counts ``(max_iter, switch_iter, update_every, eval_every)``, ``"auto"``
        filled in; the parameters themselves are checked by ``_parameter_constraints`` when
        ``fit`` starts."""
        if isinstance(self.max_iter, str):  # "auto"
            max_iter = AUTO_MAX_ITER_GPU if device.startswith("cuda") else AUTO_MAX_ITER_CPU
        else:
            max_iter = int(self.max_iter)
        switch_iter = self.switch_iter
        switch_iter = _auto_switch_iter(max_iter) if isinstance(switch_iter, str) else int(switch_iter)
        update_every = self.update_every
        if isinstance(update_every, str):
            update_every = max(1, switch_iter, max_iter // 10)
        eval_every = self.eval_every
        eval_every = max(1, max_iter // 20) if isinstance(eval_every, str) else int(eval_every)
        return max_iter, switch_iter, int(update_every), eval_every

    def _check_X(self, X, name="X", fitted=False):
        X = _as_image_array(X, name)
        image_shape = self.image_shape
        if image_shape is not None and not isinstance(image_shape, str) and np.ndim(X) == 2:
            n_features = np.shape(X)[1]
            if fitted and hasattr(self, "n_features_in_") and n_features != self.n_features_in_:
                raise ValueError(f"{name} has {n_features} features, but {type(self).__name__} is expecting "
                                 f"{self.n_features_in_} features as input")
            image_shape = infer_image_shape(image_shape, n_features)
        # uint8 images (arrays, memory maps, lazy folders) stay uint8: converted per batch
        images = check_images(X, image_shape=image_shape, name=name, lazy=True)
        if fitted:
            check_channels(images, self.image_shape_[0], type(self).__name__, name=name)
            check_image_shape_consistent(images, self.image_shape_, name=name)
            warn_on_image_range(self.input_range_, images, X, type(self).__name__, name=name)
        return images

    def _encode(self, y_like, name):
        """Map labels in original form to indices of ``classes_`` (ValueError for unknown ones)."""
        y_like = np.asarray(y_like)
        if y_like.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {y_like.shape}")
        codes = np.full(len(y_like), -1, dtype=np.int64)
        for index, label in enumerate(self.classes_):
            codes[y_like == label] = index
        unknown = codes < 0
        if y_like.dtype == object or y_like.dtype.kind in "iuUS":
            allowed_unlabeled = unlabeled_mask(y_like)  # -1, or the string "-1"
        else:
            allowed_unlabeled = np.zeros(len(y_like), dtype=bool)
        if name == "y_val":
            # classes no labeled sample covers (few labels: a real case) count as errors, as
            # they do in ``score``: a validation set is not restricted to the classes seen
            codes[unknown] = -2
        if name == "y_true":
            # classes the labeled samples miss: pseudo-labels of those samples are always wrong
            codes[unknown & ~allowed_unlabeled] = -2
        return codes

    # ------------------------------------------------------------------ building blocks
    def _build_module(self, n_classes, image_shape):
        from ..nn import make_backbone

        from ._net import ClassifierModule

        if self.encoder is not None:
            backbone = copy.deepcopy(_encoder_backbone(self.encoder)).cpu()
        else:
            spec = self.backbone
            if not isinstance(spec, str):
                spec = copy.deepcopy(spec)  # never modify the user's module
            backbone = make_backbone(spec, in_channels=image_shape[0], image_size=image_shape[1:])
        return ClassifierModule(backbone, n_classes, out_dim=getattr(backbone, "out_dim", None)
                                or _infer_dim(backbone, image_shape))

    def _make_net(self, module, device, max_iter, eval_every, callbacks):
        from ._net import FlexMatchNet

        return FlexMatchNet(
            module, mu=int(self.mu), lambda_u=float(self.lambda_u), tau=float(self.tau),
            threshold_warmup=bool(self.threshold_warmup), ema_decay=float(self.ema_decay),
            weight_decay=float(self.weight_decay), momentum=float(self.momentum),
            nesterov=bool(self.nesterov), max_steps=max_iter, eval_every=eval_every, lr=float(self.lr),
            batch_size=int(self.batch_size), device=device, verbose=0, callbacks=list(callbacks),
            num_workers=int(self.num_workers),
        )

    def _fit_prior_estimator(self, X, y, n_samples):
        estimator = clone(self.prior)
        estimator.fit(X, y)
        last = _last_step(estimator)
        if not hasattr(last, "label_distributions_"):
            raise TypeError(f"prior: the (last step of the) prior estimator, {type(last).__name__}, has no "
                            "label_distributions_ after fit; use a propagator such as SeededKMeansPropagator")
        proba = np.asarray(last.label_distributions_)
        if proba.ndim != 2 or proba.shape[0] != n_samples:
            raise ValueError(f"prior: label_distributions_ has shape {proba.shape}, expected "
                             f"({n_samples}, n_classes)")
        return _align_prior(proba, last.classes_, self.classes_, name="prior"), estimator

    def _refresh_prior(self, images, y_encoded):
        """Re-fit the propagator on the EMA network's penultimate features (``prior_mode="update"``)."""
        features = self.net_.predict_logits(images, features=True).numpy()
        # a Generator would advance with every refresh: hand the propagator the fit's own seed
        random_state = self._rng_seed if isinstance(self.random_state, np.random.Generator) else self.random_state
        if self.prior is not None:
            propagator = clone(_last_step(self.prior))
        else:
            from ..propagation import SeededKMeansPropagator

            propagator = SeededKMeansPropagator(random_state=random_state)
        if hasattr(propagator, "random_state") and "random_state" in propagator.get_params():
            propagator.set_params(random_state=random_state)
        propagator.fit(features, y_encoded)
        proba = _align_prior(propagator.label_distributions_, propagator.classes_,
                             np.arange(len(self.classes_)), name="prior_mode='update' propagator")
        return proba.astype(np.float32)

    # ------------------------------------------------------------------ fit
    # the prior estimator is fitted inside fit and checks its own parameters there
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, prior_proba=None, X_val=None, y_val=None, y_true=None, X_monitor=None,
            y_monitor=None):
        """Train on images ``X`` with partial labels ``y`` (-1 for unlabeled).

        Parameters
        ----------
        X : array-like of images
            ``n x H x W x C`` uint8, ``n x C x H x W`` float, or 2-D with ``image_shape``.
            uint8 images are kept as given (a ``np.memmap`` or a lazy ``ImageFolderArray``
            too) and converted one batch at a time.
        y : array-like of shape (n_samples,)
            Class labels, ``-1`` for unlabeled samples (string labels: object array).
        prior_proba : array-like of shape (n_samples, n_classes), optional
            Explicit prior pseudo-labels (columns in sorted class order, i.e. ``classes_``); rows
            must sum to 1. Overrides the ``prior`` estimator for the initial priors.
        X_val, y_val : optional
            Validation images and labels: accuracy every ``eval_every`` steps, and the EMA
            weights with the best validation accuracy are kept. Never pass the test set here:
            a maximum over checkpoints chosen on it is an optimistic test score.
        X_monitor, y_monitor : optional
            Images and labels whose accuracy is recorded every ``eval_every`` steps
            (``history_[i]["monitor_accuracy"]``) and never used to choose weights: the place
            for a test set whose learning curve you want to plot. The final model is the one
            trained without them.
        y_true : array-like of shape (n_samples,), optional
            True labels of the training images (``-1`` where unknown), for monitoring the
            pseudo-label accuracy only; never used for training. Labels of classes absent from
            ``y`` count as wrong pseudo-labels.

        Returns
        -------
        self
        """
        n_threads = resolve_n_threads(self.n_threads)
        # CPU results depend on the thread count: train with a fixed one, restore the caller's after
        with torch_threads(n_threads):
            self._fit(X, y, prior_proba, X_val, y_val, y_true, X_monitor, y_monitor)
        self.torch_settings_ = torch_settings(n_threads, str(self.net_.device))
        return self

    def _fit(self, X, y, prior_proba, X_val, y_val, y_true, X_monitor, y_monitor):
        from ..utils._distributed import resolve_training_device

        device, context = resolve_training_device(self.device)
        max_iter, switch_iter, update_every, eval_every = self._validate_params_(device)
        X = images_before_array_checks(X, "X")  # a PIL list once, not again for every check below
        images, y_encoded, resume = self._check_training_set(X, y)
        n_samples = images.shape[0]
        prior = self._initial_prior(X, y, prior_proba, n_samples, resume)
        val_images, y_val_codes = self._check_eval_set(X_val, y_val, "val")
        monitor_images, monitor_codes = self._check_eval_set(X_monitor, y_monitor, "monitor")
        self._monitor = None if monitor_images is None else (monitor_images, monitor_codes)
        true_codes = None
        if y_true is not None:
            true_codes = self._encode(y_true, "y_true")
            if len(true_codes) != n_samples:
                raise ValueError(f"y_true has {len(true_codes)} labels but X has {n_samples} samples")

        user_callbacks = self._check_callbacks()
        if max_iter == 0 and (prior is None or self.prior_start != "head"):
            raise ValueError("max_iter=0 returns the model fitted to the prior: it needs a prior "
                             "(prior or prior_proba) and prior_start='head'")
        previous_best = self._start_or_resume(resume, prior, device, max_iter, eval_every, user_callbacks, n_samples)
        if not resume:  # the model fitted to the prior, kept for the checks of later fits too
            self._start_state = None
            if prior is not None and self.prior_start == "head":
                self._start_state = self._fit_head_to_prior(images, prior, y_encoded)
        self.max_iter_, self.switch_iter_, self.update_every_, self.eval_every_ = (
            max_iter, switch_iter, update_every, eval_every)
        self.distributed_ = None if context is None else context.as_report()
        data_device = device if device.startswith("cuda") else "cpu"
        images_t, y_t, status_t, prior_t = self._hand_over_training_data(
            images, y_encoded, true_codes, data_device, context, resume, switch_iter)

        # the estimator's part of the loop, as skorch callbacks for this fit only (they hold the
        # training data); the schedule, EMA and user callbacks live in the net
        recorder = _HistoryRecord(self, val_images, y_val_codes, previous_best)
        fit_callbacks = [
            ("flexmatch_prior_schedule", _PriorSchedule(self, prior_t is not None, switch_iter, update_every,
                                                        images, y_encoded, data_device)),
            ("flexmatch_history", recorder),
        ]
        if self.verbose == 1 and (context is None or context.is_main):
            from ..nn._callbacks import StepProgress

            # one bar over the steps of the fit (ETA); verbose>=2: a line per record
            fit_callbacks.append(("flexmatch_progress", StepProgress(
                max_iter, type(self).__name__, initial=self.n_iter_,
                postfix=(("loss", "loss", ".4f"), ("mask", "mask_rate", ".2f")))))
        self._train(images_t, y_t, status_t, fit_callbacks, context)
        self._keep_weights(recorder.best_state, val_images is None)
        self._check_against_prior(images, getattr(self, "_start_state", None), val_images is None)
        self.input_range_ = image_range(images, X)

    def _check_training_set(self, X, y):
        """``(images, encoded y, resume)``; sets ``classes_``, ``image_shape_`` and ``n_features_in_``."""
        images = self._check_X(X)
        n_samples = images.shape[0]
        if self.encoder is not None:
            encoder_shape = getattr(self.encoder, "image_shape_", None)
            if encoder_shape is not None:  # else a conv RuntimeError deep inside the first step
                check_channels(images, encoder_shape[0], f"the encoder ({type(self.encoder).__name__})")
        classes, y_encoded = _check_target(y, n_samples)
        resume = bool(self.warm_start) and hasattr(self, "net_")
        if resume:
            if tuple(images.shape[1:]) != tuple(self.image_shape_) or not np.array_equal(classes, self.classes_) \
                    or len(self.status_) != n_samples:
                raise ValueError("warm_start=True needs the same training images and classes as the previous "
                                 "fit; set warm_start=False to start over")
        else:
            self.classes_ = classes
            self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        # the shape attribute where there is one: np.asarray would read a lazy folder whole
        x_shape = X.shape if hasattr(X, "shape") and hasattr(X, "ndim") else np.asarray(X).shape
        if len(x_shape) == 2:
            self.n_features_in_ = int(x_shape[1])
        elif hasattr(self, "n_features_in_") and not resume:
            del self.n_features_in_
        return images, y_encoded, resume

    def _initial_prior(self, X, y, prior_proba, n_samples, resume):
        """Eq. 5's ``y_prior`` (float32, columns in ``classes_`` order) or ``None``."""
        if prior_proba is not None:
            prior = check_prior_proba(prior_proba, n_samples, len(self.classes_))
        elif self.prior is not None and not resume:
            prior, _ = self._fit_prior_estimator(X, y, n_samples)
            prior = prior.astype(np.float32)
        else:
            prior = None
        if prior is None and self.prior_mode == "update" and self.verbose:
            print("[PriorGuidedFlexMatch] no prior given: plain FlexMatch, prior_mode='update' has no effect")
        return prior

    def _start_or_resume(self, resume, prior, device, max_iter, eval_every, user_callbacks, n_samples):
        """A new initialised net (seeded), or the fitted one set up to continue; returns the EMA
        weights kept as best by the previous fit when the moving average continues from its last
        weights instead (else ``None``)."""
        if not resume:
            seed = seed_torch(self.random_state)  # initialisation of the head (and a named backbone)
            module = self._build_module(len(self.classes_), self.image_shape_)
            self.net_ = self._make_net(module, device, max_iter, eval_every, user_callbacks).initialize()
            self.n_iter_ = 0
            self.status_ = np.full(n_samples, -1, dtype=np.int64)
            self.history_ = []
            self.best_step_ = 0
            self.best_score_ = -np.inf
            self.prior_ = prior
            self.freematch_state_ = None
            self._rng_seed = int(seed)
            return None
        self.net_.max_steps = max_iter
        self.net_.eval_every = eval_every
        self.net_.num_workers = int(self.num_workers)
        self.net_.callbacks = list(user_callbacks)  # the callbacks parameter as it is now
        if prior is not None:
            self.prior_ = prior
        if getattr(self, "_last_ema_state", None) is None:
            return None
        # continue the moving average from the last weights, not from the kept best ones
        previous_best = {k: v.detach().cpu().clone() for k, v in self.net_.ema_module_.state_dict().items()}
        self.net_.ema_module_.load_state_dict(self._last_ema_state)
        return previous_best

    def _hand_over_training_data(self, images, y_encoded, true_codes, data_device, context, resume, switch_iter):
        """Give the net the tensors of the steps (:meth:`FlexMatchNet.set_training_data`);
        returns ``(images, labels, learning status, prior)`` as tensors."""
        import torch

        from ..augment import StrongAugment, WeakAugment

        side = self.image_shape_[1:]
        if min(side) >= 2:
            weak, strong = WeakAugment(image_size=side), StrongAugment(image_size=side)
        else:  # images under 2 px (feature vectors read as 1 x 1 x d) cannot be cropped or rotated
            weak = strong = _identity_view
        # the generator continues deterministically on resume (seeded by the step counter); it
        # draws the batches identically on every rank, the augmentations differ per rank
        generator = torch_generator(self._rng_seed + self.n_iter_)
        aug_generator = None
        if context is not None:
            aug_generator = torch_generator(self._rng_seed + self.n_iter_ + 1_000_003 * (context.rank + 1))
        images_t = _training_images(images, data_device)
        status_t = torch.from_numpy(self.status_.copy()).to(data_device)
        y_t = torch.from_numpy(y_encoded)
        labeled_idx = torch.from_numpy(np.flatnonzero(y_encoded >= 0))
        current_prior = self.prior_
        if (resume and self.prior_mode == "update" and self.n_iter_ > switch_iter
                and getattr(self, "prior_updated_", None) is not None):
            current_prior = self.prior_updated_  # the refreshed prior in force when training stopped
        prior_t = None if current_prior is None else torch.from_numpy(current_prior).to(data_device)
        true_t = None if true_codes is None else torch.from_numpy(true_codes)
        self._freematch_t = self._freematch_tensors(data_device)
        self.net_.threshold = self.threshold
        self.net_.set_training_data(images=images_t, y_labeled=y_t, labeled_idx=labeled_idx, weak=weak,
                                    strong=strong, generator=generator, status=status_t, prior=prior_t,
                                    y_true=true_t, aug_generator=aug_generator,
                                    freematch_state=self._freematch_t)
        return images_t, y_t, status_t, prior_t

    def _train(self, images_t, y_t, status_t, fit_callbacks, context):
        """Run the net's steps from ``n_iter_`` to ``max_iter_``; the step count and the learning
        status are kept whatever happens."""
        from ._net import count_records

        net = self.net_
        net.steps_done = int(self.n_iter_)
        net.max_epochs = count_records(self.n_iter_, self.max_iter_, self.eval_every_)
        try:
            net.fit_steps(images_t, y_t, fit_callbacks=fit_callbacks, distributed=context)
        finally:
            self.n_iter_ = int(net.steps_done)
            self.status_ = status_t.cpu().numpy().copy()
            state, self._freematch_t = self._freematch_t, None
            if state is not None:
                self.freematch_state_ = {k: v.cpu().numpy().copy() for k, v in state.items()}
            self._monitor = None  # monitoring data is not part of the fitted model (or its pickle)

    def _keep_weights(self, best_state, no_validation):
        """Load the best validation EMA weights (keeping the last ones to resume from); warn after a Ctrl-C."""
        net = self.net_
        interrupted = net.training_interrupted()
        if interrupted:
            warnings.warn(f"training interrupted at step {self.n_iter_}: keeping the "
                          f"{'best validation' if best_state is not None else 'last EMA'} weights; "
                          "fit again with warm_start=True to resume", TrainingInterruptedWarning, stacklevel=4)
        self._last_ema_state = None
        if best_state is not None and self.best_step_ != self.n_iter_:
            self._last_ema_state = {k: v.detach().cpu().clone() for k, v in net.ema_module_.state_dict().items()}
            net.ema_module_.load_state_dict(best_state)
        elif no_validation:
            self.best_step_ = self.n_iter_
        self.interrupted_ = interrupted

    def _freematch_tensors(self, data_device):
        """FreeMatch's estimates as tensors for the net (continued on ``warm_start``), or ``None``."""
        import torch

        from ._net import new_freematch_state

        if self.threshold != "freematch":
            return None
        saved = getattr(self, "freematch_state_", None)
        if saved is None:
            return new_freematch_state(len(self.classes_), data_device)
        return {k: torch.from_numpy(np.array(v)).to(data_device) for k, v in saved.items()}

    def _fit_head_to_prior(self, images, prior, y_encoded):
        """``prior_start="head"``: fit the linear head (of the trained and the averaged network)
        to the prior on the frozen encoder's features; return the weights as they start."""
        import torch

        from ._net import fit_linear_head

        net = self.net_
        features = net.predict_logits(images, features=True, num_workers=self.num_workers)
        targets = torch.from_numpy(np.asarray(prior, dtype=np.float32)).clone()
        labeled = np.flatnonzero(y_encoded >= 0)
        targets[labeled] = torch.nn.functional.one_hot(
            torch.from_numpy(y_encoded[labeled]), targets.shape[1]).float()
        weight = torch.ones(len(targets))
        weight[labeled] = LABELED_WEIGHT
        fit_linear_head(net.module_.head, features, targets, weight)
        net.ema_module_.head.load_state_dict(net.module_.head.state_dict())
        return copy.deepcopy({k: v.detach().cpu() for k, v in net.ema_module_.state_dict().items()})

    def _check_against_prior(self, images, start_state, no_validation):
        """``self_check``: the final model against the prior; fall back to ``start_state`` (the
        model fitted to the prior) when it fails and ``self_check="fallback"``."""
        from ._self_check import check_against_prior

        self.self_check_ = None
        self.fell_back_ = False
        if self.prior_ is None or self.self_check == "off":
            return
        candidates = {"final": self.net_.predict_logits(images).argmax(1).numpy()}
        if start_state is not None and self.n_iter_ > 0:
            with _loaded(self.net_.ema_module_, start_state):
                candidates["prior_start"] = self.net_.predict_logits(images).argmax(1).numpy()
        checks = check_against_prior(self.prior_, candidates, float(self.check_tolerance))
        self.self_check_ = checks
        checks["returned"] = "final"
        if checks["chosen"] == "final":
            return
        act = self.self_check == "fallback" and no_validation and "prior_start" in candidates
        final = checks["candidates"]["final"]
        why = ("it collapsed onto few classes" if final["collapsed"] else
               f"it agrees with the surest half of the prior on {final['confident_agreement']:.3f}, more "
               f"than {self.check_tolerance} below the prior's own expected accuracy there, "
               f"{checks['confident_reference']:.3f}")
        warnings.warn(f"the model after {self.n_iter_} steps fails the checks against its prior ({why}); "
                      + ("returning the model fitted to the prior at the start" if act else
                         "keeping it (self_check='warn', a validation set, or no prior start)"),
                      UserWarning, stacklevel=5)
        if act:
            # resume (warm_start) continues from the trained weights, as after a best-validation choice
            self._last_ema_state = {k: v.detach().cpu().clone() for k, v in self.net_.ema_module_.state_dict().items()}
            self.net_.ema_module_.load_state_dict(start_state)
            self.fell_back_ = True
            self.best_step_ = 0
            checks["returned"] = "prior_start"

    def _check_callbacks(self):
        """``callbacks`` as a list of ``(name, skorch Callback)`` pairs (names must not clash with ours)."""
        return check_user_callbacks(self.callbacks, taken=("epoch_timer", "train_loss", "lr_schedule", "ema"),
                                    taken_prefix="flexmatch_")

    def _check_eval_set(self, X_eval, y_eval, suffix):
        """Validated ``(images, class codes)`` of ``X_<suffix>, y_<suffix>``, or ``(None, None)``."""
        name_X, name_y = f"X_{suffix}", f"y_{suffix}"
        if (X_eval is None) != (y_eval is None):
            raise ValueError(f"{name_X} and {name_y} must be given together")
        if X_eval is None:
            return None, None
        images = self._check_X(X_eval, name=name_X)
        if tuple(images.shape[1:]) != tuple(self.image_shape_):
            check_channels(images, self.image_shape_[0], type(self).__name__, name=name_X,
                           fitted_on="given training")
            check_image_shape_consistent(images, self.image_shape_, name=name_X)
        codes = self._encode(y_eval, name_y)
        if len(codes) != len(images):
            raise ValueError(f"{name_y} has {len(codes)} labels but {name_X} has {len(images)} images")
        return images, codes

    def _accuracy(self, images, codes):
        return float(np.mean(self.net_.predict_logits(images).argmax(1).numpy() == codes))

    def _record(self, window, step, start_time, val_images, y_val_codes):
        def mean(key):
            values = [r[key] for r in window if key in r]
            return float(np.mean(values)) if values else float("nan")

        record = {"step": step, "loss": mean("loss"), "loss_l": mean("loss_l"), "loss_u": mean("loss_u"),
                  "mask_rate": mean("mask"),
                  # the rate of the record's last step (the schedule has moved on to the next one)
                  "lr": float(window[-1]["lr"] if window else self.net_.optimizer_.param_groups[0]["lr"]),
                  "prior": bool(window[-1]["prior"]) if window else False,
                  "seconds": round(time.perf_counter() - start_time, 3)}
        if any("n_pseudo" in r for r in window):
            n = sum(r.get("n_pseudo", 0) for r in window)
            correct = sum(r.get("n_pseudo_correct", 0) for r in window)
            record["pseudo_label_accuracy"] = correct / n if n else float("nan")
        if val_images is not None:
            record["val_accuracy"] = self._accuracy(val_images, y_val_codes)
        if getattr(self, "_monitor", None) is not None:
            record["monitor_accuracy"] = self._accuracy(*self._monitor)
        self.history_.append(record)
        for key, value in record.items():  # skorch opened the epoch's row
            self.net_.history.record(key, value)
        context = self.net_.distributed
        if self.verbose >= 2 and (context is None or context.is_main):
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
            print_line("[PriorGuidedFlexMatch] " + " ".join(parts))
        return record

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X):
        """Class probabilities of the EMA network (eval mode, batch-wise), columns in ``classes_`` order."""
        import torch

        check_is_fitted(self, "net_")
        images = self._check_X(X, fitted=True)
        with torch_threads(resolve_n_threads(self.n_threads)):
            logits = self.net_.predict_logits(images, num_workers=self.num_workers)
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X):
        """Predicted class labels."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def embed(self, X):
        """Penultimate features of the EMA network (``f_semi``), shape (n, out_dim).

        Not named ``transform``: the estimator is a classifier, not a transformer.
        """
        check_is_fitted(self, "net_")
        images = self._check_X(X, fitted=True)
        with torch_threads(resolve_n_threads(self.n_threads)):
            return self.net_.predict_logits(images, features=True, num_workers=self.num_workers).numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.two_d_array = self.image_shape is not None
        tags.target_tags.required = True
        return tags


# ---------------------------------------------------------------------- the estimator's callbacks
class _PriorSchedule(Callback):
    """Eq. 5's switch: before each step, whether the prior guides it; in ``"update"`` mode the
    prior is re-derived at ``T`` and every ``update_every`` steps after it."""

    def __init__(self, estimator, has_prior, switch_iter, update_every, images, y_encoded, data_device):
        self.estimator = estimator
        self.has_prior = has_prior
        self.switch_iter = switch_iter
        self.update_every = update_every
        self.images = images
        self.y_encoded = y_encoded
        self.data_device = data_device

    def on_batch_begin(self, net, training=False, **kwargs):
        import torch

        if not training:
            return
        step, estimator = net.steps_done, self.estimator
        update = estimator.prior_mode == "update"
        if (update and self.has_prior and step >= self.switch_iter
                and (step - self.switch_iter) % self.update_every == 0):
            if net.distributed is not None:  # every rank clusters the same features
                net.distributed.broadcast_buffers(net.module_, net.ema_module_)
            refreshed = estimator._refresh_prior(self.images, self.y_encoded)
            net.set_prior(torch.from_numpy(refreshed).to(self.data_device))
            estimator.prior_updated_ = refreshed
        net.use_prior = self.has_prior and (step < self.switch_iter or update)


class _HistoryRecord(Callback):
    """After each skorch epoch (``eval_every`` steps): the ``history_`` record, validation accuracy
    and the best EMA weights so far (what an interrupted fit keeps)."""

    def __init__(self, estimator, val_images, y_val_codes, best_state=None):
        self.estimator = estimator
        self.val_images = val_images
        self.y_val_codes = y_val_codes
        self.best_state = best_state

    def on_train_begin(self, net, **kwargs):
        self.start_time_ = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        estimator = self.estimator
        record = estimator._record(net.take_window(), net.steps_done, self.start_time_, self.val_images,
                                   self.y_val_codes)
        if self.val_images is None:
            return
        improved = record["val_accuracy"] > estimator.best_score_
        net.history.record("val_accuracy_best", bool(improved))
        if improved:
            estimator.best_score_ = record["val_accuracy"]
            estimator.best_step_ = net.steps_done
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.ema_module_.state_dict().items()})


def _training_images(images, data_device):
    """The training images as the net gathers its batches from them.

    Float images become a float tensor (sharing memory on the CPU). uint8 images held in
    memory become a uint8 ``n x H x W x C`` tensor (the caller's array, not a copy, on the
    CPU; a quarter of the float size on the GPU), converted batch by batch after the gather.
    A memory map, a read-only array or a lazy folder stays a :class:`Uint8Images`, read one
    batch at a time.
    """
    import torch

    from ..utils._image_source import Uint8Images

    if not isinstance(images, Uint8Images):
        return torch.from_numpy(images).to(data_device)
    if images.in_memory:
        raw = torch.from_numpy(images.source)
        return (raw[..., None] if raw.ndim == 3 else raw).to(data_device)
    return images


def _as_image_array(X, name="X"):
    """Turn array-likes into ndarrays and give scikit-learn's messages for the common mistakes."""
    from scipy import sparse

    if sparse.issparse(X):
        raise TypeError(f"{name} is a sparse matrix, but dense images (or dense 2-D features) are required")
    if hasattr(X, "detach") and hasattr(X, "cpu"):
        X = X.detach().cpu().numpy()
    # PIL lists (stacked, or refused naming the sizes), ragged and 1-D input: messages naming X
    X = images_before_array_checks(X, name)
    if getattr(X, "dtype", None) == np.uint8 and len(getattr(X, "shape", ())) in (3, 4):
        return X  # uint8 images (a memory map, a lazy folder too): kept as they are, not copied
    X = np.asarray(X)
    if np.iscomplexobj(X):
        raise ValueError(f"Complex data not supported: {name} must hold real-valued images")
    if X.dtype == object:
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers (uint8 or float images), got dtype object: {exc}") from exc
    if X.ndim == 1:
        raise ValueError(f"Expected 2D array, got 1D array instead: {name} has shape {X.shape}. Reshape your "
                         "data either using array.reshape(-1, 1) if your data has a single feature or "
                         "array.reshape(1, -1) if it contains a single sample.")
    if X.ndim == 2 and X.shape[1] == 0:
        raise ValueError(f"0 feature(s) (shape={X.shape}) while a minimum of 1 is required ({name}).")
    return X


def _identity_view(x, generator=None):
    return x


def _encoder_backbone(encoder):
    """The torch backbone inside a fitted SimSiamEmbedder (``encoder.net_``)."""
    net = getattr(encoder, "net_", None)
    module = getattr(net, "module_", net)
    for attribute in ("backbone", "encoder"):
        candidate = getattr(module, attribute, None)
        if candidate is not None and hasattr(candidate, "forward"):
            return candidate
    for attribute in ("backbone_", "encoder_"):
        candidate = getattr(encoder, attribute, None)
        if candidate is not None and hasattr(candidate, "forward"):
            return candidate
    raise TypeError("encoder: could not find the backbone module of the fitted embedder "
                    "(looked for net_.module_.backbone / .encoder)")


def _infer_dim(backbone, image_shape):
    from ..nn import make_backbone

    return make_backbone(backbone, in_channels=image_shape[0], image_size=image_shape[1:]).out_dim


class _loaded:
    """Temporarily load ``state`` into ``module`` (the original weights come back on exit)."""

    def __init__(self, module, state):
        self.module, self.state = module, state

    def __enter__(self):
        self.saved = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        self.module.load_state_dict(self.state)
        return self.module

    def __exit__(self, *exc):
        self.module.load_state_dict(self.saved)
        return False

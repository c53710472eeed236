"""Self-supervised image features with SimSiam (Chen & He, 2021), as a scikit-learn transformer.

The estimator validates its input and settings, builds the network and holds it, trained, as
the fitted attribute ``net_``; the network and its training loop (a skorch net on the shared
step base, :mod:`as3l_sklearn.nn._step_net`) are in ``_simsiam_net.py``. The net is an
attribute rather than the estimator itself because skorch sets fitted-looking attributes in
``__init__``, which would confuse ``check_is_fitted`` and the estimator checks.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from skorch.callbacks import PassthroughScoring
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_memory, validate_data

from ..augment import SIMSIAM_PRESETS
from ..nn import BACKBONES
from ..utils import check_image_shape_consistent, check_image_size, check_images
from ..nn._callbacks import StepProgress
from ..nn._step_net import TrainingInterruptedWarning, check_user_callbacks
from ..utils._distributed import resolve_training_device
from ..utils._image_source import RawImageDataset, Uint8Images
from ..utils._param_validation import (
    DEVICE,
    N_THREADS,
    RANDOM_STATE,
    HasMethods,
    ImageShape,
    ImageSize,
    Integral,
    Interval,
    MeanStd,
    NamedCallbacks,
    Real,
    StrOptions,
    TorchModule,
    fit_context,
)
from ..utils._torch import TorchPickleMixin, resolve_n_threads, torch_settings, torch_threads
from ..utils._validation import (
    check_channels,
    check_random_state_or_generator,
    image_range,
    images_before_array_checks,
    infer_image_shape,
    warn_on_image_range,
)
# the network's parts; their names here also keep models pickled when they lived in this module loadable
from ._simsiam_net import (  # noqa: F401
    _FeatureMonitor,
    _KNNMonitor,
    _PlainPrintLog,
    _SimSiamCriterion,
    _SimSiamModule,
    _SimSiamNet,
    _ViewsForward,
    effective_rank,
    knn_loo_accuracy,
    normalized_std,
    step_learning_rate,
)

#: optimizer steps of one fit when ``max_epochs="auto"`` and ``max_steps="auto"``. CPU: chosen
#: by measurement (docs/results.md) so that 28x28 images train in about 2.5 minutes on one
#: core of a shared 2-core machine, whatever their number; CUDA: about 800 SimSiam epochs of
#: CIFAR-10 at batch 512.
AUTO_STEPS = {"cpu": 1_000, "cuda": 80_000}
AUTO_BATCH_SIZE = {"cpu": 64, "cuda": 512}
#: ``lr="auto"``: base rate of the square-root rule ``lr * sqrt(batch_size / 256)``. CUDA:
#: SimSiam's CIFAR rate (0.06 at batch 512). CPU: measured for short runs, which need larger
#: steps than the paper's 800 epochs (0.3 at batch 64; on the tuning split 0.1, 0.2 and 0.3 at
#: batch 64 reached kNN-20 0.812, 0.821 and 0.823).
AUTO_LR = {"cpu": 0.6, "cuda": 0.06 / np.sqrt(2.0)}
#: (projector width, predictor bottleneck) for ``"auto"``: SimSiam's on CUDA; a quarter on
#: CPU, where a 2048-wide projector costs more than a small encoder
AUTO_HEAD_DIMS = {"cpu": (512, 128), "cuda": (2048, 512)}
#: longest image side the encoder sees with ``image_size="auto"``; larger images are
#: downscaled (aspect ratio kept). On CPU, 32 px keeps a 90-px photo folder at the cost of
#: 28x28 Fashion-MNIST per image instead of 10x that.
AUTO_MAX_SIDE = {"cpu": 32, "cuda": 224}
#: fraction of the steps spent on a linear learning-rate warm-up (large short-run rates
#: destabilise the randomly initialised BatchNorm statistics in the first steps otherwise)
WARMUP_FRACTION = 0.05
#: a fit is flagged as collapsed when ``feature_std`` (see the docstring) ends below this
COLLAPSE_THRESHOLD = 0.02
#: training images the label-free monitors look at after every epoch
MONITOR_SAMPLES = 512


class CollapseWarning(UserWarning):
    """The encoder's features collapsed: every image maps to (nearly) the same direction."""


#: the step bar is shared with FlexMatch (``as3l_sklearn.nn._callbacks``); this name stays so
#: that nets pickled with the bar before it moved still load
_StepProgress = StepProgress


#: names of the net's default callbacks and of the estimator's own (``_fit_callbacks``)
_OWN_CALLBACKS = ("epoch_timer", "train_loss", "valid_loss", "print_log", "lr_schedule",
                  "p_std", "feature_monitor", "knn_monitor", "step_progress")


def _encode(fingerprint, images, net):
    """Encoder features of ``images``; ``fingerprint`` identifies the weights for caching."""
    # uint8 images are read (and converted) one batch at a time
    data = RawImageDataset(images) if isinstance(images, Uint8Images) else images
    return net.forward(data).numpy().astype(np.float32, copy=False)


def _batch_sizes(batch_size, context):
    """``(global, per-process)`` batch sizes: under DDP each rank takes ``batch_size / world_size``
    images of every global batch (the global size rounded down to a multiple)."""
    if context is None:
        return batch_size, batch_size
    local_batch_size = batch_size // context.world_size
    if local_batch_size < 2:
        raise ValueError(f"batch_size={batch_size} over {context.world_size} processes leaves "
                         f"{local_batch_size} image(s) per process; BatchNorm needs 2: raise batch_size")
    return local_batch_size * context.world_size, local_batch_size


# --------------------------------------------------------------------------- estimator
class SimSiamEmbedder(TorchPickleMixin, TransformerMixin, BaseEstimator):
    """Self-supervised image features (``f_self``) learned with SimSiam.

    ``fit`` trains a SimSiam network (Chen & He, "Exploring Simple Siamese Representation
    Learning", CVPR 2021) on unlabeled images: a shared encoder, a 3-layer projector with
    BatchNorm (the last without affine parameters) and a 2-layer bottleneck predictor,
    trained on two random augmentations of each image with the symmetric negative cosine
    loss and a stop-gradient on the projector branch. ``transform`` runs the encoder in
    evaluation mode (no augmentation) and returns its features, the ``f_self`` of the AS3L
    paper (section 3.2), which :class:`ClusterFineTuner` then fine-tunes.

    With ``max_epochs=0`` nothing is trained: the estimator is a frozen feature extractor
    for your own pretrained encoder (see :func:`as3l_sklearn.nn.pretrained_backbone`); with
    ``max_epochs > 0`` SimSiam continues from the encoder's weights.

    Parameters
    ----------
    backbone : {"auto", "small_cnn", "small_cnn_2x2", "resnet18_cifar", "wrn28_2", "resnet18"} or torch.nn.Module, default="auto"
        Encoder. ``"auto"`` depends on the device and on the size the encoder sees
        (:func:`as3l_sklearn.nn.auto_backbone_name`): ``"small_cnn_2x2"`` (512-d) on CPU;
        on CUDA ``"resnet18_cifar"`` (the SimSiam CIFAR setting) up to 64 px and
        torchvision's ``"resnet18"`` above. The AS3L paper uses the semi-supervised network,
        e.g. ``"wrn28_2"`` for CIFAR-10 (its BatchNorm momentum is fitted to the number of
        steps, :func:`as3l_sklearn.nn.wrn_bn_momentum`). A module (mapping
        ``(n, C, H, W)`` to ``(n, d)``, e.g. from
        :func:`~as3l_sklearn.nn.pretrained_backbone`) is deep-copied at fit, so the
        parameter itself is never trained; a module that only takes 3 channels gets
        grayscale images repeated to RGB.
    image_size : "auto", int, tuple of (int, int) or None, default="auto"
        Size the encoder sees: images are resized (bilinear, antialiased) to it, once before
        training (the views are then drawn at that size) and inside the encoder for
        ``transform``, so any input of the fitted shape works. ``"auto"``
        keeps the input size up to a longest side of 32 px on CPU (224 px on CUDA) and
        downscales larger images to that side, keeping the aspect ratio; ``None`` always
        keeps the input size. For a pretrained encoder give the size it was trained at
        (e.g. 224).
    normalize : "imagenet", tuple (mean, std) or None, default=None
        Per-channel normalisation applied inside the encoder, after the augmentation and
        resize (which work on values in [0, 1]): ``(mean, std)`` sequences with one value
        or one per channel, or ``"imagenet"`` for torchvision's ImageNet statistics (what
        its pretrained models expect).
    projector_dim : int or "auto", default="auto"
        Hidden and output width of the projector. ``"auto"``: SimSiam's 2048 on CUDA, 512
        on CPU (there the 2048-wide projector takes about two thirds of the training time
        of ``small_cnn``).
    predictor_dim : int or "auto", default="auto"
        Bottleneck width of the predictor. ``"auto"``: SimSiam's 512 on CUDA, 128 on CPU
        (a quarter of the projector width, as in SimSiam).
    max_epochs : int or "auto", default="auto"
        Training epochs; 0 trains nothing (frozen encoder). ``"auto"``: the length is set by
        ``max_steps`` instead.
    max_steps : int or "auto", default="auto"
        The training budget in optimizer steps, used when ``max_epochs="auto"`` (training
        may end inside an epoch). ``"auto"``: 1,000 steps on CPU (measured: about 2.5
        minutes for 28x28 images with the default backbone on one core of a shared 2-core
        machine, whatever the number of images) and 80,000 on CUDA (about 800 epochs of CIFAR-10 at batch 512). Counting
        steps rather than images seen keeps the budget meaningful at any batch size.
    batch_size : int or "auto", default="auto"
        Images per step, at least 2, clipped to the number of samples (the last incomplete batch
        of an epoch is dropped, as BatchNorm needs at least 2 images). ``"auto"``: 512 on CUDA
        (SimSiam's CIFAR setting), 64 on CPU (measured best for a fixed CPU time).
    lr : float or "auto", default="auto"
        Base learning rate at batch 256, > 0; the SGD rate is ``lr * sqrt(batch_size / 256)``
        (square-root scaling: linear scaling shrinks the rate 8x at batch 32, which left
        short CPU runs barely moving). It rises linearly over the first 5 % of the steps,
        then follows a cosine to 0 at the last step. ``"auto"``: 0.042 on CUDA (SimSiam's
        0.06 at batch 512) and 0.6 on CPU (0.3 at batch 64; short runs need larger steps).
    momentum : float, default=0.9
        SGD momentum, in [0, 1).
    weight_decay : float, default=5e-4
        SGD weight decay, >= 0 (SimSiam's CIFAR setting).
    device : str, default="auto"
        torch device; ``"auto"`` uses CUDA when available.
    image_shape : tuple of (C, H, W) or None, default=None
        Shape used to un-flatten 2-D input ``X`` of shape ``(n, C*H*W)``; needed only for
        flattened images (e.g. inside a scikit-learn pipeline over tabular arrays). One
        entry may be ``-1``, inferred from the number of features as in ``numpy.reshape``.
        Flattened ``uint8`` values are scaled to [0, 1] like uint8 images; float values are fed as they are.
    memory : str, joblib.Memory or None, default=None
        Caches :meth:`transform` results, keyed on the images and a digest of the weights
        as they are at the call (so ``net_.load_params`` never returns stale features).
    augment : "auto", "grayscale", "rgb", "simsiam" or callable, default="auto"
        How a random view is drawn (:class:`as3l_sklearn.augment.SimSiamAugment`):
        ``"grayscale"`` is the recipe measured on small grayscale images, ``"rgb"`` (same as
        ``"simsiam"``) SimSiam's CIFAR recipe for colour photos, and ``"auto"`` picks by the
        number of channels; the ranges are in :data:`as3l_sklearn.augment.SIMSIAM_PRESETS`.
        A callable ``aug(x, generator=None)`` taking and returning a float
        ``(n, C, H, W)`` tensor (at the size the encoder sees) on the training device replaces it (e.g. no flips for images
        whose orientation matters). It is deep-copied at fit and must be picklable (a
        ``torch.nn.Module`` or a module-level function, not a lambda).
    amp : bool or "auto", default="auto"
        Mixed precision during training and ``transform`` on CUDA: bfloat16 autocast, or
        float16 with a gradient scaler on GPUs without bfloat16 (``"auto"``: on when the
        device is CUDA). Ignored on CPU.
    callbacks : list of (name, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks for the training loop (e.g. checkpoints, early stopping; an
        ``EarlyStopping`` that ends the fit is not reported as an interruption). The names of
        skorch's defaults (``epoch_timer``, ``train_loss``, ``valid_loss``, ``print_log``) and
        of ours (``lr_schedule``, ``p_std``, ``feature_monitor``, ``knn_monitor``,
        ``step_progress``) are taken; the fitted ``net_`` keeps the given callbacks, not ours.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds weight initialisation, batch order and augmentations; on CPU the same value
        (and the same ``n_threads``) gives the same features. A ``Generator`` is accepted: one
        seed is drawn from it. torch's global generator is left as it was.
    n_threads : int, "auto" or None, default="auto"
        torch CPU threads used during ``fit`` and ``transform`` (the caller's setting is
        restored after). CPU results depend on the thread count, so a fixed count makes the
        same seed give the same weights whatever the caller set, in a joblib worker
        (``GridSearchCV(n_jobs=2)``) or not. ``"auto"``: ``min(4, os.cpu_count())``;
        ``None``: keep torch's current setting (then not reproducible across callers).
    num_workers : int, default=0
        DataLoader worker processes that read the images of each batch during ``fit`` and
        ``transform``. uint8 images (arrays, ``np.memmap`` arrays, lazy image folders from
        ``load_image_folder(..., lazy=True)``) stay uint8 and are converted to float one batch
        at a time; workers pay off when reading a batch is slow (decoding a lazy folder,
        memory maps on a slow disk). 0 reads in the main process. Workers only read: the
        augmentations are drawn in the main process, so the result does not depend on it.
    verbose : int, default=0
        0 silent; 1 shows one progress bar (tqdm, on stderr) over the optimizer steps of the
        fit, with its ETA and the last epoch's loss; 2 prints skorch's table, a row per epoch
        (loss and the monitors below), without colour codes when stdout is not a terminal.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network. ``net_.history`` holds, per epoch, ``train_loss`` (between -1
        and 1; lower is better) and three label-free monitors: ``p_std``, the spread of the
        L2-normalised predictor outputs during training, and, on up to 512 clean training
        images after the epoch, ``feature_std``, the same spread of the encoder features
        (both :func:`normalized_std`: about 1 for outputs spread over all directions, 0 on
        collapse), and ``feature_rank``, their effective rank (:func:`effective_rank`, a
        label-free quality signal); with ``monitor``, also ``knn_acc``.
    collapsed_ : bool
        Whether the last ``feature_std`` fell below 0.02 (a :class:`CollapseWarning` is
        emitted too); ``False`` when nothing was trained.
    image_shape_ : tuple of (C, H, W)
        Image shape seen in ``fit``; ``transform`` requires the same.
    image_size_ : tuple of (int, int)
        Size the encoder sees (after the resize of ``image_size``).
    n_features_in_ : int
        ``C * H * W``.
    n_features_out_ : int
        Feature dimension ``d`` of the encoder.
    n_epochs_ : int
        Epochs started (the last may be partial under a step budget; fewer after a Ctrl-C).
    n_steps_ : int
        Optimizer steps taken.
    max_epochs_, max_steps_, batch_size_, projector_dim_, predictor_dim_ : int
        The resolved budget and sizes.
    lr_ : float
        The peak SGD learning rate (after the square-root rule).
    backbone_ : str
        The architecture name ``"auto"`` resolved to (``"custom"`` for a module).
    device_ : str
        Device the network runs on: the training device, or ``"cpu"`` after a model fitted on
        CUDA was unpickled where CUDA is missing (a ``CUDAToCPUWarning`` says so).
    torch_settings_ : dict
        What ``fit`` ran with: ``n_threads``, ``threads_fixed``, ``deterministic_algorithms``,
        ``cudnn_deterministic``, ``device`` and ``torch_version`` (see ``docs/embedding.md``,
        "Reproducibility").
    input_range_ : dict
        The value scale of the training images (``uint8`` or not, ``min``, ``max`` after
        scaling); ``transform`` warns with an ``ImageRangeWarning`` when ``X`` is on another.
    distributed_ : dict or None
        ``{"world_size": N, "backend": ...}`` when ``fit`` ran under ``torchrun`` with DDP
        (batches sharded over the ranks, every rank ends with the same weights), else ``None``.

    See Also
    --------
    ClusterFineTuner : fine-tunes these features for clustering (AS3L Eq. 1).
    as3l_sklearn.nn.pretrained_backbone : a torchvision model or module with local weights.

    Notes
    -----
    Differences from the SimSiam paper: the budget is counted in optimizer steps, the
    learning rate follows a square-root batch rule with a short warm-up and its CPU value is
    larger (measured for short runs); the predictor's learning rate is annealed like the
    rest (the ImageNet recipe keeps it fixed; CIFAR reproductions usually anneal it); on CPU
    the heads are a quarter of SimSiam's width and the default budget is far below its 800
    epochs (see ``docs/results.md`` for what it reaches).

    Pressing Ctrl-C during ``fit`` stops training, keeps the weights reached so far,
    emits a :class:`TrainingInterruptedWarning` and leaves a usable fitted estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import SimSiamEmbedder
    >>> X = np.random.RandomState(0).randint(0, 256, size=(32, 8, 8, 1), dtype=np.uint8)
    >>> embedder = SimSiamEmbedder(backbone="small_cnn", projector_dim=32, predictor_dim=8,
    ...                            max_steps=4, batch_size=16, device="cpu", random_state=0)
    >>> embedder.fit_transform(X).shape
    (32, 128)
    >>> embedder.n_steps_
    4
    """

    _parameter_constraints: dict = {
        "backbone": [StrOptions({"auto", *BACKBONES}), TorchModule()],
        "image_size": [StrOptions({"auto"}), ImageSize(2), None],
        "normalize": [StrOptions({"imagenet"}), MeanStd(), None],
        "projector_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "predictor_dim": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "max_steps": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        # SimSiam's BatchNorm layers need 2 images per batch
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "device": DEVICE,
        "image_shape": [ImageShape(inferred=True), None],
        "memory": [None, str, HasMethods(["cache"])],
        "augment": [StrOptions({"auto", "simsiam", *SIMSIAM_PRESETS}), callable],
        "amp": ["boolean", StrOptions({"auto"})],
        "callbacks": [NamedCallbacks(), None],
        "random_state": RANDOM_STATE,
        "n_threads": N_THREADS,
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        backbone="auto",
        *,
        image_size="auto",
        normalize=None,
        projector_dim="auto",
        predictor_dim="auto",
        max_epochs="auto",
        max_steps="auto",
        batch_size="auto",
        lr="auto",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        device: str = "auto",
        image_shape=None,
        memory=None,
        augment="auto",
        amp="auto",
        callbacks=None,
        random_state=None,
        n_threads="auto",
        num_workers: int = 0,
        verbose: int = 0,
    ):
        self.backbone = backbone
        self.image_size = image_size
        self.normalize = normalize
        self.projector_dim = projector_dim
        self.predictor_dim = predictor_dim
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.device = device
        self.image_shape = image_shape
        self.memory = memory
        self.augment = augment
        self.amp = amp
        self.callbacks = callbacks
        self.random_state = random_state
        self.n_threads = n_threads
        self.num_workers = num_workers
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self, n_samples: int, device: str) -> dict:
        """The training settings with the ``"auto"`` values filled in.

        The parameters themselves are checked by ``_parameter_constraints`` when ``fit``
        starts; what is left here depends on the data or on two parameters together.
        """
        kind = "cuda" if device.startswith("cuda") else "cpu"
        auto_projector, auto_predictor = AUTO_HEAD_DIMS[kind]
        head_dims = (auto_projector if self.projector_dim == "auto" else int(self.projector_dim),
                     auto_predictor if self.predictor_dim == "auto" else int(self.predictor_dim))
        lr = AUTO_LR[kind] if isinstance(self.lr, str) else float(self.lr)
        batch_size = AUTO_BATCH_SIZE[kind] if isinstance(self.batch_size, str) else int(self.batch_size)
        batch_size = min(batch_size, n_samples)  # at least 2: fit refuses fewer samples
        steps_per_epoch = n_samples // batch_size  # the incomplete last batch is dropped
        steps_auto = isinstance(self.max_steps, str)
        if isinstance(self.max_epochs, str):  # "auto": the budget is in steps
            max_steps = AUTO_STEPS[kind] if steps_auto else int(self.max_steps)
            max_epochs = -(-max_steps // steps_per_epoch)
        elif not steps_auto:
            raise ValueError(
                f"max_epochs={self.max_epochs!r} and max_steps={self.max_steps!r}: give one budget; "
                "leave the other at 'auto'"
            )
        else:
            max_epochs = int(self.max_epochs)
            max_steps = max_epochs * steps_per_epoch
        return {
            "max_epochs": max_epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            # square-root scaling: see the lr parameter
            "lr": lr * float(np.sqrt(batch_size / 256)),
            "callbacks": list(self.callbacks or []),
            "head_dims": head_dims,
        }

    def _resolve_image_size(self, size: tuple, device: str) -> tuple:
        """The ``(H, W)`` the encoder sees, from ``image_size`` and the input size."""
        if self.image_size is None:
            return tuple(size)
        if isinstance(self.image_size, str):  # "auto"
            cap = AUTO_MAX_SIDE["cuda" if device.startswith("cuda") else "cpu"]
            longest = max(size)
            if longest <= cap:
                return tuple(size)
            return tuple(max(2, int(round(side * cap / longest))) for side in size)
        return check_image_size(self.image_size, minimum=2, name="image_size")

    def _resolve_normalize(self, channels: int):
        """``(mean, std)`` tuples of the normalisation (``(None, None)`` for none); one value,
        or one per channel of ``X``."""
        if self.normalize is None:
            return None, None
        if isinstance(self.normalize, str):  # "imagenet"
            from ..nn import IMAGENET_MEAN, IMAGENET_STD

            return IMAGENET_MEAN, IMAGENET_STD
        mean, std = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in self.normalize)
        if len(mean) not in (1, channels, 3):
            raise ValueError(
                f"normalize holds {len(mean)} values per statistic, but X has {channels} channel(s): give "
                f"one mean and one std per channel or a single pair, got {self.normalize!r}"
            )
        return tuple(mean.tolist()), tuple(std.tolist())

    def _validate_images(self, X, *, reset: bool) -> np.ndarray:
        """Images as float32 ``n x C x H x W``; records or checks the fitted image shape.

        2-D (tabular) input first goes through scikit-learn's own checks, so that sparse,
        complex, object, empty or non-finite arrays and feature-name mismatches fail with
        scikit-learn's usual messages; it is then un-flattened with ``image_shape``.
        """
        # PIL lists (stacked, or refused naming the sizes), ragged and 1-D input: messages naming X
        X = images_before_array_checks(X, "X")
        ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
        if ndim <= 2 or sp.issparse(X):
            X2 = check_array(X, dtype="numeric", ensure_all_finite=True, input_name="X", estimator=self)
            validate_data(self, X, skip_check_array=True, reset=reset)
            shape = infer_image_shape(self.image_shape, X2.shape[1]) if reset else self.image_shape_
            images = check_images(X2, image_shape=shape, name="X")
        else:
            # uint8 images (arrays, memory maps, lazy folders) are kept, not converted whole
            images = check_images(X, name="X", lazy=True)
            if reset:
                self.n_features_in_ = int(np.prod(images.shape[1:]))
                self.__dict__.pop("feature_names_in_", None)
        if reset:
            self.image_shape_ = tuple(int(s) for s in images.shape[1:])
            self.input_range_ = image_range(images, X)
        else:
            check_channels(images, self.image_shape_[0], type(self).__name__)
            check_image_shape_consistent(images, self.image_shape_, name="X")
            warn_on_image_range(self.input_range_, images, X, type(self).__name__)
        return images

    def _build_module(self, channels: int, size: tuple, encoder_size: tuple, head_dims: tuple, expected_steps: int, device: str):
        from ..nn import ImageInput, SimSiamPredictor, SimSiamProjector, auto_backbone_name, make_backbone

        backbone = self.backbone
        if isinstance(backbone, torch.nn.Module):
            backbone = copy.deepcopy(backbone)
            name = "custom"
        elif isinstance(backbone, str):
            name = auto_backbone_name(channels, encoder_size, device) if backbone == "auto" else backbone
        else:
            raise TypeError(
                f"backbone must be a name ('auto', 'small_cnn', 'small_cnn_2x2', 'resnet18_cifar', 'wrn28_2', 'resnet18') or a "
                f"torch.nn.Module, got {type(backbone).__name__}"
            )
        mean, std = self._resolve_normalize(channels)
        encoder_channels = channels
        if name == "custom" and channels == 1 and not _module_takes(backbone, 1, encoder_size):
            if _module_takes(backbone, 3, encoder_size):
                encoder_channels = 3  # e.g. an ImageNet network: grayscale images repeated to RGB
        try:
            encoder = make_backbone(
                backbone if name == "custom" else name, in_channels=encoder_channels, image_size=encoder_size,
                device=device, expected_steps=max(int(expected_steps), 1),
            )
        except ValueError as exc:
            if "small" in str(exc) or "dummy" in str(exc):
                raise ValueError(
                    f"X has images of {size[0]}x{size[1]} pixels with {channels} channel(s) (encoder input "
                    f"{encoder_size[0]}x{encoder_size[1]}), which the backbone {self.backbone!r} cannot encode: {exc}"
                ) from exc
            raise
        if mean is not None and len(mean) not in (1, encoder_channels):
            raise ValueError(f"normalize has {len(mean)} values per statistic; the encoder takes {encoder_channels} channels")
        if encoder_size != tuple(size) or mean is not None or encoder_channels != channels:
            encoder = ImageInput(
                encoder, image_size=None if encoder_size == tuple(size) else encoder_size, mean=mean, std=std,
                in_channels=encoder_channels if encoder_channels != channels else None,
            )
        # a user module may still fail on these images (e.g. too many poolings): try it now,
        # in eval mode so that BatchNorm statistics are untouched
        _check_encoder_fits(encoder, channels, size, self.backbone)
        projector_dim, predictor_dim = head_dims
        projector = SimSiamProjector(encoder.out_dim, hidden_dim=projector_dim, out_dim=projector_dim)
        predictor = SimSiamPredictor(projector_dim, hidden_dim=predictor_dim)
        # the views are drawn at the size the encoder sees (see fit)
        return _SimSiamModule(encoder, projector, predictor, self._build_augment(channels, encoder_size)), name

    def _build_augment(self, channels: int, size: tuple):
        from ..augment import SIMSIAM_PRESETS, SimSiamAugment

        if isinstance(self.augment, str):
            names = ("auto", "simsiam", *SIMSIAM_PRESETS)
            if self.augment not in names:
                raise ValueError(f"augment must be one of {names} or a callable aug(x, generator=None), got {self.augment!r}")
            if min(size) < 2:
                raise ValueError(
                    f"X has images of {size[0]}x{size[1]} pixels; SimSiam's random resized crops need at "
                    "least 2x2 pixels (pass a custom augment for such data)"
                )
            preset = {"auto": "rgb" if channels == 3 else "grayscale", "simsiam": "rgb"}.get(self.augment, self.augment)
            return SimSiamAugment.from_preset(preset, image_size=size, channels=channels)
        if not callable(self.augment):
            raise TypeError(
                f"augment must be a preset name or a callable aug(x, generator=None), got {type(self.augment).__name__}"
            )
        return copy.deepcopy(self.augment)

    # ------------------------------------------------------------------ fit
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, *, monitor=None):
        """Train SimSiam on the images ``X`` (or only build the encoder, with ``max_epochs=0``).

        Parameters
        ----------
        X : array-like
            ``uint8`` images ``n x H x W x C`` (or ``n x H x W``), float images
            ``n x C x H x W`` (values as they should be fed to the network, e.g. in
            [0, 1]), or 2-D ``n x (C*H*W)`` with ``image_shape``. uint8 images are kept
            as given (a ``np.memmap`` or a lazy ``ImageFolderArray`` too) and converted one
            batch at a time.
        y : None
            Ignored (self-supervised).
        monitor : tuple (X_monitor, y_monitor), optional
            Labelled images to watch progress on: after every epoch the leave-one-out
            kNN (k=20, cosine) accuracy of their features is recorded as ``knn_acc`` in
            ``net_.history``. Labels are used for monitoring only, never for training.
            In a Pipeline pass it as ``pipe.fit(X, embed__monitor=(X_val, y_val))``.

        Returns
        -------
        self : SimSiamEmbedder
        """
        n_threads = resolve_n_threads(self.n_threads)
        # CPU results depend on the thread count: fit with a fixed one, restore the caller's after
        with torch_threads(n_threads):
            self._fit(X, monitor)
        self.torch_settings_ = torch_settings(n_threads, self.device_)
        return self

    def _fit(self, X, monitor):
        images = self._validate_images(X, reset=True)
        n_samples, channels, height, width = images.shape
        if n_samples < 2:
            raise ValueError(f"X has {n_samples} sample(s); SimSiam needs at least 2 images (BatchNorm)")
        device, context = resolve_training_device(self.device)
        settings = self._check_params(n_samples, device)
        check_user_callbacks(settings["callbacks"], taken=_OWN_CALLBACKS)
        num_workers = int(self.num_workers)
        batch_size, local_batch_size = _batch_sizes(settings["batch_size"], context)
        encoder_size = self._resolve_image_size((height, width), device)
        rng = check_random_state_or_generator(self.random_state)
        init_seed, order_seed, augment_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        if context is not None:
            augment_seed += 7919 * context.rank  # different views on every rank
        probe = np.sort(np.random.RandomState(order_seed).permutation(n_samples)[:MONITOR_SAMPLES])
        fit_callbacks = self._fit_callbacks(images[probe], monitor, settings["max_steps"], context)

        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(init_seed)
            module, backbone_name = self._build_module(
                channels, (height, width), encoder_size, settings["head_dims"], settings["max_steps"], device
            )
            # the named backbones are safe with NHWC strides; a user module may .view() them
            if isinstance(self.backbone, str):
                module.encoder.to(memory_format=torch.channels_last)
            net = self._make_net(module, settings, device, (batch_size, local_batch_size), num_workers, context,
                                 seeds=(order_seed, augment_seed), input_size=encoder_size).initialize()
            if settings["max_epochs"] > 0:
                # downscale once, then draw the views at the encoder's size: cropping a 90-px
                # photo and shrinking every view to 32 px cost 8x the augmentation time for
                # the same views (the encoder's own resize then has nothing to do)
                # uint8 images stay uint8: the net converts (and resizes) each batch
                data = RawImageDataset(images) if isinstance(images, Uint8Images) else _resize_images(images, encoder_size)
                net.fit_steps(data, None, fit_callbacks=fit_callbacks, distributed=context)
        # max_epochs=0: a frozen encoder, the module as built
        self.distributed_ = None if context is None else context.as_report()
        self._set_fitted(net, settings, device, batch_size, backbone_name, encoder_size)

    def _fit_callbacks(self, probe_images, monitor, max_steps, context) -> list:
        """The estimator's callbacks of one fit: the label-free monitors, the kNN monitor, the step bar."""
        callbacks = [
            ("p_std", PassthroughScoring(name="p_std", on_train=True, lower_is_better=False)),
            ("feature_monitor", _FeatureMonitor(probe_images)),
        ]
        if monitor is not None:
            callbacks.append(("knn_monitor", _KNNMonitor(*self._check_monitor(monitor), k=20)))
        if self.verbose == 1 and (context is None or context.is_main):
            # one bar for the whole fit (total steps, ETA) instead of a table row per epoch
            callbacks.append(("step_progress", _StepProgress(max_steps, type(self).__name__)))
        return callbacks

    def _make_net(self, module, settings, device, batch_sizes, num_workers, context, *, seeds, input_size):
        """The skorch net for ``module``; ``batch_sizes`` are ``(global, this process's share)``."""
        order_seed, augment_seed = seeds
        max_steps = settings["max_steps"]
        is_main = context is None or context.is_main
        return _SimSiamNet(
            module=module,
            criterion=_SimSiamCriterion,
            optimizer=torch.optim.SGD,
            optimizer__momentum=self.momentum,
            optimizer__weight_decay=self.weight_decay,
            lr=settings["lr"],
            max_epochs=settings["max_epochs"],
            max_steps=max_steps,
            warmup_steps=int(np.ceil(WARMUP_FRACTION * max_steps)),
            batch_size=batch_sizes[1],
            iterator_train__drop_last=True,
            iterator_valid__batch_size=max(batch_sizes[0], 256),
            iterator_train__num_workers=num_workers,
            iterator_valid__num_workers=num_workers,
            train_split=None,
            callbacks=settings["callbacks"],
            device=device,
            verbose=int(self.verbose >= 2 and is_main),  # skorch's per-epoch table
            amp=self.amp if self.amp != "auto" else device.startswith("cuda"),
            order_seed=order_seed,
            augment_seed=augment_seed,
            channels_last=isinstance(self.backbone, str),  # as the encoder was laid out in _fit
            input_size=tuple(input_size),
        )

    def _set_fitted(self, net, settings, device, batch_size, backbone_name, encoder_size):
        """The fitted attributes of a trained ``net``; warns on collapse or after a Ctrl-C."""
        self.net_ = net
        self.device_ = device
        self.max_epochs_ = settings["max_epochs"]
        self.max_steps_ = settings["max_steps"]
        self.batch_size_ = batch_size
        self.lr_ = settings["lr"]
        self.backbone_ = backbone_name
        self.image_size_ = tuple(int(s) for s in encoder_size)
        self.n_epochs_ = sum(1 for row in net.history if "train_loss" in row)
        self.n_steps_ = int(net.steps_done)
        self.n_features_out_ = int(net.module_.encoder.out_dim)
        self.projector_dim_, self.predictor_dim_ = settings["head_dims"]
        feature_std = [row["feature_std"] for row in net.history if "feature_std" in row]
        self.collapsed_ = bool(feature_std) and feature_std[-1] < COLLAPSE_THRESHOLD
        if self.collapsed_:
            warnings.warn(
                f"SimSiamEmbedder: the encoder features collapsed (feature_std {feature_std[-1]:.3g} < "
                f"{COLLAPSE_THRESHOLD}; about 1 when healthy): every image maps to nearly the same direction. "
                "Try a smaller lr, a larger batch_size or a different backbone",
                CollapseWarning,
                stacklevel=4,
            )
        if net.training_interrupted():
            warnings.warn(
                f"SimSiamEmbedder.fit was interrupted after {self.n_epochs_} of {self.max_epochs_} epochs; "
                "the estimator keeps the weights reached so far and is usable",
                TrainingInterruptedWarning,
                stacklevel=4,
            )

    def _check_monitor(self, monitor):
        if not (isinstance(monitor, (tuple, list)) and len(monitor) == 2):
            raise TypeError("monitor must be a pair (X_monitor, y_monitor) of labelled images")
        images = check_images(monitor[0], image_shape=self.image_shape, name="monitor[0]")
        check_image_shape_consistent(images, self.image_shape_, name="monitor[0]")
        labels = np.asarray(monitor[1])
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"monitor[1] must hold one label per monitoring image ({images.shape[0]}), got shape {labels.shape}"
            )
        if images.shape[0] < 2:
            raise ValueError("monitor needs at least 2 labelled images")
        return images, labels

    # ------------------------------------------------------------------ transform
    def transform(self, X):
        """Encoder features ``f_self`` of the images ``X`` (evaluation mode, no augmentation).

        Parameters
        ----------
        X : array-like
            Images in any layout accepted by :meth:`fit`, of the same ``(C, H, W)``.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        images = self._validate_images(X, reset=False)
        with torch_threads(resolve_n_threads(self.n_threads)):
            if self.memory is None:
                return np.ascontiguousarray(_encode(None, images, self.net_), dtype=np.float32)
            encode = check_memory(self.memory).cache(_encode, ignore=["net"])
            # keyed on the weights as they are now, not as fit left them: after
            # net_.load_params (or any change of the weights) the old entries must not match
            fingerprint = _weights_fingerprint(self.net_.module_, self.image_size_)
            return np.ascontiguousarray(encode(fingerprint, images, self.net_), dtype=np.float32)

    def get_feature_names_out(self, input_features=None):
        """Output feature names ``simsiam0, simsiam1, ...``.

        Parameters
        ----------
        input_features : ignored

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        return np.asarray([f"simsiam{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def __setstate__(self, state):
        super().__setstate__(state)
        # a net trained on CUDA and loaded where there is none comes back on CPU (skorch
        # maps the weights); record that so transform runs where the weights are
        if hasattr(self, "net_"):
            self.device_ = str(self.net_.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        return tags


def _resize_images(images: np.ndarray, size: tuple) -> np.ndarray:
    """Float images resized (bilinear, antialiased) to ``size``, in chunks; as they are if already that size."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = np.empty((images.shape[0], images.shape[1], *size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(images), 1024):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + 1024], dtype=np.float32))
            out[start : start + 1024] = torch.nn.functional.interpolate(
                chunk, size=tuple(size), mode="bilinear", align_corners=False, antialias=True
            ).numpy()
    return out


def _module_takes(module, channels, size) -> bool:
    """Whether ``module`` runs on a dummy batch of ``channels``-channel images (eval mode, no grad)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(2, channels, *size))
        return True
    except Exception:  # noqa: BLE001 - any failure means it does not take these images
        return False
    finally:
        module.train(was_training)


def _check_encoder_fits(encoder, channels, size, name):
    dummy = torch.zeros(2, channels, *size)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            out = encoder(dummy)
    except Exception as exc:  # noqa: BLE001 - any failure means the images do not fit
        raise ValueError(
            f"X has images of {size[0]}x{size[1]} pixels with {channels} channel(s), which the backbone "
            f"{name!r} cannot encode ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        encoder.train(was_training)
    if out.ndim != 2:
        raise ValueError(f"backbone {name!r} must return (n, d) features, got shape {tuple(out.shape)}")


def _weights_fingerprint(module, image_size=None) -> str:
    """Digest of everything ``transform``'s output depends on: the architecture and every weight and buffer."""
    import joblib

    weights = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return joblib.hash((repr(module), tuple(image_size or ()), weights))

"""Self-supervised image features with SimSiam (Chen & He, 2021), as a scikit-learn transformer.

The training loop is a :class:`skorch.NeuralNet` subclass (two augmented views per image,
symmetric negative cosine loss with stop-gradient) held as the fitted attribute ``net_`` of
a plain scikit-learn estimator: skorch sets fitted-looking attributes in ``__init__``, which
would confuse ``check_is_fitted`` and the estimator checks if the estimator *were* the net.
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler, PassthroughScoring, ProgressBar
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, check_memory, validate_data

from ..utils import check_image_shape_consistent, check_images, check_positive_int, resolve_device

#: images seen per fit when ``max_epochs="auto"`` (epochs = budget / n_samples, clipped)
AUTO_EPOCH_BUDGET = {"cpu": 100_000, "cuda": 20_000_000}
AUTO_EPOCH_RANGE = (10, 800)
AUTO_BATCH_SIZE = {"cpu": 128, "cuda": 512}
#: (projector width, predictor bottleneck) for ``"auto"``: SimSiam's on CUDA; a quarter on
#: CPU, where a 2048-wide projector costs more than a small encoder
AUTO_HEAD_DIMS = {"cpu": (512, 128), "cuda": (2048, 512)}


class TrainingInterruptedWarning(UserWarning):
    """``fit`` was interrupted (Ctrl-C); the estimator keeps the weights reached so far."""


# --------------------------------------------------------------------------- torch parts
class _SimSiamModule(torch.nn.Module):
    """Encoder + projector + predictor (+ view augmentation); ``forward`` returns encoder features."""

    def __init__(self, encoder, projector, predictor, augment):
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.predictor = predictor
        # parameter-free; kept here so it follows the module to its device and into pickles
        self.augment = augment

    def forward(self, x):
        return self.encoder(x)

    def views_forward(self, view1, view2):
        z1 = self.projector(self.encoder(view1))
        z2 = self.projector(self.encoder(view2))
        return self.predictor(z1), self.predictor(z2), z1, z2


class _SimSiamCriterion(torch.nn.Module):
    """Symmetric negative cosine loss ``D(p1, z2)/2 + D(p2, z1)/2`` with stop-gradient on z."""

    def forward(self, p1, p2, z1, z2):
        from ..nn import simsiam_loss

        return simsiam_loss(p1.float(), p2.float(), z1.float(), z2.float())


def _collapse_std(z: torch.Tensor) -> float:
    """Mean over dimensions of the batch std of L2-normalised ``z``.

    About ``1/sqrt(d)`` for healthy, spread-out outputs; 0 when every output is the same
    vector (the collapse SimSiam's stop-gradient and predictor are there to prevent).
    """
    with torch.no_grad():
        return float(torch.nn.functional.normalize(z.float(), dim=1).std(dim=0).mean())


class _SimSiamNet(NeuralNet):
    """skorch net whose training step draws two augmented views of each batch.

    ``module.augment(x, generator=...)`` makes one random view of a float NCHW batch on the
    net's device, with random numbers drawn from a CPU generator seeded by ``augment_seed``
    (reproducible on CUDA too); ``amp`` enables bfloat16 autocast on CUDA; ``channels_last``
    feeds the encoder NHWC-strided batches (faster convolutions on CPU and on tensor cores).
    """

    def __init__(self, *args, amp=False, augment_seed=0, channels_last=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp = amp
        self.channels_last = channels_last
        self.augment_seed = augment_seed

    def _autocast(self):
        enabled = bool(self.amp) and str(self.device).startswith("cuda")
        return torch.autocast(device_type="cuda" if enabled else "cpu", dtype=torch.bfloat16, enabled=enabled)

    def _augment_generator(self):
        # created lazily (and dropped before pickling) so the net stays picklable
        generator = getattr(self, "_aug_generator", None)
        if generator is None:
            generator = torch.Generator().manual_seed(int(self.augment_seed))
            self._aug_generator = generator
        return generator

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, _ = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        generator = self._augment_generator()
        view1 = self.module_.augment(x, generator=generator)
        view2 = self.module_.augment(x, generator=generator)
        if self.channels_last:
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            p1, p2, z1, z2 = self.module_.views_forward(view1, view2)
        loss = self.get_loss((p1, p2, z1, z2), None, X=Xi, training=True)
        loss.backward()
        self.history.record_batch("z_std", _collapse_std(z1))
        return {"loss": loss, "y_pred": z1}

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(*y_pred)

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.module_(x).float()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self._interrupted = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self._interrupted = True
            raise  # skorch's partial_fit catches it and keeps the weights

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_aug_generator", None)
        return state


class _KNNMonitor(Callback):
    """Leave-one-out kNN accuracy of the encoder features on a labelled monitoring set.

    Records ``knn_acc`` in the history after every ``every``-th epoch (and the last one):
    each monitoring sample is classified by majority vote of its ``k`` nearest other
    samples under cosine similarity. No split of the monitoring set is needed.
    """

    def __init__(self, images, labels, k=20, every=1):
        self.images = images
        self.labels = labels
        self.k = k
        self.every = every

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every and epoch != net.max_epochs:
            return
        features = net.forward(self.images).numpy()
        net.history.record("knn_acc", knn_loo_accuracy(features, self.labels, k=self.k))


def knn_loo_accuracy(features, labels, k: int = 20) -> float:
    """Leave-one-out k-nearest-neighbour accuracy under cosine similarity (majority vote)."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    n = features.shape[0]
    k = min(int(k), n - 1)
    if k < 1:
        return float("nan")
    classes, encoded = np.unique(labels, return_inverse=True)
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    correct = 0
    for start in range(0, n, 1024):
        similarity = unit[start : start + 1024] @ unit.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, start + rows] = -np.inf  # leave the sample itself out
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes = np.zeros((similarity.shape[0], len(classes)))
        np.add.at(votes, (rows[:, None], encoded[neighbours]), 1)
        correct += int((votes.argmax(axis=1) == encoded[start : start + 1024]).sum())
    return correct / n


def _encode(fingerprint, images, net):
    """Encoder features of ``images``; ``fingerprint`` identifies the weights for caching."""
    return net.forward(images).numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------- estimator
class SimSiamEmbedder(TransformerMixin, BaseEstimator):
    """Self-supervised image features (``f_self``) learned with SimSiam.

    ``fit`` trains a SimSiam network (Chen & He, "Exploring Simple Siamese Representation
    Learning", CVPR 2021) on unlabeled images: a shared encoder, a 3-layer projector with
    BatchNorm (the last without affine parameters) and a 2-layer bottleneck predictor,
    trained on two random augmentations of each image with the symmetric negative cosine
    loss and a stop-gradient on the projector branch. ``transform`` runs the encoder in
    evaluation mode (no augmentation) and returns its features, the ``f_self`` of the AS3L
    paper (section 3.2), which :class:`ClusterFineTuner` then fine-tunes.

    Parameters
    ----------
    backbone : {"auto", "small_cnn", "resnet18_cifar", "wrn28_2"} or torch.nn.Module, default="auto"
        Encoder. ``"auto"`` takes ``"small_cnn"`` (128-d, fast on CPU) for grayscale images
        up to 32 px and any image up to 16 px, else the CIFAR ResNet-18 (512-d; the SimSiam
        CIFAR setting). The AS3L paper uses the semi-supervised network, e.g.
        ``"wrn28_2"`` for CIFAR-10. A module (mapping ``(n, C, H, W)`` to ``(n, d)``) is
        deep-copied at fit, so the parameter itself is never trained.
    projector_dim : int or "auto", default="auto"
        Hidden and output width of the projector. ``"auto"``: SimSiam's 2048 on CUDA, 512
        on CPU (there the 2048-wide projector takes about two thirds of the training time
        of ``small_cnn``).
    predictor_dim : int or "auto", default="auto"
        Bottleneck width of the predictor. ``"auto"``: SimSiam's 512 on CUDA, 128 on CPU
        (a quarter of the projector width, as in SimSiam).
    max_epochs : int or "auto", default="auto"
        Training epochs. ``"auto"`` scales with the data and the hardware: it shows the
        network about 100,000 images on CPU and 20 million on CUDA, i.e.
        ``clip(budget // n_samples, 10, 800)`` epochs -- 20 epochs (a few minutes with
        ``small_cnn``) for 5,000 images on a laptop CPU, 400 epochs for CIFAR-10's 50,000
        images on a GPU. The SimSiam/AS3L CIFAR setting is ``max_epochs=800``.
    batch_size : int or "auto", default="auto"
        Images per step, clipped to the number of samples (the last incomplete batch of an
        epoch is dropped, as BatchNorm needs at least 2 images). ``"auto"``: 512 on CUDA
        (SimSiam's CIFAR setting), 128 on CPU.
    lr : float, default=0.03
        Base learning rate; the SGD learning rate is ``lr * batch_size / 256`` (SimSiam's
        linear scaling rule: 0.06 at batch 512), annealed to 0 with a cosine schedule over
        ``max_epochs``.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=5e-4
        SGD weight decay (SimSiam's CIFAR setting).
    device : str, default="auto"
        torch device; ``"auto"`` uses CUDA when available.
    image_shape : tuple of (C, H, W) or None, default=None
        Shape used to un-flatten 2-D input ``X`` of shape ``(n, C*H*W)``; needed only for
        flattened images (e.g. inside a scikit-learn pipeline over tabular arrays). One
        entry may be ``-1``, inferred from the number of features as in ``numpy.reshape``.
        Flattened ``uint8`` values are scaled to [0, 1] like uint8 images; float values are fed as they are.
    memory : str, joblib.Memory or None, default=None
        Caches :meth:`transform` results (keyed on the trained weights and the images).
    augment : "simsiam" or callable, default="simsiam"
        How a random view is drawn: ``"simsiam"`` is
        :class:`as3l_sklearn.augment.SimSiamAugment` (below); a callable
        ``aug(x, generator=None)`` taking and returning a float ``(n, C, H, W)`` tensor on the
        training device replaces it (e.g. no flips for images whose orientation matters).
        It is deep-copied at fit and must be picklable (a ``torch.nn.Module`` or a
        module-level function, not a lambda).
    amp : bool or "auto", default="auto"
        bfloat16 autocast during training and ``transform`` on CUDA (``"auto"``: on when
        the device is CUDA). Ignored on CPU.
    callbacks : list of (name, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks for the training loop (e.g. checkpoints, early stopping).
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch order and augmentations; on CPU the same value
        gives the same features. torch's global generator is left as it was.
    verbose : int, default=0
        0 silent; 1 prints a line per epoch (loss, ``z_std``, ``knn_acc``); 2 adds skorch's
        progress bar over the batches.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained network; ``net_.history`` holds, per epoch, ``train_loss`` (between -1
        and 1; lower is better), ``z_std`` (the collapse monitor: the batch standard
        deviation of the L2-normalised projector outputs, about ``1/sqrt(projector_dim_)``
        when healthy, tending to 0 on collapse) and, with ``monitor``, ``knn_acc``.
    image_shape_ : tuple of (C, H, W)
        Image shape seen in ``fit``; ``transform`` requires the same.
    n_features_in_ : int
        ``C * H * W``.
    n_features_out_ : int
        Feature dimension ``d`` of the encoder.
    n_epochs_ : int
        Epochs completed (fewer than ``max_epochs_`` after a Ctrl-C).
    max_epochs_, batch_size_, projector_dim_, predictor_dim_ : int
        The resolved values of ``"auto"`` parameters.
    device_ : str
        Device the network was trained on.

    See Also
    --------
    ClusterFineTuner : fine-tunes these features for clustering (AS3L Eq. 1).

    Notes
    -----
    Two augmented views are drawn batch-wise on the training device by
    :class:`as3l_sklearn.augment.SimSiamAugment` (random resized crop with scale 0.2-1,
    horizontal flip, colour jitter 0.4/0.4/0.4/0.1 with p=0.8, grayscale with p=0.2; the
    colour steps reduce to brightness/contrast for grayscale images).

    Differences from the SimSiam paper: the predictor's learning rate is annealed like the
    rest (the ImageNet recipe keeps it fixed; CIFAR reproductions usually anneal it);
    ``max_epochs="auto"`` trains far less than SimSiam's 800 epochs unless the data are
    large or a GPU is present.

    Pressing Ctrl-C during ``fit`` stops training, keeps the weights reached so far,
    emits a :class:`TrainingInterruptedWarning` and leaves a usable fitted estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import SimSiamEmbedder
    >>> X = np.random.RandomState(0).randint(0, 256, size=(32, 8, 8, 1), dtype=np.uint8)
    >>> embedder = SimSiamEmbedder(backbone="small_cnn", projector_dim=32, predictor_dim=8,
    ...                            max_epochs=1, batch_size=16, device="cpu", random_state=0)
    >>> embedder.fit_transform(X).shape
    (32, 128)
    """

    def __init__(
        self,
        backbone="auto",
        *,
        projector_dim="auto",
        predictor_dim="auto",
        max_epochs="auto",
        batch_size="auto",
        lr: float = 0.03,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        device: str = "auto",
        image_shape=None,
        memory=None,
        augment="simsiam",
        amp="auto",
        callbacks=None,
        random_state=None,
        verbose: int = 0,
    ):
        self.backbone = backbone
        self.projector_dim = projector_dim
        self.predictor_dim = predictor_dim
        self.max_epochs = max_epochs
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
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self, n_samples: int, device: str):
        kind = "cuda" if device.startswith("cuda") else "cpu"
        auto_projector, auto_predictor = AUTO_HEAD_DIMS[kind]
        head_dims = (
            auto_projector if self.projector_dim == "auto" else check_positive_int(self.projector_dim, "projector_dim"),
            auto_predictor if self.predictor_dim == "auto" else check_positive_int(self.predictor_dim, "predictor_dim"),
        )
        for name in ("lr", "momentum", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise TypeError(f"{name} must be a real number, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.amp not in ("auto", True, False):
            raise ValueError(f"amp must be 'auto', True or False, got {self.amp!r}")
        if isinstance(self.verbose, bool) or not isinstance(self.verbose, numbers.Integral):
            raise TypeError(f"verbose must be an int, got {self.verbose!r}")

        if isinstance(self.max_epochs, str) and self.max_epochs == "auto":
            low, high = AUTO_EPOCH_RANGE
            max_epochs = int(np.clip(AUTO_EPOCH_BUDGET[kind] // n_samples, low, high))
        else:
            max_epochs = check_positive_int(self.max_epochs, "max_epochs")
        if isinstance(self.batch_size, str) and self.batch_size == "auto":
            batch_size = AUTO_BATCH_SIZE[kind]
        else:
            batch_size = check_positive_int(self.batch_size, "batch_size")
        batch_size = min(batch_size, n_samples)
        if batch_size < 2:
            raise ValueError("batch_size must be >= 2: SimSiam's BatchNorm layers need 2 images per batch")
        callbacks = list(self.callbacks or [])
        for item in callbacks:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
                raise TypeError(f"callbacks must be a list of (name, callback) pairs, got {item!r}")
        return max_epochs, batch_size, callbacks, head_dims

    def _validate_images(self, X, *, reset: bool) -> np.ndarray:
        """Images as float32 ``n x C x H x W``; records or checks the fitted image shape.

        2-D (tabular) input first goes through scikit-learn's own checks, so that sparse,
        complex, object, empty or non-finite arrays and feature-name mismatches fail with
        scikit-learn's usual messages; it is then un-flattened with ``image_shape``.
        """
        ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
        if ndim <= 2 or sp.issparse(X):
            X2 = check_array(X, dtype="numeric", ensure_all_finite=True, input_name="X", estimator=self)
            validate_data(self, X, skip_check_array=True, reset=reset)
            shape = _resolve_image_shape(self.image_shape, X2.shape[1]) if reset else self.image_shape_
            images = check_images(X2, image_shape=shape, name="X")
        else:
            images = check_images(X, name="X")
            if reset:
                self.n_features_in_ = int(np.prod(images.shape[1:]))
                self.__dict__.pop("feature_names_in_", None)
        if reset:
            self.image_shape_ = tuple(int(s) for s in images.shape[1:])
        else:
            check_image_shape_consistent(images, self.image_shape_, name="X")
        return images

    def _build_module(self, channels: int, size: tuple, head_dims: tuple):
        from ..nn import SimSiamPredictor, SimSiamProjector, make_backbone

        backbone = self.backbone
        if isinstance(backbone, torch.nn.Module):
            backbone = copy.deepcopy(backbone)
        elif not isinstance(backbone, str):
            raise TypeError(
                f"backbone must be a name ('auto', 'small_cnn', 'resnet18_cifar', 'wrn28_2') or a "
                f"torch.nn.Module, got {type(backbone).__name__}"
            )
        try:
            encoder = make_backbone(backbone, in_channels=channels, image_size=size)
        except ValueError as exc:
            if "small" in str(exc) or "dummy" in str(exc):
                raise ValueError(
                    f"X has images of {size[0]}x{size[1]} pixels with {channels} channel(s), which the "
                    f"backbone {self.backbone!r} cannot encode: {exc}"
                ) from exc
            raise
        # a user module may still fail on these images (e.g. too many poolings): try it now,
        # in eval mode so that BatchNorm statistics are untouched
        _check_encoder_fits(encoder, channels, size, self.backbone)
        projector_dim, predictor_dim = head_dims
        projector = SimSiamProjector(encoder.out_dim, hidden_dim=projector_dim, out_dim=projector_dim)
        predictor = SimSiamPredictor(projector_dim, hidden_dim=predictor_dim)
        return _SimSiamModule(encoder, projector, predictor, self._build_augment(channels, size))

    def _build_augment(self, channels: int, size: tuple):
        from ..augment import SimSiamAugment

        if isinstance(self.augment, str):
            if self.augment != "simsiam":
                raise ValueError(f"augment must be 'simsiam' or a callable aug(x, generator=None), got {self.augment!r}")
            if min(size) < 2:
                raise ValueError(
                    f"X has images of {size[0]}x{size[1]} pixels; SimSiam's random resized crops need at "
                    "least 2x2 pixels (pass a custom augment for such data)"
                )
            return SimSiamAugment(image_size=size, channels=channels)
        if not callable(self.augment):
            raise TypeError(
                f"augment must be 'simsiam' or a callable aug(x, generator=None), got {type(self.augment).__name__}"
            )
        return copy.deepcopy(self.augment)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, *, monitor=None):
        """Train SimSiam on the images ``X``.

        Parameters
        ----------
        X : array-like
            ``uint8`` images ``n x H x W x C`` (or ``n x H x W``), float images
            ``n x C x H x W`` (values as they should be fed to the network, e.g. in
            [0, 1]), or 2-D ``n x (C*H*W)`` with ``image_shape``.
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
        images = self._validate_images(X, reset=True)
        n_samples, channels, height, width = images.shape
        if n_samples < 2:
            raise ValueError(f"X has {n_samples} sample(s); SimSiam needs at least 2 images (BatchNorm)")
        device = resolve_device(self.device)
        max_epochs, batch_size, user_callbacks, head_dims = self._check_params(n_samples, device)
        amp = self.amp if self.amp != "auto" else device.startswith("cuda")
        rng = check_random_state(self.random_state)
        init_seed, order_seed, augment_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))

        callbacks = [
            ("lr_scheduler", LRScheduler(policy="CosineAnnealingLR", T_max=max_epochs)),
            ("z_std", PassthroughScoring(name="z_std", on_train=True, lower_is_better=False)),
        ]
        if monitor is not None:
            callbacks.append(("knn_monitor", _KNNMonitor(*self._check_monitor(monitor), k=20)))
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks += user_callbacks

        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(init_seed)
            module = self._build_module(channels, (height, width), head_dims)
            # the named backbones are safe with NHWC strides; a user module may .view() them
            channels_last = isinstance(self.backbone, str)
            if channels_last:
                module.encoder.to(memory_format=torch.channels_last)
            net = _SimSiamNet(
                module=module,
                criterion=_SimSiamCriterion,
                optimizer=torch.optim.SGD,
                optimizer__momentum=self.momentum,
                optimizer__weight_decay=self.weight_decay,
                lr=self.lr * batch_size / 256,
                max_epochs=max_epochs,
                batch_size=batch_size,
                iterator_train__shuffle=True,
                iterator_train__drop_last=True,
                iterator_train__generator=torch.Generator().manual_seed(order_seed),
                iterator_valid__batch_size=max(batch_size, 256),
                train_split=None,
                callbacks=callbacks,
                device=device,
                verbose=int(self.verbose >= 1),
                amp=amp,
                augment_seed=augment_seed,
                channels_last=channels_last,
            )
            net.fit(images, None)
        # the generators are state of one fit only; dropping them keeps the net picklable
        net.iterator_train__generator = None
        net.__dict__.pop("_aug_generator", None)

        self.net_ = net
        self.device_ = device
        self.max_epochs_ = max_epochs
        self.batch_size_ = batch_size
        self.n_epochs_ = sum(1 for row in net.history if "train_loss" in row)
        self.n_features_out_ = int(module.encoder.out_dim)
        self.projector_dim_, self.predictor_dim_ = head_dims
        self._fingerprint = _weights_fingerprint(module)
        if getattr(net, "_interrupted", False):
            warnings.warn(
                f"SimSiamEmbedder.fit was interrupted after {self.n_epochs_} of {max_epochs} epochs; "
                "the estimator keeps the weights reached so far and is usable",
                TrainingInterruptedWarning,
                stacklevel=2,
            )
        return self

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
        memory = check_memory(self.memory)
        encode = memory.cache(_encode, ignore=["net"])
        return np.ascontiguousarray(encode(self._fingerprint, images, self.net_), dtype=np.float32)

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
        self.__dict__.update(state)
        # a net trained on CUDA and loaded where there is none comes back on CPU (skorch
        # maps the weights); record that so transform runs where the weights are
        if hasattr(self, "net_"):
            self.device_ = str(self.net_.device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        return tags


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


def _resolve_image_shape(image_shape, n_features: int):
    """``image_shape`` with a ``-1`` entry inferred from ``n_features`` (as numpy.reshape)."""
    if image_shape is None:
        return None
    try:
        shape = [int(s) for s in image_shape]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"image_shape must be a tuple (C, H, W), got {image_shape!r}") from exc
    if len(shape) != 3:
        raise ValueError(f"image_shape must be a tuple of 3 ints (C, H, W), got {image_shape!r}")
    if shape.count(-1) == 1:
        known = int(np.prod([s for s in shape if s != -1]))
        if known < 1 or n_features % known:
            raise ValueError(
                f"image_shape={tuple(image_shape)} cannot un-flatten X with {n_features} features per sample"
            )
        shape[shape.index(-1)] = n_features // known
    return tuple(shape)


def _weights_fingerprint(module) -> str:
    import joblib

    return joblib.hash({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})

"""Self-supervised image features with SimSiam (Chen & He, 2021), as a scikit-learn transformer.

The training loop is a :class:`skorch.NeuralNet` subclass (two augmented views per image,
symmetric negative cosine loss with stop-gradient) held as the fitted attribute ``net_`` of
a plain scikit-learn estimator: skorch sets fitted-looking attributes in ``__init__``, which
would confuse ``check_is_fitted`` and the estimator checks if the estimator *were* the net.
"""

from __future__ import annotations

import copy
import itertools
import sys
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PassthroughScoring, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, check_memory, validate_data

from ..augment import SIMSIAM_PRESETS
from ..nn import BACKBONES
from ..utils import check_image_shape_consistent, check_image_size, check_images, resolve_device
from ..nn._callbacks import DistributedNetMixin, StepProgress
from ..utils._image_source import RawImageDataset, Uint8Images, uint8_batch_to_float
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
from ..utils._progress import is_terminal, strip_ansi
from ..utils._torch import TorchPickleMixin, resolve_n_threads, torch_settings, torch_threads
from ..utils._validation import (
    check_channels,
    check_random_state_or_generator,
    image_range,
    images_before_array_checks,
    infer_image_shape,
    warn_on_image_range,
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


#: placeholder for a net's ``module`` parameter in its pickle when it is ``module_`` itself
SAME_AS_MODULE_ = "<same as module_>"


class CollapseWarning(UserWarning):
    """The encoder's features collapsed: every image maps to (nearly) the same direction."""


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


def normalized_std(outputs) -> float:
    """Spread of L2-normalised outputs: ``sqrt(d)`` times the mean over dimensions of their batch std.

    About 1 for outputs spread evenly over all directions, 0 when every output points the
    same way -- the collapse SimSiam's stop-gradient and predictor are there to prevent
    (Chen & He 2021, Fig. 2 plot the unscaled value, ``1/sqrt(d)`` when healthy). Measure it
    where collapse can show: on encoder or predictor outputs, not after the projector's
    final BatchNorm, which standardises every dimension and reads ``1/sqrt(d)`` whatever
    the network does.

    Examples
    --------
    >>> import torch
    >>> round(normalized_std(torch.ones(8, 4)), 6)
    0.0
    >>> normalized_std(torch.randn(4096, 16)) > 0.9
    True
    """
    with torch.no_grad():
        z = torch.as_tensor(outputs).float()
        unit = torch.nn.functional.normalize(z, dim=1)
        return float(unit.std(dim=0).mean() * np.sqrt(z.shape[1]))


def effective_rank(features) -> float:
    """RankMe effective rank of a feature matrix: ``exp`` of the entropy of its normalised singular values.

    A label-free quality signal (Garrido et al., "RankMe", ICML 2023): between 1 (every
    sample on one line) and ``min(n, d)`` (all directions used equally); during
    self-supervised training it tends to rise with downstream accuracy and falls on
    (dimensional) collapse. Features are L2-normalised and centred first, so a constant
    feature matrix has rank 0.

    Examples
    --------
    >>> import numpy as np
    >>> round(effective_rank(np.ones((10, 5))), 3)
    0.0
    >>> round(effective_rank(np.eye(4)), 3)
    3.0
    """
    with torch.no_grad():
        z = torch.as_tensor(np.asarray(features, dtype=np.float32))
        unit = torch.nn.functional.normalize(z, dim=1)
        centered = unit - unit.mean(dim=0, keepdim=True)
        singular = torch.linalg.svdvals(centered.double())
        total = singular.sum()
        if not total > 1e-9 * max(1, z.shape[0]):
            return 0.0
        p = singular / total
        p = p[p > 0]
        return float(torch.exp(-(p * p.log()).sum()))


class _SimSiamNet(DistributedNetMixin, NeuralNet):
    """skorch net whose training step draws two augmented views of each batch.

    ``module.augment(x, generator=...)`` makes one random view of a float NCHW batch on the
    net's device, with random numbers drawn from a CPU generator seeded by ``augment_seed``
    (reproducible on CUDA too); ``amp`` enables bfloat16 autocast on CUDA; ``channels_last``
    feeds the encoder NHWC-strided batches (faster convolutions on CPU and on tensor cores).
    ``max_steps`` ends training after that many optimizer steps, in the middle of an epoch
    if need be (the budget is counted in steps, not epochs). Under torchrun the estimator
    hands it a process group (:meth:`set_distributed`): the two-view forward runs through
    DistributedDataParallel and the recorded loss is the mean over the ranks.
    """

    def __init__(self, *args, amp=False, augment_seed=0, channels_last=False, max_steps=None, input_size=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.input_size = input_size
        self.amp = amp
        self.channels_last = channels_last
        self.augment_seed = augment_seed
        self.max_steps = max_steps
        self.steps_done = 0

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

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and iterator is not None and self.max_steps is not None:
            iterator = itertools.islice(iterator, max(int(self.max_steps) - self.steps_done, 0))
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, _ = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        if x.dtype == torch.uint8:  # uint8 n x H x W x C: converted here, on the training device
            x = uint8_batch_to_float(x, self.input_size)
        generator = self._augment_generator()
        view1 = self.module_.augment(x, generator=generator)
        view2 = self.module_.augment(x, generator=generator)
        if self.channels_last:
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            if self.distributed is not None:
                p1, p2, z1, z2 = self.ddp_module(view1, view2)
            else:
                p1, p2, z1, z2 = self.module_.views_forward(view1, view2)
        loss = self.get_loss((p1, p2, z1, z2), None, X=Xi, training=True)
        loss.backward()
        self.history.record_batch("p_std", normalized_std(p1.detach()))
        if self.distributed is not None:
            # every rank records the global mean loss (the gradients DDP averaged)
            loss = self.distributed.all_reduce_sum(loss.detach().clone()) / self.distributed.world_size
        return {"loss": loss, "y_pred": z1}

    def ddp_target(self):
        return _ViewsForward(self.module_)

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        self.steps_done += 1
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(*y_pred)

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if x.dtype == torch.uint8:  # the encoder's own input layer resizes
            x = uint8_batch_to_float(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.module_(x).float()

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self._interrupted = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self._interrupted = self._train_interrupted = True
            raise  # skorch's partial_fit catches it and keeps the weights

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_aug_generator", None)
        self._drop_distributed_state(state)
        if state.get("module") is self.__dict__.get("module_"):
            # the module was handed over as an instance and trained in place: skorch already
            # stores it (mapped to the CPU where CUDA is missing) as module_; don't store it twice
            state["module"] = SAME_AS_MODULE_
        return state

    def __setstate__(self, state):
        same = isinstance(state.get("module"), str) and state["module"] == SAME_AS_MODULE_
        super().__setstate__(state)
        if same:
            self.__dict__["module"] = self.module_

    def get_default_callbacks(self):
        # skorch's table, without its colour codes when stdout is not a terminal
        return [(name, _PlainPrintLog() if name == "print_log" else callback)
                for name, callback in super().get_default_callbacks()]


class _PlainPrintLog(PrintLog):
    """skorch's per-epoch table; ANSI colour codes only when stdout is a terminal."""

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not is_terminal(sys.stdout):
            return strip_ansi(text)
        return text


#: the step bar is shared with FlexMatch (``as3l_sklearn.nn._callbacks``); this name stays so
#: that nets pickled with the bar before it moved still load
_StepProgress = StepProgress


class _ViewsForward(torch.nn.Module):
    """``forward(view1, view2)`` = ``module.views_forward``: DDP only hooks ``forward``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, view1, view2):
        return self.module.views_forward(view1, view2)


class _ShardedSampler(torch.utils.data.Sampler):
    """Each epoch, a random permutation drawn identically on every rank; rank ``r`` keeps its
    ``r::world_size`` share (as :class:`torch.utils.data.DistributedSampler`, with skorch's
    own seeded generator instead of ``set_epoch``)."""

    def __init__(self, n_samples, context, seed):
        self.n_samples = int(n_samples)
        self.context = context
        self.generator = torch.Generator().manual_seed(int(seed))

    def __iter__(self):
        order = torch.randperm(self.n_samples, generator=self.generator)
        usable = self.n_samples - self.n_samples % self.context.world_size
        return iter(self.context.shard(order[:usable]).tolist())

    def __len__(self):
        return self.n_samples // self.context.world_size


def step_learning_rate(step: int, base_lr: float, total_steps: int, warmup_steps: int) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warm-up, then cosine to 0.

    Examples
    --------
    >>> [round(step_learning_rate(s, 0.1, 10, 2), 4) for s in (0, 1, 2, 6, 9)]
    [0.05, 0.1, 0.1, 0.05, 0.0038]
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return float(base_lr * 0.5 * (1.0 + np.cos(np.pi * min(progress, 1.0))))


class _StepLR(Callback):
    """Sets the SGD rate before every training step (:func:`step_learning_rate`)."""

    def __init__(self, base_lr, total_steps, warmup_steps):
        self.base_lr = base_lr
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        lr = step_learning_rate(net.steps_done, self.base_lr, self.total_steps, self.warmup_steps)
        for group in net.optimizer_.param_groups:
            group["lr"] = lr


class _FeatureMonitor(Callback):
    """Label-free monitors on a fixed set of clean training images after every epoch.

    Records ``feature_std`` (:func:`normalized_std` of the encoder features: 0 on collapse)
    and ``feature_rank`` (:func:`effective_rank`, a label-free quality signal).
    """

    def __init__(self, images):
        self.images = images

    def on_epoch_end(self, net, **kwargs):
        features = net.forward(self.images)
        net.history.record("feature_std", normalized_std(features))
        net.history.record("feature_rank", effective_rank(features.numpy()))


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
    # uint8 images are read (and converted) one batch at a time
    data = RawImageDataset(images) if isinstance(images, Uint8Images) else images
    return net.forward(data).numpy().astype(np.float32, copy=False)


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
        bfloat16 autocast during training and ``transform`` on CUDA (``"auto"``: on when
        the device is CUDA). Ignored on CPU.
    callbacks : list of (name, skorch.callbacks.Callback) or None, default=None
        Extra skorch callbacks for the training loop (e.g. checkpoints, early stopping).
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
        from ..utils._distributed import get_distributed, resolve_distributed_device

        device = resolve_device(self.device)
        # under torchrun: join (or create) the process group; "cuda" is then this rank's GPU
        context = get_distributed(device)
        if context is not None:
            device = resolve_distributed_device(device)
        settings = self._check_params(n_samples, device)
        num_workers = int(self.num_workers)
        max_epochs, max_steps, batch_size = settings["max_epochs"], settings["max_steps"], settings["batch_size"]
        # DDP: each rank takes batch_size / world_size images of every global batch
        local_batch_size = batch_size
        if context is not None:
            local_batch_size = batch_size // context.world_size
            if local_batch_size < 2:
                raise ValueError(f"batch_size={batch_size} over {context.world_size} processes leaves "
                                 f"{local_batch_size} image(s) per process; BatchNorm needs 2: raise batch_size")
            batch_size = local_batch_size * context.world_size
        encoder_size = self._resolve_image_size((height, width), device)
        amp = self.amp if self.amp != "auto" else device.startswith("cuda")
        rng = check_random_state_or_generator(self.random_state)
        init_seed, order_seed, augment_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=3))
        probe = np.sort(np.random.RandomState(order_seed).permutation(n_samples)[:MONITOR_SAMPLES])

        callbacks = [
            ("lr_schedule", _StepLR(settings["lr"], max_steps, int(np.ceil(WARMUP_FRACTION * max_steps)))),
            ("p_std", PassthroughScoring(name="p_std", on_train=True, lower_is_better=False)),
            ("feature_monitor", _FeatureMonitor(images[probe])),
        ]
        if monitor is not None:
            callbacks.append(("knn_monitor", _KNNMonitor(*self._check_monitor(monitor), k=20)))
        is_main = context is None or context.is_main
        if self.verbose == 1 and is_main:
            # one bar for the whole fit (total steps, ETA) instead of a table row per epoch
            callbacks.append(("step_progress", _StepProgress(max_steps, type(self).__name__)))
        callbacks += settings["callbacks"]

        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(init_seed)
            module, backbone_name = self._build_module(
                channels, (height, width), encoder_size, settings["head_dims"], max_steps, device
            )
            # the named backbones are safe with NHWC strides; a user module may .view() them
            channels_last = isinstance(self.backbone, str)
            if channels_last:
                module.encoder.to(memory_format=torch.channels_last)
            if context is None:
                order = {"iterator_train__shuffle": True,
                         "iterator_train__generator": torch.Generator().manual_seed(order_seed)}
            else:  # the same permutation on every rank, each rank its share
                order = {"iterator_train__shuffle": False,
                         "iterator_train__sampler": _ShardedSampler(n_samples, context, order_seed)}
                augment_seed += 7919 * context.rank  # different views on every rank
            net = _SimSiamNet(
                module=module,
                criterion=_SimSiamCriterion,
                optimizer=torch.optim.SGD,
                optimizer__momentum=self.momentum,
                optimizer__weight_decay=self.weight_decay,
                lr=settings["lr"],
                max_epochs=max_epochs,
                max_steps=max_steps,
                batch_size=local_batch_size,
                iterator_train__drop_last=True,
                iterator_valid__batch_size=max(batch_size, 256),
                iterator_train__num_workers=num_workers,
                iterator_valid__num_workers=num_workers,
                **order,
                train_split=None,
                callbacks=callbacks,
                device=device,
                verbose=int(self.verbose >= 2 and is_main),  # skorch's per-epoch table
                amp=amp,
                augment_seed=augment_seed,
                channels_last=channels_last,
                input_size=tuple(encoder_size),
            )
            net.set_distributed(context)
            if max_epochs > 0:
                # downscale once, then draw the views at the encoder's size: cropping a 90-px
                # photo and shrinking every view to 32 px cost 8x the augmentation time for
                # the same views (the encoder's own resize then has nothing to do)
                # uint8 images stay uint8: the net converts (and resizes) each batch
                data = RawImageDataset(images) if isinstance(images, Uint8Images) else _resize_images(images, encoder_size)
                net.fit(data, None)
            else:
                net.initialize()  # frozen encoder: the module as built, nothing trained
        # the generators are state of one fit only; dropping them keeps the net picklable
        net.iterator_train__generator = None
        if context is not None:
            net.iterator_train__sampler = None
            net.set_distributed(None)
        net.__dict__.pop("_aug_generator", None)
        self.distributed_ = None if context is None else context.as_report()

        self.net_ = net
        self.device_ = device
        self.max_epochs_ = max_epochs
        self.max_steps_ = max_steps
        self.batch_size_ = batch_size
        self.lr_ = settings["lr"]
        self.backbone_ = backbone_name
        self.image_size_ = tuple(int(s) for s in encoder_size)
        self.n_epochs_ = sum(1 for row in net.history if "train_loss" in row)
        self.n_steps_ = int(net.steps_done)
        self.n_features_out_ = int(module.encoder.out_dim)
        self.projector_dim_, self.predictor_dim_ = settings["head_dims"]
        feature_std = [row["feature_std"] for row in net.history if "feature_std" in row]
        self.collapsed_ = bool(feature_std) and feature_std[-1] < COLLAPSE_THRESHOLD
        if self.collapsed_:
            warnings.warn(
                f"SimSiamEmbedder: the encoder features collapsed (feature_std {feature_std[-1]:.3g} < "
                f"{COLLAPSE_THRESHOLD}; about 1 when healthy): every image maps to nearly the same direction. "
                "Try a smaller lr, a larger batch_size or a different backbone",
                CollapseWarning,
                stacklevel=3,
            )
        if getattr(net, "_interrupted", False):
            warnings.warn(
                f"SimSiamEmbedder.fit was interrupted after {self.n_epochs_} of {max_epochs} epochs; "
                "the estimator keeps the weights reached so far and is usable",
                TrainingInterruptedWarning,
                stacklevel=3,
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

"""The SimSiam network: module, loss, skorch net, sampler and monitors of :class:`SimSiamEmbedder`.

:class:`_SimSiamNet` is a :class:`~as3l_sklearn.nn._step_net.StepNet` (skorch's fit loop
counted in optimizer steps, the learning-rate schedule as skorch's ``LRScheduler``, mixed
precision, Ctrl-C, pickling) whose training step draws two augmented views of each batch and
computes SimSiam's symmetric negative cosine loss with stop-gradient through ``get_loss``.
The estimator (``_simsiam.py``) owns validation, the settings and the fitted attributes.
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from skorch.callbacks import Callback, PrintLog
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from ..nn._step_net import StepNet
from ..utils._image_source import uint8_batch_to_float
from ..utils._progress import is_terminal, strip_ansi


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

class _SimSiamNet(StepNet):
    """skorch net whose training step draws two augmented views of each batch.

    ``module.augment(x, generator=...)`` makes one random view of a float NCHW batch on the
    net's device, with random numbers drawn from a CPU generator seeded by ``augment_seed``
    (reproducible on CUDA too); ``amp`` enables autocast on CUDA (:meth:`StepNet.autocast`);
    ``channels_last`` feeds the encoder NHWC-strided batches (faster convolutions on CPU and on
    tensor cores). ``max_steps`` ends training after that many optimizer steps, in the middle
    of an epoch if need be (the budget is counted in steps, not epochs); the learning rate
    rises linearly over ``warmup_steps`` steps, then follows a cosine to 0 at ``max_steps``
    (:func:`step_learning_rate`). Each fit shuffles the batches with a generator seeded by
    ``order_seed``. Under torchrun the estimator hands it a process group
    (:meth:`StepNet.fit_steps`): every rank draws the same permutation and keeps its share, the
    two-view forward runs through DistributedDataParallel and the recorded loss is the mean
    over the ranks.
    """

    transient_attributes = (*StepNet.transient_attributes, "_aug_generator")

    def __init__(self, *args, augment_seed=0, order_seed=0, channels_last=False, input_size=None, warmup_steps=0,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.input_size = input_size
        self.channels_last = channels_last
        self.augment_seed = augment_seed
        self.order_seed = order_seed
        self.warmup_steps = warmup_steps

    def lr_at(self, step: int) -> float:
        return step_learning_rate(step, self.lr, self.max_steps, self.warmup_steps)

    def get_default_callbacks(self):
        # skorch's table, without its colour codes when stdout is not a terminal
        return [(name, _PlainPrintLog() if name == "print_log" else callback)
                for name, callback in super().get_default_callbacks()]

    def get_iterator(self, dataset, training=False):
        if not training:
            return super().get_iterator(dataset, training=False)
        # the batch order of this fit, drawn from order_seed; under DDP the same permutation on
        # every rank, each rank its share
        kwargs = {"batch_size": self.batch_size, **self.get_params_for("iterator_train")}
        if self.distributed is None:
            kwargs.update(shuffle=True, generator=torch.Generator().manual_seed(int(self.order_seed)))
        else:
            kwargs.update(shuffle=False, sampler=_ShardedSampler(len(dataset), self.distributed, self.order_seed))
        return self.iterator_train(dataset, **kwargs)

    def _augment_generator(self):
        # created lazily (and dropped before pickling) so the net stays picklable
        generator = getattr(self, "_aug_generator", None)
        if generator is None:
            generator = torch.Generator().manual_seed(int(self.augment_seed))
            self._aug_generator = generator
        return generator

    def _views(self, Xi):
        """Two random views of the batch ``Xi`` on the device (uint8 converted first)."""
        x = to_tensor(Xi, device=self.device)
        if x.dtype == torch.uint8:  # uint8 n x H x W x C: converted here, on the training device
            x = uint8_batch_to_float(x, self.input_size)
        generator = self._augment_generator()
        view1 = self.module_.augment(x, generator=generator)
        view2 = self.module_.augment(x, generator=generator)
        if self.channels_last:
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        return view1, view2

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        Xi, _ = unpack_data(batch)
        view1, view2 = self._views(Xi)
        with self.autocast():
            if self.distributed is not None:
                p1, p2, z1, z2 = self.ddp_module(view1, view2)
            else:
                p1, p2, z1, z2 = self.module_.views_forward(view1, view2)
        loss = self.get_loss((p1, p2, z1, z2), None, X=Xi, training=True)
        self.backward(loss)
        self.history.record_batch("p_std", normalized_std(p1.detach()))
        if self.distributed is not None:
            # every rank records the global mean loss (the gradients DDP averaged)
            loss = self.distributed.all_reduce_sum(loss.detach().clone()) / self.distributed.world_size
        return {"loss": loss, "y_pred": z1}

    def ddp_target(self):
        return _ViewsForward(self.module_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion of the two views' outputs ``y_pred = (p1, p2, z1, z2)`` (no target)."""
        return self.criterion_(*y_pred)

    def infer(self, x, **fit_params):
        x = to_tensor(x, device=self.device)
        if x.dtype == torch.uint8:  # the encoder's own input layer resizes
            x = uint8_batch_to_float(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            return self.module_(x).float()

    def end_fit(self):
        super().end_fit()
        self.__dict__.pop("_aug_generator", None)  # the views of one fit


class _PlainPrintLog(PrintLog):
    """skorch's per-epoch table; ANSI colour codes only when stdout is a terminal."""

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not is_terminal(sys.stdout):
            return strip_ansi(text)
        return text




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


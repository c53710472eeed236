"""FlexMatch building blocks and the skorch network that runs the training steps.

The functions here are small, pure and tested one by one against hand-computed values:

* :func:`flexmatch_class_beta` -- FlexMatch's classwise learning effect ``beta_c``;
* :func:`flexmatch_mask` -- the curriculum mask ``max p >= tau * M(beta_c)``, ``M(x) = x / (2 - x)``;
* :func:`freematch_thresholds` / :func:`update_freematch_state` -- FreeMatch's self-adaptive
  thresholds (Wang et al., ICLR 2023), the ``threshold="freematch"`` option;
* :func:`prior_posterior` -- the paper's Eq. 5, ``normalize(y_prior + y_pred_weak)``;
* :func:`fit_linear_head` -- the head fitted to the prior on frozen features (``prior_start="head"``);
* :func:`cosine_lr` -- ``lr * cos(7 pi k / (16 K))``, the rate of step ``k`` (:meth:`FlexMatchNet.lr_at`);
* :func:`param_groups_without_decay` -- SGD groups with no weight decay on BatchNorm and bias.

:class:`FlexMatchNet` is a :class:`~as3l_sklearn.nn._step_net.StepNet` (skorch's ``fit_loop``
counted in optimizer steps, shared with the SimSiam net): its training iterator yields, per
step, the indices of a labeled batch of ``B`` and an unlabeled batch of ``mu * B`` images (one
skorch epoch is ``eval_every`` steps), its :meth:`~FlexMatchNet.train_step_single` builds the
weak and strong views and the pseudo-labels, and its :meth:`~FlexMatchNet.get_loss` computes
``Loss = Loss_l + lambda_u * Loss_un`` (Eq. 2-4) with its ``criterion``. The learning-rate
schedule (skorch's ``LRScheduler``) and the EMA (:class:`EMAUpdate`) are default callbacks.
The estimator in ``_flexmatch.py`` owns validation, the history records and the prior
schedule (as callbacks); this module owns the arithmetic.
"""

from __future__ import annotations

import math

import torch
from skorch.callbacks import Callback
from torch import nn

from ..nn._step_net import StepNet
from ..utils._image_source import (
    Uint8Images,
    WorkerBatchReader,
    gather_float,
    read_uint8_batches,
    uint8_batch_to_float,
)

UNUSED = -1  # learning status of an unlabeled sample never predicted with confidence >= tau
#: :func:`fit_linear_head`: a feature's scale is floored at this share of the median feature's
STD_FLOOR_SHARE = 0.1
#: FreeMatch's moving-average momentum of the confidence estimates (its paper and USB: 0.999)
FREEMATCH_MOMENTUM = 0.999


def flexmatch_class_beta(status: torch.Tensor, n_classes: int, warmup: bool = True) -> torch.Tensor:
    """FlexMatch's normalised learning effect ``beta_c`` of every class.

    ``sigma_c`` counts the unlabeled samples whose learning status is ``c`` (their weak-view
    prediction reached ``tau`` with class ``c``; ``-1`` marks samples still unused). With
    threshold warm-up ``beta_c = sigma_c / max(max_c sigma_c, n_unused)``; without it
    ``beta_c = sigma_c / max_c sigma_c``. When no sample has a status yet, ``beta = 0``
    for every class (so the thresholds start at 0, as in the reference implementations).

    Parameters
    ----------
    status : tensor of int64, shape (n_unlabeled,)
        Learning status per sample: a class index, or -1 for unused.
    n_classes : int
    warmup : bool
        Threshold warm-up (FlexMatch's default).

    Returns
    -------
    beta : float tensor of shape (n_classes,)

    Examples
    --------
    >>> import torch
    >>> status = torch.tensor([0, 0, 1, -1, -1, -1])
    >>> [round(b, 4) for b in flexmatch_class_beta(status, 3).tolist()]  # / n_unused = 3
    [0.6667, 0.3333, 0.0]
    >>> flexmatch_class_beta(status, 3, warmup=False).tolist()  # divided by max sigma = 2
    [1.0, 0.5, 0.0]
    """
    used = status >= 0
    sigma = torch.bincount(status[used], minlength=n_classes)[:n_classes].to(torch.float32)
    denominator = sigma.max()
    if warmup:
        denominator = torch.maximum(denominator, (~used).sum().to(torch.float32))
    if denominator <= 0:
        return torch.zeros(n_classes, dtype=torch.float32, device=status.device)
    return sigma / denominator


def flexmatch_mask(probs: torch.Tensor, beta: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard pseudo-labels and FlexMatch's curriculum mask.

    ``mask_b = max(probs_b) >= tau * M(beta[argmax probs_b])`` with the convex mapping
    ``M(x) = x / (2 - x)``.

    Parameters
    ----------
    probs : tensor of shape (n, n_classes)
        The distribution the pseudo-labels come from (``y_pred_weak`` or ``y_posterior``).
    beta : tensor of shape (n_classes,)
        From :func:`flexmatch_class_beta`.
    tau : float
        The fixed threshold (0.95).

    Returns
    -------
    pseudo_labels : int64 tensor of shape (n,)
    mask : float tensor of shape (n,), 1.0 where the sample contributes to the loss

    Examples
    --------
    >>> import torch
    >>> probs = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    >>> labels, mask = flexmatch_mask(probs, torch.tensor([1.0, 0.5]), tau=0.95)
    >>> labels.tolist(), mask.tolist()   # thresholds 0.95 and 0.95 * 0.5 / 1.5 = 0.3167
    ([0, 1], [0.0, 1.0])
    """
    max_probs, pseudo_labels = probs.max(dim=1)
    beta_of_sample = beta.to(probs.device)[pseudo_labels]
    thresholds = tau * beta_of_sample / (2.0 - beta_of_sample)
    mask = (max_probs >= thresholds).to(probs.dtype)
    return pseudo_labels, mask


def new_freematch_state(n_classes: int, device="cpu") -> dict:
    """FreeMatch's initial estimates: global confidence ``1 / C`` and class confidences ``1 / C``."""
    return {"global": torch.full((), 1.0 / n_classes, device=device),
            "class": torch.full((n_classes,), 1.0 / n_classes, device=device)}


@torch.no_grad()
def update_freematch_state(state: dict, probs_weak: torch.Tensor, momentum: float) -> None:
    """FreeMatch's exponential moving averages of the model's weak-view confidence (in place).

    ``global <- m * global + (1 - m) * mean_b max(p_b)`` and
    ``class <- m * class + (1 - m) * mean_b p_b`` (one value per class).

    Examples
    --------
    >>> import torch
    >>> state = new_freematch_state(2)
    >>> update_freematch_state(state, torch.tensor([[0.9, 0.1], [0.7, 0.3]]), momentum=0.5)
    >>> round(float(state["global"]), 3), [round(v, 3) for v in state["class"].tolist()]
    (0.65, [0.65, 0.35])
    """
    probs = probs_weak.float()
    state["global"].mul_(momentum).add_(probs.max(dim=1).values.mean(), alpha=1.0 - momentum)
    state["class"].mul_(momentum).add_(probs.mean(dim=0), alpha=1.0 - momentum)


def freematch_thresholds(state: dict) -> torch.Tensor:
    """FreeMatch's self-adaptive class thresholds ``tau_t(c) = MaxNorm(p_t)(c) * tau_t``.

    The global threshold ``tau_t`` (the moving average of the model's confidence) scaled per
    class by its moving-average probability over the largest one.

    Examples
    --------
    >>> import torch
    >>> freematch_thresholds({"global": torch.tensor(0.8), "class": torch.tensor([0.5, 0.25])}).tolist()
    [0.800000011920929, 0.4000000059604645]
    """
    classes = state["class"]
    return state["global"] * classes / classes.max().clamp_min(1e-12)


def update_learning_status(status: torch.Tensor, indices: torch.Tensor, probs_weak: torch.Tensor,
                           tau: float) -> None:
    """Set ``status[i]`` to the weak-view predicted class where its confidence is ``>= tau`` (in place)."""
    confidence, predicted = probs_weak.max(dim=1)
    confident = confidence >= tau
    if bool(confident.any()):
        status[indices[confident].to(status.device)] = predicted[confident].to(status.device)


def prior_posterior(prior: torch.Tensor, probs_weak: torch.Tensor) -> torch.Tensor:
    """The paper's Eq. 5 for ``t <= T``: ``y_posterior = normalize(y_prior + y_pred_weak)``.

    Rows are divided by their sum (both terms are distributions, so this is their mean).

    Examples
    --------
    >>> import torch
    >>> prior_posterior(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.2, 0.8]]))
    tensor([[0.6000, 0.4000]])
    """
    total = prior.to(probs_weak.dtype) + probs_weak
    return total / total.sum(dim=1, keepdim=True).clamp_min(1e-12)


def fit_linear_head(head: nn.Linear, features: torch.Tensor, targets: torch.Tensor,
                    sample_weight: torch.Tensor | None = None, *, l2: float = 1e-3,
                    max_iter: int = 100) -> None:
    """Fit ``head`` as a multinomial logistic regression to soft ``targets`` (in place).

    Minimises the weighted mean cross-entropy ``-sum_c t_c log softmax(W x + b)_c`` plus
    ``l2 * ||W||^2`` by L-BFGS on standardised features; the standardisation is folded into
    ``W`` and ``b`` afterwards, so the head takes the raw features (and the penalty does not
    depend on their scale).

    Parameters
    ----------
    head : torch.nn.Linear
        ``in_features = features.shape[1]``, ``out_features = targets.shape[1]``.
    features : tensor of shape (n, d)
    targets : tensor of shape (n, n_classes)
        Rows sum to 1 (e.g. prior pseudo-labels, one-hot for labeled samples).
    sample_weight : tensor of shape (n,), optional
    l2 : float
    max_iter : int
        L-BFGS iterations.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [1.0], [10.0], [11.0]])
    >>> t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> head = torch.nn.Linear(1, 2)
    >>> fit_linear_head(head, x, t)
    >>> head(x).argmax(1).tolist()
    [0, 0, 1, 1]
    """
    features = features.detach().float().cpu()
    targets = targets.detach().float().cpu()
    mean = features.mean(dim=0)
    # features that barely vary on the clean images (dead or nearly dead units) would get
    # weights of 1 / std after the folding: augmented images move them far more, and such a
    # head starts training with exploding logits. Their scale is floored at a share of the
    # typical feature's.
    std = features.std(dim=0)
    std = std.clamp_min(max(STD_FLOOR_SHARE * float(std.median()), 1e-6))
    standardized = (features - mean) / std
    weight = (torch.ones(len(features)) if sample_weight is None
              else sample_weight.detach().float().cpu())
    weight = weight / weight.mean()
    W = torch.zeros(targets.shape[1], features.shape[1], requires_grad=True)
    b = torch.zeros(targets.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS([W, b], lr=1.0, max_iter=int(max_iter), line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        log_p = torch.log_softmax(standardized @ W.T + b, dim=1)
        loss = -(weight[:, None] * targets * log_p).sum(dim=1).mean() + l2 * W.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        folded = W / std
        head.weight.copy_(folded.to(head.weight))
        head.bias.copy_((b - folded @ mean).to(head.bias))


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """FixMatch/FlexMatch's cosine decay ``lr * cos(7 pi k / (16 K))`` (no restart, no warm-up).

    Examples
    --------
    >>> cosine_lr(0.03, 0, 100)
    0.03
    >>> round(cosine_lr(0.03, 100, 100), 5)   # 0.03 * cos(7 pi / 16)
    0.00585
    """
    if total_steps <= 0:
        return float(base_lr)
    return float(base_lr) * max(0.0, math.cos(7.0 * math.pi * step / (16.0 * total_steps)))


def param_groups_without_decay(module: nn.Module, weight_decay: float) -> list[dict]:
    """Two SGD parameter groups: weights with ``weight_decay``; biases and norm parameters without.

    One-dimensional parameters are the biases and the BatchNorm/LayerNorm scales and shifts,
    which FixMatch, FlexMatch and the paper train without weight decay.
    """
    decay, no_decay = [], []
    for _, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class ClassifierModule(nn.Module):
    """A backbone (any module mapping images to ``(n, out_dim)`` features) and a linear head."""

    def __init__(self, backbone: nn.Module, n_classes: int, out_dim: int | None = None):
        super().__init__()
        self.backbone = backbone
        if out_dim is None:
            out_dim = int(getattr(backbone, "out_dim"))
        self.out_dim = int(out_dim)
        self.head = nn.Linear(self.out_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (the backbone's output, flattened)."""
        return torch.flatten(self.backbone(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def ema_update(ema_module: nn.Module, module: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * weights`` for parameters; buffers are copied."""
    for ema_p, p in zip(ema_module.parameters(), module.parameters()):
        ema_p.mul_(decay).add_(p.detach(), alpha=1.0 - decay)
    for ema_b, b in zip(ema_module.buffers(), module.buffers()):
        ema_b.copy_(b)


class EMAUpdate(Callback):
    """``ema_module_ <- decay * ema_module_ + (1 - decay) * module_`` after every training step.

    Step ``k`` (0-based) uses ``min(net.ema_decay, (1 + k) / (10 + k))``: a short warm-up so
    that short runs are not dominated by the initial weights.
    """

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        step = net.steps_done - 1  # the step just taken
        decay = min(float(net.ema_decay), (1.0 + step) / (10.0 + step))
        ema_update(net.ema_module_, net.module_, decay)


class _StepBatches:
    """One skorch "epoch": the steps up to the next history record (``eval_every`` steps, or fewer
    before ``max_steps``), each batch drawn by :meth:`FlexMatchNet.draw_batch` from the infinite
    labeled and unlabeled samplers (sampling with replacement, as the reference code)."""

    def __init__(self, net):
        self.net = net

    def __iter__(self):
        net = self.net
        end = net.next_record_step()
        while net.steps_done < end:
            yield net.draw_batch()

    def __len__(self):
        return max(0, self.net.next_record_step() - self.net.steps_done)


def count_records(start: int, max_iter: int, every: int) -> int:
    """History records (skorch epochs) between step ``start`` and ``max_iter``: one every ``every`` steps and at the end.

    Examples
    --------
    >>> count_records(0, 10, 4), count_records(3, 10, 4), count_records(10, 10, 4)
    (3, 3, 0)
    """
    count, step = 0, int(start)
    while step < max_iter:
        step = min(int(max_iter), (step // int(every) + 1) * int(every))
        count += 1
    return count


class FlexMatchNet(StepNet):
    """skorch network running FlexMatch steps through skorch's own ``fit_loop``.

    Not meant to be used on its own: :class:`PriorGuidedFlexMatchClassifier` builds it, hands it
    the training tensors through :meth:`set_training_data` and trains it with
    :meth:`~as3l_sklearn.nn._step_net.StepNet.fit_steps`.

    One skorch epoch is ``eval_every`` optimizer steps (the last one up to ``max_steps``); every
    batch is a pair ``(labeled indices, unlabeled indices)`` drawn from infinite samplers
    (:meth:`draw_batch`), and :meth:`train_step_single` gathers and augments the images, derives
    the pseudo-labels and their mask and computes ``Loss = Loss_l + lambda_u * Loss_un``
    (Eq. 2-4) in :meth:`get_loss`: ``criterion`` (cross-entropy) on the labeled batch and, per
    sample, on the strong views against the masked pseudo-labels. The learning rate
    ``lr * cos(7 pi k / (16 K))`` (:func:`cosine_lr`, set by skorch's ``LRScheduler``) and the
    weight average (:class:`EMAUpdate`) are default callbacks, so user callbacks
    (``callbacks=[...]``) see the usual ``on_batch_*`` / ``on_epoch_*`` events.
    Under ``torchrun`` every rank draws the same global batch and keeps its share; gradients
    are all-reduced by DDP and the learning status is updated from every rank's predictions.

    Besides the usual skorch parameters it takes ``mu``, ``lambda_u``, ``tau``,
    ``threshold_warmup``, ``ema_decay``, ``weight_decay``, ``momentum``, ``nesterov``,
    ``max_steps`` (K of the cosine schedule, and the end of training), ``eval_every`` (steps per
    epoch), ``amp`` and ``num_workers`` (DataLoader workers reading images held as a
    :class:`Uint8Images`: a memory map or a lazy folder; see :meth:`train_step_single`).
    ``module_`` is trained; ``ema_module_`` holds the exponential moving average used for
    evaluation; ``steps_done`` counts optimizer steps over all fits.
    """

    transient_attributes = (*StepNet.transient_attributes, "_data", "_window", "_drawn_ahead", "_loss_terms")

    def __init__(self, module, *args, mu=7, lambda_u=1.0, tau=0.95, threshold_warmup=True,
                 ema_decay=0.999, weight_decay=5e-4, momentum=0.9, nesterov=True, max_steps=1000,
                 eval_every=50, amp=True, num_workers=0, threshold="flexmatch", **kwargs):
        kwargs.setdefault("criterion", nn.CrossEntropyLoss)
        kwargs.setdefault("optimizer", torch.optim.SGD)
        kwargs.setdefault("train_split", None)
        kwargs.setdefault("max_epochs", 1)
        super().__init__(module, *args, max_steps=max_steps, amp=amp, **kwargs)
        self.mu = mu
        self.lambda_u = lambda_u
        self.tau = tau
        self.threshold_warmup = threshold_warmup
        self.ema_decay = ema_decay
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.nesterov = nesterov
        self.eval_every = eval_every
        self.num_workers = num_workers
        self.threshold = threshold
        self.use_prior = False

    def lr_at(self, step: int) -> float:
        return cosine_lr(self.lr, step, self.max_steps)

    def get_default_callbacks(self):
        # skorch's timer and train_loss, the schedule, then the EMA; no validation loss and no
        # PrintLog (the estimator prints its own history lines with verbose=2)
        defaults = [(name, callback) for name, callback in super().get_default_callbacks()
                    if name not in ("valid_loss", "print_log")]
        return [*defaults, ("ema", EMAUpdate())]

    # ------------------------------------------------------------------ initialisation
    def initialize_module(self):
        super().initialize_module()
        import copy

        # a registered second module: skorch moves it between devices and pickles it
        self.ema_module_ = copy.deepcopy(self.module_)
        for parameter in self.ema_module_.parameters():
            parameter.requires_grad_(False)
        return self

    def initialize_criterion(self):
        super().initialize_criterion()
        import copy

        # the unlabeled term is masked per sample: the same criterion, without its reduction
        unlabeled = copy.deepcopy(self.criterion_)
        unlabeled.reduction = "none"
        self.criterion_unlabeled_ = unlabeled
        return self

    def initialize_optimizer(self, triggered_directly=None):
        groups = param_groups_without_decay(self.module_, self.weight_decay)
        self.optimizer_ = self.optimizer(groups, lr=self.lr, momentum=self.momentum,
                                         nesterov=bool(self.nesterov and self.momentum > 0))
        return self

    def synced_modules(self):
        return [self.module_, self.ema_module_]

    # ------------------------------------------------------------------ training data
    def set_training_data(self, *, images, y_labeled, labeled_idx, weak, strong, generator,
                          status, prior=None, y_true=None, aug_generator=None, freematch_state=None):
        """Hand the net the tensors one step needs (kept out of pickles; dropped by :meth:`end_fit`).

        ``images`` (n, C, H, W) float on the net's device; ``y_labeled`` (n,) int64 with -1;
        ``labeled_idx`` indices of labeled samples; ``status`` (n,) int64 learning status;
        ``prior`` (n, n_classes) or None; ``y_true`` (n,) int64 or None, for monitoring only;
        ``freematch_state`` FreeMatch's estimates (:func:`new_freematch_state`, updated in place)
        with ``threshold="freematch"``.
        ``generator`` draws the batches (identically on every rank); ``aug_generator`` (default:
        ``generator``) draws the augmentations (seeded per rank under DDP). With
        ``num_workers > 0`` and ``images`` a :class:`Uint8Images`, the batches are read by
        that many DataLoader worker processes (started here, stopped by
        :meth:`clear_training_data`).
        """
        self.clear_training_data()  # a reader left by an earlier fit stops its workers
        reader = None
        if int(getattr(self, "num_workers", 0)) > 0 and isinstance(images, Uint8Images):
            reader = WorkerBatchReader(images, int(self.num_workers))
        self._data = {
            "images": images, "y": y_labeled, "labeled_idx": labeled_idx, "weak": weak,
            "strong": strong, "generator": generator, "status": status, "prior": prior,
            "y_true": y_true, "aug_generator": generator if aug_generator is None else aug_generator,
            "reader": reader, "freematch": freematch_state,
        }
        self._window = []
        return self

    def set_prior(self, prior):
        """Replace the prior used by :meth:`train_step` (``None`` switches guidance off)."""
        self._data["prior"] = prior

    def clear_training_data(self):
        data = getattr(self, "_data", None)
        if data is not None and data.get("reader") is not None:
            data["reader"].close()
        self._data = None
        self._window = []
        self._drawn_ahead = None

    def end_fit(self):
        super().end_fit()
        self.clear_training_data()
        self.__dict__.pop("_loss_terms", None)

    def take_window(self):
        """The per-step results since the last call (for the history record of an epoch)."""
        window, self._window = getattr(self, "_window", []), []
        return window

    # ------------------------------------------------------------------ the step loop
    def next_record_step(self) -> int:
        """The step at which the running epoch ends (a multiple of ``eval_every``, or ``max_steps``)."""
        every = int(self.eval_every)
        return min(int(self.max_steps), (int(self.steps_done) // every + 1) * every)

    def get_iterator(self, dataset, training=False):
        if training:
            return _StepBatches(self)
        return super().get_iterator(dataset, training=training)

    def draw_batch(self):
        """``(labeled indices, unlabeled indices or None)`` of this rank for the next step.

        The global batch (``batch_size`` labeled, ``mu * batch_size`` unlabeled) is drawn with
        replacement from the batch generator, identically on every rank; under DDP each rank
        keeps every ``world_size``-th index (:meth:`DistributedContext.shard`); ``batch_size`` is
        then rounded down to a multiple of ``world_size`` (at least ``world_size``). A batch
        drawn ahead by :meth:`train_step_single` (with ``num_workers > 0``) is returned as it
        was drawn.
        """
        ahead = getattr(self, "_drawn_ahead", None)
        if ahead is not None:
            self._drawn_ahead = None
            return ahead
        data = self._data
        generator = data["generator"]
        batch_size = int(self.batch_size)
        context = self.distributed
        if context is not None:
            # equal shares on every rank (all_gather of the learning status needs equal sizes;
            # a mean of per-rank means is then the global mean)
            batch_size = max(context.world_size, batch_size - batch_size % context.world_size)
        population = data["labeled_idx"]
        labeled = population[torch.randint(len(population), (batch_size,), generator=generator)]
        unlabeled = None
        if self.lambda_u > 0:
            unlabeled = torch.randint(len(data["images"]), (int(self.mu) * batch_size,), generator=generator)
        if context is not None:
            labeled = context.shard(labeled)
            unlabeled = None if unlabeled is None else context.shard(unlabeled)
        return labeled, unlabeled

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            train_step = step_fn

            def step_fn(batch, **params):  # the step index and the prior switch travel with the call
                return train_step(batch, step=self.steps_done, use_prior=self.use_prior, **params)

        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch, step=None, use_prior=None, **fit_params):
        """One optimisation step on ``batch = (labeled indices, unlabeled indices)`` (skorch's ``train_step``).

        Parameters
        ----------
        batch : tuple
            From :meth:`draw_batch`.
        step : int, optional
            0-based step index (default ``steps_done``); only for error messages, the learning
            rate comes from the ``lr_schedule`` callback (:meth:`lr_at`).
        use_prior : bool, optional
            Whether pseudo-labels come from Eq. 5's ``normalize(y_prior + y_pred_weak)``
            (default: the ``use_prior`` attribute, set by the estimator's schedule).

        Returns
        -------
        dict with ``loss`` (tensor), ``y_pred`` (labeled logits), ``loss_l``, ``loss_u``,
        ``mask`` (floats; the fraction of the unlabeled batch in the loss) and, when ``y_true``
        was given, ``n_pseudo`` / ``n_pseudo_correct``. Under DDP the floats are averaged (the
        counts summed) over the ranks, so every rank records the same history.
        """
        self._step_args = (self.steps_done if step is None else int(step),
                           self.use_prior if use_prior is None else bool(use_prior))
        lr = self.optimizer_.param_groups[0]["lr"]  # this step's rate, before the schedule moves on
        result = super().train_step(batch, **fit_params)
        record = {k: v for k, v in result.items() if k != "y_pred"}
        record["loss"] = float(result["loss"])
        record["prior"] = self._step_args[1]
        record["lr"] = lr
        self._window.append(record)
        return result

    def train_step_single(self, batch, **fit_params):
        """Views, forward, pseudo-labels, :meth:`get_loss` and backward of one step (no optimizer step)."""
        step, use_prior = getattr(self, "_step_args", (self.steps_done, self.use_prior))
        self._set_training(True)
        labeled, unlabeled = batch
        inputs, y_l = self._step_inputs(labeled, unlabeled)
        with self.autocast():
            logits = self.ddp_module(inputs)
        logits = logits.float()
        batch_size = len(labeled)
        logits_l = logits[:batch_size]
        if unlabeled is None:
            y_pred, y_true, stats = (logits_l, None), (y_l, None, None), {}
        else:
            logits_uw, logits_us = logits[batch_size:].chunk(2)
            pseudo_labels, mask = self._pseudo_labels(logits_uw, unlabeled, use_prior)
            y_pred, y_true = (logits_l, logits_us), (y_l, pseudo_labels, mask)
            stats = {"mask": mask.mean(), **self._pseudo_label_quality(unlabeled, pseudo_labels, mask)}
        loss = self.get_loss(y_pred, y_true, X=batch, training=True)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {float(loss)} at step {step}; "
                                     "lower lr or check the input images")
        self.backward(loss)
        if unlabeled is None:
            stats["mask"] = torch.zeros((), device=loss.device)
        return self._step_result({**self._loss_terms, **stats, "loss": loss.detach()}, logits_l)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """``Loss = Loss_l + lambda_u * Loss_un`` (Eq. 2-4) of ``y_pred = (labeled logits, strong-view
        logits)`` against ``y_true = (labels, pseudo-labels, mask)``.

        ``Loss_l`` is ``criterion`` on the labeled batch; ``Loss_un`` the per-sample criterion of
        the strong views against the pseudo-labels, times the mask, averaged over the whole
        unlabeled batch. Without an unlabeled batch (strong-view logits ``None``) the loss is
        ``Loss_l``. Both terms are kept, detached, for the history.
        """
        logits_l, logits_us = y_pred
        y_l, pseudo_labels, mask = y_true
        loss_l = self.criterion_(logits_l, y_l)
        if logits_us is None:
            self._loss_terms = {"loss_l": loss_l.detach(), "loss_u": torch.zeros((), device=loss_l.device)}
            return loss_l
        loss_u = (self.criterion_unlabeled_(logits_us, pseudo_labels) * mask).mean()
        self._loss_terms = {"loss_l": loss_l.detach(), "loss_u": loss_u.detach()}
        return loss_l + self.lambda_u * loss_u

    def _step_inputs(self, labeled, unlabeled):
        """The batch fed to the network (weak labeled views, then weak and strong unlabeled views) and its labels."""
        data = self._data
        aug = data["aug_generator"]
        x_l, x_u = self._gather_batch(labeled, unlabeled)
        x_l = data["weak"](x_l, generator=aug)
        y_l = data["y"][labeled].to(self.device)
        if unlabeled is None:
            inputs = x_l
        else:
            x_uw = data["weak"](x_u, generator=aug)
            x_us = data["strong"](x_u, generator=aug)
            inputs = torch.cat([x_l, x_uw, x_us])
        if data["reader"] is not None and self.steps_done + 1 < int(self.max_steps):
            # the next step's indices, drawn now: right after this step's augmentations, which
            # is also where the loop without workers draws them (nothing else uses the
            # generator in between), so the batches are the same; the workers read the next
            # batch while this step trains
            self._drawn_ahead = self.draw_batch()
            data["reader"].submit([i for i in self._drawn_ahead if i is not None])
        return inputs, y_l

    @torch.no_grad()
    def _pseudo_labels(self, logits_uw, unlabeled, use_prior):
        """Hard pseudo-labels and their mask (FlexMatch's or FreeMatch's thresholds) from the weak
        views; updates the learning status (and FreeMatch's estimates)."""
        data, device = self._data, self.device
        probs_weak = torch.softmax(logits_uw.detach(), dim=1)
        status = data["status"]
        source = probs_weak
        if use_prior and data["prior"] is not None:
            source = prior_posterior(data["prior"][unlabeled.to(data["prior"].device)].to(device), probs_weak)
        if self.threshold == "freematch":
            pseudo_labels, mask = self._freematch_mask(source, probs_weak)
        else:
            beta = flexmatch_class_beta(status, probs_weak.shape[1], self.threshold_warmup)
            pseudo_labels, mask = flexmatch_mask(source, beta, self.tau)
        # FlexMatch's learning status follows the model's own weak prediction; under DDP every
        # rank applies every rank's predictions, so the status stays identical
        context = self.distributed
        if context is not None:
            update_learning_status(status, context.all_gather(unlabeled.to(device)),
                                   context.all_gather(probs_weak), self.tau)
        else:
            update_learning_status(status, unlabeled, probs_weak, self.tau)
        return pseudo_labels, mask

    def _freematch_mask(self, source, probs_weak):
        """FreeMatch: its estimates follow the model's own weak predictions (of every rank under
        DDP), then ``max(source) >= tau_t(argmax source)``; ``source`` is the posterior of Eq. 5
        under prior guidance, as for FlexMatch's thresholds."""
        state = self._data["freematch"]
        context = self.distributed
        update_freematch_state(state, probs_weak if context is None else context.all_gather(probs_weak),
                               FREEMATCH_MOMENTUM)
        max_probs, pseudo_labels = source.max(dim=1)
        thresholds = freematch_thresholds(state).to(source.device)[pseudo_labels]
        return pseudo_labels, (max_probs >= thresholds).to(source.dtype)

    def _pseudo_label_quality(self, unlabeled, pseudo_labels, mask) -> dict:
        """``n_pseudo`` / ``n_pseudo_correct`` of the masked pseudo-labels when ``y_true`` was given."""
        if self._data["y_true"] is None:
            return {}
        truth = self._data["y_true"][unlabeled].to(self.device)
        known = (truth != -1) & (mask > 0)  # -2: a class y lacks, always wrong
        return {"n_pseudo": known.sum().float(), "n_pseudo_correct": ((pseudo_labels == truth) & known).sum().float()}

    def _step_result(self, stats, logits_l) -> dict:
        """``stats`` as floats (the counts as ints), averaged (counts summed) over the ranks under DDP."""
        names = list(stats)
        values = torch.stack([stats[k].float().reshape(()) for k in names])
        context = self.distributed
        if context is not None:
            # one small all-reduce: every rank records the same (global) history
            context.all_reduce_sum(values)
            counts = torch.tensor([k.startswith("n_pseudo") for k in names], device=values.device)
            values = torch.where(counts, values, values / context.world_size)
        result = {k: float(v) for k, v in zip(names, values.tolist())}
        for key in ("n_pseudo", "n_pseudo_correct"):
            if key in result:
                result[key] = int(round(result[key]))
        result["loss"] = values[names.index("loss")]
        result["y_pred"] = logits_l.detach()
        return result

    def _gather_batch(self, labeled, unlabeled):
        """Float32 images of the labeled and the unlabeled (or ``None``) indices on the device.

        uint8 images (a tensor or a :class:`Uint8Images`) are converted after the gather; with
        a worker reader the images come from the DataLoader workers.
        """
        data, device = self._data, self.device
        reader = data["reader"]
        if reader is None:
            x_u = None if unlabeled is None else gather_float(data["images"], unlabeled, device)
            return gather_float(data["images"], labeled, device), x_u
        raw = reader.take([i for i in (labeled, unlabeled) if i is not None])
        images = [uint8_batch_to_float(part.to(device)) for part in raw]
        return images[0], (images[1] if unlabeled is not None else None)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_logits(self, images, batch_size: int = 256, features: bool = False,
                       num_workers=None):
        """Logits (or penultimate features) of the EMA network, batch-wise in eval mode.

        ``num_workers`` (default: the net's): DataLoader workers reading the batches of a
        :class:`Uint8Images` (the same batches as read in the main process).
        """
        module = self.ema_module_
        was_training = module.training
        module.eval()
        outputs = []
        if num_workers is None:
            num_workers = int(self.num_workers)
        if isinstance(images, Uint8Images):  # uint8 read per batch, converted on the device
            if images.in_memory:
                num_workers = 0  # indexing an array in memory: nothing for workers to do
            batches = (uint8_batch_to_float(raw.to(self.device))
                       for raw in read_uint8_batches(images, batch_size, num_workers))
        else:
            batches = (torch.as_tensor(images[start:start + batch_size]).to(self.device)
                       for start in range(0, len(images), batch_size))
        try:
            for chunk in batches:
                with self.autocast():
                    out = module.features(chunk) if features else module(chunk)
                outputs.append(out.float().cpu())
        finally:
            module.train(was_training)
        if not outputs:
            return torch.zeros((0, 0))
        return torch.cat(outputs)

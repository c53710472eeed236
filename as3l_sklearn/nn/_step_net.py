"""The training base of the torch estimators' networks: skorch's fit loop, counted in optimizer steps.

:class:`StepNet` is the :class:`skorch.NeuralNet` that the SimSiam network
(:mod:`as3l_sklearn.embedding._simsiam_net`) and the FlexMatch network
(:mod:`as3l_sklearn.classification._net`) derive from. What they share lives here once:

* the step budget: ``steps_done`` counts optimizer steps over all fits and ``max_steps`` ends
  a fit inside an epoch if need be;
* the learning rate of every step, :meth:`StepNet.lr_at`, applied by skorch's
  :class:`~skorch.callbacks.LRScheduler` stepped every batch (:class:`StepLRScheduler`);
* mixed precision (:meth:`StepNet.autocast`): bfloat16 where the GPU supports it, float16 only
  with a :class:`torch.amp.GradScaler`; nothing on the CPU;
* Ctrl-C: skorch's ``partial_fit`` keeps the weights reached, :meth:`StepNet.training_interrupted`
  tells the estimator, which warns with :class:`TrainingInterruptedWarning`;
* how an estimator drives the net (:meth:`StepNet.fit_steps`): its own callbacks (which hold
  its training data) for one fit only, the user's callbacks kept;
* pickling: no training-time state (process group, generators, data, the scaler object), and
  the module passed as an instance stored once.
"""

from __future__ import annotations

import itertools
import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.utils import TeeGenerator

from ._callbacks import DistributedNetMixin

#: placeholder for a net's ``module`` parameter in its pickle when it is ``module_`` itself
SAME_AS_MODULE_ = "<same as module_>"


class TrainingInterruptedWarning(UserWarning, RuntimeWarning):
    """``fit`` was interrupted (Ctrl-C); the estimator keeps the weights reached so far.

    A ``UserWarning`` (what :class:`~as3l_sklearn.SimSiamEmbedder` emitted before the two
    training loops shared this class) and a ``RuntimeWarning`` (what the FlexMatch
    classifiers emitted), so that filters written for either still apply.
    """


def check_user_callbacks(callbacks, taken=(), taken_prefix=None) -> list:
    """``callbacks`` as a list of ``(name, skorch Callback)`` pairs whose names are free.

    Parameters
    ----------
    callbacks : list of (str, Callback) or None
        The estimator's ``callbacks`` parameter (instances or classes of skorch callbacks).
    taken : iterable of str
        Names of the net's and the estimator's own callbacks.
    taken_prefix : str, optional
        Names starting with it are reserved too (callbacks an estimator may add later).

    Returns
    -------
    list of tuple

    Examples
    --------
    >>> from skorch.callbacks import EpochTimer
    >>> check_user_callbacks([("timer2", EpochTimer())], taken=["epoch_timer"])[0][0]
    'timer2'
    """
    pairs = list(callbacks or [])
    for item in pairs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"callbacks must be a list of (name, callback) pairs, got {item!r}")
        name, callback = item
        if not isinstance(callback, Callback) and not (isinstance(callback, type) and issubclass(callback, Callback)):
            raise TypeError(f"callbacks: {name!r} must be a skorch.callbacks.Callback, got {type(callback).__name__}")
        if name in set(taken) or (taken_prefix and name.startswith(taken_prefix)):
            raise ValueError(f"callbacks: the name {name!r} is taken by the estimator's own callbacks")
    return [tuple(item) for item in pairs]


class ScheduledLR(torch.optim.lr_scheduler.LRScheduler):
    """A ``LambdaLR`` whose function returns the rate itself: ``lr = rate_at(step)`` for every group.

    ``LambdaLR`` multiplies the base rate by a factor; the nets' schedules are written as rates
    (e.g. ``base * (k + 1) / warmup``), and computing them the same way keeps every rate the
    float it was before the schedules moved into skorch's scheduler.
    """

    def __init__(self, optimizer, rate_at, last_epoch=-1):
        self.rate_at = rate_at
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        rate = float(self.rate_at(self.last_epoch))
        return [rate for _ in self.optimizer.param_groups]


class StepLRScheduler(LRScheduler):
    """skorch's ``LRScheduler(step_every="batch")`` following the net's :meth:`StepNet.lr_at`.

    The scheduler is built at ``on_train_begin`` at step ``net.steps_done`` (skorch's own would
    count the epochs of the history), so a fit that resumes continues the schedule; it records
    each step's rate as ``event_lr`` in the batch history. The torch scheduler holds the
    optimizer and the net: it is left out of pickles and rebuilt by the next fit.
    """

    def __init__(self, policy=ScheduledLR, event_name="event_lr"):
        super().__init__(policy=policy, monitor=None, event_name=event_name, step_every="batch")

    def _get_scheduler(self, net, policy, **scheduler_kwargs):
        for group in net.optimizer_.param_groups:
            group.setdefault("initial_lr", group["lr"])  # a resumed torch scheduler requires it
        return policy(net.optimizer_, rate_at=net.lr_at, last_epoch=int(net.steps_done) - 1, **scheduler_kwargs)

    def _step(self, net, lr_scheduler, score=None):
        if getattr(net, "_grad_scaler", None) is None:
            return super()._step(net, lr_scheduler, score=score)
        # a float16 step whose gradients overflowed is skipped by the scaler; torch then warns
        # that the schedule moved first, but the rate of step k is lr_at(k) whatever happened
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            return super()._step(net, lr_scheduler, score=score)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["lr_scheduler_"] = None
        return state


class StepNet(DistributedNetMixin, NeuralNet):
    """skorch net trained for a budget of optimizer steps (the base of the SimSiam and FlexMatch nets).

    Besides skorch's parameters it takes ``max_steps`` (the fit stops after that many steps in
    all, inside an epoch if need be; ``None``: no limit) and ``amp`` (mixed precision on CUDA,
    see :meth:`autocast`). ``steps_done`` counts optimizer steps over all fits. Subclasses give
    the learning rate of each step in :meth:`lr_at` and call :meth:`backward` on their loss in
    ``train_step_single``.
    """

    #: attributes of a running fit, never pickled (subclasses add theirs)
    transient_attributes = ("_grad_scaler",)

    def __init__(self, *args, max_steps=None, amp=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_steps = max_steps
        self.amp = amp
        self.steps_done = 0

    # ------------------------------------------------------------------ schedule
    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based); constant ``lr`` here."""
        return float(self.lr)

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("lr_schedule", StepLRScheduler())]

    # ------------------------------------------------------------------ mixed precision
    def amp_dtype(self):
        """The autocast dtype: ``None`` (off) unless ``amp`` and CUDA; bfloat16 where supported, else float16."""
        if not self.amp or torch.device(self.device).type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def autocast(self):
        """The autocast context of training and inference steps (disabled when :meth:`amp_dtype` is ``None``)."""
        dtype = self.amp_dtype()
        device_type = torch.device(self.device).type
        if dtype is None:
            return torch.autocast(device_type=device_type, enabled=False)
        return torch.autocast(device_type=device_type, dtype=dtype)

    def backward(self, loss):
        """``loss.backward()``, scaled by the gradient scaler under float16 autocast."""
        scaler = getattr(self, "_grad_scaler", None)
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _start_grad_scaler(self):
        # float16 gradients underflow without loss scaling; bfloat16 has float32's range
        self._grad_scaler = None
        if self.amp_dtype() == torch.float16:
            scaler = torch.amp.GradScaler(torch.device(self.device).type)
            state = getattr(self, "_grad_scaler_state", None)
            if state:  # continue the scale a previous fit reached
                scaler.load_state_dict(state)
            self._grad_scaler = scaler

    def _stop_grad_scaler(self):
        scaler = self.__dict__.pop("_grad_scaler", None)
        if scaler is not None:
            self._grad_scaler_state = scaler.state_dict()  # floats and ints: picklable anywhere

    # ------------------------------------------------------------------ the step loop
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._start_grad_scaler()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        self._stop_grad_scaler()

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training and iterator is not None and self.max_steps is not None:
            iterator = itertools.islice(iterator, max(int(self.max_steps) - int(self.steps_done), 0))
        return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def train_step(self, batch, **fit_params):
        scaler = getattr(self, "_grad_scaler", None)
        if scaler is None:
            step = super().train_step(batch, **fit_params)
        else:
            step = self._scaled_train_step(scaler, batch, **fit_params)
        self.steps_done += 1
        return step

    def _scaled_train_step(self, scaler, batch, **fit_params):
        """skorch's ``train_step`` with a gradient scaler (which takes no optimizer closure).

        Callbacks' ``on_grad_computed`` see the unscaled gradients; a step whose gradients
        overflowed is skipped and the scale lowered, as :class:`torch.amp.GradScaler` does.
        """
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        optimizers = [getattr(self, name + "_") for name in self._optimizers]
        for optimizer in optimizers:
            scaler.unscale_(optimizer)
        self.notify("on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()),
                    batch=batch, training=True)
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()
        return step

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        self._train_interrupted = False
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except KeyboardInterrupt:
            self._train_interrupted = True
            raise  # skorch's partial_fit catches it and keeps the weights

    def training_interrupted(self) -> bool:
        """Whether the last fit was stopped by Ctrl-C (not by an ``EarlyStopping`` callback,
        which ends a skorch fit with ``KeyboardInterrupt`` too)."""
        if not getattr(self, "_train_interrupted", False):
            return False
        return not any(isinstance(cb, EarlyStopping) and getattr(cb, "misses_", 0) >= cb.patience
                       for _, cb in getattr(self, "callbacks_", []))

    # ------------------------------------------------------------------ driven by an estimator
    def fit_steps(self, X, y=None, *, fit_callbacks=(), distributed=None):
        """Train with skorch's ``partial_fit`` (from ``steps_done`` on, up to ``max_epochs`` epochs).

        Parameters
        ----------
        X, y
            What ``partial_fit`` takes (a Dataset, tensors, ...).
        fit_callbacks : list of (name, Callback)
            The estimator's callbacks for this fit only, run before the user's (the net's
            ``callbacks``); they often hold training data, so they are dropped afterwards and
            the fitted net keeps the user's callbacks alone.
        distributed : DistributedContext or None
            The process group of a torchrun fit (for this fit only).

        Returns
        -------
        self
        """
        if not self.initialized_:
            self.initialize()
        user_callbacks = list(self.callbacks or [])
        self.callbacks = [*fit_callbacks, *user_callbacks]
        self.set_distributed(distributed)
        try:
            self.initialize_callbacks()
            self.partial_fit(X, y)
        finally:
            names = {name for name, _ in fit_callbacks}
            self.callbacks_ = [(name, cb) for name, cb in getattr(self, "callbacks_", []) if name not in names]
            self.callbacks = user_callbacks
            self.set_distributed(None)
            self.end_fit()
        return self

    def end_fit(self):
        """Drop what only the fit that just ended needs (called by :meth:`fit_steps`, even after an error)."""
        self._stop_grad_scaler()

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        scaler = self.__dict__.get("_grad_scaler")
        state = super().__getstate__()
        if scaler is not None:  # pickled during a fit (e.g. by a callback): the scale, not the object
            state["_grad_scaler_state"] = scaler.state_dict()
        for key in self.transient_attributes:
            state.pop(key, None)
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

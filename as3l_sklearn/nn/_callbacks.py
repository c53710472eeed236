"""skorch callbacks and a net mixin shared by the torch estimators' training loops.

SimSiam (:mod:`as3l_sklearn.embedding._simsiam_net`) and FlexMatch
(:mod:`as3l_sklearn.classification._net`) both run through skorch's ``fit_loop`` on the
training base :class:`~as3l_sklearn.nn._step_net.StepNet`; the step progress bar and torch DDP
(module wrapping, buffer synchronisation, the final broadcast), which the base mixes in, live
here.
"""

from __future__ import annotations

from skorch.callbacks import Callback

from ..utils._progress import progress_bar


class StepProgress(Callback):
    """One tqdm bar over the optimizer steps of a whole fit, with the last epoch's values.

    Parameters
    ----------
    total_steps : int
        Length of the bar (the fit's step budget).
    desc : str
        Its label (the estimator's name).
    initial : int, default=0
        Steps already done (a warm-started fit resumes the count).
    postfix : tuple of (label, history key, format), optional
        Values of the last history row shown after the bar; default ``loss`` from
        ``train_loss``.
    """

    def __init__(self, total_steps, desc, initial=0, postfix=None):
        self.total_steps = total_steps
        self.desc = desc
        self.initial = initial
        self.postfix = postfix

    def on_train_begin(self, net, **kwargs):
        self.bar_ = progress_bar(self.total_steps, self.desc)
        initial = int(getattr(self, "initial", 0) or 0)
        if initial:
            self.bar_.update(initial)

    def on_batch_end(self, net, training=False, **kwargs):
        if training and getattr(self, "bar_", None) is not None:
            self.bar_.update(1)

    def on_epoch_end(self, net, **kwargs):
        if getattr(self, "bar_", None) is None or not len(net.history):
            return
        row = net.history[-1]
        shown = {}
        for label, key, fmt in getattr(self, "postfix", None) or (("loss", "train_loss", ".4f"),):
            value = row.get(key)
            if value is not None:
                shown[label] = format(value, fmt)
        if shown:
            self.bar_.set_postfix(refresh=False, **shown)

    def on_train_end(self, net, **kwargs):
        if getattr(self, "bar_", None) is not None:
            self.bar_.close()
        self.bar_ = None  # a tqdm object has no place in the fitted model's pickle


class DistributedNetMixin:
    """torch DDP for a skorch ``NeuralNet`` whose estimator hands it a process group.

    The estimator calls :meth:`set_distributed` with a
    :class:`~as3l_sklearn.utils._distributed.DistributedContext` (or ``None``) before
    ``fit``. At ``on_train_begin`` the module returned by :meth:`ddp_target` is wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` (which also broadcasts rank 0's
    initial weights), and the training step runs its forward through :attr:`ddp_module`
    so that backward all-reduces the gradients. After every epoch rank 0's buffers
    (BatchNorm statistics, EMA) are copied to all ranks before any callback evaluates the
    model; at ``on_train_end`` all weights are, so every rank ends with the same model.
    Nothing of this is pickled.
    """

    _dist = None
    _ddp = None

    def set_distributed(self, context):
        self._dist = context
        return self

    @property
    def distributed(self):
        return getattr(self, "_dist", None)

    def ddp_target(self):
        """The module whose ``forward`` the training step calls (``module_`` by default)."""
        return self.module_

    def synced_modules(self):
        """Modules whose state is copied from rank 0 after every epoch and at the end."""
        return [self.module_]

    @property
    def ddp_module(self):
        """The DDP-wrapped training module while a distributed fit runs, else :meth:`ddp_target`."""
        ddp = getattr(self, "_ddp", None)
        return ddp if ddp is not None else self.ddp_target()

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._train_interrupted = False
        context = self.distributed
        if context is not None:
            import torch
            from torch.nn.parallel import DistributedDataParallel

            device = torch.device(self.device)
            device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
                if device.type == "cuda" else None
            # through __dict__: skorch refuses torch modules set outside its initialize methods,
            # and this wrapper is a training-time view, not a part of the model
            self.__dict__["_ddp"] = DistributedDataParallel(self.ddp_target(), device_ids=device_ids)

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        if self.distributed is not None:
            self.distributed.broadcast_buffers(*self.synced_modules())

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)
        if self.distributed is not None:
            self.__dict__["_ddp"] = None
            if not getattr(self, "_train_interrupted", False):
                # after Ctrl-C the ranks may have stopped at different steps: no collective then
                self.distributed.broadcast_state(*self.synced_modules())

    def _drop_distributed_state(self, state):
        for key in ("_dist", "_ddp", "_train_interrupted"):
            state.pop(key, None)
        return state

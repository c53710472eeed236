"""torch.distributed (DDP) support for the torch estimators, launched by ``torchrun``.

Plain :class:`torch.nn.parallel.DistributedDataParallel` rather than skorch's
``AccelerateMixin``: Hugging Face ``accelerate`` is not a dependency (nor installable in an
offline environment), and the estimators' training steps are custom (two SimSiam views, a
labeled plus a ``mu``-times larger unlabeled FlexMatch batch, a learning status shared by
all processes) -- DDP's three hooks (wrap the module, shard the samples, all-reduce a few
statistics) are all they need.

A fit is distributed when the process was started by ``torchrun`` (the environment variables
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set, ``WORLD_SIZE > 1``; not in a joblib or
multiprocessing worker of such a process) or when the caller already initialised a process
group (e.g. under ``torch.multiprocessing.spawn``). The group is created on first use (``gloo`` on CPU,
``nccl`` on CUDA) and left to the caller (or the end of the process) to destroy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistributedContext:
    """Rank and size of the process group a fit runs in."""

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def as_report(self) -> dict:
        """What ``report.json`` and the estimators' ``distributed_`` record."""
        return {"world_size": int(self.world_size), "backend": str(self.backend)}

    # ------------------------------------------------------------------ collectives
    def shard(self, indices):
        """This rank's share of a batch of sample indices drawn identically on every rank.

        Every rank draws the same global batch (same generator, same seed); rank ``r`` keeps
        the positions ``r, r + world_size, ...``, as :class:`torch.utils.data.DistributedSampler`
        does, so the ranks together see exactly the global batch.
        """
        return indices[self.rank::self.world_size]

    def all_reduce_sum(self, tensor):
        import torch.distributed as dist

        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather(self, tensor):
        """The tensors of every rank, concatenated in rank order along the first axis."""
        import torch
        import torch.distributed as dist

        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def broadcast_state(self, *modules) -> None:
        """Copy rank 0's parameters and buffers into every rank's modules (in place)."""
        import torch.distributed as dist

        for module in modules:
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def broadcast_buffers(self, *modules) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

        DDP keeps parameters identical; running statistics are updated from each rank's own
        batch, so evaluation (validation accuracy, monitors) would differ slightly per rank.
        """
        import torch.distributed as dist

        for module in modules:
            for tensor in module.buffers():
                dist.broadcast(tensor.data, src=0)

    def broadcast_object(self, value):
        """Rank 0's ``value`` on every rank (e.g. a decision taken from a measured time)."""
        import torch.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or an equivalent launcher) started this process with several ranks."""
    try:
        return all(k in os.environ for k in ("RANK", "WORLD_SIZE")) and int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def get_distributed(device: str = "cpu") -> DistributedContext | None:
    """The process group to train in, initialised if need be; ``None`` for a single process.

    Parameters
    ----------
    device : str
        The training device: the backend is ``nccl`` for CUDA, ``gloo`` otherwise (when this
        call creates the group; an existing group keeps its backend).

    Returns
    -------
    DistributedContext or None
    """
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if not launched_by_torchrun():
            return None
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            # a joblib/multiprocessing worker of a torchrun process inherits RANK and
            # WORLD_SIZE, but it is not a rank: it trains alone (torchrun starts its ranks as
            # plain subprocesses, which have no multiprocessing parent)
            return None
        cuda = str(device).startswith("cuda")
        backend = "nccl" if cuda and dist.is_nccl_available() else "gloo"
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if cuda:
            # "cuda" then means this rank's own GPU
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    world_size = dist.get_world_size()
    if world_size <= 1:
        return None
    return DistributedContext(rank=dist.get_rank(), world_size=world_size,
                              local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                              backend=str(dist.get_backend()))


def resolve_distributed_device(device: str) -> str:
    """``"cuda"`` becomes this rank's GPU (``cuda:LOCAL_RANK``) under torchrun; others unchanged."""
    if device == "cuda" and launched_by_torchrun():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def resolve_training_device(device: str):
    """``(device, process group or None)`` of a fit: the ``device`` parameter resolved
    (:func:`~as3l_sklearn.utils.resolve_device`); under torchrun the process group joined (or
    created) and ``"cuda"`` this rank's GPU."""
    from ._torch import resolve_device

    device = resolve_device(device)
    context = get_distributed(device)
    if context is not None:
        device = resolve_distributed_device(device)
    return device, context

"""uint8 images kept as they are and converted to float one batch at a time.

Converting a whole training set to float32 up front costs 4x its uint8 size (12 GB for a
million CIFAR-size pictures) and reads a memory-mapped file whole. :class:`Uint8Images`
stands in for the float32 ``n x C x H x W`` array that :func:`check_images` used to return:
it has that shape and dtype, but only holds the uint8 ``n x H x W x C`` source (an array, a
``np.memmap`` or a lazy :class:`~as3l_sklearn.datasets.ImageFolderArray`), and indexing it
converts just the images asked for. The torch nets go one step further: they read uint8
batches through :class:`RawImageDataset` (a DataLoader, with workers if asked) -- or, for
FlexMatch, whose batches are drawn step by step, through :class:`WorkerBatchReader` and
:func:`read_uint8_batches` -- and convert them on their own device with
:func:`uint8_batch_to_float`.
"""

from __future__ import annotations

import numpy as np
import torch

#: images read at a time when a whole source is scanned (value range)
SCAN_CHUNK = 4096


def is_uint8_source(X) -> bool:
    """Whether ``X`` is uint8 channels-last images (3-D or 4-D) that can stay uint8."""
    return getattr(X, "dtype", None) == np.uint8 and len(getattr(X, "shape", ())) in (3, 4)


class Uint8Images:
    """uint8 ``n x H x W x C`` images seen as float32 ``n x C x H x W`` in ``[0, 1]``.

    Indexing (an int, a slice or an index array) returns float32 channels-first images,
    divided by 255 exactly as an up-front ``astype(np.float32) / 255`` would; nothing else
    is copied.

    Parameters
    ----------
    source : array-like of shape (n, H, W, C) or (n, H, W), uint8
        An ndarray, a ``np.memmap`` or any array-like with ``shape``, ``dtype`` and
        numpy-style indexing (e.g. :class:`~as3l_sklearn.datasets.ImageFolderArray`).
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, source):
        self.source = source
        shape = tuple(int(s) for s in source.shape)
        self._gray = len(shape) == 3  # n x H x W: one channel
        n, height, width = shape[:3]
        channels = 1 if self._gray else shape[3]
        self.shape = (n, channels, height, width)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def raw(self, key) -> np.ndarray:
        """The uint8 ``n x H x W x C`` images at ``key`` (an index array is read in sorted
        order, then put back in the order asked, so that a memmap is read forwards)."""
        if isinstance(key, (list, tuple)) or (isinstance(key, np.ndarray) and key.ndim > 0):
            key = np.asarray(key)
            if key.dtype == bool:
                key = np.flatnonzero(key)
            order = np.argsort(key, kind="stable")
            picked = np.asarray(self.source[key[order]])
            out = np.empty_like(picked)
            out[order] = picked
        else:
            out = np.asarray(self.source[key])
            if not out.flags.writeable:  # a read-only memory map: torch wants writeable batches
                out = out.copy()
        return out[..., None] if self._gray else out

    def __getitem__(self, key) -> np.ndarray:
        single = isinstance(key, (int, np.integer))
        raw = self.raw(np.array([key]) if single else key)
        images = raw.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return np.ascontiguousarray(images[0] if single else images)

    def __array__(self, dtype=None, copy=None):
        # an explicit np.asarray(...) materialises everything; the estimators never call it
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def _extreme(self, reduce) -> float:
        if isinstance(self.source, np.ndarray) and not isinstance(self.source, np.memmap):
            return float(reduce(self.source)) / 255.0  # in memory: no copy, one pass
        if getattr(self.source, "lazy", False):
            # a lazy folder would be decoded whole just for this; the nominal uint8 range
            # serves the scale warnings as well (they only compare with 1.5)
            return 0.0 if reduce is np.min else 1.0
        values = [reduce(np.asarray(self.source[s:s + SCAN_CHUNK])) for s in range(0, len(self), SCAN_CHUNK)]
        return float(reduce(values)) / 255.0

    def min(self) -> float:
        return self._extreme(np.min)

    def max(self) -> float:
        return self._extreme(np.max)

    def __reduce__(self):
        return (Uint8Images, (self.source,))

    @property
    def in_memory(self) -> bool:
        """Whether the source is a writable C-contiguous ndarray (not a memory map): read by
        indexing in place, with nothing to gain from reader processes."""
        source = self.source
        return type(source) is np.ndarray and source.flags.c_contiguous and source.flags.writeable


class RawImageDataset(torch.utils.data.Dataset):
    """A torch dataset of the uint8 ``H x W x C`` images of a :class:`Uint8Images`.

    Each item is ``(uint8 tensor, 0)`` (skorch unpacks ``(X, y)`` pairs); the default
    collate stacks them into uint8 ``n x H x W x C`` batches that the net converts with
    :func:`uint8_batch_to_float` on its device: a quarter of the bytes of float32 go
    through the DataLoader (and its workers' queues) and to the GPU.
    """

    def __init__(self, images: Uint8Images):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(np.ascontiguousarray(self.images.raw(np.array([int(i)]))[0])), 0

    def __getitems__(self, indices):
        # the DataLoader's batched read (torch calls it when defined): the batch in one read
        # instead of one per image -- the same bytes, stacked by the default collate as before
        batch = torch.from_numpy(np.ascontiguousarray(self.images.raw(np.asarray(indices, dtype=np.int64))))
        return [(image, 0) for image in batch]


class _BatchReads(torch.utils.data.Dataset):
    """``dataset[key]``: the uint8 ``n x H x W x C`` images of a :class:`Uint8Images` at
    ``key`` (an index array or a slice) as one tensor -- a whole batch, or a share of one,
    per item, read in a DataLoader worker exactly as :meth:`Uint8Images.raw` reads it."""

    def __init__(self, images: Uint8Images):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key):
        return torch.from_numpy(self.images.raw(key))


class _RequestedKeys(torch.utils.data.Sampler):
    """The keys that the next iterator of a DataLoader hands to its workers (set before
    each ``iter(loader)``: the keys are known one request at a time)."""

    def __init__(self):
        self.keys = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


def _worker_loader(images: Uint8Images, keys, num_workers: int, **kwargs):
    """A DataLoader whose workers read the uint8 images at each key of ``keys``.

    ``batch_size=None``: each key already is a batch (or a share of one). The loader's own
    generator seeds the workers, so that starting them leaves torch's global generator,
    which training may use, as it was: results do not depend on ``num_workers``.
    """
    return torch.utils.data.DataLoader(_BatchReads(images), batch_size=None, sampler=keys,
                                       num_workers=num_workers, generator=torch.Generator(),
                                       **kwargs)


def read_uint8_batches(images: Uint8Images, batch_size: int, num_workers: int = 0):
    """The uint8 images of ``images`` as consecutive tensors of ``batch_size``, in order.

    With ``num_workers > 0`` DataLoader workers read (decode) them, several batches ahead;
    the batches are the same as with 0, read in the main process.
    """
    slices = [slice(start, min(start + batch_size, len(images)))
              for start in range(0, len(images), batch_size)]
    if num_workers == 0:
        for key in slices:
            yield torch.from_numpy(images.raw(key))
        return
    yield from _worker_loader(images, slices, num_workers)


class WorkerBatchReader:
    """Reads the uint8 images at index arrays known one step at a time, in DataLoader workers.

    :meth:`submit` hands the images of one step to the workers, split in one share per
    worker so that they decode it together, and returns at once; :meth:`take` returns them
    (waiting for the workers if needed, reading them first if they were not submitted). A
    training loop submits the next step's indices as soon as they are drawn and trains on
    the current step meanwhile. The workers are started once and kept (persistent workers)
    until :meth:`close`.

    Parameters
    ----------
    images : Uint8Images
    num_workers : int
        Worker processes, at least 1.
    """

    def __init__(self, images: Uint8Images, num_workers: int):
        self.num_workers = int(num_workers)
        self._keys = _RequestedKeys()
        self._loader = _worker_loader(images, self._keys, self.num_workers,
                                      persistent_workers=True)
        self._pending = None

    def submit(self, index_arrays) -> None:
        """Start reading the images at each of ``index_arrays`` (1-D int tensors or arrays)."""
        if self._pending is not None:
            self.take(self._pending[0])  # one request in flight at a time
        whole = np.concatenate([np.asarray(index) for index in index_arrays])
        self._keys.keys = [share for share in np.array_split(whole, self.num_workers)
                           if len(share)]
        self._pending = (tuple(index_arrays), iter(self._loader))

    def take(self, index_arrays) -> tuple:
        """The uint8 images (tensors) at each of ``index_arrays``, in that order.

        Arrays submitted last (the same objects) are collected; any others are read now.
        """
        index_arrays = tuple(index_arrays)
        pending = self._pending
        if pending is None or len(pending[0]) != len(index_arrays) or any(
                a is not b for a, b in zip(pending[0], index_arrays)):
            self.submit(index_arrays)
            pending = self._pending
        self._pending = None
        shares = list(pending[1])
        whole = torch.cat(shares) if len(shares) > 1 else shares[0]
        return torch.split(whole, [len(index) for index in index_arrays])

    def close(self) -> None:
        """Collect what is in flight and stop the workers."""
        if self._pending is not None:
            self.take(self._pending[0])
        self._loader = None  # the last reference to its iterator, which stops the workers


def uint8_batch_to_float(x: torch.Tensor, size=None) -> torch.Tensor:
    """uint8 ``n x H x W x C`` -> float32 ``n x C x H x W`` in [0, 1], optionally resized.

    Division by 255 in float32 gives the same values as the up-front numpy conversion;
    the resize (bilinear, antialiased) is the one applied to whole arrays before.
    """
    # the standard NCHW strides, as a float array would have: with one channel a permuted
    # tensor counts as contiguous but keeps NHWC strides, and convolutions then take another
    # kernel (results differing in the last bit)
    x = x.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format) / 255.0
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False,
                                            antialias=True)
    return x


def gather_float(images, index, device) -> torch.Tensor:
    """Float32 ``n x C x H x W`` images at ``index`` (a 1-D tensor) on ``device``.

    ``images`` is a torch tensor (float ``n x C x H x W``, or uint8 ``n x H x W x C``,
    converted after the gather) or a :class:`Uint8Images` (read from its source).
    """
    if isinstance(images, Uint8Images):
        raw = torch.from_numpy(images.raw(index.cpu().numpy()))
        return uint8_batch_to_float(raw.to(device))
    batch = images[index.to(images.device)].to(device)
    return uint8_batch_to_float(batch) if batch.dtype == torch.uint8 else batch

"""``--encoder ARCH --encoder-weights FILE|NAME``: your own pretrained encoder in place of
SimSiam from scratch.

SimSiam trained from scratch on a few thousand photos at 32 px on a CPU learns little of what
everyday categories mean; a network pretrained on ImageNet already knows. The encoder is a
torchvision classification architecture with its weights from a local file or, for a
torchvision weights name, from the file torchvision keeps in the torch hub cache (never
downloaded). It sees the images at the size and with the normalisation of its weights, and
is frozen unless ``--encoder-tune`` (then SimSiam continues from its weights).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._errors import UsageError
from ._progress import interrupt_requested

#: the timed step of the pretrained encoder (frozen: one forward pass over the pool)
ENCODER_STEP = "embed (pretrained encoder)"
#: SimSiam's base learning rate when it continues from pretrained weights (``--encoder-tune``):
#: a fifth of SimSiam's own ImageNet rate (0.05), so that a short run adapts the weights
#: rather than washing them out (a choice, not measured here)
TUNE_LR = 0.01
#: images of the forward pass timed for the plan (after one untimed pass)
TIMED_IMAGES = 8


@dataclass(frozen=True)
class EncoderSpec:
    """The pretrained encoder a run uses, resolved from the flags before any work.

    ``weights_name`` is the torchvision weights (``"ResNet18_Weights.IMAGENET1K_V1"``) or
    None for a file of your own; ``file`` is the weights file read (for a torchvision name,
    in the torch hub cache), with its size and modification time: the stage cache keys on
    them, so that new weights in the same file are a new encoder.
    """

    architecture: str
    weights_name: str | None
    file: str
    file_size: int
    file_mtime_ns: int
    image_size: tuple
    mean: tuple
    std: tuple
    tune: bool

    @property
    def weights(self) -> str:
        """What ``pretrained_backbone`` is given: the weights name, else the file."""
        return self.weights_name or self.file

    def as_report(self) -> dict:
        return {"architecture": self.architecture, "weights": self.weights_name or "file",
                "file": self.file, "file_size": self.file_size,
                "image_size": list(self.image_size), "mean": list(self.mean),
                "std": list(self.std), "frozen": not self.tune}


def resolve_encoder(args) -> EncoderSpec | None:
    """The :class:`EncoderSpec` of ``--encoder`` / ``--encoder-weights`` (None without
    ``--encoder``); a :class:`UsageError` names the flag of any problem."""
    if args.encoder is None:
        for flag, given in (("--encoder-weights", args.encoder_weights is not None),
                            ("--encoder-tune", args.encoder_tune),
                            ("--encoder-compare-simsiam", args.encoder_compare_simsiam)):
            if given:
                raise UsageError(f"{flag} needs --encoder ARCH (a torchvision model name)")
        return None
    from ..nn._pretrained import (IMAGENET_MEAN, IMAGENET_STD, _is_weights_name,
                                  hub_weights_file, missing_weights_message,
                                  torchvision_weights, weights_input)

    architecture, given = args.encoder, args.encoder_weights or "DEFAULT"
    try:
        if _is_weights_name(architecture, given):
            weights = torchvision_weights(architecture, given)
            path, stats = hub_weights_file(weights), weights_input(weights)
            if not path.is_file():
                raise UsageError(f"--encoder-weights {given}: "
                                 + missing_weights_message(weights, path))
            name = f"{type(weights).__name__}.{weights.name}"
        else:
            torchvision_weights(architecture, "DEFAULT")  # checks the architecture
            path, name = Path(given).expanduser(), None
            stats = {"image_size": (224, 224), "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
            if not path.is_file():
                raise UsageError(f"--encoder-weights {given}: no such file (a state_dict saved "
                                 "with torch.save, or a torchvision weights name such as "
                                 "IMAGENET1K_V1)")
    except ValueError as exc:
        flag = "--encoder" if str(exc).startswith("architecture") else "--encoder-weights"
        raise UsageError(f"{flag}: {exc}") from None
    size = (args.image_size,) * 2 if args.image_size is not None else stats["image_size"]
    status = path.stat()
    return EncoderSpec(architecture, name, str(path.resolve()), int(status.st_size),
                       int(status.st_mtime_ns), tuple(int(s) for s in size),
                       tuple(stats["mean"]), tuple(stats["std"]), bool(args.encoder_tune))


def build_encoder(spec: EncoderSpec):
    """The encoder module of ``spec`` (its weights loaded, its classification layer removed);
    weights that do not fit the architecture are a :class:`~._errors.UserError` naming
    ``--encoder-weights``."""
    from ..nn import pretrained_backbone
    from ._errors import UserError

    try:
        return pretrained_backbone(spec.architecture, spec.weights, image_size=spec.image_size,
                                   in_channels=3)
    except ValueError as exc:
        raise UserError(f"--encoder-weights {spec.weights_name or spec.file}: {exc}") from None


def embedder_params(spec: EncoderSpec, steps: int, device: str, seed: int) -> dict:
    """The :class:`~as3l_sklearn.SimSiamEmbedder` settings around the encoder (the module
    itself is built in :func:`fit_pretrained`): frozen, or ``steps`` SimSiam steps."""
    params = {"image_size": list(spec.image_size), "normalize": [list(spec.mean), list(spec.std)],
              "device": device, "random_state": seed}
    if spec.tune:
        params.update(max_steps=int(steps), lr=TUNE_LR)
    else:
        params["max_epochs"] = 0  # frozen: the encoder as loaded
    return params


def fit_pretrained(X, spec: EncoderSpec, params: dict, verbose: int):
    """The pretrained encoder as a fitted SimSiamEmbedder (frozen, or tuned by SimSiam from
    its weights) and its features of ``X``; cached by the stage cache on ``spec`` (the
    weights file's size and time) and ``params``."""
    from ..embedding import SimSiamEmbedder

    settings = dict(params, image_size=tuple(params["image_size"]),
                    normalize=tuple(tuple(v) for v in params["normalize"]))
    embedder = SimSiamEmbedder(backbone=build_encoder(spec), verbose=verbose, **settings)
    features = embedder.fit_transform(X)
    if interrupt_requested.is_set():
        raise KeyboardInterrupt
    return embedder, features


def seconds_per_image(spec: EncoderSpec, device: str) -> float:
    """Seconds of one forward pass of the encoder per image at its input size, measured on
    ``TIMED_IMAGES`` random images (after one untimed pass) with the threads the estimators
    use: the plan's unit of cost. The weights do not change the time: random ones are used."""
    import torch
    import torchvision

    from ..utils import resolve_n_threads, torch_threads

    with torch_threads(resolve_n_threads("auto")), torch.no_grad():
        model = torchvision.models.get_model(spec.architecture, weights=None).eval().to(device)
        batch = torch.rand(TIMED_IMAGES, 3, *spec.image_size, device=device)
        model(batch[:2])
        start = time.perf_counter()
        model(batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / TIMED_IMAGES


def pixel_images(X, max_side: int) -> np.ndarray:
    """The pool as uint8 ``(n, h, w, c)`` with the longer side at most ``max_side`` (aspect
    kept; antialiased): PCA pixels of photos loaded at the encoder's 224 px would hold
    150,528 values per image, where the default run checks against 32 px."""
    import torch
    import torch.nn.functional as F

    from ._plan import encoder_size

    first = np.asarray(X[:1])
    shape, uint8 = first.shape, first.dtype == np.uint8
    size = encoder_size(shape[1:3], None, max_side)
    if tuple(size) == tuple(shape[1:3]):
        return np.asarray(X)
    rows = []
    for start in range(0, len(X), 256):
        chunk = torch.from_numpy(np.asarray(X[start:start + 256], dtype=np.float32))
        chunk = chunk.reshape(len(chunk), *shape[1:3], -1).permute(0, 3, 1, 2)
        small = F.interpolate(chunk, size=size, mode="bilinear", antialias=True,
                              align_corners=False)
        small = small.permute(0, 2, 3, 1)
        rows.append(small.round().clamp(0, 255).to(torch.uint8).numpy() if uint8 else small.numpy())
    return np.concatenate(rows)


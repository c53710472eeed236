"""Your own encoder: a torchvision model or any module, with weights from a local file.

Nothing is downloaded: torchvision architectures are built with ``weights=None`` and the
weights come from a ``state_dict`` you saved (``torch.save(model.state_dict(), path)``), or
from the file torchvision keeps for one of its weights names (``"IMAGENET1K_V1"``,
``"ResNet18_Weights.IMAGENET1K_V1"``) in the torch hub cache
(:func:`hub_weights_file`), which must already be there.
:class:`ImageInput` puts the resize and the per-channel normalisation a pretrained network
expects in front of it, so the features are computed on the input it was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import check_image_size
from ..utils._param_validation import ImageSize, Integral, Interval, TorchModule, validate_params

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageInput", "hub_weights_file", "pretrained_backbone",
           "torchvision_weights", "weights_input"]

#: Per-channel mean and std of ImageNet (RGB, values in [0, 1]): torchvision's pretrained models expect them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# attributes holding the classification layer of torchvision's model families
_HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")


def _check_stats(values, name: str) -> tuple[float, ...]:
    try:
        stats = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of floats (one per channel), got {values!r}") from None
    if not stats:
        raise ValueError(f"{name} must not be empty")
    return stats


class ImageInput(nn.Module):
    """Resize, channel adaptation and normalisation in front of an encoder.

    ``forward(x)`` takes float images ``(n, C, H, W)`` with values in [0, 1] (what the
    augmentations produce), resizes them bilinearly (with antialiasing) to ``image_size``,
    repeats a single channel to ``in_channels`` (grayscale images into an RGB network),
    subtracts ``mean`` and divides by ``std`` per channel, then runs ``encoder``.
    ``out_dim`` is the encoder's.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps ``(n, in_channels, *image_size)`` to ``(n, out_dim)``; needs an ``out_dim``
        attribute.
    image_size : int, tuple of (int, int) or None, default=None
        Size the encoder sees; ``None`` keeps the input size.
    mean, std : sequence of float or None, default=None
        Per-channel normalisation (one value, or one per channel the encoder sees); ``None``
        for none.
    in_channels : int or None, default=None
        Channels the encoder expects; 1-channel input is repeated to it. ``None``: as the input.

    Examples
    --------
    >>> import torch
    >>> from as3l_sklearn.nn import ImageInput, make_backbone
    >>> encoder = ImageInput(make_backbone("small_cnn", in_channels=3, image_size=16), image_size=16,
    ...                      mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), in_channels=3)
    >>> encoder(torch.rand(2, 1, 40, 40)).shape
    torch.Size([2, 128])
    """

    @validate_params(
        {"encoder": [TorchModule()], "image_size": [ImageSize(1), None], "mean": ["array-like", None],
         "std": ["array-like", None], "in_channels": [Interval(Integral, 1, None, closed="left"), None]},
        prefer_skip_nested_validation=True,
    )
    def __init__(self, encoder: nn.Module, image_size=None, mean=None, std=None, in_channels=None):
        super().__init__()
        self.encoder = encoder
        self.image_size = None if image_size is None else check_image_size(image_size)
        if (mean is None) != (std is None):
            raise ValueError("mean and std must be given together (or neither)")
        if mean is not None:
            mean, std = _check_stats(mean, "mean"), _check_stats(std, "std")
            if len(mean) != len(std):
                raise ValueError(f"mean and std must have the same length, got {len(mean)} and {len(std)}")
            if min(std) <= 0:
                raise ValueError(f"std must be > 0, got {std!r}")
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        else:
            self.mean = self.std = None
        self.in_channels = None if in_channels is None else int(in_channels)
        self.out_dim = int(encoder.out_dim)

    def extra_repr(self) -> str:
        stats = None if self.mean is None else (self.mean.flatten().tolist(), self.std.flatten().tolist())
        return f"image_size={self.image_size}, in_channels={self.in_channels}, mean/std={stats}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.image_size is not None and tuple(x.shape[-2:]) != self.image_size:
            # antialiasing: plain bilinear downscaling by more than 2x aliases fine textures
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
        if self.in_channels is not None and x.shape[1] == 1 and self.in_channels != 1:
            x = x.expand(-1, self.in_channels, -1, -1)
        if self.mean is not None:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return self.encoder(x)


class _FlatFeatures(nn.Module):
    """A headless network whose output is flattened to ``(n, d)`` (e.g. ``(n, C, 1, 1)`` maps)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net(x), 1)


def _load_state_dict(weights) -> Mapping:
    if isinstance(weights, Mapping):
        state = weights
    else:  # a path (str or os.PathLike)
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ValueError(f"weights: no file at {str(path)!r} (a state_dict saved with torch.save)")
        # weights_only: a weights file must not be able to run code when it is loaded
        state = torch.load(path, map_location="cpu", weights_only=True)
    # common checkpoint layouts: {"state_dict": ...} / {"model": ...}, DataParallel's "module." prefix
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), Mapping):
            state = state[key]
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state

def _classification_models() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def torchvision_weights(architecture: str, name):
    """The torchvision weights enum member ``name`` stands for, for ``architecture``.

    Parameters
    ----------
    architecture : str
        A torchvision classification model name (``"resnet18"``).
    name : str or torchvision.models.WeightsEnum
        A member of the architecture's weights enum: its own name (``"IMAGENET1K_V1"``,
        ``"DEFAULT"``) or the full one (``"ResNet18_Weights.IMAGENET1K_V1"``).

    Returns
    -------
    weights : torchvision.models.WeightsEnum

    Raises
    ------
    ValueError
        An architecture that is not a torchvision classification model, or a name that is
        not one of its weights (the message lists them).

    Examples
    --------
    >>> torchvision_weights("resnet18", "IMAGENET1K_V1")
    ResNet18_Weights.IMAGENET1K_V1
    """
    import torchvision

    if architecture not in _classification_models():
        raise ValueError(f"architecture: {architecture!r} is not a torchvision classification "
                         "model (torchvision.models.list_models(module=torchvision.models))")
    enum = torchvision.models.get_model_weights(architecture)
    known = ", ".join(member.name for member in enum) + ", DEFAULT"
    if isinstance(name, enum):
        return name
    text = str(name)
    prefix, _, member = text.rpartition(".")
    if prefix and prefix != enum.__name__:
        raise ValueError(f"weights {text!r} are not weights of {architecture} (its weights are "
                         f"{enum.__name__}: {known})")
    try:
        return enum[member]
    except KeyError:
        raise ValueError(f"weights {text!r} are not weights of {architecture} (its weights are "
                         f"{enum.__name__}: {known})") from None


def hub_weights_file(weights) -> Path:
    """Where torchvision keeps the file of ``weights``: ``torch.hub.get_dir()/checkpoints/``
    and the file name of the weights' URL (whether or not it is there; nothing is downloaded).

    Examples
    --------
    >>> hub_weights_file(torchvision_weights("resnet18", "IMAGENET1K_V1")).name
    'resnet18-f37072fd.pth'
    """
    from urllib.parse import urlparse

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def weights_input(weights) -> dict:
    """The input a torchvision weights' network was trained on: ``image_size`` (the size
    it sees, its evaluation transform's crop), ``mean`` and ``std`` (per channel, RGB).

    Examples
    --------
    >>> weights_input(torchvision_weights("resnet18", "DEFAULT"))["image_size"]
    (224, 224)
    """
    transform = weights.transforms()
    size = [int(s) for s in getattr(transform, "crop_size", ())]
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if not size or mean is None or std is None:
        raise ValueError(f"weights {weights}: not an image classification transform ({transform!r})")
    return {"image_size": (size[0], size[-1]), "mean": tuple(float(v) for v in mean),
            "std": tuple(float(v) for v in std)}


def missing_weights_message(weights, path: Path) -> str:
    """How to put the file of torchvision ``weights`` where the torch hub cache expects it."""
    name = f"{type(weights).__name__}.{weights.name}"
    return (f"the file of {name} is not in the torch hub cache: expected {path} "
            f"(torch.hub.get_dir() is {torch.hub.get_dir()}; TORCH_HOME moves it). Nothing is "
            "downloaded here: on a machine with network access run python -c \"import "
            f"torchvision; torchvision.models.{name}.get_state_dict()\" (or download "
            f"{weights.url}) and copy the file {path.name} to {path.parent}")


def _torchvision_model(architecture: str, weights):
    """A torchvision model built with ``weights`` (an enum member) from the hub cache, never
    downloaded; the file is first read with ``weights_only=True``, so that it cannot run code."""
    import torchvision

    path = hub_weights_file(weights)
    if not path.is_file():
        raise ValueError("weights: " + missing_weights_message(weights, path))
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any unreadable file)
        raise ValueError(f"weights: cannot read {path} as a state_dict ({exc})") from None
    try:  # the builder sets what the weights need (classes, image size, aux heads)
        return torchvision.models.get_model(architecture, weights=weights)
    except RuntimeError as exc:
        raise ValueError(f"weights in {path} do not match the architecture {architecture!r}: "
                         f"{exc}") from None


@validate_params(
    {"architecture": [str, TorchModule()], "weights": [str, os.PathLike, Mapping, Enum, None],
     "image_size": [ImageSize(1)], "in_channels": [Interval(Integral, 1, None, closed="left")],
     "strict": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def pretrained_backbone(architecture, weights=None, *, image_size=224, in_channels=3, strict=True) -> nn.Module:
    """A torchvision model or your module, with local weights and without its classification layer.

    Parameters
    ----------
    architecture : str or torch.nn.Module
        A torchvision model name (``"resnet18"``, ``"resnet50"``, ``"efficientnet_b0"``,
        ``"convnext_tiny"``, ``"vit_b_16"``, ...; built with ``weights=None``, nothing is
        downloaded) or a module.
    weights : str, path, dict, torchvision WeightsEnum or None, default=None
        A ``state_dict`` for the *whole* model as saved by ``torch.save(model.state_dict(),
        path)`` (a ``{"state_dict": ...}`` or ``{"model": ...}`` checkpoint and DataParallel's
        ``module.`` prefix are accepted), loaded with ``weights_only=True``. With a torchvision
        ``architecture``, also one of its torchvision weights (an enum member, or a string
        that is not a file: ``"IMAGENET1K_V1"``, ``"DEFAULT"``,
        ``"ResNet18_Weights.IMAGENET1K_V1"``), read from the file torchvision keeps in the torch
        hub cache (:func:`hub_weights_file`), which must be there: nothing is downloaded.
        ``None`` keeps the module's own weights (random for a torchvision name).
    image_size : int or tuple of (int, int), default=224
        Input size used to infer the feature dimension (the size the weights were trained at).
    in_channels : int, default=3
        Input channels used for that dummy pass.
    strict : bool, default=True
        Passed to ``load_state_dict``: every key must match (torchvision weights names
        always load strictly).

    Returns
    -------
    encoder : torch.nn.Module
        Maps ``(n, in_channels, H, W)`` to ``(n, out_dim)``; the torchvision classification
        layer (``fc``, ``classifier``, ``heads`` or ``head``) is replaced by the identity
        *after* the weights are loaded, and ``out_dim`` is set.

    Raises
    ------
    ValueError
        Unknown torchvision name, missing weights file (for a weights name: the message names
        the expected path and how to get the file), or keys that do not match.

    Examples
    --------
    >>> import torch, torchvision, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "resnet18.pt")
    >>> torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    >>> encoder = pretrained_backbone("resnet18", path)
    >>> encoder.out_dim
    512
    """
    if isinstance(architecture, str):
        model = _named_model(architecture, weights, strict)
    else:  # a torch.nn.Module: its own classification layer, if any, is the user's choice
        model = architecture
        if weights is not None:
            _load_weights(model, architecture, weights, strict)
    encoder = _FlatFeatures(_strip_head(model) if isinstance(architecture, str) else model)
    from ._backbones import _infer_out_dim

    encoder.out_dim = _infer_out_dim(encoder, int(in_channels), check_image_size(image_size))
    return encoder


def _is_weights_name(architecture: str, weights) -> bool:
    """Whether ``weights`` names torchvision weights of ``architecture`` rather than a file."""
    if isinstance(weights, Enum):
        return True
    return (isinstance(weights, str) and not Path(weights).expanduser().exists()
            and "/" not in weights and "\\" not in weights and not Path(weights).suffix.lower()
            in (".pt", ".pth", ".ckpt", ".bin", ".tar"))


def _named_model(architecture: str, weights, strict) -> nn.Module:
    """The torchvision model ``architecture`` with ``weights`` (a file, a dict, a torchvision
    weights name, or None)."""
    import torchvision

    if weights is not None and _is_weights_name(architecture, weights):
        return _torchvision_model(architecture, torchvision_weights(architecture, weights))
    try:
        model = torchvision.models.get_model(architecture, weights=None)
    except ValueError as exc:
        raise ValueError(f"architecture: {architecture!r} is not a torchvision model name ({exc})") from None
    if weights is not None:
        _load_weights(model, architecture, weights, strict)
    return model


def _load_weights(model: nn.Module, architecture, weights, strict) -> None:
    state = _load_state_dict(weights)
    try:
        model.load_state_dict(state, strict=bool(strict))
    except RuntimeError as exc:
        raise ValueError(f"weights do not match the architecture {architecture!r}: {exc}") from None


def _strip_head(model: nn.Module) -> nn.Module:
    """``model`` with its torchvision classification layer replaced by the identity."""
    for attribute in _HEAD_ATTRIBUTES:
        if isinstance(getattr(model, attribute, None), nn.Module):
            setattr(model, attribute, nn.Identity())
            break
    return model

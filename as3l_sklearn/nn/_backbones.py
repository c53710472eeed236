"""Image encoders ("backbones") that map ``(n, C, H, W)`` images to ``(n, out_dim)`` features.

Three architectures are provided by name through :func:`make_backbone`:

``"small_cnn"``
    Four conv-BN-ReLU blocks and a global average pool (out_dim 128). Cheap enough to train
    SimSiam on a laptop CPU on 8-32 px grayscale images.
``"small_cnn_2x2"``
    The same network with its last feature map average-pooled to a 2x2 grid (out_dim 512):
    it keeps where in the image a pattern is (top/bottom, left/right), which a global pool
    throws away; measured better for kNN on small centred images (``docs/results.md``).
``"resnet18_cifar"``
    ResNet-18 with the CIFAR stem of the SimSiam/FixMatch papers: a 3x3 stride-1 first
    convolution and no max-pool (out_dim 512).
``"wrn28_2"``
    WideResNet-28-2 as used by FixMatch/FlexMatch/AS3L for CIFAR-10: pre-activation blocks,
    leaky ReLU (slope 0.1), BatchNorm momentum 0.001 (out_dim 128); pass ``expected_steps``
    to :func:`make_backbone` to fit the momentum to a shorter run.
``"resnet18"``
    torchvision's ResNet-18 (ImageNet stem: 7x7 stride-2 convolution and max-pool), without
    its classification layer (out_dim 512): the encoder for photos larger than 64 px.

Every backbone ends with adaptive average pooling, so any image size at or above its
``min_image_size`` works (8x8 digits, 28x28 Fashion-MNIST, 32x32 CIFAR, larger images).
"""

from __future__ import annotations

import numbers
from types import MappingProxyType

import torch
from torch import nn

from ..utils import check_image_size
from ..utils._param_validation import ImageSize, Integral, Interval, StrOptions, TorchModule, validate_params

_POSITIVE = Interval(Integral, 1, None, closed="left")

__all__ = [
    "BACKBONES",
    "ResNet18CIFAR",
    "SmallCNN",
    "WideResNet",
    "make_backbone",
    "wrn_bn_momentum",
]


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # bias is redundant in front of BatchNorm
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class SmallCNN(nn.Module):
    """A small convolutional encoder for small images (fast on CPU).

    Conv-BN-ReLU blocks of widths ``widths`` (strides 1, 2, 2, 1, ...) followed by global
    average pooling.

    Parameters
    ----------
    in_channels : int, default=1
        Number of image channels.
    widths : tuple of int, default=(32, 64, 128, 128)
        Output channels of the successive blocks; the second and third blocks halve the
        spatial resolution.
    pool_size : int, default=1
        The last feature map is average-pooled to a ``pool_size x pool_size`` grid and
        flattened; 1 is global average pooling.

    Attributes
    ----------
    out_dim : int
        Feature dimension (``widths[-1] * pool_size ** 2``).

    Examples
    --------
    >>> import torch
    >>> net = SmallCNN(in_channels=1)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 128])
    """

    min_image_size = 4

    def __init__(self, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128, 128), pool_size: int = 1):
        super().__init__()
        layers = []
        previous = in_channels
        for index, width in enumerate(widths):
            stride = 2 if index in (1, 2) else 1
            layers += [
                _conv3x3(previous, width, stride),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(int(pool_size))
        self.out_dim = int(widths[-1]) * int(pool_size) ** 2
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)


class _BasicBlock(nn.Module):
    """ResNet basic block (post-activation, as in He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18CIFAR(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 stride-1 convolution, no max-pool).

    This is the encoder of SimSiam's CIFAR experiments (Chen & He 2021) and of AS3L's
    self-supervised stage. The classification layer is removed: the output is the 512-d
    globally pooled feature.

    Parameters
    ----------
    in_channels : int, default=3
        Number of image channels.

    Attributes
    ----------
    out_dim : int
        Feature dimension (512).

    Examples
    --------
    >>> import torch
    >>> net = ResNet18CIFAR(in_channels=3)
    >>> net(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 512])
    """

    min_image_size = 8

    def __init__(self, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            _conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        stages = []
        previous = 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(
                nn.Sequential(_BasicBlock(previous, width, stride), _BasicBlock(width, width, 1))
            )
            previous = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = 512
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


class _WideBlock(nn.Module):
    """Pre-activation wide-ResNet block with leaky ReLU (FixMatch's variant).

    When the block changes the number of channels, the convolution path and the 1x1
    shortcut both read the activated input (Zagoruyko & Komodakis' original WRN). FixMatch's
    PyTorch port feeds the *raw* input to the first convolution of the second and third
    groups; we keep the cleaner original form, which differs from it only in that detail.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, bn_momentum: float, slope: float
    ):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=bn_momentum)
        self.act1 = nn.LeakyReLU(slope, inplace=False)
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=bn_momentum)
        self.act2 = nn.LeakyReLU(slope, inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.equal_in_out = in_channels == out_channels and stride == 1
        self.shortcut = (
            nn.Identity()
            if self.equal_in_out
            else nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.act1(self.bn1(x))
        out = self.conv2(self.act2(self.bn2(self.conv1(activated))))
        residual = x if self.equal_in_out else self.shortcut(activated)
        return out + residual


class WideResNet(nn.Module):
    """WideResNet-depth-k encoder as in FixMatch/FlexMatch (default WRN-28-2).

    Leaky ReLU with slope 0.1 and BatchNorm momentum 0.001 (PyTorch convention: the weight of
    the new batch statistic, i.e. TensorFlow's decay 0.999), as in the FixMatch reference code.
    The output is the globally pooled feature after the final BN + leaky ReLU, without the
    classification layer.

    Parameters
    ----------
    in_channels : int, default=3
        Number of image channels.
    depth : int, default=28
        Network depth; ``(depth - 4)`` must be divisible by 6.
    widen_factor : int, default=2
        Width multiplier of the three groups (16k, 32k, 64k channels).
    bn_momentum : float, default=0.001
        BatchNorm momentum.
    leaky_slope : float, default=0.1
        Negative slope of the leaky ReLU.

    Attributes
    ----------
    out_dim : int
        Feature dimension (``64 * widen_factor``, 128 for WRN-28-2).

    Examples
    --------
    >>> import torch
    >>> net = WideResNet(in_channels=1)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 128])
    """

    min_image_size = 8

    def __init__(
        self,
        in_channels: int = 3,
        depth: int = 28,
        widen_factor: int = 2,
        bn_momentum: float = 0.001,
        leaky_slope: float = 0.1,
    ):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"depth must be 6n + 4 with n >= 1 (e.g. 28), got {depth}")
        blocks_per_group = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = _conv3x3(in_channels, widths[0])
        groups = []
        previous = widths[0]
        for width, stride in zip(widths[1:], (1, 2, 2)):
            blocks = [
                _WideBlock(
                    previous if i == 0 else width,
                    width,
                    stride if i == 0 else 1,
                    bn_momentum,
                    leaky_slope,
                )
                for i in range(blocks_per_group)
            ]
            groups.append(nn.Sequential(*blocks))
            previous = width
        self.group1, self.group2, self.group3 = groups
        self.bn = nn.BatchNorm2d(previous, momentum=bn_momentum)
        self.act = nn.LeakyReLU(leaky_slope, inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = int(previous)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="leaky_relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.group3(self.group2(self.group1(self.conv1(x))))
        x = self.act(self.bn(x))
        return torch.flatten(self.pool(x), 1)


@validate_params({"expected_steps": [_POSITIVE, None]}, prefer_skip_nested_validation=True)
def wrn_bn_momentum(expected_steps=None) -> float:
    """BatchNorm momentum for a WideResNet trained for ``expected_steps`` optimizer steps.

    A running statistic keeps ``(1 - momentum) ** steps ~ exp(-momentum * steps)`` of its
    initial value. FixMatch's 0.001 is made for about a million steps (exp(-1000)); after a
    780-step SimSiam run it would leave exp(-0.78) = 46 % of every running mean and variance
    at its initial 0 / 1, so evaluation-mode features would be computed with statistics the
    network never had. ``10 / expected_steps`` leaves exp(-10) < 1e-4 of the initial value
    at the end of the run while averaging over as many recent batches as that allows;
    it is clipped to [0.001, 0.1] (FixMatch's value for long runs, PyTorch's default for
    very short ones).

    Parameters
    ----------
    expected_steps : int or None, default=None
        Optimizer steps of the run; ``None`` gives FixMatch's 0.001.

    Returns
    -------
    momentum : float

    Examples
    --------
    >>> wrn_bn_momentum(None), wrn_bn_momentum(1_000), wrn_bn_momentum(1_000_000)
    (0.001, 0.01, 0.001)
    """
    if expected_steps is None:
        return 0.001
    return float(min(0.1, max(0.001, 10.0 / expected_steps)))


def _wrn28_2(in_channels: int, expected_steps=None) -> WideResNet:
    return WideResNet(
        in_channels=in_channels, depth=28, widen_factor=2, bn_momentum=wrn_bn_momentum(expected_steps)
    )


def _small_cnn(in_channels: int, expected_steps=None) -> SmallCNN:
    return SmallCNN(in_channels=in_channels)


def _small_cnn_2x2(in_channels: int, expected_steps=None) -> SmallCNN:
    return SmallCNN(in_channels=in_channels, pool_size=2)


def _resnet18_cifar(in_channels: int, expected_steps=None) -> ResNet18CIFAR:
    return ResNet18CIFAR(in_channels=in_channels)


class _TorchvisionResNet18(nn.Module):
    """torchvision ResNet-18 (ImageNet stem) without its classification layer."""

    min_image_size = 32

    def __init__(self, in_channels: int = 3):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _resnet18(in_channels: int, expected_steps=None) -> _TorchvisionResNet18:
    return _TorchvisionResNet18(in_channels=in_channels)


# name -> (factory(in_channels, expected_steps=None) -> module, minimum image side in pixels)
_FACTORIES = {
    "small_cnn": (_small_cnn, SmallCNN.min_image_size),
    "small_cnn_2x2": (_small_cnn_2x2, SmallCNN.min_image_size),
    "resnet18_cifar": (_resnet18_cifar, ResNet18CIFAR.min_image_size),
    "wrn28_2": (_wrn28_2, WideResNet.min_image_size),
    "resnet18": (_resnet18, _TorchvisionResNet18.min_image_size),
}

#: Read-only mapping of backbone name -> factory ``f(in_channels) -> torch.nn.Module``.
BACKBONES = MappingProxyType({name: factory for name, (factory, _) in _FACTORIES.items()})


def _infer_out_dim(module: nn.Module, in_channels: int, size: tuple[int, int]) -> int:
    """Run a dummy batch of 2 zero images through ``module`` (eval mode, no grad)."""
    parameter = next(iter(module.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    floating = parameter is not None and parameter.is_floating_point()
    dtype = parameter.dtype if floating else torch.float32
    dummy = torch.zeros(2, in_channels, *size, device=device, dtype=dtype)
    was_training = module.training
    module.eval()  # eval mode: the dummy pass must not touch BatchNorm running statistics
    try:
        with torch.no_grad():
            output = module(dummy)
    except Exception as exc:  # noqa: BLE001 - any failure means the module does not fit the images
        raise ValueError(
            "could not infer out_dim: the module failed on a dummy batch of shape "
            f"{tuple(dummy.shape)} "
            f"(in_channels={in_channels}, image_size={size}): {exc}"
        ) from exc
    finally:
        module.train(was_training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != 2:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(
            "a custom backbone must map (n, C, H, W) images to (n, out_dim) features; on a dummy "
            f"batch of shape {tuple(dummy.shape)} it returned {shape} (add pooling and flattening)"
        )
    return int(output.shape[1])


def auto_backbone_name(in_channels: int, image_size, device=None) -> str:
    """The architecture ``"auto"`` stands for, given the images (as the encoder sees them) and the device.

    * ``device=None`` (no device given; the classifiers' rule): ``"small_cnn"`` for
      grayscale images up to 32 px and any image up to 16 px, else ``"resnet18_cifar"``.
    * a CPU: always ``"small_cnn_2x2"``. A CIFAR ResNet-18 keeps full resolution through its
      first stage (64 channels at every pixel) and costs about 40x the small CNN per image;
      on 2 CPU cores that is the difference between minutes and hours. The 2x2 pooled
      variant was measured better than the globally pooled one for SimSiam on 28x28 images
      (``docs/results.md``).
    * CUDA: ``"small_cnn_2x2"`` up to 16 px, ``"resnet18_cifar"`` up to 64 px (the SimSiam
      CIFAR setting), torchvision's ``"resnet18"`` (ImageNet stem) above.

    Examples
    --------
    >>> auto_backbone_name(1, 28, "cpu"), auto_backbone_name(3, 32, "cuda"), auto_backbone_name(3, 96, "cuda")
    ('small_cnn_2x2', 'resnet18_cifar', 'resnet18')
    """
    side = max(check_image_size(image_size))
    kind = None if device is None else ("cuda" if str(device).startswith("cuda") else "cpu")
    if kind is None:
        return "small_cnn" if (side <= 32 and in_channels == 1) or side <= 16 else "resnet18_cifar"
    if kind == "cpu" or side <= 16:
        return "small_cnn_2x2"
    return "resnet18_cifar" if side <= 64 else "resnet18"


@validate_params(
    {"name_or_module": [StrOptions({"auto", *_FACTORIES}), TorchModule()], "in_channels": [_POSITIVE],
     "image_size": [ImageSize(1)], "device": [str, None], "expected_steps": [_POSITIVE, None]},
    prefer_skip_nested_validation=True,
)
def make_backbone(
    name_or_module="auto", in_channels: int = 1, image_size=28, *, device=None, expected_steps=None
) -> nn.Module:
    """Build an image encoder by name, or adopt a user module.

    Parameters
    ----------
    name_or_module : str or torch.nn.Module, default="auto"
        Architecture name (``"auto"``, ``"small_cnn"``, ``"resnet18_cifar"``, ``"wrn28_2"``,
        ``"resnet18"``), or a module mapping ``(n, C, H, W)`` float images to ``(n, d)``
        features. ``"auto"``: see :func:`auto_backbone_name` (it depends on ``device``).
    in_channels : int, default=1
        Number of image channels ``C``.
    image_size : int or tuple of (int, int), default=28
        Image side ``H = W``, or ``(H, W)``. Used to check that the architecture fits and,
        for a user module without ``out_dim``, for the dummy forward pass.
    device : str or None, default=None
        Device the encoder will train on; only used by ``"auto"``.
    expected_steps : int or None, default=None
        Optimizer steps of the coming run; sets the BatchNorm momentum of ``"wrn28_2"``
        (see :func:`wrn_bn_momentum`). Ignored by the other architectures.

    Returns
    -------
    backbone : torch.nn.Module
        A module with an integer attribute ``out_dim``; ``backbone(x)`` maps a float tensor
        ``(n, C, H, W)`` to ``(n, out_dim)``. A user module is returned as it is, with
        ``out_dim`` set (inferred by a forward pass of two zero images in eval mode) if it
        had none.

    Raises
    ------
    InvalidParameterError
        (A ``ValueError`` and a ``TypeError``, naming the argument.) An unknown name (the
        message lists the valid names), or ``name_or_module``, ``in_channels``,
        ``image_size``, ``device`` or ``expected_steps`` of the wrong type or range.
    ValueError
        Images smaller than the architecture's minimum (the message names ``image_size``),
        or a user module that fails on, or does not return ``(n, d)`` for, a dummy batch.
    TypeError
        A user module whose ``out_dim`` is not a positive int.

    Examples
    --------
    >>> import torch
    >>> net = make_backbone("small_cnn", in_channels=1, image_size=28)
    >>> net.out_dim
    128
    >>> net(torch.rand(4, 1, 28, 28)).shape
    torch.Size([4, 128])
    >>> custom = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    >>> make_backbone(custom, in_channels=1, image_size=8).out_dim
    10
    """
    in_channels = int(in_channels)
    size = check_image_size(image_size)

    if isinstance(name_or_module, nn.Module):
        module = name_or_module
        out_dim = getattr(module, "out_dim", None)
        if out_dim is None:
            module.out_dim = _infer_out_dim(module, in_channels, size)
        elif isinstance(out_dim, bool) or not isinstance(out_dim, numbers.Integral) or out_dim < 1:
            raise TypeError(
                f"the backbone module's out_dim must be a positive int, got {out_dim!r}"
            )
        return module

    name = name_or_module
    if name == "auto":
        name = auto_backbone_name(in_channels, size, device)
    factory, min_size = _FACTORIES[name]
    if min(size) < min_size:
        raise ValueError(
            f"image_size={image_size!r} is too small for backbone {name!r}, which needs images "
            f"of at least {min_size}x{min_size} pixels"
        )
    return factory(in_channels, expected_steps=expected_steps)

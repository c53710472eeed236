"""Batched image augmentations with independent random parameters per sample.

Three views are used by the toolkit:

* :class:`SimSiamAugment`: the two-view augmentation of SimSiam (Chen & He 2021, CIFAR
  setting): random resized crop (scale 0.2-1), horizontal flip, colour jitter
  (0.4, 0.4, 0.4, 0.1) with probability 0.8, grayscale with probability 0.2;
* :class:`WeakAugment`: FixMatch/FlexMatch's weak view, horizontal flip and a random crop
  after reflect padding by 12.5 % of the image side (4 px at 32 px);
* :class:`StrongAugment`: FixMatch/FlexMatch's strong view, the weak flip and crop, then
  RandAugment (3 ops drawn from 14, each with a random magnitude) and Cutout.

Why not ``torchvision.transforms.v2`` directly: applied to a batched tensor, a v2 transform
draws *one* set of random parameters for the whole batch, so every image of the batch would
get the same crop, the same jitter and the same RandAugment ops. Here every random parameter
is drawn per sample as a tensor, geometric transforms are per-sample affine grids
(:func:`torch.nn.functional.affine_grid` / :func:`~torch.nn.functional.grid_sample`),
photometric ones use per-sample factors, and an operation chosen by only part of the batch
is applied to that subset. There is no Python loop over samples, so the same code runs on
CPU and CUDA batches.

Every transform is a :class:`torch.nn.Module` called as ``aug(x, generator=None)`` on a float
tensor ``x`` of shape ``(n, C, H, W)`` with values in ``[0, 1]``; it returns a new tensor of
the same shape, dtype and device (the input is not modified). With a ``torch.Generator`` the
output is reproducible: the same seed gives the same output on CPU. CPU batches are processed
with one intra-op thread (the caller's setting is restored afterwards): these chains of small
ops ran 10-40x slower with two threads on a shared 2-core machine.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .utils import check_image_size
from .utils._param_validation import ImageSize, Integral, Interval, Real, StrOptions, validate_params

__all__ = ["RANDAUGMENT_OPS", "SIMSIAM_PRESETS", "SimSiamAugment", "StrongAugment", "WeakAugment"]

#: SimSiam view recipes per kind of image (keyword arguments of :class:`SimSiamAugment`).
#:
#: ``"rgb"``: SimSiam's CIFAR recipe for colour photos -- random resized crop keeping 20-100 %
#: of the area, flip, colour jitter (brightness, contrast, saturation 0.4, hue 0.1) with
#: probability 0.8, grayscale with probability 0.2.
#:
#: ``"grayscale"``: small grayscale images (digits, Fashion-MNIST, X-ray thumbnails) --
#: crops keeping 40-100 % of the area (a 20 % crop of a 28x28 garment is a 12x12 patch
#: that rarely shows which garment it was), flip, brightness and contrast jitter 0.4 with
#: probability 0.8 (saturation, hue and grayscale do not apply). Chosen on Fashion-MNIST
#: training images 50,000-60,000, disjoint from the images the benchmark reports on
#: (docs/results.md).
SIMSIAM_PRESETS = {
    "rgb": {"crop_scale": (0.2, 1.0), "flip_p": 0.5, "jitter": (0.4, 0.4, 0.4, 0.1), "jitter_p": 0.8,
            "grayscale_p": 0.2},
    "grayscale": {"crop_scale": (0.4, 1.0), "flip_p": 0.5, "jitter": (0.4, 0.4, 0.0, 0.0), "jitter_p": 0.8,
                  "grayscale_p": 0.0},
}

# ITU-R 601-2 luma, as PIL's convert("L") and torchvision's rgb_to_grayscale
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- validation
_PROBABILITY = [Interval(Real, 0, 1, closed="both")]
_IMAGE_SIZE = [ImageSize(2)]
_PADDING = [Interval(Integral, 0, None, closed="left"), None]


def _check_batch(x, generator, size: tuple[int, int], channels: int | None = None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (n, C, H, W), got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"x must be a floating-point tensor with values in [0, 1], got dtype {x.dtype}"
        )
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions (n, C, H, W), got shape {tuple(x.shape)}")
    if tuple(x.shape[-2:]) != size:
        raise ValueError(
            f"x has images of size {tuple(x.shape[-2:])}, but the transform was built with "
            f"image_size={size}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"x has {x.shape[1]} channels, but the transform was built with channels={channels}"
        )
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def _single_thread_on_cpu(forward):
    """Run a CPU batch with one intra-op thread (restored afterwards).

    The transforms are chains of ~100 small tensor ops; on CPU each op's thread team costs a
    synchronisation that dwarfs the work, and on a machine whose cores are shared it can
    cost a scheduler time slice: measured 10-40x slower with 2 threads than with 1 on a
    loaded 2-core machine. DataLoader workers run their transforms single-threaded for the
    same reason. CUDA batches are left alone.
    """

    @functools.wraps(forward)
    def wrapper(self, x, generator=None):
        if isinstance(x, torch.Tensor) and x.device.type == "cpu" and torch.get_num_threads() > 1:
            previous = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return forward(self, x, generator)
            finally:
                torch.set_num_threads(previous)
        return forward(self, x, generator)

    return wrapper


# ----------------------------------------------------------------------- random numbers
def _rand(shape, x: torch.Tensor, generator) -> torch.Tensor:
    """Uniform [0, 1) float32 numbers on ``x``'s device, drawn from ``generator`` if given.

    With a generator the numbers are drawn on the generator's device and moved, so a CPU
    generator makes CUDA batches reproducible too.
    """
    if generator is None:
        return torch.rand(shape, device=x.device)
    return torch.rand(shape, generator=generator, device=generator.device).to(x.device)


def _uniform(shape, low: float, high: float, x, generator) -> torch.Tensor:
    return low + (high - low) * _rand(shape, x, generator)


def _randint(high: int, shape, x, generator) -> torch.Tensor:
    if generator is None:
        return torch.randint(high, shape, device=x.device)
    return torch.randint(high, shape, generator=generator, device=generator.device).to(x.device)


def _randperm_rows(n: int, k: int, x, generator) -> torch.Tensor:
    """``n`` independent random permutations of ``range(k)`` (argsort of uniform noise)."""
    return _rand((n, k), x, generator).argsort(dim=1)


# ---------------------------------------------------------------------- building blocks
def _apply_to_subset(
    x: torch.Tensor, mask: torch.Tensor, op, *params: torch.Tensor
) -> torch.Tensor:
    """Write ``op(x[mask], *[p[mask] for p in params])`` into the masked rows of ``x``, in place.

    In place because the transforms apply up to ~40 ops to small subsets: copying the whole
    batch each time cost more than the ops. Callers pass a tensor they own (never the input).
    """
    index = mask.nonzero(as_tuple=True)[0]
    if index.numel() == 0:
        return x
    x[index] = op(x.index_select(0, index), *(p.index_select(0, index) for p in params))
    return x


def _view(factor: torch.Tensor) -> torch.Tensor:
    return factor.view(-1, 1, 1, 1)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma ``(n, 1, H, W)`` of RGB images; the channel mean for other channel counts."""
    if x.shape[1] == 3:
        r, g, b = x.unbind(1)
        return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)
    return x.mean(dim=1, keepdim=True)


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: ``factor * x + (1 - factor) * other``, clipped to [0, 1]."""
    f = _view(factor).to(x.dtype)
    return (f * x + (1.0 - f) * other).clamp_(0.0, 1.0)


def _adjust_brightness(x, factor):
    return _blend(x, torch.zeros_like(x), factor)


def _adjust_contrast(x, factor):
    mean = _grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(x, mean, factor)


def _adjust_saturation(x, factor):
    if x.shape[1] != 3:  # no colour to saturate
        return x
    return _blend(x, _grayscale(x), factor)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    delta = maxc - minc
    has_chroma = delta > 0
    safe_delta = torch.where(has_chroma, delta, torch.ones_like(delta))
    lit = maxc > 0
    saturation = torch.where(lit, delta / torch.where(lit, maxc, torch.ones_like(maxc)), 0.0)
    rc = (maxc - r) / safe_delta
    gc = (maxc - g) / safe_delta
    bc = (maxc - b) / safe_delta
    hue = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(has_chroma, torch.remainder(hue / 6.0, 1.0), torch.zeros_like(hue))
    return torch.stack((hue, saturation, maxc), dim=1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    # closed form: channel_k = v - v * s * clip(min(t_k, 4 - t_k), 0, 1), t_k = (k + 6 h) mod 6
    h, s, v = x.unbind(1)
    offsets = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    t = torch.remainder(offsets + 6.0 * h.unsqueeze(1), 6.0)
    weight = torch.minimum(t, 4.0 - t).clamp_(0.0, 1.0)
    return v.unsqueeze(1) * (1.0 - s.unsqueeze(1) * weight)


def _adjust_hue(x, shift):
    if x.shape[1] != 3:
        return x
    hsv = _rgb_to_hsv(x)
    hue = torch.remainder(hsv[:, 0] + shift.view(-1, 1, 1).to(x.dtype), 1.0)
    return _hsv_to_rgb(torch.stack((hue, hsv[:, 1], hsv[:, 2]), dim=1)).clamp_(0.0, 1.0)


def _affine(
    x: torch.Tensor,
    matrix: torch.Tensor,
    translation: torch.Tensor,
    fill: float,
    mode: str = "bilinear",
):
    """Per-sample affine warp given in pixel units about the image centre.

    ``matrix`` (n, 2, 2) and ``translation`` (n, 2) map *output* pixel offsets from the
    centre, ``(dx, dy)``, to input offsets, as PIL's ``Image.transform(AFFINE)`` does; areas
    outside the image are filled with ``fill``.
    """
    n, _, height, width = x.shape
    # normalised coordinates: u = dx / (W / 2), v = dy / (H / 2)
    scale = torch.tensor([width / 2.0, height / 2.0], device=x.device, dtype=matrix.dtype)
    theta_linear = matrix * scale.view(1, 2, 1) / scale.view(1, 1, 2)  # D^-1 A D
    theta = torch.cat((theta_linear, (translation / scale).unsqueeze(2)), dim=2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    shifted = x - fill  # zero padding of (x - fill) is padding x with fill
    return F.grid_sample(shifted, grid, mode=mode, padding_mode="zeros", align_corners=False) + fill


def _eye(n: int, x: torch.Tensor) -> torch.Tensor:
    return torch.eye(2, device=x.device).expand(n, 2, 2).clone()


def _random_crop_flip(x: torch.Tensor, padding: int, flip_p: float, generator) -> torch.Tensor:
    """Per-sample horizontal flip and random crop after reflect padding (exact, by gather)."""
    n, channels, height, width = x.shape
    flip = _rand((n,), x, generator) < flip_p
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if padding <= 0:
        return x
    pad_h = min(padding, height - 1)  # reflect padding must be smaller than the image
    pad_w = min(padding, width - 1)
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    top = _randint(2 * pad_h + 1, (n,), x, generator)
    left = _randint(2 * pad_w + 1, (n,), x, generator)
    padded_width = padded.shape[3]
    rows = top.view(-1, 1, 1) + torch.arange(height, device=x.device).view(1, -1, 1)
    cols = left.view(-1, 1, 1) + torch.arange(width, device=x.device).view(1, 1, -1)
    flat_index = (rows * padded_width + cols).view(n, 1, height * width)
    flat_index = flat_index.expand(n, channels, height * width)
    return padded.flatten(2).gather(2, flat_index).view(n, channels, height, width)


def _cutout(x: torch.Tensor, max_fraction: float, fill: float, generator) -> torch.Tensor:
    """Per-sample square of side ``U(0, max_fraction) * image side`` set to ``fill``."""
    n, _, height, width = x.shape
    side = _rand((n,), x, generator) * max_fraction * min(height, width)
    cy = _rand((n,), x, generator) * height
    cx = _rand((n,), x, generator) * width
    ys = torch.arange(height, device=x.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=x.device, dtype=torch.float32) + 0.5
    inside_y = (ys.view(1, -1) - cy.view(-1, 1)).abs() < side.view(-1, 1) / 2
    inside_x = (xs.view(1, -1) - cx.view(-1, 1)).abs() < side.view(-1, 1) / 2
    mask = (inside_y.unsqueeze(2) & inside_x.unsqueeze(1)).unsqueeze(1)
    return torch.where(mask, torch.full_like(x, fill), x)


def _to_work_dtype(x: torch.Tensor) -> torch.Tensor:
    # half precision lacks some CPU kernels (grid_sample); work in float32 and cast back
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


# ------------------------------------------------------------------ RandAugment ops
# Each op takes a sub-batch and per-sample magnitudes ``m`` in [0, 1] (uniform draws),
# mapped to the ranges of the FixMatch / USB RandAugment pool.
def _op_identity(x, m, fill):
    return x


def _op_autocontrast(x, m, fill):
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    spread = high - low
    valid = spread > 0
    ones = torch.ones_like(spread)
    scale = torch.where(valid, 1.0 / torch.where(valid, spread, ones), ones)
    low = torch.where(valid, low, torch.zeros_like(low))
    return ((x - low) * scale).clamp_(0.0, 1.0)


def _quantize(x):
    return (x * 255.0 + 0.5).floor().clamp_(0, 255).long()


def _op_equalize(x, m, fill):
    """PIL ``ImageOps.equalize`` per image and channel, on 8-bit levels."""
    n, channels, height, width = x.shape
    levels = _quantize(x).view(n * channels, height * width)
    hist = torch.zeros(n * channels, 256, dtype=torch.long, device=x.device)
    hist.scatter_add_(1, levels, torch.ones_like(levels))
    nonzero = hist > 0
    last_bin = 255 - nonzero.flip(1).long().argmax(dim=1, keepdim=True)
    step = (height * width - hist.gather(1, last_bin)) // 255  # (n*C, 1)
    cumulative = hist.cumsum(1) - hist  # exclusive cumulative histogram
    lut = (step // 2 + cumulative) // step.clamp(min=1)
    identity = torch.arange(256, device=x.device).expand_as(lut)
    lut = torch.where(step > 0, lut.clamp(max=255), identity)
    return (lut.gather(1, levels).to(x.dtype) / 255.0).view_as(x)


def _op_rotate(x, m, fill):
    angle = torch.deg2rad(-30.0 + 60.0 * m)
    cos, sin = torch.cos(angle), torch.sin(angle)
    matrix = torch.stack((torch.stack((cos, -sin), 1), torch.stack((sin, cos), 1)), 1)
    return _affine(x, matrix, torch.zeros(len(x), 2, device=x.device), fill)


def _op_solarize(x, m, fill):
    threshold = _view(m).to(x.dtype)  # PIL threshold in [0, 256) on the 8-bit scale
    return torch.where(x >= threshold, 1.0 - x, x)


def _op_color(x, m, fill):
    return _adjust_saturation(x, 0.05 + 0.9 * m)


def _op_posterize(x, m, fill):
    bits = (4 + 4 * m).long().clamp(4, 8)  # int(U(4, 8)) as USB
    keep = (255 - (2 ** (8 - bits) - 1)).view(-1, 1, 1, 1)
    return (_quantize(x) & keep).to(x.dtype) / 255.0


def _op_contrast(x, m, fill):
    return _adjust_contrast(x, 0.05 + 0.9 * m)


def _op_brightness(x, m, fill):
    return _adjust_brightness(x, 0.05 + 0.9 * m)


def _op_sharpness(x, m, fill):
    """PIL ``ImageEnhance.Sharpness``: blend with the SMOOTH-filtered image, borders unchanged."""
    if min(x.shape[-2:]) < 3:
        return x
    # SMOOTH kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 = (3x3 box sum + 4 * centre) / 13;
    # average pooling is much cheaper than a depthwise convolution on CPU
    box_sum = F.avg_pool2d(x, 3, stride=1) * 9.0
    smooth = (box_sum + 4.0 * x[..., 1:-1, 1:-1]) / 13.0
    degenerate = x.clone()
    degenerate[..., 1:-1, 1:-1] = smooth
    return _blend(x, degenerate, 0.05 + 0.9 * m)


def _shear(x, m, fill, axis):
    shear = -0.3 + 0.6 * m
    matrix = _eye(len(x), x)
    matrix[:, axis, 1 - axis] = shear
    return _affine(x, matrix, torch.zeros(len(x), 2, device=x.device), fill)


def _translate(x, m, fill, axis):
    size = x.shape[3] if axis == 0 else x.shape[2]
    translation = torch.zeros(len(x), 2, device=x.device)
    translation[:, axis] = (-0.3 + 0.6 * m) * size
    return _affine(x, _eye(len(x), x), translation, fill)


def _op_shear_x(x, m, fill):
    return _shear(x, m, fill, 0)


def _op_shear_y(x, m, fill):
    return _shear(x, m, fill, 1)


def _op_translate_x(x, m, fill):
    return _translate(x, m, fill, 0)


def _op_translate_y(x, m, fill):
    return _translate(x, m, fill, 1)


#: The RandAugment pool of FixMatch / FlexMatch (USB): name -> op(x, magnitude01, fill).
RANDAUGMENT_OPS = {
    "Identity": _op_identity,
    "AutoContrast": _op_autocontrast,
    "Equalize": _op_equalize,
    "Rotate": _op_rotate,
    "Solarize": _op_solarize,
    "Color": _op_color,
    "Posterize": _op_posterize,
    "Contrast": _op_contrast,
    "Brightness": _op_brightness,
    "Sharpness": _op_sharpness,
    "ShearX": _op_shear_x,
    "ShearY": _op_shear_y,
    "TranslateX": _op_translate_x,
    "TranslateY": _op_translate_y,
}
_OP_LIST = list(RANDAUGMENT_OPS.values())


# ------------------------------------------------------------------------ transforms
class WeakAugment(nn.Module):
    """FixMatch/FlexMatch weak view: horizontal flip and random crop with reflect padding.

    Each sample is flipped with probability ``flip_p`` and cropped back to its size at a
    uniformly drawn integer offset after reflect padding by ``padding`` pixels.

    Parameters
    ----------
    image_size : int or tuple of (int, int), default=28
        Side (or ``(H, W)``) of the images the transform will receive.
    padding : int or None, default=None
        Reflect padding in pixels; ``None`` means ``round(0.125 * min(H, W))`` (4 px at
        32 px, as FixMatch; 4 px at 28 px, 1 px at 8 px).
    flip_p : float, default=0.5
        Probability of a horizontal flip.

    Examples
    --------
    >>> import torch
    >>> weak = WeakAugment(image_size=8)
    >>> x = torch.rand(5, 1, 8, 8)
    >>> weak(x, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([5, 1, 8, 8])
    """

    @validate_params({"image_size": _IMAGE_SIZE, "padding": _PADDING, "flip_p": _PROBABILITY},
                     prefer_skip_nested_validation=True)
    def __init__(self, image_size=28, padding: int | None = None, flip_p: float = 0.5):
        super().__init__()
        self.image_size = check_image_size(image_size, minimum=2)
        if padding is None:
            padding = int(round(0.125 * min(self.image_size)))
        self.padding = int(padding)
        self.flip_p = float(flip_p)

    def extra_repr(self) -> str:
        return f"image_size={self.image_size}, padding={self.padding}, flip_p={self.flip_p}"

    @torch.no_grad()
    @_single_thread_on_cpu
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``x`` (n, C, H, W) in [0, 1]; see the class docstring."""
        _check_batch(x, generator, self.image_size)
        if x.shape[0] == 0:
            return x.clone()
        work = _to_work_dtype(x)
        return _random_crop_flip(work, self.padding, self.flip_p, generator).to(x.dtype)


class StrongAugment(nn.Module):
    """FixMatch/FlexMatch strong view: flip + crop, RandAugment, then Cutout.

    As in USB's strong transform, each sample first gets the weak flip and reflect-padded
    crop (``flip_crop=True``), then ``n_ops`` operations drawn uniformly with replacement from
    the 14 of :data:`RANDAUGMENT_OPS` (Identity, AutoContrast, Equalize, Rotate +-30 deg,
    Solarize, Color, Posterize 4-8 bits, Contrast, Brightness, Sharpness with factors in
    [0.05, 0.95], ShearX/Y +-0.3, TranslateX/Y +-30 %), each with its own magnitude drawn
    uniformly per sample, then Cutout: a square of side ``U(0, cutout) * image side`` at a
    uniform random centre, filled with ``cutout_fill``. Color acts as the identity on
    images that do not have 3 channels.

    Parameters
    ----------
    image_size : int or tuple of (int, int), default=28
        Side (or ``(H, W)``) of the images the transform will receive.
    n_ops : int, default=3
        Number of RandAugment operations per sample.
    cutout : float, default=0.5
        Largest Cutout side as a fraction of the image side; 0 disables Cutout.
    flip_crop : bool, default=True
        Apply the weak view's flip and reflect-padded crop first (USB does).
    padding : int or None, default=None
        Reflect padding of that crop (see :class:`WeakAugment`).
    fill : float, default=0.0
        Value of the pixels that rotations, shears and translations bring in (PIL's default
        black, as in USB).
    cutout_fill : float, default=0.5
        Value of the Cutout square (mid-gray, as USB's (127, 127, 127)).

    Examples
    --------
    >>> import torch
    >>> strong = StrongAugment(image_size=8)
    >>> x = torch.rand(5, 3, 8, 8)
    >>> y = strong(x, generator=torch.Generator().manual_seed(0))
    >>> y.shape, bool(y.min() >= 0), bool(y.max() <= 1)
    (torch.Size([5, 3, 8, 8]), True, True)
    """

    @validate_params(
        {"image_size": _IMAGE_SIZE, "n_ops": [Interval(Integral, 0, None, closed="left")],
         "cutout": _PROBABILITY, "flip_crop": ["boolean"], "padding": _PADDING, "fill": _PROBABILITY,
         "cutout_fill": _PROBABILITY},
        prefer_skip_nested_validation=True,
    )
    def __init__(
        self,
        image_size=28,
        n_ops: int = 3,
        cutout: float = 0.5,
        flip_crop: bool = True,
        padding: int | None = None,
        fill: float = 0.0,
        cutout_fill: float = 0.5,
    ):
        super().__init__()
        self.image_size = check_image_size(image_size, minimum=2)
        self.n_ops = int(n_ops)
        self.cutout = float(cutout)
        self.flip_crop = bool(flip_crop)
        self.weak = WeakAugment(self.image_size, padding=padding)
        self.fill = float(fill)
        self.cutout_fill = float(cutout_fill)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, n_ops={self.n_ops}, cutout={self.cutout}, "
            f"flip_crop={self.flip_crop}, padding={self.weak.padding}, fill={self.fill}"
        )

    @torch.no_grad()
    @_single_thread_on_cpu
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``x`` (n, C, H, W) in [0, 1]; see the class docstring."""
        _check_batch(x, generator, self.image_size)
        if x.shape[0] == 0:
            return x.clone()
        out = _to_work_dtype(x)
        n = out.shape[0]
        if self.flip_crop:
            out = _random_crop_flip(out, self.weak.padding, self.weak.flip_p, generator)
        if out is x:
            out = out.clone()  # the ops below write in place
        if self.n_ops:
            choices = _randint(len(_OP_LIST), (n, self.n_ops), out, generator)
            magnitudes = _rand((n, self.n_ops), out, generator)
            for round_index in range(self.n_ops):
                for op_index, op in enumerate(_OP_LIST):
                    if op is _op_identity:
                        continue
                    mask = choices[:, round_index] == op_index
                    out = _apply_to_subset(
                        out,
                        mask,
                        lambda sub, m, op=op: op(sub, m, self.fill),
                        magnitudes[:, round_index],
                    )
        if self.cutout > 0:
            out = _cutout(out, self.cutout, self.cutout_fill, generator)
        return out.clamp_(0.0, 1.0).to(x.dtype)


class SimSiamAugment(nn.Module):
    """SimSiam view: random resized crop + flip, colour jitter, random grayscale.

    Per sample: a random resized crop (area fraction ``U(crop_scale)``, aspect ratio
    log-uniform in [3/4, 4/3], torchvision's 10-trial rule with a full-image fallback),
    resampled bilinearly to the input size, mirrored with probability ``flip_p``; with
    probability ``jitter_p`` colour jitter (brightness, contrast, saturation, hue with the
    strengths of ``jitter``, factors ``U(1 - s, 1 + s)`` and hue shift ``U(-h, h)``) in a random
    order drawn per sample, as torchvision's ``ColorJitter``; then grayscale with probability
    ``grayscale_p``.

    Images that do not have 3 channels get brightness and contrast only (saturation, hue and
    grayscale are meaningless for them). For tiny images (side <= 16 px) the default crop
    scale is softened to (0.5, 1.0): a 20 % crop of an 8x8 digit keeps about 3x3 pixels and
    rarely shows which digit it was.

    Parameters
    ----------
    image_size : int or tuple of (int, int), default=28
        Side (or ``(H, W)``) of the images the transform will receive.
    channels : int, default=1
        Number of channels of those images.
    crop_scale : tuple of (float, float) or None, default=None
        Area fraction range of the crop; ``None`` means (0.2, 1.0), or (0.5, 1.0) for images
        of side <= 16 px.
    flip_p : float, default=0.5
        Probability of a horizontal flip.
    jitter : tuple of 4 floats, default=(0.4, 0.4, 0.4, 0.1)
        Brightness, contrast, saturation and hue strengths.
    jitter_p : float, default=0.8
        Probability of applying colour jitter.
    grayscale_p : float, default=0.2
        Probability of converting to grayscale (3-channel images only).

    Examples
    --------
    >>> import torch
    >>> augment = SimSiamAugment(image_size=28, channels=1)
    >>> x = torch.rand(4, 1, 28, 28)
    >>> view1, view2 = augment(x), augment(x)
    >>> view1.shape
    torch.Size([4, 1, 28, 28])
    """

    @validate_params(
        # crop_scale and jitter are checked in the body: their entries bound one another
        {"image_size": _IMAGE_SIZE, "channels": [Interval(Integral, 1, None, closed="left")],
         "crop_scale": "no_validation", "flip_p": _PROBABILITY, "jitter": "no_validation",
         "jitter_p": _PROBABILITY, "grayscale_p": _PROBABILITY},
        prefer_skip_nested_validation=True,
    )
    def __init__(
        self,
        image_size=28,
        channels: int = 1,
        crop_scale: tuple[float, float] | None = None,
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
    ):
        super().__init__()
        self.image_size = check_image_size(image_size, minimum=2)
        self.channels = int(channels)
        if crop_scale is None:
            crop_scale = (0.5, 1.0) if max(self.image_size) <= 16 else (0.2, 1.0)
        try:
            low, high = (float(v) for v in crop_scale)
        except (TypeError, ValueError):
            raise TypeError(
                f"crop_scale must be a pair of floats (low, high), got {crop_scale!r}"
            ) from None
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale!r}")
        self.crop_scale = (low, high)
        self.flip_p = float(flip_p)
        try:
            brightness, contrast, saturation, hue = (float(v) for v in jitter)
        except (TypeError, ValueError):
            raise TypeError(
                f"jitter must be 4 floats (brightness, contrast, saturation, hue), got {jitter!r}"
            ) from None
        if min(brightness, contrast, saturation) < 0 or not 0 <= hue <= 0.5:
            raise ValueError(f"jitter strengths must be >= 0 and hue in [0, 0.5], got {jitter!r}")
        self.jitter = (brightness, contrast, saturation, hue)
        self.jitter_p = float(jitter_p)
        self.grayscale_p = float(grayscale_p)

    @classmethod
    @validate_params({"preset": [StrOptions(set(SIMSIAM_PRESETS))], "image_size": _IMAGE_SIZE,
                      "channels": [Interval(Integral, 1, None, closed="left")]},
                     prefer_skip_nested_validation=False)  # the constructor checks the rest
    def from_preset(cls, preset: str, image_size=28, channels: int = 1) -> SimSiamAugment:
        """The view recipe of :data:`SIMSIAM_PRESETS` ``[preset]`` for images of this size.

        On tiny images (side <= 16 px) the crop keeps at least half of the area whatever the
        preset (see the class docstring).

        Parameters
        ----------
        preset : {"grayscale", "rgb"}
            Kind of image.
        image_size : int or tuple of (int, int), default=28
            Side (or ``(H, W)``) of the images.
        channels : int, default=1
            Number of channels.

        Returns
        -------
        augment : SimSiamAugment

        Examples
        --------
        >>> SimSiamAugment.from_preset("grayscale", image_size=28).crop_scale
        (0.4, 1.0)
        """
        params = dict(SIMSIAM_PRESETS[preset])
        if max(check_image_size(image_size, minimum=2)) <= 16:
            params["crop_scale"] = (max(0.5, params["crop_scale"][0]), 1.0)
        return cls(image_size=image_size, channels=channels, **params)

    def extra_repr(self) -> str:
        return (
            f"image_size={self.image_size}, channels={self.channels}, "
            f"crop_scale={self.crop_scale}, flip_p={self.flip_p}, jitter={self.jitter}, "
            f"jitter_p={self.jitter_p}, grayscale_p={self.grayscale_p}"
        )

    def _resized_crop_flip(self, x, generator):
        n, _, height, width = x.shape
        trials = 10
        area = _uniform((n, trials), *self.crop_scale, x, generator)
        log_ratio = _uniform((n, trials), math.log(3 / 4), math.log(4 / 3), x, generator)
        ratio = torch.exp(log_ratio)
        # crop sides as fractions of the image sides (area fraction * H * W pixels)
        crop_w = torch.sqrt(area * ratio * height / width)
        crop_h = torch.sqrt(area / ratio * width / height)
        fits = (crop_w <= 1.0) & (crop_h <= 1.0)
        first = fits.long().argmax(dim=1, keepdim=True)  # first fitting trial (0 if none)
        any_fit = fits.any(dim=1)
        whole = torch.ones(n, device=x.device)
        crop_w = torch.where(any_fit, crop_w.gather(1, first).squeeze(1), whole)
        crop_h = torch.where(any_fit, crop_h.gather(1, first).squeeze(1), whole)
        # crop centre, uniform over the positions that keep the crop inside the image
        centre_x = (2.0 * _rand((n,), x, generator) - 1.0) * (1.0 - crop_w)
        centre_y = (2.0 * _rand((n,), x, generator) - 1.0) * (1.0 - crop_h)
        sign = torch.where(_rand((n,), x, generator) < self.flip_p, -1.0, 1.0)
        zeros = torch.zeros(n, device=x.device)
        theta = torch.stack(
            (
                torch.stack((crop_w * sign, zeros, centre_x), 1),
                torch.stack((zeros, crop_h, centre_y), 1),
            ),
            1,
        ).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _color_jitter(self, x, generator):
        n = x.shape[0]
        brightness, contrast, saturation, hue = self.jitter
        colour = x.shape[1] == 3
        apply = _rand((n,), x, generator) < self.jitter_p

        def factor(strength):
            return _uniform((n,), max(0.0, 1 - strength), 1 + strength, x, generator)

        # (op, per-sample factor, whether the op is active)
        factors = [
            (_adjust_brightness, factor(brightness), brightness > 0),
            (_adjust_contrast, factor(contrast), contrast > 0),
            (_adjust_saturation, factor(saturation), colour and saturation > 0),
            (_adjust_hue, _uniform((n,), -hue, hue, x, generator), colour and hue > 0),
        ]
        if not colour:
            factors = factors[:2]
        order = _randperm_rows(n, len(factors), x, generator)  # per-sample op order
        for position in range(len(factors)):
            for op_index, (op, factor, active) in enumerate(factors):
                if active:
                    x = _apply_to_subset(x, apply & (order[:, position] == op_index), op, factor)
        return x

    @torch.no_grad()
    @_single_thread_on_cpu
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``x`` (n, C, H, W) in [0, 1]; see the class docstring."""
        _check_batch(x, generator, self.image_size, self.channels)
        if x.shape[0] == 0:
            return x.clone()
        out = _to_work_dtype(x)
        out = self._resized_crop_flip(out, generator)
        out = self._color_jitter(out, generator)
        if out.shape[1] == 3 and self.grayscale_p > 0:
            gray = _rand((out.shape[0],), out, generator) < self.grayscale_p
            out = torch.where(gray.view(-1, 1, 1, 1), _grayscale(out).expand_as(out), out)
        return out.clamp_(0.0, 1.0).to(x.dtype)

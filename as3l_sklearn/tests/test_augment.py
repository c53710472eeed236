"""Tests for the batched, per-sample augmentations."""

import pickle

import pytest
import torch

from as3l_sklearn import augment
from as3l_sklearn.augment import RANDAUGMENT_OPS, SIMSIAM_PRESETS, SimSiamAugment, StrongAugment, WeakAugment



def _make(kind, size, channels):
    if kind == "simsiam":
        return SimSiamAugment(image_size=size, channels=channels)
    if kind == "weak":
        return WeakAugment(image_size=size)
    return StrongAugment(image_size=size)


def _generator(seed):
    return torch.Generator().manual_seed(seed)


def _images(n, channels, size, seed=0):
    # smooth random images (not pure noise) so that crops and flips change them visibly
    g = _generator(seed)
    low = torch.rand(n, channels, 4, 4, generator=g)
    return torch.nn.functional.interpolate(
        low, size=(size, size), mode="bilinear", align_corners=False
    )


KINDS = ["simsiam", "weak", "strong"]
SHAPES = [(1, 8), (1, 28), (3, 32)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels, size", SHAPES)
def test_shape_dtype_range_and_input_untouched(kind, channels, size):
    aug = _make(kind, size, channels)
    x = _images(6, channels, size)
    original = x.clone()
    y = aug(x, generator=_generator(1))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(x, original)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels, size", SHAPES)
def test_same_seed_same_output_and_different_seed_differs(kind, channels, size):
    aug = _make(kind, size, channels)
    x = _images(6, channels, size)
    first = aug(x, generator=_generator(3))
    assert torch.equal(first, aug(x, generator=_generator(3)))
    assert not torch.equal(first, aug(x, generator=_generator(4)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("channels, size", SHAPES)
def test_independent_parameters_per_sample(kind, channels, size):
    # 8 copies of one image must get (almost surely) 8 different views
    aug = _make(kind, size, channels)
    x = _images(1, channels, size).expand(8, -1, -1, -1).contiguous()
    y = aug(x, generator=_generator(5))
    flat = y.flatten(1)
    distinct = {tuple(row.tolist()) for row in flat}
    assert len(distinct) >= 7


def test_global_rng_used_without_generator():
    aug = SimSiamAugment(image_size=8, channels=1)
    x = _images(4, 1, 8)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    assert torch.equal(a, aug(x))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_dtypes(dtype):
    x = _images(4, 3, 8).to(dtype)
    for aug in (SimSiamAugment(8, 3), WeakAugment(8), StrongAugment(8)):
        y = aug(x, generator=_generator(0))
        assert y.dtype == dtype and y.shape == x.shape


def test_weak_is_flip_and_integer_shift():
    # with reflect padding p, every output is a flipped-or-not crop of the padded image
    size, padding = 8, 1
    x = _images(16, 1, size)
    y = WeakAugment(size)(x, generator=_generator(0))
    assert WeakAugment(size).padding == padding
    assert WeakAugment(32).padding == 4 and WeakAugment(28).padding == 4
    padded = torch.nn.functional.pad(x, (padding,) * 4, mode="reflect")
    for i in range(len(x)):
        candidates = [
            source[..., top:top + size, left:left + size]
            for source in (padded[i], padded[i].flip(-1))
            for top in range(2 * padding + 1)
            for left in range(2 * padding + 1)
        ]
        assert any(torch.equal(y[i], c) for c in candidates)


def test_weak_without_flip_or_padding_is_identity():
    x = _images(4, 3, 8)
    assert torch.equal(WeakAugment(8, padding=0, flip_p=0.0)(x), x)


def test_simsiam_grayscale_channels_and_color_ops():
    x = _images(64, 3, 16)
    y = SimSiamAugment(16, 3, grayscale_p=1.0)(x, generator=_generator(0))
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])
    # nothing drawn to apply: the view is the image itself
    plain = SimSiamAugment(16, 3, crop_scale=(1.0, 1.0), flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    torch.testing.assert_close(plain(x, generator=_generator(0)), x)
    # jitter always on: colours change, and differently per sample
    jittered = SimSiamAugment(
        16, 3, crop_scale=(1.0, 1.0), flip_p=0.0, jitter_p=1.0, grayscale_p=0.0
    )
    assert not torch.allclose(jittered(x, generator=_generator(0)), x)


def test_simsiam_tiny_images_soften_crop():
    assert SimSiamAugment(8, 1).crop_scale == (0.5, 1.0)
    assert SimSiamAugment(28, 1).crop_scale == (0.2, 1.0)


def test_simsiam_presets_per_kind_of_image():
    rgb = SimSiamAugment.from_preset("rgb", image_size=32, channels=3)
    gray = SimSiamAugment.from_preset("grayscale", image_size=28, channels=1)
    for aug, preset in ((rgb, "rgb"), (gray, "grayscale")):
        for key, value in SIMSIAM_PRESETS[preset].items():
            assert getattr(aug, key) == tuple(value) if isinstance(value, tuple) else getattr(aug, key) == value
    # the grayscale recipe crops less and has no colour steps; the RGB one is SimSiam's CIFAR recipe
    assert gray.crop_scale[0] > rgb.crop_scale[0] == 0.2
    assert gray.jitter[2:] == (0.0, 0.0) and gray.grayscale_p == 0.0
    assert rgb.jitter == (0.4, 0.4, 0.4, 0.1) and rgb.grayscale_p == 0.2
    # tiny images keep at least half of the area whatever the preset
    assert SimSiamAugment.from_preset("rgb", image_size=8, channels=3).crop_scale == (0.5, 1.0)
    x = _images(16, 1, 28)
    view = gray(x, generator=_generator(0))
    assert view.shape == x.shape and not torch.allclose(view, x)
    with pytest.raises(ValueError, match="preset"):
        SimSiamAugment.from_preset("cmyk")


def test_simsiam_flip_only():
    x = _images(32, 1, 8)
    aug = SimSiamAugment(8, 1, crop_scale=(1.0, 1.0), jitter_p=0.0)
    # a full-area crop fits only with aspect ratio 1: the 10 trials fail and the whole image is kept
    y = aug(x, generator=_generator(0))
    flipped = [torch.allclose(y[i], x[i].flip(-1), atol=1e-5) for i in range(len(x))]
    kept = [torch.allclose(y[i], x[i], atol=1e-5) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 4 < sum(flipped) < 28


def test_strong_without_ops_and_cutout_equals_weak():
    x = _images(8, 3, 16)
    strong = StrongAugment(16, n_ops=0, cutout=0.0)
    weak = WeakAugment(16)
    assert torch.equal(strong(x, generator=_generator(2)), weak(x, generator=_generator(2)))


def test_cutout_fills_a_square():
    x = torch.zeros(32, 1, 16, 16)
    cutout_only = StrongAugment(16, n_ops=0, cutout=0.5, flip_crop=False, cutout_fill=1.0)
    y = cutout_only(x, generator=_generator(0))
    areas = y.flatten(1).sum(1)
    assert float(areas.max()) <= 64  # side <= 8 px
    assert float(areas.max()) > 0
    for image in y[:, 0]:
        rows, cols = image.nonzero(as_tuple=True)
        if len(rows):
            assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)


@pytest.mark.parametrize("name", sorted(RANDAUGMENT_OPS))
@pytest.mark.parametrize("channels", [1, 3])
def test_each_randaugment_op(name, channels):
    x = _images(5, channels, 12)
    m = torch.rand(5, generator=_generator(0))
    y = RANDAUGMENT_OPS[name](x, m, 0.0)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    if name == "Identity" or (name == "Color" and channels == 1):
        assert torch.equal(y, x)
    elif name not in ("AutoContrast",):
        assert not torch.equal(y, x)


def test_ops_match_pil_semantics():
    # reference values computed by torchvision's functional ops (PIL semantics)
    tvf = pytest.importorskip("torchvision.transforms.v2.functional")
    u8 = (torch.rand(4, 3, 12, 12, generator=_generator(1)) ** 2 * 255).to(torch.uint8)
    x = u8.float() / 255
    m = torch.rand(4, generator=_generator(2))
    factor = 0.05 + 0.9 * m
    expected_equalize = torch.stack([tvf.equalize(image) for image in u8]).float() / 255
    torch.testing.assert_close(RANDAUGMENT_OPS["Equalize"](x, m, 0.0), expected_equalize)
    expected_sharp = torch.stack([tvf.adjust_sharpness(x[i], float(factor[i])) for i in range(4)])
    torch.testing.assert_close(RANDAUGMENT_OPS["Sharpness"](x, m, 0.0), expected_sharp)
    bits = (4 + 4 * m).long()
    expected_post = torch.stack([tvf.posterize(u8[i], int(bits[i])) for i in range(4)]) / 255
    torch.testing.assert_close(RANDAUGMENT_OPS["Posterize"](x, m, 0.0), expected_post)
    angle = -30 + 60 * m
    expected_rot = torch.stack(
        [
            tvf.rotate(x[i], float(angle[i]), interpolation=tvf.InterpolationMode.BILINEAR)
            for i in range(4)
        ]
    )
    # compare away from the borders, where the two implementations fill differently
    rotated = RANDAUGMENT_OPS["Rotate"](x, m, 0.0)
    torch.testing.assert_close(rotated[..., 3:-3, 3:-3], expected_rot[..., 3:-3, 3:-3])
    shift = torch.rand(4, generator=_generator(3)) * 0.2 - 0.1
    expected_hue = torch.stack([tvf.adjust_hue(x[i], float(shift[i])) for i in range(4)])
    torch.testing.assert_close(augment._adjust_hue(x, shift), expected_hue, atol=1e-5, rtol=0)


def test_solarize_threshold():
    x = torch.tensor([0.1, 0.4, 0.6, 0.9]).view(1, 1, 2, 2)
    y = RANDAUGMENT_OPS["Solarize"](x, torch.tensor([0.5]), 0.0)
    torch.testing.assert_close(y.flatten(), torch.tensor([0.1, 0.4, 0.4, 0.1]))


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs(kind):
    aug = _make(kind, 8, 1)
    with pytest.raises(TypeError, match="x"):
        aug(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="x"):
        aug(torch.zeros(2, 1, 8, 8).numpy())
    with pytest.raises(ValueError, match="x"):
        aug(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="image_size"):
        aug(torch.zeros(2, 1, 10, 10))
    with pytest.raises(TypeError, match="generator"):
        aug(torch.zeros(2, 1, 8, 8), generator=0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="channels"):
        SimSiamAugment(8, channels=1)(torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match="image_size"):
        WeakAugment("8")
    with pytest.raises(ValueError, match="image_size"):
        WeakAugment(1)
    with pytest.raises(ValueError, match="crop_scale"):
        SimSiamAugment(8, crop_scale=(0.5, 2.0))
    with pytest.raises(ValueError, match="flip_p"):
        WeakAugment(8, flip_p=1.5)
    with pytest.raises(ValueError, match="n_ops"):
        StrongAugment(8, n_ops=-1)
    with pytest.raises(ValueError, match="cutout"):
        StrongAugment(8, cutout=2.0)


def test_pickle_and_repr():
    for aug in (SimSiamAugment(8, 1), WeakAugment(8), StrongAugment(8)):
        restored = pickle.loads(pickle.dumps(aug))
        x = _images(3, 1, 8)
        assert torch.equal(restored(x, generator=_generator(0)), aug(x, generator=_generator(0)))
        assert "image_size" in repr(aug)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_cuda_batches(kind):
    aug = _make(kind, 32, 3)
    x = _images(16, 3, 32).cuda()
    y = aug(x, generator=_generator(0))  # CPU generator drives a CUDA batch reproducibly
    assert y.device == x.device and y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(y, aug(x, generator=_generator(0)))
    cpu = aug(x.cpu(), generator=_generator(0))
    torch.testing.assert_close(y.cpu(), cpu, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size", [(2, 2), (3, 3), (5, 9), (12, 20)])
def test_tiny_and_rectangular_images(size):
    x = torch.rand(6, 3, *size, generator=_generator(0))
    for aug in (SimSiamAugment(size, 3), WeakAugment(list(size)), StrongAugment(torch.Size(size))):
        y = aug(x, generator=_generator(1))
        assert y.shape == x.shape
        assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_batches(kind, n):
    aug = _make(kind, 8, 3)
    x = torch.rand(n, 3, 8, 8, generator=_generator(0))
    y = aug(x, generator=_generator(1))
    assert y.shape == x.shape and y.dtype == x.dtype


def test_thread_setting_restored_and_output_unchanged():
    x = _images(6, 3, 16)
    aug = StrongAugment(16)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = aug(x, generator=_generator(0))
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        one = aug(x, generator=_generator(0))
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)

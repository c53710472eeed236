"""Tests for the backbones, SimSiam heads and loss."""

import pickle

import pytest
import torch
from torch import nn

from as3l_sklearn.nn import (
    BACKBONES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageInput,
    auto_backbone_name,
    pretrained_backbone,
    wrn_bn_momentum,
    SimSiamPredictor,
    SimSiamProjector,
    make_backbone,
    negative_cosine_similarity,
    simsiam_loss,
)

EXPECTED_OUT_DIM = {"small_cnn": 128, "small_cnn_2x2": 512, "resnet18_cifar": 512, "wrn28_2": 128, "resnet18": 512}



def test_registry_names():
    assert set(BACKBONES) == set(EXPECTED_OUT_DIM)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUT_DIM))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_named_backbone_out_dim_and_training_step(name, in_channels):
    torch.manual_seed(0)
    size = 32 if name == "resnet18" else 8  # the ImageNet stem divides by 32
    backbone = make_backbone(name, in_channels=in_channels, image_size=size)
    assert isinstance(backbone, nn.Module)
    assert backbone.out_dim == EXPECTED_OUT_DIM[name]
    # one SGD step in train mode (BatchNorm on a batch of 4) moves the weights
    optimizer = torch.optim.SGD(backbone.parameters(), lr=0.1)
    first = next(backbone.parameters())
    before = first.detach().clone()
    backbone(torch.rand(4, in_channels, size, size)).pow(2).mean().backward()
    optimizer.step()
    assert not torch.equal(before, first)
    # one module per (name, channels): adaptive pooling lets it take every image size
    backbone.eval()
    for image_size in (32,) if name == "resnet18" else (8, 28, 32):
        assert make_backbone(backbone, in_channels=in_channels, image_size=image_size) is backbone
        with torch.no_grad():
            features = backbone(torch.rand(2, in_channels, image_size, image_size))
        assert features.shape == (2, EXPECTED_OUT_DIM[name])
        assert features.dtype == torch.float32
        assert torch.isfinite(features).all()


def test_non_square_images():
    backbone = make_backbone("small_cnn", in_channels=1, image_size=(12, 20))
    assert backbone(torch.rand(2, 1, 12, 20)).shape == (2, 128)


@pytest.mark.parametrize(
    "in_channels, image_size, expected",
    [(1, 28, "small_cnn"), (1, 32, "small_cnn"), (3, 16, "small_cnn"), (3, 32, "resnet18_cifar"),
     (1, 64, "resnet18_cifar"), (3, 8, "small_cnn")],
)
def test_auto(in_channels, image_size, expected):
    backbone = make_backbone("auto", in_channels=in_channels, image_size=image_size)
    assert backbone.out_dim == EXPECTED_OUT_DIM[expected]
    assert type(backbone) is type(BACKBONES[expected](in_channels))


def test_wrn_follows_fixmatch_settings():
    backbone = make_backbone("wrn28_2", in_channels=3, image_size=32)
    batch_norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batch_norms and all(m.momentum == 0.001 for m in batch_norms)
    slopes = {m.negative_slope for m in backbone.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}
    assert not any(isinstance(m, nn.ReLU) for m in backbone.modules())
    convs = [m for m in backbone.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    # stem + 3 groups x 4 blocks x 2 convs (+ the final layer = depth 28; shortcuts are 1x1)
    assert len(convs) == 1 + 3 * 4 * 2


def test_resnet18_cifar_stem():
    backbone = make_backbone("resnet18_cifar", in_channels=3, image_size=32)
    first_conv = next(m for m in backbone.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.kernel_size == (3, 3) and first_conv.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.modules())


def test_custom_module_without_out_dim():
    module = nn.Sequential(
        nn.Conv2d(1, 5, 3), nn.BatchNorm2d(5), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    module.train()
    running_mean = module[1].running_mean.clone()
    backbone = make_backbone(module, in_channels=1, image_size=8)
    assert backbone is module
    assert backbone.out_dim == 5
    assert backbone.training  # mode restored
    assert torch.equal(module[1].running_mean, running_mean)  # dummy pass left BN statistics alone


def test_custom_module_with_out_dim_kept():
    module = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))
    module.out_dim = 7
    assert make_backbone(module, in_channels=1, image_size=8).out_dim == 7
    module.out_dim = "seven"
    with pytest.raises(TypeError, match="out_dim"):
        make_backbone(module, in_channels=1, image_size=8)


def test_custom_module_bad_output():
    with pytest.raises(ValueError, match=r"\(n, out_dim\)"):
        make_backbone(nn.Conv2d(1, 4, 3), in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="image_size"):
        make_backbone(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), in_channels=1, image_size=28)


def test_bad_name_lists_valid_names():
    with pytest.raises(ValueError, match="resnet18_cifar") as info:
        make_backbone("resnet50", in_channels=3, image_size=32)
    for name in ["small_cnn", "wrn28_2", "auto"]:
        assert name in str(info.value)
    with pytest.raises(TypeError, match="The 'name_or_module' parameter of make_backbone must be a str among .* "
                                        "or a torch.nn.Module. Got 3 instead"):
        make_backbone(3, in_channels=3, image_size=32)


@pytest.mark.parametrize(
    "name, size", [("resnet18_cifar", 4), ("wrn28_2", 7), ("small_cnn", 3), ("auto", 2)]
)
def test_too_small_images(name, size):
    with pytest.raises(ValueError, match="image_size"):
        make_backbone(name, in_channels=1, image_size=size)


@pytest.mark.parametrize("kwargs, error", [
    ({"in_channels": 0}, ValueError), ({"in_channels": 1.5}, TypeError),
    ({"image_size": "28"}, TypeError),
    ({"image_size": (28, 28, 1)}, TypeError),
    ({"image_size": 0}, ValueError),
])
def test_bad_arguments(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        make_backbone("small_cnn", **kwargs)


def test_backbone_pickles():
    torch.manual_seed(0)
    backbone = make_backbone("small_cnn", in_channels=1, image_size=8).eval()
    x = torch.rand(3, 1, 8, 8)
    restored = pickle.loads(pickle.dumps(backbone))
    assert restored.out_dim == 128
    assert torch.equal(restored(x), backbone(x))


def test_projector_structure():
    projector = SimSiamProjector(16, hidden_dim=12, out_dim=10)
    linears = [m for m in projector.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in projector.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [(m.in_features, m.out_features) for m in linears] == [(16, 12), (12, 12), (12, 10)]
    assert len(norms) == 3 and [m.affine for m in norms] == [True, True, False]
    assert sum(isinstance(m, nn.ReLU) for m in projector.modules()) == 2
    assert projector(torch.randn(5, 16)).shape == (5, 10)
    assert projector.out_dim == 10


def test_predictor_structure():
    predictor = SimSiamPredictor(10, hidden_dim=3)
    linears = [m for m in predictor.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 3), (3, 10)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in predictor.modules()) == 1
    assert predictor.layers[-1].bias is not None  # output layer: no BN, keeps its bias
    assert predictor(torch.randn(5, 10)).shape == (5, 10)


def test_default_head_sizes():
    projector, predictor = SimSiamProjector(128), SimSiamPredictor()
    assert projector.out_dim == 2048 and predictor.out_dim == 2048
    assert predictor.layers[0].out_features == 512


def test_negative_cosine_similarity_values_and_stop_gradient():
    torch.manual_seed(0)
    z = torch.randn(6, 8, requires_grad=True)
    p = (3.0 * z.detach()).requires_grad_(True)
    loss = negative_cosine_similarity(p, z)
    assert loss.item() == pytest.approx(-1.0, abs=1e-6)
    loss.backward()
    assert z.grad is None  # stop-gradient: nothing flows into z
    assert p.grad is not None
    opposite = negative_cosine_similarity(z.detach(), -z.detach())
    assert opposite.item() == pytest.approx(1.0, abs=1e-6)
    orthogonal = negative_cosine_similarity(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]))
    assert orthogonal.item() == pytest.approx(0.0, abs=1e-7)


def test_simsiam_loss_symmetric():
    torch.manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(4, 6) for _ in range(4))
    expected = 0.5 * negative_cosine_similarity(p1, z2) + 0.5 * negative_cosine_similarity(p2, z1)
    assert torch.allclose(simsiam_loss(p1, p2, z1, z2), expected)
    assert torch.allclose(simsiam_loss(p1, p2, z1, z2), simsiam_loss(p2, p1, z2, z1))


def test_simsiam_step_lowers_loss():
    # a few SGD steps on a fixed pair of views lower the symmetric loss end to end
    torch.manual_seed(0)
    encoder = make_backbone("small_cnn", in_channels=1, image_size=8)
    projector = SimSiamProjector(encoder.out_dim, hidden_dim=16, out_dim=16)
    predictor = SimSiamPredictor(16, hidden_dim=4)
    modules = nn.ModuleList([encoder, projector, predictor])
    optimizer = torch.optim.SGD(modules.parameters(), lr=0.05, momentum=0.9)
    x1, x2 = torch.rand(8, 1, 8, 8), torch.rand(8, 1, 8, 8)
    losses = []
    for _ in range(5):
        z1, z2 = projector(encoder(x1)), projector(encoder(x2))
        loss = simsiam_loss(predictor(z1), predictor(z2), z1, z2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(EXPECTED_OUT_DIM))
def test_backbone_on_cuda(name):
    backbone = make_backbone(name, in_channels=3, image_size=32).cuda()
    assert backbone(torch.rand(2, 3, 32, 32, device="cuda")).shape == (2, EXPECTED_OUT_DIM[name])


@pytest.mark.parametrize(
    "channels, size, device, expected",
    [(1, 28, "cpu", "small_cnn_2x2"), (3, 32, "cpu", "small_cnn_2x2"), (3, 90, "cpu", "small_cnn_2x2"),
     (3, 16, "cuda", "small_cnn_2x2"), (1, 28, "cuda", "resnet18_cifar"), (3, 64, "cuda", "resnet18_cifar"),
     (3, 96, "cuda", "resnet18"), (3, 32, None, "resnet18_cifar"), (1, 28, None, "small_cnn")],
)
def test_auto_backbone_follows_device_and_size(channels, size, device, expected):
    assert auto_backbone_name(channels, size, device) == expected
    backbone = make_backbone("auto", in_channels=channels, image_size=size, device=device)
    assert type(backbone) is type(BACKBONES[expected](channels))
    assert backbone.out_dim == EXPECTED_OUT_DIM[expected]


def test_wrn_bn_momentum_fits_the_run_length():
    assert wrn_bn_momentum(None) == 0.001  # FixMatch's long runs
    assert wrn_bn_momentum(780) == pytest.approx(10 / 780)
    assert wrn_bn_momentum(10) == 0.1 and wrn_bn_momentum(10**7) == 0.001
    # what the momentum is for: the running statistics forget their initial values in the run
    for steps in (780, 5_000, 100_000):
        assert (1 - wrn_bn_momentum(steps)) ** steps < 1e-4
    short = make_backbone("wrn28_2", in_channels=3, image_size=32, expected_steps=780)
    momenta = {m.momentum for m in short.modules() if isinstance(m, nn.BatchNorm2d)}
    assert len(momenta) == 1 and momenta.pop() == pytest.approx(10 / 780)
    with pytest.raises(ValueError, match="expected_steps"):
        wrn_bn_momentum(0)


def test_image_input_resizes_repeats_and_normalizes():
    inner = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    inner.out_dim = 3
    adapter = ImageInput(inner, image_size=4, mean=IMAGENET_MEAN, std=IMAGENET_STD, in_channels=3)
    x = torch.full((2, 1, 16, 16), 0.5)
    out = adapter(x)
    expected = (0.5 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out, expected.expand(2, 3))
    assert adapter.out_dim == 3
    with pytest.raises(ValueError, match="std"):
        ImageInput(inner, mean=(0.5,), std=(0.0,))
    with pytest.raises(ValueError, match="together"):
        ImageInput(inner, mean=(0.5,))


def test_pretrained_backbone_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    source = make_backbone("small_cnn", in_channels=1, image_size=8)
    path = tmp_path / "small.pt"
    torch.save({"state_dict": {"module." + k: v for k, v in source.state_dict().items()}}, path)
    torch.manual_seed(1)
    target = make_backbone("small_cnn", in_channels=1, image_size=8)
    loaded = pretrained_backbone(target, path, image_size=8, in_channels=1)
    assert loaded.out_dim == 128
    x = torch.rand(3, 1, 8, 8)
    source.eval(), loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))
    with pytest.raises(TypeError, match="architecture"):
        pretrained_backbone(3)
    with pytest.raises(TypeError, match="weights"):
        pretrained_backbone(target, weights=5)

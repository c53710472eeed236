"""``as3l --encoder ARCH --encoder-weights FILE|NAME``: your own pretrained encoder.

Nothing is downloaded: a small random ``state_dict`` of torchvision's ``mobilenet_v3_small``
(2.5 M parameters, 10 MB) is written where the torch hub cache (``TORCH_HOME``) expects the
file of ``MobileNet_V3_Small_Weights.IMAGENET1K_V1``; the encoder sees 16 px images to keep
the runs short.
"""

import json
import os
import socket

import joblib
import numpy as np
import pytest
import torch
import torchvision

from as3l_sklearn.cli import main, parse_command
from as3l_sklearn.cli._data import folder_max_side
from as3l_sklearn.cli._plan import make_encoder_plan
from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.nn import IMAGENET_MEAN, IMAGENET_STD, ImageInput, pretrained_backbone

ARCH = "mobilenet_v3_small"
HUB_FILE = "mobilenet_v3_small-047dcff4.pth"  # the file name of IMAGENET1K_V1's URL
#: tiny runs: 120 digits, 1 FlexMatch step, the encoder at 16 px
TINY = ["--n-train", "120", "--max-iter", "1", "--budget", "10", "--image-size", "16"]


def _random_state_dict(seed: int) -> dict:
    torch.manual_seed(seed)
    return torchvision.models.get_model(ARCH, weights=None).state_dict()


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory):
    """A torch hub cache holding a random state_dict under the file name of IMAGENET1K_V1."""
    home = tmp_path_factory.mktemp("torch-home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(_random_state_dict(0), checkpoints / HUB_FILE)
    return home


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, torch_home):
    """A private stage cache, the test torch hub cache, and no network at all."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _run(tmp_path, *flags, output="out"):
    code = main(TINY + ["--output", str(tmp_path / output), *flags])
    report = json.loads((tmp_path / output / "report.json").read_text())
    return code, report


def _unit(features):
    features = np.asarray(features, dtype=np.float64)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def _encoder_of(folder):
    """The fitted SimSiamEmbedder inside the saved model (the classifier's encoder)."""
    return joblib.load(folder / "model.joblib")["classifier"].encoder


def test_frozen_encoder_loads_the_hub_weights_and_is_cached(tmp_path, torch_home):
    flags = ["--quiet", "--encoder", ARCH, "--encoder-weights", "IMAGENET1K_V1"]
    code, report = _run(tmp_path, *flags)
    assert code == 0
    assert report["encoder"]["weights"] == "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    assert report["encoder"]["frozen"] is True and report["encoder"]["steps"] == 0
    assert report["plan"]["simsiam_steps"] == 0 and report["plan"]["encoder"]["frozen"] is True
    assert set(report["feature_check"]["weights"]) == {"pretrained", "pixels"}
    # the features are those of the file's weights: a reference forward pass gives them
    images = load_digits_images()[0][:6]
    reference = ImageInput(pretrained_backbone(ARCH, str(torch_home / "hub" / "checkpoints" / HUB_FILE),
                                               image_size=16),
                           image_size=16, mean=IMAGENET_MEAN, std=IMAGENET_STD, in_channels=3).eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    embedder = _encoder_of(tmp_path / "out")
    # random weights give tiny activations (~1e-10): compared by direction
    np.testing.assert_allclose(_unit(embedder.transform(images)), _unit(expected), atol=1e-4)
    random_init = ImageInput(pretrained_backbone(ARCH, image_size=16), image_size=16,
                             mean=IMAGENET_MEAN, std=IMAGENET_STD, in_channels=3).eval()
    with torch.no_grad():
        other = random_init(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).numpy()
    assert np.abs(_unit(other) - _unit(expected)).max() > 0.1
    # the stage cache keys on the weights file: the same file is a hit, new weights are not
    _, again = _run(tmp_path, *flags, "--overwrite")
    assert "embed (pretrained encoder)" in again["cached_stages"]
    path = torch_home / "hub" / "checkpoints" / HUB_FILE
    before = path.read_bytes()
    try:
        torch.save(_random_state_dict(1), path)
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10 ** 9))
        _, changed = _run(tmp_path, *flags, "--overwrite")
        assert "embed (pretrained encoder)" not in changed["cached_stages"]
    finally:
        path.write_bytes(before)


def test_local_file_tuned_and_checked_against_simsiam_and_pixels(tmp_path, capsys):
    weights = tmp_path / "mine.pt"
    torch.save({"state_dict": _random_state_dict(2)}, weights)  # a checkpoint layout
    code, report = _run(tmp_path, "--encoder", ARCH, "--encoder-weights", str(weights),
                        "--encoder-tune", "--encoder-compare-simsiam", "--embed-steps", "2")
    assert code == 0
    assert report["encoder"]["weights"] == "file" and report["encoder"]["file"] == str(weights)
    assert report["encoder"]["frozen"] is False and report["encoder"]["steps"] == 2
    assert report["simsiam_comparison"]["steps"] == 2
    check = report["feature_check"]
    assert list(check["weights"]) == ["pretrained", "simsiam", "pixels"]
    assert abs(sum(check["weights"].values()) - 1) < 1e-2
    assert set(check["spaces"]) == {"pretrained", "simsiam", "pixels"}
    assert report["self_checks"]["features"] == check
    assert {"accuracy_pretrained", "accuracy_simsiam", "accuracy_pixels"} <= set(report["prior"])
    out = capsys.readouterr().out
    assert "tuned by SimSiam from its weights for 2 steps" in out
    assert "pretrained weight" in out and "simsiam weight" in out and "pixels weight" in out


def test_torchvision_weights_give_the_input_size_and_normalisation():
    config = parse_command(["--encoder", ARCH])  # default: the architecture's DEFAULT weights
    spec = config.resolved_encoder
    assert spec.weights_name == "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    assert spec.image_size == (224, 224) and spec.tune is False
    assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD
    assert folder_max_side(config) == 224  # photos are loaded at the encoder's size
    assert parse_command(["--encoder", ARCH, "--encoder-weights",
                          "MobileNet_V3_Small_Weights.IMAGENET1K_V1"]).resolved_encoder == spec
    assert parse_command(["--encoder", ARCH, "--image-size", "64"]).resolved_encoder.image_size == (64, 64)
    assert "encoder" not in str(parse_command([]).flags().get("resolved_encoder", ""))


def test_a_missing_hub_file_says_where_it_is_expected(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    assert main(TINY + ["--output", str(tmp_path / "out"), "--encoder", ARCH]) == 2
    err = capsys.readouterr().err
    expected = tmp_path / "empty" / "hub" / "checkpoints" / HUB_FILE
    assert "--encoder-weights DEFAULT" in err and str(expected) in err
    assert "MobileNet_V3_Small_Weights.IMAGENET1K_V1.get_state_dict()" in err
    assert not expected.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, message", [
    (["--encoder", "nope"], "--encoder: architecture: 'nope' is not a torchvision classification"),
    (["--encoder", "fasterrcnn_resnet50_fpn"], "not a torchvision classification"),
    (["--encoder", ARCH, "--encoder-weights", "ResNet18_Weights.IMAGENET1K_V1"],
     "--encoder-weights: weights 'ResNet18_Weights.IMAGENET1K_V1' are not weights of"),
    (["--encoder", ARCH, "--encoder-weights", "IMAGENET1K_V7"], "IMAGENET1K_V1, DEFAULT"),
    (["--encoder", ARCH, "--encoder-weights", "no/such.pt"], "--encoder-weights no/such.pt: no such file"),
    (["--encoder-tune"], "--encoder-tune needs --encoder"),
    (["--encoder-weights", "IMAGENET1K_V1"], "--encoder-weights needs --encoder"),
    (["--encoder", ARCH, "--embed-steps", "5"], "a frozen --encoder trains no SimSiam"),
    (["--encoder", ARCH, "--backbone", "small_cnn"], "--backbone small_cnn is SimSiam's encoder"),
])
def test_bad_encoder_flags_are_named(flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_command(flags)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_weights_that_do_not_fit_the_architecture_are_named(tmp_path, capsys):
    weights = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, weights)
    assert main(TINY + ["--output", str(tmp_path / "out"), "--quiet", "--encoder", ARCH,
                        "--encoder-weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert f"--encoder-weights {weights}" in err and "do not match the architecture" in err


def test_a_frozen_encoder_gives_its_simsiam_time_to_flexmatch():
    common = dict(n_images=2000, image_shape=(224, 224, 3), size=(224, 224),
                  encoder={"architecture": "resnet18", "weights": "IMAGENET1K_V1"}, device="cpu",
                  time_budget=600.0, compare=False, n_test=0, seconds_per_image=0.0002,
                  simsiam_batch=64, default_tune_steps=1000, default_flexmatch_steps=1000)
    frozen = make_encoder_plan(tune=False, **common)
    tuned = make_encoder_plan(tune=True, **common)
    assert frozen.simsiam_steps == 0 and frozen.seconds["SimSiam"] == 0
    assert tuned.simsiam_steps > 0 and frozen.flexmatch_steps > tuned.flexmatch_steps
    assert "encoder frozen (no SimSiam training)" in frozen.describe()
    # on a slow encoder the budget leaves no useful FlexMatch step: the prior-fitted model
    slow = make_encoder_plan(tune=False, **dict(common, seconds_per_image=0.05))
    assert slow.flexmatch_steps == 0 and slow.simsiam_steps == 0

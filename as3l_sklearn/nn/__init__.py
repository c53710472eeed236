"""Neural-network building blocks: image backbones, SimSiam heads and loss.

Examples
--------
>>> import torch
>>> from as3l_sklearn.nn import make_backbone, SimSiamProjector, SimSiamPredictor
>>> encoder = make_backbone("small_cnn", in_channels=1, image_size=8)
>>> projector = SimSiamProjector(encoder.out_dim, hidden_dim=32, out_dim=16)
>>> predictor = SimSiamPredictor(16, hidden_dim=8)
>>> z = projector(encoder(torch.rand(4, 1, 8, 8)))
>>> predictor(z).shape
torch.Size([4, 16])
"""

from ._backbones import (
    BACKBONES,
    ResNet18CIFAR,
    SmallCNN,
    WideResNet,
    auto_backbone_name,
    make_backbone,
    wrn_bn_momentum,
)
from ._heads import SimSiamPredictor, SimSiamProjector, negative_cosine_similarity, simsiam_loss
from ._pretrained import IMAGENET_MEAN, IMAGENET_STD, ImageInput, pretrained_backbone

__all__ = [
    "BACKBONES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageInput",
    "ResNet18CIFAR",
    "SimSiamPredictor",
    "SimSiamProjector",
    "SmallCNN",
    "WideResNet",
    "auto_backbone_name",
    "make_backbone",
    "negative_cosine_similarity",
    "pretrained_backbone",
    "simsiam_loss",
    "wrn_bn_momentum",
]

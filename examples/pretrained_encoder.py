"""Use your own pretrained encoder: a torchvision ResNet-18 loaded from a local weights file.

Nothing is downloaded. ``pretrained_backbone("resnet18", path)`` builds torchvision's
ResNet-18 with ``weights=None``, loads the ``state_dict`` saved at ``path`` and removes the
classification layer. ``SimSiamEmbedder`` then uses it

* frozen (``max_epochs=0``): features of the network as it is, after the resize and the
  ImageNet normalisation it was trained with (``image_size``, ``normalize``);
* or continued with SimSiam from those weights (``max_steps > 0``).

Grayscale images are repeated to RGB for it. This script writes a randomly initialised
ResNet-18 ``state_dict`` as a stand-in: put the path of your own file (e.g. saved with
``torch.save(torchvision.models.resnet18(weights="DEFAULT").state_dict(), "resnet18.pt")`` on
a machine with internet access) in ``--weights``.

Run ``python examples/pretrained_encoder.py [--weights resnet18.pt]`` (about a minute on a
laptop CPU); ``--quick`` is the tiny setting the test suite uses.
"""

import argparse
import tempfile
from pathlib import Path

import torch
import torchvision

from as3l_sklearn import SimSiamEmbedder
from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.embedding._simsiam import knn_loo_accuracy
from as3l_sklearn.nn import pretrained_backbone


def main(quick: bool = False, weights=None) -> dict:
    X, y_hidden = load_digits_images(return_X_y=True)  # 8x8 grayscale; y only to score the features
    if quick:
        X, y_hidden = X[:64], y_hidden[:64]
    with tempfile.TemporaryDirectory() as folder:
        if weights is None:  # stand-in for your weights file
            weights = Path(folder) / "resnet18.pt"
            torch.manual_seed(0)
            torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
        encoder = pretrained_backbone("resnet18", weights, image_size=224)

    image_size = 32 if quick else 64  # 224 px is what ImageNet weights expect, if time allows
    frozen = SimSiamEmbedder(backbone=encoder, image_size=image_size, normalize="imagenet", max_epochs=0,
                             device="cpu", random_state=0)
    F_frozen = frozen.fit_transform(X)
    tuned = SimSiamEmbedder(backbone=encoder, image_size=image_size, normalize="imagenet",
                            max_steps=2 if quick else 100, batch_size=32, device="cpu", random_state=0,
                            verbose=1)
    print(f"fine-tuning the encoder with SimSiam for {tuned.max_steps} steps ...", flush=True)
    F_tuned = tuned.fit_transform(X)
    result = {
        "n_features": int(F_frozen.shape[1]),
        "frozen_knn": knn_loo_accuracy(F_frozen, y_hidden, k=min(20, len(X) - 1)),
        "tuned_knn": knn_loo_accuracy(F_tuned, y_hidden, k=min(20, len(X) - 1)),
        "tuned_steps": tuned.n_steps_,
        "encoder_input": tuned.image_size_,
    }
    print(f"ResNet-18 features ({result['n_features']}-d, images resized to {image_size} px): kNN-20 accuracy "
          f"frozen {result['frozen_knn']:.3f}, after {result['tuned_steps']} SimSiam steps {result['tuned_knn']:.3f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="a ResNet-18 state_dict file (default: a random stand-in)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    main(quick=args.quick, weights=args.weights)

"""``as3l predict MODEL PATH --output DIR``: ``predictions.csv`` for new images, from the
``model.joblib`` of an ``as3l`` run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..datasets import load_image_folder
from ._config import PredictConfig
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from ._outputs import OutputLock, load_model, write_predictions


def predict(config: PredictConfig) -> int:
    """Predict the images of ``config.path``; return the exit status (2: a user error,
    printed without a traceback; 130: Ctrl-C)."""
    target = Path(config.output) / "predictions.csv"
    try:
        bundle = load_model(config.model)
        X, files = _read_images(Path(config.path), bundle)
        classifier = bundle["classifier"]
        if hasattr(classifier, "set_params") and "device" in classifier.get_params():
            classifier.set_params(device=config.resolved_device)
        with OutputLock(Path(config.output)):
            proba = classifier.predict_proba(X)
            write_predictions(target, files, proba, bundle["classes"], bundle["class_names"])
    except (UserError, ValueError, TypeError, OSError) as exc:
        # OSError: a --output under a regular file, a folder that cannot be written
        print(f"as3l predict: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("as3l predict: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not config.quiet:
        print(f"[as3l] predicted {len(files)} images; wrote {target}")
    return EXIT_OK


def _read_images(path: Path, bundle: dict) -> tuple[np.ndarray, list[str]]:
    """The images of a folder (loaded at the model's input size and colour mode) or of a
    ``.npy`` array (which must have the model's input shape), and their names."""
    height, width, channels = bundle["input_shape"]
    if path.is_dir():
        loaded = load_image_folder(path, image_size=(height, width), labels="none",
                                   color_mode=bundle["color_mode"], on_error="warn",
                                   return_X_y=False)
        return loaded.images, [str(f) for f in loaded.files]
    X = np.load(path, allow_pickle=False)
    if X.ndim == 3 and channels == 1:
        X = X[..., None]
    if tuple(X.shape[1:]) != (height, width, channels):
        raise UserError(f"PATH {path} holds images of shape {tuple(X.shape[1:])}; the model "
                        f"takes {(height, width, channels)} (height, width, channels)")
    return X, [str(i) for i in range(len(X))]

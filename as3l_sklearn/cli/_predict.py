"""``as3l predict MODEL PATH [PATH ...] --output DIR``: ``predictions.csv`` for new images,
from the ``model.joblib`` of an ``as3l`` run.

Each PATH is a folder of images (any depth), an image file or a ``.npy`` array of uint8
images. All are prepared by one rule: every image is converted to the model's colour mode
and resized (bilinear) to its input size, exactly as the run's own folder loader does, and
the command says how many images it converted, from what to what.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ..datasets import ImageFolderArray, _read_header, _to_mode, load_image_folder
from ._atomic import atomic_path
from ._config import PredictConfig
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from ._outputs import OutputLock, load_model, write_predictions
from ._warnings import one_line_warnings

#: PIL modes and array channel counts by the name the conversion line gives them
_MODE_NAMES = {"L": "grayscale", "1": "1-bit", "I": "32-bit grayscale",
               "I;16": "16-bit grayscale", "F": "float grayscale", "P": "palette",
               "RGB": "RGB", "RGBA": "RGBA", "LA": "grayscale+alpha", "CMYK": "CMYK"}
_CHANNEL_NAMES = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}


def predict(config: PredictConfig) -> int:
    """Predict the images of ``config.paths``; return the exit status (2: a user error,
    printed without a traceback; 130: Ctrl-C)."""
    target = Path(config.output) / "predictions.csv"
    created = not Path(config.output).exists()
    with one_line_warnings("as3l predict"):
        try:
            bundle = load_model(config.model)
            X, files, converted = read_images([Path(p) for p in config.paths], bundle)
            classifier = bundle["classifier"]
            if hasattr(classifier, "set_params") and "device" in classifier.get_params():
                classifier.set_params(device=config.resolved_device)
            with OutputLock(Path(config.output)):
                proba = classifier.predict_proba(X)
                with atomic_path(target, "--output") as temp:
                    write_predictions(temp, files, proba, bundle["classes"],
                                      bundle["class_names"])
        except (UserError, ValueError, TypeError, OSError) as exc:
            # OSError: a --output under a regular file, a folder that cannot be written
            print(f"as3l predict: error: {exc}", file=sys.stderr)
            if created:  # the folder the lock made, left empty: not left behind
                try:
                    Path(config.output).rmdir()
                except OSError:
                    pass
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("as3l predict: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    if converted:
        print(f"as3l predict: {converted}", file=sys.stderr)
    if not config.quiet:
        print(f"[as3l] predicted {len(files)} images; wrote {target}")
    return EXIT_OK


def read_images(paths: list[Path], bundle: dict) -> tuple[np.ndarray, list[str], str]:
    """The images of ``paths`` at the model's input size and colour mode, their names, and
    the line that says what was converted ("" when nothing was).

    Names: a folder's images by their path inside it, an image file by its path as given,
    a ``.npy`` array's images by their row; with several PATHs, folder images and rows are
    prefixed with the folder or array they come from, so that every name is distinct.
    """
    height, width, channels = bundle["input_shape"]
    color_mode = bundle["color_mode"]
    arrays, names, sources = [], [], []
    image_files = [p for p in paths if p.is_file() and p.suffix.lower() != ".npy"]
    for path in paths:
        prefix = f"{path}/" if len(paths) > 1 else ""
        if path.is_dir():
            X, files, seen = _read_folder(path, (height, width), color_mode)
            names += [prefix + f for f in files]
        elif path.suffix.lower() == ".npy":
            X, seen = _read_array(path, (height, width, channels), color_mode)
            names += [f"{path}[{i}]" if prefix else str(i) for i in range(len(X))]
        elif path == image_files[0]:  # the image files, all at once, where the first was
            X = np.asarray(ImageFolderArray(image_files, (height, width), color_mode))
            seen = [_header(f) for f in image_files]
            names += [str(f) for f in image_files]
        else:
            continue
        arrays.append(X)
        sources += seen
    return np.concatenate(arrays), names, conversion_line(sources, (height, width), color_mode)


def _header(file: Path) -> tuple:
    """``(height, width, mode name)`` of an image file as stored (upright), for the message."""
    width, height, mode = _read_header(file)
    return height, width, _MODE_NAMES.get(mode, mode)


def _read_folder(path: Path, size, color_mode: str):
    """A folder's images, loaded as the run loads a folder, and each one's size and mode."""
    loaded = load_image_folder(path, image_size=size, labels="none", color_mode=color_mode,
                               on_error="warn", return_X_y=False)
    seen = []
    for file in loaded.filenames:
        try:
            seen.append(_header(Path(file)))
        except Exception:  # read a moment ago; only the message would miss it
            seen.append(None)
    return loaded.images, [str(f) for f in loaded.files], seen


def _read_array(path: Path, shape, color_mode: str):
    """A ``.npy`` array's images: as they are when they have the model's shape, else uint8
    images converted one by one like image files."""
    try:
        X = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"PATH {path} could not be read as a .npy array: {exc}") from None
    if X.ndim == 3:  # n x H x W: gray
        X = X[..., None]
    if X.ndim != 4 or X.shape[-1] not in _CHANNEL_NAMES:
        raise UserError(f"PATH {path} holds an array of shape {X.shape}; images are "
                        "n x height x width (x channels, 1 to 4)")
    seen = [(X.shape[1], X.shape[2], _CHANNEL_NAMES[X.shape[-1]])] * len(X)
    if tuple(X.shape[1:]) == tuple(shape):
        return X, seen
    if X.dtype != np.uint8:
        raise UserError(f"PATH {path} holds {X.dtype} images of shape {tuple(X.shape[1:])}; "
                        f"the model takes {tuple(shape)} (height, width, channels), and only "
                        "uint8 images are converted")
    return np.stack([_convert(image, shape, color_mode) for image in X]), seen


def _convert(image: np.ndarray, shape, color_mode: str) -> np.ndarray:
    """One uint8 ``H x W x C`` image in the model's colour mode and size, as the folder
    loader converts a picture (alpha over white, bilinear resize)."""
    from PIL import Image

    height, width, channels = shape
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    picture = _to_mode(picture, "L" if color_mode == "grayscale" else "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), Image.BILINEAR)
    return np.asarray(picture, dtype=np.uint8).reshape(height, width, channels)


def conversion_line(sources, size, color_mode: str) -> str:
    """"converted N images from 32x32 RGB to the model's 8x8 grayscale" (sizes width x
    height), or "" when every image had the model's size and colour mode already."""
    height, width = size
    target = (height, width, "grayscale" if color_mode == "grayscale" else "RGB")
    converted = Counter(s for s in sources if s is not None and s != target)
    if not converted:
        return ""
    count = sum(converted.values())
    kinds = [f"{w}x{h} {mode}" for (h, w, mode), _ in converted.most_common()]
    origin = kinds[0] if len(kinds) == 1 else ", ".join(
        f"{n} from {w}x{h} {mode}" for (h, w, mode), n in converted.most_common(3)) + (
        ", ..." if len(kinds) > 3 else "")
    return (f"converted {count} image{'s' if count != 1 else ''} "
            f"{'from ' + origin if len(kinds) == 1 else '(' + origin + ')'} to the model's "
            f"{width}x{height} {target[2]}")

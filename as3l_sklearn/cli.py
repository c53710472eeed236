"""The ``as3l`` command: the whole AS3L chain, with per-image outputs and a report.

embed (SimSiam) -> fine-tune (Eq. 1) -> select ``--budget`` -> annotate -> propagate priors
-> train prior-guided FlexMatch -> ``predictions.csv``, ``model.joblib``, ``report.json`` and
``report.html``, optionally against a random-selection + plain FlexMatch baseline with the same
budget (``--compare``). ``as3l predict MODEL PATH --output DIR`` applies a saved model to new
images.

Annotation comes from the data set's own labels in demo mode (the default), or from a person:
run once with ``--export-annotations DIR`` (writes ``DIR/selection.csv`` keyed by file name,
previews and a Label Studio task file), fill the ``label`` column (or label in Label Studio /
CVAT and export), then run again with ``--annotations FILE``. Stage results are cached
(``--cache-dir``), so the second run does not retrain SimSiam.

Examples
--------
Demo on the embedded digits data, a few minutes on a laptop CPU::

    as3l --output runs/demo --compare --plot

A folder of your own images::

    as3l --dataset folder photos/ --budget 20 --export-annotations to_label/ --output runs/photos
    as3l --dataset folder photos/ --budget 20 --annotations to_label/selection.csv --output runs/photos
    as3l predict runs/photos/model.joblib new_photos/ --output runs/new
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ._cli_outputs import UserError

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "stl10", "folder")
SELECTORS = ("multicluster", "random", "kmedoids", "coreset", "typiclust", "probcover")
PRIORS = ("combined", "seeded-kmeans", "llgc")
BACKBONES = ("auto", "small_cnn", "small_cnn_2x2", "resnet18_cifar", "wrn28_2", "resnet18")
#: exit status of a run stopped by Ctrl-C (128 + SIGINT, the shell's convention)
EXIT_INTERRUPTED = 130
#: exit status of a user error (argparse's)
EXIT_USAGE = 2
#: set by the SIGINT handler; stages check it after returning, because the torch estimators
#: catch KeyboardInterrupt themselves (they stop training and keep their weights)
_interrupt_requested = threading.Event()


# --------------------------------------------------------------------------------------------
# argument types: each names its flag in the error and runs before any work


def _int_at_least(minimum: int, wording: str, *, below: int | None = None):
    """An argparse type: an integer >= ``minimum`` (and < ``below`` when given), with
    ``wording`` in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (below is not None and value >= below):
            raise argparse.ArgumentTypeError(f"must be {wording}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")
# numpy's RandomState, which the selectors and the data split use, takes 0 <= seed < 2**32
_seed = _int_at_least(0, "an integer from 0 to 2**32 - 1 (4294967295)", below=2 ** 32)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1), got {text!r}")
    return value


def _device(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")
    return text


def _class_list(text: str) -> list:
    if Path(text).is_file():  # a class_names.txt: one name per line
        try:
            lines = Path(text).read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise argparse.ArgumentTypeError(f"cannot read the class list {text}: {exc}") from None
        text = ",".join(line.strip() for line in lines if line.strip())
    names = [name.strip() for name in text.split(",")]
    if len(names) < 2 or any(not name for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"must be two or more distinct, non-empty names separated by commas, got {text!r}")
    if "-1" in names:
        raise argparse.ArgumentTypeError("must not contain -1, which marks unlabeled images")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``as3l`` command (the run; ``as3l predict`` has its own)."""
    parser = argparse.ArgumentParser(
        prog="as3l",
        usage="as3l [options] [PATH]    (as3l -h for the options)\n"
              "       as3l predict MODEL PATH --output DIR",
        description="Active Self-Semi-Supervised Learning: select images to label, propagate "
        "prior pseudo-labels, train a prior-guided FlexMatch classifier, and report. "
        "'as3l predict MODEL PATH --output DIR' applies a saved model to new images.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="digits",
                      help="data set (default: the embedded scikit-learn digits)")
    data.add_argument("path", nargs="?", default=None,
                      help="image folder for --dataset folder (every image under it is unlabeled "
                           "unless --labeled-subfolders)")
    data.add_argument("--labeled-subfolders", action="store_true",
                      help="--dataset folder: first-level sub-folders are classes (their images are "
                           "labeled; part of them is held out as a test set)")
    data.add_argument("--root", default=None, help="local root of a torchvision-style data set")
    data.add_argument("--n-train", type=_positive_int, default=None,
                      help="use a random subset of this many training images (default: all; 10000 "
                           "for fashion-mnist/cifar/stl10 on CPU)")
    data.add_argument("--test-size", type=_fraction, default=0.3,
                      help="held-out fraction when the data set has no test split (default 0.3)")

    method = parser.add_argument_group("method")
    method.add_argument("--budget", type=_positive_int, default=10,
                        help="number of images to annotate (default 10)")
    method.add_argument("--selector", choices=SELECTORS, default="multicluster")
    method.add_argument("--backbone", choices=BACKBONES, default="auto",
                        help="encoder; auto: small_cnn_2x2 on CPU, by image size on CUDA")
    method.add_argument("--image-size", type=_positive_int, default=None,
                        help="side the encoder sees, in pixels (default: the images' own, longer "
                             "side at most 32 px on CPU, 224 on CUDA)")
    method.add_argument("--embed-epochs", type=_non_negative_int, default=None,
                        help="SimSiam epochs (default: a number of steps from the time budget)")
    method.add_argument("--embed-steps", type=_positive_int, default=None,
                        help="SimSiam optimizer steps (default: from the time budget)")
    method.add_argument("--max-iter", type=_positive_int, default=None,
                        help="FlexMatch steps (default: from the time budget)")
    method.add_argument("--time-budget", type=_positive_seconds, default=None, metavar="SECONDS",
                        help="choose the SimSiam and FlexMatch steps up front to finish in about "
                             "this time (default: the preset's)")
    method.add_argument("--preset", choices=("fast", "default", "quality"), default="default",
                        help="time budget: fast (3 min on CPU), default (8 min on CPU, the full "
                             "defaults on CUDA), quality (the estimators' full defaults)")
    method.add_argument("--prior", choices=PRIORS, default="combined",
                        help="prior pseudo-labels: combined (cluster votes + graph, the measured "
                             "best), seeded-kmeans (the paper's) or llgc (graph only)")
    method.add_argument("--prior-mode", choices=("remove", "update"), default="remove")
    method.add_argument("--compare", action="store_true",
                        help="also run random selection + plain FlexMatch with the same budget")

    io = parser.add_argument_group("annotation and output")
    io.add_argument("--annotations", default=None, metavar="FILE",
                    help="labels by file name: the filled-in selection.csv, a Label Studio "
                         "CSV/JSON-MIN export, or a filename,label CSV")
    io.add_argument("--export-annotations", default=None, metavar="DIR",
                    help="write the selected images, DIR/selection.csv and a Label Studio task "
                         "file to label, then stop")
    io.add_argument("--classes", type=_class_list, default=None, metavar="A,B,C",
                    help="the class names labellers may use, or a text file with one per line "
                         "(default: class_names.txt beside --annotations, or the data set's own)")
    io.add_argument("--output", default="runs/as3l", help="folder for the results (default runs/as3l)")
    io.add_argument("--overwrite", action="store_true",
                    help="replace the results of an earlier run in --output or --export-annotations")
    io.add_argument("--cache-dir", default=None,
                    help="stage cache (default $XDG_CACHE_HOME/as3l or ~/.cache/as3l)")
    io.add_argument("--no-cache", action="store_true", help="neither read nor write the stage cache")
    io.add_argument("--plot", action="store_true",
                    help="also write the figures as PNG files (report.html always has them)")
    io.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N")
    io.add_argument("--seed", type=_seed, default=0,
                    help="random seed, 0 to 2**32 - 1 (default 0)")
    verbosity = io.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="print only the final report")
    verbosity.add_argument("--verbose", action="store_true", help="also print per-epoch training logs")
    return parser


def build_predict_parser() -> argparse.ArgumentParser:
    """The argument parser of ``as3l predict``."""
    parser = argparse.ArgumentParser(
        prog="as3l predict",
        description="Predict labels of new images with a model.joblib written by an as3l run.")
    parser.add_argument("model", metavar="MODEL", help="model.joblib from an as3l run's --output")
    parser.add_argument("path", metavar="PATH", help="a folder of images, or a .npy array of images")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for predictions.csv")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing predictions.csv")
    parser.add_argument("--device", type=_device, default="cpu", help="cpu (default), auto, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true")
    return parser


def validate_args(parser: argparse.ArgumentParser, args) -> None:
    """Check everything that can be checked before any work; ``parser.error`` (exit 2) names the flag."""
    from .utils import resolve_device

    try:
        args.resolved_device = resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device {args.device}: {exc}")
    if args.dataset == "folder":
        if args.path is None:
            parser.error("--dataset folder needs the folder path: as3l --dataset folder PATH")
        if not Path(args.path).is_dir():
            parser.error(f"PATH {args.path} is not a folder")
    elif args.path is not None:
        parser.error(f"PATH ({args.path}) is only for --dataset folder")
    if args.labeled_subfolders and args.dataset != "folder":
        parser.error("--labeled-subfolders is only for --dataset folder")
    if args.root is not None and not Path(args.root).is_dir():
        parser.error(f"--root {args.root} is not a folder")
    if args.dataset in ("cifar10", "cifar100", "stl10") and args.root is None:
        parser.error(f"--dataset {args.dataset} needs --root (a local torchvision data root)")
    if args.annotations and args.export_annotations:
        parser.error("--annotations and --export-annotations are the two halves of the round "
                     "trip: give one per run")
    if args.annotations:
        path = Path(args.annotations)
        if path.is_dir():
            candidates = [path / "selection.csv", path / "manifest.csv"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                parser.error(f"--annotations {path} is a folder without selection.csv")
            args.annotations = str(found)
        elif not path.is_file():
            parser.error(f"--annotations {path} does not exist")
    demo_impossible = args.dataset == "folder" and not args.labeled_subfolders
    if demo_impossible and not (args.annotations or args.export_annotations):
        parser.error("--dataset folder has no labels unless --labeled-subfolders: run with "
                     "--export-annotations DIR first, then --annotations DIR/selection.csv")
    if args.compare and demo_impossible:
        parser.error("--compare needs the data set's labels (a folder with --labeled-subfolders)")
    if args.embed_epochs is not None and args.embed_steps is not None:
        parser.error("--embed-epochs and --embed-steps both set the SimSiam length: give one")
    if args.time_budget is not None and args.preset != "default":
        parser.error("--time-budget and --preset both set the time budget: give one")
    cache_dir = _cache_location(args)
    for flag, folder in (("--output", args.output),
                         ("--export-annotations", args.export_annotations),
                         ("--cache-dir", cache_dir)):
        _check_folder_flag(parser, flag, folder)
    if (args.export_annotations is not None
            and Path(args.export_annotations).resolve() == Path(args.output).resolve()):
        parser.error(f"--export-annotations {args.export_annotations} is the same folder as "
                     f"--output {args.output}: the images to label and the run's results need "
                     "separate folders (e.g. --export-annotations to_label)")
    if args.dataset == "folder":
        # anything written inside the input folder would join the pool on the next run
        folder = Path(args.path).resolve()
        for flag, target in (("--output", args.output), ("--export-annotations", args.export_annotations)):
            if target is not None and Path(target).resolve().is_relative_to(folder):
                parser.error(f"{flag} {target} is inside PATH {args.path}: its images would be read "
                             "as part of the data on the next run; choose a folder outside it")
    if args.export_annotations and not args.overwrite:
        existing = Path(args.export_annotations) / "selection.csv"
        if existing.exists():
            parser.error(f"--export-annotations {args.export_annotations} already holds {existing.name} "
                         "(perhaps with labels filled in); choose another folder or pass --overwrite")


def _existing_non_folder(path: Path) -> Path | None:
    """``path`` or the first of its parents that exists, when that is not a folder; else None."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def _check_folder_flag(parser, flag: str, folder) -> None:
    """``parser.error`` when the folder ``flag`` names is, or would sit under, a regular file."""
    blocker = None if folder is None else _existing_non_folder(Path(folder))
    if blocker is not None and blocker == Path(folder):
        parser.error(f"{flag} {folder} exists and is not a folder")
    elif blocker is not None:
        # creating the folder would fail with NotADirectoryError, after the work
        parser.error(f"{flag} {folder} cannot be created: {blocker} is a file, not a folder")


# --------------------------------------------------------------------------------------------
# progress


class _Stages:
    """One line at the start and end of each stage, and the wall time of each."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.seconds: dict[str, float] = {}
        self.cached: list[str] = []
        self.current: str | None = None

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[as3l] {message}", flush=True)

    def run(self, name: str, function, *args, cached: bool = False, **kwargs):
        self.current = name
        self.say(f"{name} ..." + (" (from the cache)" if cached else ""))
        start = time.perf_counter()
        result = function(*args, **kwargs)
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        if cached:
            self.cached.append(name)
        if _interrupt_requested.is_set():
            # the stage caught Ctrl-C itself (a torch estimator stops early and keeps its
            # weights); the run must stop here, not carry on as if the stage had finished
            raise KeyboardInterrupt
        self.say(f"{name} done in {elapsed:.1f} s")
        return result


def _on_sigint(signum, frame):
    _interrupt_requested.set()
    raise KeyboardInterrupt


# --------------------------------------------------------------------------------------------
# data


def load_data(args) -> dict:
    """Load the chosen data set as the training pool and a test set (labels -1 where unknown).

    ``files`` names every pool image: its path relative to the folder, or its row in the data
    set for array data; it is the identity the annotation round trip matches on.
    """
    from sklearn.model_selection import train_test_split

    from . import datasets
    from .embedding._simsiam import AUTO_MAX_SIDE
    from .metrics import labeled_mask

    rng = np.random.RandomState(args.seed)
    device_kind = "cuda" if args.resolved_device.startswith("cuda") else "cpu"
    target_names = None
    color_mode = None
    if args.dataset == "digits":
        bunch = datasets.load_digits_images(return_X_y=False)
        rows = np.arange(len(bunch.target))
        train, test = train_test_split(rows, test_size=args.test_size, stratify=bunch.target,
                                       random_state=args.seed)
        X_train, y_train, X_test, y_test = (bunch.images[train], bunch.target[train],
                                            bunch.images[test], bunch.target[test])
        files = np.array([str(i) for i in train], dtype=object)
        target_names = [str(n) for n in bunch.target_names]
    elif args.dataset in ("fashion-mnist", "cifar10", "cifar100", "stl10"):
        if args.dataset == "fashion-mnist":
            train_bunch, test_bunch = _load_fashion_mnist(args.root)
        elif args.dataset == "stl10":
            train_bunch = datasets.load_stl10(args.root, split="train+unlabeled", return_X_y=False)
            test_bunch = datasets.load_stl10(args.root, split="test", return_X_y=False)
        else:
            loader = datasets.load_cifar10 if args.dataset == "cifar10" else datasets.load_cifar100
            train_bunch = loader(args.root, split="train", return_X_y=False)
            test_bunch = loader(args.root, split="test", return_X_y=False)
        X_train, y_train = train_bunch.images, train_bunch.target
        X_test, y_test = test_bunch.images, test_bunch.target
        files = np.array([str(i) for i in range(len(X_train))], dtype=object)
        target_names = [str(n) for n in train_bunch.target_names]
    else:  # folder
        bunch = datasets.load_image_folder(
            args.path, image_size=args.image_size,
            labels="subfolders" if args.labeled_subfolders else "none",
            max_size=AUTO_MAX_SIDE[device_kind], on_error="warn", return_X_y=False)
        X, y = bunch.images, bunch.target
        all_files = np.asarray(bunch.files, dtype=object)
        color_mode = "grayscale" if X.shape[-1] == 1 else "rgb"
        test = np.zeros(len(y), dtype=bool)
        if args.labeled_subfolders:
            target_names = [str(n) for n in bunch.target_names]
            labeled = np.flatnonzero(labeled_mask(y))
            if labeled.size >= 10 and len(np.unique(y[labeled])) > 1:
                # hold out part of the labeled images to measure the classifier
                held_out = rng.choice(labeled, size=int(round(args.test_size * labeled.size)), replace=False)
                test[held_out] = True
        X_train, y_train, X_test, y_test = X[~test], y[~test], X[test], y[test]
        files = all_files[~test]

    n_train = args.n_train
    if n_train is None and args.dataset in ("fashion-mnist", "cifar10", "cifar100", "stl10"):
        n_train = None if device_kind != "cpu" else 10000
    if n_train is not None and n_train < len(X_train):
        keep = np.sort(rng.choice(len(X_train), size=n_train, replace=False))
        X_train, y_train, files = X_train[keep], y_train[keep], files[keep]
    y_test = np.asarray(y_test)
    return {"X_train": X_train, "y_train": np.asarray(y_train), "X_test": X_test, "y_test": y_test,
            "files": [str(f) for f in files], "target_names": target_names,
            "color_mode": color_mode or ("grayscale" if X_train.shape[-1] == 1 else "rgb"),
            "test_labeled": bool(len(y_test)) and bool(labeled_mask(y_test).all())}


def _load_fashion_mnist(root) -> tuple:
    """Fashion-MNIST's train and test splits; missing files are a :class:`UserError` naming
    what the command offers (the loader's own message suggests ``download=True``, which the
    command has no flag for: it never downloads)."""
    from . import datasets

    try:
        return tuple(datasets.load_fashion_mnist(root=root, split=split, return_X_y=False)
                     for split in ("train", "test"))
    except datasets.DatasetNotFoundError:
        searched = ", ".join(str(d) for d in datasets._fashion_mnist_dirs(root))
        raise UserError(
            f"--dataset fashion-mnist: the Fashion-MNIST files were not found (looked in "
            f"{searched}). Install them with Debian's package (sudo apt-get install "
            "dataset-fashion-mnist; then no flag is needed), or pass --root DIR, a folder "
            "holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in DIR/FashionMNIST/raw/, "
            "DIR/raw/ or DIR itself (torchvision.datasets.FashionMNIST(DIR, download=True) "
            "makes one)") from None


def _make_selector(name: str, seed: int):
    from . import selection

    classes = {
        "multicluster": selection.MultiClusterSelector,
        "random": selection.RandomSelector,
        "kmedoids": selection.KMedoidsSelector,
        "coreset": selection.CoresetSelector,
        "typiclust": selection.TypiClustSelector,
        "probcover": selection.ProbCoverSelector,
    }
    return classes[name](random_state=seed)


def _make_propagator(name: str, n_samples: int, seed: int):
    from .propagation import CombinedPropagator, LLGCPropagator, SeededKMeansPropagator

    if name == "llgc":
        return LLGCPropagator()
    seeded = SeededKMeansPropagator(n_clusters=_propagation_ks(n_samples), random_state=seed)
    if name == "seeded-kmeans":
        return seeded
    return CombinedPropagator(cluster_propagator=seeded, graph_propagator=LLGCPropagator())


def _propagation_ks(n_samples: int) -> list[int]:
    """The paper's K list (10..60), kept below the number of samples for tiny data."""
    return [k for k in (10, 20, 30, 40, 50, 60) if k <= n_samples] or [max(1, n_samples // 2)]


# --------------------------------------------------------------------------------------------
# cached stages: module-level functions so that joblib.Memory can key them on their arguments
# (the data and every parameter; verbose is left out of the key) inside a folder per version
# of the code (_Cache)


def embed_stage(X, params: dict, verbose: int):
    """Fit SimSiam on ``X``; return the fitted embedder and its features of ``X``."""
    from .embedding import SimSiamEmbedder

    embedder = SimSiamEmbedder(**params, verbose=verbose)
    features = embedder.fit_transform(X)
    if _interrupt_requested.is_set():
        raise KeyboardInterrupt  # never cache a fit that Ctrl-C cut short
    return embedder, features


def finetune_stage(f_self, n_clusters: int, seed: int, device: str, verbose: int):
    """Fine-tune the features with K = ``n_clusters`` (Eq. 1); return the new features."""
    from .embedding import ClusterFineTuner

    tuner = ClusterFineTuner(n_clusters=n_clusters, random_state=seed, device=device, verbose=verbose)
    features = tuner.fit_transform(f_self)
    if _interrupt_requested.is_set():
        raise KeyboardInterrupt
    return features


def select_stage(f_fine, selector: str, budget: int, seed: int):
    """The ``budget`` images ``selector`` chooses on ``f_fine``, best first."""
    return np.asarray(_make_selector(selector, seed).fit(f_fine).select(budget))


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "as3l"


def _cache_location(args):
    """The stage cache folder the flags ask for, ``None`` with ``--no-cache``."""
    return None if args.no_cache else (args.cache_dir or _default_cache_dir())


def _code_version_folder() -> str:
    """The cache sub-folder of this package and torch version: joblib keys a stage on its own
    source only, so an upgraded package or torch would otherwise be served old results."""
    import torch

    from . import _version

    return f"as3l-{_version.__version__}-torch-{torch.__version__}"


class _Cache:
    """joblib.Memory around the stage functions (in a folder per code version, see
    :func:`_code_version_folder`), or plain calls with ``--no-cache``."""

    def __init__(self, location):
        self.memory = None
        if location is not None:
            from joblib import Memory

            self.memory = Memory(location=str(Path(location) / _code_version_folder()),
                                 verbose=0)

    def wrap(self, function):
        if self.memory is None:
            return function, lambda *a, **k: False
        import inspect

        ignore = ["verbose"] if "verbose" in inspect.signature(function).parameters else []
        cached = self.memory.cache(function, ignore=ignore)

        def hit(*args, **kwargs):
            try:
                return bool(cached.check_call_in_cache(*args, **kwargs))
            except Exception:  # a cache folder that cannot be read is a miss
                return False

        return cached, hit


# --------------------------------------------------------------------------------------------
# the run


def _plan_run(args, data) -> "object":
    from ._cli_plan import PRESETS, encoder_size, make_plan
    from .classification._flexmatch import AUTO_MAX_ITER_CPU, AUTO_MAX_ITER_GPU
    from .embedding._simsiam import AUTO_BATCH_SIZE, AUTO_MAX_SIDE, AUTO_STEPS
    from .nn import auto_backbone_name

    device = args.resolved_device
    kind = "cuda" if device.startswith("cuda") else "cpu"
    X = data["X_train"]
    size = encoder_size(X.shape[1:3], args.image_size, AUTO_MAX_SIDE[kind])
    backbone = args.backbone if args.backbone != "auto" else auto_backbone_name(X.shape[-1], size, device)
    simsiam_steps = args.embed_steps
    if args.embed_epochs is not None:
        batch = min(AUTO_BATCH_SIZE[kind], len(X))
        simsiam_steps = args.embed_epochs * max(1, len(X) // batch)
    budget = args.time_budget if args.time_budget is not None else PRESETS[args.preset][kind]
    return make_plan(
        n_images=len(X), image_shape=X.shape[1:], size=size, backbone=backbone, device=device,
        time_budget=budget, compare=args.compare,
        # an export run stops after selection; its steps stay the full run's (the cache key)
        trains_classifier=not args.export_annotations,
        n_test=len(data["X_test"]) if data["test_labeled"] else 0,
        simsiam_steps=simsiam_steps, flexmatch_steps=args.max_iter,
        default_simsiam_steps=AUTO_STEPS[kind],
        default_flexmatch_steps=AUTO_MAX_ITER_GPU if kind == "cuda" else AUTO_MAX_ITER_CPU)


def _to_class_indices(y_partial, target_names, source: str) -> np.ndarray:
    """Labels read from a file, as indices into the data set's class names (-1 unlabeled)."""
    from .metrics import labeled_mask

    lookup = {name: i for i, name in enumerate(target_names)}
    result = np.full(len(y_partial), -1, dtype=np.int64)
    for i in np.flatnonzero(labeled_mask(y_partial)):
        label = str(y_partial[i])
        if label not in lookup:
            raise UserError(f"--annotations {source}: label {label!r} is not a class of this data "
                            f"set ({', '.join(target_names)})")
        result[i] = lookup[label]
    return result


def _read_labels(args, data) -> tuple[np.ndarray, list]:
    """Read ``--annotations`` by file name (before any training: a typo is an error up front)."""
    from .metrics import labeled_mask
    from .selection import read_annotations

    files = data["files"]
    y_partial = read_annotations(args.annotations, n_samples=len(files), files=files,
                                 class_names=args.classes)
    labeled = labeled_mask(y_partial)
    if not labeled.any():
        raise UserError(f"--annotations {args.annotations}: no label matches an image of the pool")
    if data["target_names"] is not None and args.classes is None:
        return _to_class_indices(y_partial, data["target_names"], args.annotations), list(data["target_names"])
    y_partial = np.asarray(y_partial, dtype=object)
    present = sorted({str(v) for v in y_partial[labeled]})
    return y_partial, (list(args.classes) if args.classes else present)


def _verify_labels(args, files, indices, y_partial, stages) -> dict:
    """Which selected images were labeled, and which labeled images were not selected."""
    from .metrics import labeled_mask

    labeled = set(np.flatnonzero(labeled_mask(y_partial)).tolist())
    selected = set(indices)
    verification = {
        "path": str(args.annotations),
        "selected_labeled": [files[i] for i in indices if i in labeled],
        "selected_unlabeled": [files[i] for i in indices if i not in labeled],
        "labeled_not_selected": [files[i] for i in sorted(labeled - selected)],
    }
    stages.say(f"annotations: {len(verification['selected_labeled'])} of {len(indices)} selected "
               f"images labeled in {args.annotations}")
    if verification["selected_unlabeled"]:
        stages.say("  selected but not labeled: " + ", ".join(verification["selected_unlabeled"]))
    if verification["labeled_not_selected"]:
        stages.say("  labeled but not among the selected (used as well): "
                   + ", ".join(verification["labeled_not_selected"]))
    return verification


def run_pipeline(args, stages: _Stages | None = None, state: dict | None = None) -> dict:
    """Run the AS3L chain described by parsed (and validated) ``args``; return the report.

    ``state`` collects what is done, stage by stage, so that an interrupted run can still
    write it (see :func:`main`).
    """
    from . import _cli_outputs as outputs
    from .classification import PriorGuidedFlexMatchClassifier
    from .metrics import class_coverage, expected_calibration_error, labeled_mask, prior_accuracy
    from .selection import export_for_annotation, write_label_studio_tasks

    stages = stages or _Stages(args.quiet)
    state = {} if state is None else state
    device = args.resolved_device
    output = Path(args.output)
    verbose = 0 if args.quiet else (2 if args.verbose else 1)
    report: dict = state.setdefault("report", {})
    report.update({
        "config": {k: v for k, v in vars(args).items() if k != "resolved_device"},
        "device": device,
        "interrupted": False,
    })
    from .utils._distributed import get_distributed

    context = get_distributed(device)
    if context is not None:
        report["distributed"] = context.as_report()

    data = stages.run("load data", load_data, args)
    X, y_true, files = data["X_train"], data["y_train"], data["files"]
    state["images"] = X  # for the thumbnails of report.html
    if args.budget > len(X):
        raise UserError(f"--budget {args.budget} is larger than the {len(X)} images of the pool")
    report["data"] = {"dataset": args.dataset, "n_train": int(len(X)), "n_test": int(len(data["X_test"])),
                      "image_shape": list(np.asarray(X).shape[1:])}
    if args.annotations:
        y_annotated, annotated_class_names = stages.run("read annotations", _read_labels, args, data)
    plan = _plan_run(args, data)
    report["plan"] = plan.as_dict()
    if not args.quiet:
        print(plan.describe(), flush=True)

    cache = _Cache(_cache_location(args))
    embed, embed_hit = cache.wrap(embed_stage)
    finetune, finetune_hit = cache.wrap(finetune_stage)
    select, select_hit = cache.wrap(select_stage)
    embed_params = {"backbone": plan.backbone, "image_size": list(plan.encoder_size),
                    "max_epochs": args.embed_epochs if args.embed_epochs is not None else "auto",
                    "max_steps": plan.simsiam_steps if args.embed_epochs is None else "auto",
                    "device": device, "random_state": args.seed}
    embedder, f_self = stages.run("embed (SimSiam)", embed, X, embed_params, verbose,
                                  cached=embed_hit(X, embed_params, verbose))
    # what SimSiam ran with (thread count, torch version): results depend on them
    report["config"]["torch_settings"] = {"embedder": dict(embedder.torch_settings_)}
    budget = args.budget
    tune_verbose = 2 if verbose >= 2 else 0  # a seconds-long stage needs no progress bar
    tune_args = (f_self, budget, args.seed, device, tune_verbose)
    f_fine = stages.run("fine-tune features (Eq. 1)", finetune, *tune_args,
                        cached=finetune_hit(*tune_args))
    select_args = (f_fine, args.selector, budget, args.seed)
    indices = stages.run(f"select {budget} images ({args.selector})", select, *select_args,
                         cached=select_hit(*select_args))
    indices = [int(i) for i in indices]
    state["selection"] = (files, indices)
    report["selection"] = {"selector": args.selector, "indices": indices,
                           "files": [files[i] for i in indices]}
    output.mkdir(parents=True, exist_ok=True)
    outputs.write_selection(output / "selection.csv", files, indices)
    report["cached_stages"] = stages.cached

    known = labeled_mask(y_true)
    class_names_known = args.classes or data["target_names"]
    if args.export_annotations:
        export = Path(args.export_annotations)
        written = export_for_annotation(X, indices, export, class_names=class_names_known, files=files,
                                        overwrite=args.overwrite)
        if args.dataset == "folder":
            # the labelling tool opens the original files (served from the input folder)
            write_label_studio_tasks(export / "label_studio_tasks.json", [files[i] for i in indices])
        stages.say(f"wrote {len(indices)} images to label and {written}; fill its 'label' column "
                   f"(or label them in Label Studio / CVAT), then run again with --annotations {written}")
        if class_names_known is None and (context is None or context.is_main):
            # no class_names.txt was written: on import nothing tells a typo from a class
            print(f"as3l: warning: no class list (--classes): {export} has no class_names.txt, so "
                  "on import every distinct label becomes a class, typos included ('sneaker' "
                  "beside 'Sneaker', '?'); pass --classes A,B,C with --annotations, or write the "
                  f"names one per line to {export / 'class_names.txt'}", file=sys.stderr)
        report["selection"]["export"] = str(written)
        report["exported_only"] = True
        return report

    if args.annotations:
        y_partial, class_names = y_annotated, annotated_class_names
        report["annotations"] = _verify_labels(args, files, indices, y_partial, stages)
    else:
        if not known[indices].all():
            raise UserError("demo mode needs the data set's labels for the selected images; "
                            "use --export-annotations DIR, then --annotations DIR/selection.csv")
        y_partial = np.full(len(X), -1, dtype=np.int64)
        y_partial[indices] = y_true[indices]
        class_names = list(data["target_names"])
    annotated = labeled_mask(y_partial)
    if data["test_labeled"] and np.asarray(y_partial).dtype.kind not in "iu":
        # labels of the user's own classes (--classes): the data set's test labels do not apply
        data["test_labeled"] = False
        stages.say("the labels are not the data set's classes: no test accuracy")
    # coverage of the labeled set actually used (never of labels nobody gave)
    used = {str(v) for v in np.asarray(y_partial, dtype=object)[annotated]}
    report["selection"]["class_coverage"] = len(used)
    report["selection"]["n_classes"] = len(class_names)
    by_class_index = data["target_names"] is not None and np.asarray(y_partial).dtype.kind in "iu"

    def label_name(i: int) -> str:
        if not annotated[i]:
            return ""
        return class_names[int(y_partial[i])] if by_class_index else str(y_partial[i])

    selected_labels = [label_name(i) for i in indices]
    outputs.write_selection(output / "selection.csv", files, indices, selected_labels)
    state["selected_labels"] = selected_labels
    if args.annotations:
        # report.html shows what the user labeled (this run's picks may be other images)
        labeled_indices = np.flatnonzero(annotated).tolist()
        state["labeled_images"] = (labeled_indices, [label_name(i) for i in labeled_indices])

    propagator = _make_propagator(args.prior, len(X), args.seed)
    stages.run(f"propagate prior pseudo-labels ({args.prior})", propagator.fit, f_fine, y_partial)
    priors = propagator.label_distributions_
    evaluable = ~annotated & known & (np.asarray(y_partial).dtype.kind in "iu")
    # names of the priors' classes (the propagator's), for the map's legend and the tasks
    prior_names = _display_names(np.asarray(propagator.classes_), class_names, data)
    state["figure_names"] = {"truth": data["target_names"], "prior": prior_names}
    state["figure_data"] = (f_fine, indices, y_true if known.all() else None, priors, evaluable,
                            propagator.classes_)
    if evaluable.any():
        valid = np.isin(y_true[evaluable], propagator.classes_)
        report["prior"] = {
            "accuracy": float(prior_accuracy(y_true[evaluable], priors[evaluable], classes=propagator.classes_)),
            "ece": float(expected_calibration_error(y_true[evaluable], priors[evaluable],
                                                    classes=propagator.classes_)),
            "covered_fraction": float(np.mean(propagator.covered_)),
            "labels_seen_fraction": float(valid.mean()),
        }

    flexmatch_steps = plan.flexmatch_steps
    if "embed (SimSiam)" not in stages.cached:
        from ._cli_plan import replan_flexmatch

        flexmatch_steps, slowdown = replan_flexmatch(plan, sum(stages.seconds.values()),
                                                     stages.seconds["embed (SimSiam)"])
        if context is not None:  # measured times differ per rank: all ranks train rank 0's plan
            flexmatch_steps, slowdown = context.broadcast_object((flexmatch_steps, slowdown))
        if flexmatch_steps != plan.flexmatch_steps:
            stages.say(f"SimSiam ran {slowdown:.1f}x the estimated time; FlexMatch steps "
                       f"{plan.flexmatch_steps} -> {flexmatch_steps} to keep the time budget")
            report["plan"]["flexmatch_steps_replanned"] = flexmatch_steps
            report["plan"]["measured_slowdown"] = round(slowdown, 2)
    classifier = PriorGuidedFlexMatchClassifier(
        encoder=embedder, prior_mode=args.prior_mode, max_iter=flexmatch_steps, device=device,
        random_state=args.seed, verbose=verbose)
    state["classifier"] = classifier
    fit_kwargs = {"prior_proba": priors}
    # The test set only monitors training (a learning curve); no checkpoint is chosen on it,
    # and the reported test accuracy is the final EMA model's. A subset keeps the ~20
    # evaluations cheap on CPU; the final accuracy uses the whole test set.
    if data["test_labeled"]:
        monitored = np.arange(len(data["X_test"]))
        if len(monitored) > plan.n_monitored:
            monitored = np.sort(np.random.RandomState(args.seed).choice(monitored, plan.n_monitored,
                                                                         replace=False))
        fit_kwargs.update(X_monitor=data["X_test"][monitored], y_monitor=data["y_test"][monitored])
    # after Ctrl-C during training the estimator keeps its weights so far: save them too
    state["write_model"] = lambda: _write_model_outputs(
        output, classifier, X, files, priors, propagator.classes_, class_names, annotated, data, args)
    stages.run("train prior-guided FlexMatch", classifier.fit, X, y_partial, **fit_kwargs)
    report["classifier"] = _classifier_report(classifier, data)
    report["config"]["torch_settings"]["classifier"] = dict(classifier.torch_settings_)

    stages.run("predict the pool and save the model", _write_model_outputs, output, classifier, X, files,
               priors, propagator.classes_, class_names, annotated, data, args)

    plain = None
    if args.compare:
        random_indices = _make_selector("random", args.seed).fit(f_fine).select(budget)
        if known[random_indices].all() and np.asarray(y_partial).dtype.kind in "iu":
            y_random = np.full(len(X), -1, dtype=np.int64)
            y_random[random_indices] = y_true[random_indices]
            # same SimSiam encoder and steps: the comparison isolates selection and priors
            plain = PriorGuidedFlexMatchClassifier(
                encoder=embedder, prior=None, max_iter=classifier.n_iter_, device=device,
                random_state=args.seed, verbose=verbose)
            plain_kwargs = {k: v for k, v in fit_kwargs.items() if k != "prior_proba"}
            stages.run("baseline: random selection + plain FlexMatch", plain.fit, X, y_random, **plain_kwargs)
            report["baseline"] = {
                "selection": {"selector": "random", "indices": [int(i) for i in random_indices],
                              "class_coverage": int(class_coverage(y_true, random_indices))},
                "classifier": _classifier_report(plain, data),
            }
        else:
            stages.say("--compare skipped: some randomly chosen images have no label")
    state["curves"] = {"AS3L (prior-guided)": _monitor_rows(classifier),
                       "random + plain FlexMatch": _monitor_rows(plain)}
    if args.dataset == "folder":
        # every pool image with its prior as a pre-annotation, for the next labelling round
        write_label_studio_tasks(output / "label_studio_tasks.json", files, priors=priors,
                                 classes=prior_names)
    return report


def _write_model_outputs(output, classifier, X, files, priors, prior_classes, class_names, annotated,
                         data, args) -> None:
    from . import _cli_outputs as outputs

    classes = np.asarray(classifier.classes_)
    names = _display_names(classes, class_names, data)
    proba = classifier.predict_proba(X)
    # the priors' columns follow the propagator's classes; align them with the classifier's
    aligned = np.zeros((len(X), len(classes)))
    for j, c in enumerate(classes):
        where = np.flatnonzero(np.asarray(prior_classes) == c)
        if where.size:
            aligned[:, j] = priors[:, where[0]]
    outputs.write_predictions(output / "predictions.csv", files, proba, classes, names,
                              prior=aligned, annotated=annotated)
    outputs.save_model(output / "model.joblib", classifier, names, input_shape=X.shape[1:],
                       color_mode=data["color_mode"], source=args.dataset)


def _display_names(classes, class_names, data) -> list[str]:
    """Class names aligned with the classifier's ``classes`` (indices into the data set's names,
    or the label strings themselves)."""
    if data["target_names"] is not None and classes.dtype.kind in "iu":
        return [str(data["target_names"][int(c)]) for c in classes]
    return [str(c) for c in classes]


def _monitor_rows(model) -> list:
    if model is None:
        return []
    return [row for row in (getattr(model, "history_", None) or []) if "monitor_accuracy" in row]


def _classifier_report(classifier, data) -> dict:
    result = {"steps": int(classifier.n_iter_),
              "model": "final EMA weights (no checkpoint chosen on any data)"}
    if data["test_labeled"]:
        result["test_accuracy"] = float(classifier.score(data["X_test"], data["y_test"]))
    history = getattr(classifier, "history_", None) or []
    result["history"] = [
        {k: v for k, v in row.items() if k in ("step", "monitor_accuracy", "mask_rate", "loss")}
        for row in history
    ]
    return result


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_reports(args, report: dict, state: dict, stages: _Stages) -> None:
    """Write report.json and report.html (and the figures with ``--plot``) from what is done."""
    from . import _cli_outputs as outputs
    from . import _report_html

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    report["seconds"] = {k: round(v, 2) for k, v in stages.seconds.items()}
    report["cached_stages"] = list(stages.cached)
    figures = []
    if "figure_data" in state:
        f_fine, indices, y_true, priors, evaluable, classes = state["figure_data"]
        # true classes when known, else the prior pseudo-labels (indices into the names)
        colours = y_true if y_true is not None else np.asarray(priors).argmax(axis=1)
        names = state.get("figure_names", {}).get("truth" if y_true is not None else "prior")
        figures = outputs.make_figures(f_fine, indices, colours, priors,
                                       y_true[evaluable] if y_true is not None else None, evaluable,
                                       classes, state.get("curves", {}),
                                       colour_by_truth=y_true is not None, colour_names=names)
    thumbnails = []
    if "selection" in state and "images" in state:
        files, indices = state["selection"]
        labels = state.get("selected_labels") or [""] * len(indices)
        if "labeled_images" in state:
            indices, labels = state["labeled_images"]
        thumbnails = [(outputs.thumbnail_png(state["images"][i]), files[i], label)
                      for i, label in zip(indices, labels)]
    if args.plot:
        report["plots"] = []
        for figure in figures:
            (output / figure.name).write_bytes(figure.png)
            report["plots"].append(str(output / figure.name))
    (output / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    (output / "report.html").write_text(_report_html.render(
        report, figures, thumbnails,
        thumbnails_show="labeled" if "labeled_images" in state else "selected"), encoding="utf-8")


def format_report(report: dict) -> str:
    """The final report as a few human-readable lines."""
    lines = ["", "AS3L report", "-----------"]
    if "data" in report:
        lines.append(f"data: {report['data']['dataset']}, {report['data']['n_train']} training / "
                     f"{report['data']['n_test']} test images, device {report['device']}")
    sel = report.get("selection")
    if sel:
        coverage = (f", class coverage {sel['class_coverage']}/{sel['n_classes']} (of the labeled set used)"
                    if "class_coverage" in sel else "")
        lines.append(f"selection: {len(sel['indices'])} images by {sel['selector']}{coverage}")
    if "prior" in report:
        p = report["prior"]
        lines.append(f"priors: accuracy {p['accuracy']:.3f}, ECE {p['ece']:.3f}, covered {p['covered_fraction']:.1%}")
    if "classifier" in report:
        c = report["classifier"]
        acc = f"test accuracy {c['test_accuracy']:.3f}" if "test_accuracy" in c else "no labeled test set"
        lines.append(f"classifier: {acc} after {c['steps']} steps")
    if "baseline" in report:
        b = report["baseline"]
        acc = b["classifier"].get("test_accuracy")
        lines.append(f"baseline (random + plain FlexMatch): class coverage {b['selection']['class_coverage']}, "
                     + (f"test accuracy {acc:.3f}" if acc is not None else "no labeled test set"))
    if report.get("seconds"):
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items()))
        total = sum(report["seconds"].values())
        estimate = report.get("plan", {}).get("estimated_total_seconds")
        lines.append(f"total {total:.0f} s" + (f" (estimated {estimate:.0f} s)" if estimate else ""))
    if report.get("interrupted"):
        lines.append(f"INTERRUPTED during: {report.get('stage_reached')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# entry points


def _exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)


def predict_main(argv: list[str]) -> int:
    """``as3l predict MODEL PATH --output DIR``: predictions.csv for new images."""
    from . import _cli_outputs as outputs

    parser = build_predict_parser()
    try:
        args = parser.parse_args(argv)
        path = Path(args.path)
        if not (path.is_dir() or (path.is_file() and path.suffix.lower() == ".npy")):
            parser.error(f"PATH {path} is neither a folder of images nor a .npy file")
        _check_folder_flag(parser, "--output", args.output)
        target = Path(args.output) / "predictions.csv"
        if target.exists() and not args.overwrite:
            parser.error(f"--output {args.output} already holds predictions.csv; pass --overwrite "
                         "to replace it")
        from .utils import resolve_device

        try:
            device = resolve_device(args.device)
        except ValueError as exc:
            parser.error(f"--device {args.device}: {exc}")
    except SystemExit as exc:
        return _exit_code(exc)
    try:
        bundle = outputs.load_model(args.model)
        height, width, channels = bundle["input_shape"]
        if path.is_dir():
            from .datasets import load_image_folder

            loaded = load_image_folder(path, image_size=(height, width), labels="none",
                                       color_mode=bundle["color_mode"], on_error="warn", return_X_y=False)
            X, files = loaded.images, [str(f) for f in loaded.files]
        else:
            X = np.load(path, allow_pickle=False)
            if X.ndim == 3 and channels == 1:
                X = X[..., None]
            if tuple(X.shape[1:]) != (height, width, channels):
                raise UserError(f"PATH {path} holds images of shape {tuple(X.shape[1:])}; the model "
                                f"takes {(height, width, channels)} (height, width, channels)")
            files = [str(i) for i in range(len(X))]
        classifier = bundle["classifier"]
        if hasattr(classifier, "set_params") and "device" in classifier.get_params():
            classifier.set_params(device=device)
        with outputs.OutputLock(Path(args.output)):
            proba = classifier.predict_proba(X)
            outputs.write_predictions(target, files, proba, bundle["classes"], bundle["class_names"])
    except (UserError, ValueError, TypeError, OSError) as exc:
        # OSError: a --output under a regular file, a folder that cannot be written
        print(f"as3l predict: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("as3l predict: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(f"[as3l] predicted {len(files)} images; wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``as3l`` console command; returns the exit status.

    0: done; 2: a user error (printed without a traceback); 130: stopped by Ctrl-C, with what
    was done written to ``--output`` and ``report.json`` marked ``"interrupted": true``.
    Under ``torchrun`` every rank runs the chain with DDP training and rank 0 alone writes
    (see :func:`_join_process_group`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "predict":
        return predict_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        validate_args(parser, args)
    except SystemExit as exc:
        return _exit_code(exc)

    try:
        context, scratch = _join_process_group(args)
    except (RuntimeError, ValueError) as exc:
        print(f"as3l: error: could not join the torchrun process group: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _main(args, context)
    finally:
        if context is not None:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        if scratch is not None:
            scratch.cleanup()


def _join_process_group(args):
    """Under ``torchrun``: join the process group and make rank 0 alone write outputs.

    Every rank runs the whole chain (selection and propagation are cheap and deterministic;
    SimSiam and FlexMatch shard their batches with DDP), with the stage cache off so that no
    rank skips a stage the others train. Ranks other than 0 are quiet and write into a
    scratch folder removed at the end. Returns ``(context or None, scratch folder or None)``.
    """
    from .utils._distributed import get_distributed, launched_by_torchrun, resolve_distributed_device

    if not launched_by_torchrun():
        return None, None
    context = get_distributed(args.resolved_device)
    if context is None:
        return None, None
    args.resolved_device = resolve_distributed_device(args.resolved_device)
    args.no_cache = True
    scratch = None
    if not context.is_main:
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix=f"as3l-rank{context.rank}-")
        args.output = str(Path(scratch.name) / "output")
        if args.export_annotations:
            args.export_annotations = str(Path(scratch.name) / "export")
        args.quiet = True
    return context, scratch


def _main(args, context) -> int:
    from . import _cli_outputs as outputs

    main_rank = context is None or context.is_main
    stages = _Stages(args.quiet)
    state: dict = {}
    locks = []
    _interrupt_requested.clear()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    try:
        try:
            outputs.check_output_folder(Path(args.output), args.overwrite)
            locks.append(outputs.OutputLock(Path(args.output)).acquire())
            if args.export_annotations:
                locks.append(outputs.OutputLock(Path(args.export_annotations), "--export-annotations").acquire())
            report = run_pipeline(args, stages, state)
        except KeyboardInterrupt:
            report = state.setdefault("report", {})
            report["interrupted"] = True
            report["stage_reached"] = stages.current
            _keep_partial_outputs(args, state)
            _finish(args, report, state, stages)
            if main_rank:
                print(format_report(report))
            print(f"\nas3l: interrupted during '{stages.current}'; what was done is in {args.output}",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except (UserError, ValueError, TypeError, OSError) as exc:
            # OSError: a folder or file that cannot be written (read-only, a file in the way)
            print(f"as3l: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        _finish(args, report, state, stages)
    finally:
        for lock in reversed(locks):
            lock.release()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        _interrupt_requested.clear()
    if not main_rank:
        return 0
    print(format_report(report))
    if args.export_annotations:
        print(f"\nreport written to {Path(args.output) / 'report.json'}; label the images in "
              f"{args.export_annotations}")
    else:
        print(f"\nresults in {args.output}: predictions.csv, selection.csv, model.joblib, "
              "report.json, report.html")
    return 0


def _finish(args, report, state, stages) -> None:
    write_reports(args, report, state, stages)


def _keep_partial_outputs(args, state) -> None:
    """After Ctrl-C: save the classifier as it was when training stopped, if it had started
    and the estimator kept its weights (it returns fitted from an interrupted fit)."""
    classifier = state.get("classifier")
    report = state.setdefault("report", {})
    if classifier is None or not hasattr(classifier, "classes_") or "write_model" not in state:
        return
    if (Path(args.output) / "model.joblib").exists() and "classifier" in report:
        return  # training had finished; the interruption came later
    try:
        state["write_model"]()
        report["partial_model"] = ("model.joblib and predictions.csv hold the classifier as it "
                                   "was when training stopped")
    except Exception as exc:  # a half-built model: keep the rest of what was done
        report["partial_model"] = f"not saved: {type(exc).__name__}: {exc}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

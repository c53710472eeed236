"""The ``as3l`` command line: sub-commands ``run`` (the default) and ``predict``, their flags,
and every check that can run before any work.

``as3l [options] [PATH]`` is ``as3l run [options] [PATH]``; ``as3l predict MODEL PATH
--output DIR`` applies a saved model. :func:`parse_command` parses, checks and returns the
frozen configuration (:mod:`._config`); each error names its flag and exits with status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from ._config import PredictConfig, RunConfig, cache_location
from ._errors import UsageError

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "stl10", "folder")
SELECTORS = ("stablecover", "multicluster", "random", "kmedoids", "coreset", "typiclust",
             "probcover", "maxherding")
PRIORS = ("combined", "seeded-kmeans", "llgc")
BACKBONES = ("auto", "small_cnn", "small_cnn_2x2", "resnet18_cifar", "wrn28_2", "resnet18")
#: the sub-command of a command line that names none (``as3l --output runs/demo``)
DEFAULT_COMMAND = "run"


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


# --------------------------------------------------------------------------------------------
# the parsers


class CommandParser(argparse.ArgumentParser):
    """The ``as3l`` parser: one sub-command per job, ``run`` when the line names none.

    A sub-command's errors, unrecognized flags included, are reported by that
    sub-command's own parser (its usage, ``as3l: error: ...``), so that ``as3l --bogus``
    reads exactly like ``as3l run --bogus``.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        #: sub-command name -> its parser
        self.commands: dict[str, argparse.ArgumentParser] = {}
        # the sub-parsers are plain parsers: only the top level adds the default command
        self._command_action = self.add_subparsers(
            dest="command", required=True, metavar="{run,predict}",
            parser_class=argparse.ArgumentParser)

    def add_command(self, name: str, **kwargs) -> argparse.ArgumentParser:
        """Add the sub-command ``name``; ``kwargs`` go to its :class:`argparse.ArgumentParser`."""
        parser = self._command_action.add_parser(name, **kwargs)
        self.commands[name] = parser
        return parser

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if not args or args[0] not in self.commands:
            args.insert(0, DEFAULT_COMMAND)
        return super().parse_known_args(args, namespace)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.commands[namespace.command].error(
                f"unrecognized arguments: {' '.join(extras)}")
        return namespace


def build_parser() -> CommandParser:
    """The parser of the ``as3l`` command: ``as3l [run] [options] [PATH]`` and ``as3l predict``.

    ``parse_args`` returns a namespace whose ``command`` is ``"run"`` or ``"predict"``; a
    line that names no sub-command is a ``run`` (``as3l -h`` shows the run's options).
    """
    parser = CommandParser(prog="as3l", description="Active Self-Semi-Supervised Learning.")
    run = parser.add_command(
        "run", prog="as3l", help="the whole chain (the default: 'as3l [options]')",
        usage="as3l [options] [PATH]    (as3l -h for the options)\n"
              "       as3l predict MODEL PATH [PATH ...] --output DIR",
        description="Active Self-Semi-Supervised Learning: select images to label, propagate "
        "prior pseudo-labels, train a prior-guided FlexMatch classifier, and report. "
        "'as3l run [options]' is the same as 'as3l [options]'. "
        "'as3l predict MODEL PATH [PATH ...] --output DIR' applies a saved model to new "
        "images.")
    _add_data_arguments(run.add_argument_group("data"))
    _add_method_arguments(run.add_argument_group("method"))
    _add_encoder_arguments(run.add_argument_group(
        "your own pretrained encoder (instead of SimSiam from scratch)"))
    _add_output_arguments(run.add_argument_group("annotation and output"))
    predict = parser.add_command(
        "predict", prog="as3l predict", help="apply a saved model to new images",
        description="Predict labels of new images with a model.joblib written by an as3l run.")
    _add_predict_arguments(predict)
    return parser


def _add_data_arguments(data) -> None:
    data.add_argument("--dataset", choices=DATASETS, default="digits",
                      help="data set (default: the embedded scikit-learn digits)")
    data.add_argument("path", nargs="?", default=None,
                      help="image folder for --dataset folder (every image under it is unlabeled "
                           "unless --labeled-subfolders)")
    data.add_argument("--labeled-subfolders", action="store_true",
                      help="--dataset folder: first-level sub-folders are classes (their images "
                           "are labeled; part of them is held out as a test set)")
    data.add_argument("--root", default=None, help="local root of a torchvision-style data set")
    data.add_argument("--n-train", type=_positive_int, default=None,
                      help="use a random subset of this many training images (default: all; "
                           "10000 for fashion-mnist/cifar/stl10 on CPU)")
    data.add_argument("--test-size", type=_fraction, default=0.3,
                      help="held-out fraction when the data set has no test split (default 0.3)")


def _add_method_arguments(method) -> None:
    method.add_argument("--budget", type=_positive_int, default=10,
                        help="number of images to annotate (default 10)")
    method.add_argument("--selector", choices=SELECTORS, default="stablecover",
                        help="how to choose the images to label: stablecover (ours: coverage of "
                             "a kernel weighted by multi-cluster stability; the best prior in the "
                             "measured grid, docs/results.md), multicluster (the paper's), "
                             "typiclust, probcover, maxherding, kmedoids, coreset or random")
    method.add_argument("--backbone", choices=BACKBONES, default="auto",
                        help="encoder; auto: small_cnn_2x2 on CPU, by image size on CUDA")
    method.add_argument("--image-size", type=_positive_int, default=None,
                        help="side the encoder sees, in pixels (default: the images' own, longer "
                             "side at most 32 px on CPU, 224 on CUDA)")
    method.add_argument("--embed-epochs", type=_non_negative_int, default=None,
                        help="SimSiam epochs (default: a number of steps from the time budget)")
    method.add_argument("--embed-steps", type=_positive_int, default=None,
                        help="SimSiam optimizer steps (default: from the time budget)")
    method.add_argument("--retrain-embedding", action="store_true",
                        help="train SimSiam again on the pool even when the stage cache holds "
                             "the encoder an earlier run trained on this folder (by default it "
                             "is reused while at most 20%% of the images are new)")
    method.add_argument("--max-iter", type=_non_negative_int, default=None,
                        help="FlexMatch steps (default: from the time budget); 0 returns the "
                             "classifier fitted to the prior in seconds")
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
    method.add_argument("--threshold", choices=("flexmatch", "freematch"), default="flexmatch",
                        help="pseudo-label thresholds of the classifier: FlexMatch's curriculum "
                             "(the paper's) or FreeMatch's self-adaptive ones")
    method.add_argument("--compare", action="store_true",
                        help="also run random selection + plain FlexMatch with the same budget")


def _add_encoder_arguments(encoder) -> None:
    encoder.add_argument("--encoder", default=None, metavar="ARCH",
                         help="a torchvision classification model (resnet18, resnet50, "
                              "efficientnet_b0, convnext_tiny, ...) as the encoder, frozen: no "
                              "SimSiam training, the images at its weights' input size")
    encoder.add_argument("--encoder-weights", default=None, metavar="FILE|NAME",
                         help="its weights: a state_dict file (torch.save), or a torchvision "
                              "weights name (IMAGENET1K_V1, ResNet18_Weights.IMAGENET1K_V1; "
                              "default DEFAULT) read from the torch hub cache "
                              "($TORCH_HOME/hub/checkpoints), never downloaded")
    encoder.add_argument("--encoder-tune", action="store_true",
                         help="continue SimSiam from the encoder's weights on the pool (the "
                              "planned steps, or --embed-steps) instead of keeping it frozen")
    encoder.add_argument("--encoder-compare-simsiam", action="store_true",
                         help="also train SimSiam from scratch (--backbone, the planned steps) "
                              "and compare its features in the label-free feature check "
                              "(default: the encoder against PCA pixels only)")


def _add_output_arguments(io) -> None:
    # append, not nargs="+": a list of files would swallow the folder PATH after it
    io.add_argument("--annotations", action="append", default=None, metavar="FILE",
                    help="labels by file name: the filled-in selection.csv (or its folder), a "
                         "Label Studio CSV/JSON-MIN export, or a filename,label CSV; give it "
                         "once per labelling round (the labels are merged by file name)")
    io.add_argument("--export-annotations", default=None, metavar="DIR",
                    help="write the selected images, DIR/selection.csv and a Label Studio task "
                         "file to label, then stop; with --annotations, the next round: "
                         "--budget new images, none already labeled, the task file pre-filled "
                         "with the prior pseudo-labels")
    io.add_argument("--classes", type=_class_list, default=None, metavar="A,B,C",
                    help="the class names labellers may use, or a text file with one per line "
                         "(default: class_names.txt beside --annotations, or the data set's own)")
    io.add_argument("--label-studio-root", default=None, metavar="DIR",
                    help="--dataset folder: Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, "
                         "a folder above PATH (default: PATH's parent); the task files' image "
                         "URLs are relative to it")
    io.add_argument("--output", default="runs/as3l",
                    help="folder for the results (default runs/as3l)")
    io.add_argument("--overwrite", action="store_true",
                    help="replace the results of an earlier run in --output or "
                         "--export-annotations")
    io.add_argument("--cache-dir", default=None,
                    help="stage cache (default $XDG_CACHE_HOME/as3l or ~/.cache/as3l)")
    io.add_argument("--no-cache", action="store_true",
                    help="neither read nor write the stage cache")
    io.add_argument("--plot", action="store_true",
                    help="also write the figures as PNG files (report.html always has them)")
    io.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N")
    io.add_argument("--seed", type=_seed, default=0,
                    help="random seed, 0 to 2**32 - 1 (default 0)")
    verbosity = io.add_mutually_exclusive_group()
    verbosity.add_argument("--quiet", action="store_true", help="print only the final report")
    verbosity.add_argument("--verbose", action="store_true",
                           help="also print per-epoch training logs")


def _add_predict_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model.joblib from an as3l run's --output")
    parser.add_argument("paths", metavar="PATH", nargs="+",
                        help="folders of images, image files or .npy arrays of images (resized "
                             "and converted to the model's input size and colour mode)")
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="folder for predictions.csv")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing predictions.csv")
    parser.add_argument("--device", type=_device, default="cpu",
                        help="cpu (default), auto, cuda or cuda:N")
    parser.add_argument("--quiet", action="store_true")


# --------------------------------------------------------------------------------------------
# checks before any work: each raises UsageError naming the flag


def parse_command(argv: Sequence[str]) -> RunConfig | PredictConfig:
    """Parse and check an ``as3l`` command line (without the program name).

    Returns a :class:`RunConfig` for ``as3l [run] ...``, a :class:`PredictConfig` for
    ``as3l predict ...``. Bad input exits (``SystemExit`` with status 2) after printing the
    sub-command's usage and an error naming the flag; ``-h`` exits with status 0.
    """
    parser = build_parser()
    args = parser.parse_args(list(argv))
    check = check_run_args if args.command == "run" else check_predict_args
    try:
        return check(args)
    except UsageError as exc:
        parser.commands[args.command].error(str(exc))


def check_run_args(args: argparse.Namespace) -> RunConfig:
    """Check everything about a run that can be checked before any work; return its
    configuration. Raises :class:`UsageError` naming the flag; ``args`` is left as it is."""
    resolved_device = _resolved_device(args.device)
    _check_data_flags(args)
    annotations = _check_annotation_flags(args)
    _check_method_flags(args)
    _check_output_flags(args)
    _check_label_studio_root(args)
    resolved_encoder = _check_encoder_flags(args)
    values = {name: value for name, value in vars(args).items() if name != "command"}
    values.update(annotations=annotations, resolved_device=resolved_device,
                  resolved_encoder=resolved_encoder,
                  classes=None if args.classes is None else tuple(args.classes))
    return RunConfig(**values)


def _resolved_device(device: str) -> str:
    """``--device`` resolved (``auto``: cuda if there is one, else cpu); a
    :class:`UsageError` names the flag when the device is not there."""
    # torch and scikit-learn (through as3l_sklearn.utils) load here, once the flags parsed:
    # importing them takes seconds, which `as3l -h` and a mistyped flag need not wait for
    from ..utils import resolve_device

    try:
        return resolve_device(device)
    except ValueError as exc:
        raise UsageError(f"--device {device}: {exc}") from None


def _check_data_flags(args) -> None:
    if args.dataset == "folder":
        if args.path is None:
            raise UsageError("--dataset folder needs the folder path: as3l --dataset folder PATH")
        if not Path(args.path).is_dir():
            raise UsageError(f"PATH {args.path} is not a folder")
    elif args.path is not None:
        raise UsageError(f"PATH ({args.path}) is only for --dataset folder")
    if args.labeled_subfolders and args.dataset != "folder":
        raise UsageError("--labeled-subfolders is only for --dataset folder")
    if args.root is not None and not Path(args.root).is_dir():
        raise UsageError(f"--root {args.root} is not a folder")
    if args.dataset in ("cifar10", "cifar100", "stl10") and args.root is None:
        raise UsageError(f"--dataset {args.dataset} needs --root (a local torchvision data root)")


def _check_annotation_flags(args) -> tuple[str, ...] | None:
    """Check the annotation round trip's flags; return the ``--annotations`` files (a folder
    given stands for the ``selection.csv`` or ``manifest.csv`` in it), None without any.

    ``--annotations`` with ``--export-annotations`` is the next labelling round: the export
    folder must not be where a label file being read lies (``--overwrite`` would replace it).
    """
    annotations = None
    if args.annotations:
        annotations = tuple(_annotation_file(Path(given)) for given in args.annotations)
    if annotations and args.export_annotations:
        export = Path(args.export_annotations).resolve()
        for file in annotations:
            if Path(file).resolve().parent == export:
                raise UsageError(
                    f"--export-annotations {args.export_annotations} holds {file}, read with "
                    "--annotations: the next round's images go to a new folder (e.g. "
                    "--export-annotations round2/), so that no label is overwritten")
    demo_impossible = args.dataset == "folder" and not args.labeled_subfolders
    if demo_impossible and not (args.annotations or args.export_annotations):
        raise UsageError("--dataset folder has no labels unless --labeled-subfolders: run with "
                         "--export-annotations DIR first, then --annotations DIR/selection.csv")
    if args.compare and demo_impossible:
        raise UsageError("--compare needs the data set's labels (a folder with "
                         "--labeled-subfolders)")
    return annotations


def _annotation_file(path: Path) -> str:
    """The label file ``--annotations path`` names: ``path``, or the ``selection.csv`` (else
    ``manifest.csv``) of a folder."""
    if path.is_dir():
        candidates = [path / "selection.csv", path / "manifest.csv"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UsageError(f"--annotations {path} is a folder without selection.csv")
        return str(found)
    if not path.is_file():
        raise UsageError(f"--annotations {path} does not exist")
    return str(path)


def _check_method_flags(args) -> None:
    if args.embed_epochs is not None and args.embed_steps is not None:
        raise UsageError("--embed-epochs and --embed-steps both set the SimSiam length: give one")
    if args.time_budget is not None and args.preset != "default":
        raise UsageError("--time-budget and --preset both set the time budget: give one")


def _check_encoder_flags(args):
    """``--encoder`` and its flags: the resolved encoder (None without ``--encoder``)."""
    from ._encoder import resolve_encoder

    spec = resolve_encoder(args)
    if spec is None or args.encoder_compare_simsiam:
        return spec
    if args.backbone != "auto":
        raise UsageError(f"--backbone {args.backbone} is SimSiam's encoder: with --encoder it "
                         "only applies with --encoder-compare-simsiam")
    if not args.encoder_tune and (args.embed_steps is not None or args.embed_epochs is not None):
        raise UsageError("--embed-steps / --embed-epochs set SimSiam's length: a frozen "
                         "--encoder trains no SimSiam (add --encoder-tune or "
                         "--encoder-compare-simsiam)")
    return spec


def _check_output_flags(args) -> None:
    for flag, folder in (("--output", args.output),
                         ("--export-annotations", args.export_annotations),
                         ("--cache-dir", cache_location(args.no_cache, args.cache_dir))):
        check_folder_flag(flag, folder)
    if (args.export_annotations is not None
            and Path(args.export_annotations).resolve() == Path(args.output).resolve()):
        raise UsageError(f"--export-annotations {args.export_annotations} is the same folder as "
                         f"--output {args.output}: the images to label and the run's results "
                         "need separate folders (e.g. --export-annotations to_label)")
    if args.dataset == "folder":
        # anything written inside the input folder would join the pool on the next run
        folder = Path(args.path).resolve()
        for flag, target in (("--output", args.output),
                             ("--export-annotations", args.export_annotations)):
            if target is not None and Path(target).resolve().is_relative_to(folder):
                raise UsageError(f"{flag} {target} is inside PATH {args.path}: its images would "
                                 "be read as part of the data on the next run; choose a folder "
                                 "outside it")
    if args.export_annotations and not args.overwrite:
        existing = Path(args.export_annotations) / "selection.csv"
        if existing.exists():
            raise UsageError(f"--export-annotations {args.export_annotations} already holds "
                             f"{existing.name} (perhaps with labels filled in); choose another "
                             "folder or pass --overwrite")


def _check_label_studio_root(args) -> None:
    """``--label-studio-root``: a folder above the input folder (Label Studio serves local
    files only from a storage strictly below its document root), checked before any work."""
    root = args.label_studio_root
    if args.dataset != "folder":
        if root is not None:
            raise UsageError("--label-studio-root is only for --dataset folder (Label Studio "
                             "serves the images of the input folder)")
        return
    if root is not None and not Path(root).is_dir():
        raise UsageError(f"--label-studio-root {root} is not a folder")
    from ._label_studio import check_document_root

    try:
        check_document_root(args.path, root)
    except ValueError as exc:
        given = root if root is not None else f"(default: the parent of PATH {args.path})"
        raise UsageError(f"--label-studio-root {given}: {exc}") from None


def _existing_non_folder(path: Path) -> Path | None:
    """``path`` or the first of its parents that exists, when that is not a folder; else None."""
    for part in (path, *path.parents):
        if part.exists():
            return None if part.is_dir() else part
    return None


def check_folder_flag(flag: str, folder) -> None:
    """:class:`UsageError` when the folder ``flag`` names is, or would sit under, a regular file."""
    blocker = None if folder is None else _existing_non_folder(Path(folder))
    if blocker is not None and blocker == Path(folder):
        raise UsageError(f"{flag} {folder} exists and is not a folder")
    if blocker is not None:
        # creating the folder would fail with NotADirectoryError, after the work
        raise UsageError(f"{flag} {folder} cannot be created: {blocker} is a file, not a folder")


def check_predict_args(args: argparse.Namespace) -> PredictConfig:
    """Check ``as3l predict``'s flags before loading anything; return its configuration."""
    _check_model_file(Path(args.model))
    for path in map(Path, args.paths):
        _check_predict_path(path)
    check_folder_flag("--output", args.output)
    if (Path(args.output) / "predictions.csv").exists() and not args.overwrite:
        raise UsageError(f"--output {args.output} already holds predictions.csv; pass "
                         "--overwrite to replace it")
    resolved_device = _resolved_device(args.device)
    values = {name: value for name, value in vars(args).items() if name != "command"}
    values["paths"] = tuple(args.paths)
    return PredictConfig(**values, resolved_device=resolved_device)


def _check_model_file(model: Path) -> None:
    if model.is_dir():
        inside = model / "model.joblib"
        hint = (f"pass the model.joblib inside it: {inside}" if inside.is_file() else
                "pass the model.joblib an as3l run writes in its --output")
        raise UsageError(f"MODEL {model} is a folder; {hint}")
    if not model.exists():
        raise UsageError(f"MODEL {model} does not exist (it is the model.joblib an as3l run "
                         "writes in its --output)")


def _check_predict_path(path: Path) -> None:
    from ..datasets import IMAGE_EXTENSIONS

    if path.is_dir():
        return
    if not path.exists():
        raise UsageError(f"PATH {path} does not exist")
    if not (path.is_file() and path.suffix.lower() in (".npy", *IMAGE_EXTENSIONS)):
        raise UsageError(f"PATH {path} is neither a folder, an image file "
                         f"({', '.join(IMAGE_EXTENSIONS)}) nor a .npy file")

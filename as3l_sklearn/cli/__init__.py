"""The ``as3l`` command: the whole AS3L chain, with per-image outputs and a report.

embed (SimSiam) -> fine-tune (Eq. 1) -> select ``--budget`` -> annotate -> propagate priors
-> train prior-guided FlexMatch -> ``predictions.csv``, ``model.joblib``, ``report.json`` and
``report.html``, optionally against a random-selection + plain FlexMatch baseline with the same
budget (``--compare``). ``as3l predict MODEL PATH [PATH ...] --output DIR`` applies a saved
model to new images (folders, image files, ``.npy`` arrays).

Annotation comes from the data set's own labels in demo mode (the default), or from a person:
run once with ``--export-annotations DIR`` (writes ``DIR/selection.csv`` keyed by file name,
previews and a Label Studio task file), fill the ``label`` column (or label in Label Studio /
CVAT and export), then run again with ``--annotations FILE``. The next labelling round is
``--annotations FILE --export-annotations DIR2``: ``--budget`` new images, chosen given the
labels so far (none of them), with the prior pseudo-labels as Label Studio pre-annotations;
a later run takes every round's file (``--annotations FILE --annotations DIR2/selection.csv``).
Stage results are cached (``--cache-dir``), so the later runs do not retrain SimSiam.

The sub-commands are ``run`` (the default: ``as3l [options]`` is ``as3l run [options]``) and
``predict``. Inside the package: ``_main`` holds the entry point; ``_parser`` (flags and
checks) builds a frozen ``RunConfig`` / ``PredictConfig`` (``_config``); ``_command`` runs
the main job, ``_predict`` the prediction. The main job is the row of stages
``_stages.PIPELINE``, each a function of the ``RunContext`` and the ``RunState``
(``_state``); ``_report``, ``_report_html`` and ``_outputs`` write the results, each file
whole (``_atomic``) and as one set with ``report.json`` naming the run (``_resume``, which
also lets an unfinished run be resumed); ``_plan`` chooses the step counts, ``_cache`` keeps
the costly stages, ``_embed`` reuses a folder's SimSiam encoder for a few new images,
``_label_studio`` says where Label Studio serves the images from, ``_warnings`` prints
warnings on one line, ``_errors`` holds ``UserError`` and the exit statuses.

Examples
--------
Demo on the embedded digits data, a few minutes on a laptop CPU::

    as3l --output runs/demo --compare --plot

A folder of your own images::

    as3l --dataset folder photos/ --budget 20 --export-annotations to_label/ --output runs/photos
    as3l --dataset folder photos/ --budget 20 --annotations to_label/selection.csv --output runs/photos
    as3l --dataset folder photos/ --budget 20 --annotations to_label/selection.csv \\
         --export-annotations round2/ --output runs/photos-round2
    as3l --dataset folder photos/ --budget 20 --annotations to_label/selection.csv \\
         --annotations round2/selection.csv --output runs/photos-round2
    as3l predict runs/photos/model.joblib new_photos/ --output runs/new
    as3l predict runs/photos/model.joblib IMG_1.jpg IMG_2.jpg --output runs/two

From Python, ``main`` takes the arguments and returns the exit status:

>>> from as3l_sklearn.cli import main
>>> main(["--output", "runs/demo", "--quiet"])  # doctest: +SKIP
0
"""

from importlib import import_module

from ._config import PredictConfig, RunConfig
from ._errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from ._main import main
from ._parser import build_parser, parse_command

# The names of the run itself are imported on first use (PEP 562, as in the package root):
# they load torch and the estimators, which `as3l -h` and flag errors need not wait for.
_LAZY = {
    "PIPELINE": "_stages",
    "run_pipeline": "_stages",
    "RunContext": "_state",
    "RunState": "_state",
    "PoolData": "_data",
    "load_data": "_data",
    "format_report": "_report",
    "run_command": "_command",
}

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PIPELINE",
    "PoolData",
    "PredictConfig",
    "RunConfig",
    "RunContext",
    "RunState",
    "UserError",
    "build_parser",
    "format_report",
    "load_data",
    "main",
    "parse_command",
    "run_command",
    "run_pipeline",
]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

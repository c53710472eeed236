"""What an ``as3l`` run is given (:class:`RunContext`) and what it has done so far
(:class:`RunState`), passed from stage to stage (see :mod:`._stages`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..classification import PriorGuidedFlexMatchClassifier
from ..embedding import SimSiamEmbedder
from ..utils._distributed import DistributedContext
from ._cache import StageCache
from ._config import RunConfig
from ._data import PoolData
from ._plan import Plan
from ._progress import StageTimer
from ._resume import OutputFolder


@dataclass(frozen=True)
class RunContext:
    """What every stage is given and none replaces: the checked flags, the timer that runs
    and reports the timed steps, the stage cache, and ``--output`` (every file of the run is
    written through it: whole, and as one set with ``report.json``)."""

    config: RunConfig
    timer: StageTimer
    cache: StageCache
    output: OutputFolder


@dataclass
class RunState:
    """What the run has done so far, filled in stage by stage (the stage that sets a field
    is named beside it; a field is None until then).

    Whatever is set when the run ends, finished or stopped by Ctrl-C, goes into the reports
    (``report.json``, ``report.html``, and after Ctrl-C during training the model so far).
    A new stage adds the fields it produces here, with the same conventions.
    """

    #: ``report.json`` as it grows: each stage adds its section
    report: dict = field(default_factory=dict)
    #: set by a stage after which nothing is left to do (an export run ends after the
    #: selection): the stages after it do not run
    done: bool = False
    #: start: the ``torchrun`` process group, None in a single process
    distributed: DistributedContext | None = None
    #: load: the pool and the test set
    data: PoolData | None = None
    #: plan: the step counts and their time estimate
    plan: Plan | None = None
    #: embed: the fitted SimSiam embedder and its features of the pool
    embedder: SimSiamEmbedder | None = None
    features: np.ndarray | None = None
    #: fine-tune: the features fine-tuned with K = budget clusters (Eq. 1)
    fine_features: np.ndarray | None = None
    #: embed / fine-tune with ``--encoder-compare-simsiam``: SimSiam-from-scratch features of
    #: the pool and their fine-tuned version, for the feature check (None otherwise)
    simsiam_features: np.ndarray | None = None
    simsiam_fine_features: np.ndarray | None = None
    #: select: the selected pool images (indices into ``data.files``), best first
    indices: list[int] | None = None
    #: read annotations (``--annotations``) or annotate (demo mode): the label of every pool
    #: image (-1 unlabeled; class indices, or strings of the user's own classes) and the
    #: class names
    y_partial: np.ndarray | None = None
    class_names: list[str] | None = None
    #: annotate: which pool images are labeled, the label of each selected image ("" when
    #: none), and with ``--annotations`` the labeled images and their labels (report.html
    #: shows these instead of the selection)
    annotated: np.ndarray | None = None
    selected_labels: list[str] | None = None
    labeled_images: tuple[list[int], list[str]] | None = None
    #: propagate: the prior label distribution of every pool image, its classes (the
    #: propagator's) and their names, and which images' priors can be scored against the
    #: truth (unlabeled, truth known)
    priors: np.ndarray | None = None
    prior_classes: np.ndarray | None = None
    prior_names: list[str] | None = None
    evaluable: np.ndarray | None = None
    #: train: the prior-guided classifier (set before its fit: Ctrl-C during training keeps
    #: its weights so far) and the test images it monitors (``X_monitor``, ``y_monitor``
    #: keyword arguments of ``fit``; empty without a labeled test set)
    classifier: PriorGuidedFlexMatchClassifier | None = None
    monitor: dict | None = None
    #: compare: the learning curves to draw (monitored accuracy rows per classifier), set
    #: once the trainings are done
    curves: dict | None = None

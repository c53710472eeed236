"""The stages of an ``as3l`` run, in order (:data:`PIPELINE`).

embed (SimSiam) -> fine-tune (Eq. 1) -> select ``--budget`` -> annotate -> propagate priors
-> train prior-guided FlexMatch -> predictions and model -> (``--compare``) baseline.
An export run (``--export-annotations``) ends after the selection; the next labelling round
(``--annotations`` with ``--export-annotations``) selects given the labels so far and ends
after the propagation, exporting the new picks with their priors.

Every stage is a function ``stage(run, state)``: it reads the :class:`RunContext` (the
checked flags, the timer, the cache) and the :class:`RunState` the stages before it
filled, and adds what it produces to the state and its section to ``state.report``. A
stage that does not apply to this run (``--compare`` not given) returns at once; one after
which nothing is left to do sets ``state.done``. Adding a stage is writing one such
function and adding it to :data:`PIPELINE`.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from skorch.callbacks import Callback

from ..classification import PriorGuidedFlexMatchClassifier
from ..classification._flexmatch import AUTO_MAX_ITER_CPU, AUTO_MAX_ITER_GPU
from ..embedding import ClusterFineTuner, SimSiamEmbedder
from ..embedding._simsiam import AUTO_BATCH_SIZE, AUTO_MAX_SIDE, AUTO_STEPS
from ..diagnostics import compare_feature_spaces, pixel_features
from ..metrics import class_coverage, expected_calibration_error, labeled_mask, prior_accuracy
from ..nn import auto_backbone_name
from ..propagation import CombinedPropagator, LLGCPropagator, SeededKMeansPropagator
from ..selection import (CoresetSelector, KMedoidsSelector, MaxHerdingSelector,
                         MultiClusterSelector, ProbCoverSelector, RandomSelector,
                         StableCoverSelector, TypiClustSelector,
                         export_for_annotation, write_label_studio_tasks)
from ..utils._distributed import get_distributed
from . import _label_studio
from ._atomic import staged_folder
from ._config import RunConfig
from ._data import PoolData, class_list_in_force, load_data, read_labels
from ._embed import EMBED_STEP, SimSiamTimeLimit, embed_pool, fit_embedding  # noqa: F401 (fit_embedding: API)
from ._encoder import (ENCODER_STEP, embedder_params, fit_pretrained, pixel_images,
                       seconds_per_image)
from ._errors import UserError
from ._outputs import save_model, write_predictions, write_selection
from ._plan import (MORE_TIME, MIN_USEFUL_FLEXMATCH_STEPS, PROBE_STEPS, PRESETS, Plan,
                    encoder_size, make_encoder_plan, make_plan, measures_before_simsiam,
                    plan_measures_speed, replan_flexmatch)
from ._progress import interrupt_requested
from ._self_checks import describe_self_checks
from ._state import RunContext, RunState

#: ``--selector`` name -> selector class
SELECTORS = {
    "stablecover": StableCoverSelector,
    "multicluster": MultiClusterSelector,
    "random": RandomSelector,
    "kmedoids": KMedoidsSelector,
    "coreset": CoresetSelector,
    "typiclust": TypiClustSelector,
    "probcover": ProbCoverSelector,
    "maxherding": MaxHerdingSelector,
}


# --------------------------------------------------------------------------------------------
# the computations the stage cache keeps: module-level functions so that the cache can key
# them on their source and arguments (the data and every parameter; verbose is left out of
# the key). SimSiam's, fit_embedding, is in _embed with the reuse of a folder's encoder.


def fine_tune_features(f_self, n_clusters: int, seed: int, device: str, verbose: int):
    """Fine-tune the features with K = ``n_clusters`` (Eq. 1); return the new features."""
    tuner = ClusterFineTuner(n_clusters=n_clusters, random_state=seed, device=device,
                             verbose=verbose)
    features = tuner.fit_transform(f_self)
    if interrupt_requested.is_set():
        raise KeyboardInterrupt
    return features


def select_images(f_fine, selector: str, budget: int, seed: int, labeled: tuple = ()):
    """The ``budget`` images ``selector`` chooses on ``f_fine``, best first, none of the
    ``labeled`` ones (indices: the images labeled in earlier rounds)."""
    return np.asarray(make_selector(selector, seed).fit(f_fine).select(
        budget, labeled=np.asarray(labeled, dtype=np.int64)))


def cached_step(run: RunContext, name: str, function, *args):
    """``function(*args)`` timed as ``name``, from the stage cache when it holds the result
    (and it reads back: a damaged entry is a warning and is computed again), else computed
    and stored."""
    cache = run.cache
    key = cache.key(function, *args) if cache.enabled else ""
    found, value = cache.load_key(function, key, what=f"'{name}'")
    if found:
        return run.timer.run(name, lambda: value, cached=True)
    value = run.timer.run(name, function, *args)
    cache.save_key(function, key, value)
    return value


def make_selector(name: str, seed: int):
    """The selector ``--selector name`` stands for."""
    return SELECTORS[name](random_state=seed)


def make_propagator(name: str, n_samples: int, seed: int):
    """The propagator ``--prior name`` stands for."""
    if name == "llgc":
        return LLGCPropagator()
    seeded = SeededKMeansPropagator(n_clusters=propagation_ks(n_samples), random_state=seed)
    if name == "seeded-kmeans":
        return seeded
    return CombinedPropagator(cluster_propagator=seeded, graph_propagator=LLGCPropagator())


def propagation_ks(n_samples: int) -> list[int]:
    """The paper's K list (10..60), kept below the number of samples for tiny data."""
    return [k for k in (10, 20, 30, 40, 50, 60) if k <= n_samples] or [max(1, n_samples // 2)]


# --------------------------------------------------------------------------------------------
# the stages, in the order of PIPELINE


def start_stage(run: RunContext, state: RunState) -> None:
    """Open the report: the flags, the device, and the process group under ``torchrun``."""
    config = run.config
    state.report.update({"config": config.flags(), "device": config.resolved_device,
                         "interrupted": False})
    state.distributed = get_distributed(config.resolved_device)
    if state.distributed is not None:
        state.report["distributed"] = state.distributed.as_report()


def load_stage(run: RunContext, state: RunState) -> None:
    """Load the pool and the test set; the budget must fit the pool."""
    config = run.config
    state.data = run.timer.run("load data", load_data, config)
    X = state.data.X_train
    if config.budget > len(X):
        raise UserError(f"--budget {config.budget} is larger than the {len(X)} images of the "
                        "pool")
    state.report["data"] = {"dataset": config.dataset, "n_train": int(len(X)),
                            "n_test": int(len(state.data.X_test)),
                            "image_shape": list(np.asarray(X).shape[1:]),
                            # unreadable files of a folder, left out (each warned about)
                            "skipped_unreadable": len(state.data.skipped),
                            "skipped_files": list(state.data.skipped[:10])}


def read_annotations_stage(run: RunContext, state: RunState) -> None:
    """``--annotations``: read the labels now, before any training, so that a typo (or, in
    the next round, a budget larger than the images left to label) is an error before
    SimSiam runs."""
    config = run.config
    if not config.annotations:
        return
    labels = run.timer.run("read annotations", read_labels, config, state.data)
    state.y_partial, state.class_names = labels.y_partial, labels.class_names
    n_labeled = int(labeled_mask(labels.y_partial).sum())
    state.report["labels_read"] = {"count": n_labeled, "files": labels.per_file}
    n_left = len(state.data.files) - n_labeled
    if config.next_round and config.budget > n_left:
        raise UserError(f"--budget {config.budget}: only {n_left} of the "
                        f"{len(state.data.files)} images of the pool are not labeled yet "
                        f"({n_labeled} are labeled in {', '.join(config.annotations)}); ask "
                        f"for at most {n_left} new images")


def plan_stage(run: RunContext, state: RunState) -> None:
    """Choose the step counts for the time budget and print the plan before any training.

    When the estimate leaves FlexMatch under its floor but a faster machine would not, a few
    FlexMatch steps are timed first (:func:`~._plan.measures_before_simsiam`): if they do not
    fit the floor either, SimSiam gets FlexMatch's time (better features, so a better prior
    and the model fitted to it) instead of leaving it unused."""
    config = run.config
    plan = plan_run(config, state.data)
    measured = None
    if measures_before_simsiam(plan):
        seconds = run.timer.run("time a few FlexMatch steps (before SimSiam)",
                                probe_flexmatch_before_simsiam, config, state, plan)
        steps, slowdown = replan_flexmatch(plan, seconds)
        if state.distributed is not None:  # measured times differ per rank: all plan rank 0's
            steps, slowdown = state.distributed.broadcast_object((steps, slowdown))
        measured = {"seconds_per_flexmatch_step": round(seconds, 4),
                    "slowdown": round(slowdown, 2), "flexmatch_steps_that_fit": steps}
        if steps == 0:
            plan = plan_run(config, state.data, flexmatch_fits=False)
            plan.notes.append(
                f"a FlexMatch step timed now ran {slowdown:.1f}x the estimated time: under the "
                f"floor of {MIN_USEFUL_FLEXMATCH_STEPS} useful steps, so the classifier will be "
                f"the model fitted to the prior, and SimSiam takes FlexMatch's time {MORE_TIME}")
        else:
            plan.notes.append(f"a FlexMatch step timed now ran {slowdown:.1f}x the estimated "
                              f"time: about {steps} FlexMatch steps fit (timed again before "
                              "training)")
    state.plan = plan
    state.report["plan"] = plan.as_dict()
    if measured is not None:
        state.report["plan"]["measured_before_simsiam"] = measured
    if not run.config.quiet:
        print(state.plan.describe(), flush=True)


def plan_run(config: RunConfig, data: PoolData, extend_simsiam: bool = True,
             flexmatch_fits: bool = True) -> Plan:
    """The run's :class:`Plan`: the encoder size and backbone, the SimSiam and FlexMatch steps
    (given by the flags or chosen for the time budget) and the time estimate
    (``extend_simsiam``, ``flexmatch_fits``: see :func:`._plan.make_plan`)."""
    if config.resolved_encoder is not None:
        return plan_with_encoder(config, data)
    kind = config.device_kind
    X = data.X_train
    size = encoder_size(X.shape[1:3], config.image_size, AUTO_MAX_SIDE[kind])
    backbone = (config.backbone if config.backbone != "auto"
                else auto_backbone_name(X.shape[-1], size, config.resolved_device))
    simsiam_steps = config.embed_steps
    if config.embed_epochs is not None:
        batch = min(AUTO_BATCH_SIZE[kind], len(X))
        simsiam_steps = config.embed_epochs * max(1, len(X) // batch)
    budget = (config.time_budget if config.time_budget is not None
              else PRESETS[config.preset][kind])
    return make_plan(
        n_images=len(X), image_shape=X.shape[1:], size=size, backbone=backbone,
        device=config.resolved_device, time_budget=budget, compare=config.compare,
        # an export run stops after selection; its steps stay the full run's (the cache key)
        trains_classifier=not config.export_annotations,
        n_test=len(data.X_test) if data.test_labeled else 0,
        simsiam_steps=simsiam_steps, flexmatch_steps=config.max_iter,
        default_simsiam_steps=AUTO_STEPS[kind],
        default_flexmatch_steps=AUTO_MAX_ITER_GPU if kind == "cuda" else AUTO_MAX_ITER_CPU,
        extend_simsiam=extend_simsiam, flexmatch_fits=flexmatch_fits,
        simsiam_batch=min(AUTO_BATCH_SIZE[kind], len(X)))


def plan_with_encoder(config: RunConfig, data: PoolData) -> Plan:
    """The plan of a run with ``--encoder``: its costs from a forward pass of the encoder
    timed now; frozen, no SimSiam step (its time goes to FlexMatch); with
    ``--encoder-compare-simsiam``, SimSiam from scratch as a run without ``--encoder`` plans it."""
    spec, kind, X = config.resolved_encoder, config.device_kind, data.X_train
    comparison = None
    if config.encoder_compare_simsiam:  # at SimSiam's own size, not the encoder's
        # a feature check: SimSiam at its default length, not the time FlexMatch cannot use
        comparison = plan_run(replace(config, resolved_encoder=None, image_size=None), data,
                              extend_simsiam=False)
    batch = min(AUTO_BATCH_SIZE[kind], len(X))
    tune_steps = config.embed_steps
    if config.embed_epochs is not None:
        tune_steps = config.embed_epochs * max(1, len(X) // batch)
    return make_encoder_plan(
        n_images=len(X), image_shape=X.shape[1:], size=spec.image_size,
        encoder={"architecture": spec.architecture, "weights": spec.weights_name or spec.file},
        device=config.resolved_device,
        time_budget=(config.time_budget if config.time_budget is not None
                     else PRESETS[config.preset][kind]),
        compare=config.compare, n_test=len(data.X_test) if data.test_labeled else 0,
        seconds_per_image=seconds_per_image(spec, config.resolved_device), simsiam_batch=batch,
        tune=spec.tune, tune_steps=tune_steps, flexmatch_steps=config.max_iter,
        default_tune_steps=AUTO_STEPS[kind],
        default_flexmatch_steps=AUTO_MAX_ITER_GPU if kind == "cuda" else AUTO_MAX_ITER_CPU,
        comparison=comparison, trains_classifier=not config.export_annotations)


def embed_stage(run: RunContext, state: RunState) -> None:
    """Fit SimSiam on the pool (or take it, or the encoder of an earlier run on the same
    folder, from the stage cache: see :mod:`._embed`); with ``--encoder``, the pretrained
    encoder instead (:func:`embed_pretrained_stage`)."""
    if run.config.resolved_encoder is not None:
        embed_pretrained_stage(run, state)
        return
    config, plan = run.config, state.plan
    params = {"backbone": plan.backbone, "image_size": list(plan.encoder_size),
              "max_epochs": config.embed_epochs if config.embed_epochs is not None else "auto",
              "max_steps": plan.simsiam_steps if config.embed_epochs is None else "auto",
              "device": config.resolved_device, "random_state": config.seed}
    # under torchrun every rank must train the same steps: no time limit there
    time_limit = (None if plan.simsiam_time_limit is None or state.distributed is not None
                  else SimSiamTimeLimit(plan.simsiam_time_limit, plan.simsiam_default_steps))
    state.embedder, state.features = embed_pool(run, state, params, time_limit)
    # what SimSiam ran with (thread count, torch version): results depend on them
    state.report["config"]["torch_settings"] = {"embedder": dict(state.embedder.torch_settings_)}


def embed_pretrained_stage(run: RunContext, state: RunState) -> None:
    """``--encoder``: the pretrained encoder's features of the pool (frozen, or tuned by
    SimSiam from its weights with ``--encoder-tune``), from the stage cache when it holds them
    (keyed on the weights file's size and time); with ``--encoder-compare-simsiam``, SimSiam
    from scratch too, for the feature check."""
    config, plan, spec = run.config, state.plan, run.config.resolved_encoder
    if plan.simsiam_comparison is not None:
        comparison = plan.simsiam_comparison
        params = {"backbone": comparison["backbone"], "image_size": comparison["encoder_size"],
                  "max_epochs": config.embed_epochs if config.embed_epochs is not None else "auto",
                  "max_steps": comparison["steps"] if config.embed_epochs is None else "auto",
                  "device": config.resolved_device, "random_state": config.seed}
        _, state.simsiam_features = embed_pool(run, state, params)
        state.report["simsiam_comparison"] = dict(state.report.pop("embedding"), **comparison)
    params = embedder_params(spec, plan.simsiam_steps, config.resolved_device, config.seed)
    state.embedder, state.features = cached_step(run, ENCODER_STEP, fit_pretrained,
                                                 state.data.X_train, spec, params,
                                                 config.verbosity)
    state.report["encoder"] = dict(spec.as_report(), steps=int(state.embedder.n_steps_),
                                   n_features=int(state.embedder.n_features_out_))
    state.report["embedding"] = {"source": f"pretrained encoder {spec.architecture}"
                                           + (" (tuned by SimSiam)" if spec.tune else " (frozen)")}
    state.report["config"]["torch_settings"] = {"embedder": dict(state.embedder.torch_settings_)}


def fine_tune_stage(run: RunContext, state: RunState) -> None:
    """Fine-tune the features with K = the budget (Eq. 1)."""
    config = run.config
    verbose = 2 if config.verbosity >= 2 else 0  # a seconds-long stage needs no progress bar
    state.fine_features = cached_step(run, "fine-tune features (Eq. 1)", fine_tune_features,
                                      state.features, config.budget, config.seed,
                                      config.resolved_device, verbose)
    if state.simsiam_features is not None:  # --encoder-compare-simsiam: checked the same way
        state.simsiam_fine_features = cached_step(
            run, "fine-tune SimSiam's features (feature check)", fine_tune_features,
            state.simsiam_features, config.budget, config.seed, config.resolved_device, verbose)


def select_stage(run: RunContext, state: RunState) -> None:
    """Select the ``--budget`` images to label (in the next round, given the labeled ones:
    none of them); write ``selection.csv`` (labels to come)."""
    config, files = run.config, state.data.files
    # the next round's picks depend on what is labeled: the labeled images are in the key
    labeled = (tuple(np.flatnonzero(labeled_mask(state.y_partial)).tolist())
               if config.next_round else ())
    indices = cached_step(run, f"select {config.budget} images ({config.selector})",
                          select_images, state.fine_features, config.selector, config.budget,
                          config.seed, labeled)
    state.indices = [int(i) for i in indices]
    state.report["selection"] = {"selector": config.selector, "indices": state.indices,
                                 "files": [files[i] for i in state.indices]}
    with run.output.writing("selection.csv") as temp:
        write_selection(temp, files, state.indices)
    state.report["cached_stages"] = run.timer.cached


def export_stage(run: RunContext, state: RunState) -> None:
    """``--export-annotations DIR`` (the first round): write the selected images to label,
    then end the run. The next round (with ``--annotations``) exports after propagation
    (:func:`next_round_export_stage`)."""
    config = run.config
    if not config.export_annotations or config.next_round:
        return
    written = export_images(run, state, config.classes or state.data.target_names)
    run.timer.say(f"wrote {len(state.indices)} images to label and {written}; fill its 'label' "
                  "column (or label them in Label Studio / CVAT), then run again with "
                  f"--annotations {written}")
    state.report["selection"]["export"] = str(written)
    state.report["exported_only"] = True
    state.done = True


def export_images(run: RunContext, state: RunState, class_names, priors=None) -> Path:
    """Write the selected images to ``--export-annotations``: ``selection.csv``, the previews,
    ``class_names.txt`` (``class_names``, when known) and, for a folder, the Label Studio task
    file (with ``priors`` of the selected images, their prior as a pre-annotation). Returns
    the written ``selection.csv``."""
    config, data, indices = run.config, state.data, state.indices
    export = Path(config.export_annotations)
    with staged_folder(export, "--export-annotations") as staging:
        # written whole: into a temporary folder, then renamed file by file
        export_for_annotation(data.X_train, indices, staging, class_names=class_names,
                              files=data.files, overwrite=True)
        if config.dataset == "folder":
            # the labelling tool opens the original files (served from the input folder)
            write_label_studio_tasks(staging / "label_studio_tasks.json",
                                     [data.files[i] for i in indices], priors=priors,
                                     classes=None if priors is None else state.prior_names,
                                     **_label_studio.task_location(config))
    if class_names is None and (export / "class_names.txt").exists():
        (export / "class_names.txt").unlink()  # a stale list from an earlier export would mislead
    if config.dataset == "folder":
        state.report["label_studio"] = _label_studio.setup(
            config, export / "label_studio_tasks.json")
    if class_names is None and (state.distributed is None or state.distributed.is_main):
        # no class_names.txt was written: on import nothing tells a typo from a class
        print(f"as3l: warning: no class list (--classes): {export} has no class_names.txt, so "
              "on import every distinct label becomes a class, typos included ('sneaker' "
              "beside 'Sneaker', '?'); pass --classes A,B,C with --annotations, or write the "
              f"names one per line to {export / 'class_names.txt'}", file=sys.stderr)
    return export / "selection.csv"


def next_round_export_stage(run: RunContext, state: RunState) -> None:
    """The next labelling round (``--annotations`` with ``--export-annotations DIR``): write
    the new picks to label, the Label Studio tasks pre-filled with the prior pseudo-labels
    propagated from the labels so far, then end the run (no FlexMatch)."""
    config, files = run.config, state.data.files
    if not config.next_round:
        return
    new, labeled = state.indices, np.flatnonzero(state.annotated)
    written = export_images(run, state, class_list_in_force(config, state.data),
                            priors=state.priors[new])
    next_files = [*config.annotations, str(written)]
    state.report["round"] = {
        "labels_read": state.report["labels_read"],
        "new_picks": [files[i] for i in new],
        "excludes_labeled": not bool(np.isin(new, labeled).any()),
        "pre_annotations": (f"prior pseudo-labels (--prior {config.prior}) propagated from "
                            f"the {len(labeled)} labels so far"
                            if config.dataset == "folder" else None),
        "export": str(written),
        "next_annotations": next_files,
    }
    run.timer.say(f"next round: wrote {len(new)} new images to label (none of the "
                  f"{len(labeled)} labeled so far) and {written}; fill its 'label' column (or "
                  "label them in Label Studio, pre-filled with the prior), then run again with "
                  + next_annotations_flags(next_files))
    state.report["selection"]["export"] = str(written)
    state.report["exported_only"] = True
    state.done = True


def next_annotations_flags(label_files) -> str:
    """``--annotations A --annotations B ...``, quoted for a shell."""
    return " ".join(f"--annotations {shlex.quote(str(file))}" for file in label_files)


def annotate_stage(run: RunContext, state: RunState) -> None:
    """The labels to learn from: those read from ``--annotations`` (checked against the
    selection; in the next round, the labels so far, which the new picks avoid) or, in demo
    mode, the data set's own labels of the selected images."""
    config, data, indices = run.config, state.data, state.indices
    if config.next_round:
        read = state.report["labels_read"]
        run.timer.say(f"annotations: {read['count']} images labeled so far ("
                      + ", ".join(f"{source}: {n}" for source, n in read["files"].items())
                      + f"); the next round picks {len(indices)} others")
    elif config.annotations:
        state.report["annotations"] = verify_labels(run, state)
    else:
        if not labeled_mask(data.y_train)[indices].all():
            raise UserError("demo mode needs the data set's labels for the selected images; "
                            "use --export-annotations DIR, then --annotations DIR/selection.csv")
        y_partial = np.full(len(data.X_train), -1, dtype=np.int64)
        y_partial[indices] = data.y_train[indices]
        state.y_partial, state.class_names = y_partial, list(data.target_names)
    state.annotated = labeled_mask(state.y_partial)
    if data.test_labeled and np.asarray(state.y_partial).dtype.kind not in "iu":
        # labels of the user's own classes (--classes): the data set's test labels do not apply
        state.data = replace(data, test_labeled=False)
        run.timer.say("the labels are not the data set's classes: no test accuracy")
    # coverage of the labeled set actually used (never of labels nobody gave)
    used = {str(v) for v in np.asarray(state.y_partial, dtype=object)[state.annotated]}
    state.report["selection"]["class_coverage"] = len(used)
    state.report["selection"]["n_classes"] = len(state.class_names)
    state.selected_labels = label_names(state, indices)
    with run.output.writing("selection.csv") as temp:
        write_selection(temp, data.files, indices, state.selected_labels)
    if config.annotations and not config.next_round:
        # report.html shows what the user labeled (this run's picks may be other images;
        # the next round's picks are the images to label, shown as the selection)
        labeled_indices = np.flatnonzero(state.annotated).tolist()
        state.labeled_images = (labeled_indices, label_names(state, labeled_indices))


def verify_labels(run: RunContext, state: RunState) -> dict:
    """Which selected images were labeled, and which labeled images were not selected."""
    files, indices, source = state.data.files, state.indices, ", ".join(run.config.annotations)
    labeled = set(np.flatnonzero(labeled_mask(state.y_partial)).tolist())
    selected = set(indices)
    verification = {
        "path": str(source),
        "selected_labeled": [files[i] for i in indices if i in labeled],
        "selected_unlabeled": [files[i] for i in indices if i not in labeled],
        "labeled_not_selected": [files[i] for i in sorted(labeled - selected)],
    }
    say = run.timer.say
    say(f"annotations: {len(verification['selected_labeled'])} of {len(indices)} selected "
        f"images labeled in {source}")
    if verification["selected_unlabeled"]:
        say("  selected but not labeled: " + ", ".join(verification["selected_unlabeled"]))
    if verification["labeled_not_selected"]:
        say("  labeled but not among the selected (used as well): "
            + ", ".join(verification["labeled_not_selected"]))
    return verification


def label_names(state: RunState, indices) -> list[str]:
    """The label of each pool image in ``indices`` as a class name ("" when unlabeled)."""
    y_partial, class_names = state.y_partial, state.class_names
    by_class_index = (state.data.target_names is not None
                      and np.asarray(y_partial).dtype.kind in "iu")
    return ["" if not state.annotated[i]
            else class_names[int(y_partial[i])] if by_class_index else str(y_partial[i])
            for i in indices]


def propagate_stage(run: RunContext, state: RunState) -> None:
    """Propagate prior pseudo-labels from the labeled images to the whole pool, on the
    fine-tuned features and on PCA pixels, weighted by the label-free check of the two spaces
    (the learned features lose to pixels when SimSiam had too little to learn from) and
    tempered to the accuracy their graph parts expect; score them where the truth is known."""
    config, data = run.config, state.data
    check = run.timer.run(f"propagate prior pseudo-labels ({config.prior})", propagate_priors,
                          config, state)
    y_true, classes, priors = data.y_train, check.classes, check.label_distributions
    state.evaluable = (~state.annotated & labeled_mask(y_true)
                       & (np.asarray(state.y_partial).dtype.kind in "iu"))
    # names of the priors' classes (the propagator's), for the map's legend and the tasks
    state.prior_names = display_names(np.asarray(classes), state.class_names, data)
    state.priors, state.prior_classes = priors, classes
    state.report["feature_check"] = dict(feature_check_report(check),
                                         spaces=feature_space_names(run.config, state))
    # label-free, so reported with or without the truth
    state.report["prior"] = {"temperature": round(float(check.temperature), 4),
                             "estimated_accuracy": (None if check.estimated_accuracy is None
                                                    else float(check.estimated_accuracy))}
    evaluable = state.evaluable
    if evaluable.any():
        valid = np.isin(y_true[evaluable], classes)
        state.report["prior"].update({
            "accuracy": float(prior_accuracy(y_true[evaluable], priors[evaluable],
                                             classes=classes)),
            "ece": float(expected_calibration_error(y_true[evaluable], priors[evaluable],
                                                    classes=classes)),
            "ece_uncalibrated": float(expected_calibration_error(
                y_true[evaluable], check.uncalibrated[evaluable], classes=classes)),
            "covered_fraction": float(np.mean(check.covered)),
            "labels_seen_fraction": float(valid.mean()),
        })
        for space, prior in check.priors.items():  # each space's own, for the report
            state.report["prior"][f"accuracy_{space}"] = float(prior_accuracy(
                y_true[evaluable], prior[evaluable], classes=classes))


def propagate_priors(config: RunConfig, state: RunState):
    """The prior of the fine-tuned features and of PCA pixels (with ``--encoder``: of the
    pretrained encoder's fine-tuned features, of SimSiam's when it was trained too, and of
    PCA pixels at 32 px), weighted by their label-free scores and calibrated by a label-free
    temperature (:func:`~as3l_sklearn.diagnostics.compare_feature_spaces`)."""
    X = state.data.X_train
    propagator = make_propagator(config.prior, len(X), config.seed)
    if config.resolved_encoder is None:
        spaces = {"f_fine": state.fine_features}
    else:  # photos loaded at the encoder's size: the pixels are checked at the default's 32 px
        spaces = {"pretrained": state.fine_features}
        if state.simsiam_fine_features is not None:
            spaces["simsiam"] = state.simsiam_fine_features
        X = pixel_images(X, AUTO_MAX_SIDE["cpu"])
    spaces["pixels"] = pixel_features(X, random_state=config.seed)
    return compare_feature_spaces(spaces, state.y_partial, propagator=propagator,
                                  random_state=config.seed)


def feature_space_names(config: RunConfig, state: RunState) -> dict:
    """What each space of the feature check is, for the report."""
    spec = config.resolved_encoder
    if spec is None:
        return {"f_fine": f"SimSiam ({state.plan.backbone}) fine-tuned (Eq. 1)",
                "pixels": "PCA of the pixels"}
    names = {"pretrained": f"{spec.architecture} ({spec.weights_name or spec.file}), "
                           + ("tuned by SimSiam" if spec.tune else "frozen") + ", fine-tuned (Eq. 1)"}
    if state.simsiam_fine_features is not None:
        comparison = state.plan.simsiam_comparison
        names["simsiam"] = (f"SimSiam from scratch ({comparison['backbone']}, "
                            f"{comparison['steps']} steps), fine-tuned (Eq. 1)")
    names["pixels"] = f"PCA of the pixels at most {AUTO_MAX_SIDE['cpu']} px"
    return names


def feature_check_report(check) -> dict:
    """The report section of the feature check: the weight of each space and its scores."""
    return {"weights": {k: round(float(v), 3) for k, v in check.weights.items()},
            "choice": check.choice,
            "scores": {space: {k: (round(float(v), 4) if isinstance(v, (float, np.floating)) else v)
                               for k, v in scores.items()}
                       for space, scores in check.scores.items()}}


def train_stage(run: RunContext, state: RunState) -> None:
    """Train the prior-guided FlexMatch classifier from the SimSiam encoder, starting from its
    head fitted to the prior, for the steps the time budget allows at the measured speed (none
    under the floor: the model fitted to the prior)."""
    config, X = run.config, state.data.X_train
    steps = replanned_flexmatch_steps(run, state)
    classifier = make_classifier(config, state, steps)
    # set before the fit: after Ctrl-C during training the estimator keeps its weights so
    # far, and the run saves them (see _command.keep_partial_outputs)
    state.classifier = classifier
    state.monitor = monitor_set(config, state)
    name = ("fit the classifier to the prior pseudo-labels (no FlexMatch step)" if steps == 0
            else "train prior-guided FlexMatch")
    run.timer.run(name, classifier.fit, X, state.y_partial, prior_proba=state.priors,
                  **state.monitor)
    state.report["classifier"] = classifier_report(classifier, state.data)
    state.report["config"]["torch_settings"]["classifier"] = dict(classifier.torch_settings_)


def make_classifier(config: RunConfig, state: RunState, steps: int, **params):
    """The classifier of the run (``params`` override), ``steps`` FlexMatch steps."""
    settings = dict(encoder=state.embedder, prior_mode=config.prior_mode, threshold=config.threshold,
                    max_iter=steps, device=config.resolved_device, random_state=config.seed,
                    verbose=config.verbosity)
    settings.update(params)
    return PriorGuidedFlexMatchClassifier(**settings)


def replanned_flexmatch_steps(run: RunContext, state: RunState) -> int:
    """The FlexMatch steps that keep the time budget at the speed a few FlexMatch steps really
    ran (:func:`~._plan.replan_flexmatch`: the same rule whether SimSiam ran or came from the
    stage cache); none under the floor of useful steps."""
    plan, timer = state.plan, run.timer
    if not plan_measures_speed(plan):
        return plan.flexmatch_steps
    seconds = timer.run("time a few FlexMatch steps", probe_flexmatch_step, run.config, state)
    steps, slowdown = replan_flexmatch(plan, seconds)
    if state.distributed is not None:  # measured times differ per rank: all train rank 0's
        steps, slowdown = state.distributed.broadcast_object((steps, slowdown))
    state.report["plan"]["measured_seconds_per_flexmatch_step"] = round(seconds, 4)
    state.report["plan"]["measured_slowdown"] = round(slowdown, 2)
    if steps != plan.flexmatch_steps:
        if steps == 0:
            outcome = " (under the floor: the classifier will be the model fitted to the prior)"
        elif plan.flexmatch_steps == 0:
            outcome = " (over the floor of useful steps: FlexMatch trains)"
        else:
            outcome = ""
        timer.say(f"a FlexMatch step ran {slowdown:.1f}x the estimated time; FlexMatch steps "
                  f"{plan.flexmatch_steps} -> {steps} to keep the time budget{outcome}")
        state.report["plan"]["flexmatch_steps_replanned"] = steps
    elif plan.flexmatch_if_faster:
        timer.say(f"a FlexMatch step ran {slowdown:.1f}x the estimated time: still under the floor "
                  "of useful FlexMatch steps, the classifier will be the model fitted to the prior")
    return steps


def probe_flexmatch_step(config: RunConfig, state: RunState) -> float:
    """Seconds per FlexMatch step on this machine now, with the run's encoder, labels and
    prior (:func:`time_flexmatch_steps`)."""
    return time_flexmatch_steps(config, state, state.data.X_train, state.y_partial, state.priors)


#: images of the throw-away pool the FlexMatch step is timed on before SimSiam
PROBE_POOL_IMAGES = 512


def probe_flexmatch_before_simsiam(config: RunConfig, state: RunState, plan: Plan) -> float:
    """Seconds per FlexMatch step on this machine now, before SimSiam has run: an untrained
    encoder of the plan's backbone and size (one SimSiam step) and a uniform prior on the first
    pool images -- a step costs the same whatever the weights, the labels and the prior."""
    X = state.data.X_train[:PROBE_POOL_IMAGES]
    n_classes = max(2, min(10, len(X) // 2))
    encoder = SimSiamEmbedder(backbone=plan.backbone, image_size=list(plan.encoder_size),
                              max_steps=1, device=config.resolved_device,
                              random_state=config.seed).fit(X)
    y = np.full(len(X), -1)
    y[:n_classes] = np.arange(n_classes)
    return time_flexmatch_steps(config, state, X, y, np.full((len(X), n_classes), 1.0 / n_classes),
                                encoder=encoder)


def time_flexmatch_steps(config: RunConfig, state: RunState, X, y_partial, prior_proba,
                         **params) -> float:
    """The median seconds of :data:`PROBE_STEPS` FlexMatch steps (after one untimed step) of
    a throw-away classifier with the run's settings (``params`` override them) on
    ``(X, y_partial, prior_proba)``."""
    times = StepTimes()
    probe = make_classifier(config, state, PROBE_STEPS + 1, prior_start="none", self_check="off",
                            eval_every=PROBE_STEPS + 1, callbacks=[("probe_times", times)],
                            verbose=0, **params)
    probe.fit(X, y_partial, prior_proba=prior_proba)
    return float(np.median(np.diff(times.ends)))


class StepTimes(Callback):
    """The wall-clock time at the end of every training step."""

    def initialize(self):
        self.ends = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.ends.append(time.perf_counter())


def self_check_stage(run: RunContext, state: RunState) -> None:
    """What the run can say about its result without labels: the classifier against its own
    prior (and which model it returns), the steps run against the plan, the machine's load."""
    classifier, plan = state.classifier, state.plan
    checks = {"classifier": classifier.self_check_,
              "returned_model": ("fitted to the prior (no FlexMatch step)" if classifier.n_iter_ == 0
                                 else "fitted to the prior at the start (the trained one failed the checks)"
                                 if classifier.fell_back_ else f"after {classifier.n_iter_} FlexMatch steps"),
              "training": {"flexmatch_steps_planned": plan.flexmatch_steps,
                           "flexmatch_steps_run": int(classifier.n_iter_),
                           "simsiam_steps_planned": plan.simsiam_steps,
                           "simsiam_stopped_at": state.report.get("embedding", {}).get("stopped_at_step"),
                           "slowdown": measured_slowdown(state.report["plan"]),
                           "load_average": [round(v, 2) for v in os.getloadavg()]}}
    if "feature_check" in state.report:
        checks["features"] = state.report["feature_check"]
    state.report["self_checks"] = checks
    for line in describe_self_checks(checks):
        run.timer.say(line)


def measured_slowdown(plan_report: dict):
    """The machine's speed against the estimate, as last measured (before training, else
    before SimSiam); None when no step was timed."""
    if plan_report.get("measured_slowdown") is not None:
        return plan_report["measured_slowdown"]
    return plan_report.get("measured_before_simsiam", {}).get("slowdown")


def monitor_set(config: RunConfig, state: RunState) -> dict:
    """The ``fit`` keyword arguments of the test images FlexMatch monitors (none without a
    labeled test set).

    The test set only monitors training (a learning curve); no checkpoint is chosen on it,
    and the reported test accuracy is the final EMA model's. A subset keeps the ~20
    evaluations cheap on CPU; the final accuracy uses the whole test set.
    """
    data = state.data
    if not data.test_labeled:
        return {}
    monitored = np.arange(len(data.X_test))
    if len(monitored) > state.plan.n_monitored:
        monitored = np.sort(np.random.RandomState(config.seed).choice(
            monitored, state.plan.n_monitored, replace=False))
    return {"X_monitor": data.X_test[monitored], "y_monitor": data.y_test[monitored]}


def save_model_stage(run: RunContext, state: RunState) -> None:
    """Predict the pool (``predictions.csv``) and save the model (``model.joblib``)."""
    run.timer.run("predict the pool and save the model", write_model_outputs, run, state)


def write_model_outputs(run: RunContext, state: RunState) -> None:
    """Write ``predictions.csv`` (the person's label where there is one, the model's guess
    and each image's prior) and ``model.joblib`` of ``state.classifier``; also after Ctrl-C,
    from the weights trained so far."""
    config, data, classifier = run.config, state.data, state.classifier
    X = data.X_train
    classes = np.asarray(classifier.classes_)
    names = display_names(classes, state.class_names, data)
    proba = classifier.predict_proba(X)
    # the priors' columns follow the propagator's classes; align them with the classifier's
    aligned = np.zeros((len(X), len(classes)))
    for j, c in enumerate(classes):
        where = np.flatnonzero(np.asarray(state.prior_classes) == c)
        if where.size:
            aligned[:, j] = state.priors[:, where[0]]
    with run.output.writing("predictions.csv") as temp:
        write_predictions(temp, data.files, proba, classes, names, prior=aligned,
                          annotated=state.annotated,
                          labels=label_names(state, range(len(data.files))))
    with run.output.writing("model.joblib") as temp:
        save_model(temp, classifier, names, input_shape=X.shape[1:],
                   color_mode=data.color_mode, source=config.dataset)


def compare_stage(run: RunContext, state: RunState) -> None:
    """``--compare``: train random selection + plain FlexMatch with the same budget, encoder
    and steps; then keep the learning curves to draw."""
    baseline = train_baseline(run, state) if run.config.compare else None
    state.curves = {"AS3L (prior-guided)": monitor_rows(state.classifier),
                    "random + plain FlexMatch": monitor_rows(baseline)}


def train_baseline(run: RunContext, state: RunState):
    """The baseline classifier (None when a randomly chosen image has no label)."""
    config, X, y_true = run.config, state.data.X_train, state.data.y_train
    if state.classifier.n_iter_ == 0:
        run.timer.say("--compare skipped: this run trains no FlexMatch step to compare with")
        return None
    random_indices = make_selector("random", config.seed).fit(state.fine_features).select(
        config.budget)
    if not (labeled_mask(y_true)[random_indices].all()
            and np.asarray(state.y_partial).dtype.kind in "iu"):
        run.timer.say("--compare skipped: some randomly chosen images have no label")
        return None
    y_random = np.full(len(X), -1, dtype=np.int64)
    y_random[random_indices] = y_true[random_indices]
    # same SimSiam encoder and steps: the comparison isolates selection and priors
    plain = PriorGuidedFlexMatchClassifier(
        encoder=state.embedder, prior=None, max_iter=state.classifier.n_iter_,
        device=config.resolved_device, random_state=config.seed, verbose=config.verbosity)
    run.timer.run("baseline: random selection + plain FlexMatch", plain.fit, X, y_random,
                  **state.monitor)
    state.report["baseline"] = {
        "selection": {"selector": "random", "indices": [int(i) for i in random_indices],
                      "class_coverage": int(class_coverage(y_true, random_indices))},
        "classifier": classifier_report(plain, state.data),
    }
    return plain


def next_round_stage(run: RunContext, state: RunState) -> None:
    """Folder runs: every pool image as a Label Studio task (``label_studio_tasks.json``),
    for the next labelling round: the images a person labeled carry that label as an
    annotation, every other image its prior as a pre-annotation."""
    config, files = run.config, state.data.files
    if config.dataset != "folder":
        return
    labels = [label or None for label in label_names(state, range(len(files)))]
    with run.output.writing("label_studio_tasks.json") as temp:
        write_label_studio_tasks(temp, files, priors=state.priors, classes=state.prior_names,
                                 labels=labels, **_label_studio.task_location(config))
    state.report["label_studio"] = _label_studio.setup(
        config, run.output.path("label_studio_tasks.json"))


#: the run, stage by stage (see the module docstring)
PIPELINE = (
    start_stage,
    load_stage,
    read_annotations_stage,
    plan_stage,
    embed_stage,
    fine_tune_stage,
    select_stage,
    export_stage,
    annotate_stage,
    propagate_stage,
    next_round_export_stage,
    train_stage,
    self_check_stage,
    save_model_stage,
    compare_stage,
    next_round_stage,
)


def run_pipeline(run: RunContext, state: RunState) -> dict:
    """Run the stages of :data:`PIPELINE` on ``state`` until one sets ``state.done``;
    return the report.

    ``state`` holds what is done, stage by stage, so that a run stopped by an exception
    (Ctrl-C) can still write it (see :func:`~as3l_sklearn.cli._command.run_command`).
    """
    for stage in PIPELINE:
        stage(run, state)
        if state.done:
            break
    return state.report


# --------------------------------------------------------------------------------------------
# report sections


def display_names(classes, class_names, data: PoolData) -> list[str]:
    """Class names aligned with a classifier's ``classes`` (indices into the data set's
    names, or the label strings themselves)."""
    if data.target_names is not None and classes.dtype.kind in "iu":
        return [str(data.target_names[int(c)]) for c in classes]
    return [str(c) for c in classes]


def monitor_rows(model) -> list:
    """The history rows of ``model`` that hold a monitored test accuracy."""
    if model is None:
        return []
    return [row for row in (getattr(model, "history_", None) or [])
            if "monitor_accuracy" in row]


def classifier_report(classifier, data: PoolData) -> dict:
    """The report section of a trained classifier: steps, final test accuracy, history."""
    fell_back = bool(getattr(classifier, "fell_back_", False))
    model = ("final EMA weights (no checkpoint chosen on any data)" if not fell_back else
             "the model fitted to the prior pseudo-labels at the start: the final weights failed "
             "the label-free checks against the prior (no labeled data used to choose)")
    result = {"steps": int(classifier.n_iter_), "model": model, "fell_back": fell_back}
    if data.test_labeled:
        result["test_accuracy"] = float(classifier.score(data.X_test, data.y_test))
    history = getattr(classifier, "history_", None) or []
    result["history"] = [
        {k: v for k, v in row.items() if k in ("step", "monitor_accuracy", "mask_rate", "loss")}
        for row in history
    ]
    return result

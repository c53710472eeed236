"""The embed stage's work: SimSiam trained on the pool, taken from the stage cache, or -- for
a folder that gained a few images since SimSiam was trained on it -- the cached encoder
applied to the pool as it is now.

Training SimSiam is the long part of a run (minutes); fine-tuning, selection and propagation
take seconds. Five photos added to a folder of three hundred should not cost the minutes
again: the encoder trained on the folder still describes it. So the stage cache records, per
folder and SimSiam settings, the images SimSiam was trained on; when at most
:data:`REUSE_MAX_NEW_SHARE` of the pool is new since then, the cached encoder embeds the
whole pool (one forward pass) and SimSiam is not trained again. More new images than that,
or ``--retrain-embedding``, train it on the pool as it is.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass

import joblib
from skorch.callbacks import Callback

from ..embedding import SimSiamEmbedder
from ..nn._step_net import TrainingInterruptedWarning
from ._progress import interrupt_requested

#: the timed step of SimSiam (its time re-plans FlexMatch)
EMBED_STEP = "embed (SimSiam)"
#: above this share of new images in the pool, SimSiam is trained again
REUSE_MAX_NEW_SHARE = 0.2


class SimSiamTimeLimit(Callback):
    """Ends SimSiam's training once it has run ``min_steps`` steps and ``seconds`` seconds.

    The plan gives SimSiam more than its default steps when the time budget leaves FlexMatch
    none (:data:`._plan.SIMSIAM_STEPS_WITHOUT_FLEXMATCH`); those extra steps are planned at
    the estimated speed, so on a machine slower than that (a busy one) they would overrun the
    budget. This callback trains them only while SimSiam's time lasts; the default steps are
    always trained. ``stopped_at_`` is the step it stopped at (None: not stopped).
    """

    def __init__(self, seconds: float, min_steps: int):
        self.seconds = seconds
        self.min_steps = min_steps

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.stopped_at_ = None

    def on_batch_end(self, net, training=False, **kwargs):
        if (training and net.steps_done >= self.min_steps
                and time.perf_counter() - self.start_ > self.seconds):
            self.stopped_at_ = int(net.steps_done)
            raise KeyboardInterrupt  # skorch ends the fit and keeps the weights


def fit_embedding(X, params: dict, verbose: int, time_limit: SimSiamTimeLimit | None = None):
    """Fit SimSiam on ``X``; return the fitted embedder and its features of ``X``.

    ``time_limit`` (not part of the stage cache's key: it does not change what a fit that
    runs to its end computes) may end the fit early; a fit it ended is not cached."""
    extra = {} if time_limit is None else {"callbacks": [("time_limit", time_limit)]}
    embedder = SimSiamEmbedder(**params, **extra, verbose=verbose)
    with warnings.catch_warnings():
        if time_limit is not None:  # its stop is reported by the run, not as an interruption
            warnings.filterwarnings("ignore", category=TrainingInterruptedWarning)
        features = embedder.fit_transform(X)
    if interrupt_requested.is_set():
        raise KeyboardInterrupt  # never cache a fit that Ctrl-C cut short
    return embedder, features


def embed_with(embedder, X):
    """``(embedder, features of X)`` with an encoder trained before."""
    features = embedder.transform(X)
    if interrupt_requested.is_set():
        raise KeyboardInterrupt
    return embedder, features


def pool_identity(config, params: dict, image_shape) -> str | None:
    """The key of "this folder with these SimSiam settings", whatever images it holds now;
    None for the data sets whose pool does not change (no images are added to them).

    SimSiam's step count is left out when the plan chose it: the plan depends on the number
    of images, and a few more images should not make another encoder.
    """
    if config.dataset != "folder":
        return None
    planned_steps = config.embed_steps is None and config.embed_epochs is None
    settings = {k: v for k, v in params.items() if not (planned_steps and k == "max_steps")}
    return joblib.hash({"folder": os.path.realpath(config.path), "settings": settings,
                        "image_shape": [int(s) for s in image_shape]})


@dataclass
class Decision:
    """Whether the cached encoder of an earlier run on the folder embeds this pool."""

    reuse: bool
    reason: str
    report: dict
    cached: tuple | None = None  # (embedder, features) of the earlier run, when reused


def reuse_decision(cache, identity: str | None, files) -> Decision:
    """Reuse the encoder SimSiam trained on this folder before, when at most
    :data:`REUSE_MAX_NEW_SHARE` of the pool is new since then."""
    record = cache.load_record(identity) if identity is not None else None
    if record is None or not isinstance(record.get("files"), list):
        return Decision(False, "", {"source": "trained"})
    trained_on = set(record["files"])
    new = [f for f in files if f not in trained_on]
    share = len(new) / max(1, len(files))
    facts = {"trained_on": len(trained_on), "new_images": len(new),
             "new_share": round(share, 4), "new_files": new[:10]}
    if share > REUSE_MAX_NEW_SHARE:
        return Decision(False, (
            f"{len(new)} of the {len(files)} images ({share:.0%}) are new since SimSiam was "
            f"trained on this folder, more than {REUSE_MAX_NEW_SHARE:.0%}: SimSiam is trained "
            "again on the whole pool"), dict(facts, source="trained"))
    found, cached = cache.load_key(fit_embedding, str(record.get("key")),
                                   what="the folder's SimSiam encoder")
    if not found:
        return Decision(False, "", {"source": "trained"})
    return Decision(True, (
        f"SimSiam was trained on this folder by an earlier run ({len(trained_on)} images); "
        f"{len(new)} images ({share:.1%} of the pool, at most {REUSE_MAX_NEW_SHARE:.0%}) are "
        "new: its encoder embeds the pool as it is now, without training SimSiam again "
        "(--retrain-embedding trains it again)"), dict(facts, source="cached encoder"), cached)


def embed_pool(run, state, params: dict, time_limit: SimSiamTimeLimit | None = None):
    """``(embedder, features)`` of the pool: from the stage cache (the same images and
    settings), with the cached encoder of the folder (a few new images), or trained (within
    ``time_limit`` when given: a fit it stopped is reported and not cached)."""
    config, timer, cache = run.config, run.timer, run.cache
    X, files, verbose = state.data.X_train, state.data.files, config.verbosity
    key = cache.key(fit_embedding, X, params, verbose) if cache.enabled else ""
    found, value = cache.load_key(fit_embedding, key, what=f"'{EMBED_STEP}'")
    if found:  # the same images and settings: bit-identical to training again
        state.report["embedding"] = {"source": "cache"}
        return timer.run(EMBED_STEP, lambda: value, cached=True)
    identity = pool_identity(config, params, X.shape[1:])
    if config.retrain_embedding:
        decision = Decision(False, "--retrain-embedding: SimSiam is trained on the pool",
                            {"source": "trained"})
    else:
        decision = reuse_decision(cache, identity, files)
    state.report["embedding"] = dict(decision.report, reason=decision.reason)
    if decision.reason:
        timer.say(decision.reason)
    if decision.reuse:
        return timer.run(EMBED_STEP, embed_with, decision.cached[0], X, cached=True)
    value = timer.run(EMBED_STEP, fit_embedding, X, params, verbose, time_limit)
    if time_limit is not None and time_limit.stopped_at_ is not None:
        state.report["embedding"]["stopped_at_step"] = time_limit.stopped_at_
        timer.say(f"SimSiam stopped at step {time_limit.stopped_at_:,} of {params['max_steps']:,}: "
                  f"its share of the time budget ({time_limit.seconds:.0f} s) was spent (the "
                  "machine ran slower than estimated); the encoder is not cached")
        return value
    cache.save_key(fit_embedding, key, value)
    if identity is not None:
        cache.save_record(identity, {"files": list(files), "key": key})
    return value

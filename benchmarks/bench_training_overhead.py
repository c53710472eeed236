"""Training-loop overhead: a step of the estimators vs a plain torch loop doing the same work.

Both torch estimators train through skorch's ``fit_loop`` on the shared step base
(``as3l_sklearn/nn/_step_net.py``): callbacks, history, the ``LRScheduler``, batch iterators.
This script times what that costs per optimizer step against a plain ``for`` loop over the
same module, batch size, augmentations, loss, optimizer, learning-rate schedule and (for
FlexMatch) thresholds, learning status and EMA, on scikit-learn's 8x8 digits (1,797 images):

* SimSiam: ``SimSiamEmbedder`` at its CPU defaults (``small_cnn_2x2``, 512/128 heads, batch
  64) vs the same module (taken from an untrained embedder, augmentation included) in a loop
  that shuffles, converts, draws two views, and steps SGD with the warm-up + cosine rate;
* FlexMatch: ``PriorGuidedFlexMatchClassifier`` at its CPU defaults (``small_cnn``, batch 64
  labeled + 7 x 64 unlabeled, 40 labels) vs a loop with the same module, weak and strong
  augmentations, masked pseudo-label loss, learning status, cosine rate and EMA update.

The two run interleaved step by step, in one process with one torch thread: a callback of the
estimator runs one step of the plain loop between two estimator steps and times it apart, so
that load from other processes on a shared machine hits both alike. An estimator step is timed
from the end of that plain step to the start of the next step (iterator, callbacks and history
included; steps that cross an epoch boundary, where the estimators run their per-epoch
monitors and records, are left out). Each estimator step and the plain step that follows it
form a pair; a fit's step ratio is the median over its pairs of estimator / plain time (robust
to load that changes from second to second, which the ratio of the two median step times,
also reported, is not). Each fit is also timed whole. ``--rounds`` fits of each network; the
ratio reported is the median over the rounds.

Usage::

    nice -n 10 python benchmarks/bench_training_overhead.py              # 3 rounds
    python benchmarks/bench_training_overhead.py --rounds 1 --simsiam-steps 40 --flexmatch-steps 40   # a quick check
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402


# ----------------------------------------------------------------------------- timing
def _paired_clock(plain):
    """A skorch callback timing every training step of the estimator and, between two of its
    steps, one step of the ``plain`` loop (its own time), so that both see the same load."""
    from skorch.callbacks import Callback

    class PairedClock(Callback):
        def initialize(self):
            self.estimator_times_, self.plain_times_, self.pair_ratios_, self.last_ = [], [], [], None
            return self

        def on_epoch_begin(self, net, **kwargs):
            self.last_ = None  # the epoch boundary (monitors, records) is not a step

        def on_batch_begin(self, net, training=False, **kwargs):
            if not training:
                return
            now = time.perf_counter()
            if self.last_ is not None:
                self.estimator_times_.append(now - self.last_)
            plain.step(len(self.plain_times_))
            self.plain_times_.append(time.perf_counter() - now)
            if self.last_ is not None:  # the estimator step just before and this plain step: a pair
                self.pair_ratios_.append(self.estimator_times_[-1] / self.plain_times_[-1])
            self.last_ = time.perf_counter()

    return PairedClock()


# ----------------------------------------------------------------------------- SimSiam
class SimSiamPlain:
    """The SimSiam loop written plainly: shuffle, convert, two views, loss, SGD with the schedule."""

    def __init__(self, X, steps, seed):
        import torch

        from as3l_sklearn import SimSiamEmbedder
        from as3l_sklearn.embedding._simsiam import AUTO_LR, WARMUP_FRACTION

        # the module the estimator trains (encoder in channels_last, heads, augmentation), untrained
        frozen = SimSiamEmbedder(max_epochs=0, device="cpu", n_threads=1, random_state=seed).fit(X)
        self.module = copy.deepcopy(frozen.net_.module_).train()
        self.batch_size, self.steps = 64, steps
        self.lr = AUTO_LR["cpu"] * math.sqrt(self.batch_size / 256)
        self.warmup = int(np.ceil(WARMUP_FRACTION * steps))
        self.optimizer = torch.optim.SGD(self.module.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        self.images = torch.from_numpy(X)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.position, self.losses = torch.randperm(len(X), generator=self.generator), 0, []

    def step(self, step):
        import torch

        from as3l_sklearn.embedding._simsiam import step_learning_rate
        from as3l_sklearn.nn import simsiam_loss
        from as3l_sklearn.utils._image_source import uint8_batch_to_float

        n, batch_size, module = len(self.images), self.batch_size, self.module
        if self.position + batch_size > n:  # the incomplete last batch is dropped
            self.order, self.position = torch.randperm(n, generator=self.generator), 0
        index = self.order[self.position:self.position + batch_size]
        self.position += batch_size
        x = uint8_batch_to_float(self.images[index])
        views = [module.augment(x, generator=self.generator).contiguous(memory_format=torch.channels_last)
                 for _ in range(2)]
        loss = simsiam_loss(*module.views_forward(*views))
        for group in self.optimizer.param_groups:
            group["lr"] = step_learning_rate(step, self.lr, self.steps, self.warmup)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.losses.append(loss.item())


def simsiam_pair(X, steps, seed):
    from as3l_sklearn import SimSiamEmbedder

    setup = time.perf_counter()
    plain = SimSiamPlain(X, steps, seed)
    setup = time.perf_counter() - setup
    clock = _paired_clock(plain)
    start = time.perf_counter()
    embedder = SimSiamEmbedder(max_steps=steps, device="cpu", n_threads=1, random_state=seed,
                               callbacks=[("clock", clock)]).fit(X)
    losses = [b["train_loss"] for row in embedder.net_.history for b in row["batches"]]
    return clock, time.perf_counter() - start, setup, float(np.mean(losses[-20:])), float(np.mean(plain.losses[-20:]))


# ----------------------------------------------------------------------------- FlexMatch
class FlexMatchPlain:
    """The FlexMatch loop written plainly, with the package's arithmetic (thresholds, status, EMA)."""

    def __init__(self, X, y_partial, steps, seed):
        import torch

        from as3l_sklearn.augment import StrongAugment, WeakAugment
        from as3l_sklearn.classification._net import ClassifierModule, param_groups_without_decay
        from as3l_sklearn.nn import make_backbone

        self.batch_size, self.mu, self.lr, self.n_classes, self.steps = 64, 7, 0.03, 10, steps
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            backbone = make_backbone("auto", in_channels=1, image_size=(8, 8))
            self.module = ClassifierModule(backbone, self.n_classes).train()
        self.ema = copy.deepcopy(self.module)
        self.optimizer = torch.optim.SGD(param_groups_without_decay(self.module, 5e-4), lr=self.lr, momentum=0.9,
                                         nesterov=True)
        self.weak, self.strong = WeakAugment(image_size=(8, 8)), StrongAugment(image_size=(8, 8))
        self.images, self.y = torch.from_numpy(X), torch.from_numpy(y_partial)
        self.labeled_idx = torch.from_numpy(np.flatnonzero(y_partial >= 0))
        self.status = torch.full((len(X),), -1, dtype=torch.int64)
        self.generator = torch.Generator().manual_seed(seed)
        self.losses = []

    def step(self, step):
        import torch
        from torch.nn import functional as F

        from as3l_sklearn.classification._net import (cosine_lr, ema_update, flexmatch_class_beta, flexmatch_mask,
                                                      update_learning_status)
        from as3l_sklearn.utils._image_source import gather_float

        g, batch_size = self.generator, self.batch_size
        labeled = self.labeled_idx[torch.randint(len(self.labeled_idx), (batch_size,), generator=g)]
        unlabeled = torch.randint(len(self.images), (self.mu * batch_size,), generator=g)
        x_u = gather_float(self.images, unlabeled, "cpu")
        inputs = torch.cat([self.weak(gather_float(self.images, labeled, "cpu"), generator=g),
                            self.weak(x_u, generator=g), self.strong(x_u, generator=g)])
        logits = self.module(inputs)
        logits_l, (logits_uw, logits_us) = logits[:batch_size], logits[batch_size:].chunk(2)
        with torch.no_grad():
            probs = torch.softmax(logits_uw, dim=1)
            pseudo, mask = flexmatch_mask(probs, flexmatch_class_beta(self.status, self.n_classes), 0.95)
            update_learning_status(self.status, unlabeled, probs, 0.95)
        loss = F.cross_entropy(logits_l, self.y[labeled]) + (
            F.cross_entropy(logits_us, pseudo, reduction="none") * mask).mean()
        for group in self.optimizer.param_groups:
            group["lr"] = cosine_lr(self.lr, step, self.steps)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        ema_update(self.ema, self.module, min(0.999, (1.0 + step) / (10.0 + step)))
        self.losses.append(loss.item())


def flexmatch_pair(X, y_partial, steps, seed):
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier

    setup = time.perf_counter()
    plain = FlexMatchPlain(X, y_partial, steps, seed)
    setup = time.perf_counter() - setup
    clock = _paired_clock(plain)
    start = time.perf_counter()
    clf = PriorGuidedFlexMatchClassifier(max_iter=steps, device="cpu", n_threads=1, random_state=seed,
                                         callbacks=[("clock", clock)]).fit(X, y_partial)
    return (clock, time.perf_counter() - start, setup, float(np.mean([h["loss"] for h in clf.history_[-3:]])),
            float(np.mean(plain.losses[-20:])))


# ----------------------------------------------------------------------------- main
def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def run(args):
    from as3l_sklearn.datasets import load_digits_images

    X, y = load_digits_images()
    y_partial = np.full(len(y), -1)
    for label in range(10):  # 4 labels per class
        y_partial[np.flatnonzero(y == label)[:4]] = label
    pairs = {"SimSiam": lambda steps: simsiam_pair(X, steps, args.seed),
             "FlexMatch": lambda steps: flexmatch_pair(X, y_partial, steps, args.seed)}
    steps = {"SimSiam": args.simsiam_steps, "FlexMatch": args.flexmatch_steps}
    # untimed warm-up: the first optimizer and DataLoader of a process import torch modules
    # (seconds), which would otherwise land on whichever run comes first
    for pair in pairs.values():
        pair(25)
    runs = []
    for round_index in range(args.rounds):
        for name, pair in pairs.items():
            clock, fit_seconds, setup, loss, plain_loss = pair(steps[name])
            estimator_ms = 1e3 * statistics.median(clock.estimator_times_)
            plain_ms = 1e3 * statistics.median(clock.plain_times_)
            plain_total = sum(clock.plain_times_)
            runs.append({
                "round": round_index, "network": name, "steps": len(clock.plain_times_),
                "timed estimator steps": len(clock.estimator_times_),
                "estimator step ms": estimator_ms, "plain step ms": plain_ms,
                "ratio of medians": estimator_ms / plain_ms, "paired ratio": statistics.median(clock.pair_ratios_),
                # the estimator's whole fit without the plain steps run inside it, and the plain
                # loop's setup (module built by an untrained estimator) plus its steps
                "estimator fit s": fit_seconds - plain_total, "plain loop s": setup + plain_total,
                "final loss (estimator / plain)": f"{loss:.3f} / {plain_loss:.3f}", "load average": _load_average()})
            print(runs[-1], flush=True)
    return runs


def summarize(runs, args):
    rows = []
    for name in ("SimSiam", "FlexMatch"):
        group = [r for r in runs if r["network"] == name]
        rows.append({
            "network": name,
            "steps per fit": group[0]["steps"],
            "estimator step ms": statistics.median(r["estimator step ms"] for r in group),
            "plain step ms": statistics.median(r["plain step ms"] for r in group),
            "step ratio (median)": statistics.median(r["paired ratio"] for r in group),
            "step ratio per round": " / ".join(f"{r['paired ratio']:.3f}" for r in group),
            "ratio of median step times per round": " / ".join(f"{r['ratio of medians']:.3f}" for r in group),
            "whole-fit ratio (median)": statistics.median(r["estimator fit s"] / r["plain loop s"] for r in group),
        })
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--simsiam-steps", type=int, default=150)
    parser.add_argument("--flexmatch-steps", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="training_overhead")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    load_before = _load_average()
    runs = run(args)
    rows = summarize(runs, args)
    settings = {k: v for k, v in vars(args).items() if k != "name"}
    settings["load average before / after (1, 5, 15 min)"] = [load_before, _load_average()]
    save_results(f"{args.name}_runs", runs, title="Training-loop overhead: every run", settings=settings)
    save_results(args.name, rows, title="Training-loop overhead: estimator step vs plain torch loop",
                 settings=settings, notes=(
                     "Median time of one optimizer step, one torch thread, 8x8 digits. The plain loop "
                     "takes one step between two steps of the estimator (run by a callback, timed "
                     "apart), so both see the same load; an estimator step is timed from the end of "
                     "that plain step to the start of the next step (iterator, callbacks and history "
                     "included; steps crossing an epoch boundary left out). 'step ratio': per fit the "
                     "median over the steps of estimator step / the plain step after it, then the median "
                     "over the rounds; 'whole-fit ratio' compares whole fits "
                     "(estimator: setup, per-epoch monitors and records included; plain: building "
                     "the module and its steps). Every run, with the load average when it ended, is "
                     f"in {args.name}_runs."))


if __name__ == "__main__":
    main()

"""The ``as3l`` plan's per-step costs, measured again: seconds per SimSiam and FlexMatch step.

The plan (``as3l_sklearn/cli/_plan.py``) models a step as ``overhead + per_pixel * h * w +
per_extra_channel * h * w * (c - 1)`` at the encoder's ``h x w x c``. This script measures the
steps the way the command trains them -- ``SimSiamEmbedder(backbone="small_cnn_2x2")`` at the
images' own size, then ``PriorGuidedFlexMatchClassifier`` on that encoder with a prior, both at
their CPU defaults (``n_threads="auto"``, batch 64, FlexMatch 64 labeled + 7 x 64 unlabeled
in a weak and a strong view) -- and fits the three constants by least squares weighted by
``1 / measured`` (relative error, so the small images count as much as the large).

Each estimator is fitted with ``n1`` and ``n2`` steps and the cost per step is
``(t2 - t1) / (n2 - n1)``: start-up, the first allocations and the per-fit work cancel.
Pools: scikit-learn's digits (1,257 images 8x8x1), Fashion-MNIST (5,000 images 28x28x1, when
the Debian package is installed), and random uint8 images at 16x16x1, 32x32x1 and 32x32x3
(2,000 each: the cost of a step does not depend on what the pixels show). The 1-minute load
average before each fit is recorded: run it on an otherwise idle machine.

Usage::

    python benchmarks/bench_plan_constants.py                 # all sizes (about 6 minutes on 2 cores)
    python benchmarks/bench_plan_constants.py --sizes 8 28    # a quick check
    python benchmarks/bench_plan_constants.py --stages simsiam --steps 100 400 --name plan_constants_simsiam
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

#: (side, channels) of each measured pool
SHAPES = {8: (8, 1), 16: (16, 1), 28: (28, 1), 32: (32, 1), 323: (32, 3)}


def load_pool(key: int, rng: np.random.RandomState):
    """``(X, y, name)``: a pool of images (N, H, W, C) uint8 with labels (random where none)."""
    from as3l_sklearn import datasets

    side, channels = SHAPES[key]
    if key == 8:
        X, y = datasets.load_digits_images(return_X_y=True)
        return X[:1257], y[:1257], "digits"
    if key == 28:
        try:
            X, y = datasets.load_fashion_mnist(split="train", return_X_y=True)
        except datasets.DatasetNotFoundError:
            pass  # random images of the same shape cost the same
        else:
            keep = rng.choice(len(X), 5000, replace=False)
            return np.asarray(X)[keep], np.asarray(y)[keep], "fashion-mnist"
    X = rng.randint(0, 256, size=(2000, side, side, channels), dtype=np.uint8)
    return X, rng.randint(0, 10, size=2000), "random"


def timed(fit) -> float:
    start = time.perf_counter()
    fit()
    return time.perf_counter() - start


def measure(key: int, n1: int, n2: int, seed: int, stages=("simsiam", "flexmatch")) -> dict:
    """Seconds per SimSiam and per FlexMatch step on one pool (the ``stages`` measured)."""
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier
    from as3l_sklearn.embedding import SimSiamEmbedder

    rng = np.random.RandomState(seed)
    X, y, name = load_pool(key, rng)
    side, channels = SHAPES[key]
    y_partial = np.full(len(y), -1)
    first = [np.flatnonzero(y == c)[0] for c in np.unique(y)]
    y_partial[first] = y[first]
    # a prior as the command passes one: mostly right, never certain
    prior = np.full((len(y), 10), 0.2 / 9)
    prior[np.arange(len(y)), y] = 0.8

    def simsiam(steps):
        return SimSiamEmbedder(backbone="small_cnn_2x2", max_steps=steps, random_state=seed).fit(X)

    simsiam(2)  # the first fit of a process pays for imports and first allocations
    load = os.getloadavg()[0]
    row = {"pool": name, "h x w x c": f"{side}x{side}x{channels}", "pixels": side * side,
           "channels": channels, "load_before": round(load, 2)}
    if "simsiam" in stages:
        sim = [timed(lambda n=n: simsiam(n)) for n in (n1, n2)]
        row["simsiam_s_per_step"] = round((sim[1] - sim[0]) / (n2 - n1), 4)
    if "flexmatch" not in stages:
        return row
    encoder = simsiam(5)

    def flexmatch(steps):
        return PriorGuidedFlexMatchClassifier(encoder=encoder, max_iter=steps, random_state=seed,
                                              verbose=0).fit(X, y_partial, prior_proba=prior)

    flex = [timed(lambda n=n: flexmatch(n)) for n in (n1, n2)]
    row["flexmatch_s_per_step"] = round((flex[1] - flex[0]) / (n2 - n1), 4)
    return row


def fit_constants(rows: list[dict], column: str) -> tuple[tuple[float, float, float], float]:
    """``((overhead, per_pixel, per_extra_channel_pixel), worst)``: the constants by least
    squares weighted by ``1 / measured`` (relative error), and the fit's worst relative error."""
    A = np.array([[1.0, r["pixels"], r["pixels"] * (r["channels"] - 1)] for r in rows])
    t = np.array([r[column] for r in rows])
    if not any(r["channels"] > 1 for r in rows):
        A[:, 2] = 0.0  # no colour pool: the channel constant is not identified, it stays 0
    w = 1.0 / t
    coef, *_ = np.linalg.lstsq(A * w[:, None], t * w, rcond=None)
    coef = np.maximum(coef, 0.0)
    worst = float(np.max(np.abs(A @ coef - t) / t))
    return tuple(float(c) for c in coef), worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SHAPES),
                        help="pools to measure: 8 16 28 32 and 323 (32x32x3)")
    parser.add_argument("--steps", type=int, nargs=2, default=(20, 60), metavar=("N1", "N2"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stages", nargs="+", choices=("simsiam", "flexmatch"),
                        default=["simsiam", "flexmatch"],
                        help="what to time (SimSiam needs longer windows: its epochs end with "
                             "label-free monitors, and its steps slow down after the first 100-200)")
    parser.add_argument("--name", default="plan_constants")
    args = parser.parse_args(argv)
    rows = []
    for key in args.sizes:
        rows.append(measure(key, *args.steps, args.seed, args.stages))
        print(rows[-1], flush=True)
    notes = []
    for column, label in (("simsiam_s_per_step", "SimSiam"), ("flexmatch_s_per_step", "FlexMatch")):
        if column not in rows[0]:
            continue
        (overhead, per_pixel, per_channel), worst = fit_constants(rows, column)
        notes.append(f"{label}: overhead {overhead:.3g} s, per pixel {per_pixel:.3g} s, per extra-channel "
                     f"pixel {per_channel:.3g} s (worst relative error of the fit {worst:.0%})")
    save_results(args.name, rows, title="Seconds per training step as the as3l command trains",
                 settings={"steps": list(args.steps), "seed": args.seed, "sizes": args.sizes,
                           "stages": args.stages},
                 notes="\n".join(f"* {n}" for n in notes))


if __name__ == "__main__":
    main()

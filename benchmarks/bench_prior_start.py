"""Where training starts: the head fitted to the prior against today's random head, FlexMatch's
against FreeMatch's thresholds, and what the label-free self-check returns.

For each data set, label budget and seed (one cached SimSiam encoder per data set and seed,
labels chosen by the ``as3l`` default selector, the prior of the ``as3l`` command: the
``CombinedPropagator`` on the fine-tuned features and on PCA pixels, weighted by the feature
check and calibrated by its label-free temperature), from the same encoder and the same
number of steps:

* ``prior``: the prior pseudo-labels (pool accuracy on the unlabeled images);
* ``prior-fitted head``: ``max_iter=0``, the linear head fitted to the prior on the frozen
  encoder (what training now starts from, and what the self-check falls back to);
* ``FlexMatch + prior, random head``: the paper's start (``prior_start="none"``), today's;
* ``FlexMatch + prior, head start``: ``prior_start="head"``, the final model;
* ``FreeMatch + prior, head start``: ``threshold="freematch"``, the final model;
* ``... returned by the self-check``: what ``self_check="fallback"`` returns (the final model,
  or the prior-fitted head when the final one fails the label-free checks; the head is the
  ``max_iter=0`` model, so its accuracy is read from that row);
* ``random labels + plain FlexMatch``: the semi-supervised peer with stratified random labels.

Every accuracy is the final (or the self-check's) model's on held-out test images; no
checkpoint is chosen on labeled data.

Usage::

    python benchmarks/bench_prior_start.py                 # digits and Fashion-MNIST, 3 seeds
    python benchmarks/bench_prior_start.py --data digits --seeds 0 --max-iter 100
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

from as3l_sklearn import (ClusterFineTuner, PriorGuidedFlexMatchClassifier,  # noqa: E402
                          SimSiamEmbedder, StableCoverSelector)
from as3l_sklearn.cli._stages import make_propagator  # noqa: E402
from as3l_sklearn.diagnostics import compare_feature_spaces, pixel_features  # noqa: E402
from as3l_sklearn.datasets import load_digits_images, load_fashion_mnist  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache" / "prior_start"


def load(name: str, seed: int, n_fashion: int):
    """(X_pool, y_pool, X_test, y_test): digits split 70/30 by seed; Fashion-MNIST a random
    pool from training images < 50,000 and 2,000 test images."""
    if name == "digits":
        X, y = load_digits_images(return_X_y=True)
        pool, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=seed)
        return X[pool], y[pool], X[test], y[test]
    X, y = load_fashion_mnist(split="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(split="test", return_X_y=True)
    rng = np.random.RandomState(seed)
    pool = np.sort(rng.choice(50_000, n_fashion, replace=False))
    test = np.sort(rng.choice(len(y_test), 2000, replace=False))
    return X[pool], y[pool], X_test[test], y_test[test]


def encoder(X, seed: int, steps: int):
    """The SimSiam encoder of the ``as3l`` CPU defaults (cached on disk by data and seed)."""
    key = hashlib.sha1(X.tobytes() + f"{seed}-{steps}".encode()).hexdigest()[:16]
    path = CACHE / f"simsiam-{key}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    embedder = SimSiamEmbedder(backbone="small_cnn_2x2", max_steps=steps, device="cpu",
                               random_state=seed).fit(X)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(embedder))
    return embedder


def labels_and_prior(embedder, X, y, budget: int, seed: int):
    f_fine = ClusterFineTuner(n_clusters=budget, random_state=seed, device="cpu").fit_transform(
        embedder.transform(X))
    chosen = StableCoverSelector(random_state=seed).fit(f_fine).select(budget)
    y_partial = np.full(len(y), -1)
    y_partial[chosen] = y[chosen]
    # the prior of the as3l command: f_fine and PCA pixels weighted by the feature check,
    # with its label-free temperature
    check = compare_feature_spaces({"f_fine": f_fine, "pixels": pixel_features(X, random_state=seed)},
                                   y_partial, propagator=make_propagator("combined", len(X), seed),
                                   random_state=seed)
    return y_partial, check.label_distributions, np.asarray(check.classes)


def prior_row(base, prior, classes, y, y_partial) -> dict:
    """The prior's accuracy on the unlabeled pool images (its columns are ``classes``: a class
    no selected image has gets none)."""
    unlabeled = y_partial == -1
    predicted = classes[prior[unlabeled].argmax(1)]
    return dict(base, method="prior", accuracy=float(np.mean(predicted == y[unlabeled])), pool=True,
                classes_labeled=int(len(classes)))


def stratified_random(y, budget: int, seed: int):
    rng = np.random.RandomState(seed)
    classes = np.unique(y)
    per_class = [budget // len(classes) + (i < budget % len(classes)) for i in range(len(classes))]
    chosen = np.concatenate([rng.choice(np.flatnonzero(y == c), k, replace=False)
                             for c, k in zip(classes, per_class) if k])
    y_partial = np.full(len(y), -1)
    y_partial[chosen] = y[chosen]
    return y_partial


def train(embedder, X, y_partial, prior, seed, max_iter, **params):
    clf = PriorGuidedFlexMatchClassifier(encoder=embedder, max_iter=max_iter, device="cpu",
                                         random_state=seed, self_check="warn", **params)
    start = time.perf_counter()
    kwargs = {} if prior is None else {"prior_proba": prior}
    clf.fit(X, y_partial, **kwargs)
    return clf, time.perf_counter() - start


def cell(name, budget, seed, args) -> list[dict]:
    """Every row of one (data set, budget, seed)."""
    X, y, X_test, y_test = load(name, seed, args.fashion_n)
    embedder = encoder(X, seed, args.simsiam_steps)
    y_partial, prior, classes = labels_and_prior(embedder, X, y, budget, seed)
    base = {"data": name, "labels": budget, "seed": seed}
    rows = [prior_row(base, prior, classes, y, y_partial)]
    head, _ = train(embedder, X, y_partial, prior, seed, 0)
    head_acc = float(head.score(X_test, y_test))
    rows.append(dict(base, method="prior-fitted head (max_iter=0)", accuracy=head_acc))
    runs = {"FlexMatch + prior, random head (today)": dict(prior_start="none"),
            "FlexMatch + prior, head start": dict(prior_start="head"),
            "FreeMatch + prior, head start": dict(prior_start="head", threshold="freematch")}
    for method, params in runs.items():
        clf, seconds = train(embedder, X, y_partial, prior, seed, args.max_iter, **params)
        accuracy = float(clf.score(X_test, y_test))
        rows.append(dict(base, method=method, accuracy=accuracy, seconds=round(seconds, 1)))
        if params["prior_start"] == "head":
            chosen = clf.self_check_["returned"]
            rows.append(dict(base, method=f"{method}, returned by the self-check",
                             accuracy=accuracy if chosen == "final" else head_acc, chosen=chosen))
    plain, seconds = train(embedder, X, stratified_random(y, budget, seed), None, seed, args.max_iter)
    rows.append(dict(base, method="random labels + plain FlexMatch", seconds=round(seconds, 1),
                     accuracy=float(plain.score(X_test, y_test))))
    for row in rows:
        print(row, flush=True)
    return rows


def summarize(rows):
    out = []
    keys = dict.fromkeys((r["data"], r["labels"], r["method"]) for r in rows)
    for data, labels, method in keys:
        group = [r for r in rows if (r["data"], r["labels"], r["method"]) == (data, labels, method)]
        values = 100 * np.array([r["accuracy"] for r in group])
        entry = {"data": data, "labels": labels, "method": method,
                 "accuracy %": f"{values.mean():.1f} ± {values.std():.1f}",
                 "on": "pool (unlabeled)" if group[0].get("pool") else "test", "seeds": len(group)}
        if "chosen" in group[0]:
            entry["self-check chose"] = ", ".join(r["chosen"] for r in group)
        out.append(entry)
    return out


def cached_cell(name, budget, seed, args) -> list[dict]:
    """:func:`cell`, its rows kept on disk per commit of the package, so that an interrupted
    grid resumes where it stopped (recomputed whenever the code changed)."""
    # the last commit that changed the package: a change of the benchmarks keeps the rows
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "as3l_sklearn"],
                            capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "as3l_sklearn"], capture_output=True,
                           text=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    if not commit or dirty:
        return cell(name, budget, seed, args)
    path = CACHE / (f"rows-{commit}-{name}-{budget}-{seed}-{args.max_iter}-{args.simsiam_steps}"
                    f"-{args.fashion_n}.json")
    if path.exists():
        return json.loads(path.read_text())
    rows = cell(name, budget, seed, args)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["digits", "fashion"], choices=["digits", "fashion"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-iter", type=int, default=300,
                        help="FlexMatch steps of every trained row (the CPU budget's order)")
    parser.add_argument("--simsiam-steps", type=int, default=1000)
    parser.add_argument("--fashion-n", type=int, default=3000)
    parser.add_argument("--name", default="prior_start")
    args = parser.parse_args(argv)
    rows = [row for data in args.data for budget in args.budgets for seed in args.seeds
            for row in cached_cell(data, budget, seed, args)]
    settings = {k: v for k, v in vars(args).items() if k != "name"}
    save_results(f"{args.name}_runs", rows, title="Where training starts: every run", settings=settings)
    save_results(args.name, summarize(rows), settings=settings,
                 title="Where training starts: the prior-fitted head vs a random head, FlexMatch vs "
                       "FreeMatch, and the self-check (accuracy %, mean ± std over seeds)")


if __name__ == "__main__":
    main()

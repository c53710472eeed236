"""Prior pseudo-labels: every selector x every propagator, scikit-learn's LabelSpreading as peer.

One run, side by side, on the reported Fashion-MNIST split (a random 10,000 of the training
images with index < 50,000; images 50,000-59,999 were the tuning split for the defaults):

* selectors: the rows of ``bench_selection.py`` (AS3L multi-cluster in both readings,
  TypiClust, ProbCover, k-medoids, coreset, random, scikit-activeml's TypiClust when
  installed);
* propagators: ``SeededKMeansPropagator`` (the paper's K list), ``LLGCPropagator`` (weighted
  graph), ``CombinedPropagator`` (their average, the recommended prior) and the peer
  ``sklearn.semi_supervised.LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99)``;
* budgets 10 and 40, seeds 0-2; each cell: classes covered by the labels, prior accuracy and
  ECE (15 bins) of the unlabeled samples' priors, mean +- std over the seeds.

Features: PCA-50 of pixels / 255 by default; ``--features f_fine.npy --labels y.npy`` for
fine-tuned SimSiam features of the same images (``make_ffine_features.py``). A summary
table compares the recommended chain with the best classical cell (any selector +
LabelSpreading) at each budget. Then, unless ``--skip-timing``, the time to propagate 40
labels over 50,000 x 128 features.

Usage::

    nice -n 10 python benchmarks/bench_propagation.py --skip-timing        # ~5 min on 2 cores
    python benchmarks/bench_propagation.py --features /tmp/ffine/f_fine.npy \
        --labels /tmp/ffine/labels.npy --name propagation_ffine --skip-timing
    python benchmarks/bench_propagation.py --quick                         # a smoke run
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

# faiss' OpenMP threads spin while they wait; on a shared, oversubscribed CPU that makes each
# nearest-center search several times slower. Must be set before faiss loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.semi_supervised import LabelSpreading  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, save_results  # noqa: E402
from bench_selection import load_features, make_selectors  # noqa: E402

from as3l_sklearn.cluster import available_backend  # noqa: E402
from as3l_sklearn.metrics import class_coverage, expected_calibration_error, prior_accuracy  # noqa: E402
from as3l_sklearn.propagation import (  # noqa: E402
    CombinedPropagator,
    LLGCPropagator,
    SeededKMeansPropagator,
)

PEER = "LabelSpreading (scikit-learn, knn k=10, alpha=0.99)"
RECOMMENDED = ("AS3L multi-cluster, one per cluster (default)", "Combined (recommended)")


def make_propagators(seed):
    """The benchmark's propagator columns: name -> unfitted estimator."""
    return {
        "seeded k-means (paper K list)": SeededKMeansPropagator(random_state=seed),
        "LLGC (weighted graph)": LLGCPropagator(),
        "Combined (recommended)": CombinedPropagator(random_state=seed),
        PEER: LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99),
    }


def _prior(propagator, features, y_partial):
    with warnings.catch_warnings():
        # LabelSpreading stops at its default max_iter=30 (the peer as a user runs it)
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        propagator.fit(features, y_partial)
    return propagator.label_distributions_, propagator.classes_


def _summary(values):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}"


def run_quality(args):
    features, labels, description = load_features(args)
    print(f"features: {description}, {features.shape}, load average {os.getloadavg()}", flush=True)
    records = []
    for seed in range(args.seeds):
        for selection, selector in make_selectors(seed).items():
            selector.fit(features)
            for budget in args.budgets:
                index = selector.select(budget)
                y_partial = np.full(len(labels), -1)
                y_partial[index] = labels[index]
                unlabeled = y_partial == -1
                for method, propagator in make_propagators(seed).items():
                    start = time.perf_counter()
                    proba, classes = _prior(propagator, features, y_partial)
                    records.append({
                        "seed": seed, "selection": selection, "labels": budget, "method": method,
                        "classes": class_coverage(labels, index),
                        "accuracy": prior_accuracy(labels, proba, classes=classes, mask=unlabeled),
                        "ece": expected_calibration_error(labels, proba, classes=classes,
                                                          mask=unlabeled),
                        "seconds": time.perf_counter() - start,
                    })
                print(f"seed {seed} {selection:>48} {budget:3d} labels: " + ", ".join(
                    f"{r['method'].split(' (')[0]} {r['accuracy']:.3f}/{r['ece']:.3f}"
                    for r in records[-len(make_propagators(seed)):]), flush=True)

    rows, cells = [], {}
    for selection in dict.fromkeys(r["selection"] for r in records):
        for method in make_propagators(0):
            row = {"selection": selection, "propagation": method}
            for budget in args.budgets:
                group = [r for r in records if (r["selection"], r["method"], r["labels"])
                         == (selection, method, budget)]
                acc = [100 * r["accuracy"] for r in group]
                ece = [r["ece"] for r in group]
                cells[selection, method, budget] = (np.mean(acc), np.mean(ece))
                row[f"classes @{budget}"] = round(float(np.mean([r["classes"] for r in group])), 1)
                row[f"prior acc % @{budget}"] = f"{np.mean(acc):.1f} ± {np.std(acc):.1f}"
                row[f"ECE @{budget}"] = _summary(ece)
            rows.append(row)

    summary = []
    for budget in args.budgets:
        peer_cells = {s: cells[s, m, b] for (s, m, b) in cells if m == PEER and b == budget}
        best_selection = max(peer_cells, key=lambda s: peer_cells[s][0])
        ours = cells[RECOMMENDED[0], RECOMMENDED[1], budget]
        best_ours = max(((s, m) for (s, m, b) in cells if b == budget and m != PEER),
                        key=lambda key: cells[key[0], key[1], budget][0])
        summary.append({
            "labels": budget,
            "best classical cell": f"{best_selection} + LabelSpreading",
            "its prior acc %": round(peer_cells[best_selection][0], 1),
            "its ECE": round(peer_cells[best_selection][1], 3),
            "recommended chain acc %": round(ours[0], 1), "recommended ECE": round(ours[1], 3),
            "best of ours": " + ".join(best_ours),
            "best of ours acc %": round(cells[best_ours[0], best_ours[1], budget][0], 1),
        })
    settings = {"features": description, "n_samples": int(len(labels)),
                "n_features": int(features.shape[1]), "budgets": args.budgets,
                "seeds": args.seeds, "backend": available_backend(),
                "load_average_at_end": os.getloadavg()}
    notes = (
        "Prior accuracy and ECE (15 bins) over the unlabeled samples' priors, mean ± std over "
        "the seeds; `classes` is the mean number of classes among the selected samples. "
        "LabelSpreading is run as a user would (its default max_iter=30; convergence warnings "
        "silenced). The recommended chain is AS3L multi-cluster selection (one pick per "
        "cluster) + CombinedPropagator. Summary:\n\n" + markdown_table(summary)
    )
    _save(args, args.name, rows, title="Prior pseudo-labels: selectors x propagators on "
          "Fashion-MNIST, scikit-learn's LabelSpreading as the peer", settings=settings,
          notes=notes)
    return records


def run_timing(args):
    from as3l_sklearn.datasets import load_fashion_mnist

    images, labels = load_fashion_mnist(split="train")
    index = np.sort(np.random.RandomState(1).choice(len(labels), args.timing_samples, replace=False))
    pixels = images.reshape(len(images), -1)[index].astype(np.float32) / 255.0
    labels = labels[index]
    features = PCA(128, whiten=True, random_state=0).fit_transform(pixels).astype(np.float32)
    y_partial = np.full(len(labels), -1)
    chosen = np.random.RandomState(0).choice(len(labels), 40, replace=False)
    y_partial[chosen] = labels[chosen]
    rows = []
    for run in range(args.timing_runs):
        for method, propagator in make_propagators(run).items():
            load = os.getloadavg()[0]
            start = time.perf_counter()
            _prior(propagator, features, y_partial)
            rows.append({"run": run, "propagation": method, "n_samples": features.shape[0],
                         "n_features": features.shape[1], "labels": 40,
                         "seconds": round(time.perf_counter() - start, 2),
                         "load average (1 min)": round(load, 2)})
            print(rows[-1], flush=True)
    settings = {"features": "PCA-128 whitened Fashion-MNIST pixels", "backend": available_backend(),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    _save(args, "propagation_timing", rows,
          title=f"Time to propagate 40 labels over {features.shape[0]:,} x 128 features",
          settings=settings, notes="The load average shows how busy the shared CPU was.")
    return rows


def _save(args, name, rows, **kwargs):
    if args.quick:  # a smoke run must not overwrite the real results
        print(f"\n{kwargs['title']} (--quick, not saved)\n\n{markdown_table(rows)}")
        print(kwargs.get("notes", ""))
        return
    save_results(name, rows, **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=10000, help="reported subset size")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--features", type=Path, default=None, help="features .npy (e.g. f_fine)")
    parser.add_argument("--labels", type=Path, default=None, help="labels .npy for --features")
    parser.add_argument("--name", default="propagation",
                        help="results name of the quality table (benchmarks/results/<name>.json)")
    parser.add_argument("--timing-samples", type=int, default=50000)
    parser.add_argument("--timing-runs", type=int, default=1)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (not saved)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.seeds, args.budgets = 1000, 1, [10]
        args.timing_samples, args.timing_runs = 2000, 1
    if not args.skip_quality:
        run_quality(args)
    if not args.skip_timing:
        run_timing(args)


if __name__ == "__main__":
    main()

"""Prior pseudo-labels: seeded k-means over K lists vs LLGC, on Fashion-MNIST (Tables 5-6).

For 10, 20 and 40 labels chosen by random selection and by AS3L's ``MultiClusterSelector``,
over several seeds, the prior accuracy and the expected calibration error (ECE, 15 bins) of
the unlabeled samples' priors for

* ``SeededKMeansPropagator`` with the three K lists of Table 6 of the paper
  (``[10, 20, 30, 40, 50, 60]``, ``[10] * 5``, ``[10, 60, 60, 60, 60]``),
* ``LLGCPropagator`` (LabelSpreading, kNN graph k=50, alpha=0.99, Iscen et al. 2019),

in one table (``benchmarks/results/propagation.json``, ``docs/results/propagation.md``); then
the time to propagate 40 labels over 50,000 x 128 features with the paper's K list
(``propagation_timing``).

Features: PCA-50 whitened pixels of a random training subset by default; ``--features
f_fine.npy`` uses given features instead (one row per Fashion-MNIST training image, in the
order of ``load_fashion_mnist(split="train")``, or any data set with ``--labels y.npy``).

Usage::

    nice -n 10 python benchmarks/bench_propagation.py                  # ~10 min on 2 cores
    python benchmarks/bench_propagation.py --quick                     # a smoke run
    python benchmarks/bench_propagation.py --features f_fine.npy --skip-timing
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

from as3l_sklearn.cluster import available_backend  # noqa: E402
from as3l_sklearn.metrics import (  # noqa: E402
    class_coverage,
    expected_calibration_error,
    prior_accuracy,
)
from as3l_sklearn.propagation import LLGCPropagator, SeededKMeansPropagator  # noqa: E402
from as3l_sklearn.selection import MultiClusterSelector, RandomSelector  # noqa: E402

K_LISTS = {
    "seeded k-means K=[10,20,30,40,50,60]": [10, 20, 30, 40, 50, 60],
    "seeded k-means K=[10]*5": [10] * 5,
    "seeded k-means K=[10,60,60,60,60]": [10, 60, 60, 60, 60],
}


def load_pixels(n, seed):
    from as3l_sklearn.datasets import load_fashion_mnist

    images, labels = load_fashion_mnist(split="train")
    index = np.sort(np.random.RandomState(seed).choice(len(labels), n, replace=False))
    pixels = images.reshape(len(images), -1)[index].astype(np.float32) / 255.0
    return pixels, labels[index], index


def quality_features(args):
    if args.features is not None:
        features = np.load(args.features).astype(np.float32)
        if args.labels is not None:
            labels = np.load(args.labels)
            n = min(args.n_train, len(labels))
            index = np.sort(np.random.RandomState(0).choice(len(labels), n, replace=False))
            return features[index], labels[index], f"{args.features} (given labels)"
        from as3l_sklearn.datasets import load_fashion_mnist

        _, labels = load_fashion_mnist(split="train")
        if len(features) != len(labels):
            raise ValueError(f"--features has {len(features)} rows; expected one per Fashion-MNIST "
                             f"training image ({len(labels)}) or pass --labels")
        index = np.sort(np.random.RandomState(0).choice(len(labels), args.n_train, replace=False))
        return features[index], labels[index], str(args.features)
    pixels, labels, _ = load_pixels(args.n_train, 0)
    features = PCA(50, whiten=True, random_state=0).fit_transform(pixels).astype(np.float32)
    return features, labels, "PCA-50 whitened pixels"


def make_propagators(seed):
    props = {name: SeededKMeansPropagator(n_clusters=k, random_state=seed)
             for name, k in K_LISTS.items()}
    props["LLGC (LabelSpreading kNN k=50, alpha=0.99)"] = LLGCPropagator(n_neighbors=50, alpha=0.99)
    return props


def run_quality(args):
    features, labels, feature_name = quality_features(args)
    print(f"features: {feature_name}, {features.shape}, load average {os.getloadavg()}", flush=True)
    records = []
    for seed in range(args.seeds):
        selectors = {"random": RandomSelector(random_state=seed),
                     "multi-cluster (AS3L)": MultiClusterSelector(n_runs=6, random_state=seed)}
        for selection, selector in selectors.items():
            selector.fit(features)
            for budget in args.budgets:
                index = selector.select(budget)
                y_partial = np.full(len(labels), -1)
                y_partial[index] = labels[index]
                unlabeled = y_partial == -1
                n_classes_seen = class_coverage(labels, index)
                for method, prop in make_propagators(seed).items():
                    start = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # one-class / convergence warnings
                        prop.fit(features, y_partial)
                    seconds = time.perf_counter() - start
                    proba = prop.label_distributions_
                    records.append({
                        "seed": seed, "selection": selection, "labels": budget, "method": method,
                        "accuracy": prior_accuracy(labels, proba, classes=prop.classes_,
                                                   mask=unlabeled),
                        "ece": expected_calibration_error(labels, proba, classes=prop.classes_,
                                                          mask=unlabeled),
                        "covered": float(prop.covered_[unlabeled].mean()),
                        "classes": n_classes_seen, "seconds": seconds,
                    })
                    print(f"seed {seed} {selection:>20} {budget:3d} labels {method:45s} "
                          f"acc {records[-1]['accuracy']:.3f} ece {records[-1]['ece']:.3f} "
                          f"{seconds:.1f} s", flush=True)
    rows = []
    for selection in ("random", "multi-cluster (AS3L)"):
        for method in make_propagators(0):
            for budget in args.budgets:
                key = (selection, method, budget)
                group = [r for r in records if (r["selection"], r["method"], r["labels"]) == key]
                acc = np.array([r["accuracy"] for r in group]) * 100
                ece = np.array([r["ece"] for r in group])
                rows.append({
                    "selection": selection, "propagation": method, "labels": budget,
                    "prior acc %": f"{acc.mean():.2f} ± {acc.std():.2f}",
                    "ECE": f"{ece.mean():.3f} ± {ece.std():.3f}",
                    "covered %": round(100 * float(np.mean([r["covered"] for r in group])), 1),
                    "classes labeled": round(float(np.mean([r["classes"] for r in group])), 1),
                    "fit s": round(float(np.mean([r["seconds"] for r in group])), 2),
                })
    settings = {"dataset": "Fashion-MNIST train subset", "n_samples": int(len(labels)),
                "features": feature_name, "n_features": int(features.shape[1]),
                "budgets": args.budgets, "seeds": args.seeds, "k_lists": K_LISTS,
                "llgc": {"n_neighbors": 50, "alpha": 0.99, "max_iter": 1000, "normalize": True},
                "seeded_kmeans": {"max_iter": 20, "tol": 1e-4, "constrained": True},
                "backend": available_backend(),
                "load_average_at_end": os.getloadavg()}
    notes = (
        "Prior accuracy and ECE (15 bins) are computed on the unlabeled samples' priors "
        "(`label_distributions_`), mean ± std over the seeds; `covered %` is the share of "
        "unlabeled samples reached by at least one labeled cluster (uniform prior otherwise). "
        "`classes labeled` is the mean number of classes among the selected samples. "
        "The CPU is shared with other jobs (see the load average in the settings), so the "
        "fit times are upper bounds."
    )
    _save(args, args.name, rows, title="Prior pseudo-labels on Fashion-MNIST: seeded k-means "
                 "K lists vs LLGC, random vs multi-cluster selection (paper Tables 5-6)",
                 settings=settings, notes=notes)
    return records


def run_timing(args):
    pixels, labels, _ = load_pixels(args.timing_samples, 1)
    features = PCA(128, whiten=True, random_state=0).fit_transform(pixels).astype(np.float32)
    rng = np.random.RandomState(0)
    y_partial = np.full(len(labels), -1)
    index = rng.choice(len(labels), 40, replace=False)
    y_partial[index] = labels[index]
    rows = []
    for run in range(args.timing_runs):
        load = os.getloadavg()[0]
        prop = SeededKMeansPropagator(random_state=run)
        start = time.perf_counter()
        prop.fit(features, y_partial)
        seconds = time.perf_counter() - start
        rows.append({"run": run, "n_samples": features.shape[0], "n_features": features.shape[1],
                     "labels": 40, "K list": "[10,20,30,40,50,60]",
                     "Lloyd iterations": sum(prop.n_iter_), "seconds": round(seconds, 2),
                     "load average (1 min)": round(load, 2)})
        print(rows[-1], flush=True)
    settings = {"features": "PCA-128 whitened Fashion-MNIST pixels", "max_iter": 20, "tol": 1e-4,
                "backend": available_backend(),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                "cpu_affinity": (sorted(os.sched_getaffinity(0))
                                 if hasattr(os, "sched_getaffinity") else None)}
    _save(args, "propagation_timing", rows,
          title=f"Time to propagate 40 labels over {features.shape[0]:,} x 128 features "
                "(SeededKMeansPropagator, paper K list)", settings=settings,
          notes="Target: under 5 s on 2 CPU cores. The load average shows how busy the "
                "shared CPU was when each run started.")
    return rows


def _save(args, name, rows, **kwargs):
    if args.quick:  # a smoke run must not overwrite the real results
        from _common import markdown_table

        print(f"\n{kwargs['title']} (--quick, not saved)\n\n{markdown_table(rows)}")
        return
    save_results(name, rows, **kwargs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=10000, help="training subset size")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--features", type=Path, default=None, help="features .npy (e.g. f_fine)")
    parser.add_argument("--labels", type=Path, default=None, help="labels .npy for --features")
    parser.add_argument("--name", default="propagation",
                        help="results name of the quality table (benchmarks/results/<name>.json)")
    parser.add_argument("--timing-samples", type=int, default=50000)
    parser.add_argument("--timing-runs", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="tiny smoke run (not saved as results)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.seeds, args.budgets = 1000, 1, [10]
        args.timing_samples, args.timing_runs = 2000, 1
    if not args.skip_quality:
        run_quality(args)
    if not args.skip_timing:
        run_timing(args)


if __name__ == "__main__":
    main()

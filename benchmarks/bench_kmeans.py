"""k-means backends side by side: faiss vs scikit-learn on a 50k x 128 Gaussian mixture.

For each K (10 and 60 by default) the data are a mixture of K Gaussians; both backends of
:func:`as3l_sklearn.cluster.kmeans` start from the same seeded k-means++ centers. Reported per
backend: wall time of the whole call (k-means++ included) and of the Lloyd iterations alone
(median of ``--repeats``), inertia, adjusted Rand index (ARI) against the mixture components and
between the two backends. One extra row shows faiss with its default subsampling
(``max_points_per_centroid=256``, i.e. centers from 256*K random points), the setting
:mod:`as3l_sklearn.cluster` deliberately overrides.

Run::

    nice -n 10 .venv/bin/python benchmarks/bench_kmeans.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

from as3l_sklearn import cluster  # noqa: E402
from as3l_sklearn.cluster import kmeans, nearest_centers  # noqa: E402


def gaussian_mixture(n_samples, n_features, n_components, spread, random_state):
    """Isotropic Gaussian mixture with unequal weights and spreads, moderately overlapping."""
    rng = np.random.RandomState(random_state)
    means = rng.normal(scale=1.0, size=(n_components, n_features))
    weights = rng.dirichlet(np.full(n_components, 5.0))
    labels = rng.choice(n_components, size=n_samples, p=weights)
    spreads = rng.uniform(0.5, 1.0, size=n_components) * spread
    X = means[labels] + rng.normal(size=(n_samples, n_features)) * spreads[labels, None]
    return np.ascontiguousarray(X, dtype=np.float32), labels


def _time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def faiss_default_subsampling(X, init, max_iter, seed):
    """faiss.Kmeans as it comes: centers fitted on a 256*K subsample."""
    faiss = cluster._faiss()
    km = faiss.Kmeans(X.shape[1], init.shape[0], niter=max_iter, seed=seed, verbose=False)
    km.train(X, init_centroids=init)
    return np.asarray(km.centroids, dtype=np.float32).reshape(init.shape)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=50_000)
    parser.add_argument("--n-features", type=int, default=128)
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spread", type=float, default=1.5,
                        help="per-dimension std of the components (times U(0.5, 1)); "
                             "means are N(0, 1)")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--faiss-threads", type=int, nargs="*", default=None,
                        help="OpenMP thread counts to run faiss with (default: faiss' default)")
    args = parser.parse_args(argv)

    has_faiss = cluster._faiss() is not None
    default_threads = cluster._faiss().omp_get_max_threads() if has_faiss else None
    if has_faiss and not args.faiss_threads:
        args.faiss_threads = [default_threads]
    rows = []
    for k in args.ks:
        X, truth = gaussian_mixture(args.n_samples, args.n_features, k, args.spread,
                                    args.random_state)
        init = kmeans_plusplus(X, k, random_state=args.random_state)[0].astype(np.float32)
        seed = args.random_state
        results = {}
        runs = [("sklearn", None)]
        if has_faiss:
            runs = [("faiss", threads) for threads in args.faiss_threads] + runs
        first_row = len(rows)
        for backend, threads in runs:
            if threads is not None:
                cluster._faiss().omp_set_num_threads(threads)
            total_s, result = _time(
                lambda: kmeans(X, k, max_iter=args.max_iter, random_state=seed, backend=backend),
                args.repeats)
            lloyd = cluster._lloyd_faiss if backend == "faiss" else cluster._lloyd_sklearn
            lloyd_s, _ = _time(lambda: lloyd(X, init, args.max_iter, seed, False), args.repeats)
            if threads is not None:
                cluster._faiss().omp_set_num_threads(default_threads)
            results[backend] = result
            name = backend
            if backend == "faiss":
                name += "-gpu" if cluster.available_backend() == "faiss-gpu" else ""
                name += f" ({threads} OpenMP thread{'s' if threads > 1 else ''})"
            rows.append({
                "K": k, "backend": name,
                "total_s": round(total_s, 3), "lloyd_s": round(lloyd_s, 3),
                "inertia": round(result.inertia, 1),
                "ARI_vs_truth": round(adjusted_rand_score(truth, result.labels), 4),
                "ARI_vs_other_backend": None,
                "load_avg_1min": round(os.getloadavg()[0], 1),
            })
            print(f"K={k} {backend}: {rows[-1]}", flush=True)
        if has_faiss:
            ari = adjusted_rand_score(results["faiss"].labels, results["sklearn"].labels)
            for row in rows[first_row:]:
                row["ARI_vs_other_backend"] = round(ari, 4)
            sub_s, centers = _time(lambda: faiss_default_subsampling(X, init, args.max_iter, seed),
                                   args.repeats)
            labels, distances = nearest_centers(X, centers, backend="faiss")
            rows.append({
                "K": k, "backend": "faiss default (256*K subsample)", "total_s": None,
                "lloyd_s": round(sub_s, 3), "inertia": round(float(distances.sum()), 1),
                "ARI_vs_truth": round(adjusted_rand_score(truth, labels), 4),
                "ARI_vs_other_backend": round(
                    adjusted_rand_score(results["sklearn"].labels, labels), 4),
                "load_avg_1min": round(os.getloadavg()[0], 1),
            })
            print(f"K={k} faiss-default: {rows[-1]}", flush=True)

    save_results(
        "kmeans", rows,
        title=f"k-means backends on a {args.n_samples}x{args.n_features} Gaussian mixture",
        settings=vars(args),
        notes=(
            "`total_s`: one `as3l_sklearn.cluster.kmeans` call (seeded k-means++ init, Lloyd, "
            "nearest-center assignment); `lloyd_s`: the Lloyd iterations alone from the same "
            "k-means++ centers; medians of the repeats. faiss always runs `max_iter` iterations; "
            "scikit-learn's Lloyd may stop earlier, at its tolerance (1e-4). "
            "`ARI_vs_other_backend`: "
            "agreement of the faiss and sklearn partitions (for the subsampling row: vs sklearn). "
            "The mixture for each K has K components. The CPU was shared with other jobs "
            "(`load_avg_1min`: the machine's load when the row finished), so times are indicative; "
            "on an oversubscribed CPU faiss' OpenMP threads busy-wait, which is why one thread "
            "can beat several."
        ),
    )


if __name__ == "__main__":
    main()

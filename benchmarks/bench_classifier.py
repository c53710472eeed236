"""Prior-guided FlexMatch (AS3L) vs plain FlexMatch from the same SimSiam encoder, Fashion-MNIST.

Two parts, one script:

``--sweep-t`` (choose T): AS3L labels and priors, T at 5 %, 20 % and 50 % of the steps, in
both ``prior_mode="remove"`` and ``"update"``; scored on **validation** images (training
images 50,000-59,999, never in the pool and never the test set). The T default of
``PriorGuidedFlexMatchClassifier`` is set from this table.

default (compare): for 10 and 40 labels and each seed, all from one cached SimSiam encoder
pre-trained on the pool, the same step budget and batch sizes:

(a) stratified random labels + plain FlexMatch     (c) AS3L selection + plain FlexMatch
(d) AS3L selection + prior, removed after T         (e) AS3L selection + prior, updated after T
plus linear evaluation (logistic regression on the frozen encoder) for both label sets.

Every accuracy is the **final EMA model's** on the test images: no checkpoint is chosen on
any data. The test set is also passed as ``X_monitor`` to draw learning curves, from which
"steps to reach (a)" reads the first evaluation at which a row reaches row (a)'s *final*
accuracy (reporting only).

Reduced CPU setting (default): a pool of 2,000 training images (index < 50,000), 2,000 test
images, 1,000 validation images, the project's small CNN, SimSiam at its CPU default budget,
300 steps of B = 16 labeled + mu = 3 x 16 unlabeled images. ``--full`` (for a GPU): pool of
50,000, the full test set, 20 x 1024 steps of B = 64, mu = 7.

Usage::

    nice -n 10 python benchmarks/bench_classifier.py --sweep-t --seeds 0 1
    nice -n 10 python benchmarks/bench_classifier.py            # compare, reduced, CPU
    python benchmarks/bench_classifier.py --full --device cuda   # full, GPU
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

REPORTED_END = 50_000  # training images below this index: the pool; above: validation
T_FRACTIONS = (0.05, 0.2, 0.5)


def _splits(args):
    from as3l_sklearn.datasets import load_fashion_mnist

    X, y = load_fashion_mnist(split="train")
    pool = np.sort(np.random.RandomState(0).choice(REPORTED_END, args.n_train, replace=False))
    val = REPORTED_END + np.sort(np.random.RandomState(1).choice(len(y) - REPORTED_END, args.n_val,
                                                                   replace=False))
    X_test, y_test = load_fashion_mnist(split="test")
    test = np.sort(np.random.RandomState(2).choice(len(y_test), min(args.n_test, len(y_test)),
                                                   replace=False))
    return (X[pool], y[pool]), (X[val], y[val]), (X_test[test], y_test[test])


def _stratified_random(y_true, n_labels, seed):
    """Stratified random labels (the semi-supervised convention of the paper's random rows)."""
    rng = np.random.RandomState(seed)
    classes = np.unique(y_true)
    per_class = [n_labels // len(classes) + (i < n_labels % len(classes)) for i in range(len(classes))]
    chosen = [rng.choice(np.flatnonzero(y_true == c), k, replace=False)
              for c, k in zip(classes, per_class) if k]
    return np.concatenate(chosen)


def _embedder(args, X_pool, device):
    """One SimSiam encoder per pool and setting, cached between runs of this script."""
    from as3l_sklearn import SimSiamEmbedder

    params = dict(backbone="small_cnn", device=device, random_state=0, verbose=0,
                  max_steps=args.simsiam_steps or "auto")
    key = hashlib.sha1(repr((sorted(params.items()), X_pool[:64].tobytes(), len(X_pool),
                             SimSiamEmbedder().get_params())).encode()).hexdigest()[:12]
    path = Path(args.cache) / f"simsiam_{key}.pkl"
    if path.exists():
        print(f"reusing the cached SimSiam encoder {path}", flush=True)
        with open(path, "rb") as f:
            cached = pickle.load(f)
        return cached["embedder"], cached["seconds"]
    start = time.perf_counter()
    embedder = SimSiamEmbedder(**params).fit(X_pool)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"embedder": embedder, "seconds": seconds}, f)
    return embedder, seconds


def _label_sets(y_pool, f_fine, n_labels, seed):
    from as3l_sklearn import MultiClusterSelector

    return {"random": _stratified_random(y_pool, n_labels, seed),
            "AS3L": MultiClusterSelector(random_state=seed).fit(f_fine).select(n_labels)}


def _prior(f_fine, y_pool, index, seed):
    """Partial labels and the recommended prior (CombinedPropagator on f_fine)."""
    from as3l_sklearn import CombinedPropagator

    y_partial = np.full(len(y_pool), -1)
    y_partial[index] = y_pool[index]
    propagator = CombinedPropagator(random_state=seed).fit(f_fine, y_partial)
    prior_accuracy = float(np.mean(propagator.transduction_[y_partial == -1]
                                   == y_pool[y_partial == -1]))
    return y_partial, propagator.label_distributions_, prior_accuracy


def _train(args, embedder, X_pool, y_partial, prior, seed, mode, switch_iter, device,
           X_monitor=None, y_monitor=None):
    from as3l_sklearn import CombinedPropagator
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier

    clf = PriorGuidedFlexMatchClassifier(
        encoder=embedder, prior=CombinedPropagator(random_state=seed) if prior is not None else None,
        prior_mode=mode, switch_iter=switch_iter, max_iter=args.max_iter, batch_size=args.batch_size,
        mu=args.mu, eval_every=args.eval_every, device=device, random_state=seed)
    kwargs = {} if prior is None else {"prior_proba": prior}
    if X_monitor is not None:
        kwargs.update(X_monitor=X_monitor, y_monitor=y_monitor)
    start = time.perf_counter()
    clf.fit(X_pool, y_partial, **kwargs)
    return clf, time.perf_counter() - start


def sweep_t(args, embedder, pool, val, f_fine, device):
    X_pool, y_pool = pool
    X_val, y_val = val
    records = []
    for n_labels in args.labels:
        for seed in args.seeds:
            index = _label_sets(y_pool, f_fine, n_labels, seed)["AS3L"]
            y_partial, prior, prior_acc = _prior(f_fine, y_pool, index, seed)
            for mode in ("remove", "update"):
                for fraction in T_FRACTIONS:
                    switch_iter = int(round(fraction * args.max_iter))
                    clf, seconds = _train(args, embedder, X_pool, y_partial, prior, seed, mode,
                                          switch_iter, device)
                    records.append({"labels": n_labels, "seed": seed, "prior_mode": mode,
                                    "T fraction": fraction, "T": switch_iter,
                                    "val acc": float(np.mean(clf.predict(X_val) == y_val)),
                                    "prior acc": round(prior_acc, 4), "seconds": round(seconds, 1)})
                    print(records[-1], flush=True)
    rows = []
    for n_labels in args.labels:
        for mode in ("remove", "update"):
            for fraction in T_FRACTIONS:
                group = [r["val acc"] for r in records if (r["labels"], r["prior_mode"], r["T fraction"])
                         == (n_labels, mode, fraction)]
                rows.append({"labels": n_labels, "prior_mode": mode, "T fraction": fraction,
                             "T": int(round(fraction * args.max_iter)),
                             "val acc (final EMA)": f"{np.mean(group):.4f} ± {np.std(group):.4f}",
                             "seeds": len(group)})
    save_results(f"{args.name}_t_sweep_runs", records, title="Choosing T: per-seed runs",
                 settings=_settings(args, device))
    save_results(f"{args.name}_t_sweep", rows,
                 title="Choosing T: prior-guided FlexMatch on validation images (never the test set)",
                 settings=_settings(args, device), notes=(
                     "AS3L labels (MultiClusterSelector) and CombinedPropagator priors on f_fine; "
                     "accuracy of the final EMA model on validation images (Fashion-MNIST training "
                     "images with index >= 50,000, outside the pool). Mean ± std over the seeds; "
                     f"per-seed runs in {args.name}_t_sweep_runs."))


def compare(args, embedder, pool, test, f_fine, device):
    from as3l_sklearn.classification import LinearEvaluationClassifier

    X_pool, y_pool = pool
    X_test, y_test = test
    switch_iter = "auto" if args.switch_iter is None else int(args.switch_iter)
    records = []
    for n_labels in args.labels:
        for seed in args.seeds:
            label_sets = _label_sets(y_pool, f_fine, n_labels, seed)
            priors = {name: _prior(f_fine, y_pool, index, seed) for name, index in label_sets.items()}
            plan = [("(a) random + FlexMatch", "random", False, "remove"),
                    ("(c) AS3L selection + FlexMatch", "AS3L", False, "remove"),
                    ("(d) AS3L selection + prior (remove)", "AS3L", True, "remove"),
                    ("(e) AS3L selection + prior (update)", "AS3L", True, "update")]
            target = None
            for method, labels_name, use_prior, mode in plan:
                y_partial, prior, prior_acc = priors[labels_name]
                clf, seconds = _train(args, embedder, X_pool, y_partial, prior if use_prior else None,
                                      seed, mode, switch_iter, device, X_test, y_test)
                final = float(np.mean(clf.predict(X_test) == y_test))
                if method.startswith("(a)"):
                    target = final
                curve = [(h["step"], h["monitor_accuracy"]) for h in clf.history_]
                reached = next((s for s, acc in curve if acc >= target - 1e-9), None)
                records.append({
                    "labels": n_labels, "seed": seed, "method": method,
                    "classes covered": int(len(np.unique(y_pool[label_sets[labels_name]]))),
                    "prior acc": round(prior_acc, 4) if use_prior else "",
                    "test acc (final EMA)": round(final, 4), "T": clf.switch_iter_ if use_prior else "",
                    "steps to reach (a) final": reached if reached is not None else f">{args.max_iter}",
                    "seconds": round(seconds, 1)})
                print(records[-1], flush=True)
            for labels_name, (y_partial, _, _) in priors.items():
                start = time.perf_counter()
                linear = LinearEvaluationClassifier(embedder=embedder, random_state=seed)
                linear.fit(X_pool, y_partial)
                records.append({"labels": n_labels, "seed": seed,
                                "method": f"linear evaluation ({labels_name} labels)",
                                "test acc (final EMA)": round(float(linear.score(X_test, y_test)), 4),
                                "seconds": round(time.perf_counter() - start, 1)})
                print(records[-1], flush=True)

    rows = []
    for n_labels in args.labels:
        for method in dict.fromkeys(r["method"] for r in records):
            group = [r for r in records if (r["labels"], r["method"]) == (n_labels, method)]
            if not group:
                continue
            accuracies = np.array([r["test acc (final EMA)"] for r in group])
            rows.append({"labels": n_labels, "method": method,
                         "test acc (final EMA)": f"{accuracies.mean():.4f} ± {accuracies.std():.4f}",
                         "prior acc": " / ".join(str(r.get("prior acc", "")) for r in group),
                         "steps to reach (a) final": " / ".join(
                             str(r["steps to reach (a) final"]) for r in group
                             if "steps to reach (a) final" in r),
                         "seeds": len(group)})
    settings = _settings(args, device)
    settings["switch_iter"] = switch_iter
    save_results(f"{args.name}_runs", records, title="AS3L vs FlexMatch: per-seed runs",
                 settings=settings)
    save_results(args.name, rows, title="Prior-guided FlexMatch (AS3L) vs FlexMatch from the "
                 "same SimSiam encoder on Fashion-MNIST", settings=settings, notes=(
                     "Final EMA model on the test images (no checkpoint chosen on any data); mean ± std "
                     f"over the seeds (per-seed runs in {args.name}_runs). 'steps to reach (a) final' is the first "
                     f"evaluation step (every {args.eval_every}) at which the row's test accuracy reaches "
                     "row (a)'s final accuracy, per seed. Priors: CombinedPropagator on ClusterFineTuner "
                     "features of the same encoder."))


def _settings(args, device):
    settings = {k: v for k, v in vars(args).items() if k not in ("cache",)}
    settings["device"] = device
    settings["simsiam_seconds"] = round(args.simsiam_seconds, 1)
    return settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the full setting (for a GPU)")
    parser.add_argument("--sweep-t", action="store_true", help="choose T on validation images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-val", type=int)
    parser.add_argument("--n-test", type=int)
    parser.add_argument("--labels", type=int, nargs="+")
    parser.add_argument("--seeds", type=int, nargs="+")
    parser.add_argument("--max-iter", type=int)
    parser.add_argument("--switch-iter", default=None, help="T (default: the classifier's 'auto')")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--mu", type=int)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--simsiam-steps", type=int, default=None,
                        help="SimSiam optimizer steps (default: the embedder's 'auto' budget)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--cache", default="/tmp/as3l_bench_classifier")
    parser.add_argument("--name", default="classifier")
    args = parser.parse_args(argv)
    full = dict(n_train=50000, n_val=5000, n_test=10000, labels=[10, 40], seeds=[0, 1, 2],
                max_iter=20 * 1024, batch_size=64, mu=7, eval_every=512)
    reduced = dict(n_train=2000, n_val=1000, n_test=2000, labels=[10, 40], seeds=[0, 1, 2],
                   max_iter=300, batch_size=16, mu=3, eval_every=25)
    for key, value in (full if args.full else reduced).items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    import torch

    from as3l_sklearn import ClusterFineTuner
    from as3l_sklearn.utils import resolve_device

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    pool, val, test = _splits(args)
    print(f"pool {pool[0].shape}, validation {val[0].shape}, test {test[0].shape}, device {device}",
          flush=True)
    embedder, args.simsiam_seconds = _embedder(args, pool[0], device)
    f_fine = ClusterFineTuner(n_clusters=10, random_state=0).fit_transform(embedder.transform(pool[0]))
    if args.sweep_t:
        sweep_t(args, embedder, pool, val, f_fine, device)
    else:
        compare(args, embedder, pool, test, f_fine, device)


if __name__ == "__main__":
    main()

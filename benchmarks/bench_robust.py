"""Robustness of the default ``as3l`` run: its classifier against its own prior and a peer.

Runs the ``as3l`` command as a user would (a subprocess, the default preset, demo mode: the
data set's own labels of the selected images) in four scenarios:

* ``normal``: a fresh stage cache;
* ``cache``: the same command again right after, SimSiam (and the other cached stages) served
  from the stage cache;
* ``tiny``: a 300-image pool (``--n-train 300``);
* ``busy``: a fresh cache while two busy-loop processes occupy the CPU cores.

For every run it reads ``report.json`` and ``predictions.csv`` and scores, on the unlabeled
images of the pool (the prior is defined there) and on the held-out test set:

* the classifier (``model_label``: the model's own prediction) and its prior pseudo-labels;
* scikit-learn's ``LabelSpreading(kernel="knn", n_neighbors=10)`` on PCA-50 pixels with the
  same labeled images (the classical peer), transductively on the pool and inductively on
  the test set;
* the classes the classifier predicts, its steps run against the plan, and what its
  label-free self-checks said.

Targets (issue 18): in every scenario the classifier is at least its prior minus 2 points and
at least LabelSpreading with the same labels, and predicts at least 7 of 10 classes.

Usage::

    python benchmarks/bench_robust.py                      # the full grid (hours on a CPU)
    python benchmarks/bench_robust.py --data digits --seeds 0 --scenarios normal --budgets 10
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.semi_supervised import LabelSpreading

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import save_results  # noqa: E402

from as3l_sklearn.cli import load_data, parse_command  # noqa: E402

SCENARIOS = ("normal", "cache", "tiny", "busy")
DATA_FLAGS = {"digits": ["--dataset", "digits"],
              "fashion": ["--dataset", "fashion-mnist"]}
#: the share of the classes the classifier must predict, and how far under its prior it may end
MIN_CLASSES, PRIOR_MARGIN = 7, 0.02
BUSY_LOOP = "while True:\n    pass\n"


def command_flags(data: str, budget: int, seed: int, scenario: str, args) -> list[str]:
    """The ``as3l`` flags of one run (without the folders)."""
    flags = DATA_FLAGS[data] + ["--budget", str(budget), "--seed", str(seed)]
    n_train = 300 if scenario == "tiny" else (args.fashion_n if data == "fashion" else None)
    if n_train is not None:
        flags += ["--n-train", str(n_train)]
    if args.time_budget is not None:
        flags += ["--time-budget", str(args.time_budget)]
    return flags


def run_command(flags: list[str], output: Path, cache: Path, busy: bool) -> float:
    """Run ``python -m as3l_sklearn`` (with busy loops beside it when ``busy``); its seconds."""
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(2 if busy else 0)]
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "as3l_sklearn", *flags, "--output", str(output),
                               "--cache-dir", str(cache), "--quiet", "--overwrite"],
                              capture_output=True, text=True)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    if done.returncode != 0:
        raise RuntimeError(f"as3l {' '.join(flags)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def label_spreading_peer(data, labeled: np.ndarray, seed: int) -> tuple[float, float]:
    """LabelSpreading on PCA-50 pixels with the same labels: (pool accuracy on the unlabeled
    images, test accuracy)."""
    X = np.asarray(data.X_train, dtype=np.float32).reshape(len(data.X_train), -1) / 255.0
    X_test = np.asarray(data.X_test, dtype=np.float32).reshape(len(data.X_test), -1) / 255.0
    pca = PCA(n_components=min(50, X.shape[1], len(X) - 1), random_state=seed).fit(X)
    y = np.full(len(X), -1)
    y[labeled] = data.y_train[labeled]
    spreading = LabelSpreading(kernel="knn", n_neighbors=10).fit(pca.transform(X), y)
    unlabeled = np.setdiff1d(np.arange(len(X)), labeled)
    pool = float(np.mean(spreading.transduction_[unlabeled] == data.y_train[unlabeled]))
    test = float(np.mean(spreading.predict(pca.transform(X_test)) == data.y_test))
    return pool, test


def classifier_on_pool(output: Path, data, labeled: np.ndarray, names: list[str]) -> tuple[float, int]:
    """The classifier's own predictions (``model_label``) on the unlabeled pool images: its
    accuracy there, and the number of classes it predicts over the pool."""
    with (output / "predictions.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    index = {name: i for i, name in enumerate(names)}
    predicted = np.array([index[row["model_label"]] for row in rows])
    files = [row["file"] for row in rows]
    position = {file: i for i, file in enumerate(data.files)}
    order = np.array([position[f] for f in files])
    truth = data.y_train[order]
    unlabeled = ~np.isin(order, labeled)
    return float(np.mean(predicted[unlabeled] == truth[unlabeled])), int(len(np.unique(predicted)))


def score_run(flags, output: Path, seconds: float, seed: int) -> dict:
    """One row: the classifier, its prior, the peer, the plan and the self-checks."""
    report = json.loads((output / "report.json").read_text())
    data = load_data(parse_command(flags))
    labeled = np.asarray(report["selection"]["indices"])
    names = [str(n) for n in data.target_names]
    clf_pool, n_classes = classifier_on_pool(output, data, labeled, names)
    ls_pool, ls_test = label_spreading_peer(data, labeled, seed)
    checks = report.get("self_checks", {})
    training = checks.get("training", {})
    verdict = (checks.get("classifier") or {}).get("chosen", "-")
    row = {
        "classifier_pool": round(clf_pool, 4),
        "classifier_test": round(report["classifier"].get("test_accuracy", float("nan")), 4),
        # the trained model's, whether returned or not (the test set only monitored training)
        "final_model_test": round((report["classifier"].get("history") or [{}])[-1].get(
            "monitor_accuracy", float("nan")), 4),
        "prior_pool": round(report["prior"]["accuracy"], 4),
        "prior_ece": round(report["prior"]["ece"], 4),
        "label_spreading_pool": round(ls_pool, 4),
        "label_spreading_test": round(ls_test, 4),
        "classes_predicted": n_classes,
        "steps_run": training.get("flexmatch_steps_run"),
        "steps_planned": report["plan"]["flexmatch_steps"],
        "slowdown": training.get("slowdown"),
        # SimSiam's planned steps (more than its default when FlexMatch gets none) and the
        # step its time limit stopped it at (None: all of them ran)
        "simsiam_steps": report["plan"]["simsiam_steps"],
        "simsiam_stopped_at": training.get("simsiam_stopped_at"),
        "returned": "prior-fit" if report["classifier"].get("fell_back") or training.get(
            "flexmatch_steps_run") == 0 else "trained",
        "self_check": verdict,
        "class_coverage": report["selection"].get("class_coverage"),
        "cached_stages": len(report.get("cached_stages", [])),
        "seconds": round(seconds, 1),
    }
    row["meets_targets"] = bool(row["classifier_pool"] >= row["prior_pool"] - PRIOR_MARGIN
                                and row["classifier_pool"] >= row["label_spreading_pool"]
                                and row["classifier_test"] >= row["label_spreading_test"]
                                and n_classes >= MIN_CLASSES)
    return row


def run_grid(args, save=None) -> list[dict]:
    """Every run of the grid, in order; ``save(rows)`` after each (a long grid cut short keeps
    the runs it finished)."""
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench_robust_"))
    for data in args.data:
        for budget in args.budgets:
            for seed in args.seeds:
                for scenario in args.scenarios:
                    flags = command_flags(data, budget, seed, scenario, args)
                    key = f"{data}-{budget}-{seed}"
                    # "cache" re-runs "normal" with its stage cache; the others start empty
                    cache = work / f"cache-{key}-{'normal' if scenario == 'cache' else scenario}"
                    output = work / f"run-{key}-{scenario}"
                    seconds = run_command(flags, output, cache, busy=scenario == "busy")
                    row = {"data": data, "budget": budget, "seed": seed, "scenario": scenario,
                           **score_run(flags, output, seconds, seed)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    if save is not None:
                        save(rows)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and spread per (data, budget, scenario) over the seeds."""
    groups = {}
    for row in rows:
        groups.setdefault((row["data"], row["budget"], row["scenario"]), []).append(row)
    summary = []
    for (data, budget, scenario), group in groups.items():
        def stat(key):
            values = np.array([r[key] for r in group], dtype=float)
            return f"{100 * values.mean():.1f} ± {100 * values.std():.1f}"

        summary.append({
            "data": data, "labels": budget, "scenario": scenario, "seeds": len(group),
            "classifier (pool)": stat("classifier_pool"), "prior (pool)": stat("prior_pool"),
            "LabelSpreading (pool)": stat("label_spreading_pool"),
            "classifier (test)": stat("classifier_test"),
            "trained model (test)": stat("final_model_test"),
            "LabelSpreading (test)": stat("label_spreading_test"),
            "prior ECE": f"{np.mean([r['prior_ece'] for r in group]):.3f}",
            "classes": "/".join(str(r["classes_predicted"]) for r in group),
            "steps run/planned": ", ".join(f"{r['steps_run']}/{r['steps_planned']}" for r in group),
            "SimSiam steps": ", ".join(
                str(r.get("simsiam_steps", "-")) if r.get("simsiam_stopped_at") is None
                else f"{r['simsiam_stopped_at']}/{r['simsiam_steps']}" for r in group),
            "returned": ", ".join(r["returned"] for r in group),
            "targets met": f"{sum(r['meets_targets'] for r in group)}/{len(group)}",
        })
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", choices=sorted(DATA_FLAGS), default=["digits", "fashion"])
    parser.add_argument("--budgets", nargs="+", type=int, default=[10, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--fashion-n", type=int, default=5000,
                        help="Fashion-MNIST pool size (random training images; test: the test split)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="override the default preset's budget (smoke tests only)")
    parser.add_argument("--name", default="robust")
    args = parser.parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k != "name"}

    def save(rows):
        save_results(f"{args.name}_runs", rows, title="as3l robustness: every run", settings=settings)
        save_results(args.name, summarize(rows), settings=settings,
                     title="as3l robustness: the default run against its prior and LabelSpreading "
                           "(accuracy %, mean ± std over seeds)")

    save(run_grid(args, save))


if __name__ == "__main__":
    main()

"""Calibration of the priors at one label per class, and the label-free feature check.

Three parts, on scikit-learn's digits and Fashion-MNIST (splits and encoder scenarios in
``_prior_features.py``; the tuning split chose every constant, the reported split is run
once, after):

1. **calibration** -- ``CombinedPropagator`` before (``LLGCPropagator(alpha=0.99)``, the
   former default) and after (``alpha="auto"``, the default now) on PCA-50 pixels and on
   ``f_fine`` of the default CPU SimSiam, multi-cluster and random selection (on the same
   features), 10 and 40 labels, 3 seeds; prior accuracy and ECE (15 bins) of the unlabeled
   samples, and scikit-learn's ``LabelSpreading`` as the peer;
2. **feature check** -- the encoder scenarios (default, 20 steps, random encoder, 300
   images for 2 epochs), 3 seeds, 10 and 40 labels chosen by ``MultiClusterSelector`` on
   ``f_fine`` (as ``as3l`` does): the prior of ``f_fine``, of PCA-50 pixels, of
   ``LabelSpreading`` on the pixels, and of ``compare_feature_spaces`` (the rule);
3. **pixels peer at 40 labels** -- ``CombinedPropagator`` before / after against
   ``LabelSpreading`` on PCA-50 pixels for every selector of ``bench_selection.py``.

SimSiam features are cached under ``benchmarks/.cache/prior_checks/`` (gitignored) and the
per-cell results in ``records_<split>.jsonl`` there, so that a rerun only computes what is
missing (``--recompute`` starts over).

Usage::

    nice -n 5 python benchmarks/bench_prior_checks.py --split tuning    # prior_checks_tuning
    nice -n 5 python benchmarks/bench_prior_checks.py --split reported  # prior_checks
    python benchmarks/bench_prior_checks.py --quick                      # a smoke run, not saved
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.semi_supervised import LabelSpreading  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _prior_features as features  # noqa: E402
from _common import RESULTS_DIR, markdown_table, save_results  # noqa: E402

from as3l_sklearn.diagnostics import (  # noqa: E402
    SHARPNESS,
    _weight_of_first,
    compare_feature_spaces,
    pixel_features,
)
from as3l_sklearn.metrics import (  # noqa: E402
    class_coverage,
    expected_calibration_error,
    prior_accuracy,
)
from as3l_sklearn.propagation import CombinedPropagator, LLGCPropagator  # noqa: E402
from as3l_sklearn.selection import MultiClusterSelector, RandomSelector  # noqa: E402

PEER = "LabelSpreading"
#: other values of compare_feature_spaces' sharpness, scored beside the default (inf: a hard
#: choice of the better-scored space)
SHARPNESS_VARIANTS = (0.0, 1.0, 2.0, 4.0, 8.0, np.inf)
SELECTIONS = {"multi-cluster": MultiClusterSelector, "random": RandomSelector}


def _quiet_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        return model.fit(X, y)


def _quality(labels, proba, classes, unlabeled):
    return {"accuracy": prior_accuracy(labels, proba, classes=classes, mask=unlabeled),
            "ece": expected_calibration_error(labels, proba, classes=classes, mask=unlabeled)}


def _missing_classes(labels, proba, classes, unlabeled):
    """Where the errors come from: unlabeled samples of classes without any label (always
    wrong) against those of labeled classes, with the prior's mean confidence on each."""
    missing = unlabeled & ~np.isin(labels, classes)
    covered = unlabeled & ~missing
    confidence = proba.max(axis=1)
    row = {"missing_share": float(missing.sum() / unlabeled.sum()),
           "confidence_missing": float(confidence[missing].mean()) if missing.any() else None,
           "confidence_covered": float(confidence[covered].mean())}
    row.update({f"{key}_covered": value
                for key, value in _quality(labels, proba, classes, covered).items()})
    return row


def _partial(labels, index):
    y = np.full(len(labels), -1)
    y[index] = labels[index]
    return y


def _propagators(seed):
    """Before (alpha=0.99, the former default), after (the default now), and the peer."""
    return {"before": CombinedPropagator(graph_propagator=LLGCPropagator(alpha=0.99),
                                         random_state=seed),
            "after": CombinedPropagator(random_state=seed),
            PEER: LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99)}


def _space(dataset, split, name, seed, budget, scenario="default"):
    if name == "pixels":
        flat, labels = features.pixels(dataset, split, scenario, seed)
        return pixel_features(flat), labels
    return features.fine_features(dataset, split, scenario, seed, budget)


class Records:
    """Per-cell results, appended to a jsonl file so that an interrupted run resumes."""

    def __init__(self, path: Path, recompute: bool):
        self.path = path
        self.rows, seen = [], set()
        if path.exists() and not recompute:
            for line in filter(None, path.read_text().splitlines()):
                row = json.loads(line)
                # a cell written twice (two runs at once) counts once
                key = (row["cell"], row.get("method"), row.get("alpha"), row.get("whiten"))
                if key not in seen:
                    seen.add(key)
                    self.rows.append(row)
        self.done = {row["cell"] for row in self.rows}

    def add(self, cell, rows):
        with self.path.open("a") as stream:
            for row in rows:
                row["cell"] = cell
                stream.write(json.dumps(row) + "\n")
        self.rows.extend(rows)
        self.done.add(cell)


def calibration_cells(args, records):
    """Part 1: CombinedPropagator before / after and the peer, per space and selection."""
    for dataset in args.datasets:
        for space in ("pixels", "f_fine"):
            for selection, selector in SELECTIONS.items():
                for budget in args.budgets:
                    for seed in range(args.seeds):
                        cell = f"calibration|{dataset}|{space}|{selection}|{budget}|{seed}"
                        if cell in records.done:
                            continue
                        X, labels = _space(dataset, args.split, space, seed, budget)
                        index = selector(random_state=seed).fit(X).select(budget)
                        y = _partial(labels, index)
                        rows = []
                        for method, model in _propagators(seed).items():
                            model = _quiet_fit(model, X, y)
                            proba, classes = model.label_distributions_, model.classes_
                            rows.append({"part": "calibration", "dataset": dataset,
                                         "features": space, "selection": selection,
                                         "labels": budget, "seed": seed, "method": method,
                                         "classes": class_coverage(labels, index),
                                         **_quality(labels, proba, classes, y == -1),
                                         **_missing_classes(labels, proba, classes, y == -1)})
                        records.add(cell, rows)
                        print(cell, [f"{r['method']} {r['accuracy']:.3f}/{r['ece']:.3f}"
                                     for r in rows], flush=True)


def feature_check_cell(dataset, split, scenario, seed, budget):
    """Part 2, one cell: labels from multi-cluster selection on f_fine, four priors."""
    fine, labels = _space(dataset, split, "f_fine", seed, budget, scenario)
    pixels, _ = _space(dataset, split, "pixels", seed, budget, scenario)
    index = MultiClusterSelector(random_state=seed).fit(fine).select(budget)
    y = _partial(labels, index)
    unlabeled = y == -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check = compare_feature_spaces({"f_fine": fine, "pixels": pixels}, y, random_state=seed)
    peer = _quiet_fit(LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.99), pixels, y)
    row = {"part": "feature check", "dataset": dataset, "scenario": scenario, "labels": budget,
           "sharpness": SHARPNESS,
           "seed": seed, "n_samples": len(labels), "classes": class_coverage(labels, index),
           "weight_f_fine": check.weights["f_fine"],
           "stability_f_fine": check.scores["f_fine"]["stability"],
           "stability_pixels": check.scores["pixels"]["stability"],
           "held_out_ll_f_fine": check.scores["f_fine"]["held_out_log_likelihood"],
           "held_out_ll_pixels": check.scores["pixels"]["held_out_log_likelihood"]}
    priors = {"f_fine": check.priors["f_fine"], "pixels": check.priors["pixels"],
              PEER: peer.label_distributions_, "rule": check.label_distributions}
    for name, proba in priors.items():
        quality = _quality(labels, proba, check.classes, unlabeled)
        row[f"acc {name}"], row[f"ece {name}"] = quality["accuracy"], quality["ece"]
    for sharpness in SHARPNESS_VARIANTS:  # the tuning of the rule's constant
        if sharpness == SHARPNESS:
            continue
        weight = _weight_of_first(check.scores["f_fine"], check.scores["pixels"], sharpness)
        proba = weight * check.priors["f_fine"] + (1 - weight) * check.priors["pixels"]
        row[f"acc rule sharpness={sharpness:g}"] = _quality(labels, proba, check.classes,
                                                            unlabeled)["accuracy"]
    return row


def feature_check_cells(args, records):
    for dataset in args.datasets:
        for scenario in args.scenarios:
            for budget in args.budgets:
                for seed in range(args.seeds):
                    cell = f"feature check|{dataset}|{scenario}|{budget}|{seed}"
                    if cell in records.done:
                        continue
                    start = time.perf_counter()
                    row = feature_check_cell(dataset, args.split, scenario, seed, budget)
                    row["seconds"] = time.perf_counter() - start
                    records.add(cell, [row])
                    print(cell, {k: round(v, 3) for k, v in row.items()
                                 if k.startswith("acc") or k == "weight_f_fine"}, flush=True)


def peer_cells(args, records):
    """Part 3: before / after / LabelSpreading on PCA pixels for every benchmark selector."""
    from bench_selection import make_selectors

    for dataset in args.datasets:
        for seed in range(args.seeds):
            X, labels = _space(dataset, args.split, "pixels", seed, args.peer_budget)
            for selection, selector in make_selectors(seed).items():
                cell = f"peer|{dataset}|{selection}|{args.peer_budget}|{seed}"
                if cell in records.done:
                    continue
                index = np.asarray(selector.fit(X).select(args.peer_budget))
                y = _partial(labels, index)
                rows = []
                for method, model in _propagators(seed).items():
                    model = _quiet_fit(model, X, y)
                    rows.append({"part": "peer", "dataset": dataset, "selection": selection,
                                 "labels": args.peer_budget, "seed": seed, "method": method,
                                 **_quality(labels, model.label_distributions_,
                                            model.classes_, y == -1)})
                records.add(cell, rows)
                print(cell, [f"{r['method']} {r['accuracy']:.3f}" for r in rows], flush=True)


TUNING_ALPHAS = (0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.999)
TUNING_SIZES = {"digits": (899,), "fashion": (900, 2500, 5000, 10000)}


def _tuning_pixels(dataset, size, seed, whiten=False):
    """PCA-50 pixels of ``size`` tuning images (a seeded subset when smaller than the split)."""
    from sklearn.decomposition import PCA

    flat, labels = features.pixels(dataset, "tuning", "default", 0)
    if size < len(labels):
        keep = np.sort(np.random.RandomState(seed).choice(len(labels), size, replace=False))
        flat, labels = flat[keep], labels[keep]
    if whiten:
        return PCA(50, whiten=True, random_state=0).fit_transform(flat).astype(np.float32), labels
    return pixel_features(flat), labels


def tuning_cells(args, records):
    """The tuning split only: alpha against the graph's size, and whitened PCA pixels."""
    for dataset in args.datasets:
        for size in TUNING_SIZES[dataset]:
            for seed in range(2 if dataset == "fashion" else args.seeds):
                cell = f"alpha|{dataset}|{size}|{seed}"
                if cell in records.done:
                    continue
                X, labels = _tuning_pixels(dataset, size, seed)
                y = _partial(labels, MultiClusterSelector(random_state=seed).fit(X).select(10))
                rows = []
                for alpha in TUNING_ALPHAS:
                    model = _quiet_fit(CombinedPropagator(
                        graph_propagator=LLGCPropagator(alpha=alpha), random_state=seed), X, y)
                    rows.append({"part": "alpha", "dataset": dataset, "n": size, "seed": seed,
                                 "alpha": alpha, **_quality(labels, model.label_distributions_,
                                                            model.classes_, y == -1)})
                records.add(cell, rows)
                print(cell, [f"{r['alpha']}: {r['accuracy']:.3f}/{r['ece']:.3f}" for r in rows],
                      flush=True)
        for budget in args.budgets:
            for seed in range(args.seeds):
                cell = f"whiten|{dataset}|{budget}|{seed}"
                if cell in records.done:
                    continue
                rows = []
                for whiten in (False, True):
                    X, labels = _tuning_pixels(dataset, 10**9, seed, whiten=whiten)
                    selector = MultiClusterSelector(random_state=seed).fit(X)
                    y = _partial(labels, selector.select(budget))
                    model = _quiet_fit(CombinedPropagator(random_state=seed), X, y)
                    rows.append({"part": "whiten", "dataset": dataset, "labels": budget,
                                 "seed": seed, "whiten": whiten, **_quality(
                                     labels, model.label_distributions_, model.classes_, y == -1)})
                records.add(cell, rows)


def tuning_tables(rows):
    alpha_rows = []
    for key, group in _groups([r for r in rows if r["part"] == "alpha"], ("dataset", "n")).items():
        line = {"dataset": key[0], "n": key[1], "seeds": len({r["seed"] for r in group})}
        for alpha, runs in sorted(_groups(group, ("alpha",)).items()):
            line[f"alpha={alpha[0]:g}"] = (f"{100 * np.mean([r['accuracy'] for r in runs]):.1f} / "
                                           f"{np.mean([r['ece'] for r in runs]):.3f}")
        alpha_rows.append(line)
    whiten_rows = []
    for key, group in _groups([r for r in rows if r["part"] == "whiten"],
                              ("dataset", "labels")).items():
        line = dict(zip(("dataset", "labels"), key))
        for whiten, runs in sorted(_groups(group, ("whiten",)).items()):
            name = "whitened" if whiten[0] else "not whitened"
            line[f"acc % {name}"] = _mean_std([r["accuracy"] for r in runs], 100)
            line[f"ECE {name}"] = _mean_std([r["ece"] for r in runs], digits=3)
        whiten_rows.append(line)
    return alpha_rows, whiten_rows


def default_sharpness(row):
    """The sharpness the row's ``acc rule`` was measured with (2 before it became 1)."""
    return row.get("sharpness", 2.0)


def _rule_column(row):
    """The record's column of the rule's accuracy at the current default sharpness."""
    if default_sharpness(row) == SHARPNESS:
        return "acc rule"
    return f"acc rule sharpness={SHARPNESS:g}"


def sharpness_table(rows):
    """The rule's accuracy for each sharpness, against the better space, per budget."""
    table = []
    checks = [r for r in rows if r["part"] == "feature check"]
    for budget, group in sorted(_groups(checks, ("labels",)).items()):
        best = np.array([max(r["acc f_fine"], r["acc pixels"]) for r in group])
        for sharpness in sorted({default_sharpness(group[0]), *SHARPNESS_VARIANTS}):
            column = ("acc rule" if sharpness == default_sharpness(group[0])
                      else f"acc rule sharpness={sharpness:g}")
            if column not in group[0]:
                continue
            gap = 100 * (np.array([r[column] for r in group]) - best)
            table.append({"labels": budget[0], "sharpness": f"{sharpness:g}", "cells": len(group),
                          "worst gap to the better space (points)": round(float(gap.min()), 1),
                          "mean gap": round(float(gap.mean()), 2),
                          "cells more than 2 points below": int((gap < -2).sum())})
    return table


def _mean_std(values, scale=1.0, digits=1):
    values = scale * np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _groups(rows, keys):
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def calibration_table(rows):
    table = []
    keys = ("dataset", "features", "selection", "labels")
    for key, group in _groups([r for r in rows if r["part"] == "calibration"], keys).items():
        by = _groups(group, ("method",))
        line = dict(zip(keys, key))
        line["classes"] = round(float(np.mean([r["classes"] for r in by[("after",)]])), 1)
        for method in ("before", "after", PEER):
            line[f"acc % {method}"] = _mean_std([r["accuracy"] for r in by[(method,)]], 100)
        for method in ("before", "after", PEER):
            line[f"ECE {method}"] = _mean_std([r["ece"] for r in by[(method,)]], digits=3)
        table.append(line)
    return table


def missing_classes_table(rows):
    """ECE of the default prior split by samples of labeled / unlabeled classes."""
    table = []
    keys = ("dataset", "features", "selection", "labels")
    after = [r for r in rows if r["part"] == "calibration" and r["method"] == "after"
             and "missing_share" in r]
    for key, group in _groups(after, keys).items():
        line = dict(zip(keys, key))
        line["samples of classes without a label %"] = _mean_std(
            [r["missing_share"] for r in group], 100)
        missing = [r["confidence_missing"] for r in group if r["confidence_missing"] is not None]
        line["confidence on them"] = f"{np.mean(missing):.2f}" if missing else "-"
        line["acc % of the others"] = _mean_std([r["accuracy_covered"] for r in group], 100)
        covered = np.mean([r["confidence_covered"] for r in group])
        line["confidence on the others"] = f"{covered:.2f}"
        line["ECE of the others"] = _mean_std([r["ece_covered"] for r in group], digits=3)
        line["ECE of all"] = _mean_std([r["ece"] for r in group], digits=3)
        table.append(line)
    return table


def feature_check_table(rows):
    table = []
    keys = ("dataset", "scenario", "labels")
    for key, group in _groups([r for r in rows if r["part"] == "feature check"], keys).items():
        line = dict(zip(keys, key))
        line["n"] = group[0]["n_samples"]
        rule = [r[_rule_column(r)] for r in group]
        for name in ("f_fine", "pixels", PEER):
            line[f"acc % {name}"] = _mean_std([r[f"acc {name}"] for r in group], 100)
        line["acc % rule"] = _mean_std(rule, 100)
        best = [max(r["acc f_fine"], r["acc pixels"]) for r in group]
        line["rule - better space (worst seed)"] = round(
            100 * min(a - b for a, b in zip(rule, best)), 1)
        line["rule - LS (worst seed)"] = round(100 * min(a - r[f"acc {PEER}"]
                                                        for a, r in zip(rule, group)), 1)
        line["ECE f_fine"] = _mean_std([r["ece f_fine"] for r in group], digits=3)
        line["ECE pixels"] = _mean_std([r["ece pixels"] for r in group], digits=3)
        # measured at the run's sharpness (2 in the tuning run)
        line["weight f_fine *"] = _mean_std([r["weight_f_fine"] for r in group], digits=2)
        line["ECE rule *"] = _mean_std([r["ece rule"] for r in group], digits=3)
        table.append(line)
    return table


def peer_table(rows):
    table = []
    keys = ("dataset", "selection", "labels")
    for key, group in _groups([r for r in rows if r["part"] == "peer"], keys).items():
        by = _groups(group, ("method",))
        line = dict(zip(keys, key))
        means = {}
        for method in ("before", "after", PEER):
            values = [r["accuracy"] for r in by[(method,)]]
            means[method] = np.mean(values)
            line[f"acc % {method}"] = _mean_std(values, 100)
        line["before < LS"] = bool(means["before"] < means[PEER])
        line["after < LS"] = bool(means["after"] < means[PEER])
        table.append(line)
    return table


def save(args, records):
    name = "prior_checks" if args.split == "reported" else f"prior_checks_{args.split}"
    calibration = calibration_table(records.rows)
    notes = (
        "Part 1 above: prior accuracy / ECE (15 bins) of the unlabeled samples, mean ± std over "
        "the seeds; `before` is `CombinedPropagator` with `LLGCPropagator(alpha=0.99)` (the "
        "former default), `after` with `alpha=\"auto\"` (the default now); labels chosen on "
        "the same features; `classes`: classes among the labels.\n\n"
        "Part 2, the feature check: labels chosen by `MultiClusterSelector` on `f_fine`; "
        "priors of `CombinedPropagator` on `f_fine` and on PCA-50 pixels, `LabelSpreading` on "
        "the pixels, and `compare_feature_spaces` (the rule, at the default sharpness "
        f"{SHARPNESS:g}); the two differences are the worst seed's, in points; the columns "
        "marked * were measured at the sharpness of the run (`sharpness` in the records: 2 in "
        "the tuning run, the default then).\n\n" + markdown_table(feature_check_table(records.rows))
        + "\nPart 3, `CombinedPropagator` against `LabelSpreading` on PCA-50 pixels, "
        f"{args.peer_budget} labels, every selector of `bench_selection.py`:\n\n"
        + markdown_table(peer_table(records.rows)))
    notes += ("\nWhere the calibration error of the default prior (`after`) comes from: "
              "unlabeled samples of classes that got no label (necessarily wrong) and the "
              "others:\n\n" + markdown_table(missing_classes_table(records.rows)))
    notes += (f"\nThe rule's sharpness ({SHARPNESS:g} is the default; inf a hard choice; the "
              "tuning run measured `acc rule` at 2, the default then):\n\n") + markdown_table(
        sharpness_table(records.rows))
    if args.split == "tuning":
        alpha_rows, whiten_rows = tuning_tables(records.rows)
        notes += ("\nTuning of `alpha`: prior accuracy % / ECE of `CombinedPropagator` with "
                  "`LLGCPropagator(alpha=...)`, PCA-50 pixels of `n` tuning images, 10 "
                  "multi-cluster labels, mean over the seeds:\n\n" + markdown_table(alpha_rows)
                  + "\nPCA-50 pixels whitened or not (labels chosen on each), "
                  "`CombinedPropagator()`:\n\n" + markdown_table(whiten_rows))
    settings = {"split": args.split, "datasets": args.datasets, "seeds": args.seeds,
                "budgets": args.budgets, "scenarios": args.scenarios,
                "pixels": "PCA-50 of pixels / 255 (as3l_sklearn.diagnostics.pixel_features)",
                "load_average_at_end": os.getloadavg()}
    title = f"Prior checks ({args.split} split): calibration at one label per class, feature check"
    if args.quick:
        print(markdown_table(calibration), notes)
        return
    save_results(name, calibration, title=title, settings=settings, notes=notes)
    path = RESULTS_DIR / f"{name}.json"
    payload = json.loads(path.read_text())
    payload["records"] = records.rows
    path.write_text(json.dumps(payload, indent=2, default=str))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=features.SPLITS, default="reported")
    parser.add_argument("--datasets", nargs="+", choices=features.DATASETS,
                        default=list(features.DATASETS))
    parser.add_argument("--scenarios", nargs="+", choices=features.SCENARIOS,
                        default=list(features.SCENARIOS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--peer-budget", type=int, default=40)
    parser.add_argument("--parts", nargs="+", default=None,
                        choices=["calibration", "feature-check", "peer", "tuning"],
                        help="default: all three, and 'tuning' on the tuning split")
    parser.add_argument("--recompute", action="store_true", help="ignore the cached records")
    parser.add_argument("--features-only", action="store_true",
                        help="fit and cache the encoders, nothing else")
    parser.add_argument("--quick", action="store_true", help="digits, one seed, not saved")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds, args.scenarios = ["digits"], 1, ["default", "20 steps"]
    if args.features_only:
        features.build_all(args.datasets, (args.split,), args.scenarios, range(args.seeds),
                           args.budgets)
        return
    features.CACHE_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "_quick" if args.quick else ""
    records = Records(features.CACHE_DIR / f"records_{args.split}{suffix}.jsonl",
                      args.recompute or args.quick)
    parts = {"calibration": calibration_cells, "feature-check": feature_check_cells,
             "peer": peer_cells, "tuning": tuning_cells}
    if args.parts is None:
        args.parts = ["calibration", "feature-check", "peer"] + (
            ["tuning"] if args.split == "tuning" else [])
    for part in args.parts:
        parts[part](args, records)
    save(args, records)


if __name__ == "__main__":
    main()

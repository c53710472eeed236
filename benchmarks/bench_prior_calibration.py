"""Label-free calibration of the ``as3l`` prior: ECE before and after, at 1 and 4 labels per class.

Each cell is (data set, selection, budget, seed) on a split of ``_prior_features.py``
(digits: 898 or 899 images; Fashion-MNIST: 10,000 training images): the labels are chosen on
``f_fine`` of the default CPU SimSiam (``StableCoverSelector``, the ``as3l`` default, or
``RandomSelector``), and the prior is built as ``as3l`` builds it
(``cli._stages.make_propagator("combined", ...)`` in
``compare_feature_spaces({"f_fine": ..., "pixels": pixel_features(...)})``). Reported per
cell, on the unlabeled samples: the accuracy of the prior before and after the calibration
(identical by construction: the arg-max does not move; checked), the ECE (15 bins) before
and after, the mean confidence before and after, the label-free estimate of the accuracy
against the actual one, and the temperature.

The method (the graph part's expectation of the prior's accuracy as the target of the mean
confidence) was chosen on the tuning split among other label-free estimates (cluster-graph
agreement, the agreement of the four parts, of the two spaces, the stability under moved
labels); the reported split was run once, after.

Priors are cached per cell under ``benchmarks/.cache/prior_calibration/`` (gitignored;
``--recompute`` refits them); the SimSiam and ``f_fine`` features come from the cache of
``bench_prior_checks.py`` (fitted there when missing, which takes hours on a CPU).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_prior_calibration.py --split reported
    OMP_NUM_THREADS=1 python benchmarks/bench_prior_calibration.py --split tuning
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _prior_features as features  # noqa: E402
from _common import RESULTS_DIR, markdown_table, save_results  # noqa: E402

from as3l_sklearn.cli._stages import SELECTORS, make_propagator  # noqa: E402
from as3l_sklearn.diagnostics import compare_feature_spaces, pixel_features  # noqa: E402
from as3l_sklearn.metrics import expected_calibration_error, prior_accuracy  # noqa: E402

CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "prior_calibration"
SELECTIONS = ("stablecover", "random")
SELECTIONS_CLS = {name: SELECTORS[name] for name in SELECTIONS}
TARGET_ECE = 0.10


def fit_cell(dataset, split, selection, budget, seed):
    """The prior of one cell as ``as3l`` builds it, before and after the calibration."""
    fine, labels = features.fine_features(dataset, split, "default", seed, budget)
    flat, _ = features.pixels(dataset, split, "default", seed)
    index = np.asarray(SELECTIONS_CLS[selection](random_state=seed).fit(fine).select(budget))
    y = np.full(len(labels), -1)
    y[index] = labels[index]
    spaces = {"f_fine": fine, "pixels": pixel_features(flat, random_state=seed)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check = compare_feature_spaces(spaces, y, random_state=seed,
                                       propagator=make_propagator("combined", len(y), seed))
    return {"labels": labels, "y": y, "classes": np.asarray(check.classes),
            "before": check.uncalibrated, "after": check.label_distributions,
            "temperature": np.float64(check.temperature),
            "estimated_accuracy": np.float64(check.estimated_accuracy),
            "weight_f_fine": np.float64(check.weights["f_fine"])}


def cell(dataset, split, selection, budget, seed, recompute=False):
    """The cached arrays of one cell (fitted on the first call or with ``recompute``)."""
    path = CACHE_DIR / f"{dataset}_{split}_{selection}_{budget}_s{seed}.npz"
    if recompute or not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **fit_cell(dataset, split, selection, budget, seed))
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def cell_row(arrays):
    """Accuracy, ECE, confidence before / after, and the estimate, on the unlabeled samples."""
    unlabeled = arrays["y"] == -1
    labels, classes = arrays["labels"][unlabeled], arrays["classes"]
    row = {}
    for when in ("before", "after"):
        proba = arrays[when][unlabeled]
        row[f"accuracy {when}"] = float(prior_accuracy(labels, proba, classes=classes))
        row[f"ECE {when}"] = float(expected_calibration_error(labels, proba, classes=classes))
        row[f"confidence {when}"] = float(proba.max(axis=1).mean())
    if not np.array_equal(arrays["before"].argmax(axis=1), arrays["after"].argmax(axis=1)):
        raise AssertionError("the calibration moved an arg-max")
    row["estimated accuracy"] = float(arrays["estimated_accuracy"])
    row["temperature"] = float(arrays["temperature"])
    row["classes labeled"] = int(len(np.unique(arrays["y"][~unlabeled])))
    return row


def summary(rows):
    """Mean ± std over the seeds per (data set, selection, budget)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["selection"], row["budget"]), []).append(row)
    table = []
    for (dataset, selection, budget), group in groups.items():
        line = {"data set": dataset, "selection": selection, "labels": budget}
        for key, label, digits in (("accuracy after", "accuracy %", 1),
                                   ("estimated accuracy", "estimated %", 1),
                                   ("confidence before", "confidence before", 3),
                                   ("temperature", "temperature", 2),
                                   ("ECE before", "ECE before", 3), ("ECE after", "ECE after", 3)):
            values = np.array([r[key] for r in group]) * (100 if "%" in label else 1)
            line[label] = f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"
        line[f"cells ECE after <= {TARGET_ECE}"] = (
            f"{sum(r['ECE after'] <= TARGET_ECE for r in group)}/{len(group)}")
        table.append(line)
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=features.SPLITS, default="reported")
    parser.add_argument("--datasets", nargs="+", choices=features.DATASETS,
                        default=list(features.DATASETS))
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recompute", action="store_true", help="refit the cached priors")
    args = parser.parse_args(argv)
    rows = []
    for dataset in args.datasets:
        for selection in SELECTIONS:
            for budget in args.budgets:
                for seed in range(args.seeds):
                    arrays = cell(dataset, args.split, selection, budget, seed, args.recompute)
                    row = {"dataset": dataset, "selection": selection, "budget": budget,
                           "seed": seed, **cell_row(arrays)}
                    print({k: (round(v, 3) if isinstance(v, float) else v)
                           for k, v in row.items()}, flush=True)
                    rows.append(row)
    name = "prior_calibration" + ("" if args.split == "reported" else f"_{args.split}")
    notes = ("Mean ± std over the seeds of the unlabeled samples' prior: the accuracy (the same "
             "before and after the calibration in every cell, checked), the label-free "
             "estimate of it, the mean confidence before, the fitted temperature, and the ECE "
             "(15 bins) before and after. Per cell:\n\n" + markdown_table(rows))
    settings = {"split": args.split, "datasets": args.datasets, "budgets": args.budgets,
                "seeds": args.seeds, "selections": list(SELECTIONS),
                "prior": "compare_feature_spaces(f_fine, PCA-50 pixels) of as3l's "
                         "CombinedPropagator, calibration='auto'",
                "threads": os.environ.get("OMP_NUM_THREADS")}
    save_results(name, summary(rows), title=f"Label-free calibration of the prior "
                 f"({args.split} split)", settings=settings, notes=notes)
    path = RESULTS_DIR / f"{name}.json"
    payload = json.loads(path.read_text())
    payload["cells"] = rows  # the per-cell rows, for reading back without the markdown
    path.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()

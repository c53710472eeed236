"""The ``as3l`` command: the whole AS3L chain with a report.

embed (SimSiam) -> fine-tune (Eq. 1) -> select ``--budget`` -> annotate -> propagate priors
-> train prior-guided FlexMatch -> report, optionally against a random-selection + plain
FlexMatch baseline with the same budget (``--compare``).

Annotation comes from the data set's own labels in demo mode (the default), or from a CSV
filled in by a person: run once with ``--export-annotations DIR`` (writes the selected images
and ``DIR/manifest.csv``), fill the label column, then run again with
``--annotations DIR/manifest.csv``. Everything is seeded by ``--seed``, so the second run
selects the same images.

Examples
--------
Demo on the embedded digits data, a few minutes on a laptop CPU::

    as3l --output runs/demo --compare --plot

Fashion-MNIST (``apt-get install dataset-fashion-mnist``) on a GPU::

    as3l --dataset fashion-mnist --device cuda --budget 10 --n-train 60000 --output runs/fmnist
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "stl10", "folder")
SELECTORS = ("multicluster", "random", "kmedoids", "coreset", "typiclust", "probcover")
PRIORS = ("combined", "seeded-kmeans", "llgc")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``as3l`` command."""
    parser = argparse.ArgumentParser(
        prog="as3l",
        description="Active Self-Semi-Supervised Learning: select images to label, propagate "
        "prior pseudo-labels, train a prior-guided FlexMatch classifier, and report.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=DATASETS, default="digits",
                      help="data set (default: the embedded scikit-learn digits)")
    data.add_argument("path", nargs="?", default=None,
                      help="image folder for --dataset folder (class sub-folders, unlabeled/ for unlabeled images)")
    data.add_argument("--root", default=None, help="local root of a torchvision-style data set")
    data.add_argument("--n-train", type=int, default=None,
                      help="use a random subset of this many training images (default: all; 10000 for fashion-mnist on CPU)")
    data.add_argument("--test-size", type=float, default=0.3,
                      help="held-out fraction when the data set has no test split (default 0.3)")

    method = parser.add_argument_group("method")
    method.add_argument("--budget", type=int, default=10, help="number of images to annotate (default 10)")
    method.add_argument("--selector", choices=SELECTORS, default="multicluster")
    method.add_argument("--backbone", default="auto",
                        help="small_cnn, small_cnn_2x2, resnet18_cifar, wrn28_2, resnet18 or auto (by image size and device)")
    method.add_argument("--image-size", type=int, default=None,
                        help="side the encoder sees, in pixels (default: the images' own up to 32 px on CPU, 224 on CUDA)")
    method.add_argument("--embed-epochs", type=int, default=None,
                        help="SimSiam epochs (default: a budget of optimizer steps, 1,000 on CPU)")
    method.add_argument("--max-iter", type=int, default=None, help="FlexMatch steps (default: scaled to the data)")
    method.add_argument("--prior", choices=PRIORS, default="combined",
                        help="prior pseudo-labels: combined (cluster votes + graph, the measured "
                             "best), seeded-kmeans (the paper's) or llgc (graph only)")
    method.add_argument("--prior-mode", choices=("remove", "update"), default="remove")
    method.add_argument("--compare", action="store_true",
                        help="also run random selection + plain FlexMatch with the same budget")

    io = parser.add_argument_group("annotation and output")
    io.add_argument("--annotations", default=None, help="manifest.csv filled by a person (instead of demo labels)")
    io.add_argument("--export-annotations", default=None, metavar="DIR",
                    help="write the selected images and a manifest to fill in, then stop")
    io.add_argument("--output", default="runs/as3l", help="directory for report.json and plots")
    io.add_argument("--plot", action="store_true", help="write plots (needs matplotlib)")
    io.add_argument("--device", default="auto", help="auto, cpu or cuda")
    io.add_argument("--seed", type=int, default=0)
    io.add_argument("--quiet", action="store_true", help="only the final report")
    return parser


class _Stages:
    """Prints one progress line per stage and keeps the wall time of each."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.seconds: dict[str, float] = {}

    def run(self, name: str, function, *args, **kwargs):
        if not self.quiet:
            print(f"[as3l] {name} ...", flush=True)
        start = time.perf_counter()
        result = function(*args, **kwargs)
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        if not self.quiet:
            print(f"[as3l] {name} done in {elapsed:.1f} s", flush=True)
        return result


def load_data(args) -> dict:
    """Load the chosen data set as train/test images with labels (-1 where unknown)."""
    from sklearn.model_selection import train_test_split

    from . import datasets
    from .metrics import labeled_mask

    rng = np.random.RandomState(args.seed)
    if args.dataset == "digits":
        X, y = datasets.load_digits_images(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=y, random_state=args.seed)
    elif args.dataset == "fashion-mnist":
        X_train, y_train = datasets.load_fashion_mnist(root=args.root, split="train", return_X_y=True)
        X_test, y_test = datasets.load_fashion_mnist(root=args.root, split="test", return_X_y=True)
    elif args.dataset in ("cifar10", "cifar100"):
        if args.root is None:
            raise SystemExit(f"--dataset {args.dataset} needs --root (a local torchvision data root)")
        loader = datasets.load_cifar10 if args.dataset == "cifar10" else datasets.load_cifar100
        X_train, y_train = loader(args.root, split="train", return_X_y=True)
        X_test, y_test = loader(args.root, split="test", return_X_y=True)
    elif args.dataset == "stl10":
        if args.root is None:
            raise SystemExit("--dataset stl10 needs --root (a local torchvision data root)")
        X_train, y_train = datasets.load_stl10(args.root, split="train+unlabeled", return_X_y=True)
        X_test, y_test = datasets.load_stl10(args.root, split="test", return_X_y=True)
    else:  # folder
        if args.path is None:
            raise SystemExit("--dataset folder needs the folder path: as3l --dataset folder PATH")
        X, y = datasets.load_image_folder(args.path, return_X_y=True)
        labeled = np.flatnonzero(labeled_mask(y))
        test = np.zeros(len(y), dtype=bool)
        if labeled.size >= 10 and len(np.unique(y[labeled])) > 1:
            # hold out part of the labeled images to measure the classifier
            held_out = rng.choice(labeled, size=int(round(args.test_size * labeled.size)), replace=False)
            test[held_out] = True
        X_train, y_train, X_test, y_test = X[~test], y[~test], X[test], y[test]

    n_train = args.n_train
    if n_train is None and args.dataset in ("fashion-mnist", "cifar10", "cifar100", "stl10"):
        from .utils import resolve_device

        n_train = None if resolve_device(args.device) != "cpu" else 10000
    if n_train is not None and n_train < len(X_train):
        keep = np.sort(rng.choice(len(X_train), size=n_train, replace=False))
        X_train, y_train = X_train[keep], y_train[keep]
    y_test = np.asarray(y_test)
    return {"X_train": X_train, "y_train": np.asarray(y_train), "X_test": X_test, "y_test": y_test,
            "test_labeled": bool(len(y_test)) and bool(labeled_mask(y_test).all())}


def _make_selector(name: str, seed: int):
    from . import selection

    classes = {
        "multicluster": selection.MultiClusterSelector,
        "random": selection.RandomSelector,
        "kmedoids": selection.KMedoidsSelector,
        "coreset": selection.CoresetSelector,
        "typiclust": selection.TypiClustSelector,
        "probcover": selection.ProbCoverSelector,
    }
    return classes[name](random_state=seed)


def _make_propagator(name: str, n_samples: int, seed: int):
    from .propagation import CombinedPropagator, LLGCPropagator, SeededKMeansPropagator

    if name == "llgc":
        return LLGCPropagator()
    seeded = SeededKMeansPropagator(n_clusters=_propagation_ks(n_samples), random_state=seed)
    if name == "seeded-kmeans":
        return seeded
    return CombinedPropagator(cluster_propagator=seeded, graph_propagator=LLGCPropagator())


def _propagation_ks(n_samples: int) -> list[int]:
    """The paper's K list (10..60), kept below the number of samples for tiny data."""
    return [k for k in (10, 20, 30, 40, 50, 60) if k <= n_samples] or [max(1, n_samples // 2)]


def run_pipeline(args, stages: _Stages | None = None) -> dict:
    """Run the AS3L chain described by parsed ``args``; return the report as a dict."""
    from .classification import PriorGuidedFlexMatchClassifier
    from .embedding import ClusterFineTuner, SimSiamEmbedder
    from .metrics import class_coverage, expected_calibration_error, labeled_mask, prior_accuracy
    from .selection import export_for_annotation, read_annotations
    from .utils import check_budget, resolve_device

    stages = stages or _Stages(args.quiet)
    device = resolve_device(args.device)
    data = stages.run("load data", load_data, args)
    X, y_true = data["X_train"], data["y_train"]
    budget = check_budget(args.budget, len(X), name="--budget")
    verbose = 0 if args.quiet else 1
    report: dict = {
        "config": dict(vars(args)),
        "device": device,
        "data": {"dataset": args.dataset, "n_train": int(len(X)), "n_test": int(len(data["X_test"])),
                 "image_shape": list(np.asarray(X).shape[1:])},
    }

    embedder = SimSiamEmbedder(backbone=args.backbone, max_epochs=args.embed_epochs or "auto",
                               image_size=args.image_size or "auto", device=device, random_state=args.seed,
                               verbose=verbose)
    f_self = stages.run("embed (SimSiam)", embedder.fit_transform, X)
    tuner = ClusterFineTuner(n_clusters=budget, random_state=args.seed, device=device, verbose=verbose)
    f_fine = stages.run("fine-tune features (Eq. 1)", tuner.fit_transform, f_self)

    selector = _make_selector(args.selector, args.seed)
    indices = stages.run(f"select {budget} images ({args.selector})",
                         lambda: selector.fit(f_fine).select(budget))
    known = labeled_mask(y_true)
    report["selection"] = {"selector": args.selector, "indices": [int(i) for i in indices]}
    if known[indices].all():
        report["selection"]["class_coverage"] = int(class_coverage(y_true, indices))
        report["selection"]["n_classes"] = int(len(np.unique(y_true[known])))

    output = Path(args.output)
    if args.export_annotations:
        manifest = export_for_annotation(X, indices, args.export_annotations)
        print(f"[as3l] wrote {len(indices)} images to annotate and {manifest}; fill its 'label' column, "
              f"then run again with --annotations {manifest}")
        report["selection"]["manifest"] = str(manifest)
        return report

    if args.annotations:
        y_partial = read_annotations(args.annotations, n_samples=len(X))
        missing = np.setdiff1d(indices, np.flatnonzero(labeled_mask(y_partial)))
        if missing.size:
            print(f"[as3l] note: {missing.size} selected images have no label in {args.annotations}")
    else:
        if not known[indices].all():
            raise SystemExit("demo mode needs the data set's labels for the selected images; "
                             "use --export-annotations DIR, then --annotations DIR/manifest.csv")
        y_partial = np.full(len(X), -1, dtype=np.int64)
        y_partial[indices] = y_true[indices]

    propagator = _make_propagator(args.prior, len(X), args.seed)
    stages.run(f"propagate prior pseudo-labels ({args.prior})", propagator.fit, f_fine, y_partial)
    priors = propagator.label_distributions_
    unlabeled = ~labeled_mask(y_partial) & known
    if unlabeled.any():
        valid = np.isin(y_true[unlabeled], propagator.classes_)
        report["prior"] = {
            "accuracy": float(prior_accuracy(y_true[unlabeled], priors[unlabeled], classes=propagator.classes_)),
            "ece": float(expected_calibration_error(y_true[unlabeled], priors[unlabeled], classes=propagator.classes_)),
            "covered_fraction": float(np.mean(propagator.covered_)),
            "labels_seen_fraction": float(valid.mean()),
        }

    classifier = PriorGuidedFlexMatchClassifier(
        encoder=embedder, prior_mode=args.prior_mode, max_iter=args.max_iter or "auto", device=device,
        random_state=args.seed, verbose=verbose)
    fit_kwargs = {"prior_proba": priors}
    # The test set only monitors training (a learning curve); no checkpoint is chosen on it,
    # and the reported test accuracy is the final EMA model's. Choosing the best of ~20
    # checkpoints on the test set would report a maximum, not an estimate.
    if data["test_labeled"]:
        fit_kwargs.update(X_monitor=data["X_test"], y_monitor=data["y_test"])
    stages.run("train prior-guided FlexMatch", classifier.fit, X, y_partial, **fit_kwargs)
    report["classifier"] = _classifier_report(classifier, data)

    if args.compare:
        rng_selector = _make_selector("random", args.seed)
        random_indices = rng_selector.fit(f_fine).select(budget)
        y_random = np.full(len(X), -1, dtype=np.int64)
        y_random[random_indices] = y_true[random_indices]
        # same SimSiam encoder and steps: the comparison isolates selection and priors
        plain = PriorGuidedFlexMatchClassifier(
            encoder=embedder, prior=None, max_iter=classifier.n_iter_, device=device,
            random_state=args.seed, verbose=verbose)
        plain_kwargs = {k: v for k, v in fit_kwargs.items() if k != "prior_proba"}
        stages.run("baseline: random selection + plain FlexMatch", plain.fit, X, y_random, **plain_kwargs)
        report["baseline"] = {
            "selection": {"selector": "random", "indices": [int(i) for i in random_indices],
                          "class_coverage": int(class_coverage(y_true, random_indices))},
            "classifier": _classifier_report(plain, data),
        }

    report["seconds"] = {k: round(v, 2) for k, v in stages.seconds.items()}
    output.mkdir(parents=True, exist_ok=True)
    if args.plot:
        report["plots"] = _plots(output, f_fine, y_true, indices, priors, unlabeled, propagator.classes_,
                                 classifier, report.get("baseline") and plain)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
    return report



def _classifier_report(classifier, data) -> dict:
    result = {"steps": int(classifier.n_iter_),
              "model": "final EMA weights (no checkpoint chosen on any data)"}
    if data["test_labeled"]:
        result["test_accuracy"] = float(classifier.score(data["X_test"], data["y_test"]))
    history = getattr(classifier, "history_", None) or []
    result["history"] = [
        {k: v for k, v in row.items() if k in ("step", "monitor_accuracy", "mask_rate", "loss")}
        for row in history
    ]
    return result


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _plots(output: Path, f_fine, y_true, indices, priors, unlabeled, classes, classifier, baseline) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    written = []
    coords = PCA(n_components=2, random_state=0).fit_transform(f_fine)
    fig, ax = plt.subplots(figsize=(6, 5))
    colours = y_true.astype(float)  # -1 (unlabeled images of a folder) gets a colour of its own
    ax.scatter(coords[:, 0], coords[:, 1], c=colours, cmap="tab10", s=4, alpha=0.5)
    ax.scatter(coords[indices, 0], coords[indices, 1], c="black", marker="*", s=120, label="selected")
    ax.set_title("Fine-tuned features (PCA), selected images marked")
    ax.legend(loc="best")
    written.append(_save(fig, output / "embedding_map.png"))

    if unlabeled.any():
        confidence = priors[unlabeled].max(axis=1)
        correct = classes[priors[unlabeled].argmax(axis=1)] == y_true[unlabeled]
        bins = np.linspace(0, 1, 11)
        which = np.clip(np.digitize(confidence, bins) - 1, 0, 9)
        accuracy = [correct[which == b].mean() if (which == b).any() else np.nan for b in range(10)]
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.bar(bins[:-1], accuracy, width=0.1, align="edge", edgecolor="black", label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
        ax.set_xlabel("prior confidence")
        ax.set_ylabel("accuracy")
        ax.set_title("Reliability of the prior pseudo-labels")
        ax.legend(loc="upper left")
        written.append(_save(fig, output / "prior_reliability.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, model in (("AS3L (prior-guided)", classifier), ("random + plain FlexMatch", baseline)):
        history = [row for row in (getattr(model, "history_", None) or [])
                   if "monitor_accuracy" in row] if model else []
        if history:
            ax.plot([r["step"] for r in history], [r["monitor_accuracy"] for r in history], label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy versus step")
    ax.legend(loc="lower right")
    written.append(_save(fig, output / "accuracy_vs_step.png"))
    return written


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def format_report(report: dict) -> str:
    """The final report as a few human-readable lines."""
    lines = ["", "AS3L report", "-----------",
             f"data: {report['data']['dataset']}, {report['data']['n_train']} training / "
             f"{report['data']['n_test']} test images, device {report['device']}"]
    sel = report["selection"]
    coverage = (f", class coverage {sel['class_coverage']}/{sel['n_classes']}" if "class_coverage" in sel else "")
    lines.append(f"selection: {len(sel['indices'])} images by {sel['selector']}{coverage}")
    if "prior" in report:
        p = report["prior"]
        lines.append(f"priors: accuracy {p['accuracy']:.3f}, ECE {p['ece']:.3f}, covered {p['covered_fraction']:.1%}")
    if "classifier" in report:
        c = report["classifier"]
        acc = f"test accuracy {c['test_accuracy']:.3f}" if "test_accuracy" in c else "no labeled test set"
        lines.append(f"classifier: {acc} after {c['steps']} steps")
    if "baseline" in report:
        b = report["baseline"]
        acc = b["classifier"].get("test_accuracy")
        lines.append(f"baseline (random + plain FlexMatch): class coverage {b['selection']['class_coverage']}, "
                     + (f"test accuracy {acc:.3f}" if acc is not None else "no labeled test set"))
    if "seconds" in report:
        lines.append("time per stage: " + ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``as3l`` console command."""
    args = build_parser().parse_args(argv)
    if args.dataset == "folder" and args.path is None:
        build_parser().error("--dataset folder needs the folder path: as3l --dataset folder PATH")
    try:
        report = run_pipeline(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"as3l: error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if not args.export_annotations:
        print(f"\nreport written to {Path(args.output) / 'report.json'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

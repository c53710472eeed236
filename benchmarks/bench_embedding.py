"""Embedding benchmark: do SimSiam features, their conditioning and the cluster fine-tuning
of AS3L (Eq. 1) make Fashion-MNIST easier to cluster?

One table, one row per representation of the same training images:

* raw pixels; a randomly initialised encoder (same architecture, untrained);
* ``f_self`` from :class:`SimSiamEmbedder` as it is, standardised, and PCA-whitened;
* ``f_fine`` from :class:`ClusterFineTuner` on raw ``f_self`` (the paper's literal setting)
  and with the default whitening.

Columns (all on the training subset unless said otherwise):

* ``knn20_test``: kNN (k=20, Euclidean, majority vote) accuracy of test images against the
  training images' features;
* ``purity_k10``: purity of K=10 k-means clusters (mean over 3 seeds);
* ``proto_1shot``: one random labelled image per class as prototype, every image labelled by
  its nearest prototype (mean over 5 draws);
* ``center_label``: label each of K=10 k-means clusters with the true class of the image
  nearest its center and propagate it to the cluster -- a one-run version of AS3L's
  selection + propagation with 10 labels (mean over 3 seeds).

Run on CPU (default: 4,000 training images, ``small_cnn``, 10 epochs, about 10 minutes on
two shared cores) or on a GPU at full size::

    python benchmarks/bench_embedding.py
    python benchmarks/bench_embedding.py --full --device cuda   # 60,000 images, 200 epochs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import save_results  # noqa: E402


def purity(labels_true, labels_pred) -> float:
    total = 0
    for cluster in np.unique(labels_pred):
        total += np.bincount(labels_true[labels_pred == cluster]).max()
    return total / len(labels_true)


def evaluate(name, F_train, y_train, F_test, y_test, *, seconds=None, n_clusters=10):
    from as3l_sklearn.cluster import kmeans, knn_search, nearest_centers

    F_train = np.ascontiguousarray(F_train, dtype=np.float32)
    F_test = np.ascontiguousarray(F_test, dtype=np.float32)
    _, neighbours = knn_search(F_train, F_test, 20)
    votes = np.apply_along_axis(np.bincount, 1, y_train[neighbours], minlength=10)
    knn = float((votes.argmax(axis=1) == y_test).mean())

    purities, center_label = [], []
    for seed in range(3):
        result = kmeans(F_train, n_clusters, random_state=seed)
        purities.append(purity(y_train, result.labels))
        # the image nearest each center is "annotated"; its label spreads to its cluster
        nearest, _ = nearest_centers(result.centers, F_train)
        propagated = y_train[nearest][result.labels]
        center_label.append(float((propagated == y_train).mean()))

    rng = np.random.RandomState(0)
    proto = []
    for _ in range(5):
        picks = np.array([rng.choice(np.flatnonzero(y_train == c)) for c in range(10)])
        assigned, _ = nearest_centers(F_train, F_train[picks])
        proto.append(float((y_train[picks][assigned] == y_train).mean()))

    row = {
        "representation": name,
        "dim": int(F_train.shape[1]),
        "knn20_test": knn,
        "purity_k10": float(np.mean(purities)),
        "proto_1shot": float(np.mean(proto)),
        "center_label": float(np.mean(center_label)),
    }
    if seconds is not None:
        row["seconds"] = round(seconds, 1)
    print(row, flush=True)
    return row


def random_encoder_features(embedder_params, images_train, images_test, seed):
    """Features of the untrained encoder (same architecture and seed, eval mode)."""
    import torch

    from as3l_sklearn.nn import make_backbone
    from as3l_sklearn.utils import check_images

    torch.manual_seed(seed)
    encoder = make_backbone(embedder_params["backbone"], in_channels=1, image_size=28).eval()
    out = []
    for images in (images_train, images_test):
        x = check_images(images)
        with torch.no_grad():
            out.append(torch.cat([encoder(torch.from_numpy(x[i : i + 512])) for i in range(0, len(x), 512)]).numpy())
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--backbone", default="small_cnn")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--full", action="store_true", help="60,000 training images, 10,000 test, 200 epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="embedding")
    parser.add_argument("--save-features", default=None, help="write f_self and labels to this .npz")
    args = parser.parse_args(argv)
    if args.full:
        args.n_train, args.n_test, args.epochs = 60_000, 10_000, max(args.epochs, 200)

    import torch

    from as3l_sklearn.datasets import load_fashion_mnist
    from as3l_sklearn.embedding import ClusterFineTuner, SimSiamEmbedder
    from as3l_sklearn.utils import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    X_train, y_train = load_fashion_mnist(split="train")
    X_test, y_test = load_fashion_mnist(split="test")
    rng = np.random.RandomState(args.seed)
    train_idx = np.sort(rng.choice(len(X_train), args.n_train, replace=False))
    test_idx = np.sort(rng.choice(len(X_test), args.n_test, replace=False))
    X_train, y_train = X_train[train_idx], y_train[train_idx]
    X_test, y_test = X_test[test_idx], y_test[test_idx]
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)

    rows = []
    flat = lambda X: X.reshape(len(X), -1).astype(np.float32) / 255  # noqa: E731
    rows.append(evaluate("raw pixels", flat(X_train), y_train, flat(X_test), y_test))

    params = dict(backbone=args.backbone, max_epochs=args.epochs, batch_size=batch_size, device=device,
                  random_state=args.seed, verbose=1)
    R_train, R_test = random_encoder_features(params, X_train, X_test, args.seed)
    rows.append(evaluate("random encoder", R_train, y_train, R_test, y_test))

    # hold 1,000 labelled test images out of training for the kNN monitor (labels not used to train)
    monitor = (X_test[:1000], y_test[:1000])
    embedder = SimSiamEmbedder(**params)
    start = time.perf_counter()
    embedder.fit(X_train, monitor=monitor)
    fit_seconds = time.perf_counter() - start
    images_per_second = args.n_train * embedder.n_epochs_ / fit_seconds
    F_train, F_test = embedder.transform(X_train), embedder.transform(X_test)
    history = embedder.net_.history
    print(f"SimSiam: {fit_seconds:.0f} s, {images_per_second:.0f} images/s, final loss "
          f"{history[-1, 'train_loss']:.3f}, z_std {history[-1, 'z_std']:.3f}", flush=True)
    rows.append(evaluate("f_self", F_train, y_train, F_test, y_test, seconds=fit_seconds))
    if args.save_features:
        np.savez(args.save_features, F_train=F_train, y_train=y_train, F_test=F_test, y_test=y_test)

    def conditioned(preprocessing, n_components):
        # the conditioning alone (ClusterFineTuner's fitted transform before its layer)
        fine = ClusterFineTuner(preprocessing=preprocessing, n_components=n_components, max_epochs=1,
                                random_state=args.seed, device=device).fit(F_train)
        return fine._condition(F_train), fine._condition(F_test)

    rows.append(evaluate("f_self standardized", *conditioned("standardize", None)[:1], y_train,
                         conditioned("standardize", None)[1], y_test))
    G_train, G_test = conditioned("whiten", 50)
    rows.append(evaluate("f_self whitened (PCA-50)", G_train, y_train, G_test, y_test))

    for label, kwargs in [
        ("f_fine, raw f_self (paper)", dict(preprocessing=None)),
        ("f_fine, standardized", dict(preprocessing="standardize")),
        ("f_fine, whitened PCA-50 (default)", dict(preprocessing="whiten", n_components=50)),
    ]:
        start = time.perf_counter()
        fine = ClusterFineTuner(n_clusters=10, n_runs=6, random_state=args.seed, device=device, **kwargs)
        fine.fit(F_train)
        seconds = time.perf_counter() - start
        print(f"{label}: Eq. 1 loss {fine.loss_curve_[0]:.4g} -> {fine.loss_curve_[-1]:.4g}", flush=True)
        rows.append(evaluate(label, fine.transform(F_train), y_train, fine.transform(F_test), y_test,
                             seconds=seconds))

    knn_monitor = [round(float(v), 4) for v in history[:, "knn_acc"]]
    settings = {
        "data": "Fashion-MNIST", "n_train": args.n_train, "n_test": args.n_test, "backbone": args.backbone,
        "max_epochs": args.epochs, "batch_size": embedder.batch_size_, "projector_dim": embedder.projector_dim_,
        "predictor_dim": embedder.predictor_dim_, "lr_base": embedder.lr, "device": device,
        "torch_threads": torch.get_num_threads(), "seed": args.seed,
        "simsiam_fit_seconds": round(fit_seconds, 1), "simsiam_images_per_second": round(images_per_second, 1),
        "simsiam_loss_per_epoch": [round(float(v), 4) for v in history[:, "train_loss"]],
        "z_std_per_epoch": [round(float(v), 4) for v in history[:, "z_std"]],
        "knn_monitor_per_epoch": knn_monitor,
        "fine_tuner": "n_clusters=10, n_runs=6, max_epochs=40, lr=%g, n_components=50 for whiten" % ClusterFineTuner().lr,
    }
    self_row = next(r for r in rows if r["representation"] == "f_self")
    white_row = next(r for r in rows if r["representation"].startswith("f_self whitened"))
    fine_rows = [r for r in rows if r["representation"].startswith("f_fine")]
    best_fine = max(fine_rows, key=lambda r: r["purity_k10"])
    notes = (
        f"SimSiam trained {embedder.n_epochs_} epochs on {args.n_train} images in {fit_seconds:.0f} s "
        f"({images_per_second:.0f} images/s, each image seen as two views). "
        f"Claim checked (paper section 3.2.1): f_fine clusters better than f_self. "
        f"K=10 purity: f_self {self_row['purity_k10']:.3f}, f_self whitened {white_row['purity_k10']:.3f}, "
        f"best f_fine ({best_fine['representation']}) {best_fine['purity_k10']:.3f}. "
        "Metrics: knn20_test = kNN-20 accuracy of test images against training features; purity_k10 = "
        "K=10 k-means purity (3 seeds); proto_1shot = nearest of one random labelled image per class "
        "(5 draws); center_label = label of the image nearest each K=10 center propagated to its cluster "
        "(3 seeds)."
    )
    save_results(args.name, rows, title="Embedding: raw, self-supervised, conditioned and fine-tuned features "
                 "(Fashion-MNIST)", settings=settings, notes=notes)


if __name__ == "__main__":
    main()

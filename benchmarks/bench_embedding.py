"""Embedding benchmark: do the learned features beat pixels, and does AS3L's fine-tuning help?

One run, one table, rows side by side on the same Fashion-MNIST training images (images
0 .. n_train-1; the defaults were tuned on images 50,000-60,000, see ``tune_embedding.py``):

* ``raw pixels``; ``PCA-50 whitened pixels``;
* ``random encoder``: the default CPU architecture, randomly initialised, evaluation mode;
* ``SimSiam (default)``: ``SimSiamEmbedder()`` with every default, i.e. the CPU budget;
* ``SimSiam (4x steps)``: the same with ``max_steps`` four times the default;
* ``SimSiam (rgb augment)``: the default budget with SimSiam's CIFAR augmentation instead of
  the grayscale recipe (what the augmentation choice is worth);
* ``lightly SimSiam``: the peer, lightly's heads, loss and augmentation
  (``lightly.transforms.SimSiamTransform``) with lightly's CIFAR-10 benchmark optimiser
  (SGD, lr ``0.06 * batch / 128``, momentum 0.9, weight decay 5e-4, cosine), on the same
  backbone, images, batch size and number of steps.

Columns (mean +- standard deviation over the seeds):

* ``knn20``: leave-one-out kNN-20 accuracy (cosine, majority vote) of ``f_self``;
* ``purity_self``, ``purity_fine``, ``purity_fine_paper``: purity of K=10 k-means clusters of
  ``f_self``, of ``f_fine`` from the default :class:`ClusterFineTuner` (PCA-50 whitening) and
  of ``f_fine`` in the paper-literal setting (``preprocessing=None``: raw features, output
  width = input width);
* ``prior10``: accuracy of the prior pseudo-labels of the unlabelled images with 10 labels:
  :class:`MultiClusterSelector` chooses 10 images on the default ``f_fine``, their true labels
  seed :class:`SeededKMeansPropagator` (the paper's K list 10..60) on the same features;
* ``fit_s``: seconds to fit the representation (SimSiam training; PCA for the pixel rows).

Run (about 46 minutes on one core of a shared 2-core CPU with the default seeds)::

    python benchmarks/bench_embedding.py
    python benchmarks/bench_embedding.py --device cuda --n-train 60000   # on a GPU
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


def evaluate(F, y, seed, device):
    """kNN-20, purities and the 10-label prior accuracy of one representation ``F``."""
    from as3l_sklearn.cluster import kmeans
    from as3l_sklearn.embedding import ClusterFineTuner
    from as3l_sklearn.embedding._simsiam import knn_loo_accuracy
    from as3l_sklearn.metrics import prior_accuracy
    from as3l_sklearn.propagation import SeededKMeansPropagator
    from as3l_sklearn.selection import MultiClusterSelector

    F = np.ascontiguousarray(F, dtype=np.float32)
    row = {"knn20": knn_loo_accuracy(F, y, k=20)}
    row["purity_self"] = purity(y, kmeans(F, 10, random_state=seed).labels)
    fine = ClusterFineTuner(n_clusters=10, random_state=seed, device=device).fit_transform(F)
    row["purity_fine"] = purity(y, kmeans(fine, 10, random_state=seed).labels)
    paper = ClusterFineTuner(n_clusters=10, preprocessing=None, random_state=seed, device=device).fit_transform(F)
    row["purity_fine_paper"] = purity(y, kmeans(paper, 10, random_state=seed).labels)
    indices = MultiClusterSelector(random_state=seed).fit(fine).select(10)
    y_partial = np.full(len(y), -1)
    y_partial[indices] = y[indices]
    propagator = SeededKMeansPropagator(random_state=seed).fit(fine, y_partial)
    unlabeled = y_partial == -1
    row["prior10"] = prior_accuracy(y, propagator.label_distributions_, classes=propagator.classes_, mask=unlabeled)
    return row


def encode(encoder, images, batch=1000):
    import torch

    encoder.eval()
    x = torch.from_numpy(images.reshape(len(images), 1, 28, 28).astype(np.float32) / 255)
    with torch.no_grad():
        return torch.cat([encoder(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy()


def lightly_simsiam(images, *, seed, steps, batch_size, projector_dim, predictor_dim):
    """The peer: lightly's SimSiam heads, loss and augmentation on our default backbone."""
    import torch
    from lightly.loss import NegativeCosineSimilarity
    from lightly.models.modules import SimSiamPredictionHead, SimSiamProjectionHead
    from lightly.transforms import SimSiamTransform
    from PIL import Image

    from as3l_sklearn.nn import make_backbone

    torch.manual_seed(seed)
    backbone = make_backbone("auto", in_channels=1, image_size=28, device="cpu")
    projector = SimSiamProjectionHead(backbone.out_dim, projector_dim, projector_dim)
    predictor = SimSiamPredictionHead(projector_dim, predictor_dim, projector_dim)
    # lightly's CIFAR-10 benchmark settings for 28-px grayscale: no blur, no ImageNet normalisation
    transform = SimSiamTransform(input_size=28, gaussian_blur=0.0, normalize=None)

    class Views(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, index):
            return transform(Image.fromarray(images[index].reshape(28, 28), mode="L"))

    loader = torch.utils.data.DataLoader(Views(), batch_size=batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed))
    parameters = [*backbone.parameters(), *projector.parameters(), *predictor.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.06 * batch_size / 128, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    criterion = NegativeCosineSimilarity()
    modules = torch.nn.ModuleList([backbone, projector, predictor]).train()
    step = 0
    while step < steps:
        for view1, view2 in loader:
            z1, z2 = projector(backbone(view1)), projector(backbone(view2))
            p1, p2 = predictor(z1), predictor(z2)
            loss = 0.5 * (criterion(p1, z2.detach()) + criterion(p2, z1.detach()))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step >= steps:
                break
    modules.eval()
    return backbone


def summarize(name, rows):
    out = {"representation": name, "seeds": len(rows)}
    for key in ("knn20", "purity_self", "purity_fine", "purity_fine_paper", "prior10", "fit_s"):
        values = np.array([r[key] for r in rows], dtype=float)
        digits = 1 if key == "fit_s" else 3
        out[key] = (f"{values.mean():.{digits}f} +- {values.std():.{digits}f}" if len(values) > 1
                    else f"{values[0]:.{digits}f}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--offset", type=int, default=0, help="first training image (tuning used 50,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds-4x", type=int, nargs="*", default=[0], help="seeds of the 4x-steps row")
    parser.add_argument("--seeds-lightly", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--seeds-rgb", type=int, nargs="*", default=[0], help="seeds of the rgb-augment row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the benchmark machine's 2 cores are shared)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="override the default step budget (quick checks of this script only)")
    parser.add_argument("--name", default="embedding")
    args = parser.parse_args(argv)

    import torch

    from as3l_sklearn.datasets import load_fashion_mnist
    from as3l_sklearn.embedding import SimSiamEmbedder
    from as3l_sklearn.embedding._simsiam import AUTO_STEPS
    from as3l_sklearn.nn import make_backbone

    torch.set_num_threads(args.threads)
    X, y = load_fashion_mnist(split="train")
    X, y = X[args.offset : args.offset + args.n_train], y[args.offset : args.offset + args.n_train]
    pixels = X.reshape(len(X), -1).astype(np.float32) / 255
    kind = "cuda" if args.device.startswith("cuda") else "cpu"
    default_steps = args.max_steps or AUTO_STEPS[kind]
    results = {}

    def record(name, seed, F, fit_s):
        row = evaluate(F, y, seed, args.device)
        row["fit_s"] = fit_s
        results.setdefault(name, []).append(row)
        print(name, seed, {k: round(v, 4) for k, v in row.items()}, flush=True)

    for seed in args.seeds:
        record("raw pixels", seed, pixels, 0.0)
        start = time.perf_counter()
        centered = pixels - pixels.mean(axis=0)
        _, singular, vt = np.linalg.svd(centered, full_matrices=False)
        whitened = centered @ vt[:50].T / (singular[:50] / np.sqrt(len(pixels) - 1))
        record("PCA-50 whitened pixels", seed, whitened, time.perf_counter() - start)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            random_encoder = make_backbone("auto", in_channels=1, image_size=28, device=args.device)
        record("random encoder", seed, encode(random_encoder, X), 0.0)

    settings = {}

    def simsiam(name, seeds, **params):
        embedder = None
        for seed in seeds:
            embedder = SimSiamEmbedder(device=args.device, random_state=seed, **params)
            start = time.perf_counter()
            embedder.fit(X)
            fit_s = time.perf_counter() - start
            history = embedder.net_.history
            settings[f"{name} seed {seed}"] = {
                "steps": embedder.n_steps_, "batch_size": embedder.batch_size_, "lr": round(embedder.lr_, 4),
                "backbone": embedder.backbone_, "feature_rank_per_epoch": [round(v, 1) for v in history[:, "feature_rank"]],
                "feature_std_last": round(history[-1, "feature_std"], 3), "collapsed": embedder.collapsed_}
            record(name, seed, embedder.transform(X), fit_s)
        return embedder

    budget = {} if args.max_steps is None else {"max_steps": args.max_steps}

    def save():
        """Write the table of the rows so far (called after every group, so a cut-short run keeps them)."""
        rows = [summarize(name, rows) for name, rows in results.items()]
        mean = {name: {key: float(np.mean([r[key] for r in rows_])) for key in rows_[0]}
                for name, rows_ in results.items()}
        ours, pixels_, pca = (mean.get(k) for k in ("SimSiam (default)", "raw pixels", "PCA-50 whitened pixels"))
        notes = ""
        if ours and pixels_ and pca:
            ours_rows = results["SimSiam (default)"]
            lightly = mean.get("lightly SimSiam", {}).get("knn20", float("nan"))
            notes = (
                f"Targets (issue): default SimSiam kNN-20 >= raw pixels + 0.02: {ours['knn20']:.3f} vs "
                f"{pixels_['knn20']:.3f}; its f_fine purity >= PCA pixels' f_fine purity + 0.10: "
                f"{ours['purity_fine']:.3f} vs {pca['purity_fine']:.3f}; fit <= 300 s: "
                f"{max(r['fit_s'] for r in ours_rows):.0f} s (slowest seed); not below lightly at the same steps: "
                f"{ours['knn20']:.3f} vs {lightly:.3f}. "
            )
        notes += (
            f"Fashion-MNIST training images {args.offset}-{args.offset + args.n_train - 1}; seeds {args.seeds} "
            f"(4x row: {args.seeds_4x}; rgb-augment row: {args.seeds_rgb}; lightly: {args.seeds_lightly}); "
            f"+- is the standard deviation over seeds. torch threads: {args.threads}."
        )
        run_settings = {"data": "Fashion-MNIST train", "images": [args.offset, args.offset + args.n_train],
                        "device": args.device, "default_steps": default_steps, "torch_threads": args.threads,
                        "runs": settings}
        save_results(args.name, rows, title="Embedding: pixels, random and SimSiam encoders, cluster fine-tuning "
                     f"(Fashion-MNIST, {args.n_train:,} images)", settings=run_settings, notes=notes,
                     columns=["representation", "seeds", "knn20", "purity_self", "purity_fine", "purity_fine_paper",
                              "prior10", "fit_s"])

    default = simsiam("SimSiam (default)", args.seeds, **budget)
    settings["default"] = {"steps": default.n_steps_, "batch_size": default.batch_size_, "sgd_lr": round(default.lr_, 4),
                           "backbone": default.backbone_, "projector_dim": default.projector_dim_,
                           "predictor_dim": default.predictor_dim_}
    save()
    for seed in args.seeds_lightly:
        start = time.perf_counter()
        backbone = lightly_simsiam(X, seed=seed, steps=default.n_steps_, batch_size=default.batch_size_,
                                   projector_dim=default.projector_dim_, predictor_dim=default.predictor_dim_)
        fit_s = time.perf_counter() - start
        record("lightly SimSiam", seed, encode(backbone, X), fit_s)
    save()
    simsiam("SimSiam (rgb augment)", args.seeds_rgb, augment="rgb", **budget)
    save()
    simsiam("SimSiam (4x steps)", args.seeds_4x, max_steps=4 * default_steps)
    save()


if __name__ == "__main__":
    main()

"""Write SimSiam + ClusterFineTuner features of Fashion-MNIST for the selection and
propagation benchmarks (their ``--features`` / ``--labels`` options).

SimSiam is trained on ``--n-fit`` training images (the CPU budget), then embeds ``--n``
training images; ``ClusterFineTuner`` (whitening to 50 dimensions, the default) is fitted
on those and its output ``f_fine`` is saved with the labels::

    python benchmarks/make_ffine_features.py --out /tmp/ffine
    python benchmarks/bench_selection.py --features /tmp/ffine/f_fine.npy \
        --labels /tmp/ffine/labels.npy --name selection_ffine --skip-timing
"""

import argparse
import time
from pathlib import Path

import numpy as np

from as3l_sklearn import ClusterFineTuner, SimSiamEmbedder
from as3l_sklearn.datasets import load_fashion_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="images to embed and save")
    parser.add_argument("--n-fit", type=int, default=4000, help="images SimSiam trains on")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-clusters", type=int, default=10, help="K of the fine-tuning k-means")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    images, labels = load_fashion_mnist(split="train")
    rng = np.random.RandomState(args.seed)
    index = np.sort(rng.choice(len(labels), args.n, replace=False))
    images, labels = images[index], labels[index]
    start = time.perf_counter()
    embedder = SimSiamEmbedder(backbone="small_cnn", max_epochs=args.epochs, device=args.device,
                               random_state=args.seed, verbose=1)
    embedder.fit(images[rng.choice(args.n, min(args.n_fit, args.n), replace=False)])
    f_self = embedder.transform(images)
    f_fine = ClusterFineTuner(n_clusters=args.n_clusters, random_state=args.seed,
                              device=args.device).fit_transform(f_self)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "f_fine.npy", f_fine)
    np.save(args.out / "f_self.npy", f_self)
    np.save(args.out / "labels.npy", labels)
    print(f"f_fine {f_fine.shape} and labels written to {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

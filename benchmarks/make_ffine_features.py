"""Write SimSiam + ClusterFineTuner features of the reported Fashion-MNIST split for the
selection and propagation benchmarks (their ``--features`` / ``--labels`` options).

The images are those of ``bench_selection.py``'s reported split (a random 10,000 of the
training images with index < 50,000, seed 0). ``SimSiamEmbedder`` is trained on them with its
default budget for the machine (as a user would run it), ``ClusterFineTuner`` (defaults) is
fitted on the embeddings, and ``f_self``, ``f_fine`` and the labels are saved::

    python benchmarks/make_ffine_features.py --out /tmp/ffine
    python benchmarks/bench_propagation.py --features /tmp/ffine/f_fine.npy \
        --labels /tmp/ffine/labels.npy --name propagation_ffine --skip-timing
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_selection import REPORTED_END  # noqa: E402

from as3l_sklearn import ClusterFineTuner, SimSiamEmbedder  # noqa: E402
from as3l_sklearn.datasets import load_fashion_mnist  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="images of the reported split")
    parser.add_argument("--n-clusters", type=int, default=10, help="K of the fine-tuning k-means")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    images, labels = load_fashion_mnist(split="train")
    index = np.sort(np.random.RandomState(0).choice(REPORTED_END, args.n, replace=False))
    images, labels = images[index], labels[index]
    start = time.perf_counter()
    embedder = SimSiamEmbedder(device=args.device, random_state=args.seed, verbose=1)
    f_self = embedder.fit_transform(images)
    f_fine = ClusterFineTuner(n_clusters=args.n_clusters, random_state=args.seed,
                              device=args.device).fit_transform(f_self)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "f_fine.npy", f_fine)
    np.save(args.out / "f_self.npy", f_self)
    np.save(args.out / "labels.npy", labels)
    print(f"f_fine {f_fine.shape} and labels written to {args.out} in "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

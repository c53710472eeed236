"""Your own folder of images, with the annotation round trip.

A folder of unlabeled PNG files (made here from the digits so the example runs anywhere;
point ``--folder`` at your own) is embedded, the images to label are chosen and exported
with a CSV manifest; a person fills the ``label`` column (simulated here by writing the
digits' labels into the CSV as text); the labels are read back, validated, propagated into
prior pseudo-labels, and the priors are saved for review.

Run ``python examples/image_folder_annotation.py --folder my_images/ --output out/``;
without ``--folder`` it makes a demo folder. ``--quick`` is the tiny setting of the tests.
"""

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from as3l_sklearn import (
    ClusterFineTuner,
    MultiClusterSelector,
    SeededKMeansPropagator,
    SimSiamEmbedder,
    export_for_annotation,
    read_annotations,
)
from as3l_sklearn.datasets import load_digits_images, load_image_folder


def make_demo_folder(root: Path, n_images: int) -> np.ndarray:
    """Write digits as PNGs into ``root/unlabeled``; return their hidden labels."""
    X, y = load_digits_images(return_X_y=True)
    (root / "unlabeled").mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        Image.fromarray(X[i, :, :, 0]).save(root / "unlabeled" / f"img_{i:05d}.png")
    return y[:n_images]


def fill_manifest_like_a_person(manifest: Path, hidden_labels: np.ndarray) -> None:
    """What an annotator (or a labelling tool) does: type a label on each row of the CSV."""
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = str(hidden_labels[int(row["index"])])
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(quick: bool = False, folder: str | None = None, output: str | None = None) -> dict:
    output = Path(output or tempfile.mkdtemp(prefix="as3l_annotation_"))
    hidden = None
    if folder is None:
        folder = output / "images"
        hidden = make_demo_folder(Path(folder), 200 if quick else 1000)
    X, _ = load_image_folder(folder, return_X_y=True)
    print(f"{len(X)} images of shape {X.shape[1:]} from {folder}")

    budget = 10
    embedder = SimSiamEmbedder(max_epochs=2 if quick else 30, random_state=0)
    tuner = ClusterFineTuner(n_clusters=budget, max_epochs=5 if quick else 40, random_state=0)
    features = tuner.fit_transform(embedder.fit_transform(X))
    chosen = MultiClusterSelector(random_state=0).fit(features).select(budget)

    manifest = export_for_annotation(X, chosen, output / "to_annotate")
    print(f"wrote {len(chosen)} images and {manifest}: fill in its 'label' column")
    if hidden is None:
        print("label the images listed in the manifest, then read them with read_annotations()")
        return {"manifest": str(manifest)}

    fill_manifest_like_a_person(manifest, hidden)
    y = read_annotations(manifest, n_samples=len(X))
    propagator = SeededKMeansPropagator(random_state=0).fit(features, y)
    priors = propagator.label_distributions_
    np.savetxt(output / "priors.csv", priors, delimiter=",", fmt="%.4f",
               header=",".join(str(c) for c in propagator.classes_))
    unlabeled = y == -1
    accuracy = float(np.mean(propagator.transduction_[unlabeled] == hidden[unlabeled]))
    print(f"prior pseudo-labels for {unlabeled.sum()} unlabeled images: accuracy {accuracy:.3f} "
          f"(saved to {output / 'priors.csv'})")
    return {"manifest": str(manifest), "n_labeled": int((~unlabeled).sum()), "prior_accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="a folder of images (default: a demo folder)")
    parser.add_argument("--output", default=None, help="where the manifest and priors go")
    parser.add_argument("--quick", action="store_true", help="tiny setting for tests")
    args = parser.parse_args()
    main(args.quick, args.folder, args.output)

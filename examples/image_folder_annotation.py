"""Your own folder of images, with the annotation round trip by file name.

A folder of unlabeled PNG files (made here from the digits so the example runs anywhere;
point ``--folder`` at your own) is embedded, the images to label are chosen and exported as
``selection.csv`` (one row per image, keyed by its path relative to the folder) plus a Label
Studio task file; a person fills the ``label`` column (simulated here by writing the digits'
labels into the CSV); the labels are read back by file name, validated, propagated into prior
pseudo-labels, and the priors are saved per file, and as Label Studio pre-annotations, for
review. The ``as3l`` command does all of this with ``--export-annotations`` / ``--annotations``
(docs/walkthrough.md).

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
    write_label_studio_tasks,
)
from as3l_sklearn.datasets import load_digits_images, load_image_folder


def make_demo_folder(root: Path, n_images: int) -> dict:
    """Write digits as PNGs under ``root`` (in two batch folders that are not classes);
    return {relative file name: hidden label}."""
    X, y = load_digits_images(return_X_y=True)
    hidden = {}
    for i in range(n_images):
        name = f"batch{i % 2 + 1}/img_{i:05d}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(X[i, :, :, 0]).save(root / name)
        hidden[name] = str(y[i])
    return hidden


def fill_selection_like_a_person(selection: Path, hidden: dict) -> None:
    """What an annotator (or a labelling tool) does: type a label on each row of the CSV."""
    with open(selection, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["label"] = hidden[row["file"]]
    with open(selection, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(quick: bool = False, folder: str | None = None, output: str | None = None) -> dict:
    output = Path(output or tempfile.mkdtemp(prefix="as3l_annotation_"))
    hidden = None
    if folder is None:
        folder = output / "images"
        hidden = make_demo_folder(Path(folder), 200 if quick else 1000)
    # labels="none": sub-folders of a photo folder are not classes unless you say so
    images = load_image_folder(folder, labels="none", return_X_y=False)
    X, files = images.images, list(images.files)
    print(f"{len(X)} images of shape {X.shape[1:]} from {folder}")

    budget = 10
    embedder = SimSiamEmbedder(max_epochs=2 if quick else 30, random_state=0, verbose=1)
    tuner = ClusterFineTuner(n_clusters=budget, max_epochs=5 if quick else 40, random_state=0)
    print("1/3 SimSiam features and fine-tuning ...", flush=True)
    features = tuner.fit_transform(embedder.fit_transform(X))
    chosen = MultiClusterSelector(random_state=0).fit(features).select(budget)

    classes = [str(d) for d in range(10)] if hidden is not None else None
    selection = export_for_annotation(X, chosen, output / "to_annotate", class_names=classes,
                                      files=files, overwrite=True)
    # image URLs relative to Label Studio's document root, by default the folder's parent
    write_label_studio_tasks(output / "to_annotate" / "label_studio_tasks.json",
                             [files[i] for i in chosen], folder=folder)
    print(f"2/3 wrote {len(chosen)} images and {selection}: fill in its 'label' column")
    if hidden is None:
        print("label the images listed in selection.csv, then read them with "
              "read_annotations(path, files=...)")
        return {"manifest": str(selection)}

    fill_selection_like_a_person(selection, hidden)
    y = read_annotations(selection, n_samples=len(X), files=files)
    print("3/3 propagating the labels into prior pseudo-labels ...", flush=True)
    propagator = SeededKMeansPropagator(random_state=0).fit(features, y)
    priors = propagator.label_distributions_
    class_names = [str(c) for c in propagator.classes_]
    with open(output / "priors.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file"] + class_names)
        writer.writerows([file] + [f"{p:.4f}" for p in row] for file, row in zip(files, priors))
    # the labeled images keep the person's label; every other image starts from its prior
    write_label_studio_tasks(output / "label_studio_tasks.json", files, priors=priors,
                             classes=class_names, labels=y, folder=folder)
    unlabeled = np.array([label == -1 for label in y])
    truth = np.array([hidden[f] for f in files], dtype=object)
    predicted = np.array([str(c) for c in propagator.transduction_], dtype=object)
    accuracy = float(np.mean(predicted[unlabeled] == truth[unlabeled]))
    print(f"prior pseudo-labels for {unlabeled.sum()} unlabeled images: accuracy {accuracy:.3f} "
          f"(saved to {output / 'priors.csv'} and {output / 'label_studio_tasks.json'})")
    return {"manifest": str(selection), "n_labeled": int((~unlabeled).sum()), "prior_accuracy": accuracy}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="a folder of images (default: a demo folder)")
    parser.add_argument("--output", default=None, help="where selection.csv and the priors go")
    parser.add_argument("--quick", action="store_true", help="tiny setting for tests")
    args = parser.parse_args()
    main(args.quick, args.folder, args.output)

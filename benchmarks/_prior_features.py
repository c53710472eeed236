"""Data splits and cached encoder features for ``bench_prior_checks.py``.

Splits (the tuning split chose every design decision and constant; the reported split is
run once, after):

* digits (scikit-learn's 1,797 images): a fixed random half (``RandomState(0)``
  permutation, first 899 images) is the tuning split, the other 898 images the reported one;
* Fashion-MNIST training images: 50,000-59,999 are the tuning split; a random 10,000 of the
  images with index < 50,000 (``RandomState(0)``, the split of ``bench_propagation.py``)
  the reported one.

Encoder scenarios (``SCENARIOS``), each fitted once per data set, split and seed and cached
under ``benchmarks/.cache/prior_checks/`` (gitignored) as ``.npy`` files, so that reruns
only propagate:

* ``default``: ``SimSiamEmbedder(backbone="small_cnn_2x2", random_state=seed)`` with the
  CPU default budget (1,000 steps at batch 64), the ``as3l`` CPU setting;
* ``20 steps``: the same, stopped after 20 optimiser steps;
* ``random encoder``: the same network with its random initial weights (one step at a
  learning rate of 1e-9, so nothing is learned);
* ``300 images, 2 epochs``: a random 300 of the split's images (seeded), 2 epochs (8
  steps), as ``as3l --embed-epochs 2`` on a 300-image folder.

``f_fine`` is ``ClusterFineTuner(n_clusters=budget, random_state=seed)`` on those features
(the ``as3l`` command fine-tunes with K = the budget), also cached.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "prior_checks"
DATASETS = ("digits", "fashion")
SPLITS = ("tuning", "reported")
SCENARIOS = ("default", "20 steps", "random encoder", "300 images, 2 epochs")
FASHION_REPORTED_END = 50_000
FASHION_REPORTED_SIZE = 10_000
TINY_SIZE = 300

_ENCODER_PARAMS = {
    "default": {},
    "20 steps": {"max_steps": 20},
    "random encoder": {"max_steps": 1, "lr": 1e-9},
    "300 images, 2 epochs": {"max_epochs": 2},
}


def load_split(dataset: str, split: str):
    """Images ``(n, h, w, 1)`` uint8 and labels of one split of one data set."""
    from as3l_sklearn.datasets import load_digits_images, load_fashion_mnist

    if dataset == "digits":
        images, labels = load_digits_images()
        order = np.random.RandomState(0).permutation(len(labels))
        half = (len(labels) + 1) // 2
        index = np.sort(order[:half] if split == "tuning" else order[half:])
    elif dataset == "fashion":
        images, labels = load_fashion_mnist(split="train")
        if split == "tuning":
            index = np.arange(FASHION_REPORTED_END, len(labels))
        else:
            index = np.sort(np.random.RandomState(0).choice(
                FASHION_REPORTED_END, FASHION_REPORTED_SIZE, replace=False))
    else:
        raise ValueError(f"unknown data set {dataset!r}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    return images[index], labels[index]


def scenario_subset(scenario: str, n_samples: int, seed: int) -> np.ndarray:
    """Indices into the split that a scenario uses (all, or a seeded 300)."""
    if scenario == "300 images, 2 epochs":
        return np.sort(np.random.RandomState(1000 + seed).choice(n_samples, TINY_SIZE,
                                                                 replace=False))
    return np.arange(n_samples)


def _cached(name: str, compute):
    path = CACHE_DIR / f"{name}.npy"
    if path.exists():
        return np.load(path)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    array = np.asarray(compute(), dtype=np.float32)
    np.save(path, array)
    print(f"  cached {path.name} ({time.perf_counter() - start:.0f} s)", flush=True)
    return array


def _key(dataset, split, scenario, seed):
    return f"{dataset}_{split}_{scenario.replace(' ', '').replace(',', '_')}_s{seed}"


def self_features(dataset: str, split: str, scenario: str, seed: int):
    """``f_self`` of the scenario's images and their labels (SimSiam fitted on them)."""
    from as3l_sklearn import SimSiamEmbedder

    images, labels = load_split(dataset, split)
    subset = scenario_subset(scenario, len(labels), seed)
    images, labels = images[subset], labels[subset]

    def fit():
        embedder = SimSiamEmbedder(backbone="small_cnn_2x2", random_state=seed, n_threads=1,
                                   **_ENCODER_PARAMS[scenario])
        return embedder.fit_transform(images)

    return _cached(_key(dataset, split, scenario, seed) + "_fself", fit), labels


def fine_features(dataset: str, split: str, scenario: str, seed: int, budget: int):
    """``f_fine = ClusterFineTuner(n_clusters=budget)`` of the scenario's ``f_self``."""
    from as3l_sklearn import ClusterFineTuner

    f_self, labels = self_features(dataset, split, scenario, seed)

    def fit():
        tuner = ClusterFineTuner(n_clusters=budget, random_state=seed, n_threads=1)
        return tuner.fit_transform(f_self)

    return _cached(_key(dataset, split, scenario, seed) + f"_ffine{budget}", fit), labels


def pixels(dataset: str, split: str, scenario: str, seed: int):
    """Raw pixels / 255 of the scenario's images, flattened, and their labels."""
    images, labels = load_split(dataset, split)
    subset = scenario_subset(scenario, len(labels), seed)
    flat = images[subset].reshape(len(subset), -1).astype(np.float32) / 255.0
    return flat, labels[subset]


def build_all(datasets=DATASETS, splits=SPLITS, scenarios=SCENARIOS, seeds=(0, 1, 2),
              budgets=(10, 40)):
    """Fit and cache every encoder and fine-tuning the benchmark needs (the slow part)."""
    for split in splits:
        for seed in seeds:
            for dataset in datasets:
                for scenario in scenarios:
                    print(f"{dataset} {split} {scenario} seed {seed}", flush=True)
                    for budget in budgets:
                        fine_features(dataset, split, scenario, seed, budget)

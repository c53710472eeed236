"""Use the toolkit from existing scikit-learn code: clone, cross-validation, pickling, set_output.

A prior-label pipeline (SimSiam -> fine-tuning -> seeded k-means propagation) is an ordinary
scikit-learn classifier that accepts ``-1`` for unlabeled samples. This example:

* scores it by cross-validation *honestly*: ``SemiSupervisedKFold`` keeps every unlabeled
  sample in every training fold and ``make_labeled_scorer`` scores held-out labeled samples
  only (a plain ``cross_val_score`` would score ``-1`` as a class, scikit-learn #2593);
* clones it, pickles and reloads it, and checks the reloaded model predicts the same;
* asks the feature steps for a pandas DataFrame with ``set_output``.

Run ``python examples/sklearn_workflow.py``; ``--quick`` is the tiny setting of the tests.
"""

import argparse
import pickle

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline

from as3l_sklearn import ClusterFineTuner, SeededKMeansPropagator, SimSiamEmbedder
from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.metrics import make_labeled_scorer
from as3l_sklearn.model_selection import SemiSupervisedKFold


def main(quick: bool = False) -> dict:
    X, y_true = load_digits_images(return_X_y=True)
    if quick:
        X, y_true = X[:300], y_true[:300]
    rng = np.random.RandomState(0)
    y = np.full(len(X), -1)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y_true == c), 4, replace=False) for c in range(10)])
    y[labeled] = y_true[labeled]  # 4 labels per class, the rest unlabeled

    prior_pipe = Pipeline([
        ("embed", SimSiamEmbedder(max_epochs=2 if quick else 30, random_state=0, verbose=1)),
        ("fine", ClusterFineTuner(n_clusters=10, max_epochs=5 if quick else 40, random_state=0)),
        ("prop", SeededKMeansPropagator(n_clusters=[10, 20, 30], random_state=0)),
    ])

    print("cross-validating the prior pipeline: 4 fits, one progress bar each ...", flush=True)
    scores = cross_val_score(clone(prior_pipe), X, y, cv=SemiSupervisedKFold(n_splits=4),
                             scoring=make_labeled_scorer("accuracy"))
    print(f"held-out labeled accuracy per fold: {np.round(scores, 3).tolist()}")

    print("fitting it on all the data ...", flush=True)
    prior_pipe.fit(X, y)
    reloaded = pickle.loads(pickle.dumps(prior_pipe))
    same = bool(np.array_equal(reloaded.predict(X), prior_pipe.predict(X)))
    print(f"pickled and reloaded model predicts the same: {same}")

    features = prior_pipe[:-1].set_output(transform="pandas").transform(X[:5])
    print(f"features as a DataFrame: {features.shape}, columns {list(features.columns[:3])} ...")

    unlabeled = y == -1
    prior_accuracy = float(np.mean(prior_pipe.predict(X)[unlabeled] == y_true[unlabeled]))
    print(f"accuracy of the prior pseudo-labels on unlabeled images: {prior_accuracy:.3f}")
    return {"cv_scores": scores.tolist(), "reload_equal": same, "prior_accuracy": prior_accuracy,
            "feature_columns": list(features.columns)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting for tests")
    main(parser.parse_args().quick)

"""Choose the K list of the prior pseudo-labels by an honest grid search (Table 6 of AS3L).

``SeededKMeansPropagator`` clusters the samples once per entry of its K list and propagates
the labels of the annotated samples to their clusters. Which list works best depends on the
data. ``GridSearchCV`` can pick it -- but out of the box it would put unlabeled samples
(``y == -1``) in the test folds and score ``-1`` as a class. ``SemiSupervisedKFold`` folds only
the labeled samples (every unlabeled sample stays in every training fold) and
``make_labeled_scorer`` scores only labeled samples, so the search uses nothing but the
annotations a user actually has.

Features here are a PCA of scikit-learn's digits pixels (whitened, 30 dimensions); 40 samples
are chosen for annotation by AS3L's multi-cluster selection. The true labels of the other
samples are used only at the end, to show the prior accuracy and calibration (ECE) of each
K list, as in Table 6 of the paper.

Run ``python examples/grid_search_k_lists.py`` (a few seconds); ``--quick`` is the tiny
setting the test suite uses.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from as3l_sklearn.metrics import expected_calibration_error, make_labeled_scorer, prior_accuracy
from as3l_sklearn.model_selection import SemiSupervisedKFold
from as3l_sklearn.propagation import SeededKMeansPropagator
from as3l_sklearn.selection import MultiClusterSelector

K_LISTS = [[10, 20, 30, 40, 50, 60], [10] * 5, [10, 60, 60, 60, 60]]  # Table 6 of the paper


def main(quick: bool = False) -> dict:
    pixels, y_hidden = load_digits(return_X_y=True)  # y_hidden plays the annotator
    if quick:
        pixels, y_hidden = pixels[:300], y_hidden[:300]
    features = PCA(30, whiten=True, random_state=0).fit_transform(pixels)

    budget = 20 if quick else 40
    chosen = MultiClusterSelector(n_runs=6, random_state=0).fit(features).select(budget)
    y = np.full(len(y_hidden), -1)
    y[chosen] = y_hidden[chosen]  # the annotations

    search = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("prop", SeededKMeansPropagator(random_state=0))]),
        {"prop__n_clusters": K_LISTS},
        scoring=make_labeled_scorer("accuracy"),  # -1 samples are never scored
        cv=SemiSupervisedKFold(n_splits=3 if quick else 5, shuffle=True, random_state=0),
    ).fit(features, y)

    print(f"{len(y_hidden)} samples, {budget} labeled; "
          "cross-validated accuracy on held-out labels:")
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        print(f"  K={params['prop__n_clusters']}: {score:.3f}")
    print(f"chosen: K={search.best_params_['prop__n_clusters']}")

    # What the user cannot see: the priors against the hidden labels (Table 6)
    unlabeled = y == -1
    table = {}
    print("\nprior pseudo-labels of the unlabeled samples (hidden labels):")
    for k_list in K_LISTS:
        prop = Pipeline([("scale", StandardScaler()),
                         ("prop", SeededKMeansPropagator(n_clusters=k_list, random_state=0))])
        prior = prop.fit(features, y)[-1].label_distributions_
        accuracy = prior_accuracy(y_hidden, prior, mask=unlabeled)
        ece = expected_calibration_error(y_hidden, prior, mask=unlabeled)
        table[str(k_list)] = {"accuracy": accuracy, "ece": ece}
        print(f"  K={k_list}: accuracy {accuracy:.3f}, ECE {ece:.3f}")

    return {
        "cv_scores": dict(zip(map(str, K_LISTS), search.cv_results_["mean_test_score"].tolist())),
        "best_n_clusters": search.best_params_["prop__n_clusters"],
        "priors": table,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting used by the tests")
    main(quick=parser.parse_args().quick)

"""The whole AS3L scenario from scikit-learn code: select, annotate, prior-guided FlexMatch.

1. A Pipeline fitted on unlabeled images picks ``n_budget`` images to annotate.
2. "Annotation" reads the digits' labels for those images only; all others stay ``-1``.
3. ``PriorGuidedFlexMatchClassifier(prior=prior_pipe)`` fits the prior pipeline (SimSiam ->
   fine-tuning -> seeded k-means) transductively inside ``fit`` and uses its pseudo-labels
   for the first ``switch_iter`` steps (Eq. 5), then drops them.
4. The classifier predicts held-out digits, pickles, reloads and clones like any estimator.

Run ``python examples/train_prior_guided_classifier.py`` (a few minutes on a laptop CPU);
``--quick`` is the tiny setting of the tests.
"""

import argparse
import pickle

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from as3l_sklearn import (
    ClusterFineTuner,
    MultiClusterSelector,
    PriorGuidedFlexMatchClassifier,
    SeededKMeansPropagator,
    SimSiamEmbedder,
)
from as3l_sklearn.datasets import load_digits_images


def main(quick: bool = False) -> dict:
    X, y_true = load_digits_images(return_X_y=True)
    if quick:
        X, y_true = X[:300], y_true[:300]
    X_train, X_test, y_train_hidden, y_test = train_test_split(X, y_true, test_size=0.25,
                                                               stratify=y_true, random_state=0)
    budget, epochs, steps = 10, (2 if quick else 30), (6 if quick else 600)

    embedder = SimSiamEmbedder(max_epochs=epochs, random_state=0, verbose=1)
    select_pipe = Pipeline([("embed", embedder),
                            ("fine", ClusterFineTuner(n_clusters=budget, random_state=0)),
                            ("select", MultiClusterSelector(random_state=0))])
    print(f"1/2 choosing {budget} of {len(X_train)} images to label (SimSiam, fine-tuning, selection) ...",
          flush=True)
    chosen = select_pipe.fit(X_train).named_steps["select"].select(budget)

    y = np.full(len(X_train), -1)
    y[chosen] = y_train_hidden[chosen]  # the only labels a person provided

    # The prior is an estimator: the classifier clones it and fits it transductively on
    # (X_train, y) inside fit. The fitted embedder initialises the encoder, as in the paper.
    prior_pipe = Pipeline([("embed", SimSiamEmbedder(max_epochs=epochs, random_state=0, verbose=1)),
                           ("fine", ClusterFineTuner(n_clusters=budget, random_state=0)),
                           ("prop", SeededKMeansPropagator(random_state=0))])
    clf = PriorGuidedFlexMatchClassifier(prior=prior_pipe, encoder=embedder, max_iter=steps,
                                         switch_iter=steps // 3, random_state=0, verbose=1)
    print(f"2/2 training the prior-guided classifier for {steps} steps (the prior pipeline first) ...",
          flush=True)
    clf.fit(X_train, y)
    accuracy = float(clf.score(X_test, y_test))
    print(f"test accuracy with {budget} labels after {steps} steps: {accuracy:.3f}")

    reloaded = pickle.loads(pickle.dumps(clf))
    same = bool(np.array_equal(reloaded.predict(X_test), clf.predict(X_test)))
    print(f"reloaded classifier predicts the same: {same}; clone: {clone(clf)!r:.60}...")
    return {"accuracy": accuracy, "reload_equal": same, "indices": chosen.tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting for tests")
    main(parser.parse_args().quick)

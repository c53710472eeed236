"""Choose which images to annotate, in one shot, with a scikit-learn Pipeline.

SimSiam features -> cluster fine-tuning (Eq. 1) -> multi-cluster selection: the Pipeline is
fitted on unlabeled images only, then ``pipe[-1].select(n_budget)`` returns the indices of the
images a person should label. The digits' true labels are used only to show how many classes
the chosen images cover, against random picks.

Run ``python examples/select_images_to_label.py`` (about a minute on a laptop CPU);
``--quick`` is the tiny setting the test suite uses.
"""

import argparse

from sklearn.pipeline import Pipeline

from as3l_sklearn import ClusterFineTuner, MultiClusterSelector, RandomSelector, SimSiamEmbedder
from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.metrics import class_coverage


def main(quick: bool = False) -> dict:
    X, y_hidden = load_digits_images(return_X_y=True)  # y_hidden plays the annotator
    if quick:
        X, y_hidden = X[:300], y_hidden[:300]
    budget = 10

    pipe = Pipeline([
        ("embed", SimSiamEmbedder(max_epochs=2 if quick else 30, random_state=0, verbose=1)),
        ("fine", ClusterFineTuner(n_clusters=budget, max_epochs=5 if quick else 40, random_state=0)),
        ("select", MultiClusterSelector(n_runs=6, random_state=0)),
    ])
    print(f"SimSiam, fine-tuning and selection on {len(X)} images (one progress bar per fit) ...",
          flush=True)
    pipe.fit(X)  # no labels anywhere
    chosen = pipe[-1].select(n_budget=budget)

    features = pipe[:-1].transform(X)
    random_pick = RandomSelector(random_state=0).fit(features).select(budget)
    result = {
        "indices": chosen.tolist(),
        "multicluster_coverage": int(class_coverage(y_hidden, chosen)),
        "random_coverage": int(class_coverage(y_hidden, random_pick)),
    }
    print(f"annotate images {result['indices']}")
    print(f"classes covered: multi-cluster {result['multicluster_coverage']}/10, "
          f"random {result['random_coverage']}/10")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny setting for tests")
    main(parser.parse_args().quick)

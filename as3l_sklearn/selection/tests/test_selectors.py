"""Tests of the single-shot selectors: contract, coverage, determinism, bad input."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from as3l_sklearn.selection import (
    CoresetSelector,
    KMedoidsSelector,
    MaxHerdingSelector,
    MultiClusterSelector,
    ProbCoverSelector,
    RandomSelector,
    StableCoverSelector,
    TypiClustSelector,
)
from as3l_sklearn.selection._base import kcenter_greedy
from as3l_sklearn.selection._baselines import _typicality
from as3l_sklearn.selection._multicluster import _choose_groups, _stable_groups


def all_selectors():
    return [
        MultiClusterSelector(n_runs=3, random_state=0),
        RandomSelector(random_state=0),
        KMedoidsSelector(random_state=0),
        CoresetSelector(random_state=0),
        TypiClustSelector(random_state=0),
        ProbCoverSelector(random_state=0),
        MaxHerdingSelector(random_state=0),
        StableCoverSelector(n_runs=3, random_state=0),
    ]


def ids(estimator):
    return type(estimator).__name__


@pytest.fixture(scope="module")
def blobs():
    # 10 well-separated clusters of unequal sizes in 8-d
    sizes = [60, 55, 50, 45, 40, 35, 30, 30, 25, 20]
    X, y = make_blobs(n_samples=sizes, n_features=8, cluster_std=0.5, center_box=(-30, 30),
                      random_state=3)
    return X, y



@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
@pytest.mark.parametrize("n_budget", [1, 7, 30])
def test_exactly_budget_distinct_valid_indices(selector, n_budget, blobs):
    X, _ = blobs
    idx = selector.fit(X).select(n_budget)
    assert idx.dtype == np.int64
    assert idx.shape == (n_budget,)
    assert np.unique(idx).size == n_budget
    assert idx.min() >= 0 and idx.max() < X.shape[0]
    np.testing.assert_array_equal(selector.selected_indices_, idx)


@pytest.mark.parametrize(
    "selector",
    [MultiClusterSelector(random_state=0), KMedoidsSelector(random_state=0),
     TypiClustSelector(random_state=0), ProbCoverSelector(random_state=0)],
    ids=ids,
)
@pytest.mark.parametrize("seed", [0, 1])
def test_every_blob_covered_with_budget_10(selector, seed, blobs):
    X, y = blobs
    idx = selector.set_params(random_state=seed).fit_select(X, 10)
    assert sorted(set(y[idx].tolist())) == list(range(10))


def test_random_selection_misses_blobs_sometimes(blobs):
    # the coverage test above can fail: uniform picks do not cover all 10 blobs
    X, y = blobs
    coverage = [len(set(y[RandomSelector(random_state=s).fit_select(X, 10)])) for s in range(5)]
    assert min(coverage) < 10


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_same_seed_same_indices(selector, blobs):
    X, _ = blobs
    first = clone(selector).fit_select(X, 12)
    second = clone(selector).fit_select(X, 12)
    np.testing.assert_array_equal(first, second)
    # and select on the same fitted estimator is repeatable
    fitted = clone(selector).fit(X)
    np.testing.assert_array_equal(fitted.select(12), fitted.select(12))


@pytest.mark.parametrize(
    "selector", [s for s in all_selectors()
                 if not isinstance(s, (ProbCoverSelector, MaxHerdingSelector))], ids=ids)
def test_other_seed_other_indices(selector, blobs):
    # random_state is really used (ProbCover's greedy is seed-free once delta is set, and
    # MaxHerding is deterministic)
    X, _ = blobs
    picks = {tuple(clone(selector).set_params(random_state=s).fit_select(X, 25)) for s in range(4)}
    assert len(picks) > 1


def test_multicluster_groups_and_medoids():
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(0, 0.2, (40, 2)), rng.normal(6, 0.2, (25, 2)),
              rng.normal([0, 6], 0.2, (15, 2))]
    selector = MultiClusterSelector(n_runs=4, random_state=0).fit(X)
    idx = selector.select(3)
    assert selector.run_labels_.shape == (4, 80)
    assert selector.groups_.shape == (80,)
    np.testing.assert_array_equal(selector.group_sizes_, [40, 25, 15])
    np.testing.assert_array_equal(selector.selected_group_sizes_, [40, 25, 15])
    np.testing.assert_array_equal(selector.selected_groups_, [0, 1, 2])
    # the medoid is the member closest to its group's mean
    for rank, index in enumerate(idx):
        members = np.flatnonzero(selector.groups_ == rank)
        distance = ((X[members] - X[members].mean(axis=0)) ** 2).sum(axis=1)
        assert index == members[np.argmin(distance)]
    assert selector.selection_info_["n_fallback"] == 0


def _square_of_blobs():
    # four blobs at the corners of a square, sizes 40 > 30 > 20 > 10: with K = 2, k-means
    # splits the square either into top/bottom or into left/right halves depending on its
    # seed, so over several runs the stable groups are the four blobs, and the two largest
    # (top-left, top-right) share a cluster in every top/bottom run
    rng = np.random.RandomState(0)
    sizes = [40, 30, 20, 10]
    corners = [[0, 10], [10, 10], [0, 0], [10, 0]]
    X = np.concatenate([rng.normal(c, 0.5, (n, 2)) for c, n in zip(corners, sizes)])
    return X, np.repeat(np.arange(4), sizes)


def _picks_per_cluster(selector):
    """Largest number of picks that share one cluster in one k-means run."""
    labels = selector.run_labels_[:, selector.selected_indices_]
    return max(np.bincount(run).max() for run in labels)


def test_one_pick_per_cluster_of_every_run():
    X, blob = _square_of_blobs()
    selector = MultiClusterSelector(group_policy="one_per_cluster", random_state=0).fit(X)
    idx = selector.select(2)
    np.testing.assert_array_equal(selector.group_sizes_, [40, 30, 20, 10])
    assert _picks_per_cluster(selector) == 1
    # the largest group, then the one blob that shares no cluster with it: the opposite corner
    np.testing.assert_array_equal(blob[idx], [0, 3])
    np.testing.assert_array_equal(selector.selected_shared_runs_, [0, 0])
    assert selector.selection_info_["n_shared_first_run"] == 0


def test_largest_groups_reading_can_share_a_cluster():
    # the same data under the other reading: the two largest groups, in one cluster of some runs
    X, blob = _square_of_blobs()
    selector = MultiClusterSelector(group_policy="largest", random_state=0).fit(X)
    idx = selector.select(2)
    np.testing.assert_array_equal(blob[idx], [0, 1])
    assert _picks_per_cluster(selector) == 2
    shared_runs = selector.selected_shared_runs_[1]
    assert shared_runs > 0
    assert shared_runs == (selector.run_labels_[:, idx[0]] == selector.run_labels_[:, idx[1]]).sum()


def test_choose_groups_is_strict_when_possible_and_graceful_when_not():
    # 6 groups in rank order (0 is the largest), their cluster in each of 2 runs of K = 4
    group_run_labels = np.array([[0, 0],
                                 [0, 1],   # shares run 0 with group 0
                                 [1, 0],   # shares run 1 with group 0
                                 [1, 1],   # shares no cluster with group 0
                                 [2, 2],   # shares no cluster with groups 0 and 3
                                 [2, 3]])  # after 0, 3, 4: shares only run 0 (with group 4)
    chosen, shared = _choose_groups(group_run_labels, 4, 4, "one_per_cluster")
    # strict while possible (largest first among the conflict-free), then the fewest shared runs
    np.testing.assert_array_equal(chosen, [0, 3, 4, 5])
    np.testing.assert_array_equal(shared.sum(axis=1), [0, 0, 0, 1])
    chosen, shared = _choose_groups(group_run_labels, 4, 4, "largest")
    np.testing.assert_array_equal(chosen, [0, 1, 2, 3])
    np.testing.assert_array_equal(shared.sum(axis=1), [0, 1, 1, 2])


def test_stable_groups_are_label_tuple_intersections():
    run_labels = np.array([[0, 0, 0, 1, 1, 1, 1],
                           [2, 2, 3, 3, 3, 3, 2]])
    groups, sizes = _stable_groups(run_labels)
    # tuples: (0,2)x2, (0,3)x1, (1,3)x3, (1,2)x1 -> ranks by size, ties by first member
    np.testing.assert_array_equal(sizes, [3, 2, 1, 1])
    np.testing.assert_array_equal(groups, [1, 1, 2, 0, 0, 0, 3])


def test_multicluster_n_clusters_overrides_budget_and_falls_back(blobs):
    X, _ = blobs
    selector = MultiClusterSelector(n_runs=1, n_clusters=3, random_state=0).fit(X)
    idx = selector.select(5)
    assert selector.n_clusters_ == 3
    assert selector.selection_info_["n_groups"] == 3
    assert selector.selection_info_["n_fallback"] == 2
    np.testing.assert_array_equal(selector.selected_groups_[3:], [-1, -1])
    assert np.unique(idx).size == 5


def test_duplicate_points_still_give_distinct_indices():
    X = np.zeros((12, 3))
    X[6:] = 1.0
    for selector in all_selectors():
        idx = selector.fit_select(X, 9)
        assert np.unique(idx).size == 9, type(selector).__name__


def test_kmedoids_orders_clusters_by_size(blobs):
    X, y = blobs
    selector = KMedoidsSelector(random_state=0).fit(X)
    selector.select(10)
    sizes = selector.selected_cluster_sizes_
    assert np.all(np.diff(sizes) <= 0)
    assert y[selector.selected_indices_[0]] == 0  # blob 0 is the largest


def test_coreset_is_k_center_greedy():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 9.0], [4.0, 0.0]])
    # from sample 0: farthest is 3, then 2 (distance 9 to 3 vs 10 to 0), then 4
    np.testing.assert_array_equal(kcenter_greedy(X, 4, first=0), [0, 3, 2, 4])
    idx = CoresetSelector(init="mean").fit(X).select(2)
    assert idx[0] == 4  # closest to the mean (5, 1.8)


def test_typiclust_picks_the_most_typical_member():
    rng = np.random.RandomState(0)
    core = rng.normal([1.0, 0.0], 0.05, (20, 2))
    X = np.r_[core, [[3.0, 3.0]]]  # an outlier must never be the most typical
    selector = TypiClustSelector(n_neighbors=5, n_clusters=1, random_state=0).fit(X)
    idx = selector.select(1)
    assert idx[0] == np.argmax(selector.typicality_)
    assert idx[0] != 20


def _blobs_on_directions(sizes, std=0.02, seed=0):
    """Tight blobs around unit vectors at distinct angles (they stay apart after L2
    normalisation), with a random positive scale per row (which normalisation removes)."""
    rng = np.random.RandomState(seed)
    angles = np.linspace(0, np.pi, len(sizes), endpoint=False)
    X = np.concatenate([rng.normal([np.cos(a), np.sin(a)], std, (n, 2))
                        for a, n in zip(angles, sizes)])
    return X, np.repeat(np.arange(len(sizes)), sizes)


def test_typicality_uses_half_the_cluster_and_squared_distances():
    F = np.random.RandomState(0).normal(size=(7, 3)).astype(np.float32)
    squared = ((F[:, None, :] - F[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    k = 7 // 2  # min(20, cluster size // 2), not size - 1
    expected = 1.0 / (np.sort(squared, axis=1)[:, :k].mean(axis=1) + 1e-5)
    np.testing.assert_allclose(_typicality(F, 20), expected, rtol=1e-4)
    np.testing.assert_array_equal(_typicality(F[:1], 20), [1.0])


def test_typiclust_recomputes_typicality_among_unselected_members():
    F = np.random.RandomState(1).normal([1.0, 0.0], 0.1, (25, 2))
    selector = TypiClustSelector(n_clusters=1, normalize=False, random_state=0).fit(F)
    first, second = selector.select(2)
    assert first == np.argmax(_typicality(F.astype(np.float32), 20))
    rest = np.delete(np.arange(25), first)
    assert second == rest[np.argmax(_typicality(F[rest].astype(np.float32), 20))]


def test_typiclust_skips_clusters_of_five_or_fewer():
    X, blob = _blobs_on_directions([30, 20, 5])
    selector = TypiClustSelector(n_clusters=3, random_state=0).fit(X)
    idx = selector.select(3)
    # round robin over the two kept clusters, largest first: 30, 20, 30 again
    np.testing.assert_array_equal(blob[idx], [0, 1, 0])
    assert selector.selection_info_["n_kept_clusters"] == 2
    # once the kept clusters are used up, the skipped one is visited
    idx = selector.select(52)
    assert selector.selection_info_["n_from_small_clusters"] == 2
    np.testing.assert_array_equal(np.bincount(blob[idx]), [30, 20, 2])
    # min_cluster_size=1 keeps every cluster
    idx = selector.set_params(min_cluster_size=1).select(3)
    np.testing.assert_array_equal(blob[idx], [0, 1, 2])


def test_typiclust_all_clusters_small_falls_back_to_every_cluster():
    X, blob = _blobs_on_directions([4, 4, 4])
    selector = TypiClustSelector(random_state=0).fit(X)
    idx = selector.select(3)
    assert selector.selection_info_["n_kept_clusters"] == 3
    assert sorted(blob[idx].tolist()) == [0, 1, 2]


def test_typiclust_caps_clusters_at_max_clusters():
    X, _ = _blobs_on_directions([20, 20, 20])
    selector = TypiClustSelector(max_clusters=2, random_state=0).fit(X)
    selector.select(5)
    assert selector.n_clusters_ == 2 and selector.labels_.max() == 1


@pytest.mark.parametrize("selector", [TypiClustSelector(random_state=0),
                                      ProbCoverSelector(n_classes=3, random_state=0)], ids=ids)
def test_typiclust_and_probcover_l2_normalise(selector):
    X, _ = _blobs_on_directions([30, 20, 10])
    scale = np.random.RandomState(5).uniform(0.1, 10.0, (len(X), 1))
    np.testing.assert_array_equal(clone(selector).fit_select(X, 4),
                                  clone(selector).fit_select(X * scale, 4))
    # without normalisation the row scales change the geometry, and the picks
    raw = clone(selector).set_params(normalize=False)
    assert not np.array_equal(raw.fit_select(X, 4), raw.fit_select(X * scale, 4))


def test_probcover_picks_at_random_once_everything_is_covered():
    X, blob = _blobs_on_directions([30, 30], std=0.01)
    selector = ProbCoverSelector(n_classes=2, random_state=0).fit(X)
    idx = selector.select(6)
    # two balls cover both tight blobs; the other four picks are random draws
    assert sorted(blob[idx[:2]].tolist()) == [0, 1]
    assert selector.coverage_ == 1.0 and selector.n_random_picks_ == 4
    np.testing.assert_array_equal(selector.selected_gains_[2:], [0, 0, 0, 0])
    draws = {tuple(selector.set_params(random_state=s).select(6)[2:]) for s in range(5)}
    assert len(draws) == 5  # seeded by random_state, not a deterministic k-center order
    np.testing.assert_array_equal(selector.set_params(random_state=3).select(6),
                                  selector.set_params(random_state=3).select(6))


def test_probcover_delta_from_purity_and_coverage(blobs):
    X, _ = blobs
    selector = ProbCoverSelector(n_classes=10, random_state=0).fit(X)
    selector.select(10)
    assert selector.purity_ >= 0.95
    assert selector.coverage_ > 0.9
    assert np.all(np.diff(selector.selected_gains_) <= 0)  # greedy gains never increase here
    given = ProbCoverSelector(delta=selector.delta_).fit(X)
    given.select(10)
    assert given.purity_ is None and given.delta_ == selector.delta_
    # a tiny radius covers almost nothing, then the fallback completes the budget
    tiny = ProbCoverSelector(delta=1e-6, max_neighbors=5).fit(X)
    assert np.unique(tiny.select(10)).size == 10


def test_random_stratified_needs_labels_and_balances(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="stratified=True needs the class labels"):
        RandomSelector(stratified=True).fit(X)
    # balanced classes: exactly n_budget / n_classes each
    y_balanced = np.arange(X.shape[0]) % 10
    idx = RandomSelector(stratified=True, random_state=0).fit_select(X, 20, y=y_balanced)
    assert np.bincount(y_balanced[idx], minlength=10).tolist() == [2] * 10
    # unequal classes: in proportion to class sizes, within one sample
    idx = RandomSelector(stratified=True, random_state=0).fit_select(X, 20, y=y)
    share = np.bincount(y) * 20 / len(y)
    counts = np.bincount(y[idx], minlength=10)
    assert counts.sum() == 20 and np.all(np.abs(counts - share) < 1)
    with pytest.raises(ValueError, match="y has 3 labels"):
        RandomSelector(stratified=True).fit(X, y[:3])


def test_pipeline_last_step(blobs):
    X, y = blobs
    pipe = Pipeline([("scale", StandardScaler()), ("select", MultiClusterSelector(random_state=0))])
    pipe.fit(X)
    idx = pipe[-1].select(10)
    assert len(set(y[idx])) == 10


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_pickle_roundtrip(selector, blobs):
    X, _ = blobs
    fitted = selector.fit(X)
    first = fitted.select(5)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.select(5), first)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_bad_budget(selector, blobs):
    X, _ = blobs
    fitted = selector.fit(X[:8])
    invalid = (rf"The 'n_budget' parameter of {type(selector).__name__}.select must be an int in the "
               r"range \[1, inf\)")
    with pytest.raises(ValueError, match=invalid + ". Got 0 instead"):
        fitted.select(0)
    with pytest.raises(ValueError, match=invalid):
        fitted.select(-3)
    with pytest.raises(ValueError, match="n_budget=9 exceeds the number of fitted samples"):
        fitted.select(9)  # fitted on fewer samples than the budget
    with pytest.raises(TypeError, match=invalid):
        fitted.select(2.5)
    with pytest.raises(TypeError, match=invalid):
        fitted.select("10")
    with pytest.raises(TypeError, match=invalid):
        fitted.select(True)


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_nan_features_and_select_before_fit(selector, blobs):
    from sklearn.exceptions import NotFittedError

    X, _ = blobs
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X.*NaN"):
        clone(selector).fit(X)
    with pytest.raises(NotFittedError):
        clone(selector).select(3)
    with pytest.raises(ValueError, match="X"):
        clone(selector).fit(np.ones(10))  # 1-D


@pytest.mark.parametrize(
    "selector, message",
    [
        (MultiClusterSelector(n_runs=0), "'n_runs' parameter of MultiClusterSelector must be an int"),
        (MultiClusterSelector(n_clusters=500), "n_clusters=500 asks for 500 clusters"),
        (MultiClusterSelector(group_policy="median"), "'group_policy' parameter of MultiClusterSelector"),
        (KMedoidsSelector(max_iter=0), "'max_iter' parameter of KMedoidsSelector must be an int"),
        (TypiClustSelector(n_neighbors=0), "'n_neighbors' parameter of TypiClustSelector must be an int"),
        (TypiClustSelector(min_cluster_size=0), "'min_cluster_size' parameter of TypiClustSelector"),
        (TypiClustSelector(max_clusters=0), "'max_clusters' parameter of TypiClustSelector"),
        (ProbCoverSelector(n_classes=0), "'n_classes' parameter of ProbCoverSelector"),
        (ProbCoverSelector(delta=-1.0), r"'delta' parameter of ProbCoverSelector must be a float in the range \(0"),
        (ProbCoverSelector(purity_threshold=1.5), r"'purity_threshold' .* range \(0.0, 1.0\]"),
        (ProbCoverSelector(max_neighbors=0), "'max_neighbors' parameter of ProbCoverSelector"),
        (CoresetSelector(init="far"), "'init' parameter of CoresetSelector must be a str among"),
    ],
)
def test_bad_parameters_are_named(selector, message, blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match=message):
        selector.fit(X).select(3)


def test_parameters_set_after_fit_are_checked_in_select(blobs):
    """Selectors work in ``select``: a parameter changed after ``fit`` is checked there."""
    X, _ = blobs
    selector = TypiClustSelector(random_state=0).fit(X)
    with pytest.raises(ValueError, match="'min_cluster_size' parameter of TypiClustSelector"):
        selector.set_params(min_cluster_size=0).select(3)


@pytest.mark.parametrize("selector", [TypiClustSelector(normalize="yes"),
                                      ProbCoverSelector(normalize=1)], ids=ids)
def test_normalize_must_be_a_bool(selector, blobs):
    X, _ = blobs
    with pytest.raises(TypeError, match=rf"'normalize' parameter of {type(selector).__name__} must be an "
                                        "instance of 'bool'"):
        selector.fit(X).select(3)


# --- scale (issue 14): sparse ProbCover, neighbour index ------------------------------------


def _probcover_reference(X, n_budget, delta, max_neighbors=100):
    """ProbCover's greedy as written before the sparse rewrite: recounted degrees."""
    from as3l_sklearn.cluster import knn_search
    from as3l_sklearn.selection._base import squared_distances_to

    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    n = X.shape[0]
    k = min(max_neighbors, n)
    squared, neighbors = knn_search(X, X, k, index="flat")
    inside = (squared < delta**2) & (neighbors != np.arange(n)[:, None])
    src = np.r_[np.arange(n), np.repeat(np.arange(n), inside.sum(axis=1))]
    dst = np.r_[np.arange(n), neighbors[inside]]
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), squared[:, -1]))] = np.arange(n)[::-1]
    covered, chosen, picked = np.zeros(n, bool), np.zeros(n, bool), []
    while len(picked) < n_budget:
        degree = np.bincount(src, minlength=n).astype(np.int64)
        degree[chosen] = -1
        best = int(np.argmax(degree * (n + 1) + rank))
        if degree[best] <= 0:
            break
        ball = squared_distances_to(X, X[best]) < delta**2
        ball[best] = True
        covered |= ball
        chosen[best] = True
        picked.append(best)
        alive = ~covered[dst]
        src, dst = src[alive], dst[alive]
    return picked


def _overlapping_blobs(blobs):
    X, _ = blobs
    return X + np.random.RandomState(1).normal(scale=2.0, size=X.shape)


@pytest.mark.parametrize("n_classes, n_budget, max_neighbors", [(10, 10, 100), (10, 40, 100),
                                                                (5, 25, 8), (20, 30, 30)])
def test_probcover_picks_as_before_the_sparse_rewrite(blobs, n_classes, n_budget, max_neighbors):
    X = _overlapping_blobs(blobs)
    selector = ProbCoverSelector(n_classes=n_classes, max_neighbors=max_neighbors,
                                 random_state=0).fit(X)
    picks = selector.select(n_budget)
    expected = _probcover_reference(X, n_budget, selector.delta_, max_neighbors=max_neighbors)
    # the greedy part (before any random pick once everything is covered) is unchanged
    np.testing.assert_array_equal(picks[:len(expected)], expected)


def _pair_purity(X, labels, radius, max_neighbors):
    """Pair purity of the balls of ``radius``, counted directly from brute-force kNN lists."""
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    squared = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    lists = np.argsort(squared, axis=1, kind="stable")[:, :max_neighbors]
    pairs = agree = 0
    for center, members in enumerate(lists):
        inside = members[(squared[center, members] < radius**2) | (members == center)]
        pairs += inside.size
        agree += int((labels[inside] == labels[center]).sum())
    return agree / pairs


@pytest.mark.parametrize("n_classes, max_neighbors", [(10, 100), (5, 8), (20, 30)])
def test_probcover_delta_is_the_largest_radius_with_pure_pairs(blobs, n_classes, max_neighbors):
    from as3l_sklearn.cluster import kmeans

    X = _overlapping_blobs(blobs)
    selector = ProbCoverSelector(n_classes=n_classes, max_neighbors=max_neighbors,
                                 random_state=0).fit(X)
    selector.select(5)
    # the pseudo-labels the selector drew: k-means seeded by the first draw of random_state
    seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
    labels = kmeans(X / np.linalg.norm(X, axis=1, keepdims=True), n_classes,
                    random_state=seed).labels
    delta = selector.delta_
    assert _pair_purity(X, labels, delta, max_neighbors) >= 0.95
    assert selector.purity_ == pytest.approx(_pair_purity(X, labels, delta, max_neighbors))
    # a little larger takes in the next listed neighbour and falls below the threshold, or
    # no radius does and delta reaches past every listed neighbour
    Xn = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    distances = np.sqrt(((Xn[:, None, :] - Xn[None, :, :]) ** 2).sum(axis=2))
    listed = np.sort(distances, axis=1)[:, :max_neighbors]
    if _pair_purity(X, labels, listed.max() * (1 + 1e-6), max_neighbors) >= 0.95:
        assert delta > listed.max()
    else:
        next_distance = np.min(listed[listed > delta])
        assert _pair_purity(X, labels, next_distance * (1 + 1e-6), max_neighbors) < 0.95


def test_probcover_searches_neighbours_once(blobs, monkeypatch):
    # one capped kNN search gives both the purity radius and the delta-graph
    from as3l_sklearn.selection import _baselines

    X, _ = blobs
    calls = []
    real = _baselines.knn_search
    monkeypatch.setattr(_baselines, "knn_search",
                        lambda *a, **kw: calls.append(a[2]) or real(*a, **kw))
    ProbCoverSelector(n_classes=10, random_state=0).fit(X).select(5)
    assert calls == [100]


@pytest.mark.parametrize("make", [
    lambda index: TypiClustSelector(neighbor_index=index, random_state=0),
    lambda index: ProbCoverSelector(n_classes=10, neighbor_index=index, random_state=0),
], ids=["TypiClust", "ProbCover"])
def test_selectors_accept_an_approximate_neighbor_index(make, blobs):
    X, y = blobs
    exact = make("flat").fit_select(X, 10)
    np.testing.assert_array_equal(make("auto").fit_select(X, 10), exact)  # small: exact
    for index in ("hnsw", "ivf"):
        idx = make(index).fit_select(X, 10)
        assert sorted(set(y[idx].tolist())) == list(range(10))
    with pytest.raises(ValueError, match="'neighbor_index' parameter of .*Selector must be a str among"):
        make("exact").fit(X).select(3)


# --- select(n_budget, labeled=...) ----------------------------------------------------------


def _four_blobs(size=30, seed=0):
    """Four tight, well separated blobs of ``size`` samples each, in 5-d."""
    rng = np.random.RandomState(seed)
    centers = np.eye(5)[:4] * 20.0
    X = np.concatenate([rng.normal(c, 0.5, (size, 5)) for c in centers])
    return X, np.repeat(np.arange(4), size)


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_labeled_indices_are_never_returned_and_picks_are_repeatable(selector, blobs):
    X, _ = blobs
    labeled = np.r_[0:40:3, 100, 250, 389]
    fitted = clone(selector).fit(X)
    idx = fitted.select(20, labeled=labeled)
    assert idx.shape == (20,) and np.unique(idx).size == 20
    assert not np.isin(idx, labeled).any()
    np.testing.assert_array_equal(fitted.select(20, labeled=labeled), idx)
    np.testing.assert_array_equal(clone(selector).fit_select(X, 20, labeled=list(labeled)), idx)
    # every unlabeled sample can still be selected: the budget may reach n - len(labeled)
    everything = fitted.select(X.shape[0] - labeled.size, labeled=labeled)
    np.testing.assert_array_equal(np.sort(np.r_[everything, labeled]), np.arange(X.shape[0]))


@pytest.mark.parametrize("selector", all_selectors(), ids=ids)
def test_labeled_blob_is_avoided(selector):
    X, blob = _four_blobs()
    fitted = clone(selector).fit(X)
    labeled = np.flatnonzero(blob == 0)
    idx = fitted.select(3, labeled=labeled)
    assert not np.isin(blob[idx], 0).any()
    # without the labels, the same selector does pick in blob 0 at this budget
    assert np.isin(blob[fitted.select(12)], 0).any()


@pytest.mark.parametrize("selector", [s for s in all_selectors()
                                      if not isinstance(s, RandomSelector)], ids=ids)
def test_a_few_labels_in_a_blob_move_the_picks_elsewhere(selector):
    # without labels, 4 picks cover the 4 blobs; with 3 labels near blob 0's center,
    # 3 picks cover the 3 other blobs
    X, blob = _four_blobs()
    fitted = clone(selector).fit(X)
    assert sorted(blob[fitted.select(4)].tolist()) == [0, 1, 2, 3]
    center = X[blob == 0].mean(axis=0)
    labeled = np.argsort(((X - center) ** 2).sum(axis=1))[:3]
    assert sorted(blob[fitted.select(3, labeled=labeled)].tolist()) == [1, 2, 3]


def test_labeled_bad_input_is_named(blobs):
    X, _ = blobs
    fitted = KMedoidsSelector(random_state=0).fit(X)
    with pytest.raises(ValueError, match="labeled holds an index outside"):
        fitted.select(3, labeled=[0, X.shape[0]])
    with pytest.raises(ValueError, match="labeled holds an index outside"):
        fitted.select(3, labeled=[-1])
    with pytest.raises(TypeError, match="labeled must hold integer sample indices"):
        fitted.select(3, labeled=np.ones(X.shape[0], dtype=bool))
    with pytest.raises(ValueError, match="labeled must be a 1-D"):
        fitted.select(3, labeled=[[0, 1]])
    with pytest.raises(ValueError, match="whole-number"):
        fitted.select(3, labeled=[0.5])
    with pytest.raises(ValueError, match=r"n_budget=3 exceeds the 2 unlabeled samples \(5 "
                                         r"fitted, 3 labeled\)"):
        KMedoidsSelector().fit(X[:5]).select(3, labeled=[0, 1, 2])
    # duplicates are merged, whole floats accepted, an empty list is no label
    np.testing.assert_array_equal(fitted.select(3, labeled=[4, 4.0]), fitted.select(3, labeled=[4]))
    np.testing.assert_array_equal(fitted.select(3, labeled=[]), fitted.select(3))


def test_random_with_labels_passes_over_them():
    X = np.arange(40.0).reshape(20, 2)
    plain = RandomSelector(random_state=0).fit(X).select(5)
    idx = RandomSelector(random_state=0).fit(X).select(5, labeled=plain[:2])
    # the same draw, with the two labeled samples passed over
    np.testing.assert_array_equal(idx[:3], plain[2:])
    y = np.repeat([0, 1], 10)
    idx = RandomSelector(stratified=True, random_state=0).fit(X, y).select(
        4, labeled=np.arange(8))  # 8 of class 0 labeled: 2 + 10 unlabeled remain
    assert not np.isin(idx, np.arange(8)).any()
    assert np.bincount(y[idx], minlength=2).tolist() == [1, 3]


def test_coreset_continues_from_the_labeled_samples():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 9.0], [4.0, 0.0]])
    # labeled 2 and 3: the farthest from them is 0, then 4 (4 from 2... 6 from 2 vs 1 from 0)
    np.testing.assert_array_equal(
        CoresetSelector(random_state=0).fit(X).select(2, labeled=[2, 3]), [0, 4])


def test_multicluster_with_labels_skips_their_groups_and_clusters():
    X, blob = _square_of_blobs()
    selector = MultiClusterSelector(random_state=0).fit(X)
    idx = selector.select(2, labeled=np.flatnonzero(blob == 0)[:3])
    assert selector.n_clusters_ == 5  # K = n_budget + 3 labeled
    assert selector.selection_info_["n_labeled_groups"] >= 1
    assert 0 not in blob[idx]


def test_probcover_counts_labeled_balls_as_covered():
    X, blob = _blobs_on_directions([30, 30, 30], std=0.01)
    selector = ProbCoverSelector(n_classes=3, random_state=0).fit(X)
    idx = selector.select(2, labeled=np.flatnonzero(blob == 1)[:1])
    assert sorted(blob[idx].tolist()) == [0, 2]
    assert selector.coverage_ == 1.0 and selector.n_random_picks_ == 0


# --- coverage on unnormalised, unequally scaled features ------------------------------------


@pytest.fixture(scope="module")
def digits_pca():
    """PCA-50 of the digits' pixels / 255, not whitened: component scales 0.04 to 0.84."""
    from sklearn.decomposition import PCA

    from as3l_sklearn.datasets import load_digits_images

    X, y = load_digits_images()
    F = PCA(n_components=50, random_state=0).fit_transform(X.reshape(len(X), -1) / 255.0)
    return F.astype(np.float32), y


@pytest.mark.parametrize("selector, least", [
    (MultiClusterSelector(random_state=0), 8),
    (TypiClustSelector(random_state=0), 8),
    (ProbCoverSelector(random_state=0), 8),   # 7 of 10 with the all-pure-balls delta
    (MaxHerdingSelector(random_state=0), 8),
    (StableCoverSelector(random_state=0), 8),
    (KMedoidsSelector(random_state=0), 8),
    # k-center goes for outliers and uniform draws miss classes: they cover fewer
    (CoresetSelector(random_state=0), 6),
    (RandomSelector(random_state=0), 6),
], ids=lambda p: ids(p) if not isinstance(p, int) else str(p))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unnormalised_features_budget_n_classes_covers_most_classes(selector, least, seed,
                                                                    digits_pca):
    F, y = digits_pca
    idx = clone(selector).set_params(random_state=seed).fit_select(F, 10)
    assert len(set(y[idx].tolist())) >= least


def test_probcover_radius_is_scale_free(digits_pca):
    # the radius is chosen on the normalised features the balls use: scaling the input
    # changes nothing, with or without normalize
    F, y = digits_pca
    for normalize in (True, False):
        base = ProbCoverSelector(normalize=normalize, random_state=0).fit(F)
        scaled = ProbCoverSelector(normalize=normalize, random_state=0).fit(F * 37.0)
        np.testing.assert_array_equal(base.select(10), scaled.select(10))
        assert len(set(y[base.selected_indices_].tolist())) >= 8


# --- MaxHerding and StableCover -------------------------------------------------------------


def _dense_herding(X, n_budget, bandwidth, labeled=()):
    """MaxHerding as the authors write it: the dense Gaussian kernel, recomputed gains."""
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    kernel = np.exp(-((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2) / bandwidth**2)
    best = kernel[list(labeled)].max(axis=0) if len(labeled) else np.zeros(len(X))
    picked = []
    for _ in range(n_budget):
        gain = np.maximum(kernel - best[None, :], 0).sum(axis=1)
        gain[list(labeled) + picked] = -np.inf
        picked.append(int(np.argmax(gain)))
        best = np.maximum(best, kernel[picked[-1]])
    return picked


@pytest.mark.parametrize("labeled", [(), (3, 200)])
def test_maxherding_equals_the_dense_greedy_with_every_neighbour(blobs, labeled):
    X = _overlapping_blobs(blobs)
    selector = MaxHerdingSelector(bandwidth=0.5, n_neighbors=X.shape[0]).fit(X)
    idx = selector.select(12, labeled=list(labeled) or None)
    np.testing.assert_array_equal(idx, _dense_herding(X, 12, 0.5, labeled))
    # a submodular greedy: each pick adds no more than the one before
    assert np.all(np.diff(selector.selected_gains_) <= 1e-9)
    assert 0 < selector.coverage_ <= 1


def test_maxherding_neighbours_and_bandwidth_follow_the_budget():
    from as3l_sklearn.selection._maxherding import auto_neighbors

    assert auto_neighbors("auto", 10_000, 10) == 1000     # each pick reaches its share
    assert auto_neighbors("auto", 10_000, 40) == 250
    assert auto_neighbors("auto", 1_797, 40) == 100       # at least 100
    assert auto_neighbors("auto", 100_000, 10) == 1000    # at most 1000 (memory)
    assert auto_neighbors(30, 10_000, 10) == 30
    X = np.random.RandomState(0).normal(size=(500, 4))
    selector = MaxHerdingSelector(normalize=False).fit(X)
    selector.select(5)
    assert selector.n_neighbors_ == 100
    squared = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    kth = np.sqrt(np.sort(squared, axis=1)[:, 100])  # column 0 is the sample itself
    assert selector.bandwidth_ == pytest.approx(np.median(kth), rel=1e-5)
    # the rule is scale-free: scaled features, the same picks
    np.testing.assert_array_equal(MaxHerdingSelector(normalize=False).fit(X * 50).select(5),
                                  selector.selected_indices_)


def test_maxherding_falls_back_to_k_center_once_coverage_is_full():
    X = np.repeat(np.eye(3), 4, axis=0)  # three points, each four times
    selector = MaxHerdingSelector().fit(X)
    idx = selector.select(5)
    assert sorted(set(np.argmax(X[idx[:3]], axis=1).tolist())) == [0, 1, 2]
    assert selector.n_fallback_ == 2 and selector.coverage_ == 1.0


def test_coassociation_weights_the_kernel_and_keeps_the_diagonal():
    from scipy import sparse

    from as3l_sklearn.selection._stablecover import _weigh_by_coassociation

    kernel = sparse.csr_matrix(np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.0], [0.5, 0.0, 1.0]]))
    runs = np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]])
    weighted = _weigh_by_coassociation(kernel, runs).toarray()
    # 0 and 1 together in 3 of 4 runs, 0 and 2 in 1 of 4
    np.testing.assert_allclose(weighted, [[1.0, 0.6, 0.125], [0.6, 1.0, 0.0],
                                          [0.125, 0.0, 1.0]])


def test_stablecover_picks_the_most_typical_sample_of_each_anchor_region():
    from as3l_sklearn.selection._baselines import _typicality

    X, blob = _four_blobs(size=25)
    selector = StableCoverSelector(random_state=0).fit(X)
    idx = selector.select(4)
    assert sorted(blob[idx].tolist()) == [0, 1, 2, 3]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    for anchor, pick in zip(selector.anchors_, idx):
        members = np.flatnonzero(blob == blob[anchor])  # tight blobs: a region is a blob
        typical = members[np.argmax(_typicality(Xn[members].astype(np.float32), 20))]
        assert pick == typical
    assert selector.run_labels_.shape == (6, X.shape[0]) and selector.n_clusters_ == 4

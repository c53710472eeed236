"""The classifier's label-free checks against its prior, the prior-fitted start and the
fallback (tiny, seeded, CPU)."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier, check_against_prior
from as3l_sklearn.classification._net import fit_linear_head


def _halves(n, seed=0):
    """8x8 images: class = bright top (0) or bright bottom (1) half."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    X = 0.2 * rng.rand(n, 1, 8, 8).astype(np.float32)
    X[y == 0, :, :4, :] += 0.5
    X[y == 1, :, 4:, :] += 0.5
    return np.clip(X, 0, 1), y


def _fit_data(n=48):
    X, y_true = _halves(n)
    y = np.full(n, -1)
    for c in (0, 1):
        y[np.flatnonzero(y_true == c)[:2]] = c
    prior = np.where(np.eye(2)[y_true] == 1, 0.9, 0.1)
    return X, y, y_true, prior


PARAMS = dict(backbone="small_cnn", batch_size=8, mu=2, device="cpu", random_state=0)


class _CollapseAtTheEnd(Callback):
    """Makes the averaged model predict class 0 everywhere once training ends."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            net.ema_module_.head.bias[:] = torch.tensor([1e4, -1e4])


def test_check_against_prior_flags_collapse_and_disagreement():
    prior = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]])
    checks = check_against_prior(prior, {"collapsed": np.zeros(4, int),
                                         "disagrees": np.array([1, 1, 0, 0]),
                                         "agrees": np.array([0, 0, 1, 1])}, tolerance=0.02)
    entries = checks["candidates"]
    assert entries["collapsed"]["collapsed"] and not entries["collapsed"]["passed"]
    # the surest half is rows 0 and 3 (0.9 each): "disagrees" gets both wrong
    assert checks["confident_reference"] == pytest.approx(0.9)
    assert not entries["disagrees"]["collapsed"] and not entries["disagrees"]["passed"]
    assert entries["disagrees"]["confident_agreement"] == 0.0
    assert entries["disagrees"]["expected_accuracy"] == pytest.approx(0.175)  # reported only
    assert entries["agrees"]["passed"] and entries["agrees"]["confident_agreement"] == 1.0
    assert checks["chosen"] == "agrees" and checks["prior_expected_accuracy"] == pytest.approx(0.825)


def test_changes_where_the_prior_is_unsure_pass_and_where_it_is_sure_fail():
    # 10 sure rows (0.98) and 10 unsure ones (0.55): a model that changes every unsure row
    # loses expected accuracy under the prior, yet keeps what the prior knew
    prior = np.array([[0.98, 0.02]] * 5 + [[0.02, 0.98]] * 5 + [[0.55, 0.45]] * 5 + [[0.45, 0.55]] * 5)
    keeps_the_sure_rows = np.r_[[0] * 5, [1] * 5, [1] * 5, [0] * 5]
    breaks_sure_rows = np.r_[[1] * 2, [0] * 3, [1] * 5, [0] * 5, [1] * 5]
    checks = check_against_prior(prior, {"improver": keeps_the_sure_rows, "breaker": breaks_sure_rows}, 0.02)
    improver, breaker = checks["candidates"]["improver"], checks["candidates"]["breaker"]
    assert improver["expected_accuracy"] < checks["prior_expected_accuracy"] - 0.02
    assert improver["passed"] and not breaker["passed"] and checks["chosen"] == "improver"
    # none passes: the last candidate (the fallback) is chosen
    assert check_against_prior(prior, {"a": np.zeros(20, int), "b": np.ones(20, int)}, 0.02)["chosen"] == "b"


def test_fit_linear_head_follows_soft_targets_and_floors_dead_features():
    rng = np.random.RandomState(0)
    x = torch.from_numpy(rng.randn(60, 3).astype(np.float32))
    x[:, 2] = 1e-7 * torch.from_numpy(rng.randn(60).astype(np.float32))  # a nearly dead unit
    labels = (x[:, 0] > 0).long()
    targets = torch.nn.functional.one_hot(labels, 2).float() * 0.8 + 0.1
    head = torch.nn.Linear(3, 2)
    fit_linear_head(head, x, targets)
    assert (head(x).argmax(1) == labels).float().mean() > 0.95
    # without the floor the dead unit's weight would be ~1 / 1e-7
    assert head.weight.abs().max() < 100


def test_max_iter_0_returns_the_head_fitted_to_the_prior():
    X, y, y_true, prior = _fit_data()
    clf = PriorGuidedFlexMatchClassifier(max_iter=0, **PARAMS).fit(X, y, prior_proba=prior)
    assert clf.n_iter_ == 0 and not clf.fell_back_
    assert (clf.predict(X) == y_true).mean() > 0.9
    with pytest.raises(ValueError, match="max_iter=0 returns the model fitted to the prior"):
        PriorGuidedFlexMatchClassifier(max_iter=0, prior_start="none", **PARAMS).fit(X, y, prior_proba=prior)


def test_a_collapsed_classifier_falls_back_to_the_model_fitted_to_the_prior():
    X, y, y_true, prior = _fit_data()
    start_only = PriorGuidedFlexMatchClassifier(max_iter=0, **PARAMS).fit(X, y, prior_proba=prior)
    clf = PriorGuidedFlexMatchClassifier(max_iter=4, callbacks=[("collapse", _CollapseAtTheEnd())], **PARAMS)
    with pytest.warns(UserWarning, match="collapsed onto few classes.*returning the model fitted to the prior"):
        clf.fit(X, y, prior_proba=prior)
    checks = clf.self_check_
    assert checks["candidates"]["final"]["collapsed"] and checks["candidates"]["final"]["n_classes_predicted"] == 1
    assert checks["chosen"] == checks["returned"] == "prior_start" and clf.fell_back_
    # the returned weights are the start's: the same model as max_iter=0 (same seed)
    np.testing.assert_allclose(clf.predict_proba(X), start_only.predict_proba(X), atol=1e-5)
    assert len(np.unique(clf.predict(X))) == 2


@pytest.mark.parametrize("mode", ["warn", "off"])
def test_self_check_warn_keeps_and_off_skips(mode):
    X, y, _, prior = _fit_data()
    clf = PriorGuidedFlexMatchClassifier(max_iter=4, self_check=mode,
                                         callbacks=[("collapse", _CollapseAtTheEnd())], **PARAMS)
    if mode == "warn":
        with pytest.warns(UserWarning, match="keeping it"):
            clf.fit(X, y, prior_proba=prior)
        assert clf.self_check_["chosen"] == "prior_start" and clf.self_check_["returned"] == "final"
    else:
        clf.fit(X, y, prior_proba=prior)
        assert clf.self_check_ is None
    assert not clf.fell_back_ and len(np.unique(clf.predict(X))) == 1


def test_freematch_thresholds_train_and_keep_their_state():
    X, y, y_true, prior = _fit_data()
    clf = PriorGuidedFlexMatchClassifier(max_iter=6, threshold="freematch", **PARAMS).fit(X, y, prior_proba=prior)
    state = clf.freematch_state_
    assert set(state) >= {"global", "class"}
    assert 0.5 <= float(state["global"]) <= 1.0  # moved from 1 / C by the model's own confidence
    assert clf.self_check_["returned"] in ("final", "prior_start")
    flex = PriorGuidedFlexMatchClassifier(max_iter=6, **PARAMS).fit(X, y, prior_proba=prior)
    assert flex.freematch_state_ is None

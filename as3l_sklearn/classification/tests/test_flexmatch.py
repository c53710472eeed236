"""Tests for prior-guided FlexMatch and its baselines (tiny, seeded, CPU)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from as3l_sklearn.classification import (
    LinearEvaluationClassifier,
    PriorGuidedFlexMatchClassifier,
    SupervisedClassifier,
    TrainingInterruptedWarning,
    check_prior_proba,
)
from as3l_sklearn.classification import _net
from as3l_sklearn.classification._net import (
    cosine_lr,
    flexmatch_class_beta,
    flexmatch_mask,
    param_groups_without_decay,
    prior_posterior,
    update_learning_status,
)

TINY = dict(backbone="small_cnn", batch_size=4, mu=2, device="cpu")



def _bars(n, seed=0, nuisance=True):
    """8x8 images: class = bright top (0) or bright bottom (1) half; a bright left/right half as nuisance."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    side = rng.randint(0, 2, n)
    X = 0.2 * rng.rand(n, 1, 8, 8).astype(np.float32)
    X[y == 0, :, :4, :] += 0.4
    X[y == 1, :, 4:, :] += 0.4
    if nuisance:
        X[side == 0, :, :, :4] += 0.4
        X[side == 1, :, :, 4:] += 0.4
    return np.clip(X, 0, 1), y, side


# ---------------------------------------------------------------- FlexMatch arithmetic
def test_class_beta_hand_computed():
    # sigma = [3, 1, 0], 6 unused of 10
    status = torch.tensor([0, 0, 0, 1, -1, -1, -1, -1, -1, -1])
    np.testing.assert_allclose(flexmatch_class_beta(status, 3, warmup=True), [3 / 6, 1 / 6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(flexmatch_class_beta(status, 3, warmup=False), [1.0, 1 / 3, 0.0], rtol=1e-6)
    # once few are unused, warm-up and no warm-up agree: max sigma dominates
    status = torch.tensor([0, 0, 0, 1, 1, -1])
    np.testing.assert_allclose(flexmatch_class_beta(status, 2, warmup=True), [1.0, 2 / 3], rtol=1e-6)
    # nothing learned yet: every beta is 0
    assert flexmatch_class_beta(torch.full((5,), -1), 3).tolist() == [0.0, 0.0, 0.0]


def test_mask_hand_computed_with_and_without_warmup():
    status = torch.tensor([0, 0, 0, 1, -1, -1, -1, -1, -1, -1])
    probs = torch.tensor([[0.50, 0.30, 0.20],   # class 0
                          [0.96, 0.02, 0.02],   # class 0
                          [0.30, 0.15, 0.55],   # class 2 (beta 0 -> threshold 0)
                          [0.10, 0.45, 0.45],   # class 1 (first max)
                          [0.40, 0.60, 0.00]])  # class 1
    # warm-up: beta = [1/2, 1/6, 0], M(beta) = [1/3, 1/11, 0], thresholds 0.95 * M
    labels, mask = flexmatch_mask(probs, flexmatch_class_beta(status, 3, True), tau=0.95)
    assert labels.tolist() == [0, 0, 2, 1, 1]
    assert mask.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]  # 0.5 >= 0.3167, 0.45 >= 0.0864
    # no warm-up: beta = [1, 1/3, 0], M = [1, 1/5, 0], thresholds [0.95, 0.19, 0]
    labels, mask = flexmatch_mask(probs, flexmatch_class_beta(status, 3, False), tau=0.95)
    assert mask.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    # a class-0 threshold of exactly 0.95 * 1/3 is passed at equality, not below
    thr = 0.95 / 3
    _, mask = flexmatch_mask(torch.tensor([[thr + 1e-4, 1 - thr - 1e-4], [thr - 1e-3, 0.0]]),
                             torch.tensor([0.5, 0.0]), tau=0.95)
    assert mask.tolist() == [1.0, 0.0]


def test_learning_status_follows_confident_weak_predictions():
    status = torch.full((6,), -1)
    probs = torch.tensor([[0.97, 0.03], [0.6, 0.4], [0.01, 0.99]])
    update_learning_status(status, torch.tensor([4, 1, 2]), probs, tau=0.95)
    assert status.tolist() == [-1, -1, 1, -1, 0, -1]


def test_posterior_eq5_and_lr_and_param_groups():
    prior = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    weak = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(prior_posterior(prior, weak), [[0.6, 0.4], [0.375, 0.625]], rtol=1e-6)
    assert cosine_lr(0.03, 0, 10) == pytest.approx(0.03)
    assert cosine_lr(0.03, 5, 10) == pytest.approx(0.03 * np.cos(7 * np.pi * 5 / 160))
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                 torch.nn.LazyLinear(3))
    module(torch.zeros(1, 1, 5, 5))
    decay, no_decay = param_groups_without_decay(module, 5e-4)
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and len(decay["params"]) == 2
    assert len(no_decay["params"]) == 4  # conv bias, BN weight and bias, linear bias


# ---------------------------------------------------------------- Eq. 5 inside training
class _Recorder:
    def __init__(self, monkeypatch):
        self.posterior_calls, self.mask_inputs = [], []
        original_posterior, original_mask = _net.prior_posterior, _net.flexmatch_mask

        def posterior(prior, probs_weak):
            out = original_posterior(prior, probs_weak)
            self.posterior_calls.append((prior.clone(), probs_weak.clone(), out.clone()))
            return out

        def mask(probs, beta, tau):
            self.mask_inputs.append(probs.clone())
            return original_mask(probs, beta, tau)

        monkeypatch.setattr(_net, "prior_posterior", posterior)
        monkeypatch.setattr(_net, "flexmatch_mask", mask)


def test_posterior_before_and_after_switch_remove(monkeypatch):
    X, y_true, _ = _bars(40)
    y = np.full(40, -1)
    y[:4] = y_true[:4]
    prior = np.full((40, 2), 0.5)
    prior[np.arange(40), y_true] = 0.9
    prior[np.arange(40), 1 - y_true] = 0.1
    rec = _Recorder(monkeypatch)
    PriorGuidedFlexMatchClassifier(max_iter=6, switch_iter=3, random_state=0, **TINY).fit(X, y, prior_proba=prior)
    assert len(rec.mask_inputs) == 6 and len(rec.posterior_calls) == 3
    for step, (prior_rows, weak, posterior) in enumerate(rec.posterior_calls):
        expected = (prior_rows + weak) / (prior_rows + weak).sum(1, keepdim=True)  # Eq. 5, t <= T
        torch.testing.assert_close(rec.mask_inputs[step], expected)
        assert all(any(torch.allclose(r, torch.tensor(p, dtype=r.dtype)) for p in prior) for r in prior_rows)
    for probs in rec.mask_inputs[3:]:  # t > T: y_pred_weak alone, a softmax not mixed with the prior
        torch.testing.assert_close(probs.sum(1), torch.ones(len(probs)))
        assert not any(torch.allclose(probs, p[2]) for p in rec.posterior_calls)


def test_posterior_update_mode_uses_refreshed_prior(monkeypatch):
    from as3l_sklearn.propagation import SeededKMeansPropagator

    X, y_true, _ = _bars(40)
    y = np.full(40, -1)
    y[:4] = y_true[:4]
    prior = np.eye(2)[y_true]
    rec = _Recorder(monkeypatch)
    clf = PriorGuidedFlexMatchClassifier(
        prior=SeededKMeansPropagator(n_clusters=[2, 4]), prior_mode="update", max_iter=6, switch_iter=3,
        update_every=10, random_state=0, **TINY).fit(X, y, prior_proba=prior)
    assert len(rec.posterior_calls) == 6
    refreshed = torch.tensor(clf.prior_updated_)
    assert refreshed.shape == (40, 2)
    np.testing.assert_allclose(clf.prior_, prior)  # the initial prior is kept for t <= T
    for step, (prior_rows, weak, _) in enumerate(rec.posterior_calls):
        source = torch.tensor(prior, dtype=torch.float32) if step < 3 else refreshed
        assert all(any(torch.allclose(r, s) for s in source) for r in prior_rows)
        expected = (prior_rows + weak) / (prior_rows + weak).sum(1, keepdim=True)
        torch.testing.assert_close(rec.mask_inputs[step], expected)


# ---------------------------------------------------------------- behaviour
def _bright_nuisance(n, seed):
    """Class = bright top (0) / bottom (1) half; a global brightness offset as a nuisance cue."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    bright = rng.randint(0, 2, n)
    X = 0.2 * rng.rand(n, 1, 8, 8).astype(np.float32)
    X[y == 0, :, :4, :] += 0.3
    X[y == 1, :, 4:, :] += 0.3
    X[bright == 1] += 0.4
    return np.clip(X, 0, 1), y, bright


def test_perfect_prior_beats_no_prior():
    # The two labeled images per class have the nuisance (brightness) aligned with the class,
    # so labels alone cannot tell which cue matters; a perfect prior can. Measured on this
    # seed: plain 0.49, guided 1.00 (other data seeds: 0.60 vs 0.85, 0.49 vs 1.00).
    X, y_true, bright = _bright_nuisance(160, 0)
    y = np.full(160, -1)
    y[np.flatnonzero((y_true == 0) & (bright == 0))[:2]] = 0
    y[np.flatnonzero((y_true == 1) & (bright == 1))[:2]] = 1
    X_test, y_test, _ = _bright_nuisance(200, 100)
    params = dict(max_iter=30, switch_iter=30, batch_size=8, mu=4, backbone="small_cnn", device="cpu",
                  random_state=0)
    plain = PriorGuidedFlexMatchClassifier(**params).fit(X, y).score(X_test, y_test)
    guided = PriorGuidedFlexMatchClassifier(**params).fit(X, y, prior_proba=np.eye(2)[y_true]).score(X_test, y_test)
    assert guided >= 0.85
    assert guided > plain + 0.2


def test_pickle_roundtrip_and_determinism():
    X, y_true, _ = _bars(30)
    y = np.full(30, -1)
    y[:6] = y_true[:6]
    clf = PriorGuidedFlexMatchClassifier(max_iter=3, random_state=0, **TINY).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), restored.predict_proba(X))
    again = PriorGuidedFlexMatchClassifier(max_iter=3, random_state=0, **TINY).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


def test_string_labels_history_validation_and_warm_start():
    X, y_true, _ = _bars(30)
    labels = np.array(["top", "bottom"], dtype=object)[y_true]
    y = np.array([-1] * 30, dtype=object)
    y[:6] = labels[:6]
    clf = PriorGuidedFlexMatchClassifier(max_iter=4, eval_every=2, warm_start=True, random_state=0, **TINY)
    clf.fit(X, y, X_val=X, y_val=labels, y_true=labels)
    assert list(clf.classes_) == ["bottom", "top"]
    assert set(clf.predict(X)) <= {"bottom", "top"}
    assert [h["step"] for h in clf.history_] == [2, 4]
    assert {"val_accuracy", "pseudo_label_accuracy", "mask_rate", "loss"} <= set(clf.history_[0])
    assert clf.best_step_ in (2, 4)
    clf.set_params(max_iter=6).fit(X, y)  # resumes at step 4
    assert clf.n_iter_ == 6 and [h["step"] for h in clf.history_] == [2, 4, 6]


def test_switch_iter_auto_is_half_the_steps():
    X, y_true, _ = _bars(20)
    y = np.full(20, -1)
    y[:4] = y_true[:4]
    clf = PriorGuidedFlexMatchClassifier(max_iter=26, random_state=0, eval_every=26, **TINY).fit(X, y)
    assert clf.switch_iter_ == 13
    assert clf.update_every_ == 13  # "update" mode: one refresh at T (max(T, max_iter // 10))


def test_supervised_and_linear_baselines():
    X, y_true, _ = _bars(30)
    y = np.full(30, -1)
    y[:6] = y_true[:6]
    sup = SupervisedClassifier(backbone="small_cnn", max_iter=3, batch_size=4, device="cpu", random_state=0)
    sup.fit(X, y)
    assert "mu" not in sup.get_params() and sup.predict(X).shape == (30,)
    assert sup.history_[-1]["mask_rate"] == 0.0  # no unlabeled loss
    F = X.reshape(30, -1)
    lin = LinearEvaluationClassifier(embedder="passthrough").fit(F, y)
    assert lin.score(F, y_true) > 0.9


# ---------------------------------------------------------------- bad input
def test_bad_input_errors():
    X, y_true, _ = _bars(20)
    y = np.full(20, -1)
    y[:4] = y_true[:4]
    clf = PriorGuidedFlexMatchClassifier(max_iter=1, random_state=0, **TINY)
    with pytest.raises(ValueError, match="prior_proba.*shape"):
        clf.fit(X, y, prior_proba=np.full((20, 3), 1 / 3))
    with pytest.raises(ValueError, match="prior_proba.*sum to 1"):
        clf.fit(X, y, prior_proba=np.full((20, 2), 0.3))
    with pytest.raises(ValueError, match="prior_proba.*non-negative"):
        clf.fit(X, y, prior_proba=np.tile([1.5, -0.5], (20, 1)))
    with pytest.raises(ValueError, match="y has 0 labeled"):
        clf.fit(X, np.full(20, -1))
    with pytest.raises(ValueError, match="prior_mode"):
        clone(clf).set_params(prior_mode="keep").fit(X, y)
    with pytest.raises(ValueError, match="X_val and y_val"):
        clf.fit(X, y, X_val=X)

    class WrongClassesPrior:  # a "propagator" that knows only class 0
        def get_params(self, deep=True):
            return {}

        def fit(self, X, y):
            self.classes_ = np.array([0])
            self.label_distributions_ = np.ones((len(X), 1))
            return self

    with pytest.raises(ValueError, match=r"classes \[1\] of y are missing"):
        PriorGuidedFlexMatchClassifier(prior=WrongClassesPrior(), max_iter=1, **TINY).fit(X, y)

    fitted = PriorGuidedFlexMatchClassifier(max_iter=1, random_state=0, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="fitted on images of shape"):
        fitted.predict(np.zeros((2, 1, 10, 10), dtype=np.float32))
    with pytest.raises(ValueError, match="prior_proba"):
        check_prior_proba(np.full((2, 2), np.nan), 2, 2)



def test_encoder_initialisation_copies_simsiam_weights():
    from as3l_sklearn import SimSiamEmbedder

    X, y_true, _ = _bars(32)
    y = np.full(32, -1)
    y[:4] = y_true[:4]
    embedder = SimSiamEmbedder(backbone="small_cnn", projector_dim=32, predictor_dim=8, max_epochs=1, batch_size=16,
                               device="cpu", random_state=0).fit(X)
    clf = PriorGuidedFlexMatchClassifier(encoder=embedder, max_iter=1, lr=1e-12, random_state=0, **TINY).fit(X, y)
    ours = {k: v for k, v in clf.net_.module_.backbone.state_dict().items() if k.endswith("weight")}
    theirs = embedder.net_.module_.encoder.state_dict()
    assert ours and all(torch.allclose(v, theirs[k], atol=1e-6) for k, v in ours.items())
    # the embedder itself is left untouched
    assert clf.net_.module_.backbone is not embedder.net_.module_.encoder


def test_keyboard_interrupt_keeps_usable_weights(monkeypatch):
    X, y_true, _ = _bars(20)
    y = np.full(20, -1)
    y[:4] = y_true[:4]
    original = _net.FlexMatchNet.train_step

    def interrupted(self, *args, step=0, **kwargs):
        if step == 2:
            raise KeyboardInterrupt
        return original(self, *args, step=step, **kwargs)

    monkeypatch.setattr(_net.FlexMatchNet, "train_step", interrupted)
    clf = PriorGuidedFlexMatchClassifier(max_iter=5, random_state=0, **TINY)
    with pytest.warns(TrainingInterruptedWarning, match="interrupted at step 2"):
        clf.fit(X, y)
    assert clf.n_iter_ == 2 and clf.interrupted_
    assert clf.predict(X).shape == (20,)
    monkeypatch.setattr(_net.FlexMatchNet, "train_step", original)
    clf.set_params(warm_start=True).fit(X, y)  # resumes to max_iter
    assert clf.n_iter_ == 5 and not clf.interrupted_


def test_best_weights_kept_and_resumed_from_last():
    X, y_true, _ = _bars(24)
    y = np.full(24, -1)
    y[:4] = y_true[:4]
    clf = PriorGuidedFlexMatchClassifier(max_iter=4, eval_every=1, warm_start=True, random_state=0, **TINY)
    clf.fit(X, y, X_val=X, y_val=y_true)
    accuracies = [h["val_accuracy"] for h in clf.history_]
    assert clf.best_step_ == 1 + int(np.argmax(accuracies))
    assert clf.score(X, y_true) == pytest.approx(max(accuracies))
    clf.set_params(max_iter=6).fit(X, y, X_val=X, y_val=y_true)
    accuracies = [h["val_accuracy"] for h in clf.history_]
    assert clf.score(X, y_true) == pytest.approx(max(accuracies)) and clf.n_iter_ == 6


def test_prior_pipeline_fitted_transductively():
    from sklearn.pipeline import Pipeline

    from as3l_sklearn import ClusterFineTuner, SeededKMeansPropagator, SimSiamEmbedder

    X, y_true, _ = _bars(40)
    y = np.full(40, -1)
    y[:4] = y_true[:4]
    prior = Pipeline([
        ("embed", SimSiamEmbedder(backbone="small_cnn", projector_dim=32, predictor_dim=8, max_epochs=1,
                                  batch_size=16, device="cpu", random_state=0)),
        ("fine", ClusterFineTuner(n_clusters=2, n_runs=2, max_epochs=2, random_state=0)),
        ("prop", SeededKMeansPropagator(n_clusters=[2, 4], random_state=0)),
    ])
    clf = PriorGuidedFlexMatchClassifier(prior=prior, switch_iter=2, max_iter=3, random_state=0, **TINY).fit(X, y)
    assert clf.prior_.shape == (40, 2)
    np.testing.assert_allclose(clf.prior_.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(clf.prior_[:4], np.eye(2)[y_true[:4]], atol=1e-6)  # labeled rows are one-hot
    assert not hasattr(prior, "steps") or not hasattr(prior[-1], "label_distributions_")  # cloned, not fitted


def test_validation_labels_of_uncovered_classes_count_as_errors():
    # one label per class is the use case: a class no labeled sample covers still appears in a
    # validation set, and must be scored as wrong (as `score` does), not rejected
    X, y_true, _ = _bars(16)
    y = np.full(16, -1)
    y[np.flatnonzero(y_true == 0)[:2]] = 0
    y_val = np.where(np.arange(16) < 8, y_true, 7)  # half the validation labels are an unseen class
    clf = PriorGuidedFlexMatchClassifier(max_iter=2, eval_every=1, random_state=0, **TINY)
    clf.fit(X, y, X_val=X, y_val=y_val)
    assert all(0.0 <= h["val_accuracy"] <= 0.5 for h in clf.history_)
    assert clf.score(X, y_val) <= 0.5


def test_monitor_data_never_chooses_the_weights():
    """Issue 11: data passed as X_monitor (a test set) only records a learning curve; the
    final model is the same as without it, the last EMA weights, whatever the curve says."""
    X, y_true, _ = _bars(24)
    y = np.full(24, -1)
    y[:4] = y_true[:4]
    params = dict(max_iter=6, eval_every=1, random_state=0, **TINY)
    plain = PriorGuidedFlexMatchClassifier(**params).fit(X, y)
    monitored = PriorGuidedFlexMatchClassifier(**params).fit(X, y, X_monitor=X, y_monitor=y_true)
    np.testing.assert_array_equal(monitored.predict_proba(X), plain.predict_proba(X))
    curve = [h["monitor_accuracy"] for h in monitored.history_]
    assert len(curve) == 6 and monitored.best_step_ == monitored.n_iter_ == 6
    assert monitored.score(X, y_true) == pytest.approx(curve[-1])
    assert not hasattr(pickle.loads(pickle.dumps(monitored)), "_monitor") or \
        pickle.loads(pickle.dumps(monitored))._monitor is None
    with pytest.raises(ValueError, match="X_monitor and y_monitor"):
        PriorGuidedFlexMatchClassifier(**params).fit(X, y, X_monitor=X)


@pytest.mark.parametrize("estimator", [PriorGuidedFlexMatchClassifier, SupervisedClassifier])
def test_verbose_1_shows_one_bar_per_fit(estimator, capsys):
    # before: verbose=1 printed a history line every eval_every steps and no total or ETA
    X, y = _bars(24)[:2]
    partial = np.full(24, -1)
    partial[:4] = y[:4]
    params = {k: v for k, v in TINY.items() if k in estimator().get_params()}
    estimator(max_iter=10, eval_every=2, random_state=0, verbose=1, **params).fit(X, partial)
    out, err = capsys.readouterr()
    assert out == "" and "\x1b[" not in err
    assert err.count("\n") == 1 and err.count("\r") <= 3 and "10/10" in err and estimator.__name__ in err
    estimator(max_iter=10, eval_every=2, random_state=0, verbose=2, **params).fit(X, partial)
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 5 and err == ""


# ---------------------------------------------------------------- skorch's fit loop and callbacks
class _Counter(Callback):
    def initialize(self):
        self.events = {"batch": 0, "epoch": 0, "train_begin": 0, "train_end": 0}
        self.batch_sizes = []
        return self

    def on_train_begin(self, net, **kwargs):
        self.events["train_begin"] += 1

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        self.events["batch"] += 1
        self.batch_sizes.append(len(batch[0]))

    def on_epoch_end(self, net, **kwargs):
        self.events["epoch"] += 1

    def on_train_end(self, net, **kwargs):
        self.events["train_end"] += 1


@pytest.mark.parametrize("estimator", [PriorGuidedFlexMatchClassifier, SupervisedClassifier])
def test_user_callbacks_see_one_batch_per_step_and_one_epoch_per_record(estimator):
    X, y_true, _ = _bars(24)
    y = np.full(24, -1)
    y[:4] = y_true[:4]
    counter = _Counter()
    params = {k: v for k, v in TINY.items() if k in estimator().get_params()}
    clf = estimator(max_iter=5, eval_every=2, random_state=0, callbacks=[("count", counter)], **params).fit(X, y)
    assert counter.events == {"batch": 5, "epoch": 3, "train_begin": 1, "train_end": 1}
    assert set(counter.batch_sizes) == {4}
    assert [h["step"] for h in clf.history_] == [2, 4, 5]
    # net_.history has the records' keys next to skorch's own
    assert clf.net_.history[:, "step"] == [2, 4, 5] and len(clf.net_.history[:, "train_loss"]) == 3
    # the estimator's own callbacks (they hold the training data) are not kept in the model
    names = [name for name, _ in clf.net_.callbacks_]
    assert "count" in names and not [n for n in names if n.startswith("flexmatch_")]
    assert pickle.loads(pickle.dumps(clf)).predict(X).shape == (24,)


def test_early_stopping_callback_ends_the_fit_without_an_interrupt_warning():
    import warnings

    from skorch.callbacks import EarlyStopping

    X, y_true, _ = _bars(24)
    y = np.full(24, -1)
    y[:4] = y_true[:4]
    stop = EarlyStopping(monitor="val_accuracy", lower_is_better=False, patience=1, threshold=2.0, sink=lambda *a: None)
    clf = PriorGuidedFlexMatchClassifier(max_iter=10, eval_every=2, random_state=0, callbacks=[("stop", stop)], **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        clf.fit(X, y, X_val=X, y_val=y_true)
    assert clf.n_iter_ == 4 and not clf.interrupted_  # no improvement by 2.0 after the first record


def test_checkpoint_writes_raw_and_ema_weights_that_reload(tmp_path):
    from skorch.callbacks import Checkpoint

    X, y_true, _ = _bars(24)
    y = np.full(24, -1)
    y[:4] = y_true[:4]
    # f_params: module_, the raw weights SGD trains; f_ema_module: ema_module_, the moving
    # average the classifier predicts with (skorch names the file argument after the module)
    checkpoint = Checkpoint(monitor="val_accuracy_best", f_params="params.pt",
                            f_ema_module="ema.pt", f_optimizer=None, f_criterion=None,
                            f_history=None, dirname=str(tmp_path))
    clf = PriorGuidedFlexMatchClassifier(max_iter=6, eval_every=2, random_state=0,
                                         callbacks=[("checkpoint", checkpoint)], **TINY)
    clf.fit(X, y, X_val=X, y_val=y_true)
    assert (tmp_path / "params.pt").exists() and (tmp_path / "ema.pt").exists()
    # the last checkpoint is the record with the best validation accuracy, whose EMA weights
    # the classifier keeps
    saved_steps = [h["step"] for h in clf.net_.history if h["event_cp"]]
    assert saved_steps[-1] == clf.best_step_
    expected = clf.predict_proba(X)

    other = PriorGuidedFlexMatchClassifier(max_iter=1, random_state=1, **TINY).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), expected)
    other.net_.load_params(f_ema_module=str(tmp_path / "ema.pt"))
    np.testing.assert_array_equal(other.predict_proba(X), expected)
    # params.pt loads into module_; it is not what predict uses (the raw weights differ from
    # their average)
    other.net_.load_params(f_params=str(tmp_path / "params.pt"))
    raw = torch.load(tmp_path / "params.pt")
    module, ema = other.net_.module_.state_dict(), other.net_.ema_module_.state_dict()
    assert all(torch.equal(value, module[key]) for key, value in raw.items())
    assert any(not torch.equal(value, ema[key])
               for key, value in raw.items() if value.is_floating_point())


def test_callbacks_are_validated_by_name():
    X, y_true, _ = _bars(20)
    y = np.full(20, -1)
    y[:4] = y_true[:4]
    pairs = r"The 'callbacks' parameter of PriorGuidedFlexMatchClassifier must be a list of \(name, "
    with pytest.raises(TypeError, match=pairs):
        PriorGuidedFlexMatchClassifier(max_iter=1, callbacks=[_Counter()], **TINY).fit(X, y)
    with pytest.raises(TypeError, match=pairs):  # a pair, but not of a skorch Callback
        PriorGuidedFlexMatchClassifier(max_iter=1, callbacks=[("count", print)], **TINY).fit(X, y)
    with pytest.raises(ValueError, match="callbacks.*'ema'"):
        PriorGuidedFlexMatchClassifier(max_iter=1, callbacks=[("ema", _Counter())], **TINY).fit(X, y)

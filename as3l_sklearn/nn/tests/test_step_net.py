"""Tests of the training base shared by the SimSiam and FlexMatch nets (``nn/_step_net.py``).

Tiny data (8x8 images, a few steps, one torch thread); what both estimators get from the base:
the learning-rate schedule through skorch's ``LRScheduler``, the callbacks of one fit, one
interruption warning, float16 autocast with a gradient scaler, the loss through ``get_loss``.
"""

import pickle
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback, EarlyStopping
from torch import nn
from torch.nn import functional as F

from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier, SupervisedClassifier
from as3l_sklearn.classification._net import ClassifierModule, FlexMatchNet, cosine_lr
from as3l_sklearn.embedding import SimSiamEmbedder
from as3l_sklearn.nn._step_net import StepNet, TrainingInterruptedWarning, check_user_callbacks


def _images(n=40, seed=0):
    return np.random.RandomState(seed).rand(n, 1, 8, 8).astype(np.float32)


def _labels(n=40):
    y = np.full(n, -1)
    y[:6] = [0, 1, 0, 1, 0, 1]
    return y


def _embedder(**params):
    base = dict(backbone="small_cnn", projector_dim=16, predictor_dim=8, batch_size=8, device="cpu",
                random_state=0, n_threads=1)
    return SimSiamEmbedder(**{**base, **params})


def _classifier(**params):
    base = dict(backbone="small_cnn", batch_size=4, mu=2, device="cpu", random_state=0, n_threads=1)
    return PriorGuidedFlexMatchClassifier(**{**base, **params})


class _StepRates(Callback):
    """The learning rate of each training step (what the optimizer uses) and the net's scaler."""

    def __init__(self):
        self.rates, self.scalers = [], []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates.append({group["lr"] for group in net.optimizer_.param_groups})
            self.scalers.append(type(getattr(net, "_grad_scaler", None)).__name__)


def test_flexmatch_rates_follow_the_cosine_and_resume_at_the_step_reached():
    rates = _StepRates()
    clf = _classifier(max_iter=3, eval_every=2, lr=0.05, callbacks=[("rates", rates)]).fit(_images(), _labels())
    clf.set_params(warm_start=True, max_iter=6).fit(_images(), _labels())
    expected = [cosine_lr(0.05, k, 3) for k in range(3)] + [cosine_lr(0.05, k, 6) for k in range(3, 6)]
    # every parameter group (weights, and biases without decay) at the same rate, exactly
    assert rates.rates == [{rate} for rate in expected]
    # the history records the rate of each record's last step; skorch's batches each step's
    assert [h["lr"] for h in clf.history_] == [expected[1], expected[2], expected[3], expected[5]]
    assert [b["event_lr"] for row in clf.net_.history for b in row["batches"]] == expected


def test_simsiam_rates_warm_up_then_follow_the_cosine():
    from as3l_sklearn.embedding._simsiam import step_learning_rate

    rates = _StepRates()
    embedder = _embedder(max_steps=9, lr=0.4, callbacks=[("rates", rates)]).fit(_images())
    expected = [step_learning_rate(k, embedder.lr_, 9, 1) for k in range(9)]
    assert rates.rates == [{rate} for rate in expected]


def test_the_fit_callbacks_are_dropped_and_the_user_callbacks_kept():
    embedder = _embedder(max_steps=2, callbacks=[("rates", _StepRates())]).fit(_images())
    names = [name for name, _ in embedder.net_.callbacks_]
    assert "rates" in names and "lr_schedule" in names
    assert not {"p_std", "feature_monitor", "knn_monitor", "step_progress"} & set(names)
    assert [name for name, _ in embedder.net_.callbacks] == ["rates"]
    # the torch scheduler holds the optimizer and the net: rebuilt by a fit, never pickled
    net = pickle.loads(pickle.dumps(embedder.net_))
    assert dict(net.callbacks_)["lr_schedule"].lr_scheduler_ is None


@pytest.mark.parametrize("fit", [lambda cbs: _embedder(max_steps=1, callbacks=cbs).fit(_images()),
                                 lambda cbs: _classifier(max_iter=1, callbacks=cbs).fit(_images(), _labels())],
                         ids=["SimSiamEmbedder", "PriorGuidedFlexMatchClassifier"])
def test_user_callbacks_are_checked_the_same_way(fit):
    with pytest.raises(ValueError, match="callbacks: the name 'lr_schedule' is taken"):
        fit([("lr_schedule", _StepRates())])
    # the type checks are the estimators' parameter constraints (scikit-learn's message)
    with pytest.raises(TypeError, match="The 'callbacks' parameter of .* must be"):
        fit([("rates", object())])
    with pytest.raises(TypeError, match="The 'callbacks' parameter of .* must be"):
        fit([_StepRates()])


def test_check_user_callbacks_reserves_a_prefix():
    with pytest.raises(ValueError, match="'flexmatch_x' is taken"):
        check_user_callbacks([("flexmatch_x", _StepRates())], taken_prefix="flexmatch_")
    assert check_user_callbacks(None) == []


class _Interrupt(Callback):
    def on_batch_begin(self, net, training=False, **kwargs):
        if training and net.steps_done == 2:
            raise KeyboardInterrupt


def test_one_interruption_warning_for_both_estimators():
    from as3l_sklearn import classification, embedding

    assert embedding.TrainingInterruptedWarning is TrainingInterruptedWarning
    assert classification.TrainingInterruptedWarning is TrainingInterruptedWarning
    # filters written for either estimator's former category still catch it
    assert issubclass(TrainingInterruptedWarning, UserWarning)
    assert issubclass(TrainingInterruptedWarning, RuntimeWarning)
    with pytest.warns(TrainingInterruptedWarning, match="interrupted"):
        embedder = _embedder(max_steps=5, callbacks=[("stop", _Interrupt())]).fit(_images())
    with pytest.warns(TrainingInterruptedWarning, match="interrupted at step 2"):
        clf = _classifier(max_iter=5, callbacks=[("stop", _Interrupt())]).fit(_images(), _labels())
    assert embedder.n_steps_ == 2 and clf.n_iter_ == 2 and clf.interrupted_


def test_early_stopping_is_not_an_interruption():
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0, sink=lambda *a: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        embedder = _embedder(max_epochs=4, callbacks=[("stop", stop)]).fit(_images())
    assert embedder.n_epochs_ == 2  # no improvement by 10 after the first epoch
    assert not embedder.net_.training_interrupted()


def test_autocast_only_with_amp_on_cuda():
    net = FlexMatchNet(ClassifierModule(nn.Flatten(), 2, out_dim=64), device="cpu", amp=True)
    assert net.amp_dtype() is None and not net.autocast()._enabled


def test_float16_autocast_trains_with_a_grad_scaler_whose_scale_is_pickled():
    """The float16 path of GPUs without bfloat16, run on the CPU (autocast and GradScaler take "cpu")."""
    rates = _StepRates()
    with mock.patch.object(StepNet, "amp_dtype", lambda self: torch.float16):
        clf = SupervisedClassifier(backbone="small_cnn", max_iter=3, batch_size=4, device="cpu", random_state=0,
                                   n_threads=1, callbacks=[("rates", rates)]).fit(_images(), _labels())
        assert rates.scalers == ["GradScaler"] * 3
        assert "_grad_scaler" not in vars(clf.net_)  # the object lives for one fit only
        first = dict(clf.net_._grad_scaler_state)
        assert first["scale"] > 1 and np.isfinite([h["loss"] for h in clf.history_]).all()
        clf = pickle.loads(pickle.dumps(clf))
        assert clf.net_._grad_scaler_state == first
        clf.set_params(warm_start=True, max_iter=6).fit(_images(), _labels())
    resumed = clf.net_._grad_scaler_state
    # the scale continued: three more steps grew the tracker, or an overflow lowered the scale
    assert resumed["_growth_tracker"] == first["_growth_tracker"] + 3 or resumed["scale"] < first["scale"]
    assert clf.predict(_images()).shape == (40,)


def test_flexmatch_loss_goes_through_get_loss_and_the_criterion():
    net = FlexMatchNet(ClassifierModule(nn.Flatten(), 3, out_dim=64), lambda_u=0.5, device="cpu").initialize()
    generator = torch.Generator().manual_seed(0)
    logits_l, logits_us = torch.randn(4, 3, generator=generator), torch.randn(6, 3, generator=generator)
    y_l, pseudo = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0, 1, 0])
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    loss = net.get_loss((logits_l, logits_us), (y_l, pseudo, mask))
    unlabeled = (F.cross_entropy(logits_us, pseudo, reduction="none") * mask).sum() / 6
    assert loss.item() == pytest.approx(F.cross_entropy(logits_l, y_l).item() + 0.5 * unlabeled.item(), rel=1e-6)
    # no unlabeled batch (SupervisedClassifier): the labeled term alone
    assert net.get_loss((logits_l, None), (y_l, None, None)).item() == pytest.approx(
        F.cross_entropy(logits_l, y_l).item(), rel=1e-6)
    # another criterion reaches both terms (here: label smoothing)
    smooth = FlexMatchNet(ClassifierModule(nn.Flatten(), 3, out_dim=64), lambda_u=0.5, device="cpu",
                          criterion__label_smoothing=0.2).initialize()
    assert smooth.criterion_unlabeled_.label_smoothing == 0.2 and smooth.criterion_unlabeled_.reduction == "none"
    assert smooth.get_loss((logits_l, logits_us), (y_l, pseudo, mask)).item() != pytest.approx(loss.item())

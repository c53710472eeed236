"""Cluster fine-tuning of self-supervised features (AS3L, section 3.2.1, Eq. 1).

A single linear layer on top of frozen features is trained so that every sample moves
towards the k-means centers it was assigned to in ``C`` k-means runs with different seeds:

    Loss = 1/(C N) * sum_i sum_j || f_fine,i - f_center,i,j ||^2          (Eq. 1)

Samples that land in the same cluster in every run are pulled onto that cluster's center;
samples whose assignment changes between runs are pulled towards the mean of several
centers and stay in between, which is what makes the clusters found afterwards on
``f_fine`` tighter and more stable than those on ``f_self``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from ..cluster import kmeans
from ..utils import check_features, check_random_state_or_generator, resolve_device
from ..utils._param_validation import (
    DEVICE,
    N_THREADS,
    RANDOM_STATE,
    Integral,
    Interval,
    Real,
    RealNotInt,
    StrOptions,
    fit_context,
)
from ..utils._progress import print_line, progress_bar
from ..utils._torch import resolve_n_threads, torch_settings, torch_threads

PREPROCESSING = ("whiten", "standardize", "l2", None)


class ClusterFineTuner(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fine-tune features with one linear layer trained towards multi-run k-means centers.

    Implements section 3.2.1 of the AS3L paper (Eq. 1): ``n_runs`` k-means clusterings of
    the (conditioned) self-supervised features ``f_self`` with different seeds give every
    sample ``n_runs`` centers; a linear layer ``f_fine = W f + b`` is trained for
    ``max_epochs`` epochs to minimise the mean over samples and runs of the squared
    Euclidean distance between ``f_fine`` and those centers. The encoder that produced the
    features stays frozen (this estimator only sees its output).

    **Where the centers live.** The centers are computed once, in the input feature space
    (``f_self`` after the optional conditioning below), and are *fixed* regression targets
    while the layer trains; they are not recomputed in ``f_fine`` space. This is what the
    paper does ("we employ C times K-means on f_self") and it is what makes Eq. 1 a
    well-posed objective: with centers recomputed from ``f_fine`` the trivial solution
    ``W = 0`` (every sample mapped onto one point, which is then every center) would reach
    a loss of zero. With fixed centers that collapse costs the full spread of the centers,
    so the layer cannot collapse. Because targets and inputs share one space, the layer is
    square (output dimension = input dimension, the paper's setting) and is initialised as
    the identity, so training starts from ``f_self`` itself.

    **Feature conditioning.** Self-supervised features are often badly conditioned for
    k-means (a few dominant directions, many noisy ones). ``preprocessing`` makes the
    choice explicit: ``"whiten"`` (default) centres the features, projects them on their
    first ``n_components`` principal axes and scales every axis to unit variance;
    ``"standardize"`` centres and scales each feature; ``"l2"`` normalises each sample to
    unit length (cosine geometry); ``None`` uses the features as they are (the paper's
    literal setting). On weak features (an untrained encoder on Fashion-MNIST) whitening to
    50 dimensions raises K=10 k-means purity substantially; on the default SimSiam features
    the two settings are equal within the seed spread (``docs/results.md``). The
    conditioning is part of the fitted transform, so ``transform`` applies it too.

    **Two settings.** ``ClusterFineTuner(preprocessing=None)`` is the paper-literal setting:
    no conditioning, and the layer's output width equals the input width. The default,
    ``preprocessing="whiten"`` with ``n_components=50``, is the measured one;
    ``benchmarks/bench_embedding.py`` reports the K=10 purity of both side by side on pixels,
    random and SimSiam encoders (``docs/results.md``).

    Parameters
    ----------
    n_clusters : int, default=10
        K, the number of clusters of each k-means run. Use the number of clusters the
        selector will use afterwards (the paper uses K = the annotation budget).
    n_runs : int, default=6
        C, the number of k-means runs (each with its own seed).
    preprocessing : {"whiten", "standardize", "l2"} or None, default="whiten"
        Conditioning of the input features applied before clustering and before the
        linear layer (see above).
    n_components : int, float or None, default=50
        Only with ``preprocessing="whiten"``: number of principal axes kept (an int), or
        the fraction of variance to keep (a float in (0, 1)), or ``None`` for all axes.
        An int larger than ``min(n_samples, n_features)`` is clipped to that bound. The
        output dimension of :meth:`transform` equals the number of axes kept.
    max_epochs : int, default=40
        Epochs of training of the linear layer (the paper's 40).
    lr : float, default=0.2
        SGD step size, > 0 (momentum 0.9, cosine annealing to 0 over ``max_epochs``), expressed
        in units of ``1 / L`` where ``L`` is the smoothness constant of Eq. 1 on the
        conditioned features (twice the largest eigenvalue of their second-moment matrix).
        The same value therefore works for any feature scale. If training diverges (heavy-
        tailed features), it restarts from the identity with a 4x smaller step and warns
        with a ``ConvergenceWarning``.
    batch_size : int, default=256
        Mini-batch size (clipped to the number of samples).
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the k-means runs and the mini-batch order. Same value, same result.
    verbose : int, default=0
        0 silent; 1 shows one progress bar (tqdm, on stderr) over the k-means runs and
        epochs of the fit; 2 prints a line per k-means run and per epoch instead.
    device : str, default="auto"
        torch device for training the layer (``"auto"``: CUDA when available). The fitted
        transform is stored as numpy arrays and runs on CPU.
    n_threads : int, "auto" or None, default="auto"
        torch CPU threads used to train the layer (the caller's setting is restored after).
        ``"auto"``: ``min(4, os.cpu_count())``; ``None``: torch's current setting.

    Attributes
    ----------
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of str
        Input feature names, when ``X`` has string column names.
    mean_ : ndarray of shape (n_features,)
        Mean subtracted before conditioning (zeros for ``"l2"`` and ``None``).
    conditioning_ : ndarray of shape (n_features, n_components) or None
        Linear map applied after centring (``None`` for ``"l2"`` and ``None``).
    n_components_ : int
        Dimension of the conditioned features, of the centers and of ``f_fine``.
    cluster_centers_ : ndarray of shape (n_runs, n_clusters, n_components)
        The fixed k-means centers of each run, in conditioned feature space.
    labels_ : ndarray of shape (n_samples, n_runs)
        Cluster index of every training sample in every run.
    coef_ : ndarray of shape (n_components, n_components)
        Weight ``W`` of the trained linear layer (``f_fine = f @ coef_.T + intercept_``).
    intercept_ : ndarray of shape (n_components,)
        Bias ``b`` of the trained linear layer.
    loss_curve_ : list of float
        Eq. 1 on the training set before training (first entry) and after each epoch.
    n_iter_ : int
        Number of epochs run.
    torch_settings_ : dict
        What the layer was trained with (threads, device, torch version).

    See Also
    --------
    SimSiamEmbedder : produces the ``f_self`` features this estimator fine-tunes.

    Notes
    -----
    Simplifications and choices not fixed by the paper: the optimiser of the linear layer
    (SGD with momentum 0.9 and a cosine schedule, the paper's optimiser elsewhere), its
    step size (scale-free, above), and the conditioning step (the paper clusters raw
    ``f_self``; ``preprocessing=None`` reproduces that).

    Eq. 1 is a least-squares problem; run to convergence it maps each sample to the
    least-squares linear prediction of the mean of its ``n_runs`` centers. Starting from
    the identity and training for a fixed number of epochs keeps the layer between
    ``f_self`` and that solution, as the paper's 40-epoch training does.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import ClusterFineTuner
    >>> rng = np.random.RandomState(0)
    >>> F = np.r_[rng.normal(0, 1, (50, 8)), rng.normal(4, 1, (50, 8))]
    >>> fine = ClusterFineTuner(n_clusters=2, n_runs=3, n_components=4, max_epochs=5,
    ...                         random_state=0, device="cpu")
    >>> fine.fit_transform(F).shape
    (100, 4)
    """

    def __init__(
        self,
        n_clusters: int = 10,
        n_runs: int = 6,
        *,
        preprocessing: str | None = "whiten",
        n_components=50,
        max_epochs: int = 40,
        lr: float = 0.2,
        batch_size: int = 256,
        random_state=None,
        verbose: int = 0,
        device: str = "auto",
        n_threads="auto",
    ):
        self.n_clusters = n_clusters
        self.n_runs = n_runs
        self.preprocessing = preprocessing
        self.n_components = n_components
        self.max_epochs = max_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.n_threads = n_threads

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_runs": [Interval(Integral, 1, None, closed="left")],
        "preprocessing": [StrOptions({p for p in PREPROCESSING if p is not None}), None],
        "n_components": [Interval(Integral, 1, None, closed="left"),
                         Interval(RealNotInt, 0, 1, closed="neither"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": RANDOM_STATE,
        "verbose": ["verbose"],
        "device": DEVICE,
        "n_threads": N_THREADS,
    }

    # ------------------------------------------------------------------ validation
    def _check_n_clusters(self, n_samples: int) -> int:
        """``n_clusters``, which k-means needs at most as large as the number of samples."""
        if self.n_clusters > n_samples:
            raise ValueError(
                f"n_clusters={self.n_clusters} is larger than the number of samples ({n_samples}); "
                "k-means needs at least one sample per cluster"
            )
        return int(self.n_clusters)

    # ------------------------------------------------------------------ conditioning
    def _fit_conditioning(self, F: np.ndarray):
        """Fit the conditioning on float64 copies; returns the conditioned float32 features."""
        n_samples, n_features = F.shape
        F64 = F.astype(np.float64)
        if self.preprocessing in ("whiten", "standardize"):
            self.mean_ = F64.mean(axis=0)
            centered = F64 - self.mean_
        else:
            self.mean_ = np.zeros(n_features)
            centered = F64
        if self.preprocessing == "standardize":
            std = centered.std(axis=0)
            # constant features stay constant (zero) instead of dividing by zero
            self.conditioning_ = np.diag(np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0))
        elif self.preprocessing == "whiten":
            _, singular, vt = np.linalg.svd(centered, full_matrices=False)
            variance = singular**2 / max(n_samples - 1, 1)
            tol = variance.max(initial=0.0) * max(n_samples, n_features) * np.finfo(np.float64).eps
            n_valid = int(np.sum(variance > tol))
            if self.n_components is None:
                n_keep = n_valid
            elif isinstance(self.n_components, numbers.Integral):
                n_keep = min(int(self.n_components), n_valid)
            else:
                ratio = np.cumsum(variance) / max(variance.sum(), np.finfo(np.float64).tiny)
                n_keep = min(int(np.searchsorted(ratio, self.n_components) + 1), n_valid)
            # all-constant input: keep one (zero) axis so the output is well-formed
            n_keep = max(n_keep, 1)
            scale = np.where(variance[:n_keep] > tol, 1.0 / np.sqrt(np.maximum(variance[:n_keep], tol)), 0.0)
            components = vt[:n_keep]
            # deterministic sign: largest absolute loading of each axis is positive
            signs = np.sign(components[np.arange(n_keep), np.abs(components).argmax(axis=1)])
            signs[signs == 0] = 1.0
            self.conditioning_ = (components * signs[:, None]).T * scale
        else:
            self.conditioning_ = None
        return self._condition(F)

    def _condition(self, F: np.ndarray) -> np.ndarray:
        F64 = F.astype(np.float64) - self.mean_
        if self.conditioning_ is not None:
            F64 = F64 @ self.conditioning_
        if self.preprocessing == "l2":
            norms = np.linalg.norm(F64, axis=1, keepdims=True)
            F64 = F64 / np.where(norms > 0, norms, 1.0)
        return np.ascontiguousarray(F64, dtype=np.float32)

    # ------------------------------------------------------------------ fit
    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Cluster ``X`` ``n_runs`` times and train the linear layer of Eq. 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Self-supervised features ``f_self``.
        y : None
            Ignored.

        Returns
        -------
        self : ClusterFineTuner
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=1)
        F = check_features(X, name="X")
        n_clusters, device = self._check_n_clusters(F.shape[0]), resolve_device(self.device)
        rng = check_random_state_or_generator(self.random_state)

        G = self._fit_conditioning(F)
        self.n_components_ = G.shape[1]

        # verbose=1: one bar for the whole fit (k-means runs, then epochs), not a line per epoch
        self._bar = progress_bar(self.n_runs + self.max_epochs, type(self).__name__, enabled=self.verbose == 1,
                                 unit="it")
        try:
            centers, labels = [], []
            for run in range(self.n_runs):
                result = kmeans(G, n_clusters, random_state=rng.randint(2**31 - 1))
                centers.append(result.centers)
                labels.append(result.labels)
                self._bar.update(1)
                if self.verbose >= 2:
                    print_line(f"[ClusterFineTuner] k-means run {run + 1}/{self.n_runs}: inertia {result.inertia:.4g}")
            self.cluster_centers_ = np.stack(centers).astype(np.float32)
            self.labels_ = np.stack(labels, axis=1).astype(np.int64)

            n_threads = resolve_n_threads(self.n_threads)
            # CPU results depend on the thread count: train with a fixed one, restore the caller's after
            with torch_threads(n_threads):
                self._train_layer(G, device, int(rng.randint(2**31 - 1)))
        finally:
            self._bar.close()
            del self._bar  # not part of the fitted model
        self.torch_settings_ = torch_settings(n_threads, device)
        return self

    def _train_layer(self, G: np.ndarray, device: str, seed: int) -> None:
        import torch

        n_samples, dim = G.shape
        batch_size = min(int(self.batch_size), n_samples)
        # Eq. 1 averages || f - c_j ||^2 over the runs j; that equals || f - mean_j c_j ||^2
        # plus a constant, so the gradient only needs the mean target of each sample. The
        # reported loss adds the constant back so it is Eq. 1 exactly.
        targets_runs = self.cluster_centers_[np.arange(self.n_runs)[None, :], self.labels_]  # n x C x d
        mean_target = targets_runs.mean(axis=1)
        spread = float(((targets_runs - mean_target[:, None, :]) ** 2).sum(axis=2).mean())

        # smoothness constant of the loss in (W, b): its Hessian is 2 E[[f,1][f,1]^T]
        augmented = np.c_[G.astype(np.float64), np.ones(n_samples)]
        second_moment = augmented.T @ augmented / n_samples
        smoothness = 2.0 * float(np.linalg.eigvalsh(second_moment)[-1])
        step = float(self.lr) / max(smoothness, np.finfo(np.float32).tiny)

        inputs = torch.from_numpy(G).to(device)
        targets = torch.from_numpy(np.ascontiguousarray(mean_target, dtype=np.float32)).to(device)
        # mini-batches of heavy-tailed features can be far more curved than the average;
        # if a run blows up, restart from the identity with a 4x smaller step
        for attempt in range(6):
            layer, curve = self._sgd(inputs, targets, spread, step, batch_size, device, seed)
            if curve is not None:
                break
            step /= 4
        else:
            raise FloatingPointError(f"ClusterFineTuner diverged even with lr={self.lr / 4**5:.3g}; check the features")
        if attempt:
            warnings.warn(
                f"ClusterFineTuner: lr={self.lr} diverged on these features; trained with lr={self.lr / 4**attempt:.3g}",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.loss_curve_ = curve
        self.n_iter_ = int(self.max_epochs)
        self.coef_ = layer.weight.detach().cpu().numpy().astype(np.float32)
        self.intercept_ = layer.bias.detach().cpu().numpy().astype(np.float32)

    def _sgd(self, inputs, targets, spread, step, batch_size, device, seed):
        """Train the identity-initialised layer; returns (layer, loss curve) or (None, None) on divergence."""
        import torch

        n_samples, dim = inputs.shape
        generator = torch.Generator().manual_seed(seed)
        layer = torch.nn.Linear(dim, dim).to(device)
        with torch.no_grad():
            layer.weight.copy_(torch.eye(dim))
            layer.bias.zero_()
        optimizer = torch.optim.SGD(layer.parameters(), lr=step, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(self.max_epochs))

        def full_loss() -> float:
            with torch.no_grad():
                return float(((layer(inputs) - targets) ** 2).sum(dim=1).mean()) + spread

        curve = [full_loss()]
        bar = getattr(self, "_bar", None)  # set by fit
        for epoch in range(int(self.max_epochs)):
            order = torch.randperm(n_samples, generator=generator).to(device)
            for start in range(0, n_samples, batch_size):
                index = order[start : start + batch_size]
                loss = ((layer(inputs[index]) - targets[index]) ** 2).sum(dim=1).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            scheduler.step()
            curve.append(full_loss())
            # the identity start is a feasible point: ending far above it means divergence
            if not np.isfinite(curve[-1]) or curve[-1] > 10 * curve[0] + 1e-6:
                if self.verbose >= 2:
                    print_line(f"[ClusterFineTuner] diverged at epoch {epoch + 1} (loss {curve[-1]:.3g})")
                if bar is not None:  # the restart trains max_epochs more epochs
                    bar.total += int(self.max_epochs)
                return None, None
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{curve[-1]:.4g}", refresh=False)
            if self.verbose >= 2:
                print_line(f"[ClusterFineTuner] epoch {epoch + 1}/{self.max_epochs}: Eq. 1 loss {curve[-1]:.5g}")
        return layer, curve

    # ------------------------------------------------------------------ transform
    def transform(self, X):
        """Map features to the fine-tuned space ``f_fine``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Self-supervised features.

        Returns
        -------
        f_fine : ndarray of shape (n_samples, n_components), float32
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        F = check_features(X, name="X")
        G = self._condition(F)
        out = G.astype(np.float64) @ self.coef_.T.astype(np.float64) + self.intercept_
        return np.ascontiguousarray(out, dtype=np.float32)

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.allow_nan = False
        return tags

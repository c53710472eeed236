"""SimSiam heads and loss (Chen & He, "Exploring Simple Siamese Representation Learning", 2021).

* projector: three fully connected layers, each followed by BatchNorm; ReLU after the
  first two; the last BatchNorm has no affine parameters;
* predictor: a bottleneck MLP ``dim -> hidden_dim -> dim`` with BatchNorm and ReLU on the
  hidden layer and no BatchNorm on the output;
* loss: negative cosine similarity with a stop-gradient on the target branch, used
  symmetrically: ``L = D(p1, z2) / 2 + D(p2, z1) / 2``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SimSiamPredictor",
    "SimSiamProjector",
    "negative_cosine_similarity",
    "simsiam_loss",
]


class SimSiamProjector(nn.Module):
    """SimSiam projection MLP: (Linear-BN-ReLU) x 2, Linear-BN(affine=False).

    The linear layers have no bias (each is followed by BatchNorm, which makes a bias
    redundant), as in the authors' code.

    Parameters
    ----------
    in_dim : int
        Input dimension (the backbone's ``out_dim``).
    hidden_dim : int, default=2048
        Hidden width.
    out_dim : int, default=2048
        Output dimension (the paper's 2048).

    Examples
    --------
    >>> import torch
    >>> projector = SimSiamProjector(128, hidden_dim=64, out_dim=32)
    >>> projector(torch.randn(4, 128)).shape
    torch.Size([4, 32])
    """

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 2048):
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=False),
            nn.BatchNorm1d(out_dim, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SimSiamPredictor(nn.Module):
    """SimSiam bottleneck prediction MLP: Linear-BN-ReLU, Linear.

    Parameters
    ----------
    dim : int, default=2048
        Input and output dimension (the projector's ``out_dim``).
    hidden_dim : int, default=512
        Bottleneck width (the paper uses ``dim / 4``).

    Examples
    --------
    >>> import torch
    >>> predictor = SimSiamPredictor(32, hidden_dim=8)
    >>> predictor(torch.randn(4, 32)).shape
    torch.Size([4, 32])
    """

    def __init__(self, dim: int = 2048, hidden_dim: int = 512):
        super().__init__()
        self.in_dim = int(dim)
        self.out_dim = int(dim)
        self.layers = nn.Sequential(
            nn.Linear(dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def negative_cosine_similarity(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean negative cosine similarity ``D(p, z)`` with a stop-gradient on ``z``.

    ``-(normalize(p) * normalize(z.detach())).sum(1).mean()``: -1 when every ``p_i`` points
    the same way as ``z_i``; no gradient flows into ``z``.

    Parameters
    ----------
    p : torch.Tensor of shape (n, d)
        Predictions (the predictor's output for one view).
    z : torch.Tensor of shape (n, d)
        Targets (the projector's output for the other view).

    Returns
    -------
    loss : torch.Tensor
        A scalar in [-1, 1].

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(4, 8)
    >>> round(negative_cosine_similarity(2 * z, z).item(), 6)
    -1.0
    """
    return -(F.normalize(p, dim=1) * F.normalize(z.detach(), dim=1)).sum(dim=1).mean()


def simsiam_loss(
    p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor
) -> torch.Tensor:
    """Symmetric SimSiam loss ``D(p1, z2) / 2 + D(p2, z1) / 2`` (stop-gradient on the z's).

    Examples
    --------
    >>> import torch
    >>> z = torch.randn(4, 8)
    >>> round(simsiam_loss(z, z, z, z).item(), 6)
    -1.0
    """
    return 0.5 * negative_cosine_similarity(p1, z2) + 0.5 * negative_cosine_similarity(p2, z1)

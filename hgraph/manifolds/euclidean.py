"""Euclidean space: the flat baseline of every hyperbolic formula (pure functions)."""
from __future__ import annotations

import torch

Tensor = torch.Tensor


def dist0(x: Tensor) -> Tensor:
    """(...,) norms of (..., d) points."""
    return x.norm(dim=-1)


def dist(x: Tensor, y: Tensor) -> Tensor:
    """(...,) elementwise distances."""
    return (x - y).norm(dim=-1)


def pairwise(x: Tensor, y: Tensor) -> Tensor:
    """(n, m) distance matrix of (n, d) and (m, d) points."""
    return torch.cdist(x, y)

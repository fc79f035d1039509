"""Argument checks of the ranking metrics: points, positives, ids and candidate masks.

Shared with :mod:`hgraph.eval.link` and :mod:`hgraph.eval.hierarchy`; each
raises ``ValueError`` naming the argument and what was expected.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import scipy.sparse as sp
import torch

Tensor = torch.Tensor
ArrayLike = Union[np.ndarray, Tensor]


def _as_bool_csr(m, n: int, name: str) -> sp.csr_matrix:
    if not sp.issparse(m):
        raise ValueError(f"{name} must be a scipy sparse (N, N) matrix, got {type(m).__name__}")
    if m.shape != (n, n):
        raise ValueError(f"{name} has shape {m.shape}, expected ({n}, {n}) to match x")
    m = sp.csr_matrix(m, dtype=bool, copy=True)
    m.eliminate_zeros()
    if m.diagonal().any():     # u is never its own positive
        m.setdiag(False)
        m.eliminate_zeros()
    m.sort_indices()
    return m


def _check_points(x: Tensor) -> None:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"x must be an (N, D) tensor, got {getattr(x, 'shape', type(x))}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x contains NaN or Inf; ranking metrics need finite points")


def _as_index(a: ArrayLike, name: str, n: int) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must hold integer node ids, got {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name} holds node ids outside [0, {n}); got {a.min()}..{a.max()}")
    return a


def _as_mask(m: Optional[ArrayLike], n: int) -> np.ndarray:
    if m is None:
        return np.ones(n, dtype=bool)
    if isinstance(m, Tensor):
        m = m.detach().cpu().numpy()
    m = np.asarray(m)
    if m.dtype != bool or m.shape != (n,):
        raise ValueError(f"candidates must be a bool mask of shape ({n},), got {m.dtype} {m.shape}")
    return m

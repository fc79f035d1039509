"""Neighbour sampling for torch-geometric's ``NeighborLoader`` without compiled extensions.

Why this is hand-written: PyG's :class:`~torch_geometric.sampler.NeighborSampler`
samples through ``pyg-lib`` or ``torch-sparse``.  ``pyg-lib`` has no wheel on the
package index this project installs from, and ``torch-sparse`` (with
``torch-scatter``) has to be compiled against the installed torch: about 25
minutes on a 2-core machine, most of a fresh set-up.  :class:`TorchNeighborSampler`
does the homogeneous node-wise sampling hgraph needs in plain PyTorch, vectorised
over the graph's CSC, and :func:`make_neighbor_sampler` picks the compiled sampler
when one is importable and this one otherwise (``HGRAPH_NEIGHBOR_SAMPLER=torch`` or
``compiled`` forces one).

Semantics (those of PyG's default sampler): ``num_neighbors[i]`` in-neighbours of
every node first reached at hop i (the seeds at hop 0) are drawn uniformly without
replacement (all of them when -1 or when the node has no more); the subgraph is
*directional* — it holds exactly the sampled edges, each from the sampled
neighbour to the node that sampled it.  ``node`` lists the seeds first, then the
new nodes of each hop in the order they were first sampled; ``row``/``col`` are
local indices into ``node`` and ``edge`` the positions of the edges in the CSC
(``NeighborLoader`` maps them back through ``perm``).  Random draws come from
``generator`` (torch's global generator by default), so ``torch.manual_seed``
makes a run reproducible.
"""
from __future__ import annotations

import os
import warnings
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.sampler import NeighborSampler, SamplerOutput
from torch_geometric.sampler.base import SubgraphType

__all__ = ["TorchNeighborSampler", "compiled_sampler_available", "make_neighbor_sampler",
           "sampler_backend"]

# PyG warns that sampling without pyg-lib is deprecated whenever a NeighborSampler is
# built without it: irrelevant to the pure-PyTorch sampler, and torch-sparse is the
# supported compiled alternative where pyg-lib has no wheel.
_PYG_LIB_WARNING = ".*without a 'pyg-lib' installation"


def compiled_sampler_available() -> bool:
    """True when torch-geometric can sample through pyg-lib or torch-sparse."""
    import torch_geometric.typing as t
    return bool(getattr(t, "WITH_PYG_LIB", False) or getattr(t, "WITH_TORCH_SPARSE", False))


def sampler_backend() -> str:
    """Which sampler :func:`make_neighbor_sampler` uses by default: ``pyg-lib``,
    ``torch-sparse`` or ``torch`` (:class:`TorchNeighborSampler`)."""
    import torch_geometric.typing as t
    if os.environ.get("HGRAPH_NEIGHBOR_SAMPLER") == "torch" or not compiled_sampler_available():
        return "torch"
    return "pyg-lib" if getattr(t, "WITH_PYG_LIB", False) else "torch-sparse"


class TorchNeighborSampler(NeighborSampler):
    """PyG's :class:`~torch_geometric.sampler.NeighborSampler` with the homogeneous
    node-wise sampling done in PyTorch (see the module docstring).  Same arguments;
    ``generator`` is the :class:`torch.Generator` to draw from (default: torch's
    global one).  Not supported: heterogeneous graphs, ``subgraph_type='induced'``,
    ``disjoint``, temporal and weighted sampling (each raises)."""

    def __init__(self, data, num_neighbors, *args, generator: Optional[torch.Generator] = None,
                 **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_PYG_LIB_WARNING)
            super().__init__(data, num_neighbors, *args, **kwargs)
        if self.is_hetero:
            raise NotImplementedError("TorchNeighborSampler: homogeneous graphs only")
        if self.subgraph_type == SubgraphType.induced:
            raise NotImplementedError("TorchNeighborSampler: subgraph_type='induced' "
                                      "is not supported")
        if self.disjoint:
            raise NotImplementedError("TorchNeighborSampler: disjoint sampling is not supported")
        if self.edge_weight is not None:
            raise NotImplementedError("TorchNeighborSampler: weighted sampling is not supported")
        self.generator = generator

    def _sample(self, seed, seed_time=None, **kwargs) -> SamplerOutput:
        if isinstance(seed, dict):
            raise NotImplementedError("TorchNeighborSampler: homogeneous graphs only")
        if seed_time is not None or self.is_temporal:
            raise NotImplementedError("TorchNeighborSampler: temporal sampling is not supported")
        node, row, col, edge, n_nodes, n_edges = sample_csc(
            self.colptr, self.row, seed, self.num_neighbors.get_mapped_values(),
            replace=self.replace, generator=self.generator)
        if self.sample_direction == "backward":
            row, col = col, row
        return SamplerOutput(node=node, row=row, col=col, edge=edge, batch=None,
                             num_sampled_nodes=n_nodes, num_sampled_edges=n_edges)


def _pick(deg: Tensor, k: int, replace: bool,
          generator: Optional[torch.Generator]) -> Tuple[Tensor, Tensor]:
    """Picks from segments of lengths ``deg``: the segment of each pick and its offset
    within the segment.  A segment gives all its elements when ``k < 0`` or, without
    replacement, when it has at most ``k``; otherwise ``k`` drawn uniformly (without
    replacement unless ``replace``).  Picks come out grouped by segment in segment
    order, within a segment by offset (draws with replacement: in draw order)."""
    dev = deg.device
    if k < 0:
        count = deg
    elif replace:
        count = torch.where(deg > 0, k, 0)
    else:
        count = deg.clamp(max=k)
    seg = torch.repeat_interleave(torch.arange(deg.numel(), device=dev), count)
    offset = torch.arange(seg.numel(), device=dev) - (torch.cumsum(count, 0) - count)[seg]
    if k < 0 or seg.numel() == 0:
        return seg, offset
    if replace:
        u = torch.rand(seg.numel(), generator=generator, dtype=torch.float64, device=dev)
        d = deg[seg]
        return seg, torch.minimum((u * d).long(), d - 1)
    big = deg > k
    if bool(big.any()):
        # k of d without replacement: a random key for each of the segment's d
        # elements, keep the k smallest (a uniformly random k-subset)
        bdeg = deg[big]
        bseg = torch.repeat_interleave(torch.arange(bdeg.numel(), device=dev), bdeg)
        bstart = torch.cumsum(bdeg, 0) - bdeg
        pos = torch.arange(bseg.numel(), device=dev) - bstart[bseg]
        key = torch.rand(bseg.numel(), generator=generator, device=dev)
        order = torch.argsort(key)
        order = order[torch.argsort(bseg[order], stable=True)]   # by segment, then by key
        keep = pos < k          # sorted this way, segment layout is unchanged: pos = rank
        chosen = pos[order[keep]].view(-1, k).sort(dim=1).values
        offset[big[seg]] = chosen.flatten()
    return seg, offset


def sample_csc(colptr: Tensor, row: Tensor, seed: Tensor, num_neighbors: List[int],
               replace: bool = False, generator: Optional[torch.Generator] = None
               ) -> Tuple[Tensor, Tensor, Tensor, Tensor, List[int], List[int]]:
    """Directional multi-hop neighbour sampling over a CSC (``colptr``, ``row``).

    Returns ``node, row, col, edge, num_sampled_nodes, num_sampled_edges`` as PyG's
    samplers do (see the module docstring).  Seeds are kept as given, duplicates
    included (a duplicate's edges point at its own slot; new nodes that reach it map
    to its first slot)."""
    seed = seed.to(torch.long)
    colptr = colptr.to(torch.long)
    node = seed
    n_nodes, n_edges = [int(seed.numel())], []
    rows, cols, edges = [], [], []
    begin = 0
    for k in num_neighbors:
        frontier = node[begin:]
        start = colptr[frontier]
        deg = colptr[frontier + 1] - start
        seg, offset = _pick(deg, int(k), replace, generator)
        e = start[seg] + offset                        # position in the CSC
        src = row[e].to(torch.long)                    # the sampled neighbours (global ids)
        # global -> local: nodes already sampled keep their slot (the first one for a
        # duplicate seed); the others are appended in order of first appearance
        uniq, inv = torch.unique(src, return_inverse=True)
        local = torch.empty_like(uniq)
        found = torch.zeros_like(uniq, dtype=torch.bool)
        if node.numel():
            sorted_nodes, sorted_idx = torch.sort(node, stable=True)
            pos = torch.searchsorted(sorted_nodes, uniq).clamp_(max=node.numel() - 1)
            found = sorted_nodes[pos] == uniq
            local[found] = sorted_idx[pos[found]]
        first = torch.full((uniq.numel(),), src.numel(), dtype=torch.long, device=src.device)
        first.scatter_reduce_(0, inv, torch.arange(src.numel(), device=src.device), reduce="amin")
        new_u = torch.nonzero(~found).flatten()
        new_u = new_u[torch.argsort(first[new_u])]
        frontier_begin, begin = begin, node.numel()
        local[new_u] = begin + torch.arange(new_u.numel(), device=src.device)
        node = torch.cat([node, uniq[new_u]])
        rows.append(local[inv])
        cols.append(frontier_begin + seg)
        edges.append(e)
        n_nodes.append(int(new_u.numel()))
        n_edges.append(int(e.numel()))
    cat = (lambda ts: torch.cat(ts) if ts else torch.empty(0, dtype=torch.long))
    return node, cat(rows), cat(cols), cat(edges), n_nodes, n_edges


def make_neighbor_sampler(data, num_neighbors, backend: Optional[str] = None,
                          generator: Optional[torch.Generator] = None,
                          **kwargs) -> NeighborSampler:
    """The neighbour sampler for ``NeighborLoader(data, num_neighbors,
    neighbor_sampler=...)``.  ``backend``: ``'auto'`` (PyG's compiled sampler when
    pyg-lib or torch-sparse is importable, else :class:`TorchNeighborSampler`),
    ``'compiled'`` or ``'torch'``; None reads ``$HGRAPH_NEIGHBOR_SAMPLER`` (default
    ``auto``).  The two draw differently, so a seeded run repeats bit for bit only
    with the same backend.  ``kwargs`` go to the sampler (``replace``,
    ``subgraph_type``, ...); ``generator`` only to the PyTorch one (the compiled
    samplers draw from torch's global generator)."""
    if backend is None:
        backend = os.environ.get("HGRAPH_NEIGHBOR_SAMPLER", "") or "auto"
    if backend not in ("auto", "compiled", "torch"):
        raise ValueError(f"neighbour sampler backend must be 'auto', 'compiled' or 'torch', "
                         f"not {backend!r} (argument or $HGRAPH_NEIGHBOR_SAMPLER)")
    if backend == "compiled" and not compiled_sampler_available():
        raise ImportError("the compiled neighbour sampler needs pyg-lib or torch-sparse "
                          "(HGRAPH_TORCH_SPARSE=1 scripts/setup_env.sh builds torch-sparse)")
    if backend == "torch" or (backend == "auto" and not compiled_sampler_available()):
        return TorchNeighborSampler(data, num_neighbors, generator=generator, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PYG_LIB_WARNING)
        return NeighborSampler(data, num_neighbors, **kwargs)

"""torch-geometric conversion of the training graph, and whether neighbour sampling is available."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from hgraph.data.taxonomy import Taxonomy

Tensor = torch.Tensor


def to_pyg(tax: Taxonomy, edges: Optional[np.ndarray] = None,
           x: Optional[np.ndarray] = None):
    """A ``torch_geometric.data.Data`` for message passing.

    ``edges``: (E, 2) rows (child, parent) to include (default: all of the
    taxonomy's edges; pass the *training* edges for a leak-free graph).
    Both directions are present in ``edge_index`` (2, 2E), so information
    flows up and down the hierarchy.  ``x``: (N, F) features or None;
    ``level``: (N,) depth; ``node_ids``: (N,) global ids (carried through
    neighbour sampling as ``n_id``).
    """
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce

    e = tax.edges if edges is None else np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    ei = torch.from_numpy(np.concatenate([e.T, e[:, ::-1].T], axis=1).copy())
    ei = coalesce(ei, num_nodes=tax.num_nodes)
    data = Data(edge_index=ei, num_nodes=tax.num_nodes)
    data.level = torch.from_numpy(tax.level.copy())
    data.node_ids = torch.arange(tax.num_nodes)
    if x is not None:
        data.x = torch.as_tensor(np.asarray(x))
    return data

"""Device and seed set-up shared by every task."""
from __future__ import annotations

import random

import numpy as np
import torch

from hgraph.errors import HGraphInputError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise HGraphInputError("--device cuda was asked for but no CUDA device is available",
                               fix="use --device auto or cpu")
    return torch.device(name)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


"""Leak-free splits of (item, category) rows for the item -> category task.

A **zero-shot** slice first: a seeded fraction of the categories that carry
items is chosen, and every item of those categories is held out (their text
and place in the taxonomy stay known; none of their items reaches training).
The other items are split train / validation / test **per category** (seeded
shuffle of each category's items, counts rounded at random so that small categories
give test items too, and keep at least one training item when they have two
or more).  Test items are then
sliced by the number of *training* items of their category: ``zero`` (0:
zero-shot categories, and categories whose only items all landed outside
training), ``tail`` (1-2) and ``head`` (>= 3).

Rows are (item, category) pairs (:class:`~hgraph.data.items.Items`); an item
with several categories is split as one unit (by its first category's draw),
and it is zero-shot when any of its categories is, so its text never reaches
training through a second category.  Items with a ``split`` column keep it
(the zero-shot draw still applies to the test rows only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from hgraph.data.items import Items

#: slice names and the training-item counts they cover
SLICES = ("zero", "tail", "head")


def slice_mask(slices: np.ndarray, s: str) -> np.ndarray:
    """Rows of test slice ``s`` (one of :data:`SLICES`, or ``all``, or ``seen``:
    head and tail, the categories with >= 1 training item)."""
    if s == "all":
        return np.ones(len(slices), dtype=bool)
    return slices != "zero" if s == "seen" else slices == s


@dataclass
class ItemSplits:
    """Which item goes where.

    ``item``: (M,) item id per row (:meth:`Items.item_ids`); ``category``: (M,)
    category per row; ``part``: (U,) ``"train"``/``"val"``/``"test"`` per item
    id; ``zero_shot``: (C0,) sorted category ids whose items are all held
    out; ``train_count``: (N,) training items per category.
    """

    item: np.ndarray
    category: np.ndarray
    part: np.ndarray
    zero_shot: np.ndarray
    train_count: np.ndarray

    def rows(self, part: str) -> np.ndarray:
        """(R,) row indices whose item is in ``part``."""
        return np.flatnonzero(self.part[self.item] == part)

    def items_of(self, part: str) -> np.ndarray:
        """(U_part,) item ids in ``part``, ascending."""
        return np.flatnonzero(self.part == part)

    def slice_of(self, items: np.ndarray) -> np.ndarray:
        """(n,) slice name per item id: by its categories' largest training count
        (``zero`` 0, ``tail`` 1-2, ``head`` >= 3)."""
        best = np.zeros(len(self.part), dtype=np.int64)
        np.maximum.at(best, self.item, self.train_count[self.category])
        n = best[np.asarray(items, dtype=np.int64)]
        return np.where(n == 0, "zero", np.where(n <= 2, "tail", "head")).astype(object)

    def summary(self) -> Dict[str, int]:
        out = {f"{p}_items": int((self.part == p).sum()) for p in ("train", "val", "test")}
        test = self.items_of("test")
        sl = self.slice_of(test)
        out.update({f"test_{s}": int((sl == s).sum()) for s in SLICES})
        out["zero_shot_categories"] = int(len(self.zero_shot))
        out["categories_with_train_items"] = int((self.train_count > 0).sum())
        return out


def _stochastic_round(v: float, rng: np.random.Generator) -> int:
    """floor(v) plus one with probability frac(v): unbiased, so categories with
    one or two items also give test items (the tail slice needs them)."""
    lo = int(np.floor(v))
    return lo + int(rng.random() < v - lo)


def make_item_splits(items: Items, num_nodes: int, zero_shot_frac: float = 0.1,
                     val_frac: float = 0.1, test_frac: float = 0.2, seed: int = 0,
                     candidates: Optional[np.ndarray] = None) -> ItemSplits:
    """Split ``items`` (rows over categories ``0..num_nodes-1``).

    ``zero_shot_frac`` of the categories with items (and in ``candidates``,
    a boolean (N,) mask, when given) become zero-shot; each remaining
    category's items are shuffled and cut: ``n * test_frac`` test and
    ``n * val_frac`` validation items (each rounded up or down at random with
    the fractional part as probability), the rest training, with the
    training share kept >= 1 when ``n >= 2``.  Deterministic in ``seed``.
    """
    for name, v in (("zero_shot_frac", zero_shot_frac), ("val_frac", val_frac),
                    ("test_frac", test_frac)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {v}")
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1, got {val_frac + test_frac}")
    rng = np.random.default_rng(seed)
    item = items.item_ids()
    cat = items.category
    U = int(item.max()) + 1 if len(item) else 0
    # an item's home category (the first row's): it is split with that category
    first = np.full(U, -1, dtype=np.int64)
    order = np.arange(len(item))[::-1]
    first[item[order]] = cat[order]
    with_items = np.unique(cat)
    if candidates is not None:
        with_items = with_items[np.asarray(candidates, dtype=bool)[with_items]]
    k = int(round(zero_shot_frac * len(with_items)))
    zero = np.sort(rng.choice(with_items, size=k, replace=False)) if k else \
        np.zeros(0, dtype=np.int64)
    zero_mask = np.zeros(num_nodes, dtype=bool)
    zero_mask[zero] = True
    # items touching a zero-shot category: all test
    item_zero = np.zeros(U, dtype=bool)
    np.logical_or.at(item_zero, item, zero_mask[cat])
    part = np.full(U, "train", dtype=object)
    part[item_zero] = "test"
    given = items.split
    if given is not None:   # the file's split, zero-shot items held out on top of it
        gp = np.full(U, "", dtype=object)
        gp[item] = given
        part = np.where(item_zero, "test", gp).astype(object)
    else:
        rest = np.flatnonzero(~item_zero)
        rest = rest[rng.permutation(len(rest))]
        # group the shuffled items by home category; cut each group
        grp = np.argsort(first[rest], kind="stable")
        rest = rest[grp]
        bounds = np.flatnonzero(np.diff(first[rest])) + 1
        for g in np.split(rest, bounds):
            n = len(g)
            n_test = _stochastic_round(n * test_frac, rng)
            n_val = _stochastic_round(n * val_frac, rng)
            if n >= 2:
                over = n_test + n_val - (n - 1)
                while over > 0:         # keep one training item
                    if n_val > 0:
                        n_val -= 1
                    else:
                        n_test -= 1
                    over -= 1
            part[g[:n_test]] = "test"
            part[g[n_test:n_test + n_val]] = "val"
    train_rows = part[item] == "train"
    train_count = np.bincount(cat[train_rows], minlength=num_nodes).astype(np.int64)
    assert not train_count[zero].any()
    return ItemSplits(item=item, category=cat, part=part, zero_shot=zero,
                      train_count=train_count)


__all__ = ["ItemSplits", "SLICES", "make_item_splits", "slice_mask"]

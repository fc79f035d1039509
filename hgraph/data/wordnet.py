"""WordNet noun hierarchies from the WordNet database files (wndb format).

``load_wordnet("nouns")`` reads ``data.noun`` and ``index.noun`` (Debian:
``apt-get install wordnet-base``, files in ``/usr/share/wordnet``) and
returns the noun hypernym DAG; ``load_wordnet("mammals")`` the part of it
below ``mammal.n.01``.  These are the two WordNet data sets of Nickel & Kiela
(2017).

Choices (made to match the closure files of poincare-embeddings, which are
built with NLTK):

* Edges are the hypernym pointers ``@`` *and* the instance-hypernym
  pointers ``@i`` (synset -> noun synset).  Instance synsets (``Paris``,
  ``Einstein``) have only ``@i`` pointers; without them they would be
  disconnected, and the noun closure would not cover all 82,115 synsets.
* Every noun synset is a node (WordNet 3.0: 82,115), rooted at
  ``entity.n.01``.
* Names are NLTK's synset names ``lemma.n.NN``: the synset's first lemma in
  ``data.noun``, lower-cased, and ``NN`` (two digits) the 1-based position of
  the synset's offset in that lemma's ``index.noun`` entry (index.noun lists
  a lemma's synsets in sense order).  Names are also the node keys; the
  8-digit synset offsets are in ``tax.meta["offsets"]``.
* ``mammals``: every synset that has ``mammal.n.01`` as an ancestor, plus
  ``mammal.n.01`` itself, and the edges among them.  Any path from a mammal
  up to another mammal stays inside the set, so the closure of this subgraph
  is exactly the noun closure restricted to mammals (what poincare-embeddings
  builds by filtering the noun closure; its extra hand-written regex filter of
  a few pairs is not applied here).

Parsing all nouns takes about 1 s of CPU (measured on a 2-core machine), so
nothing is cached on disk; the parsed files are kept in memory for the
process (keyed by their modification time and size), so loading ``mammals``
after ``nouns`` only rebuilds the taxonomy.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from scipy.sparse import csgraph

from hgraph.data.taxonomy import Taxonomy
from hgraph.errors import HGraphInputError

WORDNET_DIR = "/usr/share/wordnet"
WORDNET_SETS = ("mammals", "nouns")
HYPERNYM_POINTERS = ("@", "@i")


def _open_lines(path: Path) -> List[str]:
    if not path.is_file():
        raise HGraphInputError(
            "WordNet database file not found", file=str(path),
            fix="install it with 'apt-get install wordnet-base' (Debian/Ubuntu), pass "
                "root= the directory holding data.noun and index.noun, or read a "
                "closure file with read_taxonomy(path, format='closure')")
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:  # wndb files are ASCII
        raise HGraphInputError(f"not a WordNet file (bytes are not UTF-8 at offset {e.start})",
                               file=str(path)) from None


def _parse_index(path: Path) -> Dict[str, Tuple[int, str]]:
    """lemma -> (line number, line) of ``index.noun``; split lazily by :func:`_senses`
    (only the lemmas that name a synset are ever split)."""
    out: Dict[str, Tuple[int, str]] = {}
    for ln, line in enumerate(_open_lines(path), 1):
        if line and line[0] != " ":  # licence header lines start with two spaces
            out[line[:line.find(" ")]] = (ln, line)
    return out


def _senses(entry: Tuple[int, str], path: Path) -> List[str]:
    """Synset offsets of one index.noun line, in sense order."""
    ln, line = entry
    f = line.split()
    try:
        n_syn = int(f[2])
        if n_syn < 1 or len(f) < 4 + n_syn:
            raise ValueError
    except (IndexError, ValueError):
        raise HGraphInputError("malformed index line", file=str(path), line=ln,
                               fix="expected 'lemma pos synset_cnt p_cnt ... offsets'") from None
    return f[len(f) - n_syn:]


def _parse_data(path: Path) -> Tuple[List[str], List[str], List[Tuple[str, str]], List[int]]:
    """Offsets, first lemmas, (child, parent) hypernym offset pairs and their lines."""
    offsets: List[str] = []
    lemmas: List[str] = []
    pairs: List[Tuple[str, str]] = []
    pair_lines: List[int] = []
    for ln, line in enumerate(_open_lines(path), 1):
        if not line or line[0] == " ":
            continue
        bar = line.find(" | ")
        f = (line if bar < 0 else line[:bar]).split()
        try:
            off = f[0]
            w_cnt = int(f[3], 16)
            p = 4 + 2 * w_cnt
            p_cnt = int(f[p])
            ptrs = f[p + 1:p + 1 + 4 * p_cnt]
            if len(ptrs) != 4 * p_cnt:
                raise ValueError
        except (IndexError, ValueError):
            raise HGraphInputError("malformed synset line", file=str(path), line=ln,
                                   fix="expected the wndb data file format") from None
        offsets.append(off)
        lemmas.append(f[4].lower())
        for k in range(0, len(ptrs), 4):
            if ptrs[k] in HYPERNYM_POINTERS and ptrs[k + 2] == "n":
                pairs.append((off, ptrs[k + 1]))
                pair_lines.append(ln)
    return offsets, lemmas, pairs, pair_lines


def load_wordnet(which: str, root: str = WORDNET_DIR) -> Taxonomy:
    """WordNet noun hierarchy as a :class:`Taxonomy` (a DAG).

    Args:
        which: ``"nouns"`` (all noun synsets) or ``"mammals"`` (the synsets
            below ``mammal.n.01``).
        root: directory with the wndb files ``data.noun`` and ``index.noun``.
    """
    if which not in WORDNET_SETS:
        raise HGraphInputError(f"unknown WordNet set {which!r}",
                               fix="use one of " + ", ".join(WORDNET_SETS))
    d = Path(root)
    data_path, index_path = d / "data.noun", d / "index.noun"
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
                  for p in (data_path, index_path))
    offsets, names, child, parent, pair_lines = _parse_nouns(str(d), stamp)
    tax = Taxonomy.from_edges(child, parent, nodes=names, tree=False, source=str(data_path),
                              lines=pair_lines)
    tax.meta["offsets"] = [None] * tax.num_nodes
    id_of = {k: i for i, k in enumerate(tax.keys)}
    for off, nm in zip(offsets, names):
        tax.meta["offsets"][id_of[nm]] = off
    tax.meta["wordnet"] = "nouns"
    if which != "nouns":
        tax = _subtree(tax, "mammal.n.01", "mammals")
    tax.texts = synset_texts(tax, root)
    return tax


@lru_cache(maxsize=2)
def _parse_nouns(root: str, stamp) -> Tuple[List[str], List[str], List[str], List[str], List[int]]:
    """Parse once per process (keyed by the files' mtime and size); nothing on disk.

    Returns offsets and names per synset, and child/parent names and data.noun
    line per hypernym pointer.  Callers must not mutate the lists.
    """
    d = Path(root)
    data_path, index_path = d / "data.noun", d / "index.noun"
    offsets, lemmas, pairs, pair_lines = _parse_data(data_path)
    index = _parse_index(index_path)
    senses: Dict[str, List[str]] = {}

    names: List[str] = []
    for off, lemma in zip(offsets, lemmas):
        try:
            offs = senses.get(lemma)
            if offs is None:
                offs = senses[lemma] = _senses(index[lemma], index_path)
            sense = offs.index(off) + 1
        except (KeyError, ValueError):
            raise HGraphInputError(
                f"synset {off} ({lemma}) is not listed under {lemma!r} in index.noun",
                file=str(index_path), fix="data.noun and index.noun must be from one release"
            ) from None
        names.append(f"{lemma}.n.{sense:02d}")
    name_of = dict(zip(offsets, names))
    missing = [(c, p, ln) for (c, p), ln in zip(pairs, pair_lines) if p not in name_of]
    if missing:
        c, p, ln = missing[0]
        raise HGraphInputError(f"hypernym pointer of {c} to unknown synset {p}",
                               file=str(data_path), line=ln)
    child = [name_of[c] for c, _ in pairs]
    parent = [name_of[p] for _, p in pairs]
    return offsets, names, child, parent, pair_lines


def _subtree(tax: Taxonomy, top: str, label: str) -> Taxonomy:
    """The sub-DAG of ``top`` and all its descendants."""
    r = tax.index(top)
    inside = np.zeros(tax.num_nodes, dtype=bool)
    inside[csgraph.breadth_first_order(tax.parent_to_child, r, directed=True,
                                       return_predecessors=False)] = True
    e = tax.edges[inside[tax.edges[:, 0]] & inside[tax.edges[:, 1]]]
    keys = np.asarray(tax.keys, dtype=object)
    sub = Taxonomy.from_edges(keys[e[:, 0]].tolist(), keys[e[:, 1]].tolist(),
                              nodes=keys[inside].tolist(), tree=False, source=tax.source)
    offs = dict(zip(tax.keys, tax.meta["offsets"]))
    sub.meta["offsets"] = [offs[k] for k in sub.keys]
    sub.meta["wordnet"] = label
    return sub


def _split_gloss(gloss: str) -> Tuple[str, List[str]]:
    """A wndb gloss -> (definition, example sentences).

    Glosses read ``definition; "example one"; "example two"``; the examples
    are the double-quoted parts (a definition may hold a semicolon itself)."""
    examples = [m.strip() for m in re.findall(r'"([^"]+)"', gloss) if m.strip()]
    definition = re.sub(r'"[^"]*"', "", gloss)
    definition = re.sub(r"(\s*;\s*)+$", "", re.sub(r";\s*;", ";", definition)).strip(" ;")
    return definition, examples


@lru_cache(maxsize=2)
def _synset_text(root: str, stamp) -> Dict[str, Tuple[Tuple[str, ...], str, Tuple[str, ...]]]:
    """offset -> (lemmas, definition, example sentences) for every synset of ``data.noun``."""
    out: Dict[str, Tuple[Tuple[str, ...], str, Tuple[str, ...]]] = {}
    for line in _open_lines(Path(root) / "data.noun"):
        if not line or line[0] == " ":
            continue
        head, _, gloss = line.partition(" | ")
        f = head.split()
        w_cnt = int(f[3], 16)
        lemmas = tuple(w.replace("_", " ") for w in f[4:4 + 2 * w_cnt:2])
        definition, examples = _split_gloss(gloss.strip())
        out[f[0]] = (lemmas, definition, tuple(examples))
    return out


def _text_table(root: str):
    p = Path(root) / "data.noun"
    stamp = (p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else None
    return _synset_text(str(root), stamp)


def _offsets(tax: Taxonomy) -> List[str]:
    offs = tax.meta.get("offsets")
    if offs is None:
        raise HGraphInputError("WordNet text needs a WordNet taxonomy (synset offsets)",
                               file=tax.source)
    return offs


def synset_texts(tax: Taxonomy, root: str = WORDNET_DIR) -> List[str]:
    """(N,) node text: the synset's lemmas and the definition part of its gloss
    ("dog, domestic dog, Canis familiaris: a member of the genus Canis ..."),
    the quoted example sentences removed (they are items,
    :func:`wordnet_items`; leaving them in the node text would leak test items
    into the features)."""
    table = _text_table(root)
    out = []
    for o in _offsets(tax):
        lemmas, definition, _ = table.get(o, ((), "", ()))
        out.append(", ".join(lemmas) + (": " + definition if definition else ""))
    return out


def wordnet_items(tax: Taxonomy, root: str = WORDNET_DIR) -> Tuple[List[str], np.ndarray]:
    """The example sentences of the glosses as items: ``(texts, category ids)``.

    The item is the word in context: ``"<lemma>: <sentence>"`` with the
    synset's lemma that occurs in the sentence (the first lemma when none
    does), as in word-sense placement.  Identical (text, synset) pairs are
    kept once.
    """
    table = _text_table(root)
    texts: List[str] = []
    cats: List[int] = []
    seen = set()
    for i, o in enumerate(_offsets(tax)):
        lemmas, _, examples = table.get(o, ((), "", ()))
        for sent in examples:
            low = sent.lower()
            hit = [lm for lm in lemmas if lm.lower() in low]
            word = max(hit, key=len) if hit else (lemmas[0] if lemmas else "")
            t = f"{word}: {sent}"
            if (t, i) not in seen:
                seen.add((t, i))
                texts.append(t)
                cats.append(i)
    return texts, np.asarray(cats, dtype=np.int64)


def gloss_features(tax: Taxonomy, dim: int = 64, root: str = WORDNET_DIR,
                   seed: int = 0) -> np.ndarray:
    """(num_nodes, dim) float32 TF-IDF + SVD (LSA) features of the synsets' text
    (:func:`synset_texts`: lemmas and definition, without the example
    sentences), rows L2-normalised (:func:`hgraph.data.text.tfidf_features`).
    Definitions often name the hypernym ("a terrestrial or aquatic
    flesh-eating mammal"), so the features alone already place many synsets:
    the features-only baseline measures how much.  Fitted on ``tax`` only.
    """
    from hgraph.data.text import tfidf_features
    return tfidf_features(synset_texts(tax, root), dim=dim, seed=seed)

"""HiT's mixed-hop subsumption split (hgraph.data.hit_split) on hand-made DAGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hgraph.data.hit_split import (build_hit_split, hit_entity_names, siblings_matrix,
                                   wordnet_hypernym_edges)
from hgraph.data.taxonomy import transitive_closure
from hgraph.data.wordnet import load_wordnet

# 0 root; 1..12 its children (12 siblings each: hard negatives are all siblings);
# 13..16 under 1; 17, 18 under 2; 19 under 13 and 17 (two parents); 20..23 under 19;
# 24 under 3; 25 under 1 and under 13 (13 is a child of 1, so a sibling of 25 via 1,
# but also 25's parent: it must not be a negative)
EDGES = ([(c, 0) for c in range(1, 13)] + [(c, 1) for c in range(13, 17)] +
         [(17, 2), (18, 2), (19, 13), (19, 17)] + [(c, 19) for c in range(20, 24)] +
         [(24, 3), (25, 13), (25, 1)])
N = 27          # node 26 is isolated: not an entity


def _keys(pairs):
    return {tuple(p) for p in np.asarray(pairs).reshape(-1, 2).tolist()}


@pytest.fixture(scope="module")
def splits():
    e = np.array(EDGES)
    return [build_hit_split(e, N, num_negative=10, eval_frac=0.1, seed=s) for s in range(8)]


def test_positives_partition_the_hierarchy(splits):
    e = np.array(EDGES)
    closure = transitive_closure(e, N)
    all_pairs = _keys(np.argwhere(closure.toarray()))
    base = _keys(e)
    for sp in splits:
        assert _keys(sp.base_edges) == base
        assert _keys(sp.trans_edges) == all_pairs - base
        tr = _keys(sp.train.pos)
        va_d = _keys(sp.val.pos[sp.val.direct])
        te_d = _keys(sp.test.pos[sp.test.direct])
        va_t = _keys(sp.val.pos[~sp.val.direct])
        te_t = _keys(sp.test.pos[~sp.test.direct])
        assert tr | va_d | te_d == base                      # every direct edge once
        assert not (tr & va_d) and not (tr & te_d) and not (va_d & te_d)
        assert sp.train.direct.all()                         # no transitive pair trained
        assert va_t | te_t <= all_pairs - base and not (va_t & te_t)
        # sizes as train_test_split(test_size=0.1) then (test_size=0.5)
        n_b, n_t = len(base), len(all_pairs - base)
        held_b, held_t = int(np.ceil(0.1 * n_b)), int(np.ceil(0.1 * n_t))
        assert len(tr) == n_b - held_b
        assert len(te_d) == int(np.ceil(held_b / 2)) and len(va_d) == held_b - len(te_d)
        assert len(te_t) == int(np.ceil(held_t / 2)) and len(va_t) == held_t - len(te_t)
        assert sp.entities.tolist() == list(range(26))      # the isolated node is out


def test_unseen_entities_are_in_no_training_edge(splits):
    total_unseen_in_eval = 0
    for sp in splits:
        unseen = sp.unseen()
        assert not unseen[sp.train.pos.reshape(-1)].any()
        assert not unseen[26]                                # not an entity at all
        # an entity absent from training is exactly one whose every edge was held out
        held = _keys(sp.base_edges) - _keys(sp.train.pos)
        for u in np.flatnonzero(unseen):
            assert all((c, p) in held for c, p in _keys(sp.base_edges) if u in (c, p))
        ev = np.concatenate([sp.val.pos, sp.test.pos]).reshape(-1)
        total_unseen_in_eval += int(unseen[ev].sum())
    assert total_unseen_in_eval > 0                          # the check is not vacuous


def test_negatives_are_never_positives(splits):
    closure = transitive_closure(np.array(EDGES), N).toarray()
    for sp in splits:
        for ex in (sp.train, sp.val, sp.test):
            for neg in (ex.random, ex.hard):
                c = np.repeat(ex.pos[:, :1], neg.shape[1], axis=1)
                assert not closure[c, neg].any()             # transitive ancestors included
                assert not (neg == c).any()
                assert np.isin(neg, sp.entities).all()
            pairs, labels, row = ex.pairs("hard")
            assert labels.sum() == len(ex) and len(pairs) == 11 * len(ex)
            assert (closure[pairs[:, 0], pairs[:, 1]] == labels.astype(bool)).all()


def test_hard_negatives_are_siblings_first(splits):
    e = np.array(EDGES)
    closure = transitive_closure(e, N)
    sib = siblings_matrix(e, N, closure).toarray()
    parents = {u: {p for c, p in EDGES if c == u} for u in range(N)}
    for u in range(N):
        for w in np.flatnonzero(sib[u]):
            assert parents[u] & parents[w] and not closure[u, w]
    assert not sib[25, 13] and sib[25, 14]    # 13 is a sibling of 25 via 1 but its parent
    for sp in splits:
        for ex in (sp.train, sp.val, sp.test):
            for i, u in enumerate(ex.pos[:, 0].tolist()):
                n_sib = int(sib[u].sum())
                h = ex.hard[i]
                assert sib[u, h[:min(n_sib, 10)]].all()      # the siblings come first ...
                assert len(set(h[:min(n_sib, 10)].tolist())) == min(n_sib, 10)
                if n_sib < 10:                               # ... then the random ones
                    assert (h[n_sib:] == ex.random[i, :10 - n_sib]).all()
                # one fixed sibling order per child, as HiT's per-child sibling list
                same = np.flatnonzero(ex.pos[:, 0] == u)
                assert (ex.hard[same, :min(n_sib, 10)] == h[:min(n_sib, 10)]).all()
    # children of the root have 11 siblings: their hard negatives are all siblings
    sp = splits[0]
    rows = np.flatnonzero(np.isin(np.concatenate([sp.train.pos, sp.val.pos])[:, 0],
                                  np.arange(1, 13)))
    hard = np.concatenate([sp.train.hard, sp.val.hard])[rows]
    assert len(rows) and (hard >= 1).all() and (hard <= 12).all()


def test_seeded(splits):
    again = build_hit_split(np.array(EDGES)[::-1], N, num_negative=10, seed=0)
    for a, b in ((splits[0].test, again.test), (splits[0].train, again.train)):
        for x, y in zip((a.pos, a.random, a.hard, a.direct), (b.pos, b.random, b.hard, b.direct)):
            assert np.array_equal(x, y)
    assert not np.array_equal(splits[0].test.pos, splits[1].test.pos)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        build_hit_split(np.array([[0, 1], [1, 0]]), 2)
    with pytest.raises(ValueError):
        build_hit_split(np.array([[0, 0]]), 1)


LICENCE = "  1 This software and database is being provided to you, the LICENSEE,\n"
# 4 dog.n.02 has hypernyms 3 and 6; 5 Lassie only an instance hypernym (@i): HiT drops it
DATA = LICENCE + """\
00000001 03 n 01 entity 0 002 ~ 00000002 n 0000 ~ 00000006 n 0000 | that which exists
00000002 03 n 01 animal 0 003 @ 00000001 n 0000 ~ 00000003 n 0000 + 00000099 v 0101 | a living thing
00000003 05 n 02 mammal 0 mammalian 0 002 @ 00000002 n 0000 ~ 00000004 n 0000 | warm-blooded
00000004 05 n 01 dog 0 003 @ 00000003 n 0000 @ 00000006 n 0000 ~i 00000005 n 0000 | a dog
00000005 18 n 01 Lassie 0 001 @i 00000004 n 0000 | a famous dog
00000006 03 n 02 pet_animal 0 favourite 0 001 @ 00000001 n 0000 | a pet
00000007 18 n 01 dog 0 001 @ 00000001 n 0000 | a term of abuse
"""
INDEX = LICENCE + """\
animal n 1 2 @ ~ 1 0 00000002  
dog n 2 2 @ ~ 2 0 00000007 00000004  
entity n 1 1 ~ 1 0 00000001  
favourite n 1 1 @ 1 0 00000006  
lassie n 1 1 @i 1 0 00000005  
mammal n 1 2 @ ~ 1 0 00000003  
mammalian n 1 1 @ 1 0 00000003  
pet_animal n 1 1 @ 1 0 00000006  
"""


def test_wordnet_edges_leave_out_instance_hypernyms(tmp_path: Path):
    (tmp_path / "data.noun").write_text(DATA)
    (tmp_path / "index.noun").write_text(INDEX)
    tax = load_wordnet("nouns", root=str(tmp_path))
    e = wordnet_hypernym_edges(tax, root=str(tmp_path))
    got = sorted((tax.keys[c], tax.keys[p]) for c, p in e.tolist())
    assert got == sorted([("animal.n.01", "entity.n.01"), ("mammal.n.01", "animal.n.01"),
                          ("dog.n.02", "mammal.n.01"), ("dog.n.02", "pet_animal.n.01"),
                          ("pet_animal.n.01", "entity.n.01"), ("dog.n.01", "entity.n.01")])
    names = dict(zip(tax.keys, hit_entity_names(tax)))
    assert names["pet_animal.n.01"] == "pet animal" and names["dog.n.02"] == "dog"

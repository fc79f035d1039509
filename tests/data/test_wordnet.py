"""WordNet loader: a hand-written wndb database, and the system one when installed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hgraph.data.wordnet import WORDNET_DIR, load_wordnet
from hgraph.errors import HGraphInputError

LICENCE = "  1 This software and database is being provided to you, the LICENSEE,\n" \
          "  2 by Princeton University under the following license.\n"

# offsets: 1 entity, 2 animal, 3 mammal, 4 dog (2nd sense in index), 5 Lassie
# (instance of 4), 6 pet, 7 dog (1st sense), 8 cub (a mammal reached through
# two mammal parents)
DATA = LICENCE + """\
00000001 03 n 01 entity 0 002 ~ 00000002 n 0000 ~ 00000006 n 0000 | that which exists
00000002 03 n 01 animal 0 003 @ 00000001 n 0000 ~ 00000003 n 0000 + 00000099 v 0101 | a living thing
00000003 05 n 02 mammal 0 mammalian 0 002 @ 00000002 n 0000 ~ 00000004 n 0000 | warm-blooded
00000004 05 n 01 dog 0 003 @ 00000003 n 0000 @ 00000006 n 0000 ~i 00000005 n 0000 | a dog
00000005 18 n 01 Lassie 0 001 @i 00000004 n 0000 | a famous dog
00000006 03 n 02 pet 0 favourite 0 001 @ 00000001 n 0000 | a pet
00000007 18 n 01 dog 0 001 @ 00000001 n 0000 | a term of abuse
00000008 05 n 01 cub 0 002 @ 00000004 n 0000 @ 00000003 n 0000 | a young dog
"""
INDEX = LICENCE + """\
animal n 1 2 @ ~ 1 0 00000002  
cub n 1 1 @ 1 0 00000008  
dog n 2 2 @ ~ 2 0 00000007 00000004  
entity n 1 1 ~ 1 0 00000001  
favourite n 1 1 @ 1 0 00000006  
lassie n 1 1 @i 1 0 00000005  
mammal n 1 2 @ ~ 1 0 00000003  
mammalian n 1 1 @ 1 0 00000003  
pet n 1 1 @ 1 0 00000006  
"""


@pytest.fixture
def wndb(tmp_path: Path) -> Path:
    (tmp_path / "data.noun").write_text(DATA)
    (tmp_path / "index.noun").write_text(INDEX)
    return tmp_path


def _edges(tax):
    return sorted((tax.names[c], tax.names[p]) for c, p in tax.edges.tolist())


def test_nouns_from_handmade_database(wndb):
    tax = load_wordnet("nouns", root=str(wndb))
    assert sorted(tax.names) == ["animal.n.01", "cub.n.01", "dog.n.01", "dog.n.02",
                                 "entity.n.01", "lassie.n.01", "mammal.n.01", "pet.n.01"]
    assert _edges(tax) == sorted([
        ("animal.n.01", "entity.n.01"), ("mammal.n.01", "animal.n.01"),
        ("dog.n.02", "mammal.n.01"), ("dog.n.02", "pet.n.01"),
        ("lassie.n.01", "dog.n.02"),  # instance hypernym @i
        ("pet.n.01", "entity.n.01"), ("dog.n.01", "entity.n.01"),
        ("cub.n.01", "dog.n.02"), ("cub.n.01", "mammal.n.01")])
    assert tax.names[tax.root] == "entity.n.01" and not tax.virtual_root
    offs = dict(zip(tax.names, tax.meta["offsets"]))
    assert offs["dog.n.02"] == "00000004" and offs["dog.n.01"] == "00000007"
    assert tax.level[tax.index("lassie.n.01")] == 3  # entity <- pet <- dog.n.02 <- lassie


def test_mammals_subtree(wndb):
    tax = load_wordnet("mammals", root=str(wndb))
    assert sorted(tax.names) == ["cub.n.01", "dog.n.02", "lassie.n.01", "mammal.n.01"]
    assert tax.names[tax.root] == "mammal.n.01"
    pairs = sorted((tax.names[u], tax.names[v]) for u, v in tax.closure_pairs().tolist())
    assert pairs == sorted([("dog.n.02", "mammal.n.01"), ("lassie.n.01", "dog.n.02"),
                            ("lassie.n.01", "mammal.n.01"), ("cub.n.01", "dog.n.02"),
                            ("cub.n.01", "mammal.n.01")])


def test_missing_database_says_how_to_install(tmp_path):
    with pytest.raises(HGraphInputError) as ei:
        load_wordnet("mammals", root=str(tmp_path))
    msg = str(ei.value)
    assert "data.noun" in msg and "apt-get install wordnet-base" in msg and "closure" in msg


def test_unknown_set_and_malformed_line(wndb):
    with pytest.raises(HGraphInputError, match="unknown WordNet set 'verbs'"):
        load_wordnet("verbs", root=str(wndb))
    (wndb / "data.noun").write_text(LICENCE + "00000001 03 n 01 entity 0 0x1 | broken\n")
    with pytest.raises(HGraphInputError, match=r"data.noun:3: malformed synset line"):
        load_wordnet("nouns", root=str(wndb))


@pytest.fixture(scope="module")
def system_nouns():
    if not (Path(WORDNET_DIR) / "data.noun").is_file():
        pytest.skip("wordnet-base is not installed")
    return load_wordnet("nouns")


def test_system_nouns_match_published_sizes(system_nouns):
    tax = system_nouns
    # Nickel & Kiela (2017): 82,115 nouns, 743,241 hypernymy relations
    assert tax.num_nodes == 82_115
    assert tax.closure.nnz == 743_241
    assert tax.names[tax.root] == "entity.n.01"
    for name in ("mammal.n.01", "dog.n.01", "abstraction.n.06", "physical_entity.n.01"):
        tax.index(name)
    assert len(set(tax.names)) == tax.num_nodes


def test_system_mammals(system_nouns):
    tax = load_wordnet("mammals")
    # poincare-embeddings' mammal closure: 1,180 nodes / 6,540 pairs after its
    # extra regex filter; the unfiltered subtree is slightly larger
    assert 1_170 <= tax.num_nodes <= 1_190
    assert 6_500 <= tax.closure.nnz <= 6_560
    assert tax.names[tax.root] == "mammal.n.01"
    m = system_nouns.index("mammal.n.01")
    nouns_desc = system_nouns.closure[:, m].nnz
    assert tax.num_nodes == nouns_desc + 1
    dog = tax.index("dog.n.01")
    assert tax.closure[dog, tax.root]
    assert np.all(tax.level[tax.closure_pairs()[:, 0]] > tax.level[tax.closure_pairs()[:, 1]])


def _with_examples(tmp_path):
    """The hand-written database with example sentences in two glosses."""
    data = DATA.replace("| a dog\n", '| a domesticated canid; "the dog barked all night"; '
                        '"my dog, a beagle"\n')
    data = data.replace("| a young dog\n", '| a young dog; "the lion cub slept"\n')
    (tmp_path / "data.noun").write_text(data)
    (tmp_path / "index.noun").write_text(INDEX)
    return load_wordnet("nouns", root=str(tmp_path)), str(tmp_path)


def test_node_text_is_lemmas_and_definition_without_examples(tmp_path):
    from hgraph.data.wordnet import gloss_features, synset_texts
    tax, root = _with_examples(tmp_path)
    dog = tax.texts[tax.index("dog.n.02")]
    assert dog == "dog: a domesticated canid"
    assert tax.texts[tax.index("mammal.n.01")] == "mammal, mammalian: warm-blooded"
    assert not any("barked" in t or "beagle" in t or "slept" in t for t in tax.texts)
    assert synset_texts(tax, root) == tax.texts and len(tax.texts) == tax.num_nodes
    # the features come from the same text: an example word cannot reach them
    f1 = gloss_features(tax, dim=4, root=root)
    (tmp_path / "data.noun").write_text((tmp_path / "data.noun").read_text()
                                        .replace("barked all night", "howled at the moon"))
    tax2 = load_wordnet("nouns", root=root)
    assert np.array_equal(f1, gloss_features(tax2, dim=4, root=root))


def test_example_sentences_are_word_in_context_items(tmp_path):
    from hgraph.data.wordnet import wordnet_items
    tax, root = _with_examples(tmp_path)
    texts, cats = wordnet_items(tax, root)
    got = sorted(zip(texts, [tax.names[c] for c in cats]))
    assert got == [("cub: the lion cub slept", "cub.n.01"),
                   ("dog: my dog, a beagle", "dog.n.02"),
                   ("dog: the dog barked all night", "dog.n.02")]
    assert cats.dtype == np.int64


@pytest.mark.skipif(not Path(WORDNET_DIR, "data.noun").exists(), reason="WordNet 3.0 not installed")
def test_system_wordnet_items_counts():
    from hgraph.data.wordnet import wordnet_items
    tax = load_wordnet("nouns")
    texts, cats = wordnet_items(tax)
    # measured on WordNet 3.0: 11,489 example sentences on 8,742 synsets
    assert 11_000 < len(texts) < 12_000 and 8_500 < len(np.unique(cats)) < 9_000
    assert all(":" in t for t in texts[:100])

"""The dataset registry: names in --help, --describe, features from node text."""
from pathlib import Path

import numpy as np
import pytest

from hgraph.cli import build_parser, main
from hgraph.config import DataConfig
from hgraph.data.datasets import DATASETS, describe, load_dataset
from hgraph.errors import HGraphInputError

ROOT = Path(__file__).resolve().parents[2]
SLICE = ROOT / "data" / "samples" / "icd10cm_slice_edges.csv"


def test_help_lists_every_registered_dataset():
    text = build_parser().format_help()
    for name in ("icd10cm", "hpo", "wordnet-nouns", "wordnet-mammals", "csv", "closure"):
        assert name in DATASETS
        assert name in text.replace("\n", "").replace(" ", ""), name


def test_tfidf_features_from_a_committed_slice():
    tax = load_dataset(DataConfig(dataset=f"csv:{SLICE}", features="tfidf", feature_dim=8))
    assert tax.features.shape == (tax.num_nodes, 8)
    n = np.linalg.norm(tax.features, axis=1)
    assert np.all((np.abs(n - 1) < 1e-4) | (n == 0))
    assert (n > 0).mean() > 0.5       # codes as names: most have a shared term


def test_describe_counts_and_cli(capsys):
    d = describe(DataConfig(dataset=f"csv:{SLICE}"))
    assert d["num_nodes"] == 252 and d["is_tree"] and d["multi_parent_nodes"] == 0
    assert d["build_s"] >= 0
    assert main(["--dataset", f"csv:{SLICE}", "--describe"]) == 0
    out = capsys.readouterr().out
    assert "num_nodes" in out and "252" in out


def test_bad_dataset_arguments_are_one_line_errors():
    with pytest.raises(HGraphInputError, match="no7th"):
        load_dataset(DataConfig(dataset="icd10cm:nope"))
    with pytest.raises(HGraphInputError, match="unknown dataset"):
        describe(DataConfig(dataset="nope"))

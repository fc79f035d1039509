"""hgraph.Placer: fit on a committed slice, save, load in a fresh process from another
folder, place texts (keys, names, paths, order, confidences); baselines place too;
bad input is refused in one line; query.py is a thin wrapper with --json / --tsv /
--min-confidence."""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hgraph import Placer
from hgraph.errors import HGraphInputError

ROOT = Path(__file__).resolve().parent.parent
SLICE = dict(dataset="csv:data/samples/hpo_slice_edges.csv",
             items="data/samples/hpo_slice_items.csv",
             node_text="data/samples/hpo_slice_text.csv", seeds=[0], epochs=2, negatives=32,
             hidden=32, cost_items=5, threads=1, progress=False)
TEXTS = ["Small nose", "bleeding from the nose", "Abnormal nasal septum"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return Placer.fit(encoder="ramen", out=str(out), **SLICE)


@pytest.mark.xdist_group("minilm")
def test_fit_save_load_in_a_fresh_process_places_the_same(fitted, tmp_path):
    run_dir = Path(fitted.run_dir)
    assert (run_dir / "reliability_seed0.png").exists()
    m = json.loads((run_dir / "metrics.json").read_text())["per_seed"][0]
    assert 0 < m["conf_temperature"] and 0 <= m["ece"] <= 1
    here = fitted.place(TEXTS, k=4)
    saved = fitted.save(tmp_path / "a")
    shutil.copytree(saved, tmp_path / "b")          # loads from another folder
    shutil.rmtree(saved)
    meta = json.loads((tmp_path / "b" / "placer.json").read_text())
    assert meta["text_encoder"]["name"] == "minilm" and meta["kind"] == "tower"
    code = ("import json, sys\nfrom hgraph import Placer\n"
            "p = Placer.load(sys.argv[1])\n"
            "print(json.dumps([[h.__dict__ for h in r] for r in p.place(sys.argv[2:], k=4)]))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "b"), *TEXTS], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                            "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert r.returncode == 0, r.stderr
    there = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(there) == len(here) == 3
    for a, b in zip(here, there):
        assert [h.key for h in a] == [h["key"] for h in b]
        assert np.allclose([h.score for h in a], [h["score"] for h in b], atol=1e-5)
        scores = [h["score"] for h in b]
        assert scores == sorted(scores, reverse=True)            # best first
        conf = [h["confidence"] for h in b]
        assert conf == sorted(conf, reverse=True) and 0 < conf[0] <= 1
        for h in b:
            # a CSV taxonomy's names are its node texts (its keys are codes)
            assert h["path"][-1] == h["name"] and \
                h["path"][0].startswith("Abnormality of the nose")
    # a nose phrase lands in the nose slice's nasal categories
    assert any("nas" in h.name.lower() or "nose" in h.name.lower() for h in here[0])


@pytest.mark.xdist_group("minilm")
def test_min_confidence_abstains_and_bad_input_is_refused(fitted, tmp_path):
    assert fitted.place(TEXTS, k=3, min_confidence=1.0) == [[], [], []]
    assert all(len(r) == 3 for r in fitted.place(TEXTS, k=3, min_confidence=0.0))
    assert len(fitted.place(TEXTS[:1], k=10_000)[0]) == len(fitted.cand)    # k <= candidates
    for bad in ([""], ["  "], "Small nose", [3]):
        with pytest.raises(HGraphInputError):
            fitted.place(bad)
    with pytest.raises(HGraphInputError, match="no saved placer"):
        Placer.load(tmp_path)
    node = tmp_path / "node"
    node.mkdir()
    (node / "config.json").write_text('{"task": "nodes"}')
    with pytest.raises(HGraphInputError, match="node run folder"):
        Placer.load(node)


@pytest.mark.xdist_group("minilm")
def test_an_untrained_baseline_places_text_too(tmp_path):
    p = Placer.fit(encoder="features", out=str(tmp_path), **SLICE)
    assert p.kind == "cosine"
    hits = p.place(["Small nose"], k=2)[0]
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    p2 = Placer.load(p.save(tmp_path / "saved"))
    assert [h.key for h in p2.place(["Small nose"], k=2)[0]] == [h.key for h in hits]


@pytest.mark.xdist_group("minilm")
def test_query_wraps_the_placer(fitted, capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("query_cli_p", ROOT / "pipelines" / "query.py")
    q = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(q)
    run = str(fitted.run_dir)
    capsys.readouterr()
    assert q.main(["--run", run, "--text", "Small nose", "-k", "2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got[0]["text"] == "Small nose" and len(got[0]["placements"]) == 2
    assert set(got[0]["placements"][0]) == {"key", "name", "path", "score", "confidence"}
    assert q.main(["--run", run, "--text", "Small nose", "-k", "2", "--tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["text", "rank", "key", "name", "score", "confidence",
                                    "path"] and len(lines) == 3
    assert q.main(["--run", run, "--text", "Small nose", "--min-confidence", "1"]) == 0
    assert "none fits" in capsys.readouterr().out
    assert q.main(["--run", run, "--text", ""]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty" in err[0]
    assert q.main(["--run", run, "--node", "x"]) == 2
    assert "--text" in capsys.readouterr().err


@pytest.mark.xdist_group("minilm")
def test_placed_confidence_is_the_calibrated_one_whatever_k(fitted):
    """The confidence a placer gives a test item is the one the run calibrated on validation
    and scored (per_item conf), and asking for more categories than it is spread over does
    not change it."""
    import torch
    from hgraph.results import read_run_config
    from hgraph.tasks.item_data import load_item_data
    run_dir = Path(fitted.run_dir)
    a = np.load(run_dir / "per_item_seed0.npz")
    data = load_item_data(read_run_config(run_dir), torch.device("cpu"))
    texts = [data.item_texts[i] for i in a["items"][:20]]
    top5 = fitted.place(texts, k=5)
    assert np.allclose([h[0].confidence for h in top5], a["conf"][:20], atol=1e-4)
    wide = fitted.place(texts, k=fitted.conf_k + 10)
    assert np.allclose([h[0].confidence for h in wide], [h[0].confidence for h in top5])
    assert all(h[-1].confidence <= h[fitted.conf_k - 1].confidence for h in wide)


@pytest.mark.xdist_group("minilm")
@pytest.mark.parametrize("encoder", ["ramen", "hgcn"])
def test_a_trained_text_encoder_is_saved_whole_and_places_offline(encoder, tmp_path):
    """A run whose sentence encoder's last layer was trained on both sides (the issue-31
    setting of the best ICD-10-CM run with a trained encoder, ramen_shared1_long, here on
    the slice; and its HGCN twin) saves that encoder as a
    sentence-transformers folder; loaded in a fresh process it places as the run did,
    names returned, and its vectors are the trained layer's, not the packaged encoder's."""
    import torch
    from sentence_transformers import SentenceTransformer
    from hgraph.data.text import _model
    fitted = Placer.fit(encoder=encoder, item_text_layers=1, shared_text_head=True,
                        out=str(tmp_path / "runs"), **{**SLICE, "epochs": 3})
    here = fitted.place(TEXTS, k=4)
    saved = fitted.save(tmp_path / "p")
    meta = json.loads((saved / "placer.json").read_text())
    assert meta["text_encoder"]["trained"] == "text_encoder"
    st = SentenceTransformer(str(saved / "text_encoder"), device="cpu")
    trained = st.encode(TEXTS, normalize_embeddings=True)
    packaged = _model("minilm").encode(TEXTS, normalize_embeddings=True)
    assert np.abs(trained - packaged).max() > 1e-3            # the trained layer is carried
    # ... and equals the run's head on the frozen lower layers' (float16) token states
    tower = fitted._tower
    from hgraph.tasks.item_data import item_input_from_texts
    with torch.no_grad():
        head = tower.text_head(*item_input_from_texts(TEXTS, "minilm", 1))
    assert np.allclose(trained, head.numpy(), atol=5e-3)
    code = ("import json, sys\nfrom hgraph import Placer\n"
            "p = Placer.load(sys.argv[1])\n"
            "print(json.dumps([[h.__dict__ for h in r] for r in p.place(sys.argv[2:], k=4)]))")
    r = subprocess.run([sys.executable, "-c", code, str(saved), *TEXTS], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                            "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert r.returncode == 0, r.stderr
    there = json.loads(r.stdout.strip().splitlines()[-1])
    for a, b in zip(here, there):
        assert a[0].key == b[0]["key"] and b[0]["name"] and b[0]["path"][-1] == b[0]["name"]
        assert np.allclose([h.score for h in a], [h["score"] for h in b], atol=2e-2)

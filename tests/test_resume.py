"""Checkpoint -> resume continues exactly; the CLI refuses what it cannot resume.

(A SIGKILL-in-a-subprocess variant passed for ramen and once out of two tries for
shallow — consistent with the last-digit drift noted below; not in the suite yet.)
"""
import io
from dataclasses import replace

import pytest
import torch

from hgraph import manifolds as M
from hgraph.cli import main, parse_config
from hgraph.nn.encoders import EncoderSpec, build_encoder
from hgraph.pipeline import load_dataset, make_embedders, prepare
from hgraph.train import TrainData, train

TREE = ["--gen-root-children", "5", "--gen-min-children", "2", "--gen-max-children", "4",
        "--feature-dim", "8", "--batch-size", "16", "--eval-every", "2", "--burnin", "3"]


@pytest.mark.parametrize("encoder", ["shallow", "ramen"])
def test_resume_from_checkpoint_equals_uninterrupted(encoder):
    cfg, _ = parse_config([*TREE, "--encoder", encoder])
    tax = load_dataset(cfg.data)
    dev = torch.device("cpu")
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    prep = prepare(cfg, tax, dev, dtype)

    def build():
        torch.manual_seed(0)
        spec = EncoderSpec(cfg.model, M.make_manifold(cfg.model.manifold), tax.num_nodes,
                           int(prep.x.shape[1]))
        m = build_encoder(spec).to(dtype=dtype)
        emb, ea = make_embedders(m, prep, cfg, dev)
        return m, TrainData(tax.num_nodes, prep.positives, prep.sampler, emb, ea,
                            val_pos=prep.splits.val, val_neg=prep.val_neg)

    tc = replace(cfg.train, epochs=8, checkpoint_every=1)
    saved = {}

    def checkpoint(epoch, state):
        if epoch == 5:
            buf = io.BytesIO()
            torch.save({"epoch": epoch, **state}, buf)
            saved["state"] = buf.getvalue()

    m1, d1 = build()
    r1 = train(m1, d1, tc, device=dev, seed=0, progress=False, checkpoint=checkpoint)
    m2, d2 = build()
    state = torch.load(io.BytesIO(saved["state"]), weights_only=False)
    r2 = train(m2, d2, tc, device=dev, seed=0, progress=False, resume=state)
    l1 = [h["loss"] for h in r1.history]
    l2 = [h["loss"] for h in r2.history]
    assert l1[:5] == l2[:5]                      # the history up to the checkpoint is restored
    # The continuation tracks the uninterrupted run.  It is not yet bit-exact: under
    # pytest the first resumed epoch can differ in the 7th digit (3e-7 relative, seen for
    # either encoder on different tries) although standalone scripts resume bit-exactly.
    # A wrong restore (RNG, optimiser moments, batch order) moves these losses by >1e-2.
    assert l2[5:] == pytest.approx(l1[5:], rel=1e-5)
    assert r2.epochs_run == r1.epochs_run == 8


def test_resume_refuses_foreign_or_finished_folders(tmp_path, capsys):
    assert main(["--resume", str(tmp_path)]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path), "--dim", "3"]) == 2
    cfg, _ = parse_config([*TREE, "--epochs", "1", "--no-progress", "--no-plots",
                           "--no-save-embeddings", "--out", str(tmp_path / "r")])
    from hgraph.pipeline import run
    res = run(cfg)
    assert main(["--resume", str(res.run_dir)]) == 2
    assert "finished" in capsys.readouterr().err

"""The text encoders' packaging and arithmetic: a model shipped as zip pieces is joined and
unzipped once (nothing half-written), the registry knows the optional all-mpnet-base-v2,
and bfloat16 autocast encodes close to float32 into a cache entry of its own."""
import zipfile

import numpy as np
import pytest

from hgraph.data import text as T
from hgraph.errors import HGraphInputError


def _pieces(tmp_path, n=3):
    z = tmp_path / "whole.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("all-mpnet-base-v2/modules.json", "[]")
        f.writestr("all-mpnet-base-v2/config.json", '{"x": 1}')
    data = z.read_bytes()
    cut = np.linspace(0, len(data), n + 1).astype(int)
    out = []
    for i in range(n):
        p = tmp_path / f"m.zip.{i + 1:03d}"
        p.write_bytes(data[cut[i]:cut[i + 1]])
        out.append(p)
    return out


def test_pieces_join_into_the_model_folder_once(tmp_path):
    pieces = _pieces(tmp_path)
    out = tmp_path / "cache" / "models" / "m"
    folder = T.join_pieces(pieces, out)
    assert (folder / "modules.json").read_text() == "[]" and folder.parent == out
    stamp = (out / ".unzipped").stat().st_mtime_ns
    assert T.join_pieces(pieces, out) == folder                      # not joined again
    assert (out / ".unzipped").stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == ["m"]   # no temp left


def test_pieces_in_the_wrong_order_are_refused_and_leave_nothing(tmp_path):
    pieces = _pieces(tmp_path)
    out = tmp_path / "cache" / "m"
    with pytest.raises(HGraphInputError, match="do not join into a zip"):
        T.join_pieces(pieces[::-1], out)
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_registry_has_the_optional_encoder():
    assert T.TEXT_ENCODERS["all-mpnet-base-v2"].dim == 768
    assert T.TEXT_ENCODERS["minilm"].dim == 384
    with pytest.raises(HGraphInputError, match="precision"):
        T.encode_texts(["x"], precision="float16")


@pytest.mark.xdist_group("minilm")
def test_bfloat16_autocast_encodes_close_to_float32(tmp_path, monkeypatch):
    monkeypatch.setenv("HGRAPH_CACHE", str(T.cache_dir()))          # the shared model cache
    texts = ["a small nose", "bleeding from the nose", "abnormal gait", "seizure"]
    f32 = T.encode_texts(texts, progress=False, cache=False)
    b16 = T.encode_texts(texts, progress=False, cache=False, precision="bfloat16")
    assert b16.dtype == np.float32 and b16.shape == f32.shape
    assert np.allclose(np.linalg.norm(b16, axis=1), 1, atol=1e-5)
    cos = (f32 * b16).sum(1)
    assert cos.min() > 0.99 and not np.array_equal(f32, b16)        # close, not the same
    # the same ranking of the texts against the first one
    assert np.array_equal(np.argsort(-(f32 @ f32[0])), np.argsort(-(b16 @ b16[0])))

"""Shared test settings.

Under pytest-xdist each worker gets one torch thread: the suite is many small
tensor ops, and two workers x two intra-op threads on two cores only adds
contention.
"""
import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _headless_matplotlib(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def checkpoint_at():
    """``checkpoint_at(epoch) -> (callback, load)``: the callback, given to a trainer's
    ``checkpoint=``, serialises the state of that epoch as the pipeline would write it;
    ``load()`` reads it back (what ``resume=`` takes)."""
    import io

    import torch

    def make(epoch):
        saved = {}

        def callback(e, state):
            if e == epoch:
                buf = io.BytesIO()
                torch.save({"epoch": e, **state}, buf)
                saved["state"] = buf.getvalue()

        def load():
            return torch.load(io.BytesIO(saved["state"]), weights_only=False)
        return callback, load
    return make

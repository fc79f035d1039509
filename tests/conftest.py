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

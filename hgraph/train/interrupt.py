"""Stopping safely: SIGINT/SIGTERM handling and the exceptions that end training.

While a loop runs (in the main thread), SIGINT and SIGTERM only set a flag
(:class:`StopOnSignal`); the loop finishes its step, writes a checkpoint and
raises :class:`TrainingInterrupted`.  A second signal stops at once.
"""
from __future__ import annotations

import signal
import threading
from typing import Any, Dict, Optional


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during training: stopped after a step, checkpoint written.

    ``signum``: the signal; ``epoch``: epochs completed; ``step``: steps done
    in the next epoch (0 at an epoch boundary); ``checkpointed``: whether a
    checkpoint was written (False when ``train`` had no checkpoint callback).
    A KeyboardInterrupt, so ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int, epoch: int, step: int, checkpointed: bool):
        self.signum, self.epoch, self.step, self.checkpointed = signum, epoch, step, checkpointed
        super().__init__(f"{signal.Signals(signum).name} after epoch {epoch}"
                         + (f" + {step} step{'s' if step != 1 else ''}" if step else ""))


class StopOnSignal:
    """``with StopOnSignal() as stop``: SIGINT/SIGTERM set ``stop.signum``.

    Handlers are installed only in the main thread (Python allows no other)
    and the previous ones are restored on exit.  A second signal raises
    KeyboardInterrupt at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: Optional[int] = None
        self._old: Dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}")
        self.signum = signum

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            # None: the old handler was not installed from Python; the default is the best guess
            signal.signal(s, signal.SIG_DFL if h is None else h)
        self._old.clear()



class RunInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM stopped a run; ``str()`` is one line naming the checkpoint
    and the resume command.  The folder stays INCOMPLETE with no summary row;
    ``exit_status`` is 128 + the signal number (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, message: str, signum: int):
        self.signum = signum
        self.exit_status = 128 + int(signum)
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


"""Ctrl-C and SIGTERM: stop the sweep, keep what is stored, say so in one line.

Both signals end the command the same way: the exception unwinds through the executor
(which cancels Ray tasks in flight and shuts Ray down cleanly, so no C++ stack dump) and
``cli.main`` prints ``interrupted: N runs stored, rerun to resume``. N counts the runs this
process stored; a rerun skips them.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

_stored = 0  # runs stored by this process (every driver advance follows a store write)
_sweeping = False  # a sweep started in this process: only then is the count worth saying


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread. A KeyboardInterrupt so that every handler that
    cleans up after Ctrl-C (click, the executors) does the same here."""


def note_sweep() -> None:
    """A sweep started in this process."""
    global _sweeping
    _sweeping = True


def note_stored() -> None:
    """One more run stored by this process."""
    global _stored
    _stored += 1


def stored() -> int:
    """Runs stored by this process so far."""
    return _stored


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def install() -> None:
    """Turn SIGTERM into :class:`Terminated`. ``ray.init`` installs its own handler (a bare
    ``sys.exit``), so the Ray executor calls this again once Ray is up."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def report(exc: BaseException | None) -> int:
    """Print the interrupted line; return the exit code (130 for SIGINT, 143 for SIGTERM)."""
    if _sweeping:
        typer.secho(f"interrupted: {_stored} runs stored, rerun to resume", err=True)
    else:
        typer.secho("interrupted", err=True)
    return 143 if isinstance(exc, Terminated) else 130

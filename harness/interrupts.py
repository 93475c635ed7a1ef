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


_received: int | None = None  # the last of SIGINT / SIGTERM this process received


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise KeyboardInterrupt()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = signum
    raise Terminated()


def install() -> None:
    """Turn SIGTERM into :class:`Terminated` and note SIGINT before raising
    KeyboardInterrupt as Python does. ``ray.init`` installs its own SIGTERM handler (a bare
    ``sys.exit``), so the Ray executor calls this again once Ray is up."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
        signal.signal(signal.SIGINT, _on_sigint)


def begin() -> None:
    """A new command: counts start from zero (main() may run more than once in a process,
    as in tests) and the handlers are installed."""
    global _stored, _sweeping, _received
    _stored, _sweeping, _received = 0, False, None
    install()


def received() -> int | None:
    """SIGINT or SIGTERM if one arrived (Typer turns the exception into a bare return code
    130, so cli.main asks here what happened)."""
    return _received


def report(exc: BaseException | None) -> int:
    """Print the interrupted line; return the exit code (130 for SIGINT, 143 for SIGTERM)."""
    if _sweeping:
        typer.secho(f"interrupted: {_stored} runs stored, rerun to resume", err=True)
    else:
        typer.secho("interrupted", err=True)
    terminated = isinstance(exc, Terminated) or _received == signal.SIGTERM
    return 143 if terminated else 130

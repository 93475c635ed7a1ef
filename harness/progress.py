"""Progress of a sweep: runs done, failed, skipped, and an ETA.

On a terminal: one rich progress bar per sweep. Not on a terminal (a log file, CI, a pipe):
a plain line on stderr every few seconds, so a long sweep is never silent, e.g.::

    progress: smoke 12/40 (done 11, failed 1, skipped 5) 00:31 elapsed, ETA 01:12

``enabled=False`` (commands printing JSON) silences both.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness import interrupts

# Seconds between plain lines; BALLOONLAB_PROGRESS_SECONDS overrides (tests use it).
DEFAULT_INTERVAL = 5.0


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get("BALLOONLAB_PROGRESS_SECONDS", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return (
        f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
        if hours
        else f"{rest // 60:02d}:{rest % 60:02d}"
    )


class SweepProgress:
    """Context manager around the progress display. ``enabled``: None decides by whether
    stdout is a terminal (bar) or not (plain lines); False shows nothing."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        tty = sys.stdout.isatty()
        self.enabled = True if enabled is None else enabled
        self.plain = self.enabled and (not tty if enabled is None else False)
        self.stream = stream
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._counts = {"done": 0, "failed": 0, "skipped": 0}
        self._name = ""
        self._total = 0
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SweepProgress:
        if self.enabled and not self.plain:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn(
                    "done {task.fields[done]}  [red]failed {task.fields[failed]}[/]  "
                    "skipped {task.fields[skipped]}"
                ),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A refused input (an error before any run) prints its one line, not a count.
        self._stop_ticker(final=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # -- plain lines --
    def line(self) -> str:
        """The plain progress line for the current sweep."""
        with self._lock:
            c = dict(self._counts)
            finished = c["done"] + c["failed"]
            elapsed = time.monotonic() - self._start
        if finished:
            eta = _clock(elapsed / finished * (self._total - finished))
        else:
            eta = "unknown"
        return (
            f"progress: {self._name} {finished}/{self._total} (done {c['done']}, failed "
            f"{c['failed']}, skipped {c['skipped']}) {_clock(elapsed)} elapsed, ETA {eta}"
        )

    def _emit(self) -> None:
        stream = self.stream or sys.stderr
        print(self.line(), file=stream, flush=True)

    def _tick(self) -> None:
        interval = _interval()
        while not self._stop.wait(interval):
            self._emit()

    def _stop_ticker(self, final: bool = True) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            if final:
                self._emit()  # the final count of the sweep

    # -- events from the driver --
    def start_sweep(self, name: str, to_run: int, skipped: int) -> None:
        """A new sweep with ``to_run`` runs to execute and ``skipped`` stored."""
        interrupts.note_sweep()
        self._stop_ticker()
        with self._lock:
            self._counts = {"done": 0, "failed": 0, "skipped": skipped}
            self._name, self._total, self._start = name, to_run, time.monotonic()
        if self._progress is not None:
            self._task = self._progress.add_task(name, total=to_run, **self._counts)
        if self.plain:
            # The first line after one interval: a sweep refused at its start stays silent.
            self._stop = threading.Event()
            # A thread, not a check in advance(): a run can outlast the interval.
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def advance(self, failed: bool = False) -> None:
        """One run finished and was stored."""
        interrupts.note_stored()
        with self._lock:
            self._counts["failed" if failed else "done"] += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, **self._counts)

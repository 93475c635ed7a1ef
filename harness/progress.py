"""One progress bar per sweep: runs done, failed, skipped, and an ETA.

Silent when stdout is not a terminal or the command prints JSON, so scripts and logs get
clean output.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class SweepProgress:
    """Context manager around a rich progress display; a no-op when disabled."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._counts = {"done": 0, "failed": 0, "skipped": 0}

    def __enter__(self) -> SweepProgress:
        if self.enabled:
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
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start_sweep(self, name: str, to_run: int, skipped: int) -> None:
        """A new bar for a sweep with ``to_run`` runs to execute and ``skipped`` stored."""
        self._counts = {"done": 0, "failed": 0, "skipped": skipped}
        if self._progress is not None:
            self._task = self._progress.add_task(name, total=to_run, **self._counts)

    def advance(self, failed: bool = False) -> None:
        """One run finished (stored)."""
        self._counts["failed" if failed else "done"] += 1
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, **self._counts)

"""One driver per sweep: an advisory lock file, ``<results>/locks/<sweep>.lock``.

The file holds JSON ``{pid, host, started, token}`` of the driver that owns the sweep. It
is created with ``O_CREAT | O_EXCL``, so of two drivers exactly one creates it. A lock
whose holder is on this host and no longer alive (or whose pid now belongs to a younger
process) is stale and taken over; a lock held from another host is never taken over (its
liveness cannot be checked from here): the message names it so a user can remove it. The
check-and-take-over step runs under a short ``flock`` on a guard file, so two drivers that
find the same stale lock cannot both take it.

Within one process the lock is re-entrant: ``balloonlab run`` takes every sweep's lock
before it starts an executor (so a refusal costs nothing), and ``run_sweep`` takes it
again for callers such as ``reproduce``. Different sweeps have different lock files and
run in parallel in one results directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import StoreError

LOCKS = "locks"
POLL_SECONDS = 0.25

# Locks this process holds: path -> (token, depth). Re-entrant within a process.
_held: dict[str, list[Any]] = {}


class SweepLocked(StoreError):
    """Another live driver holds the sweep's lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as its file says."""

    pid: int
    host: str
    started: str
    token: str = ""
    start_ticks: int | None = None  # the holder's start time (Linux /proc), against pid reuse

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started}"


def lock_path(results: Path | str, sweep: str) -> Path:
    """The lock file of one sweep."""
    return Path(results) / LOCKS / f"{sweep}.lock"


def _proc_start_ticks(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:  # the command name (field 2) may hold spaces: split after its closing paren
        return int(text.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:  # a zombie (dead, not yet reaped by its parent) answers signal 0: it is gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file; None if there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Holder(
            pid=int(data["pid"]),
            host=str(data["host"]),
            started=str(data.get("started", "?")),
            token=str(data.get("token", "")),
            start_ticks=data.get("start_ticks"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(holder: Holder | None) -> bool:
    """A lock nobody alive holds: unreadable (a writer died before filling it in), or held
    by a process of this host that is gone, or whose pid a younger process reuses."""
    if holder is None:
        return True
    if holder.host != socket.gethostname():
        return False
    if not _alive(holder.pid):
        return True
    now = _proc_start_ticks(holder.pid)
    return holder.start_ticks is not None and now is not None and now != holder.start_ticks


def live_holder(results: Path | str, sweep: str) -> Holder | None:
    """The live holder of a sweep's lock, or None when it is free or stale."""
    path = lock_path(results, sweep)
    if not path.exists():
        return None
    holder = read_holder(path)
    if holder is None:
        # Being written right now by its creator, or left empty by a dead one: give the
        # creator a moment before calling it stale.
        time.sleep(0.05)
        holder = read_holder(path)
    return None if is_stale(holder) else holder


@contextlib.contextmanager
def _guard(directory: Path) -> Iterator[None]:
    """Serialize check-and-take-over among the drivers of this host."""
    with open(directory / ".guard", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _try_create(path: Path, token: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "token": token,
        "start_ticks": _proc_start_ticks(os.getpid()),
    }
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f)
    return True


def try_acquire(results: Path | str, sweep: str) -> tuple[bool, Holder | None]:
    """One attempt: (True, None) when this process now holds the lock, else (False, the
    live holder)."""
    path = lock_path(results, sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if key in _held:
        _held[key][1] += 1
        return True, None
    token = secrets.token_hex(8)
    with _guard(path.parent):
        if not _try_create(path, token):
            holder = read_holder(path)
            if not is_stale(holder):
                return False, holder
            path.unlink(missing_ok=True)  # stale: take it over (we hold the guard)
            if not _try_create(path, token):
                return False, read_holder(path)
    _held[key] = [token, 1]
    return True, None


def release(results: Path | str, sweep: str) -> None:
    """Give the lock up (once per acquire); the file goes only if it is still ours."""
    path = lock_path(results, sweep)
    key = str(path.resolve())
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[key]
    holder = read_holder(path)
    if holder is not None and holder.token == entry[0]:
        path.unlink(missing_ok=True)


def acquire(
    results: Path | str,
    sweep: str,
    *,
    wait: bool = False,
    on_wait: Callable[[Holder], None] | None = None,
    poll: float = POLL_SECONDS,
) -> None:
    """Take the sweep's lock. Held by another live driver: raise SweepLocked (one line,
    naming the holder), or with ``wait`` poll until it is free (``on_wait`` is told once)."""
    told = False
    while True:
        ok, holder = try_acquire(results, sweep)
        if ok:
            return
        who = holder.describe() if holder is not None else "another driver"
        if not wait:
            raise SweepLocked(
                f"sweep {sweep!r} is being run by {who} (lock {lock_path(results, sweep)}); "
                "wait for it with --wait, or remove the lock file if that driver is gone"
            )
        if not told and holder is not None and on_wait is not None:
            on_wait(holder)
            told = True
        time.sleep(poll)


@contextlib.contextmanager
def hold(
    results: Path | str,
    sweep: str,
    *,
    wait: bool = False,
    on_wait: Callable[[Holder], None] | None = None,
) -> Iterator[None]:
    """``with hold(results, sweep):`` the sweep is ours for the block."""
    acquire(results, sweep, wait=wait, on_wait=on_wait)
    try:
        yield
    finally:
        release(results, sweep)

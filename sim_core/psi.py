"""Pressure stall information, as kernel/sched/psi.c defines it for memory.

``some``: the share of time in which at least one task was stalled on memory; ``full``:
the share in which every non-idle task was. A stall is time a task could have run but
waited for memory: a refault's read (a page reclaim had evicted), direct reclaim waiting
for writeback, dirty throttling; for the host, a vCPU waiting on a host fault or for a
host frame.
- Each guest is one task (its vCPU), so its ``some`` and ``full`` are equal: its stalled
  share of the tick. The guest cannot see host swapping: a host fault is stolen time, not
  a guest stall.
- The host's tasks are the guests' vCPUs. Each guest's host stalls are kept as intervals;
  at the end of a tick their union gives ``some`` and the time all guests still running
  (not idle for want of work, not stopped) were stalled at once gives ``full``.
Divergences: Linux counts first reads of file pages as I/O, not memory, pressure (as we
do) and dirty throttling as I/O pressure (we count it as memory); no averaging windows
(avg10/60/300): the per-tick share is reported and controllers average it themselves.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.jit import njit_kernel
from sim_core.state import (
    IDLE_FROM,
    PSI_CAP,
    PSI_N,
    STALL_MS,
    STALL_RUNS,
    STALLED,
)


@njit_kernel
def guest_stall(w, g, start, end):
    """Guest g's task stalled on guest memory from start to end (ms)."""
    if end > start:
        w.gf[g, STALL_MS] += end - start


@njit_kernel
def host_stall(w, g, start, end):
    """Guest g's vCPU stalled on host memory from start to end (ms)."""
    if end <= start:
        return
    n = w.gi[g, PSI_N]
    if n > 0 and start <= w.psi_iv[g, n - 1, 1]:
        w.psi_iv[g, n - 1, 1] = max(w.psi_iv[g, n - 1, 1], end)  # overlaps the last one
    elif n < PSI_CAP:
        w.psi_iv[g, n, 0] = start
        w.psi_iv[g, n, 1] = end
        w.gi[g, PSI_N] = n + 1
    else:
        w.psi_iv[g, n - 1, 1] = max(w.psi_iv[g, n - 1, 1], end)  # full: merge into the last


@njit(cache=True)  # allocates its event arrays: needs numba's runtime
def host_psi(w, t0, t1):
    """Host memory PSI over [t0, t1): (some, full) as shares of the tick. Intervals
    reaching past t1 carry their remainder into the next tick."""
    n_guests = w.gi.shape[0]
    total = 0
    for g in range(n_guests):
        total += w.gi[g, PSI_N]
    if total == 0:
        return 0.0, 0.0
    times = np.empty(2 * total + 2 * n_guests, np.float64)
    delta = np.empty(2 * total + 2 * n_guests, np.int64)  # +1/-1 stalled, +/-1000 active
    k = 0
    for g in range(n_guests):
        active = w.gi[g, STALLED] == STALL_RUNS or w.gi[g, PSI_N] > 0
        if active:
            times[k] = t0
            delta[k] = 1000
            times[k + 1] = min(max(w.gf[g, IDLE_FROM], t0), t1)
            delta[k + 1] = -1000
            k += 2
        for i in range(w.gi[g, PSI_N]):
            a = max(w.psi_iv[g, i, 0], t0)
            b = min(w.psi_iv[g, i, 1], t1)
            if b > a:
                times[k] = a
                delta[k] = 1
                times[k + 1] = b
                delta[k + 1] = -1
                k += 2
    order = np.argsort(times[:k], kind="mergesort")
    stalled = 0
    active = 0
    some = 0.0
    full = 0.0
    last = t0
    for j in range(k):
        i = order[j]
        now = times[i]
        if now > last:
            if stalled > 0:
                some += now - last
                if stalled >= active:
                    full += now - last
            last = now
        if delta[i] == 1000 or delta[i] == -1000:
            active += delta[i] // 1000
        else:
            stalled += delta[i]
    # carry intervals that run past the tick
    for g in range(n_guests):
        m = 0
        for i in range(w.gi[g, PSI_N]):
            if w.psi_iv[g, i, 1] > t1:
                w.psi_iv[g, m, 0] = max(w.psi_iv[g, i, 0], t1)
                w.psi_iv[g, m, 1] = w.psi_iv[g, i, 1]
                m += 1
        w.gi[g, PSI_N] = m
    span = t1 - t0
    return some / span, full / span

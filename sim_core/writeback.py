"""Guest writeback: dirty page accounting, the flusher, writer throttling, write completion.

After Linux mm/page-writeback.c. A page being written is under writeback and stays in its
frame until the write completes; only then can reclaim free the frame. ``N_DIRTY`` counts
resident dirty file pages, ``N_WRITEBACK`` frames with a write in flight (file and
anonymous, as NR_WRITEBACK does).
- The flusher (``flush``) writes dirty page cache back while dirty pages exceed the
  background threshold (``dirty_background_ratio``); pages stay resident and turn clean.
- A writer that dirties a page while dirty + writeback pages exceed ``dirty_ratio`` is
  throttled (balance_dirty_pages): it sleeps until a write completes, and the sleep is a
  memory stall.
- Reclaim's own writes stop at the dirty limit plus one batch (SWAP_CLUSTER_MAX), so dirty
  plus writeback never exceeds that bound: reclaim frees memory only as fast as the device
  writes (reclaim_throttle in mm/vmscan.c).
``reap`` advances the device and hands every completed write to its owner (guest or host).
Divergences: thresholds are shares of guest memory, not of dirtyable memory; no
per-device bandwidth estimation (the pause is "until the next completion"); no
dirty_expire_centisecs age rule; Linux accounts dirty throttling under PSI io, we count
it as a memory stall as the issue asks.
"""

from __future__ import annotations

from sim_core.block_device import (
    dev_advance,
    dev_next_completion,
    dev_pop_completion,
    dev_try_write,
)
from sim_core.host_cache import (
    cache_next_done,
    cache_pop_done,
    cache_queue_full,
    cache_submit_write,
    cache_write_done,
    write_throttled,
)
from sim_core.host_memory import FREED, host_reclaim_one, host_write_done
from sim_core.jit import njit_kernel
from sim_core.policies import ESC, esc_note_cleared, esc_note_reference
from sim_core.state import (
    ANON,
    C_WRITEBACKS,
    CACHE_TAG,
    DIRTY_BG,
    DIRTY_LIMIT,
    F_HI,
    F_LO,
    FB_KIND,
    FB_MIRROR,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FB_WB,
    FILE,
    FLUSH_HAND,
    FREE,
    FREE_TOP,
    H_CACHE_ON,
    H_CQ_N,
    H_FREE,
    HC_WRITES,
    HOST_TAG,
    N_DIRTY,
    N_FREE,
    N_RECLAIM,
    N_WRITEBACK,
    ON_DISK,
    PB_STATE,
    PG_FRAME,
    POLICY,
    RECLAIM,
    STALL_KILLED,
    STALLED,
    SWAPPED,
    USED,
    frame_guest,
)

RECLAIM_BATCH = 32  # SWAP_CLUSTER_MAX: pages reclaim works on at a time (mm/vmscan.c)
FLUSH_SCAN = 4096  # frames the flusher looks at per call


@njit_kernel
def over_dirty_limit(w, g):
    """Dirtying one more page would put guest g over its dirty limit."""
    return w.gi[g, N_DIRTY] + w.gi[g, N_WRITEBACK] >= w.gi[g, DIRTY_LIMIT]


@njit_kernel
def reclaim_may_write(w, g):
    """Reclaim may start one more write: dirty + writeback stay under limit + one batch."""
    return w.gi[g, N_DIRTY] + w.gi[g, N_WRITEBACK] < w.gi[g, DIRTY_LIMIT] + RECLAIM_BATCH


@njit_kernel
def submit_write(w, g, f, t):
    """Start writing the page in frame f to its disk or swap slot; False when the device's
    request table has no room (the caller retries later; nothing is lost). With the host
    page cache the write is copied there instead, if the host's dirty limit and memory
    allow (sim_core.host_cache)."""
    if w.hi[H_CACHE_ON] == 1:
        if cache_queue_full(w) or write_throttled(w):
            return False
        if w.hi[H_FREE] <= 0 and host_reclaim_one(w, t) != FREED:
            return False
        cache_submit_write(w, g, f, t)
    else:
        if not dev_try_write(w, t, f):
            return False
        w.hcnt[HC_WRITES] += 1
    w.fb[f, FB_WB] = 1
    w.fb[f, FB_MIRROR] = 1  # the frame matches its disk block once written
    if w.fb[f, FB_MOD] == 1:
        if w.fb[f, FB_KIND] == FILE:
            w.gi[g, N_DIRTY] -= 1
        # ESC keeps unreferenced frames in their (R, M) class: move it to (0, 0).
        in_class = w.gi[g, POLICY] == ESC and w.fb[f, FB_REF] == 0
        if in_class:
            esc_note_reference(w, g, f)
        w.fb[f, FB_MOD] = 0
        if in_class:
            esc_note_cleared(w, g, f)
    w.gi[g, N_WRITEBACK] += 1
    return True


@njit_kernel
def flush(w, g, t):
    """The flusher: over the background threshold, write dirty page cache back (pages stay
    resident) until under it, or the device is full."""
    if w.gi[g, N_DIRTY] <= w.gi[g, DIRTY_BG] or w.gi[g, STALLED] == STALL_KILLED:
        return
    lo, hi = w.gi[g, F_LO], w.gi[g, F_HI]
    f = w.gi[g, FLUSH_HAND]
    fb = w.fb
    for _ in range(min(FLUSH_SCAN, hi - lo)):
        if fb[f, FB_STATE] == USED and fb[f, FB_KIND] == FILE and fb[f, FB_MOD] == 1:
            if fb[f, FB_WB] == 0:
                if not submit_write(w, g, f, t):
                    break
                w.cnt[g, C_WRITEBACKS] += 1
                if w.gi[g, N_DIRTY] <= w.gi[g, DIRTY_BG]:
                    f = f + 1 if f + 1 < hi else lo
                    break
        f = f + 1 if f + 1 < hi else lo
    w.gi[g, FLUSH_HAND] = f


@njit_kernel
def push_free(w, g, f):
    """Frame f goes on guest g's free list."""
    top = w.gi[g, FREE_TOP]
    w.stk[top + w.gi[g, F_LO]] = f
    w.gi[g, FREE_TOP] = top + 1
    w.gi[g, N_FREE] += 1


@njit_kernel
def pop_free(w, g):
    """The frame on top of guest g's free list, taken off it (the caller checked it is
    not empty)."""
    top = w.gi[g, FREE_TOP] - 1
    f = w.stk[top + w.gi[g, F_LO]]
    w.gi[g, FREE_TOP] = top
    w.gi[g, N_FREE] -= 1
    return f


@njit_kernel
def guest_write_done(w, f):
    """A guest write of frame f completed. If reclaim was waiting for it, the page leaves
    and the frame is free; if the page was touched meanwhile it stays, clean."""
    g = frame_guest(w.gi, f)
    w.fb[f, FB_WB] = 0
    w.gi[g, N_WRITEBACK] -= 1
    if w.fb[f, FB_STATE] != RECLAIM or w.gi[g, STALLED] == STALL_KILLED:
        return
    w.pb[w.fr[f], PB_STATE] = SWAPPED if w.fb[f, FB_KIND] == ANON else ON_DISK
    w.gi[g, N_RECLAIM] -= 1
    free_frame(w, g, f)


@njit_kernel
def free_frame(w, g, f):
    """The page in frame f has left it (its state set by the caller): unlink the two and
    put the frame on the free list."""
    w.pg[w.fr[f], PG_FRAME] = -1
    w.fr[f] = -1
    w.fb[f, FB_STATE] = FREE
    w.fb[f, FB_REF] = 0
    w.fb[f, FB_MOD] = 0
    push_free(w, g, f)


@njit_kernel
def reap(w, t):
    """Advance the device to t and finish every write that completed by then (and every
    guest write copied into the host page cache by then)."""
    dev_advance(w, t)
    while True:
        tag, _ = dev_pop_completion(w)
        if tag < 0:
            break
        if tag >= CACHE_TAG:
            cache_write_done(w, tag - CACHE_TAG)
        elif tag >= HOST_TAG:
            host_write_done(w, tag - HOST_TAG)
        else:
            guest_write_done(w, tag)
    while w.hi[H_CQ_N] > 0:
        f = cache_pop_done(w, t)
        if f < 0:
            return
        guest_write_done(w, f)


@njit_kernel
def next_io_completion(w):
    """When the next write in flight completes: at the device or into the host cache."""
    return min(dev_next_completion(w), cache_next_done(w))

"""The host page cache of guest disk blocks: QEMU ``-drive cache=writeback``.

With ``host.cache = "writeback"`` the guests' disk images are files the host reads and
writes through its page cache (QEMU opens them without O_DIRECT). Every guest disk block -
a file page's block on the guest's disk, or a guest swap slot - may be cached in one host
frame, taken from the same memory that backs guest frames. After Linux mm/filemap.c and
mm/page-writeback.c applied to the QEMU process:

- A guest read of a cached block is served by a copy (``host.cache_copy_us``), no device
  read; a miss reads the device and caches the block clean (if a host frame can be had).
- A guest write is copied into the cache and completes then (cache=writeback acknowledges
  writes once in host memory); the block is dirty until the host flusher writes it.
- The writer is throttled as ``balance_dirty_pages`` throttles QEMU's I/O thread: a write
  that would put the host's dirty + writeback blocks over ``vm.dirty_ratio`` of dirtyable
  memory (free + page cache, Linux's ``global_dirtyable_memory``) waits.
- The flusher writes dirty blocks back above ``vm.dirty_background_ratio``; a block written
  again while its write-back runs stays dirty.
- Host reclaim drops clean cached blocks first (a CLOCK over their accessed bits), before
  it swaps guest frames; dirty blocks go only once written.

So guest swap writes become host memory that the host must itself reclaim: the swap
storm's feedback. Divergences: Linux balances anonymous and file LRUs by swappiness and
refault distance (we always take clean cache first); no readahead, no fsync/flush requests
from guests (nothing forces a write-through), one dirty limit for all of QEMU (no per-bdi
or per-cgroup limits), the copy queue holds at most ``CACHE_QUEUE`` writes.
"""

from __future__ import annotations

import numpy as np

from sim_core.block_device import dev_try_write
from sim_core.jit import njit_kernel
from sim_core.state import (
    ANON,
    CACHE_COPY_MS,
    CACHE_TAG,
    FB_KIND,
    H_BLOCK_SWAP0,
    H_CACHE,
    H_CACHE_DIRTY,
    H_CACHE_FLUSH,
    H_CACHE_HAND,
    H_CACHE_N,
    H_CACHE_WB,
    H_CQ_HEAD,
    H_CQ_N,
    H_DIRTY_BG_X100,
    H_DIRTY_RATIO_X100,
    H_FREE,
    HC_CACHE_DROPS,
    HC_CACHE_FLUSHES,
    HC_CACHE_HITS,
    HC_CACHE_MISSES,
    HC_CACHE_THROTTLES,
    HC_WRITES,
    HCB_ACC,
    HCB_CLEAN,
    HCB_DIRTY,
    HCB_NONE,
    HCB_STATE,
    HCB_WB,
    HCL_BLOCK,
    HCL_POS,
    PG_SLOT,
)

FLUSH_SCAN = 4096  # cached blocks the host flusher looks at per call


@njit_kernel
def block_of_page(w, p, swapped):
    """The disk block of guest page p: its file block, or its swap slot's block."""
    if swapped:
        return w.hi[H_BLOCK_SWAP0] + w.pg[p, PG_SLOT]
    return p


@njit_kernel
def _list_add(w, b):
    n = w.hi[H_CACHE_N]
    w.hcl[n, HCL_BLOCK] = b
    w.hcl[b, HCL_POS] = n
    w.hi[H_CACHE_N] = n + 1


@njit_kernel
def _list_remove(w, b):
    last = w.hi[H_CACHE_N] - 1
    pos = w.hcl[b, HCL_POS]
    moved = w.hcl[last, HCL_BLOCK]
    w.hcl[pos, HCL_BLOCK] = moved
    w.hcl[moved, HCL_POS] = pos
    w.hcl[b, HCL_POS] = -1
    w.hi[H_CACHE_N] = last


@njit_kernel
def cached_read(w, g, b, start):
    """Guest g reads block b at ``start``: the completion time if the cache holds it
    (a hit), else -1.0 (the caller reads the device, then ``cache_insert_clean``)."""
    if w.hcb[b, HCB_STATE] == HCB_NONE:
        w.hcnt[HC_CACHE_MISSES] += 1
        return -1.0
    w.hcb[b, HCB_ACC] = 1
    w.hcnt[HC_CACHE_HITS] += 1
    return start + w.gf[g, CACHE_COPY_MS]


@njit_kernel
def cache_insert_clean(w, b):
    """Cache block b, just read from the device, in a host frame the caller made free."""
    if w.hcb[b, HCB_STATE] != HCB_NONE:
        return
    w.hi[H_FREE] -= 1
    w.hi[H_CACHE] += 1
    w.hcb[b, HCB_STATE] = HCB_CLEAN
    w.hcb[b, HCB_ACC] = 1
    _list_add(w, b)


@njit_kernel
def dirty_limits(w):
    """(limit, background) in blocks: the ratios of dirtyable memory (free + cache)."""
    dirtyable = max(w.hi[H_FREE], 0) + w.hi[H_CACHE]
    limit = dirtyable * w.hi[H_DIRTY_RATIO_X100] // 10000
    background = dirtyable * w.hi[H_DIRTY_BG_X100] // 10000
    return max(limit, 1), background


@njit_kernel
def write_throttled(w):
    """One more dirty block would put the host over its dirty limit (the writer waits)."""
    limit, _ = dirty_limits(w)
    if w.hi[H_CACHE_DIRTY] >= limit:
        w.hcnt[HC_CACHE_THROTTLES] += 1
        return True
    return False


@njit_kernel
def cache_queue_full(w):
    return w.hi[H_CQ_N] >= w.hcq_t.shape[0]


@njit_kernel
def cache_next_done(w):
    """When the next guest write's copy into the cache completes (inf: none pending)."""
    if w.hi[H_CQ_N] == 0:
        return np.inf
    return w.hcq_t[w.hi[H_CQ_HEAD]]


@njit_kernel
def cache_submit_write(w, g, f, t):
    """Copy guest g's write of frame f into the cache, in a host frame the caller made
    free (reserved now: the block is known when the copy completes, after the guest has
    given the page its swap slot). Completes at t + the copy time (``cache_pop_done``)."""
    w.hi[H_FREE] -= 1
    w.hi[H_CACHE] += 1
    w.hi[H_CACHE_DIRTY] += 1  # counted dirty from now, so the limit sees writes in transit
    cap = w.hcq_t.shape[0]
    k = (w.hi[H_CQ_HEAD] + w.hi[H_CQ_N]) % cap
    w.hcq_t[k] = t + w.gf[g, CACHE_COPY_MS]
    w.hcq_tag[k] = f
    w.hi[H_CQ_N] += 1


@njit_kernel
def cache_pop_done(w, t):
    """The frame of the next guest write whose copy completed by t, its block now dirty
    in the cache; -1 when none."""
    if w.hi[H_CQ_N] == 0:
        return -1
    head = w.hi[H_CQ_HEAD]
    if w.hcq_t[head] > t:
        return -1
    f = w.hcq_tag[head]
    w.hi[H_CQ_HEAD] = (head + 1) % w.hcq_t.shape[0]
    w.hi[H_CQ_N] -= 1
    p = w.fr[f]
    anon = w.fb[f, FB_KIND] == ANON
    if p < 0 or (anon and w.pg[p, PG_SLOT] < 0):  # the guest was killed meanwhile
        w.hi[H_FREE] += 1
        w.hi[H_CACHE] -= 1
        w.hi[H_CACHE_DIRTY] -= 1
        return f
    b = block_of_page(w, p, anon)
    state = w.hcb[b, HCB_STATE]
    if state == HCB_NONE:
        _list_add(w, b)
    else:  # already cached: the reserved frame is not needed
        w.hi[H_FREE] += 1
        w.hi[H_CACHE] -= 1
        if state == HCB_DIRTY or state == HCB_WB:
            w.hi[H_CACHE_DIRTY] -= 1  # counted once
        if state == HCB_WB:
            w.hi[H_CACHE_WB] -= 1  # its write-back still runs, but the block is dirty again
    w.hcb[b, HCB_STATE] = HCB_DIRTY
    w.hcb[b, HCB_ACC] = 1
    return f


@njit_kernel
def cache_write_done(w, b):
    """The flusher's write of block b completed: clean, unless written again meanwhile."""
    if w.hcb[b, HCB_STATE] == HCB_WB:
        w.hcb[b, HCB_STATE] = HCB_CLEAN
        w.hi[H_CACHE_WB] -= 1
        w.hi[H_CACHE_DIRTY] -= 1


@njit_kernel
def host_flush(w, t):
    """The host flusher: over the background threshold, write dirty blocks to the device
    until under it or the device is full."""
    if w.hi[H_CACHE_N] == 0:
        return
    _, background = dirty_limits(w)
    n = w.hi[H_CACHE_N]
    i = w.hi[H_CACHE_FLUSH] % n
    for _ in range(min(FLUSH_SCAN, n)):
        if w.hi[H_CACHE_DIRTY] - w.hi[H_CACHE_WB] <= background:
            break
        b = w.hcl[i, HCL_BLOCK]
        if w.hcb[b, HCB_STATE] == HCB_DIRTY:
            if not dev_try_write(w, t, CACHE_TAG + b):
                break
            w.hcnt[HC_WRITES] += 1
            w.hcnt[HC_CACHE_FLUSHES] += 1
            w.hcb[b, HCB_STATE] = HCB_WB
            w.hi[H_CACHE_WB] += 1
        i = (i + 1) % n
    w.hi[H_CACHE_FLUSH] = i


@njit_kernel
def cache_drop_clean(w):
    """Host reclaim: drop one clean cached block, by CLOCK over accessed bits. True if a
    host frame came free."""
    n = w.hi[H_CACHE_N]
    if n == 0 or w.hi[H_CACHE] - w.hi[H_CACHE_DIRTY] <= 0:
        return False
    i = w.hi[H_CACHE_HAND] % n
    for _ in range(2 * n):
        b = w.hcl[i, HCL_BLOCK]
        if w.hcb[b, HCB_STATE] == HCB_CLEAN:
            if w.hcb[b, HCB_ACC] == 0:
                _list_remove(w, b)
                w.hcb[b, HCB_STATE] = HCB_NONE
                w.hi[H_CACHE] -= 1
                w.hi[H_FREE] += 1
                w.hcnt[HC_CACHE_DROPS] += 1
                w.hi[H_CACHE_HAND] = i  # the block moved here is looked at next
                return True
            w.hcb[b, HCB_ACC] = 0
        i = (i + 1) % w.hi[H_CACHE_N]
    return False

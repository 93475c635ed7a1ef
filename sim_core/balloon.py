"""The balloon driver in each guest (after drivers/virtio/virtio_balloon.c).

Inflating allocates guest pages and hands their frames to the host, which unbacks them;
deflating gives frames back (unbacked until the guest touches them). The driver moves at
most its rate per tick in 256-page batches. Its allocations take only pages that are free
now: with none free it asks reclaim for more (__GFP_NORETRY: no waiting, no OOM) and takes
the frames as their writes complete, on later calls; so inflation that needs reclaim is
paced by writeback. Ballooned frames are never reclaimable by the guest.
Free page reporting (VIRTIO_BALLOON_F_REPORTING, mm/page_reporting.c): every 2 s the guest
reports free, 2 MiB-aligned chunks of 512 frames (order 9, pageblock_order) and the host
unbacks them.
Divergences: no page migration or compaction, so a chunk is reportable only when its 512
frames happen to be free together; reported frames stay on the free list (as in Linux).
"""

from __future__ import annotations

from sim_core.guest_reclaim import reclaim_one
from sim_core.host_memory import NOTHING, REFUSED, host_release
from sim_core.jit import njit_kernel
from sim_core.state import (
    BAL_TOP,
    BALLOONED,
    C_INFLATED,
    C_REPORTED,
    EVICTOR_BALLOON,
    F_HI,
    F_LO,
    FB_HSTATE,
    FB_STATE,
    FREE,
    FREE_TOP,
    N_BALLOONED,
    N_RECLAIM,
    UNBACKED,
)
from sim_core.writeback import pop_free, push_free

BATCH_PAGES = 256  # VIRTIO_BALLOON_ARRAY_PFNS_MAX
REPORT_ORDER_PAGES = 512  # 2 MiB of 4 KiB pages: pageblock_order 9


@njit_kernel
def balloon_inflate(w, g, n, t):
    """Take up to n free frames into guest g's balloon, asking reclaim for more when none
    is free (without waiting). Returns frames moved."""
    moved = 0
    last = w.gi[g, F_HI] - 1  # the balloon stack grows down from here (sim_core.state)
    while moved < n:
        if w.gi[g, FREE_TOP] == 0:
            if w.gi[g, N_RECLAIM] >= n - moved:
                break  # enough frames are on their way out
            r = reclaim_one(w, g, t, EVICTOR_BALLOON)
            if r == NOTHING or r == REFUSED:
                break
            continue
        f = pop_free(w, g)
        w.fb[f, FB_STATE] = BALLOONED
        host_release(w, f)
        btop = w.gi[g, BAL_TOP]
        w.stk[last - btop] = f
        w.gi[g, BAL_TOP] = btop + 1
        w.gi[g, N_BALLOONED] += 1
        moved += 1
    w.cnt[g, C_INFLATED] += moved
    return moved


@njit_kernel
def balloon_deflate(w, g, n):
    """Give up to n frames from guest g's balloon back to it (unbacked until touched)."""
    moved = 0
    last = w.gi[g, F_HI] - 1
    while moved < n and w.gi[g, BAL_TOP] > 0:
        top = w.gi[g, BAL_TOP] - 1
        f = w.stk[last - top]
        w.gi[g, BAL_TOP] = top
        w.fb[f, FB_STATE] = FREE
        push_free(w, g, f)
        w.gi[g, N_BALLOONED] -= 1
        moved += 1
    return moved


@njit_kernel
def report_free_pages(w, g):
    """Free page reporting: unback every 2 MiB-aligned chunk of free frames. Returns
    frames unbacked."""
    lo, hi = w.gi[g, F_LO], w.gi[g, F_HI]
    reported = 0
    start = lo
    while start + REPORT_ORDER_PAGES <= hi:
        all_free = True
        for f in range(start, start + REPORT_ORDER_PAGES):
            if w.fb[f, FB_STATE] != FREE:
                all_free = False
                break
        if all_free:
            for f in range(start, start + REPORT_ORDER_PAGES):
                if w.fb[f, FB_HSTATE] != UNBACKED:
                    host_release(w, f)
                    reported += 1
        start += REPORT_ORDER_PAGES
    w.cnt[g, C_REPORTED] += reported
    return reported

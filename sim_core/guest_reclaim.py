"""Guest reclaim: kswapd, direct reclaim and the eviction of one page (after mm/vmscan.c).

The policy (``policies.pick_victim``) only names the victim; this module decides what
evicting it costs, as shrink_folio_list does:
- a clean file page is dropped: the frame is free at once, no I/O;
- an anonymous page whose swap copy is current (swap cache, M = 0) is dropped the same way;
- a page under writeback already (the flusher's) is marked for reclaim: freed when done;
- any other page is written (a dirty file page to its disk, an anonymous page to its swap
  slot): the page is unmapped, its frame in state RECLAIM, and it is freed only when the
  write completes (``writeback.guest_write_done``). A touch meanwhile is a minor fault.
If the host swapped the frame out, writing it needs its content first: the host reads it
back (double paging, Goldberg and Hassinger 1974; VSwapper ASPLOS 2014 sec. 3).
kswapd frees up to the high watermark counting frames already on their way out; direct
reclaim (a fault with no free frame) works in batches of SWAP_CLUSTER_MAX and, when only
writes in flight can free a frame (or the device has no room for more), waits for the
device's next completion.
Divergences: no active/inactive lists, no swappiness (victims come from the policy), no
reclaim of kernel memory; double paging is charged to whoever evicts, without blocking it,
but one double-paging read at a time per guest (the next victim it would need is refused).
"""

from __future__ import annotations

from sim_core.block_device import dev_read
from sim_core.host_memory import (
    FREED,
    NOTHING,
    REFUSED,
    SUBMITTED,
    back_frame,
)
from sim_core.jit import njit_kernel
from sim_core.policies import ESC, on_remove, pick_victim
from sim_core.state import (
    ANON,
    BACKED,
    C_BALLOON_RECLAIMS,
    C_BALLOON_WRITES,
    C_DOUBLE_PAGING,
    C_ESC_00,
    C_EVICTIONS,
    C_FILE_DROPS,
    C_GUEST_RECLAIM_WRITES,
    C_HOST_FAULTS,
    C_HOST_REFAULTS,
    C_NESTED,
    C_OOM,
    C_SWAP_OUTS,
    C_SWAPCACHE_DROPS,
    C_WRITEBACKS,
    DP_READ_DONE,
    ESC_CLASS,
    EVICTOR_BALLOON,
    FB_HSTATE,
    FB_KIND,
    FB_MOD,
    FB_STATE,
    FB_WB,
    FILE,
    FREE_HIGH,
    FREE_LOW,
    FREE_TOP,
    H_FREE,
    HC_READS,
    HC_SWAP_INS,
    HOST_WRITEBACK,
    N_FREE,
    N_RECLAIM,
    N_USED,
    ON_DISK,
    PB_EVICTOR,
    PB_STATE,
    PG_SLOT,
    POLICY,
    RECLAIM,
    SLOT_TOP,
    STALL_RUNS,
    STALLED,
    SWAPPED,
    UNBACKED,
)
from sim_core.swap import slot_alloc
from sim_core.writeback import RECLAIM_BATCH, free_frame, reclaim_may_write, submit_write


@njit_kernel
def _double_paging_read(w, g, f, t):
    """The host swapped frame f out, and the guest wants to write it: the host must read it
    back first. Needs a free host frame; False when there is none (try another victim).
    The host reads it synchronously, on behalf of the guest's one reclaiming context: while
    the previous such read for guest g is still in flight (``DP_READ_DONE``), False too, so
    a guest never has more than one double-paging read outstanding. (Not waiting for it let
    kswapd, direct reclaim and the balloon submit a read per victim in one pass: hundreds
    at once, with sampling's 1/R-times-longer reads, until the device's read table was
    full.)"""
    hs = w.fb[f, FB_HSTATE]
    if hs == BACKED or hs == HOST_WRITEBACK or hs == UNBACKED:
        return True
    if w.hi[H_FREE] <= 0 or w.gf[g, DP_READ_DONE] > t:
        return False
    w.gf[g, DP_READ_DONE] = dev_read(w, t)
    w.hcnt[HC_READS] += 1
    w.hcnt[HC_SWAP_INS] += 1
    w.cnt[g, C_HOST_FAULTS] += 1
    w.cnt[g, C_HOST_REFAULTS] += 1
    w.cnt[g, C_DOUBLE_PAGING] += 1
    back_frame(w, f)
    return True


@njit_kernel
def evict(w, g, f, t, evictor):
    """Evict the page in frame f of guest g for ``evictor``. FREED, SUBMITTED or REFUSED."""
    fb = w.fb
    p = w.fr[f]
    kind = fb[f, FB_KIND]
    dirty = fb[f, FB_MOD] == 1
    if fb[f, FB_WB] == 1:
        status = SUBMITTED  # the flusher is writing it already: free it when done
    elif (kind == FILE and not dirty) or (kind == ANON and not dirty and w.pg[p, PG_SLOT] >= 0):
        status = FREED
    else:
        if not reclaim_may_write(w, g):
            return REFUSED
        if kind == ANON and w.pg[p, PG_SLOT] < 0 and w.gi[g, SLOT_TOP] == 0:
            return REFUSED
        if fb[f, FB_HSTATE] != BACKED and fb[f, FB_HSTATE] != HOST_WRITEBACK:
            if fb[f, FB_HSTATE] != UNBACKED:
                w.cnt[g, C_NESTED] += 1
            if not _double_paging_read(w, g, f, t):
                return REFUSED
        if not submit_write(w, g, f, t):
            return REFUSED
        if kind == ANON:
            if w.pg[p, PG_SLOT] < 0:
                w.pg[p, PG_SLOT] = slot_alloc(w, g)
            w.cnt[g, C_SWAP_OUTS] += 1
        else:
            w.cnt[g, C_WRITEBACKS] += 1
        if evictor == EVICTOR_BALLOON:
            w.cnt[g, C_BALLOON_WRITES] += 1
        else:
            w.cnt[g, C_GUEST_RECLAIM_WRITES] += 1
        status = SUBMITTED
    on_remove(w, g, f, w.gi[g, POLICY])
    w.pb[p, PB_EVICTOR] = evictor
    w.cnt[g, C_EVICTIONS] += 1
    if evictor == EVICTOR_BALLOON:
        w.cnt[g, C_BALLOON_RECLAIMS] += 1
    if w.gi[g, POLICY] == ESC:
        w.cnt[g, C_ESC_00 + w.gi[g, ESC_CLASS]] += 1
    if status == FREED:
        if kind == FILE:
            w.pb[p, PB_STATE] = ON_DISK
            w.cnt[g, C_FILE_DROPS] += 1
        else:
            w.pb[p, PB_STATE] = SWAPPED  # its slot holds a current copy
            w.cnt[g, C_SWAPCACHE_DROPS] += 1
        w.gi[g, N_USED] -= 1
        free_frame(w, g, f)
    else:
        fb[f, FB_STATE] = RECLAIM
        w.gi[g, N_USED] -= 1
        w.gi[g, N_RECLAIM] += 1
    return status


@njit_kernel
def reclaim_one(w, g, t, evictor):
    """Evict one page of guest g chosen by its policy: FREED, SUBMITTED, REFUSED or NOTHING."""
    if w.gi[g, STALLED] != STALL_RUNS:
        return NOTHING
    f = pick_victim(w, g, w.gi[g, SLOT_TOP] > 0)
    if f < 0:
        w.cnt[g, C_OOM] += 1
        return NOTHING
    return evict(w, g, f, t, evictor)


@njit_kernel
def kswapd(w, g, t, evictor):
    """Background reclaim: under the low watermark, until free frames plus frames on their
    way out reach the high one, or nothing more can go for now."""
    if w.gi[g, N_FREE] >= w.gi[g, FREE_LOW] or w.gi[g, STALLED] != STALL_RUNS:
        return
    while w.gi[g, N_FREE] + w.gi[g, N_RECLAIM] < w.gi[g, FREE_HIGH]:
        r = reclaim_one(w, g, t, evictor)
        if r == NOTHING or r == REFUSED:
            return


@njit_kernel
def direct_reclaim(w, g, t, evictor):
    """A fault found no free frame: reclaim a batch. FREED when a frame is free now,
    SUBMITTED when only writes in flight can free one (the caller waits), NOTHING when
    nothing is left to reclaim."""
    refused = False
    for _ in range(RECLAIM_BATCH):
        if w.gi[g, FREE_TOP] > 0:
            return FREED
        r = reclaim_one(w, g, t, evictor)
        if r == NOTHING:
            break
        if r == REFUSED:
            refused = True
            break
    if w.gi[g, FREE_TOP] > 0:
        return FREED
    if w.gi[g, N_RECLAIM] > 0:
        return SUBMITTED
    return REFUSED if refused else NOTHING

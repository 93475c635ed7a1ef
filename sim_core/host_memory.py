"""Host memory: frames backing guest memory, I/O buffers, blind reclaim, host swap, OOM.

The host is blind (Waldspurger, OSDI 2002, sec. 3): it sees guest frames and the accessed
and dirty bits of its own page tables (EPT A/D), never what a guest keeps in a frame. A
guest frame is UNBACKED, BACKED, HOST_WRITEBACK (its swap write is in flight: it still
holds its host frame until the write completes, as every write does), HOST_SWAPPED or
HOST_DISCARDED; touching the last two is a host fault that reads the frame back.

Rules, after Linux mm/vmscan.c and mm/swap_state.c applied to a QEMU process:
- Background reclaim runs under the low watermark and frees up to the high one, counting
  frames whose write is in flight as on their way (kswapd does not wait for them).
- A victim is drawn blindly: uniformly at random (ESX) or by a CLOCK over accessed bits.
- A frame swapped in keeps its swap slot and is clean until the guest writes it (the host
  swap cache): evicting it again unmodified costs no write. A write frees the stale slot
  (Linux frees swap cache on a write fault when swap runs full: we always do).
- ``discard_clean`` (VSwapper's Swap Mapper): a frame that mirrors a guest disk block,
  unmodified since the block was read or written, is dropped instead of written.
- With ``host.cache = writeback`` the host page cache of guest disk blocks shares this
  memory; reclaim drops its clean blocks before touching guest frames (sim_core.host_cache).
- Host swap is finite: with no free frame, no victim that can go and no write in flight,
  the host OOM-kills the guest with the most resident memory (Linux oom_badness ~ rss).
Divergences: one host LRU-less pool (no active/inactive lists); no swap readahead; no
zswap; host kernel memory is a fixed reserve.
"""

from __future__ import annotations

from sim_core.block_device import dev_try_write
from sim_core.fastrng import next_below
from sim_core.host_cache import cache_drop_clean
from sim_core.jit import njit_kernel, njit_leaf
from sim_core.state import (
    BACKED,
    C_HOST_DISCARDS,
    C_HOST_SWAP_OUTS,
    C_SILENT_WRITES,
    F_HI,
    F_LO,
    FB_HACC,
    FB_HDIRTY,
    FB_HSLOT,
    FB_HSTATE,
    FB_KIND,
    FB_MIRROR,
    FB_MOD,
    FB_STATE,
    FILE,
    H_CACHE_ON,
    H_DISCARD,
    H_FREE,
    H_HAND,
    H_HIGH,
    H_LOW,
    H_NFRAMES,
    H_NRES,
    H_OOM_KILLED,
    H_SWAP_CAP,
    H_SWAP_POLICY,
    H_SWAP_USED,
    H_WRITEBACK,
    HC_DISCARDS,
    HC_SWAP_OUTS,
    HC_SWAPCACHE_DROPS,
    HC_WRITES,
    HOST_DISCARDED,
    HOST_SWAPPED,
    HOST_TAG,
    HOST_WRITEBACK,
    HU_POS,
    HU_RES,
    N_BACKED,
    N_HSWAPPED,
    PINNED,
    STALL_KILLED,
    STALL_RUNS,
    STALLED,
    UNBACKED,
    USED,
    frame_guest,
)

# Outcomes of one reclaim step, shared by host and guest reclaim.
FREED = 1  # a frame is free now
SUBMITTED = 2  # a write is in flight: a frame comes free when it completes
REFUSED = 3  # a write was needed but the device, swap or dirty limit refused it for now
NOTHING = 0  # nothing can be reclaimed

RANDOM_TRIES = 64  # blind draws before the host gives up finding a victim


@njit_kernel
def _resident_add(w, f):
    n = w.hi[H_NRES]
    w.hu[n, HU_RES] = f
    w.hu[f, HU_POS] = n
    w.hi[H_NRES] = n + 1


@njit_kernel
def _resident_remove(w, f):
    last = w.hi[H_NRES] - 1
    pos = w.hu[f, HU_POS]
    moved = w.hu[last, HU_RES]
    w.hu[pos, HU_RES] = moved
    w.hu[moved, HU_POS] = pos
    w.hu[f, HU_POS] = -1
    w.hi[H_NRES] = last


@njit_leaf
def release_slot(fb, hi, f):
    """Frame f no longer needs its host swap slot (on the arrays)."""
    if fb[f, FB_HSLOT] == 1:
        fb[f, FB_HSLOT] = 0
        hi[H_SWAP_USED] -= 1


@njit_kernel
def free_host_slot(w, f):
    """Frame f no longer needs its host swap slot."""
    release_slot(w.fb, w.hi, f)


@njit_leaf
def mark_written(fb, hi, f):
    """The guest wrote frame f: the host sees its dirty bit; a kept swap copy is stale (its
    slot is freed), and the frame no longer mirrors a disk block. On the arrays: the hit
    path runs it on every write."""
    fb[f, FB_HDIRTY] = 1
    fb[f, FB_MIRROR] = 0
    release_slot(fb, hi, f)


@njit_kernel
def host_note_write(w, f):
    """``mark_written`` on the World."""
    mark_written(w.fb, w.hi, f)


@njit_kernel
def back_frame(w, f):
    """Give frame f a host frame the caller made sure is free (zero-filled or read back)."""
    g = frame_guest(w.gi, f)
    if w.fb[f, FB_HSTATE] != UNBACKED:
        w.gi[g, N_HSWAPPED] -= 1
    w.hi[H_FREE] -= 1
    _resident_add(w, f)
    w.fb[f, FB_HSTATE] = BACKED
    w.fb[f, FB_HACC] = 1
    w.gi[g, N_BACKED] += 1


@njit_kernel
def host_release(w, f):
    """The guest gave frame f up (balloon, free page reporting, OOM kill): whatever backed
    it is freed with no I/O. A swap write in flight finishes for nothing."""
    g = frame_guest(w.gi, f)
    hs = w.fb[f, FB_HSTATE]
    if hs == BACKED or hs == HOST_WRITEBACK:
        _resident_remove(w, f)
        w.hi[H_FREE] += 1
        w.gi[g, N_BACKED] -= 1
    elif hs == HOST_SWAPPED or hs == HOST_DISCARDED:
        w.gi[g, N_HSWAPPED] -= 1
    free_host_slot(w, f)
    w.fb[f, FB_HSTATE] = UNBACKED
    w.fb[f, FB_HDIRTY] = 0
    w.fb[f, FB_MIRROR] = 0


@njit_kernel
def _can_go(w, f):
    """Host reclaim can take frame f now: it is in host memory, not being written, not
    pinned, and it can be dropped or there is swap room to write it."""
    if w.fb[f, FB_HSTATE] != BACKED:
        return False
    if w.gi[frame_guest(w.gi, f), PINNED] == 1:
        return False
    if w.hi[H_DISCARD] == 1 and w.fb[f, FB_MIRROR] == 1:
        return True
    if w.fb[f, FB_HSLOT] == 1 and w.fb[f, FB_HDIRTY] == 0:
        return True
    return w.hi[H_SWAP_USED] < w.hi[H_SWAP_CAP]


@njit_kernel
def _host_victim(w):
    """A frame to reclaim, chosen blindly; -1 when none can go."""
    nres = w.hi[H_NRES]
    if nres == 0:
        return -1
    if w.hi[H_SWAP_POLICY] == 0:
        for _ in range(RANDOM_TRIES):
            f = w.hu[next_below(w.hrng, 0, nres), HU_RES]
            if _can_go(w, f):
                return f
        return -1
    nf = w.hi[H_NFRAMES]
    f = w.hi[H_HAND]
    for _ in range(2 * nf):
        if w.hu[f, HU_POS] >= 0 and _can_go(w, f):
            # Referenced: the accessed bit, or PG_young kept by an idle-page tracker (1 | 4;
            # see sim_core.monitor). As mm/rmap.c folio_referenced_one: clearing the accessed
            # bit also clears PG_idle; a page referenced only through PG_young stays idle.
            acc = w.fb[f, FB_HACC]
            if acc & 5 == 0:
                w.hi[H_HAND] = (f + 1) % nf
                return f
            w.fb[f, FB_HACC] = 0 if acc & 1 else acc & 2
        f = (f + 1) % nf
    return -1


@njit_kernel
def host_reclaim_one(w, t):
    """Reclaim one host frame: a clean block of the host page cache if there is one, else a
    guest frame chosen blindly - discard it, drop its current swap copy, or start writing
    it to host swap. Returns FREED, SUBMITTED, REFUSED or NOTHING."""
    if w.hi[H_CACHE_ON] == 1 and cache_drop_clean(w):
        return FREED
    f = _host_victim(w)
    if f < 0:
        return NOTHING
    g = frame_guest(w.gi, f)
    if w.hi[H_DISCARD] == 1 and w.fb[f, FB_MIRROR] == 1:
        free_host_slot(w, f)
        w.fb[f, FB_HSTATE] = HOST_DISCARDED
        w.cnt[g, C_HOST_DISCARDS] += 1
        w.hcnt[HC_DISCARDS] += 1
    elif w.fb[f, FB_HSLOT] == 1 and w.fb[f, FB_HDIRTY] == 0:
        w.fb[f, FB_HSTATE] = HOST_SWAPPED
        w.hcnt[HC_SWAPCACHE_DROPS] += 1
    else:
        if not dev_try_write(w, t, HOST_TAG + f):
            return REFUSED
        w.hcnt[HC_WRITES] += 1
        w.hi[H_SWAP_USED] += 1
        w.fb[f, FB_HSLOT] = 1
        w.fb[f, FB_HDIRTY] = 0
        w.fb[f, FB_HSTATE] = HOST_WRITEBACK
        w.hi[H_WRITEBACK] += 1
        w.cnt[g, C_HOST_SWAP_OUTS] += 1
        w.hcnt[HC_SWAP_OUTS] += 1
        if w.fb[f, FB_STATE] == USED and w.fb[f, FB_KIND] == FILE and w.fb[f, FB_MOD] == 0:
            w.cnt[g, C_SILENT_WRITES] += 1  # the guest's disk already has this page
        return SUBMITTED
    _resident_remove(w, f)
    w.hi[H_FREE] += 1
    w.gi[g, N_BACKED] -= 1
    w.gi[g, N_HSWAPPED] += 1
    return FREED


@njit_kernel
def host_write_done(w, f):
    """A host swap write of frame f completed: the frame is freed unless the guest touched
    it meanwhile (then it stays, clean, its swap copy kept)."""
    w.hi[H_WRITEBACK] -= 1
    if w.fb[f, FB_HSTATE] == HOST_WRITEBACK:
        g = frame_guest(w.gi, f)
        w.fb[f, FB_HSTATE] = HOST_SWAPPED
        _resident_remove(w, f)
        w.hi[H_FREE] += 1
        w.gi[g, N_BACKED] -= 1
        w.gi[g, N_HSWAPPED] += 1


@njit_kernel
def host_kswapd(w, t):
    """Background reclaim: under the low watermark, until free frames plus frames on their
    way out reach the high one, or nothing more can go for now."""
    if w.hi[H_FREE] >= w.hi[H_LOW]:
        return
    while w.hi[H_FREE] + w.hi[H_WRITEBACK] < w.hi[H_HIGH]:
        r = host_reclaim_one(w, t)
        if r == NOTHING or r == REFUSED:
            return


@njit_kernel
def oom_victim(w):
    """The guest the host's OOM killer picks: the most resident memory, as oom_badness."""
    best, best_rss = -1, -1
    for g in range(w.gi.shape[0]):
        if w.gi[g, STALLED] == STALL_RUNS and w.gi[g, N_BACKED] > best_rss:
            best, best_rss = g, w.gi[g, N_BACKED]
    return best


@njit_kernel
def oom_kill(w, g):
    """Kill guest g: all its memory goes back to the host, it runs no more."""
    for f in range(w.gi[g, F_LO], w.gi[g, F_HI]):
        host_release(w, f)
    w.gi[g, STALLED] = STALL_KILLED
    if w.hi[H_OOM_KILLED] < 0:
        w.hi[H_OOM_KILLED] = g

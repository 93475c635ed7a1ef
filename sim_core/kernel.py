"""The compiled data plane of the full simulation: references, faults, reclaim, host swap.

Everything here runs per reference or per page and is compiled (numba, ``cache=True``)
over one ``World``. The per-tick control plane (controllers, balloon targets, metrics)
lives in ``sim_core.simulation`` and calls in here.

Time: each guest has its own clock (ms). A reference costs ``REF_MS``; a read that misses
memory waits for the disk. The disk is one FIFO queue with finite IOPS shared by guest I/O
and host swap: ``D_FREE_AT`` is when it will have served everything queued so far, so a
read issued at ``t`` completes at ``max(t, D_FREE_AT) + 1/IOPS`` plus the device latency,
and a write (asynchronous) only pushes ``D_FREE_AT`` further out. The queue length at ``t``
is the work still ahead of the disk, ``(D_FREE_AT - t) * IOPS``.

The host is blind: it sees guest frames (and the blocks of the guest swap files it caches),
never what a guest keeps in them. A guest frame is UNBACKED, BACKED by a host frame, or
HOST_SWAPPED / HOST_DISCARDED; guests touching the latter take a host fault.
"""

from __future__ import annotations

from numba import njit

from sim_core.fastrng import next_below
from sim_core.policies import (
    ESC,
    LRU,
    WS,
    esc_note_cleared,
    esc_note_reference,
    on_hit,
    on_load,
    on_remove,
    pick_victim,
)
from sim_core.state import (
    ANON,
    BACKED,
    BAL_TOP,
    BALLOONED,
    BLK_CACHED,
    BLK_EVICTED,
    C_BALLOON_RECLAIMS,
    C_BALLOON_WRITES,
    C_DOUBLE_PAGING,
    C_ESC_00,
    C_EVICTIONS,
    C_FALSE_READS,
    C_FAULTS,
    C_FILE_DROPS,
    C_FILE_READS,
    C_HOST_BLOCK_DROPS,
    C_HOST_DISCARDS,
    C_HOST_FAULTS,
    C_HOST_SWAP_OUTS,
    C_MAJOR,
    C_NESTED,
    C_OOM,
    C_REFS,
    C_SILENT_WRITES,
    C_STALE_READS,
    C_SWAP_INS,
    C_SWAP_OUTS,
    C_WRITEBACKS,
    CLOCK_MS,
    D_FREE_AT,
    D_LATENCY,
    D_SERVICE,
    DEFLATE_ON_OOM,
    ESC_CLASS,
    F_LO,
    FAULT_MS,
    FB_HACC,
    FB_HSTATE,
    FB_KIND,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FILE,
    FR_GUEST,
    FR_PAGE,
    FREE,
    FREE_TOP,
    GQ_CAPACITY,
    H_DISCARD,
    H_FREE,
    H_GQ_HEAD,
    H_GQ_TAIL,
    H_HAND,
    H_IOBUF,
    H_IOBUF_PER_REQ_X1000,
    H_NFRAMES,
    H_NRES,
    H_NRES_BLOCKS,
    H_NRES_FRAMES,
    H_NUNITS,
    H_SWAP_CAP,
    H_SWAP_POLICY,
    H_SWAP_USED,
    HC_BLOCK_DROPS,
    HC_DISCARDS,
    HC_OOM,
    HC_READS,
    HC_SWAP_INS,
    HC_SWAP_OUTS,
    HC_WRITES,
    HOST_DISCARDED,
    HOST_SWAPPED,
    HU_POS,
    HU_RES,
    N_BACKED,
    N_BALLOONED,
    N_CACHED_BLOCKS,
    N_FREE,
    N_HSWAPPED,
    N_SWAPPED,
    N_USED,
    ON_DISK,
    P_LO,
    PB_KIND,
    PB_STATE,
    PG_FRAME,
    PG_SLOT,
    PINNED,
    POLICY,
    REF_LEN,
    REF_MS,
    REF_POS,
    RESIDENT,
    S_LO,
    SB_ACC,
    SB_BLOCK,
    SB_USED,
    SLOT_TOP,
    STALLED,
    STK_BAL,
    STK_FREE,
    SWAPPED,
    UNBACKED,
    UNTOUCHED,
    USED,
    VTIME,
)

BATCH_PAGES = 256  # virtio-balloon moves pages in batches of this many
STALL_DEADLOCK = 1
STALL_OOM = 2


# ---- the disk --------------------------------------------------------------------------------
@njit(cache=True)
def _note_guest_request(w, done):
    """Remember when a guest request leaves the queue (the host holds its buffer until then)."""
    tail = w.hi[H_GQ_TAIL]
    if tail - w.hi[H_GQ_HEAD] >= GQ_CAPACITY:
        w.hi[H_GQ_HEAD] += 1  # full: forget the oldest (it would finish first anyway)
    w.gq[tail & (GQ_CAPACITY - 1)] = done
    w.hi[H_GQ_TAIL] = tail + 1


@njit(cache=True)
def guest_requests_in_flight(w, t):
    """Guest I/O requests issued but not yet served at time t (FIFO: in issue order)."""
    head, tail = w.hi[H_GQ_HEAD], w.hi[H_GQ_TAIL]
    while head < tail and w.gq[head & (GQ_CAPACITY - 1)] <= t:
        head += 1
    w.hi[H_GQ_HEAD] = head
    return tail - head


@njit(cache=True)
def disk_read(w, t, guest):
    """A read issued at t; returns when its data is there (the caller waits). ``guest``:
    issued for a guest (its buffer is host memory while in flight), not by host swap."""
    hf = w.hf
    start = max(t, hf[D_FREE_AT])
    hf[D_FREE_AT] = start + hf[D_SERVICE]
    w.hcnt[HC_READS] += 1
    if guest:
        _note_guest_request(w, hf[D_FREE_AT])
    return hf[D_FREE_AT] + hf[D_LATENCY]


@njit(cache=True)
def disk_write(w, t, guest):
    """A write issued at t: queued behind everything else; nobody waits for it."""
    hf = w.hf
    hf[D_FREE_AT] = max(t, hf[D_FREE_AT]) + hf[D_SERVICE]
    w.hcnt[HC_WRITES] += 1
    if guest:
        _note_guest_request(w, hf[D_FREE_AT])


@njit(cache=True)
def queue_length(w, t):
    """Requests still ahead of the disk at time t."""
    return max(0.0, (w.hf[D_FREE_AT] - t) / w.hf[D_SERVICE])


# ---- host memory -----------------------------------------------------------------------------
@njit(cache=True)
def _resident_add(w, u):
    nf = w.hi[H_NFRAMES]
    col, base = (H_NRES_FRAMES, 0) if u < nf else (H_NRES_BLOCKS, nf)
    n = w.hi[col]
    w.hu[base + n, HU_RES] = u
    w.hu[u, HU_POS] = n
    w.hi[col] = n + 1
    w.hi[H_NRES] += 1


@njit(cache=True)
def _resident_remove(w, u):
    nf = w.hi[H_NFRAMES]
    col, base = (H_NRES_FRAMES, 0) if u < nf else (H_NRES_BLOCKS, nf)
    last = w.hi[col] - 1
    pos = w.hu[u, HU_POS]
    moved = w.hu[base + last, HU_RES]
    w.hu[base + pos, HU_RES] = moved
    w.hu[moved, HU_POS] = pos
    w.hu[u, HU_POS] = -1
    w.hi[col] = last
    w.hi[H_NRES] -= 1


@njit(cache=True)
def _clean_file(w, f):
    fb = w.fb
    return fb[f, FB_STATE] == USED and fb[f, FB_KIND] == FILE and fb[f, FB_MOD] == 0


@njit(cache=True)
def _evictable(w, u):
    """The host may take unit u: a swap block unless pinned; a frame if it has swap space
    for it or may discard a clean copy."""
    nf = w.hi[H_NFRAMES]
    if u >= nf:
        return w.gi[w.sg[u - nf], PINNED] == 0
    if w.hi[H_SWAP_USED] < w.hi[H_SWAP_CAP]:
        return True
    return w.hi[H_DISCARD] == 1 and _clean_file(w, u)


@njit(cache=True)
def _random_resident(w):
    """A unit drawn uniformly from everything resident: frames and cached swap blocks."""
    nres = w.hi[H_NRES]
    r = next_below(w.hrng, 0, nres)
    nfr = w.hi[H_NRES_FRAMES]
    if r < nfr:
        return w.hu[r, HU_RES]
    return w.hu[w.hi[H_NFRAMES] + r - nfr, HU_RES]


@njit(cache=True)
def _host_victim(w):
    """What the host reclaims next, blindly: guest frames and the blocks of guest swap
    files it caches alike, uniformly at random (ESX) or by a CLOCK over the accessed bits
    it sees. Pinned swap blocks are spared while anything else can go. -1 when nothing is
    resident."""
    if w.hi[H_NRES] == 0:
        return -1
    if w.hi[H_SWAP_POLICY] == 0:
        for _ in range(32):
            u = _random_resident(w)
            if _evictable(w, u):
                return u
        return _random_resident(w)
    nf = w.hi[H_NFRAMES]
    nunits = w.hi[H_NUNITS]
    u = w.hi[H_HAND]
    for _ in range(2 * nunits):
        if w.hu[u, HU_POS] >= 0 and _evictable(w, u):
            if u < nf:
                accessed = w.fb[u, FB_HACC] == 1
                w.fb[u, FB_HACC] = 0
            else:
                accessed = w.sb[u - nf, SB_ACC] == 1
                w.sb[u - nf, SB_ACC] = 0
            if not accessed:
                w.hi[H_HAND] = (u + 1) % nunits
                return u
        u = (u + 1) % nunits
    return _random_resident(w)  # nothing evictable: take one anyway


@njit(cache=True)
def host_evict_one(w, t):
    """Free one host frame by swapping out (or discarding, or dropping) a blind victim."""
    u = _host_victim(w)
    if u < 0:
        w.hcnt[HC_OOM] += 1
        return False
    nf = w.hi[H_NFRAMES]
    if u < nf:
        f = u
        g = w.fr[f, FR_GUEST]
        clean_file = _clean_file(w, f)
        if w.hi[H_DISCARD] == 1 and clean_file:
            # VSwapper: the host knows the page mirrors an unchanged disk block.
            w.fb[f, FB_HSTATE] = HOST_DISCARDED
            w.cnt[g, C_HOST_DISCARDS] += 1
            w.hcnt[HC_DISCARDS] += 1
        else:
            disk_write(w, t, False)
            w.fb[f, FB_HSTATE] = HOST_SWAPPED
            w.hi[H_SWAP_USED] += 1
            w.cnt[g, C_HOST_SWAP_OUTS] += 1
            w.hcnt[HC_SWAP_OUTS] += 1
            if clean_file:
                w.cnt[g, C_SILENT_WRITES] += 1
        w.gi[g, N_BACKED] -= 1
        w.gi[g, N_HSWAPPED] += 1
    else:
        s = u - nf
        g = w.sg[s]
        # Guest swap writes go through to the swap file, so a cached block is clean.
        w.sb[s, SB_BLOCK] = BLK_EVICTED
        w.gi[g, N_CACHED_BLOCKS] -= 1
        w.cnt[g, C_HOST_BLOCK_DROPS] += 1
        w.hcnt[HC_BLOCK_DROPS] += 1
    _resident_remove(w, u)
    w.hi[H_FREE] += 1
    return True


@njit(cache=True)
def host_take(w, t):
    """Take one free host frame, reclaiming one first when none is free."""
    if w.hi[H_FREE] <= 0:
        host_evict_one(w, t)
    w.hi[H_FREE] -= 1


@njit(cache=True)
def host_reclaim(w, t, low, high):
    """The host's background reclaim: under ``low`` free frames, free up to ``high``."""
    if w.hi[H_FREE] >= low:
        return 0
    freed = 0
    while w.hi[H_FREE] < high:
        if not host_evict_one(w, t):
            break
        freed += 1
    return freed


@njit(cache=True)
def host_back(w, g, f, t):
    """Give an UNBACKED guest frame a host frame (zero-filled: no I/O)."""
    host_take(w, t)
    _resident_add(w, f)
    w.fb[f, FB_HSTATE] = BACKED
    w.gi[g, N_BACKED] += 1


@njit(cache=True)
def host_fault_in(w, g, f, t):
    """A guest touched a frame the host had swapped out or discarded: read it back."""
    if w.fb[f, FB_HSTATE] == HOST_SWAPPED:
        w.hi[H_SWAP_USED] -= 1
    t = disk_read(w, t, False)
    w.hcnt[HC_SWAP_INS] += 1
    w.cnt[g, C_HOST_FAULTS] += 1
    host_take(w, t)
    _resident_add(w, f)
    w.fb[f, FB_HSTATE] = BACKED
    w.gi[g, N_BACKED] += 1
    w.gi[g, N_HSWAPPED] -= 1
    return t


@njit(cache=True)
def host_release(w, g, f):
    """The balloon handed frame f to the host: whatever backed it is freed, no I/O."""
    hs = w.fb[f, FB_HSTATE]
    if hs == BACKED:
        _resident_remove(w, f)
        w.hi[H_FREE] += 1
        w.gi[g, N_BACKED] -= 1
    elif hs == HOST_SWAPPED or hs == HOST_DISCARDED:
        if hs == HOST_SWAPPED:
            w.hi[H_SWAP_USED] -= 1
        w.gi[g, N_HSWAPPED] -= 1
    w.fb[f, FB_HSTATE] = UNBACKED


# ---- guest swap, as blocks of a host file ----------------------------------------------------
@njit(cache=True)
def swap_block_write(w, g, s, t):
    """The guest writes a page to swap slot s. If the host had dropped that block of the
    swap file, it must read it back first: a nested fault the guest waits for."""
    nf = w.hi[H_NFRAMES]
    block = w.sb[s, SB_BLOCK]
    if block == BLK_EVICTED:
        w.cnt[g, C_NESTED] += 1
        t = disk_read(w, t, True)
    if block != BLK_CACHED:
        host_take(w, t)
        _resident_add(w, nf + s)
        w.sb[s, SB_BLOCK] = BLK_CACHED
        w.gi[g, N_CACHED_BLOCKS] += 1
    w.sb[s, SB_ACC] = 1
    disk_write(w, t, True)
    return t


@njit(cache=True)
def swap_in(w, g, p, t):
    """Bring page p back from guest swap: from the host's cache of the block when it is
    there, else from the disk. Frees the slot."""
    s = w.pg[p, PG_SLOT]
    if w.sb[s, SB_BLOCK] == BLK_CACHED:
        w.sb[s, SB_ACC] = 1
    else:
        t = disk_read(w, t, True)
        w.cnt[g, C_MAJOR] += 1
    w.sb[s, SB_USED] = 0
    top = w.gi[g, SLOT_TOP]
    w.sstk[w.gi[g, S_LO] + top] = s
    w.gi[g, SLOT_TOP] = top + 1
    w.pg[p, PG_SLOT] = -1
    w.gi[g, N_SWAPPED] -= 1
    w.cnt[g, C_SWAP_INS] += 1
    return t


# ---- guest reclaim ---------------------------------------------------------------------------
@njit(cache=True)
def evict(w, g, f, t):
    """Evict the page in frame f of guest g: drop a clean file page, write back a dirty
    one, write an anonymous one to guest swap. Returns the guest's time after."""
    fb = w.fb
    p = w.fr[f, FR_PAGE]
    kind = fb[f, FB_KIND]
    dirty = fb[f, FB_MOD]
    if (kind == ANON or dirty) and fb[f, FB_HSTATE] >= HOST_SWAPPED:
        # Double paging: to write the page out, the guest reads it, so the host first
        # brings it back from host swap.
        w.cnt[g, C_DOUBLE_PAGING] += 1
        t = host_fault_in(w, g, f, t)
    if kind == FILE:
        if dirty:
            disk_write(w, t, True)
            w.cnt[g, C_WRITEBACKS] += 1
        else:
            w.cnt[g, C_FILE_DROPS] += 1
        w.pb[p, PB_STATE] = ON_DISK
    else:
        top = w.gi[g, SLOT_TOP] - 1
        s = w.sstk[w.gi[g, S_LO] + top]
        w.gi[g, SLOT_TOP] = top
        t = swap_block_write(w, g, s, t)
        w.sb[s, SB_USED] = 1
        w.pg[p, PG_SLOT] = s
        w.pb[p, PB_STATE] = SWAPPED
        w.gi[g, N_SWAPPED] += 1
        w.cnt[g, C_SWAP_OUTS] += 1
    on_remove(w, g, f, w.gi[g, POLICY])
    w.pg[p, PG_FRAME] = -1
    w.fr[f, FR_PAGE] = -1
    fb[f, FB_STATE] = FREE
    fb[f, FB_REF] = 0
    fb[f, FB_MOD] = 0
    top = w.gi[g, FREE_TOP]
    w.stk[top + w.gi[g, F_LO], STK_FREE] = f
    w.gi[g, FREE_TOP] = top + 1
    w.gi[g, N_USED] -= 1
    w.gi[g, N_FREE] += 1
    w.cnt[g, C_EVICTIONS] += 1
    return t


@njit(cache=True)
def reclaim_one(w, g, t):
    """Evict one page of guest g, chosen by its policy. Returns (time, ok)."""
    allow_anon = w.gi[g, SLOT_TOP] > 0
    f = pick_victim(w, g, allow_anon)
    if f < 0:
        w.cnt[g, C_OOM] += 1
        return t, False
    if w.gi[g, POLICY] == ESC:
        w.cnt[g, C_ESC_00 + w.gi[g, ESC_CLASS]] += 1
    return evict(w, g, f, t), True


@njit(cache=True)
def guest_reclaim(w, g, t, low, high):
    """The guest's background reclaim (kswapd): under ``low`` free frames, up to ``high``."""
    if w.gi[g, N_FREE] >= low or w.gi[g, STALLED] != 0:
        return t
    while w.gi[g, N_FREE] < high:
        t, ok = reclaim_one(w, g, t)
        if not ok:
            break
    return t


@njit(cache=True)
def _pop_free(w, g):
    top = w.gi[g, FREE_TOP] - 1
    f = w.stk[top + w.gi[g, F_LO], STK_FREE]
    w.gi[g, FREE_TOP] = top
    w.gi[g, N_FREE] -= 1
    return f


# ---- the balloon -----------------------------------------------------------------------------
@njit(cache=True)
def balloon_inflate(w, g, n, t):
    """Take up to n frames into guest g's balloon, reclaiming pages when no frame is free
    (as the driver's allocations do), and hand them to the host. Returns (moved, time)."""
    moved = 0
    lo = w.gi[g, F_LO]
    for _ in range(n):
        if w.gi[g, FREE_TOP] == 0:
            writes = w.cnt[g, C_SWAP_OUTS] + w.cnt[g, C_WRITEBACKS]
            t, ok = reclaim_one(w, g, t)
            if not ok:
                break
            w.cnt[g, C_BALLOON_RECLAIMS] += 1
            w.cnt[g, C_BALLOON_WRITES] += w.cnt[g, C_SWAP_OUTS] + w.cnt[g, C_WRITEBACKS] - writes
        f = _pop_free(w, g)
        w.fb[f, FB_STATE] = BALLOONED
        host_release(w, g, f)
        top = w.gi[g, BAL_TOP]
        w.stk[top + lo, STK_BAL] = f
        w.gi[g, BAL_TOP] = top + 1
        w.gi[g, N_BALLOONED] += 1
        moved += 1
    return moved, t


@njit(cache=True)
def balloon_deflate(w, g, n):
    """Give up to n frames from guest g's balloon back to it (unbacked until touched)."""
    moved = 0
    lo = w.gi[g, F_LO]
    while moved < n and w.gi[g, BAL_TOP] > 0:
        top = w.gi[g, BAL_TOP] - 1
        f = w.stk[top + lo, STK_BAL]
        w.gi[g, BAL_TOP] = top
        w.fb[f, FB_STATE] = FREE
        ftop = w.gi[g, FREE_TOP]
        w.stk[ftop + lo, STK_FREE] = f
        w.gi[g, FREE_TOP] = ftop + 1
        w.gi[g, N_BALLOONED] -= 1
        w.gi[g, N_FREE] += 1
        moved += 1
    return moved


# ---- faults and the reference loop -----------------------------------------------------------
@njit(cache=True)
def _free_frame(w, g, t):
    """A free frame for guest g: reclaim one if needed, deflate the balloon by a batch if
    the guest has nothing left to reclaim and deflate-on-OOM is on. (-1, t) on OOM."""
    if w.gi[g, FREE_TOP] == 0:
        t, ok = reclaim_one(w, g, t)
        if not ok:
            if w.gi[g, DEFLATE_ON_OOM] == 1 and w.gi[g, BAL_TOP] > 0:
                balloon_deflate(w, g, BATCH_PAGES)
            else:
                return -1, t
    return _pop_free(w, g), t


@njit(cache=True)
def fault(w, g, p, wr, t):
    """Guest g touched page p, which is not resident. Returns the time the reference
    completes, or -1.0 when the guest is out of memory."""
    w.cnt[g, C_FAULTS] += 1
    t += w.gf[g, FAULT_MS]
    f, t = _free_frame(w, g, t)
    if f < 0:
        return -1.0
    state = w.pb[p, PB_STATE]
    hs = w.fb[f, FB_HSTATE]
    if hs == UNBACKED:
        host_back(w, g, f, t)
    elif hs != BACKED:
        # The host swapped this free frame out blindly; it reads the stale content back
        # only for the guest to overwrite it (VSwapper's stale and false swap reads).
        if state == UNTOUCHED:
            w.cnt[g, C_FALSE_READS] += 1
        else:
            w.cnt[g, C_STALE_READS] += 1
        t = host_fault_in(w, g, f, t)
    mod = wr
    if state == ON_DISK:
        t = disk_read(w, t, True)
        w.cnt[g, C_MAJOR] += 1
        w.cnt[g, C_FILE_READS] += 1
    elif state == SWAPPED:
        t = swap_in(w, g, p, t)
        mod = 1  # its swap slot is gone: the page has no other copy
    fb = w.fb
    w.fr[f, FR_PAGE] = p
    w.pg[p, PG_FRAME] = f
    w.pb[p, PB_STATE] = RESIDENT
    fb[f, FB_STATE] = USED
    fb[f, FB_KIND] = w.pb[p, PB_KIND]
    fb[f, FB_REF] = 1
    fb[f, FB_MOD] = mod
    fb[f, FB_HACC] = 1
    w.gi[g, N_USED] += 1
    on_load(w, g, f, w.gi[g, POLICY])
    return t


@njit(cache=True)
def run_guest(w, g, t_until):
    """Run guest g's references from its clock until ``t_until`` or its buffer runs out."""
    gi, fb, pg = w.gi, w.fb, w.pg
    t = w.gf[g, CLOCK_MS]
    pol = gi[g, POLICY]
    ref_ms = w.gf[g, REF_MS]
    pos = gi[g, REF_POS]
    end = gi[g, REF_LEN]
    plo = gi[g, P_LO]
    refs = 0
    while t < t_until and pos < end:
        p = plo + w.ref_page[g, pos]
        wr = w.ref_write[g, pos]
        pos += 1
        gi[g, VTIME] += 1
        t += ref_ms
        f = pg[p, PG_FRAME]
        if f >= 0:
            if fb[f, FB_HSTATE] != BACKED:
                t = host_fault_in(w, g, f, t)
            fb[f, FB_HACC] = 1
            if pol == ESC and fb[f, FB_REF] == 0:
                esc_note_reference(w, g, f)
            fb[f, FB_REF] = 1
            if wr:
                fb[f, FB_MOD] = 1
            if pol == LRU or pol == WS:
                on_hit(w, g, f, pol)
        else:
            t = fault(w, g, p, wr, t)
            if t < 0:
                gi[g, STALLED] = STALL_OOM
                t = t_until
                break
        refs += 1
    gi[g, REF_POS] = pos
    w.gf[g, CLOCK_MS] = t
    w.cnt[g, C_REFS] += refs
    return refs


@njit(cache=True)
def update_io_buffers(w, t):
    """Host memory held for guest I/O in flight follows the guest requests in the disk
    queue; growing it may force the host to swap, whose writes delay every guest request
    behind them, so more pile up (the swap storm's feedback loop)."""
    need = int(guest_requests_in_flight(w, t) * w.hi[H_IOBUF_PER_REQ_X1000] / 1000.0 + 0.5)
    cur = w.hi[H_IOBUF]
    if need > cur:
        for _ in range(need - cur):
            if w.hi[H_FREE] <= 0 and not host_evict_one(w, t):
                break
            w.hi[H_FREE] -= 1
            w.hi[H_IOBUF] += 1
    elif need < cur:
        w.hi[H_FREE] += cur - need
        w.hi[H_IOBUF] = need


QUANTUM_MS = 0.05  # a guest runs at most this far ahead of the others' clocks


@njit(cache=True)
def run_tick(w, t0, tick_ms, slices):
    """One tick of references. Guests run in the order of their clocks (the one furthest
    behind goes next, for at most QUANTUM_MS past the next one), so their requests reach
    the FIFO disk in time order. Host I/O buffers follow the queue every slice."""
    n = w.gi.shape[0]
    slice_ms = tick_ms / slices
    for g in range(n):
        w.gf[g, CLOCK_MS] = max(w.gf[g, CLOCK_MS], t0)
    for s in range(slices):
        t_end = t0 + (s + 1) * slice_ms
        while True:
            first = -1
            first_t = t_end
            second_t = t_end
            for g in range(n):
                if w.gi[g, STALLED] != 0 or w.gi[g, REF_POS] >= w.gi[g, REF_LEN]:
                    continue  # not runnable: its clock must not hold the others back
                t = w.gf[g, CLOCK_MS]
                if t < first_t:
                    second_t = first_t
                    first_t = t
                    first = g
                elif t < second_t:
                    second_t = t
            if first < 0:
                break
            run_guest(w, first, min(second_t + QUANTUM_MS, t_end))
        update_io_buffers(w, t_end)
    for g in range(n):
        if w.gf[g, CLOCK_MS] < t0 + tick_ms:
            w.gf[g, CLOCK_MS] = t0 + tick_ms  # out of references or stalled: idle till the end


# ---- warm start ------------------------------------------------------------------------------
@njit(cache=True)
def warm_load(w, g, pages, count):
    """Make the first ``count`` of ``pages`` (hottest first) resident in guest g without
    I/O: a warm start, the state a guest is in after running a while. They load coldest
    first, so recency-ordered policies see the hottest as most recent, and with R = 0, so
    the first references tell hot from cold. Returns pages loaded; the frame of
    ``pages[i]`` is F_LO + loaded - 1 - i."""
    plo = w.gi[g, P_LO]
    pol = w.gi[g, POLICY]
    n = min(count, len(pages), w.gi[g, FREE_TOP])
    for i in range(n - 1, -1, -1):
        p = plo + pages[i]
        f = _pop_free(w, g)
        w.fr[f, FR_PAGE] = p
        w.pg[p, PG_FRAME] = f
        w.pb[p, PB_STATE] = RESIDENT
        w.fb[f, FB_STATE] = USED
        w.fb[f, FB_KIND] = w.pb[p, PB_KIND]
        w.fb[f, FB_REF] = 0
        w.fb[f, FB_MOD] = 1 if w.pb[p, PB_KIND] == ANON else 0
        w.gi[g, N_USED] += 1
        on_load(w, g, f, pol)
        if pol == ESC:
            esc_note_cleared(w, g, f)
    return n


@njit(cache=True)
def warm_back(w, frames, host_floor):
    """Back guest frames with host memory in the given order while more than
    ``host_floor`` host frames stay free; the rest start out in host swap."""
    for i in range(len(frames)):
        f = frames[i]
        g = w.fr[f, FR_GUEST]
        if w.hi[H_FREE] > host_floor:
            w.hi[H_FREE] -= 1
            _resident_add(w, f)
            w.fb[f, FB_HSTATE] = BACKED
            w.gi[g, N_BACKED] += 1
        else:
            w.fb[f, FB_HSTATE] = HOST_SWAPPED
            w.hi[H_SWAP_USED] += 1
            w.gi[g, N_HSWAPPED] += 1

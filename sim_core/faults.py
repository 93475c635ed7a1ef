"""The reference loop and page faults: guests run their references against memory.

Each guest has its own clock (ms). A reference that hits costs ``REF_MS`` of CPU. A miss
is a fault, handled in an order that makes every wait retryable: first the guest gets a
free frame (direct reclaim, which may have to wait for writeback), then the host backs
that frame (host reclaim, which may have to wait for a host swap write), and only then is
anything changed. A step that must wait returns BLOCKED with the time to retry: the
guest sleeps until then and the reference runs again, so other guests run meanwhile and
the device sees requests in time order. Reads are synchronous: the guest's clock moves to
the read's completion.
Costs: minor fault ``MINOR_MS`` (zero-fill, swap cache, a page under writeback); major
fault ``MAJOR_MS`` plus the device wait; host fault ``HOST_FAULT_MS`` plus the device wait.
Dirtying a page over the dirty limit throttles the writer (``writeback``).
``run_tick`` interleaves the guests (the one whose clock is furthest behind runs next,
for at most QUANTUM_MS past the next one) and, every slice, reaps completed writes, runs
the flushers and kswapd of guests and host, and sizes the host's I/O buffers.
"""

from __future__ import annotations

import math

from sim_core.balloon import balloon_deflate
from sim_core.block_device import dev_queue_length, dev_read
from sim_core.guest_reclaim import direct_reclaim, kswapd
from sim_core.host_cache import (
    block_of_page,
    cache_drop_clean,
    cache_insert_clean,
    cached_read,
    host_flush,
)
from sim_core.host_memory import (
    FREED,
    NOTHING,
    back_frame,
    host_kswapd,
    host_note_write,
    host_reclaim_one,
    mark_written,
    oom_kill,
    oom_victim,
)
from sim_core.jit import njit_kernel, njit_leaf
from sim_core.policies import ESC, LRU, WS, esc_referenced, on_hit, on_load
from sim_core.psi import guest_stall, host_stall
from sim_core.state import (
    BACKED,
    BAL_TOP,
    C_BALLOON_REFAULTS,
    C_DIRECT_WAITS,
    C_FALSE_READS,
    C_FAULTS,
    C_FILE_READS,
    C_GUEST_REFAULTS,
    C_HOST_FAULTS,
    C_HOST_REFAULTS,
    C_MAJOR,
    C_MINOR,
    C_REFS,
    C_STALE_READS,
    C_SWAP_INS,
    C_THROTTLES,
    CLOCK_MS,
    DEFLATE_ON_OOM,
    EVICTOR_BALLOON,
    EVICTOR_GUEST,
    EVICTOR_NONE,
    F_LO,
    FB_HACC,
    FB_HDIRTY,
    FB_HSTATE,
    FB_KIND,
    FB_MIRROR,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FILE,
    FREE_TOP,
    H_CACHE_ON,
    H_FREE,
    H_IOBUF,
    H_IOBUF_PER_REQ_PPM,
    HC_DIRECT_WAITS,
    HC_READS,
    HC_SWAP_INS,
    HOST_DISCARDED,
    HOST_FAULT_MS,
    HOST_SWAPPED,
    HOST_WRITEBACK,
    IDLE_FROM,
    MAJOR_MS,
    MINOR_MS,
    N_DIRTY,
    N_RECLAIM,
    N_USED,
    P_LO,
    PB_EVICTOR,
    PB_KIND,
    PB_STATE,
    PG_FRAME,
    POLICY,
    RECLAIM,
    REF_LEN,
    REF_MS,
    REF_POS,
    RESIDENT,
    STALL_OOM,
    STALL_RUNS,
    STALLED,
    SWAPPED,
    UNBACKED,
    UNTOUCHED,
    USED,
    VTIME,
)
from sim_core.writeback import flush, next_io_completion, over_dirty_limit, pop_free, reap

DONE, BLOCKED, DEAD = 0, 1, 2
QUANTUM_MS = 0.05  # a guest runs at most this far ahead of the others' clocks
IDLE_RETRY_MS = 1.0  # a guest with nothing to wait for retries after this long


@njit_kernel
def _wake_time(w, t):
    """When a blocked guest should retry: the device's next completion."""
    nxt = next_io_completion(w)
    if math.isinf(nxt):
        return t + IDLE_RETRY_MS
    return max(nxt, t + 1e-6)


@njit_kernel
def _ensure_host_frame(w, g, t):
    """Make sure a host frame is free for guest g. (DONE, t) or (BLOCKED, wake) or
    (DEAD, t) when the host had to kill g itself."""
    while w.hi[H_FREE] <= 0:
        r = host_reclaim_one(w, t)
        if r == FREED:
            continue
        if r == NOTHING and math.isinf(next_io_completion(w)):
            victim = oom_victim(w)  # no frame, nothing to take, nothing on its way
            oom_kill(w, victim)
            if victim == g or victim < 0:
                return DEAD, t
            continue
        w.hcnt[HC_DIRECT_WAITS] += 1
        wake = _wake_time(w, t)
        host_stall(w, g, t, wake)
        return BLOCKED, wake
    return DONE, t


@njit_kernel
def _host_fault_in(w, g, f, t):
    """Read frame f back from host swap (or its disk block, if discarded): a host fault.
    The caller made sure a host frame is free. Returns the time the data is there."""
    w.cnt[g, C_HOST_FAULTS] += 1
    w.cnt[g, C_HOST_REFAULTS] += 1
    w.hcnt[HC_SWAP_INS] += 1
    w.hcnt[HC_READS] += 1
    start = t + w.gf[g, HOST_FAULT_MS]
    done = dev_read(w, start)
    host_stall(w, g, t, done)
    back_frame(w, f)
    w.fb[f, FB_HDIRTY] = 0  # its swap copy (kept: FB_HSLOT) is current
    return done


@njit_kernel
def _host_side(w, g, f, t):
    """Frame f is about to be used by guest g: it must be in host memory. (status, t)."""
    hs = w.fb[f, FB_HSTATE]
    if hs == BACKED:
        return DONE, t
    if hs == HOST_WRITEBACK:
        w.fb[f, FB_HSTATE] = BACKED  # the write still runs; the frame never left memory
        w.cnt[g, C_HOST_FAULTS] += 1
        return DONE, t + w.gf[g, HOST_FAULT_MS]
    status, t = _ensure_host_frame(w, g, t)
    if status != DONE:
        return status, t
    if hs == UNBACKED:
        back_frame(w, f)  # zero-filled by the host on first touch: no I/O
        return DONE, t + w.gf[g, HOST_FAULT_MS]
    return DONE, _host_fault_in(w, g, f, t)


@njit_kernel
def _guest_disk_read(w, g, p, swapped, start):
    """Guest g reads page p's disk block (its swap slot's, if ``swapped``) at ``start``:
    from the host page cache when it holds the block, else from the device - and then it
    is cached if a host frame is free or a clean cached block makes room. Returns when
    the data is there."""
    if w.hi[H_CACHE_ON] == 0:
        w.hcnt[HC_READS] += 1
        return dev_read(w, start)
    b = block_of_page(w, p, swapped)
    done = cached_read(w, g, b, start)
    if done >= 0.0:
        return done
    w.hcnt[HC_READS] += 1
    done = dev_read(w, start)
    if w.hi[H_FREE] > 0 or cache_drop_clean(w):
        cache_insert_clean(w, b)
    return done


@njit_kernel
def _throttle(w, g, t):
    """balance_dirty_pages: the writer sleeps until a write completes (kicking the flusher)."""
    flush(w, g, t)
    w.cnt[g, C_THROTTLES] += 1
    wake = _wake_time(w, t)
    guest_stall(w, g, t, wake)
    return wake


@njit_kernel
def _get_free_frame(w, g, t):
    """(DONE, t) with a free frame on guest g's stack, or (BLOCKED, wake) / (DEAD, t)."""
    if w.gi[g, FREE_TOP] > 0:
        return DONE, t
    r = direct_reclaim(w, g, t, EVICTOR_GUEST)
    if r == FREED:
        return DONE, t
    if r != NOTHING and not math.isinf(next_io_completion(w)):
        w.cnt[g, C_DIRECT_WAITS] += 1
        wake = _wake_time(w, t)
        guest_stall(w, g, t, wake)
        return BLOCKED, wake
    if w.gi[g, DEFLATE_ON_OOM] == 1 and w.gi[g, BAL_TOP] > 0:
        balloon_deflate(w, g, 256)
        return DONE, t
    return DEAD, t


@njit_kernel
def _remap(w, g, f, wr, t):
    """Touch of a page whose frame reclaim is writing out: a minor fault maps it back."""
    status, t = _host_side(w, g, f, t)
    if status != DONE:
        return status, t
    w.fb[f, FB_STATE] = USED
    w.gi[g, N_RECLAIM] -= 1
    w.gi[g, N_USED] += 1
    w.fb[f, FB_REF] = 1
    w.fb[f, FB_HACC] = 1
    on_load(w, g, f, w.gi[g, POLICY])
    w.cnt[g, C_MINOR] += 1
    w.cnt[g, C_FAULTS] += 1
    w.pb[w.fr[f], PB_EVICTOR] = EVICTOR_NONE
    return DONE, t + w.gf[g, MINOR_MS]


@njit_kernel
def fault(w, g, p, wr, t):
    """Guest g touched page p, which is not mapped. Returns (status, time)."""
    state = w.pb[p, PB_STATE]
    kind = w.pb[p, PB_KIND]
    if wr and kind == FILE and over_dirty_limit(w, g):
        return BLOCKED, _throttle(w, g, t)
    f = w.pg[p, PG_FRAME]
    if f >= 0:  # resident: under reclaim's writeback, or a frame the host took away
        if w.fb[f, FB_STATE] == RECLAIM:
            status, t = _remap(w, g, f, wr, t)
        else:
            status, t = _host_side(w, g, f, t)
        if status == DONE:
            _touch(w.fb, w.lk, w.gi, w.hi, w.esc00, w.fl, g, f, wr)
        return status, t
    status, t = _get_free_frame(w, g, t)
    if status != DONE:
        return status, t
    f = w.stk[w.gi[g, FREE_TOP] - 1 + w.gi[g, F_LO]]  # the frame it will get
    hs = w.fb[f, FB_HSTATE]
    if hs == HOST_SWAPPED or hs == HOST_DISCARDED:  # stale content read back for nothing
        if state == UNTOUCHED:
            w.cnt[g, C_FALSE_READS] += 1
        else:
            w.cnt[g, C_STALE_READS] += 1
    status, t = _host_side(w, g, f, t)
    if status != DONE:
        return status, t
    pop_free(w, g)
    evictor = w.pb[p, PB_EVICTOR]
    mod = wr
    mirror = 0
    if state == UNTOUCHED:
        t += w.gf[g, MINOR_MS]
        w.cnt[g, C_MINOR] += 1
    else:
        start = t + w.gf[g, MAJOR_MS]
        done = _guest_disk_read(w, g, p, state == SWAPPED, start)
        w.cnt[g, C_MAJOR] += 1
        if state == SWAPPED:
            w.cnt[g, C_SWAP_INS] += 1  # the slot stays with the page: the swap cache
        else:
            w.cnt[g, C_FILE_READS] += 1
        if evictor == EVICTOR_GUEST:
            w.cnt[g, C_GUEST_REFAULTS] += 1
        elif evictor == EVICTOR_BALLOON:
            w.cnt[g, C_BALLOON_REFAULTS] += 1
        if evictor != EVICTOR_NONE:
            guest_stall(w, g, t, done)  # a refault: the working set thrashes
        t = done
        mirror = 1 - wr
    w.pb[p, PB_EVICTOR] = EVICTOR_NONE
    fb = w.fb
    w.fr[f] = p
    w.pg[p, PG_FRAME] = f
    w.pb[p, PB_STATE] = RESIDENT
    fb[f, FB_STATE] = USED
    fb[f, FB_KIND] = kind
    fb[f, FB_REF] = 1
    fb[f, FB_MOD] = 0
    fb[f, FB_HACC] = 1
    host_note_write(w, f)  # the guest filled the frame: the host sees it written
    fb[f, FB_MIRROR] = mirror
    w.gi[g, N_USED] += 1
    on_load(w, g, f, w.gi[g, POLICY])
    if mod:
        _dirty(fb, w.gi, w.hi, g, f)
    w.cnt[g, C_FAULTS] += 1
    return DONE, t


@njit_leaf
def _dirty(fb, gi, hi, g, f):
    """The page in frame f was written."""
    if fb[f, FB_MOD] == 0 and fb[f, FB_KIND] == FILE:
        gi[g, N_DIRTY] += 1
    fb[f, FB_MOD] = 1
    mark_written(fb, hi, f)


@njit_leaf
def _touch(fb, lk, gi, hi, esc00, fl, g, f, wr):
    """R, M and the host's bits after a successful touch of a mapped frame. On the arrays
    the caller already holds: the hit path runs this once a reference."""
    pol = gi[g, POLICY]
    if pol == ESC and fb[f, FB_REF] == 0:
        esc_referenced(esc00, fb, gi, g, f)
    fb[f, FB_REF] = 1
    fb[f, FB_HACC] = 1
    if wr:
        _dirty(fb, gi, hi, g, f)
    if pol == LRU or pol == WS:
        on_hit(lk, gi, fl, g, f, pol)


@njit_kernel
def run_guest(w, g, t_until):
    """Run guest g's references from its clock until ``t_until``, its buffer runs out, or
    it must wait. Returns references completed."""
    gi, fb, pg, lk, hi, esc00, fl = w.gi, w.fb, w.pg, w.lk, w.hi, w.esc00, w.fl
    t = w.gf[g, CLOCK_MS]
    ref_ms = w.gf[g, REF_MS]
    pos = gi[g, REF_POS]
    end = gi[g, REF_LEN]
    plo = gi[g, P_LO]
    ref_page, ref_write = w.ref_page, w.ref_write
    refs = 0
    while t < t_until and pos < end:
        p = plo + ref_page[g, pos]
        wr = ref_write[g, pos]
        f = pg[p, PG_FRAME]
        if f >= 0 and fb[f, FB_STATE] == USED and fb[f, FB_HSTATE] == BACKED:
            if wr and fb[f, FB_MOD] == 0 and fb[f, FB_KIND] == FILE and over_dirty_limit(w, g):
                t = _throttle(w, g, t)
                break
            _touch(fb, lk, gi, hi, esc00, fl, g, f, wr)
        else:
            status, t = fault(w, g, p, wr, t)
            if status == BLOCKED:
                break
            if status == DEAD:
                if gi[g, STALLED] == STALL_RUNS:
                    gi[g, STALLED] = STALL_OOM
                t = t_until
                break
        pos += 1
        gi[g, VTIME] += 1
        t += ref_ms
        refs += 1
    gi[g, REF_POS] = pos
    w.gf[g, CLOCK_MS] = t
    w.cnt[g, C_REFS] += refs
    return refs


@njit_kernel
def update_io_buffers(w):
    """Host memory held for requests in flight follows the device queue; growing it may
    force the host to reclaim (the swap storm's feedback loop). Buffers the host cannot
    find a frame for come out of its reserves (mempools), so none is ever over-committed."""
    need = int(dev_queue_length(w) * w.hi[H_IOBUF_PER_REQ_PPM] / 1_000_000.0 + 0.999)
    cur = w.hi[H_IOBUF]
    while cur < need:
        if w.hi[H_FREE] <= 0 and host_reclaim_one(w, 0.0) != FREED:
            break
        w.hi[H_FREE] -= 1
        cur += 1
    if need < cur:
        w.hi[H_FREE] += cur - need
        cur = need
    w.hi[H_IOBUF] = cur


@njit_kernel
def background(w, t):
    """Every slice: finish completed writes, run the flushers and kswapd of every guest,
    the host's kswapd, and size the host's I/O buffers."""
    reap(w, t)
    for g in range(w.gi.shape[0]):
        if w.gi[g, STALLED] == STALL_RUNS:
            flush(w, g, t)
            kswapd(w, g, t, EVICTOR_GUEST)
    if w.hi[H_CACHE_ON] == 1:
        host_flush(w, t)  # before kswapd's swap-outs: dirty cache cannot go any other way
    host_kswapd(w, t)
    update_io_buffers(w)


@njit_kernel
def run_tick(w, t0, tick_ms, slices, quantum_ms=QUANTUM_MS):
    """One tick of references, in ``slices`` slices with background work between them; a
    guest runs at most ``quantum_ms`` past the next one (sampling dilates it with the
    per-event costs, so the skew between guests' clocks stays the same in events)."""
    n = w.gi.shape[0]
    slice_ms = tick_ms / slices
    t_end_tick = t0 + tick_ms
    for g in range(n):
        w.gf[g, CLOCK_MS] = max(w.gf[g, CLOCK_MS], t0)
        w.gf[g, IDLE_FROM] = t_end_tick
    for s in range(slices):
        t_end = t0 + (s + 1) * slice_ms
        while True:
            first = -1
            first_t = t_end
            second_t = t_end
            for g in range(n):
                if w.gi[g, STALLED] != STALL_RUNS or w.gi[g, REF_POS] >= w.gi[g, REF_LEN]:
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
            reap(w, first_t)
            run_guest(w, first, min(second_t + quantum_ms, t_end))
            if w.gi[first, REF_POS] >= w.gi[first, REF_LEN]:
                w.gf[first, IDLE_FROM] = min(w.gf[first, IDLE_FROM], w.gf[first, CLOCK_MS])
        background(w, t_end)
    for g in range(n):
        if w.gf[g, CLOCK_MS] < t_end_tick:
            w.gf[g, CLOCK_MS] = t_end_tick  # out of references or stalled: idle till the end

"""Trace replay: one cache of ``frames`` frames under one policy, demand paging only.

Every reference that misses is a fault (cold misses included); evicting a page whose M
bit is set costs one write-back. ``opt`` (Belady's MIN) is served here, since only a
replay knows the future: it evicts the resident page whose next use is farthest away.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from sim_core.policies import (
    CLOCK,
    ESC,
    FIFO,
    FILE_FIRST,
    GUEST_POLICIES,
    LRU,
    OPT,
    RANDOM,
    WS,
    clock_pick,
    esc_leave,
    esc_pick,
    file_first_pick,
    link_append,
    link_touch,
    link_unlink,
    list_pick,
    policy_id,
    random_pick,
    ws_pick,
)
from sim_core.state import (
    C_ESC_00,
    ESC_CLASS,
    ESC_N00,
    ESC_N01,
    F_HI,
    F_LO,
    FB_KIND,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FILE,
    FREE_TOP,
    HAND,
    LIST_HEAD,
    LIST_TAIL,
    LK_NEXT,
    LK_PREV,
    PB_KIND,
    PG_FRAME,
    USED,
    VTIME,
    WS_TAU,
    make_world,
)

_DENSE_LIMIT = 1 << 26  # page ids below this index arrays directly; larger ones are compacted


@dataclass
class ReplayResult:
    """What one replay measured."""

    policy: str
    frames: int
    references: int
    faults: int
    hits: int
    writebacks: int
    seconds: float  # replay time, compile excluded
    compile_seconds: float  # compiling (or loading the cached machine code) on first use
    refs_per_second: float
    evictions_by_class: dict[str, int] | None = None  # esc: "00", "01", "10", "11"

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.references if self.references else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"hit_ratio": self.hit_ratio}


_AHEAD = 8  # references ahead whose page-table entry the loop asks the CPU to fetch


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the CPU to bring ``arr[idx]`` into cache (LLVM's ``llvm.prefetch``: a hint that
    changes no value). The page table (a frame per page) is a random access per reference
    that misses L1; fetching it a few references early hides that wait."""

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep, data
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit(cache=True)
def next_uses(pages, n_pages):
    """For each reference, the index of the next reference to the same page (or len)."""
    n = len(pages)
    out = np.empty(n, np.int64)
    seen = np.full(n_pages, n, np.int64)
    for i in range(n - 1, -1, -1):
        p = pages[i]
        out[i] = seen[p]
        seen[p] = i
    return out


@njit(cache=True)
def _heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True)
def _heap_pop(keys, vals, size):
    """Remove the max; the caller reads keys[size-1]/vals[size-1] as the popped pair."""
    size -= 1
    keys[0], keys[size] = keys[size], keys[0]
    vals[0], vals[size] = vals[size], vals[0]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] > keys[left]:
            child = left + 1
        if keys[child] <= keys[i]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return size


def _make_loop(pol: int):
    """The replay loop over guest 0 of a world, compiled for policy ``pol`` alone.

    ``pol`` is a constant of the closure, so numba prunes the other policies' branches
    before it compiles: each policy gets a loop with only its own code (LRU runs a third
    faster than in a loop shared by all) and only the policies used get compiled. The
    loop returns (faults, hits, writebacks).

    Why the loop does not simply call the kernel's World hooks: at tens of millions of
    references a second, every call that passes the World and every read or write of a
    scalar in ``gi`` costs a visible share. So it works on contiguous 1-D copies of the
    frame and page columns it touches, keeps the hot scalars (hand, list head and tail,
    ESC's class counts, virtual time) in local variables, calls the policies' array-level
    ``*_pick`` / ``link_*`` / ``esc_*`` functions (the one definition of each policy's
    choice and bookkeeping, shared with the kernel's World wrappers) and writes
    everything back into the world at the end. Each step mirrors what the kernel's
    ``on_hit`` / ``pick_victim`` / ``on_remove`` / ``on_load`` do for one guest."""

    @njit(cache=True)
    def loop(w, pages, writes, nxt):
        fb, fr, pg, gi = w.fb, w.fr, w.pg, w.gi
        state = fb[:, FB_STATE].copy()
        kind = fb[:, FB_KIND].copy()
        ref = fb[:, FB_REF].copy()
        mod = fb[:, FB_MOD].copy()
        frame_page = fr.copy()
        prev = w.lk[:, LK_PREV].copy()  # one element unless the policy is LRU or FIFO
        nxt_link = w.lk[:, LK_NEXT].copy()
        page_frame = pg[:, PG_FRAME].copy()
        page_kind = w.pb[:, PB_KIND].copy()
        fl, bits, grng, stk = w.fl, w.esc00, w.grng, w.stk
        lo, hi = gi[0, F_LO], gi[0, F_HI]
        hand, head, tail = gi[0, HAND], gi[0, LIST_HEAD], gi[0, LIST_TAIL]
        n00, n01 = gi[0, ESC_N00], gi[0, ESC_N01]
        vtime, top, tau = gi[0, VTIME], gi[0, FREE_TOP], gi[0, WS_TAU]
        last_class = gi[0, ESC_CLASS]
        by_class = np.zeros(4, np.int64)
        faults = 0
        hits = 0
        writebacks = 0
        heap_cap = len(pages) + 1 if pol == OPT else 1
        hkeys = np.empty(heap_cap, np.int64)
        hvals = np.empty(heap_cap, np.int32)
        hsize = 0
        cur_next = np.zeros(fr.shape[0], np.int64)
        n = len(pages)
        for i in range(n):
            if i + _AHEAD < n:
                _prefetch(page_frame, pages[i + _AHEAD])
            p = pages[i]
            wr = writes[i]
            f = page_frame[p]
            if f >= 0:  # a hit: R (and M) bits, then the policy's own bookkeeping (on_hit)
                hits += 1
                if pol == ESC and ref[f] == 0:
                    n00, n01 = esc_leave(bits, f, mod[f], n00, n01)
                ref[f] = 1
                if wr:
                    mod[f] = 1
                if pol == LRU:
                    vtime = i
                    head, tail = link_touch(prev, nxt_link, head, tail, f)
                elif pol == WS:
                    vtime = i
                    fl[f] = i
                elif pol == OPT:
                    cur_next[f] = nxt[i]
                    hsize = _heap_push(hkeys, hvals, hsize, nxt[i], f)
                continue
            faults += 1
            vtime = i
            if top > 0:
                top -= 1
                f = stk[top]
            else:  # pick_victim, then on_remove
                if pol == CLOCK:
                    f, hand = clock_pick(state, kind, ref, hand, lo, hi, True)
                elif pol == ESC:
                    f, cls, hand, n00, n01 = esc_pick(
                        state, kind, ref, mod, bits, hand, lo, hi, n00, n01, True
                    )
                    by_class[cls] += 1
                    last_class = cls
                elif pol == LRU or pol == FIFO:
                    f = list_pick(state, kind, nxt_link, head, True)
                elif pol == RANDOM:
                    f = random_pick(state, kind, grng, 0, lo, hi, True)
                elif pol == FILE_FIRST:
                    f, hand = file_first_pick(state, kind, ref, hand, lo, hi, True)
                elif pol == WS:
                    f, hand = ws_pick(state, kind, ref, fl, hand, lo, hi, vtime, tau, True)
                else:  # opt: the resident page whose next use is farthest (lazy max-heap)
                    f = -1
                    while hsize > 0:
                        hsize = _heap_pop(hkeys, hvals, hsize)
                        cand = hvals[hsize]
                        if cur_next[cand] == hkeys[hsize]:
                            f = cand
                            break
                if mod[f]:
                    writebacks += 1
                if pol == LRU or pol == FIFO:
                    head, tail = link_unlink(prev, nxt_link, head, tail, f)
                elif pol == ESC and ref[f] == 0:
                    n00, n01 = esc_leave(bits, f, mod[f], n00, n01)
                page_frame[frame_page[f]] = -1
            frame_page[f] = p  # load, then on_load
            page_frame[p] = f
            state[f] = USED
            kind[f] = page_kind[p]
            ref[f] = 1
            mod[f] = wr
            if pol == LRU or pol == FIFO:
                head, tail = link_append(prev, nxt_link, head, tail, f)
            if pol == WS:
                fl[f] = vtime
            if pol == OPT:
                cur_next[f] = nxt[i]
                hsize = _heap_push(hkeys, hvals, hsize, nxt[i], f)
        fb[:, FB_STATE] = state
        fb[:, FB_KIND] = kind
        fb[:, FB_REF] = ref
        fb[:, FB_MOD] = mod
        fr[:] = frame_page
        w.lk[:, LK_PREV] = prev
        w.lk[:, LK_NEXT] = nxt_link
        pg[:, PG_FRAME] = page_frame
        gi[0, HAND], gi[0, LIST_HEAD], gi[0, LIST_TAIL] = hand, head, tail
        gi[0, ESC_N00], gi[0, ESC_N01], gi[0, ESC_CLASS] = n00, n01, last_class
        gi[0, VTIME], gi[0, FREE_TOP] = vtime, top
        for c in range(4):
            w.cnt[0, C_ESC_00 + c] += by_class[c]
        return faults, hits, writebacks

    return loop


_LOOPS = {info.id: _make_loop(info.id) for info in GUEST_POLICIES.values()}  # by policy id


def _dense_pages(pages: np.ndarray) -> tuple[np.ndarray, int]:
    if len(pages) == 0:
        return pages.astype(np.int32), 0
    if pages.min() < 0:
        raise ValueError(f"negative page id {int(pages.min())} in the trace")
    top = int(pages.max())
    if top < _DENSE_LIMIT:
        return pages.astype(np.int32, copy=False), top + 1
    uniq, inverse = np.unique(pages, return_inverse=True)
    return inverse.astype(np.int32), len(uniq)


_compiled: set[str] = set()


def _warm_up(policy: str) -> float:
    """Compile (or load from numba's cache) the replay loop of ``policy`` once per
    process; return the seconds it took."""
    if policy in _compiled:
        return 0.0
    start = time.perf_counter()
    tiny = np.array([0, 1, 2, 0, 3, 1], np.int32)
    _replay_arrays(tiny, np.zeros(len(tiny), np.uint8), 4, 2, policy, 0, None, 1)
    _compiled.add(policy)
    return time.perf_counter() - start


def _replay_arrays(pages, writes, n_pages, frames, policy, seed, kinds, tau):
    pol = policy_id(policy)
    page_kinds = np.full(n_pages, FILE, np.int8) if kinds is None else kinds
    world = make_world([frames], [page_kinds], [0], [pol], seed, host_frames=0)
    world.gi[0, WS_TAU] = tau
    nxt = next_uses(pages, n_pages) if pol == OPT else np.zeros(1, np.int64)
    start = time.perf_counter()
    faults, hits, writebacks = _LOOPS[pol](world, pages, writes, nxt)
    return world, int(faults), int(hits), int(writebacks), time.perf_counter() - start


def replay(
    pages: np.ndarray,
    frames: int,
    policy: str,
    writes: np.ndarray | None = None,
    seed: int = 0,
    kinds: np.ndarray | None = None,
    ws_tau: int | None = None,
) -> ReplayResult:
    """Replay page references through a cache of ``frames`` frames under ``policy``.

    ``pages``: non-negative page ids (any integers; sparse ids are compacted).
    ``writes``: 0/1 per reference (default all reads). ``kinds``: ANON/FILE per dense page
    id (default FILE: a trace is a cache's view). ``ws_tau``: the ``ws`` window in
    references (default 4 x frames).
    """
    policy_id(policy)  # unknown policy: ValueError before any work
    if frames <= 0:
        raise ValueError(f"frames must be > 0, got {frames}")
    pages = np.asarray(pages)
    if pages.ndim != 1 or not np.issubdtype(pages.dtype, np.integer):
        raise ValueError("pages must be a 1-D array of integer page ids")
    dense, n_pages = _dense_pages(pages)
    if writes is None:
        writes_u8 = np.zeros(len(dense), np.uint8)
    else:
        writes_u8 = (np.asarray(writes) != 0).astype(np.uint8)  # any non-zero is a write
        if len(writes_u8) != len(dense):
            raise ValueError("writes must have one entry per reference")
    compile_seconds = _warm_up(policy)
    tau = 4 * frames if ws_tau is None else int(ws_tau)
    world, faults, hits, writebacks, seconds = _replay_arrays(
        dense, writes_u8, max(n_pages, 1), frames, policy, seed, kinds, tau
    )
    by_class = None
    if policy == "esc":
        counts = world.cnt[0, C_ESC_00 : C_ESC_00 + 4]
        by_class = {k: int(v) for k, v in zip(("00", "01", "10", "11"), counts, strict=True)}
    refs = len(dense)
    return ReplayResult(
        policy=policy,
        frames=frames,
        references=refs,
        faults=faults,
        hits=hits,
        writebacks=writebacks,
        seconds=seconds,
        compile_seconds=compile_seconds,
        refs_per_second=refs / seconds if seconds > 0 else 0.0,
        evictions_by_class=by_class,
    )

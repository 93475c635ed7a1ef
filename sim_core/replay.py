"""Trace replay: one cache of ``frames`` frames under one policy, demand paging only.

Every reference that misses is a fault (cold misses included); evicting a page whose M
bit is set costs one write-back. ``opt`` (Belady's MIN) is served here, since only a
replay knows the future: it evicts the resident page whose next use is farthest away.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

from sim_core.policies import (
    ESC,
    LRU,
    OPT,
    WS,
    esc_note_reference,
    on_hit,
    on_load,
    on_remove,
    pick_victim,
    policy_id,
)
from sim_core.state import (
    C_ESC_00,
    ESC_CLASS,
    FB_KIND,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FILE,
    FR_PAGE,
    FREE_TOP,
    PB_KIND,
    PG_FRAME,
    STK_FREE,
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


@njit(cache=True)
def _replay(w, pages, writes, pol, nxt):
    """The replay loop over guest 0 of a world. Returns (faults, hits, writebacks)."""
    fb, fr, pg, gi = w.fb, w.fr, w.pg, w.gi
    faults = 0
    hits = 0
    writebacks = 0
    use_opt = pol == OPT
    heap_cap = len(pages) + 1 if use_opt else 1
    hkeys = np.empty(heap_cap, np.int64)
    hvals = np.empty(heap_cap, np.int32)
    hsize = 0
    cur_next = np.zeros(fr.shape[0], np.int64)
    for i in range(len(pages)):
        p = pages[i]
        wr = writes[i]
        f = pg[p, PG_FRAME]
        if f >= 0:
            hits += 1
            if pol == ESC and fb[f, FB_REF] == 0:
                esc_note_reference(w, 0, f)
            fb[f, FB_REF] = 1
            if wr:
                fb[f, FB_MOD] = 1
            if pol == LRU or pol == WS:
                gi[0, VTIME] = i
                on_hit(w, 0, f, pol)
            elif use_opt:
                cur_next[f] = nxt[i]
                hsize = _heap_push(hkeys, hvals, hsize, nxt[i], f)
            continue
        faults += 1
        gi[0, VTIME] = i
        top = gi[0, FREE_TOP]
        if top > 0:
            f = w.stk[top - 1, STK_FREE]
            gi[0, FREE_TOP] = top - 1
        else:
            if use_opt:  # the resident page whose next use is farthest (lazy max-heap)
                f = -1
                while hsize > 0:
                    hsize = _heap_pop(hkeys, hvals, hsize)
                    cand = hvals[hsize]
                    if cur_next[cand] == hkeys[hsize]:
                        f = cand
                        break
            else:
                f = pick_victim(w, 0, True)
                if pol == ESC:
                    w.cnt[0, C_ESC_00 + gi[0, ESC_CLASS]] += 1
            if fb[f, FB_MOD]:
                writebacks += 1
            on_remove(w, 0, f, pol)
            pg[fr[f, FR_PAGE], PG_FRAME] = -1
        fr[f, FR_PAGE] = p
        pg[p, PG_FRAME] = f
        fb[f, FB_STATE] = USED
        fb[f, FB_KIND] = w.pb[p, PB_KIND]
        fb[f, FB_REF] = 1
        fb[f, FB_MOD] = wr
        on_load(w, 0, f, pol)
        if use_opt:
            cur_next[f] = nxt[i]
            hsize = _heap_push(hkeys, hvals, hsize, nxt[i], f)
    return faults, hits, writebacks


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


_compiled = False


def _warm_up() -> float:
    """Compile (or load from cache) the replay kernels once per process; return seconds."""
    global _compiled
    if _compiled:
        return 0.0
    start = time.perf_counter()
    tiny = np.array([0, 1, 2, 0, 3, 1], np.int32)
    for name in ("esc", "opt"):
        _replay_arrays(tiny, np.zeros(len(tiny), np.uint8), 4, 2, name, 0, None, 1)
    _compiled = True
    return time.perf_counter() - start


def _replay_arrays(pages, writes, n_pages, frames, policy, seed, kinds, tau):
    pol = policy_id(policy)
    page_kinds = np.full(n_pages, FILE, np.int8) if kinds is None else kinds
    world = make_world([frames], [page_kinds], [0], [pol], seed, host_frames=0)
    world.gi[0, WS_TAU] = tau
    nxt = next_uses(pages, n_pages) if pol == OPT else np.zeros(1, np.int64)
    start = time.perf_counter()
    faults, hits, writebacks = _replay(world, pages, writes, pol, nxt)
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
        writes_u8 = np.asarray(writes).astype(np.uint8)
        if len(writes_u8) != len(dense):
            raise ValueError("writes must have one entry per reference")
    compile_seconds = _warm_up()
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

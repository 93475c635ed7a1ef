"""Guest page replacement: each policy only picks a victim; the kernel owns the eviction.

As in cachetools' ``Cache.popitem``, the base (``kernel.evict`` / ``replay``) runs the
loop and does the bookkeeping; a policy answers one question: which resident frame of
guest ``g`` goes next. Policies are compiled functions over the shared ``World`` arrays,
dispatched by the integer id that ``GUEST_POLICIES`` (the one registry) assigns a name.

Every victim function takes ``allow_anon``: when the guest's swap is full, anonymous
pages cannot go, and the policy must pick among file pages (or return -1). Compiled
functions take the ``World`` (see ``sim_core.state``) and a guest index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from sim_core.fastrng import next_below
from sim_core.state import (
    ANON,
    ESC_CLASS,
    ESC_N00,
    F_HI,
    F_LO,
    FB_KIND,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FR_NEXT,
    FR_PREV,
    HAND,
    LIST_HEAD,
    LIST_TAIL,
    POLICY,
    POLICY_IDS,
    USED,
    VTIME,
    WS_TAU,
)

ESC, CLOCK, LRU, FIFO, RANDOM, FILE_FIRST, WS, OPT = (
    POLICY_IDS[n] for n in ("esc", "clock", "lru", "fifo", "random", "file_first", "ws", "opt")
)


@dataclass(frozen=True)
class PolicyInfo:
    """A registered replacement policy."""

    name: str
    id: int
    summary: str
    replay_only: bool = False


GUEST_POLICIES: dict[str, PolicyInfo] = {
    p.name: p
    for p in (
        PolicyInfo("esc", ESC, "Enhanced Second Chance over the (R, M) classes"),
        PolicyInfo("clock", CLOCK, "CLOCK (second chance) on the reference bit"),
        PolicyInfo("lru", LRU, "least recently used, exact"),
        PolicyInfo("fifo", FIFO, "first in, first out"),
        PolicyInfo("random", RANDOM, "uniformly random resident page"),
        PolicyInfo("file_first", FILE_FIRST, "naive: page cache always goes first"),
        PolicyInfo("ws", WS, "WSClock: only pages outside the working set W(t, tau), cold first"),
        PolicyInfo("opt", OPT, "Belady's MIN: evict the page used farthest in the future", True),
    )
}


def policy_id(name: str) -> int:
    """The compiled id of a policy name; ValueError names the known ones."""
    try:
        return GUEST_POLICIES[name].id
    except KeyError:
        known = ", ".join(GUEST_POLICIES)
        raise ValueError(f"unknown policy '{name}' (known: {known})") from None


# ---- the LRU / FIFO list ---------------------------------------------------------------------
@njit(cache=True)
def list_append(w, g, f):
    """Put frame f at the tail (most recent end) of guest g's list."""
    fr, gi = w.fr, w.gi
    tail = gi[g, LIST_TAIL]
    fr[f, FR_PREV] = tail
    fr[f, FR_NEXT] = -1
    if tail >= 0:
        fr[tail, FR_NEXT] = f
    else:
        gi[g, LIST_HEAD] = f
    gi[g, LIST_TAIL] = f


@njit(cache=True)
def list_unlink(w, g, f):
    """Take frame f out of guest g's list."""
    fr, gi = w.fr, w.gi
    prev = fr[f, FR_PREV]
    nxt = fr[f, FR_NEXT]
    if prev >= 0:
        fr[prev, FR_NEXT] = nxt
    else:
        gi[g, LIST_HEAD] = nxt
    if nxt >= 0:
        fr[nxt, FR_PREV] = prev
    else:
        gi[g, LIST_TAIL] = prev
    fr[f, FR_PREV] = -1
    fr[f, FR_NEXT] = -1


# ---- hooks the kernel calls ------------------------------------------------------------------
# ---- ESC's class bookkeeping -----------------------------------------------------------------
# ESC's first pass looks for the next (0, 0) frame after the hand. When such frames are rare
# a plain scan walks the whole memory on every fault, so ESC keeps them in a bitset (one bit
# a frame) and counts of the (0, 0) and (0, 1) classes; the victim is the same one a scan
# would find.
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True)
def _lowest_bit(x):
    """Index of the lowest set bit of a non-zero uint64."""
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        mask = (_ONE << np.uint64(shift)) - _ONE
        if x & mask == 0:
            x >>= np.uint64(shift)
            n += shift
    return n


@njit(cache=True)
def _first_bit(bits, a, b):
    """First set bit in [a, b), or -1."""
    if a >= b:
        return -1
    w = a >> 6
    last = (b - 1) >> 6
    x = bits[w] & (_ALL << np.uint64(a & 63))
    while True:
        if w == last:
            top = (b - 1) & 63
            if top < 63:
                x &= (_ONE << np.uint64(top + 1)) - _ONE
        if x != 0:
            return (w << 6) + _lowest_bit(x)
        if w == last:
            return -1
        w += 1
        x = bits[w]


@njit(cache=True)
def esc_set(bits, f, on):
    word = f >> 6
    bit = _ONE << np.uint64(f & 63)
    if on:
        bits[word] |= bit
    else:
        bits[word] &= ~bit


@njit(cache=True)
def esc_note_reference(w, g, f):
    """Frame f's R bit is about to go 0 -> 1: it leaves class (0, M)."""
    mod = w.fb[f, FB_MOD]
    w.gi[g, ESC_N00 + mod] -= 1
    if mod == 0:
        esc_set(w.esc00, f, False)


@njit(cache=True)
def esc_note_cleared(w, g, f):
    """The hand just cleared frame f's R bit: it joins class (0, M)."""
    mod = w.fb[f, FB_MOD]
    w.gi[g, ESC_N00 + mod] += 1
    if mod == 0:
        esc_set(w.esc00, f, True)


@njit(cache=True)
def on_hit(w, g, f, pol):
    """Bookkeeping of a hit beyond the R/M bits, for the policies that keep order (the
    caller sets R and M, and calls esc_note_reference first when R was 0 under ESC)."""
    if pol == LRU:
        if w.gi[g, LIST_TAIL] != f:
            list_unlink(w, g, f)
            list_append(w, g, f)
    elif pol == WS:
        w.fl[f] = w.gi[g, VTIME]


@njit(cache=True)
def on_load(w, g, f, pol):
    """A page was just loaded into frame f."""
    if pol == LRU or pol == FIFO:
        list_append(w, g, f)
    w.fl[f] = w.gi[g, VTIME]


@njit(cache=True)
def on_remove(w, g, f, pol):
    """Frame f is about to lose its page."""
    if pol == LRU or pol == FIFO:
        list_unlink(w, g, f)
    elif pol == ESC and w.fb[f, FB_REF] == 0:
        esc_note_reference(w, g, f)  # leaves its (0, M) class the same way


# ---- victim selection ------------------------------------------------------------------------
@njit(cache=True)
def _eligible(fb, f, allow_anon):
    return fb[f, FB_STATE] == USED and (allow_anon or fb[f, FB_KIND] != ANON)


@njit(cache=True)
def _advance(gi, g, f):
    f += 1
    return gi[g, F_LO] if f >= gi[g, F_HI] else f


@njit(cache=True)
def victim_esc(w, g, allow_anon):
    """Enhanced Second Chance. Round 1: a pass for (R,M) = (0,0) touching nothing, then a
    pass for (0,1) clearing R as the hand goes. Round 2 repeats both (every R is clear now,
    so it finds a page that was (1,0), else (1,1)). Returns (frame, class 0..3)."""
    fb, gi, bits = w.fb, w.gi, w.esc00
    lo, hi = gi[g, F_LO], gi[g, F_HI]
    n = hi - lo
    for rnd in range(2):
        if gi[g, ESC_N00] > 0:  # pass for (0, 0): the bitset finds the next one after the hand
            hand = gi[g, HAND]
            f = _first_bit(bits, hand, hi)
            while f >= 0 and not _eligible(fb, f, allow_anon):
                f = _first_bit(bits, f + 1, hi)
            if f < 0:
                f = _first_bit(bits, lo, hand)
                while f >= 0 and not _eligible(fb, f, allow_anon):
                    f = _first_bit(bits, f + 1, hand)
            if f >= 0:
                gi[g, HAND] = _advance(gi, g, f)
                return f, rnd * 2
        f = gi[g, HAND]  # pass for (0, 1), clearing R bits on the way
        for _ in range(n):
            if _eligible(fb, f, allow_anon):
                if fb[f, FB_REF] == 0:
                    if fb[f, FB_MOD] == 1:
                        gi[g, HAND] = _advance(gi, g, f)
                        return f, rnd * 2 + 1
                else:
                    fb[f, FB_REF] = 0
                    esc_note_cleared(w, g, f)
            f = _advance(gi, g, f)
    return -1, -1


@njit(cache=True)
def victim_clock(w, g, allow_anon):
    """CLOCK: the hand clears R bits until it finds a frame with R = 0."""
    fb, gi = w.fb, w.gi
    n = gi[g, F_HI] - gi[g, F_LO]
    f = gi[g, HAND]
    for _ in range(2 * n + 1):
        if _eligible(fb, f, allow_anon):
            if fb[f, FB_REF] == 0:
                gi[g, HAND] = _advance(gi, g, f)
                return f
            fb[f, FB_REF] = 0
        f = _advance(gi, g, f)
    return -1


@njit(cache=True)
def victim_list_head(w, g, allow_anon):
    """LRU and FIFO: the head of the list is the least recently used / oldest loaded."""
    f = w.gi[g, LIST_HEAD]
    while f >= 0 and not _eligible(w.fb, f, allow_anon):
        f = w.fr[f, FR_NEXT]
    return f


@njit(cache=True)
def victim_random(w, g, allow_anon):
    """A uniformly random resident frame (rejection sampling, then a scan as a fallback)."""
    fb, gi, grng = w.fb, w.gi, w.grng
    lo, hi = gi[g, F_LO], gi[g, F_HI]
    for _ in range(64):
        f = lo + next_below(grng, g, hi - lo)
        if _eligible(fb, f, allow_anon):
            return f
    f = lo + next_below(grng, g, hi - lo)
    for _ in range(hi - lo):
        if _eligible(fb, f, allow_anon):
            return f
        f = _advance(gi, g, f)
    return -1


@njit(cache=True)
def victim_file_first(w, g, allow_anon):
    """Naive page-cache-first: the next file page under the hand, hot or not; only when
    there is none, CLOCK over anonymous memory."""
    fb, gi = w.fb, w.gi
    n = gi[g, F_HI] - gi[g, F_LO]
    f = gi[g, HAND]
    for _ in range(n):
        if fb[f, FB_STATE] == USED and fb[f, FB_KIND] != ANON:
            gi[g, HAND] = _advance(gi, g, f)
            return f
        f = _advance(gi, g, f)
    return victim_clock(w, g, allow_anon)


WS_SCAN = 256  # frames WSClock looks at before it settles for the coldest one seen


@njit(cache=True)
def victim_ws(w, g, allow_anon):
    """WSClock (Carr & Hennessy): a page referenced since the hand last passed gets its
    last-use time refreshed; a page idle for more than tau references is outside the
    working set W(t, tau) and goes. When none of the next WS_SCAN frames is outside (the
    working set exceeds memory), the coldest of them goes: cold first, bounded work."""
    fb, fl, gi = w.fb, w.fl, w.gi
    n = min(gi[g, F_HI] - gi[g, F_LO], WS_SCAN)
    now = gi[g, VTIME]
    tau = gi[g, WS_TAU]
    f = gi[g, HAND]
    coldest = -1
    coldest_last = now + 1
    for _ in range(n):
        if _eligible(fb, f, allow_anon):
            if fb[f, FB_REF] != 0:
                fb[f, FB_REF] = 0
                fl[f] = now
            elif now - fl[f] > tau:
                gi[g, HAND] = _advance(gi, g, f)
                return f
            if fl[f] < coldest_last:
                coldest_last = fl[f]
                coldest = f
        f = _advance(gi, g, f)
    if coldest < 0 and not allow_anon:
        return victim_clock(w, g, allow_anon)  # no file page in the window: look on
    if coldest >= 0:
        gi[g, HAND] = _advance(gi, g, coldest)
    return coldest


@njit(cache=True)
def pick_victim(w, g, allow_anon):
    """The victim frame of guest g under its policy (-1 when no eligible frame exists).
    ESC leaves the victim's class (0..3 for 00, 01, 10, 11) in gi[g, ESC_CLASS]."""
    pol = w.gi[g, POLICY]
    if pol == ESC:
        f, cls = victim_esc(w, g, allow_anon)
        w.gi[g, ESC_CLASS] = cls
        return f
    if pol == CLOCK:
        return victim_clock(w, g, allow_anon)
    if pol == LRU or pol == FIFO:
        return victim_list_head(w, g, allow_anon)
    if pol == RANDOM:
        return victim_random(w, g, allow_anon)
    if pol == FILE_FIRST:
        return victim_file_first(w, g, allow_anon)
    if pol == WS:
        return victim_ws(w, g, allow_anon)
    return -1  # OPT is served by the replay loop, which knows the future

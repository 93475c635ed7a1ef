"""Guest page replacement: each policy only picks a victim; the kernel owns the eviction.

As in cachetools' ``Cache.popitem``, the base (``kernel.evict`` / ``replay``) runs the
loop and does the bookkeeping; a policy answers one question: which resident frame of
guest ``g`` goes next. Policies are compiled functions over the shared ``World`` arrays,
dispatched by the integer id that ``GUEST_POLICIES`` (the one registry) assigns a name.

Every victim function takes ``allow_anon``: when the guest's swap is full, anonymous
pages cannot go, and the policy must pick among file pages (or return -1).

Each policy's logic is written once, in a ``*_pick`` function (and the ``link_*`` /
``esc_*`` bookkeeping helpers) over 1-D arrays, one per frame field, with the hot scalars
(hand, list head and tail, ESC's class counts) passed in and returned. The kernel calls
them through the ``World`` wrappers (``victim_*``, ``on_*``: column views of ``w.fb`` /
``w.lk``, scalars read from and written back to ``gi``); the trace replay calls them on
contiguous copies with the scalars in local variables, which is what lets it run at
tens of millions of references a second (going through the World on every reference
costs it half its speed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.fastrng import next_below
from sim_core.jit import njit_kernel, njit_leaf
from sim_core.state import (
    ANON,
    ESC_CLASS,
    ESC_N00,
    ESC_N01,
    F_HI,
    F_LO,
    FB_KIND,
    FB_MOD,
    FB_REF,
    FB_STATE,
    HAND,
    LIST_HEAD,
    LIST_TAIL,
    LK_NEXT,
    LK_PREV,
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


# ---- frame arrays ------------------------------------------------------------------------------
# ``state``, ``kind``, ``ref``, ``mod`` are the FB_STATE / FB_KIND / FB_REF / FB_MOD columns,
# ``prev`` / ``nxt`` the LK_PREV / LK_NEXT links; ``lo``, ``hi`` bound the guest's frames.
@njit_leaf
def eligible(state, kind, f, allow_anon):
    """Frame f holds a page the policy may evict."""
    return state[f] == USED and (allow_anon or kind[f] != ANON)


@njit_leaf
def step(f, lo, hi):
    """The frame after f, wrapping around [lo, hi)."""
    f += 1
    return lo if f >= hi else f


# ---- the LRU / FIFO list (head = next victim) -----------------------------------------------
@njit_leaf
def link_append(prev, nxt, head, tail, f):
    """Put frame f at the tail (most recent end) of the list; returns (head, tail)."""
    prev[f] = tail
    nxt[f] = -1
    if tail >= 0:
        nxt[tail] = f
    else:
        head = f
    return head, f


@njit_leaf
def link_unlink(prev, nxt, head, tail, f):
    """Take frame f out of the list; returns (head, tail)."""
    before = prev[f]
    after = nxt[f]
    if before >= 0:
        nxt[before] = after
    else:
        head = after
    if after >= 0:
        prev[after] = before
    else:
        tail = before
    prev[f] = -1
    nxt[f] = -1
    return head, tail


@njit_leaf
def link_touch(prev, nxt, head, tail, f):
    """LRU on a hit: frame f becomes the most recent; returns (head, tail)."""
    if tail != f:
        head, tail = link_unlink(prev, nxt, head, tail, f)
        head, tail = link_append(prev, nxt, head, tail, f)
    return head, tail


@njit_kernel
def list_append(w, g, f):
    """Put frame f at the tail (most recent end) of guest g's list."""
    lk, gi = w.lk, w.gi
    head, tail = link_append(lk[:, LK_PREV], lk[:, LK_NEXT], gi[g, LIST_HEAD], gi[g, LIST_TAIL], f)
    gi[g, LIST_HEAD] = head
    gi[g, LIST_TAIL] = tail


@njit_kernel
def list_unlink(w, g, f):
    """Take frame f out of guest g's list."""
    lk, gi = w.lk, w.gi
    head, tail = link_unlink(lk[:, LK_PREV], lk[:, LK_NEXT], gi[g, LIST_HEAD], gi[g, LIST_TAIL], f)
    gi[g, LIST_HEAD] = head
    gi[g, LIST_TAIL] = tail


# ---- ESC's class bookkeeping -----------------------------------------------------------------
# ESC's first pass looks for the next (0, 0) frame after the hand. When such frames are rare
# a plain scan walks the whole memory on every fault, so ESC keeps them in a bitset (one bit
# a frame) and counts of the (0, 0) and (0, 1) classes; the victim is the same one a scan
# would find.
_ONE = np.uint64(1)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
_TWO, _THREE, _FOUR, _SIX = np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(6)


@njit_leaf
def _lowest_bit(x):
    """Index of the lowest set bit of a non-zero uint64."""
    n = 0
    for shift in (32, 16, 8, 4, 2, 1):
        mask = (_ONE << np.uint64(shift)) - _ONE
        if x & mask == 0:
            x >>= np.uint64(shift)
            n += shift
    return n


@njit_leaf
def _first_bit(bits, a, b):
    """First set bit in [a, b), or -1. ESC's (0, 0) pass often walks most of the bitset
    (the frames it just cleared lie behind the hand), so the word loop tests four words at
    a time, with unsigned indices (no negative-index wraparound check)."""
    if a >= b:
        return -1
    w = np.uint64(a >> 6)
    last = np.uint64((b - 1) >> 6)
    x = bits[w] & (_ALL << np.uint64(a & 63))
    if x == 0:
        w += _ONE
        while (
            w + _THREE <= last
            and (bits[w] | bits[w + _ONE] | bits[w + _TWO] | bits[w + _THREE]) == 0
        ):
            w += _FOUR
        while True:
            if w > last:
                return -1
            x = bits[w]
            if x != 0:
                break
            w += _ONE
    f = np.int64(w << _SIX) + _lowest_bit(x)
    return f if f < b else -1  # the first set bit at or after a lies past b: none in [a, b)


@njit_leaf
def esc_set(bits, f, on):
    word = f >> 6
    bit = _ONE << np.uint64(f & 63)
    if on:
        bits[word] |= bit
    else:
        bits[word] &= ~bit


@njit_leaf
def esc_leave(bits, f, m, n00, n01):
    """Frame f, M bit m, leaves class (0, m): its R bit goes 0 -> 1, or its page goes.
    Returns the new (n00, n01)."""
    if m == 0:
        esc_set(bits, f, False)
        return n00 - 1, n01
    return n00, n01 - 1


@njit_leaf
def esc_join(bits, f, m, n00, n01):
    """The hand just cleared frame f's R bit (M bit m): it joins class (0, m)."""
    if m == 0:
        esc_set(bits, f, True)
        return n00 + 1, n01
    return n00, n01 + 1


@njit_leaf
def esc_referenced(esc00, fb, gi, g, f):
    """Frame f's R bit is about to go 0 -> 1: it leaves class (0, M) (on the arrays)."""
    n00, n01 = esc_leave(esc00, f, fb[f, FB_MOD], gi[g, ESC_N00], gi[g, ESC_N01])
    gi[g, ESC_N00] = n00
    gi[g, ESC_N01] = n01


@njit_kernel
def esc_note_reference(w, g, f):
    """Frame f's R bit is about to go 0 -> 1: it leaves class (0, M)."""
    esc_referenced(w.esc00, w.fb, w.gi, g, f)


@njit_kernel
def esc_note_cleared(w, g, f):
    """The hand just cleared frame f's R bit: it joins class (0, M)."""
    gi = w.gi
    n00, n01 = esc_join(w.esc00, f, w.fb[f, FB_MOD], gi[g, ESC_N00], gi[g, ESC_N01])
    gi[g, ESC_N00] = n00
    gi[g, ESC_N01] = n01


# ---- hooks the kernel calls ------------------------------------------------------------------
@njit_leaf
def on_hit(lk, gi, fl, g, f, pol):
    """Bookkeeping of a hit beyond the R/M bits, for the policies that keep order (the
    caller sets R and M, and calls esc_referenced first when R was 0 under ESC). On the
    arrays: the hit path runs it once a reference."""
    if pol == LRU:
        head, tail = link_touch(
            lk[:, LK_PREV], lk[:, LK_NEXT], gi[g, LIST_HEAD], gi[g, LIST_TAIL], f
        )
        gi[g, LIST_HEAD] = head
        gi[g, LIST_TAIL] = tail
    elif pol == WS:
        fl[f] = gi[g, VTIME]


@njit_kernel
def on_load(w, g, f, pol):
    """A page was just loaded into frame f."""
    if pol == LRU or pol == FIFO:
        list_append(w, g, f)
    elif pol == WS:  # only WS reads fl: the other policies' worlds have no room for it
        w.fl[f] = w.gi[g, VTIME]


@njit_kernel
def on_remove(w, g, f, pol):
    """Frame f is about to lose its page."""
    if pol == LRU or pol == FIFO:
        list_unlink(w, g, f)
    elif pol == ESC and w.fb[f, FB_REF] == 0:
        esc_note_reference(w, g, f)  # leaves its (0, M) class the same way


# ---- victim selection: each policy's choice, once --------------------------------------------
@njit_leaf
def esc_pick(state, kind, ref, mod, bits, hand, lo, hi, n00, n01, allow_anon):
    """Enhanced Second Chance. Round 1: a pass for (R,M) = (0,0) touching nothing, then a
    pass for (0,1) clearing R as the hand goes. Round 2 repeats both (every R is clear now,
    so it finds a page that was (1,0), else (1,1)).
    Returns (frame, class 0..3, hand, n00, n01); frame and class -1 when none is eligible."""
    n = hi - lo
    for rnd in range(2):
        if n00 > 0:  # pass for (0, 0): the bitset finds the next one after the hand
            f = _first_bit(bits, hand, hi)
            while f >= 0 and not eligible(state, kind, f, allow_anon):
                f = _first_bit(bits, f + 1, hi)
            if f < 0:
                f = _first_bit(bits, lo, hand)
                while f >= 0 and not eligible(state, kind, f, allow_anon):
                    f = _first_bit(bits, f + 1, hand)
            if f >= 0:
                return f, rnd * 2, step(f, lo, hi), n00, n01
        f = hand  # pass for (0, 1), clearing R bits on the way
        for _ in range(n):
            if eligible(state, kind, f, allow_anon):
                if ref[f] == 0:
                    if mod[f] == 1:
                        return f, rnd * 2 + 1, step(f, lo, hi), n00, n01
                else:
                    ref[f] = 0
                    n00, n01 = esc_join(bits, f, mod[f], n00, n01)
            f = step(f, lo, hi)
    return -1, -1, hand, n00, n01


@njit_leaf
def clock_pick(state, kind, ref, hand, lo, hi, allow_anon):
    """CLOCK: the hand clears R bits until it finds a frame with R = 0.
    Returns (frame or -1, hand)."""
    f = hand
    for _ in range(2 * (hi - lo) + 1):
        if eligible(state, kind, f, allow_anon):
            if ref[f] == 0:
                return f, step(f, lo, hi)
            ref[f] = 0
        f = step(f, lo, hi)
    return -1, hand


@njit_leaf
def list_pick(state, kind, nxt, head, allow_anon):
    """LRU and FIFO: the head of the list is the least recently used / oldest loaded."""
    f = head
    while f >= 0 and not eligible(state, kind, f, allow_anon):
        f = nxt[f]
    return f


@njit_leaf
def random_pick(state, kind, grng, g, lo, hi, allow_anon):
    """A uniformly random resident frame (rejection sampling, then a scan as a fallback),
    drawn from guest g's stream ``grng[g]``."""
    for _ in range(64):
        f = lo + next_below(grng, g, hi - lo)
        if eligible(state, kind, f, allow_anon):
            return f
    f = lo + next_below(grng, g, hi - lo)
    for _ in range(hi - lo):
        if eligible(state, kind, f, allow_anon):
            return f
        f = step(f, lo, hi)
    return -1


@njit_leaf
def file_first_pick(state, kind, ref, hand, lo, hi, allow_anon):
    """Naive page-cache-first: the next file page under the hand, hot or not; only when
    there is none, CLOCK over anonymous memory. Returns (frame or -1, hand)."""
    f = hand
    for _ in range(hi - lo):
        if state[f] == USED and kind[f] != ANON:
            return f, step(f, lo, hi)
        f = step(f, lo, hi)
    return clock_pick(state, kind, ref, hand, lo, hi, allow_anon)


WS_SCAN = 256  # frames WSClock looks at before it settles for the coldest one seen


@njit_leaf
def ws_pick(state, kind, ref, fl, hand, lo, hi, now, tau, allow_anon):
    """WSClock (Carr & Hennessy): a page referenced since the hand last passed gets its
    last-use time (``fl``) refreshed; a page idle for more than tau references is outside
    the working set W(t, tau) and goes. When none of the next WS_SCAN eligible frames is
    outside (the working set exceeds memory), the coldest of them goes: cold first, bounded
    work. Frames that hold no evictable page (the kernel's, free or ballooned ones) are
    passed over without counting, so a run of them longer than WS_SCAN cannot stop the
    hand. ``now`` is the guest's virtual time. Returns (frame or -1, hand)."""
    f = hand
    coldest = -1
    coldest_last = now + 1
    seen = 0
    for _ in range(hi - lo):
        if eligible(state, kind, f, allow_anon):
            if ref[f] != 0:
                ref[f] = 0
                fl[f] = now
            elif now - fl[f] > tau:
                return f, step(f, lo, hi)
            if fl[f] < coldest_last:
                coldest_last = fl[f]
                coldest = f
            seen += 1
            if seen >= WS_SCAN:
                break
        f = step(f, lo, hi)
    if coldest < 0 and not allow_anon:
        return clock_pick(state, kind, ref, hand, lo, hi, allow_anon)  # no file page: look on
    if coldest >= 0:
        return coldest, step(coldest, lo, hi)
    return -1, hand


# ---- the same, over the World (the kernel's entry points) ------------------------------------
@njit_kernel
def victim_esc(w, g, allow_anon):
    """ESC's victim of guest g: (frame, class 0..3), or (-1, -1)."""
    fb, gi = w.fb, w.gi
    f, cls, hand, n00, n01 = esc_pick(
        fb[:, FB_STATE],
        fb[:, FB_KIND],
        fb[:, FB_REF],
        fb[:, FB_MOD],
        w.esc00,
        gi[g, HAND],
        gi[g, F_LO],
        gi[g, F_HI],
        gi[g, ESC_N00],
        gi[g, ESC_N01],
        allow_anon,
    )
    gi[g, HAND] = hand
    gi[g, ESC_N00] = n00
    gi[g, ESC_N01] = n01
    return f, cls


@njit_kernel
def victim_clock(w, g, allow_anon):
    """CLOCK's victim of guest g, or -1."""
    fb, gi = w.fb, w.gi
    f, hand = clock_pick(
        fb[:, FB_STATE],
        fb[:, FB_KIND],
        fb[:, FB_REF],
        gi[g, HAND],
        gi[g, F_LO],
        gi[g, F_HI],
        allow_anon,
    )
    gi[g, HAND] = hand
    return f


@njit_kernel
def victim_list_head(w, g, allow_anon):
    """LRU's / FIFO's victim of guest g, or -1."""
    fb = w.fb
    return list_pick(
        fb[:, FB_STATE], fb[:, FB_KIND], w.lk[:, LK_NEXT], w.gi[g, LIST_HEAD], allow_anon
    )


@njit_kernel
def victim_random(w, g, allow_anon):
    """A random victim of guest g, or -1."""
    fb, gi = w.fb, w.gi
    return random_pick(
        fb[:, FB_STATE], fb[:, FB_KIND], w.grng, g, gi[g, F_LO], gi[g, F_HI], allow_anon
    )


@njit_kernel
def victim_file_first(w, g, allow_anon):
    """file_first's victim of guest g, or -1."""
    fb, gi = w.fb, w.gi
    f, hand = file_first_pick(
        fb[:, FB_STATE],
        fb[:, FB_KIND],
        fb[:, FB_REF],
        gi[g, HAND],
        gi[g, F_LO],
        gi[g, F_HI],
        allow_anon,
    )
    gi[g, HAND] = hand
    return f


@njit_kernel
def victim_ws(w, g, allow_anon):
    """WSClock's victim of guest g, or -1."""
    fb, gi = w.fb, w.gi
    f, hand = ws_pick(
        fb[:, FB_STATE],
        fb[:, FB_KIND],
        fb[:, FB_REF],
        w.fl,
        gi[g, HAND],
        gi[g, F_LO],
        gi[g, F_HI],
        gi[g, VTIME],
        gi[g, WS_TAU],
        allow_anon,
    )
    gi[g, HAND] = hand
    return f


@njit_kernel
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

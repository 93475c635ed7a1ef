"""Conservation laws of the simulated memory, checked from outside the compiled code.

Tests call ``violations(world)`` after every tick: each guest frame is in exactly one
state and the per-guest tallies agree with the arrays; every page is in exactly one place;
dirty plus writeback pages stay within the dirty limit plus one reclaim batch; the host
never uses more frames than it has, nor more swap.
"""

from __future__ import annotations

import numpy as np

from sim_core.state import (
    BACKED,
    BAL_TOP,
    BALLOONED,
    DIRTY_LIMIT,
    F_HI,
    F_LO,
    FB_HSLOT,
    FB_HSTATE,
    FB_KIND,
    FB_MOD,
    FB_STATE,
    FB_WB,
    FILE,
    FREE,
    FREE_TOP,
    H_CACHE,
    H_CACHE_DIRTY,
    H_CACHE_N,
    H_CACHE_ON,
    H_CACHE_WB,
    H_CQ_N,
    H_FREE,
    H_IOBUF,
    H_NFRAMES,
    H_NRES,
    H_SWAP_CAP,
    H_SWAP_USED,
    H_TOTAL,
    H_WRITEBACK,
    HCB_DIRTY,
    HCB_NONE,
    HCB_STATE,
    HCB_WB,
    HCL_POS,
    HOST_DISCARDED,
    HOST_SWAPPED,
    HOST_WRITEBACK,
    HU_POS,
    KERNEL,
    N_BACKED,
    N_BALLOONED,
    N_DIRTY,
    N_FREE,
    N_HSWAPPED,
    N_KERNEL,
    N_RECLAIM,
    N_SWAPPED,
    N_USED,
    N_WRITEBACK,
    ON_DISK,
    P_HI,
    P_LO,
    PB_KIND,
    PB_STATE,
    PG_FRAME,
    PG_SLOT,
    RECLAIM,
    RESIDENT,
    S_HI,
    S_LO,
    SB_USED,
    SLOT_TOP,
    STALL_KILLED,
    STALLED,
    SWAPPED,
    UNBACKED,
    UNTOUCHED,
    USED,
    World,
)
from sim_core.writeback import RECLAIM_BATCH

_FRAME_STATES = (
    ("free", FREE, N_FREE),
    ("used", USED, N_USED),
    ("ballooned", BALLOONED, N_BALLOONED),
    ("reclaim", RECLAIM, N_RECLAIM),
    ("kernel", KERNEL, N_KERNEL),
)


def violations(w: World) -> list[str]:
    """Every broken invariant, as a sentence; empty when the world is consistent."""
    out: list[str] = []
    for g in range(w.gi.shape[0]):
        if w.gi[g, STALLED] != STALL_KILLED:
            out += _guest(w, g)
    hi = w.hi
    if hi[H_FREE] < 0 or hi[H_FREE] + hi[H_NRES] + hi[H_IOBUF] + hi[H_CACHE] != hi[H_TOTAL]:
        out.append(
            f"host: free {hi[H_FREE]} + resident {hi[H_NRES]} + buffers {hi[H_IOBUF]}"
            f" + page cache {hi[H_CACHE]} != total {hi[H_TOTAL]}"
        )
    out += _host_cache(w)
    nf = hi[H_NFRAMES]
    hstate = w.fb[:nf, FB_HSTATE]
    in_memory = int(((hstate == BACKED) | (hstate == HOST_WRITEBACK)).sum())
    listed = int((w.hu[:nf, HU_POS] >= 0).sum())
    if in_memory != hi[H_NRES] or listed != hi[H_NRES]:
        out.append(f"host: {hi[H_NRES]} resident, {in_memory} frames in memory, {listed} listed")
    slots = int(w.fb[:nf, FB_HSLOT].sum())
    if slots != hi[H_SWAP_USED] or slots > hi[H_SWAP_CAP]:
        out.append(f"host: {slots} swap slots held, tally {hi[H_SWAP_USED]}, cap {hi[H_SWAP_CAP]}")
    if ((hstate == HOST_SWAPPED) & (w.fb[:nf, FB_HSLOT] == 0)).any():
        out.append("host: a swapped-out frame has no swap slot")
    if int((hstate == HOST_WRITEBACK).sum()) > hi[H_WRITEBACK]:
        out.append("host: more frames under host writeback than writes in flight")
    return out


def _guest(w: World, g: int) -> list[str]:
    out: list[str] = []
    gi = w.gi[g]
    f_lo, f_hi = gi[F_LO], gi[F_HI]
    p_lo, p_hi = gi[P_LO], gi[P_HI]
    s_lo, s_hi = gi[S_LO], gi[S_HI]
    fb = w.fb[f_lo:f_hi]
    fstate = fb[:, FB_STATE]
    counts = {name: int((fstate == code).sum()) for name, code, _ in _FRAME_STATES}
    if sum(counts.values()) != f_hi - f_lo:
        out.append(f"guest {g}: a frame is in no known state")
    for name, _, col in _FRAME_STATES:
        if counts[name] != gi[col]:
            out.append(f"guest {g}: {counts[name]} {name} frames, tally says {gi[col]}")
    if gi[FREE_TOP] != counts["free"] or gi[BAL_TOP] != counts["ballooned"]:
        out.append(f"guest {g}: free/balloon stacks disagree with frame states")
    # pages: each in exactly one place
    pstate = w.pb[p_lo:p_hi, PB_STATE]
    pframe = w.pg[p_lo:p_hi, PG_FRAME]
    pslot = w.pg[p_lo:p_hi, PG_SLOT]
    resident = pstate == RESIDENT
    if not np.array_equal(resident, pframe >= 0):
        out.append(f"guest {g}: resident pages and page->frame links disagree")
    if ((pstate == SWAPPED) & (pslot < 0)).any():
        out.append(f"guest {g}: a swapped-out page has no swap slot")
    kinds = w.pb[p_lo:p_hi, PB_KIND]
    if ((pstate == UNTOUCHED) & (kinds != 0)).any() or ((pstate == ON_DISK) & (kinds == 0)).any():
        out.append(f"guest {g}: a page is in a state its kind cannot have")
    holding = (fstate == USED) | (fstate == RECLAIM)
    if resident.sum() != holding.sum():
        out.append(f"guest {g}: {resident.sum()} resident pages in {holding.sum()} frames")
    frames = np.flatnonzero(holding) + f_lo
    if len(frames) and not np.array_equal(w.pg[w.fr[frames], PG_FRAME], frames):
        out.append(f"guest {g}: a frame and its page do not point at each other")
    if (w.fr[f_lo:f_hi][~holding] != -1).any():
        out.append(f"guest {g}: a frame without a page still names one")
    slots_used = int(w.sb[s_lo:s_hi, SB_USED].sum())
    if slots_used != (pslot >= 0).sum() or slots_used != gi[N_SWAPPED]:
        out.append(f"guest {g}: {slots_used} swap slots used, pages/tally disagree")
    if gi[SLOT_TOP] != (s_hi - s_lo) - slots_used:
        out.append(f"guest {g}: free-slot stack disagrees with used slots")
    # writeback and dirty limits
    wb = int(fb[:, FB_WB].sum())
    if wb != gi[N_WRITEBACK] or ((fstate == RECLAIM) & (fb[:, FB_WB] == 0)).any():
        out.append(f"guest {g}: {wb} frames under writeback, tally {gi[N_WRITEBACK]}")
    dirty = int(((fstate == USED) & (fb[:, FB_KIND] == FILE) & (fb[:, FB_MOD] == 1)).sum())
    if dirty != gi[N_DIRTY]:
        out.append(f"guest {g}: {dirty} dirty file pages, tally {gi[N_DIRTY]}")
    if gi[N_DIRTY] + gi[N_WRITEBACK] > gi[DIRTY_LIMIT] + RECLAIM_BATCH:
        out.append(
            f"guest {g}: dirty {gi[N_DIRTY]} + writeback {gi[N_WRITEBACK]} over the limit"
            f" {gi[DIRTY_LIMIT]} + {RECLAIM_BATCH}"
        )
    # the host's view of this guest's frames
    hstate = fb[:, FB_HSTATE]
    if ((fstate == BALLOONED) & (hstate != UNBACKED)).any():
        out.append(f"guest {g}: a ballooned frame is still backed by the host")
    in_memory = (hstate == BACKED) | (hstate == HOST_WRITEBACK)
    swapped = (hstate == HOST_SWAPPED) | (hstate == HOST_DISCARDED)
    if in_memory.sum() != gi[N_BACKED] or swapped.sum() != gi[N_HSWAPPED]:
        out.append(f"guest {g}: host backing tallies disagree with frame states")
    return out


def _host_cache(w: World) -> list[str]:
    """The host page cache's tallies agree with its blocks and its list."""
    hi = w.hi
    if hi[H_CACHE_ON] == 0:
        return [] if hi[H_CACHE] == 0 else [f"host: {hi[H_CACHE]} cache frames with no cache"]
    out = []
    state = w.hcb[:, HCB_STATE]
    cached = int((state != HCB_NONE).sum())
    dirty = int(((state == HCB_DIRTY) | (state == HCB_WB)).sum())
    wb = int((state == HCB_WB).sum())
    listed = int((w.hcl[:, HCL_POS] >= 0).sum())
    in_transit = int(hi[H_CQ_N])  # copies reserve a frame and count dirty before they land
    if listed != cached or listed != hi[H_CACHE_N]:
        out.append(f"host cache: {cached} blocks cached, {listed} listed, tally {hi[H_CACHE_N]}")
    if hi[H_CACHE] < cached or hi[H_CACHE] > cached + in_transit:
        out.append(f"host cache: {hi[H_CACHE]} frames for {cached} blocks + {in_transit} copies")
    if wb != hi[H_CACHE_WB] or not dirty <= hi[H_CACHE_DIRTY] <= dirty + in_transit:
        out.append(
            f"host cache: dirty tally {hi[H_CACHE_DIRTY]} (blocks {dirty}, copies "
            f"{in_transit}), writeback tally {hi[H_CACHE_WB]} (blocks {wb})"
        )
    return out

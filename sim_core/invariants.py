"""Conservation laws of the simulated memory, checked from outside the compiled code.

Tests call ``violations(world)`` after every tick: each guest frame is in exactly one
state and the per-guest tallies agree with the arrays; every page is in exactly one place;
the host never uses more frames than it has.
"""

from __future__ import annotations

import numpy as np

from sim_core.state import (
    BACKED,
    BAL_TOP,
    BALLOONED,
    BLK_CACHED,
    F_HI,
    F_LO,
    FB_HSTATE,
    FB_STATE,
    FR_PAGE,
    FREE,
    FREE_TOP,
    H_FREE,
    H_IOBUF,
    H_NFRAMES,
    H_NRES,
    H_NRES_BLOCKS,
    H_NRES_FRAMES,
    H_TOTAL,
    HOST_DISCARDED,
    HOST_SWAPPED,
    HU_POS,
    N_BACKED,
    N_BALLOONED,
    N_CACHED_BLOCKS,
    N_FREE,
    N_HSWAPPED,
    N_SWAPPED,
    N_USED,
    ON_DISK,
    P_HI,
    P_LO,
    PB_KIND,
    PB_STATE,
    PG_FRAME,
    PG_SLOT,
    RESIDENT,
    S_HI,
    S_LO,
    SB_BLOCK,
    SB_USED,
    SLOT_TOP,
    SWAPPED,
    UNBACKED,
    UNTOUCHED,
    USED,
    World,
)


def violations(w: World) -> list[str]:
    """Every broken invariant, as a sentence; empty when the world is consistent."""
    out: list[str] = []
    for g in range(w.gi.shape[0]):
        out += _guest(w, g)
    hi = w.hi
    used = hi[H_NRES] + hi[H_IOBUF]
    if hi[H_FREE] < 0 or used + hi[H_FREE] != hi[H_TOTAL]:
        out.append(
            f"host: free {hi[H_FREE]} + resident {hi[H_NRES]} + buffers {hi[H_IOBUF]}"
            f" != total {hi[H_TOTAL]}"
        )
    if used > hi[H_TOTAL]:
        out.append(f"host: {used} frames in use exceed the host's {hi[H_TOTAL]}")
    nf = hi[H_NFRAMES]
    resident_units = np.flatnonzero(w.hu[:, HU_POS] >= 0)
    backed = int((w.fb[:nf, FB_HSTATE] == BACKED).sum()) if nf else 0
    cached = int((w.sb[:, SB_BLOCK] == BLK_CACHED).sum()) if w.sb.shape[0] else 0
    split = hi[H_NRES_FRAMES] == backed and hi[H_NRES_BLOCKS] == cached
    if len(resident_units) != hi[H_NRES] or backed + cached != hi[H_NRES] or not split:
        out.append(
            f"host: {hi[H_NRES]} resident units, but {backed} backed frames + {cached} cached"
            f" swap blocks and {len(resident_units)} units listed"
        )
    return out


def _guest(w: World, g: int) -> list[str]:
    out: list[str] = []
    gi = w.gi[g]
    f_lo, f_hi = gi[F_LO], gi[F_HI]
    p_lo, p_hi = gi[P_LO], gi[P_HI]
    s_lo, s_hi = gi[S_LO], gi[S_HI]
    fstate = w.fb[f_lo:f_hi, FB_STATE]
    counts = {name: int((fstate == code).sum()) for name, code in
              (("free", FREE), ("used", USED), ("ballooned", BALLOONED))}  # fmt: skip
    if sum(counts.values()) != f_hi - f_lo:
        out.append(f"guest {g}: a frame is in no known state")
    for name, col in (("free", N_FREE), ("used", N_USED), ("ballooned", N_BALLOONED)):
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
    if not np.array_equal(pstate == SWAPPED, pslot >= 0):
        out.append(f"guest {g}: swapped pages and page->slot links disagree")
    kinds = w.pb[p_lo:p_hi, PB_KIND]
    if ((pstate == UNTOUCHED) & (kinds != 0)).any() or ((pstate == ON_DISK) & (kinds == 0)).any():
        out.append(f"guest {g}: a page is in a state its kind cannot have")
    if resident.sum() != counts["used"]:
        out.append(f"guest {g}: {resident.sum()} resident pages in {counts['used']} used frames")
    used_frames = np.flatnonzero(fstate == USED) + f_lo
    if len(used_frames) and not np.array_equal(
        w.pg[w.fr[used_frames, FR_PAGE], PG_FRAME], used_frames
    ):
        out.append(f"guest {g}: a used frame and its page do not point at each other")
    if (w.fr[f_lo:f_hi, FR_PAGE][fstate != USED] != -1).any():
        out.append(f"guest {g}: a free or ballooned frame still names a page")
    slots_used = int(w.sb[s_lo:s_hi, SB_USED].sum())
    if slots_used != (pstate == SWAPPED).sum() or slots_used != gi[N_SWAPPED]:
        out.append(f"guest {g}: {slots_used} swap slots used, pages/tally disagree")
    if gi[SLOT_TOP] != (s_hi - s_lo) - slots_used:
        out.append(f"guest {g}: free-slot stack disagrees with used slots")
    # the host's view of this guest's frames
    hstate = w.fb[f_lo:f_hi, FB_HSTATE]
    if ((fstate == BALLOONED) & (hstate != UNBACKED)).any():
        out.append(f"guest {g}: a ballooned frame is still backed by the host")
    swapped = (hstate == HOST_SWAPPED) | (hstate == HOST_DISCARDED)
    if (hstate == BACKED).sum() != gi[N_BACKED] or swapped.sum() != gi[N_HSWAPPED]:
        out.append(f"guest {g}: host backing tallies disagree with frame states")
    cached = int((w.sb[s_lo:s_hi, SB_BLOCK] == BLK_CACHED).sum())
    if cached != gi[N_CACHED_BLOCKS]:
        out.append(f"guest {g}: {cached} cached swap blocks, tally says {gi[N_CACHED_BLOCKS]}")
    return out

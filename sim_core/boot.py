"""How a guest starts: kernel structures sized at boot, and an optional warm start.

At boot a guest kernel allocates structures sized from its configured memory (struct
page: 64 bytes per 4 KiB page, include/linux/mm_types.h), so a VM booted with more memory
and ballooned down has less usable memory than one booted small (Waldspurger, OSDI 2002,
sec. 3.2). Those frames are KERNEL: never free, never reclaimed, backed by the host.

A warm start puts the world where it would be after running a while, with no knowledge a
component could not have: each guest's pages are loaded in the guest's own first-touch
order (references drawn from its workload), and the host backs frames in the order the
guests first touched them; what does not fit the host went to host swap, chosen blindly
(uniformly at random, as a blind reclaimer would have). A guest that zeroes its memory
at boot (``vms.zero_at_boot``, as Windows does) has written every frame: the host backs the
free ones too, and only the guest knows they hold nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim_core.host_memory import back_frame
from sim_core.policies import ESC, esc_note_cleared, on_load
from sim_core.state import (
    ANON,
    F_LO,
    FB_HSLOT,
    FB_HSTATE,
    FB_KIND,
    FB_MIRROR,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FILE,
    FREE_TOP,
    H_SWAP_USED,
    HOST_SWAPPED,
    KERNEL,
    N_HSWAPPED,
    N_KERNEL,
    N_USED,
    P_LO,
    PB_KIND,
    PB_STATE,
    PG_FRAME,
    POLICY,
    RESIDENT,
    frame_guest,
)
from sim_core.writeback import pop_free


@njit(cache=True)
def boot_kernel(w, g, n):
    """Reserve n frames of guest g for its boot-sized kernel structures."""
    for _ in range(min(n, w.gi[g, FREE_TOP])):
        f = pop_free(w, g)
        w.fb[f, FB_STATE] = KERNEL
        w.gi[g, N_KERNEL] += 1


@njit(cache=True)
def first_touches(pages, seen, out, found):
    """Append to ``out`` (from index ``found``) each page of ``pages`` not ``seen`` before, in
    the order of its first reference, until ``out`` is full; returns the new count. One
    pass, where np.unique's sort took most of a small run's setup."""
    for i in range(pages.shape[0]):
        if found >= out.shape[0]:
            break
        p = pages[i]
        if not seen[p]:
            seen[p] = True
            out[found] = p
            found += 1
    return found


@njit(cache=True)
def warm_load(w, g, pages, count):
    """Make the first ``count`` of ``pages`` (guest page numbers in first-touch order)
    resident in guest g without I/O, the first touched loaded first (the oldest, for the
    recency policies), with R = 0 so the first references tell hot from cold. Anonymous
    pages are dirty (no copy anywhere else); file pages clean (the flusher had time).
    Returns the frames loaded, in load order."""
    plo = w.gi[g, P_LO]
    pol = w.gi[g, POLICY]
    n = min(count, len(pages), w.gi[g, FREE_TOP])
    frames = np.empty(n, np.int64)
    for i in range(n):
        p = plo + pages[i]
        f = pop_free(w, g)
        frames[i] = f
        w.fr[f] = p
        w.pg[p, PG_FRAME] = f
        w.pb[p, PB_STATE] = RESIDENT
        w.fb[f, FB_STATE] = 1  # USED
        kind = w.pb[p, PB_KIND]
        w.fb[f, FB_KIND] = kind
        w.fb[f, FB_REF] = 0
        w.fb[f, FB_MOD] = 1 if kind == ANON else 0
        w.fb[f, FB_MIRROR] = 1 if kind == FILE else 0
        w.gi[g, N_USED] += 1
        on_load(w, g, f, pol)
        if pol == ESC:
            esc_note_cleared(w, g, f)
    return frames


def free_frames(w, g) -> np.ndarray:
    """Guest g's free frames (int64), in the order its allocator will hand them out."""
    lo = int(w.gi[g, F_LO])
    return w.stk[lo : lo + int(w.gi[g, FREE_TOP])][::-1].astype(np.int64)


@njit(cache=True)
def round_robin(flat, ends):
    """Guest g's frames are ``flat[ends[g - 1]:ends[g]]``, first touched first: all of
    them in the order the host first saw them, round-robin over the guests (each guest's
    r-th frame, in guest order, then the (r+1)-th). In one pass, without the sort keys a
    lexsort would need (several bytes a frame more at the peak of building)."""
    n = ends.shape[0]
    starts = np.empty(n, np.int64)
    active = np.empty(n, np.int64)  # guests with frames left at this rank, in guest order
    m = 0
    for g in range(n):
        starts[g] = ends[g - 1] if g > 0 else 0
        if ends[g] > starts[g]:
            active[m] = g
            m += 1
    out = np.empty(flat.shape[0], flat.dtype)
    k = 0
    r = 0
    while m > 0:
        kept = 0
        for j in range(m):
            g = active[j]
            out[k] = flat[starts[g] + r]
            k += 1
            if starts[g] + r + 1 < ends[g]:
                active[kept] = g
                kept += 1
        m = kept
        r += 1
    return out


@njit(cache=True)
def warm_host(w, frames, swapped):
    """The host backs ``frames`` (first touch first) except those marked in ``swapped``,
    which start in host swap with a current copy there."""
    for i in range(len(frames)):
        f = frames[i]
        if swapped[i]:
            w.fb[f, FB_HSTATE] = HOST_SWAPPED
            w.fb[f, FB_HSLOT] = 1
            w.hi[H_SWAP_USED] += 1
            w.gi[frame_guest(w.gi, f), N_HSWAPPED] += 1
        else:
            back_frame(w, f)

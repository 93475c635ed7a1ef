"""Guest swap slots and the swap cache (after Linux mm/swapfile.c and mm/swap_state.c).

A slot is taken when an anonymous page is first written out and stays with the page when
it is read back in: a swapped-in page is clean and its slot still holds a current copy,
so evicting it unmodified costs no write. A write to the page makes the copy stale; it is
rewritten to the same slot on the next eviction. A slot is freed when its page no longer
needs it (the guest frees the page: never, in this model, short of an OOM kill).
Divergences: no swap readahead, no cluster allocation, slots never freed on write.
"""

from __future__ import annotations

from sim_core.jit import njit_kernel
from sim_core.state import N_SWAPPED, S_HI, SB_USED, SLOT_TOP


@njit_kernel
def slot_alloc(w, g):
    """A free swap slot of guest g, now in use; -1 when its swap is full."""
    top = w.gi[g, SLOT_TOP]
    if top == 0:
        return -1
    top -= 1
    # No slot is ever freed, so the free ones are the last ``top`` of the guest's range and
    # the next is the lowest of them: no free-slot stack to keep.
    s = w.gi[g, S_HI] - 1 - top
    w.gi[g, SLOT_TOP] = top
    w.sb[s, SB_USED] = 1
    w.gi[g, N_SWAPPED] += 1
    return s

"""How sim_core compiles its leaf functions.

World-level kernel functions use plain ``njit(cache=True)``: numba's StructRef needs its
reference counting. The hot paths call leaves over plain arrays instead, compiled by
``njit_leaf``.
"""

from __future__ import annotations

from numba import njit

# Array-level functions that never allocate an array nor keep one, so they are compiled
# without numba's reference counting (``_nrt=False``, the remedy numba's maintainers give in
# numba#2345 and #2350): otherwise every call passing arrays costs an atomic increment and
# decrement per array, which LLVM cannot remove even after inlining the call (in the trace
# replay, perf put over 40% of ESC's time there: 5 arrays a fault). ``forceinline`` makes
# LLVM inline them into their callers even when they are large (ESC's pick: a call passing
# five arrays field by field cost the replay a fifth of its speed).
njit_leaf = njit(cache=True, _nrt=False, forceinline=True)

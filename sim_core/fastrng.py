"""splitmix64 for compiled code: each stream is one uint64 cell, advanced in place.

The simulation seeds every stream from the run's seed (``state.splitmix_seed``), so a
compiled kernel draws random numbers without numba's global generator and results do not
depend on what else ran in the process."""

from __future__ import annotations

import numpy as np

from sim_core.jit import njit_kernel

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)


@njit_kernel
def next_u64(state, i):
    """Advance stream ``state[i]`` and return 64 random bits."""
    z = state[i] + _GAMMA
    state[i] = z
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit_kernel
def next_below(state, i, n):
    """A random integer in [0, n) (n > 0); the modulo bias is below 2**-40 for our n."""
    return np.int64(next_u64(state, i) % np.uint64(n))


@njit_kernel
def next_unit(state, i):
    """A random float in [0, 1)."""
    return (next_u64(state, i) >> _S11) * (1.0 / 9007199254740992.0)

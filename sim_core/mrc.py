"""LRU miss-ratio curves in one pass: stack distances (Mattson et al., 1970) counted with a
Fenwick tree, optionally on a SHARDS sample (Waldspurger et al., FAST 2015).

The stack distance of a reference is the number of distinct pages referenced since the
previous reference to the same page; an LRU cache of C frames hits exactly the references
whose distance is below C. One pass gives the histogram of distances, hence the miss
ratio at every cache size at once. A Fenwick tree over time positions, holding a 1 at
each page's latest reference, counts the distinct pages in between in O(log n).

SHARDS keeps only references to pages whose spatial hash falls under a threshold (rate
R): every reference of a sampled page is kept, so its distances are those of the sample,
and a distance d in the sample stands for d / R in the full trace. Counts scale by 1 / R;
``SHARDS-adj`` moves the difference between the expected and the actual sample size into
the smallest distance, which removes most of the bias at small caches.

Pure NumPy and numba: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

_HASH_BITS = 24  # the sampling threshold's resolution: rates down to 2**-24
_DENSE_LIMIT = 1 << 26  # page ids below this need no compaction (a 512 MiB last-use table)


@njit(cache=True, nogil=True)
def _distances(pages: np.ndarray, n_pages: int, hist: np.ndarray) -> int:
    """Fill ``hist[d]`` with the number of references at stack distance d; return the
    number of cold (first) references. ``pages``: dense ids in [0, n_pages)."""
    n = pages.shape[0]
    last = np.full(n_pages, -1, np.int64)
    tree = np.zeros(n + 1, np.int32)  # Fenwick tree over time positions 1..n
    cold = 0
    for i in range(n):
        p = pages[i]
        j = last[p]
        if j < 0:
            cold += 1
        else:
            # Marks strictly between j and i: prefix(i) - prefix(j + 1) (1-based).
            d = 0
            k = i
            while k > 0:
                d += tree[k]
                k -= k & -k
            k = j + 1
            while k > 0:
                d -= tree[k]
                k -= k & -k
            hist[d] += 1
            k = j + 1
            while k <= n:  # page p's old mark goes: only its latest reference counts
                tree[k] -= 1
                k += k & -k
        k = i + 1
        while k <= n:
            tree[k] += 1
            k += k & -k
        last[p] = i
    return cold


def spatial_hash(pages: np.ndarray) -> np.ndarray:
    """splitmix64 of each page id, its low ``_HASH_BITS`` bits: uniform and seedless, so
    a page is in or out of the sample in every trace and every run alike."""
    x = pages.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x & np.uint64((1 << _HASH_BITS) - 1)).astype(np.int64)


@dataclass(frozen=True)
class MissRatioCurve:
    """An LRU miss-ratio curve. ``hist[d]``: references (scaled to the full trace) at
    sample stack distance d; ``cold``: first references (scaled); ``rate``: the SHARDS
    sampling rate (1.0: exact)."""

    references: int  # of the whole trace
    sampled: int  # references the curve was computed from
    rate: float
    cold: float
    hist: np.ndarray  # float64

    @property
    def unique_pages(self) -> float:
        """Distinct pages (exact at rate 1, estimated from the sample otherwise)."""
        return self.cold

    def misses(self, frames: int | np.ndarray) -> np.ndarray:
        """Expected misses of an LRU cache of ``frames`` frames (cold misses included)."""
        frames = np.asarray(frames)
        if (frames < 0).any():
            raise ValueError("frames must be >= 0")
        tail = np.concatenate([np.cumsum(self.hist[::-1])[::-1], [0.0]])  # tail[k] = sum d>=k
        k = np.minimum(np.ceil(frames * self.rate - 1e-9).astype(np.int64), tail.size - 1)
        return self.cold + tail[k]

    def miss_ratio(self, frames: int | np.ndarray) -> np.ndarray:
        """Miss ratio of an LRU cache of ``frames`` frames, clipped to [0, 1]."""
        return np.clip(self.misses(frames) / max(self.references, 1), 0.0, 1.0)


def lru_mrc(pages: np.ndarray, sample_rate: float = 1.0) -> MissRatioCurve:
    """The LRU miss-ratio curve of a page-reference trace (any non-negative integer ids),
    exact at ``sample_rate`` 1.0, SHARDS-sampled (fixed rate, adjusted) below it."""
    pages = np.asarray(pages)
    if pages.ndim != 1 or (pages.size and not np.issubdtype(pages.dtype, np.integer)):
        raise ValueError("pages must be a 1-D array of integer page ids")
    if not 0.0 < sample_rate <= 1.0:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    n = int(pages.size)
    rate = 1.0
    if sample_rate < 1.0:
        threshold = max(1, round(sample_rate * (1 << _HASH_BITS)))
        rate = threshold / (1 << _HASH_BITS)
        pages = pages[spatial_hash(pages) < threshold]
    if pages.size and pages.min() < 0:
        raise ValueError(f"negative page id {int(pages.min())}")
    if pages.size and pages.max() < _DENSE_LIMIT:
        dense, n_pages = pages, int(pages.max()) + 1  # small ids index arrays directly
    else:  # sparse ids: compact them (a sort)
        _, dense = np.unique(pages, return_inverse=True)
        dense = dense.reshape(-1)
        n_pages = int(dense.max()) + 1 if dense.size else 0
    hist = np.zeros(max(n_pages, 1), np.int64)
    cold = _distances(dense.astype(np.int32), n_pages, hist) if dense.size else 0
    scaled = hist.astype(np.float64) / rate
    if rate < 1.0 and scaled.size:
        # SHARDS-adj: the sample holds more or fewer references than R x n; charge the
        # difference to the smallest distance (the hits every cache has).
        scaled[0] += n - (cold / rate + scaled.sum())
    return MissRatioCurve(n, int(dense.size), rate, cold / rate, scaled)

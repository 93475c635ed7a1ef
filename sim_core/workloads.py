"""Seeded workload generators: the page-reference streams guests issue.

A workload owns a footprint of ``n_pages`` virtual pages (ids ``0..n_pages-1``), each
anonymous or file-backed (``page_kind``), and emits references in chunks:
``generate(n, until_ms) -> (pages int32, writes uint8)``. All randomness comes from the generator
given to ``reset``; chunking does not change the stream (``generate(a)`` then
``generate(b)`` equals ``generate(a + b)``), because each concern draws from its own child
stream and takes exactly one float64 per reference (or per phase).

Parameters are in MiB (pages = MiB * 1024 / page_kib). Sizes default to fractions of the
VM's memory, so every workload fits a VM of any size unless told otherwise.

Registered workloads (``WORKLOADS``): ``zipf``, ``hotcold``, ``phases``, ``scan``, ``db``,
``idle``, and two driven by files: ``trace`` (a page or block trace) and ``damon`` (a
``damo record`` of a real guest). Their parameters are the fields of the ``*Params``
dataclasses below (``param_table(name)``: parameter -> default, unit, doc).

``generate(n, until_ms)`` may return fewer than ``n`` references: a file workload returns
only those due before ``until_ms`` (the end of the tick being simulated) and the guest
idles for the rest of the tick; the synthetic workloads ignore ``until_ms``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from sim_core.config import ConfigError
from sim_core.constants import ANON, FILE, PAGE_KIND_DTYPE
from sim_core.params import param, parse_params
from sim_core.theory import zipf_probabilities

# --------------------------------------------------------------------------------------
# Parameters: frozen dataclasses whose field metadata carries range, default rule and doc.
# --------------------------------------------------------------------------------------


def _parse_params(cls: type[Workload], params: Mapping[str, Any], path: str) -> Any:
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}: must be a table of workload parameters, got {params!r}")
    return parse_params(cls.Params, params, path, f"workload '{cls.name}'")


def _mib_to_pages(
    p: Any, key: str, mem_pages: int, page_kib: int, path: str, *, allow_zero: bool = False
) -> int:
    """Resolve a MiB size parameter to pages; None means its fraction of VM memory."""
    value = getattr(p, key)
    if value is None:
        frac = next(f for f in dataclasses.fields(p) if f.name == key).metadata["mem_fraction"]
        return max(1, round(frac * mem_pages))
    pages = round(value * 1024 / page_kib)
    if pages < 1 and not (allow_zero and value == 0):
        raise ConfigError(f"{path}.{key}: {value} MiB is less than one {page_kib} KiB page")
    return pages


def _file_tail(kinds: np.ndarray, start: int, stop: int, fraction: float) -> None:
    """Mark the last ``fraction`` of pages ``[start, stop)`` as file-backed."""
    n_file = round(fraction * (stop - start))
    kinds[stop - n_file : stop] = FILE


# --------------------------------------------------------------------------------------
# Walker's alias method, sampled with one uniform double per reference.
# --------------------------------------------------------------------------------------


@njit(cache=True)
def alias_table(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's O(n) construction: ``accept[k]`` and ``alias[k]`` such that picking a bin k
    uniformly, keeping k with probability accept[k] and else taking alias[k], draws k with
    probability ``probs[k]`` (probs sum to 1)."""
    n = probs.shape[0]
    scaled = probs * n
    accept = np.ones(n, np.float64)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, np.int64)
    large = np.empty(n, np.int64)
    n_small = 0
    n_large = 0
    for k in range(n):
        if scaled[k] < 1.0:
            small[n_small] = k
            n_small += 1
        else:
            large[n_large] = k
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        g = large[n_large - 1]
        accept[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    # What is left holds (up to rounding) exactly one bin's worth: keep it whole.
    return accept, alias


def pack_alias(accept: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """One uint64 per bin: the acceptance threshold in the high 32 bits (a 32-bit fixed
    point fraction), the alias in the low 32, so a draw touches one cache line, not two.
    A bin that always keeps itself gets the top threshold and itself as alias, which makes
    the 2**-32 it loses to the threshold's rounding harmless."""
    always = accept >= 1.0
    threshold = np.where(always, 2**32 - 1, np.floor(accept * 2**32)).astype(np.uint64)
    target = np.where(always, np.arange(accept.size), alias).astype(np.uint64)
    return (threshold << np.uint64(32)) | target


_HIGH = np.uint64(0xFFFFFFFF00000000)  # a packed bin's threshold
_LOW = np.uint64(0xFFFFFFFF)  # ... and its target


@njit(cache=True, nogil=True)
def alias_sample(u: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = a bin drawn from one uniform ``u[i]`` and a packed alias ``table``: the
    integer part of ``u[i] * bins`` picks the bin, the fraction decides bin vs alias. One
    float64 per draw keeps the stream independent of chunking; the select is branch-free
    because the branch would be unpredictable."""
    m = table.shape[0]
    for i in range(u.shape[0]):
        x = u[i] * m
        k = min(np.int64(x), m - 1)
        entry = table[k]
        keep = np.int64(np.uint64((x - k) * 4294967296.0) < (entry >> np.uint64(32)))
        a = np.int64(entry & np.uint64(0xFFFFFFFF))
        out[i] = a + keep * (k - a)


@njit(cache=True, nogil=True)
def region_writes(
    u: np.ndarray, pages: np.ndarray, ends: np.ndarray, ratios: np.ndarray, out: np.ndarray
) -> None:
    """``out[i] = u[i] < ratios[r]`` where r is the region of ``pages[i]``: the number of
    region ends at or below it (counted, not searched: a handful of regions, no branches)."""
    for i in range(u.shape[0]):
        r = 0
        for j in range(ends.shape[0]):
            r += pages[i] >= ends[j]
        out[i] = u[i] < ratios[r]


def _child_generators(rng: np.random.Generator, count: int) -> list[np.random.Generator]:
    """Independent child streams, derived deterministically from ``rng``."""
    entropy = [int(x) for x in rng.integers(0, 2**63 - 1, size=4, dtype=np.int64)]
    return [
        np.random.Generator(np.random.PCG64(s))
        for s in np.random.SeedSequence(entropy).spawn(count)
    ]


# --------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------


class Workload(ABC):
    """A seeded page-reference stream over a footprint of ``n_pages`` pages.

    ``activity``: fraction of the VM's CPU time spent issuing references (1.0 for a busy
    guest; an idle one issues almost none). Call ``reset(rng)`` before ``generate``.
    """

    name: ClassVar[str]
    Params: ClassVar[type]

    n_pages: int
    page_kind: np.ndarray
    activity: float = 1.0

    def __init__(self, params: Any, mem_pages: int, page_kib: int, path: str) -> None:
        self.params = params
        self._position = -1  # references generated since reset; -1: not reset yet
        self._writes_rng: np.random.Generator | None = None
        # Write ratio per region of contiguous pages: region r ends (exclusive) at
        # _write_ends[r] and writes with probability _write_ratios[r]; the last region runs
        # to the end. One region: a scalar ratio.
        self._write_ends = np.zeros(0, np.int64)
        self._write_ratios = np.zeros(1, np.float64)

    # -- stream ---------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator) -> None:
        """(Re)start the stream; every random choice derives from ``rng``."""
        pick, writes, layout = _child_generators(rng, 3)
        self._pick_rng = pick
        self._writes_rng = writes
        self._position = 0
        self._reset(layout)

    def reseed_stream(self, rng: np.random.Generator) -> None:
        """Keep the layout (which page is hot), draw the references and writes from ``rng``
        from now on: an independent stream over the same pages, as a second run of the same
        program would make."""
        self._require_reset()
        self._pick_rng, self._writes_rng = _child_generators(rng, 2)

    def generate(self, n: int, until_ms: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` references: page ids (int32 in [0, n_pages)) and writes (uint8).

        ``until_ms``: the end of the simulated time being filled (the simulation passes the
        end of the tick). A workload with its own clock (a trace with timestamps, a DAMON
        record) returns only the references due before it, so possibly fewer than ``n``:
        the guest idles for the rest of the tick. Synthetic workloads ignore it."""
        self._require_reset()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        pages = self._pages(int(n))
        writes = self._writes(pages)
        self._position += int(n)
        return pages, writes

    def warm_order(self) -> np.ndarray:
        """Every page id (int32), hottest first: a warm start makes a prefix resident."""
        self._require_reset()
        return self._warm_order()

    @abstractmethod
    def working_set_pages(self) -> int:
        """The nominal working set in pages: the hot part the workload keeps coming back to."""

    # -- for subclasses -------------------------------------------------------------------
    @abstractmethod
    def _reset(self, layout: np.random.Generator) -> None:
        """Draw the seeded layout (permutations, phase positions) from ``layout``."""

    @abstractmethod
    def _pages(self, n: int) -> np.ndarray: ...

    @abstractmethod
    def _warm_order(self) -> np.ndarray: ...

    def _set_write_ratio(self, ratio: float) -> None:
        self._write_ends = np.zeros(0, np.int64)
        self._write_ratios = np.array([ratio], np.float64)

    def _writes(self, pages: np.ndarray) -> np.ndarray:
        if not self._write_ratios.any():
            return np.zeros(pages.shape[0], np.uint8)
        u = self._writes_rng.random(pages.shape[0])
        if self._write_ends.size == 0:
            return (u < self._write_ratios[0]).view(np.uint8)
        out = np.empty(pages.shape[0], np.uint8)
        region_writes(u, pages, self._write_ends, self._write_ratios, out)
        return out

    def _require_reset(self) -> None:
        if self._position < 0:
            raise RuntimeError(f"workload '{self.name}': call reset(rng) before using it")


class _IndependentWorkload(Workload):
    """The independent reference model: each reference picks page k with a fixed
    probability. Subclasses give the probabilities by *rank* (``_rank_probabilities``);
    with ``_shuffle`` a seeded permutation maps ranks to page ids, else rank = page id.

    Only the packed alias table (8 bytes a page) is kept between references: the
    probabilities and the permutation, which only ``warm_order``, ``page_probabilities``
    and ``working_set_pages`` need, are recomputed when asked for (the permutation from a
    copy of the layout stream), so they take no memory during a run."""

    _shuffle = False
    _ws: int | None = None

    @abstractmethod
    def _rank_probabilities(self) -> np.ndarray:
        """Reference probability of each rank (float64, sums to 1): a pure function of the
        parameters."""

    def _reset(self, layout: np.random.Generator) -> None:
        accept, alias = alias_table(self._rank_probabilities())
        table = pack_alias(accept, alias)
        del accept, alias
        if self._shuffle:
            self._layout = copy.deepcopy(layout)  # draws the same permutation again
            perm = layout.permutation(self.n_pages).astype(np.int32)
            # Relabel the table from ranks to pages: bin r becomes bin perm[r], its target t
            # becomes perm[t] (a bin that keeps itself still does); the threshold stays. The
            # bins are picked uniformly, so sampling draws pages directly, with no gather.
            shuffled = np.empty_like(table)
            shuffled[perm] = (table & _HIGH) | perm[table & _LOW].astype(np.uint64)
            table = shuffled
        self._table = table

    def _permutation(self) -> np.ndarray | None:
        """Rank -> page id (int32), or None when rank = page id."""
        if not self._shuffle:
            return None
        return copy.deepcopy(self._layout).permutation(self.n_pages).astype(np.int32)

    def _pages(self, n: int) -> np.ndarray:
        pages = np.empty(n, np.int32)
        alias_sample(self._pick_rng.random(n), self._table, pages)
        return pages

    def _warm_order(self) -> np.ndarray:
        ranks = np.argsort(-self._rank_probabilities(), kind="stable").astype(np.int32)
        perm = self._permutation()
        return perm[ranks] if perm is not None else ranks

    def page_probabilities(self) -> np.ndarray:
        """Reference probability of each page id (after ``reset``)."""
        self._require_reset()
        probs = np.empty(self.n_pages, np.float64)
        perm = self._permutation()
        probs[perm if perm is not None else np.arange(self.n_pages)] = self._rank_probabilities()
        return probs

    def _coverage_pages(self, share: float) -> int:
        """The fewest pages that take ``share`` of the references."""
        cum = np.cumsum(np.sort(self._rank_probabilities())[::-1])
        return int(min(np.searchsorted(cum, share * cum[-1]) + 1, self.n_pages))


# --------------------------------------------------------------------------------------
# The workloads
# --------------------------------------------------------------------------------------

_WRITE_DOC = "probability that a reference is a write (sets the M bit)"
_FILE_DOC = "fraction of the footprint that is file-backed page cache (the rest is anonymous)"


@dataclass(frozen=True)
class ZipfParams:
    """``zipf`` parameters."""

    footprint_mib: float | None = param(
        None,
        "MiB of pages referenced; default 0.6 x VM memory (the rest stays free, as most "
        "guests leave memory unused: the room overcommitment lives on)",
        lo=0,
        lo_open=True,
        mem_fraction=0.6,
    )
    alpha: float = param(1.0, "Zipf exponent (0 = uniform), default 1.0", lo=0, hi=10)
    write_ratio: float = param(0.2, _WRITE_DOC + ", default 0.2", lo=0, hi=1)
    file_fraction: float = param(0.0, _FILE_DOC + ", default 0.0", lo=0, hi=1)


class ZipfWorkload(_IndependentWorkload):
    """Independent references over a footprint with Zipf(alpha) popularity. Which page
    holds which rank is a seeded permutation; the file-backed pages are the top
    ``file_fraction`` of page ids, so their popularity is random too. Working set: the
    fewest pages taking 90% of references."""

    name = "zipf"
    Params = ZipfParams

    def __init__(self, p: ZipfParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.n_pages = _mib_to_pages(p, "footprint_mib", mem_pages, page_kib, path)
        self.page_kind = np.full(self.n_pages, ANON, PAGE_KIND_DTYPE)
        _file_tail(self.page_kind, 0, self.n_pages, p.file_fraction)
        self._set_write_ratio(p.write_ratio)
        self._shuffle = True

    def _rank_probabilities(self) -> np.ndarray:
        return zipf_probabilities(self.n_pages, self.params.alpha)

    def working_set_pages(self) -> int:
        if self._ws is None:  # a sort of every page: once
            self._ws = self._coverage_pages(0.9)
        return self._ws


@dataclass(frozen=True)
class HotColdParams:
    """``hotcold`` parameters."""

    hot_mib: float | None = param(
        None, "MiB of the hot set; default 0.3 x VM memory", lo=0, lo_open=True, mem_fraction=0.3
    )
    cold_mib: float | None = param(
        None, "MiB of the cold set (0 allowed); default 0.6 x VM memory", lo=0, mem_fraction=0.6
    )
    hot_prob: float = param(0.9, "share of references to the hot set, default 0.9", lo=0, hi=1)
    write_ratio: float = param(0.2, _WRITE_DOC + ", default 0.2", lo=0, hi=1)
    file_fraction: float = param(0.0, _FILE_DOC + " (in each set), default 0.0", lo=0, hi=1)


class HotColdWorkload(_IndependentWorkload):
    """Two uniform sets: pages ``[0, hot)`` take ``hot_prob`` of the references, pages
    ``[hot, hot + cold)`` the rest. Working set: the hot set."""

    name = "hotcold"
    Params = HotColdParams

    def __init__(self, p: HotColdParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.hot_pages = _mib_to_pages(p, "hot_mib", mem_pages, page_kib, path)
        cold = _mib_to_pages(p, "cold_mib", mem_pages, page_kib, path, allow_zero=True)
        self.n_pages = self.hot_pages + cold
        self.page_kind = np.full(self.n_pages, ANON, PAGE_KIND_DTYPE)
        _file_tail(self.page_kind, 0, self.hot_pages, p.file_fraction)
        _file_tail(self.page_kind, self.hot_pages, self.n_pages, p.file_fraction)
        self._set_write_ratio(p.write_ratio)

    def _rank_probabilities(self) -> np.ndarray:
        cold = self.n_pages - self.hot_pages
        hot_share = self.params.hot_prob if cold > 0 else 1.0
        probs = np.empty(self.n_pages, np.float64)
        probs[: self.hot_pages] = hot_share / self.hot_pages
        probs[self.hot_pages :] = (1.0 - hot_share) / max(cold, 1)
        return probs / probs.sum()

    def working_set_pages(self) -> int:
        return self.hot_pages


@dataclass(frozen=True)
class PhasesParams:
    """``phases`` parameters."""

    ws_mib: float | None = param(
        None,
        "MiB of the working set of each phase; default 0.4 x VM memory",
        lo=0,
        lo_open=True,
        mem_fraction=0.4,
    )
    footprint_mib: float | None = param(
        None,
        "MiB the working set moves within; default 0.9 x VM memory",
        lo=0,
        lo_open=True,
        mem_fraction=0.9,
    )
    phase_refs: int = param(200_000, "references per phase, default 200000", lo=1)
    inner: str = param(
        "uniform",
        "distribution inside the working set: uniform (default) or zipf",
        choices=("uniform", "zipf"),
    )
    alpha: float = param(0.9, "Zipf exponent when inner = zipf, default 0.9", lo=0, hi=10)
    write_ratio: float = param(0.2, _WRITE_DOC + ", default 0.2", lo=0, hi=1)
    file_fraction: float = param(0.0, _FILE_DOC + ", default 0.0", lo=0, hi=1)


class PhasesWorkload(Workload):
    """Denning's phase model: a working set of ``ws`` contiguous pages (wrapping around
    the footprint) takes every reference for ``phase_refs`` references, then moves to a new
    seeded position. Phase k's position is the k-th draw of its own stream, so phases do
    not depend on chunking. Working set: ``ws`` pages."""

    name = "phases"
    Params = PhasesParams

    def __init__(self, p: PhasesParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.ws_pages = _mib_to_pages(p, "ws_mib", mem_pages, page_kib, path)
        self.n_pages = _mib_to_pages(p, "footprint_mib", mem_pages, page_kib, path)
        if self.ws_pages > self.n_pages:
            raise ConfigError(
                f"{path}.ws_mib: the working set ({self.ws_pages} pages) must fit in the "
                f"footprint ({self.n_pages} pages)"
            )
        self.phase_refs = p.phase_refs
        self.page_kind = np.full(self.n_pages, ANON, PAGE_KIND_DTYPE)
        _file_tail(self.page_kind, 0, self.n_pages, p.file_fraction)
        self._set_write_ratio(p.write_ratio)
        alpha = p.alpha if p.inner == "zipf" else 0.0
        self._table = pack_alias(*alias_table(zipf_probabilities(self.ws_pages, alpha)))

    def _reset(self, layout: np.random.Generator) -> None:
        self._layout_rng = layout
        self._starts: list[int] = []

    def phase_start(self, k: int) -> int:
        """First page of phase ``k``'s working set (drawn on first use)."""
        while len(self._starts) <= k:
            self._starts.append(int(self._layout_rng.random() * self.n_pages))
        return self._starts[k]

    def _pages(self, n: int) -> np.ndarray:
        ranks = np.empty(n, np.int32)
        alias_sample(self._pick_rng.random(n), self._table, ranks)
        pages = ranks.astype(np.int64)
        # Add each phase's offset segment by segment: a Python step per phase, not per page.
        done = 0
        while done < n:
            ref = self._position + done
            k = ref // self.phase_refs
            end = min(n, done + (k + 1) * self.phase_refs - ref)
            pages[done:end] += self.phase_start(k)
            done = end
        np.remainder(pages, self.n_pages, out=pages)
        return pages.astype(np.int32)

    def _warm_order(self) -> np.ndarray:
        start = self.phase_start(self._position // self.phase_refs)
        # The current working set (hottest rank first), then the rest of the footprint.
        return ((start + np.arange(self.n_pages, dtype=np.int64)) % self.n_pages).astype(np.int32)

    def working_set_pages(self) -> int:
        return self.ws_pages


@dataclass(frozen=True)
class ScanParams:
    """``scan`` parameters."""

    footprint_mib: float | None = param(
        None,
        "MiB scanned in a loop; default 1.2 x VM memory (more than fits)",
        lo=0,
        lo_open=True,
        mem_fraction=1.2,
    )


class ScanWorkload(Workload):
    """A sequential read of file pages, wrapping around: every page in turn, forever. The
    scan starts at a seeded page. No reuse shorter than the footprint, so LRU and CLOCK
    fault on every reference once the footprint exceeds memory. Working set: the
    footprint. Warm order: the most recently scanned pages first (the steady state)."""

    name = "scan"
    Params = ScanParams

    def __init__(self, p: ScanParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.n_pages = _mib_to_pages(p, "footprint_mib", mem_pages, page_kib, path)
        self.page_kind = np.full(self.n_pages, FILE, PAGE_KIND_DTYPE)

    def _reset(self, layout: np.random.Generator) -> None:
        self._start = int(layout.random() * self.n_pages)

    def _pages(self, n: int) -> np.ndarray:
        first = self._start + self._position
        return ((first + np.arange(n, dtype=np.int64)) % self.n_pages).astype(np.int32)

    def _warm_order(self) -> np.ndarray:
        last = self._start + self._position - 1
        return ((last - np.arange(self.n_pages, dtype=np.int64)) % self.n_pages).astype(np.int32)

    def working_set_pages(self) -> int:
        return self.n_pages


@dataclass(frozen=True)
class DbParams:
    """``db`` parameters. Shares are relative weights (normalized to sum to 1)."""

    cache_mib: float | None = param(
        None,
        "MiB of the file-backed buffer cache; default 0.45 x VM memory",
        lo=0,
        lo_open=True,
        mem_fraction=0.45,
    )
    cache_share: float = param(0.70, "share of references to the cache, default 0.70", lo=0)
    cache_alpha: float = param(0.8, "Zipf exponent inside the cache, default 0.8", lo=0, hi=10)
    cache_write_ratio: float = param(0.05, _WRITE_DOC + " in the cache, default 0.05", lo=0, hi=1)
    cold_mib: float | None = param(
        None,
        "MiB of cold anonymous memory (0 allowed); default 0.4 x VM memory",
        lo=0,
        mem_fraction=0.4,
    )
    cold_share: float = param(0.05, "share of references to cold memory, default 0.05", lo=0)
    cold_write_ratio: float = param(0.3, _WRITE_DOC + " in cold memory, default 0.3", lo=0, hi=1)
    heap_mib: float | None = param(
        None,
        "MiB of the hot anonymous heap (0 allowed); default 0.05 x VM memory",
        lo=0,
        mem_fraction=0.05,
    )
    heap_share: float = param(0.25, "share of references to the heap, default 0.25", lo=0)
    heap_write_ratio: float = param(0.5, _WRITE_DOC + " in the heap, default 0.5", lo=0, hi=1)


class DbWorkload(_IndependentWorkload):
    """A database server: a hot file-backed buffer cache (Zipf inside), cold anonymous
    memory and a small hot anonymous heap, laid out as pages ``[cache | cold | heap]``.
    Working set: the cache plus the heap. ``cache_pages``/``cold_pages``/``heap_pages`` and
    the ``*_range`` attributes name the regions."""

    name = "db"
    Params = DbParams

    def __init__(self, p: DbParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        sizes = {
            "cache": _mib_to_pages(p, "cache_mib", mem_pages, page_kib, path),
            "cold": _mib_to_pages(p, "cold_mib", mem_pages, page_kib, path, allow_zero=True),
            "heap": _mib_to_pages(p, "heap_mib", mem_pages, page_kib, path, allow_zero=True),
        }
        shares = {r: getattr(p, f"{r}_share") if sizes[r] else 0.0 for r in sizes}
        total = sum(shares.values())
        if total <= 0:
            raise ConfigError(f"{path}.cache_share: the shares of non-empty regions sum to 0")
        self.cache_pages, self.cold_pages, self.heap_pages = sizes.values()
        self.n_pages = sum(sizes.values())
        self.cache_range = (0, self.cache_pages)
        self.cold_range = (self.cache_pages, self.cache_pages + self.cold_pages)
        self.heap_range = (self.cold_range[1], self.n_pages)
        self.page_kind = np.full(self.n_pages, ANON, PAGE_KIND_DTYPE)
        self.page_kind[slice(*self.cache_range)] = FILE
        self._shares = [shares[r] / total for r in sizes]
        self._write_ends = np.array([self.cache_range[1], self.cold_range[1]], np.int64)
        self._write_ratios = np.array(
            [p.cache_write_ratio, p.cold_write_ratio, p.heap_write_ratio], np.float64
        )

    def _rank_probabilities(self) -> np.ndarray:
        probs = np.empty(self.n_pages, np.float64)
        ranges = (self.cache_range, self.cold_range, self.heap_range)
        for i, ((lo, hi), share) in enumerate(zip(ranges, self._shares, strict=True)):
            if hi == lo:
                continue
            alpha = self.params.cache_alpha if i == 0 else 0.0
            probs[lo:hi] = share * zipf_probabilities(hi - lo, alpha)
        return probs / probs.sum()

    def working_set_pages(self) -> int:
        return self.cache_pages + self.heap_pages


@dataclass(frozen=True)
class IdleParams:
    """``idle`` parameters."""

    footprint_mib: float | None = param(
        None, "MiB it touches; default 0.05 x VM memory", lo=0, lo_open=True, mem_fraction=0.05
    )
    activity: float = param(
        0.01,
        "fraction of CPU time spent issuing references, default 0.01",
        lo=0,
        lo_open=True,
        hi=1,
    )
    write_ratio: float = param(0.1, _WRITE_DOC + ", default 0.1", lo=0, hi=1)


class IdleWorkload(_IndependentWorkload):
    """A guest that is up but does little: rare uniform references over a small anonymous
    footprint. Working set: the footprint."""

    name = "idle"
    Params = IdleParams

    def __init__(self, p: IdleParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.n_pages = _mib_to_pages(p, "footprint_mib", mem_pages, page_kib, path)
        self.page_kind = np.full(self.n_pages, ANON, PAGE_KIND_DTYPE)
        self.activity = p.activity
        self._set_write_ratio(p.write_ratio)

    def _rank_probabilities(self) -> np.ndarray:
        return np.full(self.n_pages, 1.0 / self.n_pages)

    def working_set_pages(self) -> int:
        return self.n_pages


# --------------------------------------------------------------------------------------
# Real workloads: a trace file, a DAMON record. The files are read by harness.traces (the
# one place that knows file formats), once per process, and shared by every VM of the
# process that uses the same file: a sweep ships only the path.
# --------------------------------------------------------------------------------------


def _file_error(path: str, exc: Exception) -> ConfigError:
    """A reader's one-line UserError (it names the file) as a ConfigError naming the key."""
    return ConfigError(f"{path}.path: {exc}")


def _check_path(p: Any, path: str) -> None:
    """The cheap checks of a file parameter, at validation: it is given and exists."""
    if not p.path:
        raise ConfigError(f"{path}.path: missing (the trace or record file to read)")
    import os

    if not os.path.isfile(p.path):
        what = "is a directory, not a file" if os.path.isdir(p.path) else "no such file"
        raise ConfigError(f"{path}.path: {p.path}: {what}")


def _parse_range(text: str, path: str) -> tuple[int, int] | None:
    if not text:
        return None
    lo, sep, hi = text.partition(":")
    try:
        bounds = (int(lo), int(hi))
    except ValueError:
        bounds = None
    if not sep or bounds is None or bounds[0] < 0 or bounds[1] <= bounds[0]:
        raise ConfigError(f"{path}.file_range: must be 'LO:HI' page ids with LO < HI, got {text!r}")
    return bounds


def _coverage(counts: np.ndarray, share: float) -> int:
    """The fewest pages that take ``share`` of the references, given per-page counts."""
    cum = np.cumsum(np.sort(counts)[::-1])
    return int(min(np.searchsorted(cum, share * cum[-1]) + 1, counts.size))


def _hash_pages(ids: np.ndarray, n_pages: int) -> np.ndarray:
    """splitmix64 of each id, modulo ``n_pages``: sparse ids spread over the guest."""
    x = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x % np.uint64(n_pages)).astype(np.int32)


@dataclass(frozen=True)
class TraceParams:
    """``trace`` parameters."""

    path: str = param(
        "",
        "trace file (.csv: page ids or MSR Cambridge; .parquet; .npy; .oracleGeneral); "
        "required; every worker must see it at this path",
        unit="path",
    )
    format: str = param(
        "",
        "trace format; default from the suffix",
        choices=("", "csv", "msr", "parquet", "npy", "oracleGeneral"),
        unit="name",
    )
    page_column: str = param("page", "csv/parquet column of page ids, default page", unit="name")
    write_column: str = param(
        "",
        "csv/parquet column of the write flag (0/1) or op (R/W, read/write); default the "
        "first of write, op, type present (none: all reads)",
        unit="name",
    )
    time_column: str = param(
        "", "csv/parquet timestamp column; default the first of time, timestamp, ts", unit="name"
    )
    time_unit_s: float | None = param(
        None,
        "seconds per timestamp unit; default by format (MSR 1e-7, oracleGeneral 1, csv 1)",
        lo=0,
        lo_open=True,
        unit="s",
    )
    kind_column: str = param(
        "", "csv/parquet column of page kinds (file/anon or 1/0); default none", unit="name"
    )
    split_bytes: int | None = param(
        None,
        "bytes per page that block requests (offset, size) are split into; default 4096 "
        "for block traces (MSR, columns offset+size), none for page-id traces",
        lo=1,
        unit="bytes",
    )
    at_end: str = param(
        "loop",
        "when the trace ends: loop (start again) or idle (the VM stops issuing references)",
        choices=("loop", "idle"),
        unit="name",
    )
    timing: str = param(
        "guest",
        "when references are due: guest (as fast as the VM issues them, default), rate "
        "(refs_per_s per simulated second) or timestamps (the trace's own, times time_scale)",
        choices=("guest", "rate", "timestamps"),
        unit="name",
    )
    refs_per_s: float = param(
        100_000.0, "references per simulated second when timing = rate, default 100000",
        lo=0, lo_open=True, unit="1/s",
    )  # fmt: skip
    time_scale: float = param(
        1.0,
        "simulated seconds per trace second when timing = timestamps (0.1: 10x faster)",
        lo=0,
        lo_open=True,
        unit="s/s",
    )
    mapping: str = param(
        "pack",
        "trace page ids -> guest pages: pack (distinct ids, in id order, onto pages 0..n-1; "
        "default), hash (ids hashed into footprint_mib), direct (id = guest page number, "
        "must be below the VM's pages)",
        choices=("pack", "hash", "direct"),
        unit="name",
    )
    footprint_mib: float | None = param(
        None,
        "MiB that mapping = hash spreads ids over; default 1.0 x VM memory",
        lo=0,
        lo_open=True,
        mem_fraction=1.0,
        unit="MiB",
    )
    kind: str = param(
        "auto",
        "page kind where kind_column and file_range do not say: auto (file for block "
        "traces, anon for page-id traces), anon or file",
        choices=("auto", "anon", "file"),
        unit="name",
    )
    file_range: str = param(
        "", "trace page ids LO:HI (half-open) that are file-backed; default none", unit="ids"
    )


class TraceWorkload(Workload):
    """A guest driven by a trace file: reference i of the trace is the guest's reference i
    (after splitting block requests into pages and mapping ids onto guest pages). Writes
    come from the trace's write/op column (none: reads). With ``timing`` rate or
    timestamps the references come when they are due and the guest idles in between; at
    the end of the trace it loops or idles. Working set: the fewest pages taking 90% of the
    trace's references; warm order: the most referenced pages first."""

    name = "trace"
    Params = TraceParams

    @staticmethod
    def check(p: TraceParams, path: str) -> None:
        _check_path(p, path)
        _parse_range(p.file_range, path)

    def __init__(self, p: TraceParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.check(p, path)
        from harness.errors import UserError
        from harness.traces import cached, cached_trace, file_key

        options = dict(
            page_column=p.page_column,
            write_column=p.write_column or None,
            time_column=p.time_column or None,
            kind_column=p.kind_column or None,
            split_bytes=p.split_bytes,
            time_unit_s=p.time_unit_s,
        )
        hash_pages = _mib_to_pages(p, "footprint_mib", mem_pages, page_kib, path)
        size = {"pack": 0, "hash": hash_pages, "direct": mem_pages}[p.mapping]
        try:
            data = cached_trace(p.path, p.format or None, **options)
            key = ("trace-map", *file_key(p.path), p.format, tuple(sorted(options.items())),
                   p.mapping, size, p.kind, p.file_range)  # fmt: skip
            m = cached(key, lambda: self._map(data, p, size, path))
        except UserError as exc:
            raise _file_error(path, exc) from None
        self.trace = data
        self.n_pages = m["n_pages"]
        self.page_kind = m["page_kind"]
        self._trace_pages, self._trace_writes = m["pages"], m["writes"]
        self._order, self._ws = m["order"], m["ws"]
        self._length = self._trace_pages.size
        self._loop = p.at_end == "loop"
        self._timing = p.timing
        self._rate_per_ms = p.refs_per_s / 1000.0
        if p.timing == "timestamps":
            if data.times_s is None:
                raise ConfigError(
                    f"{path}.timing: {p.path}: timing = timestamps, but the trace has no "
                    "timestamps (name its column with time_column)"
                )
            self._t_ms = m.get(("t_ms", p.time_scale))
            if self._t_ms is None:  # simulated times, once per time scale
                t = data.times_s * (1000.0 * p.time_scale)
                t.flags.writeable = False
                self._t_ms = m[("t_ms", p.time_scale)] = t
            last = float(self._t_ms[-1])
            # A loop lasts the trace's span plus one mean gap, so its last reference and
            # the next loop's first are not simultaneous; at least 1 ms.
            n = self._length
            self._period_ms = max(last * n / (n - 1) if n > 1 else 0.0, 1.0)

    @staticmethod
    def _map(data: Any, p: TraceParams, size: int, path: str) -> dict[str, Any]:
        """Trace ids -> guest pages (int32), page kinds, reference counts: once per file
        and mapping, shared read-only by every VM that uses them."""
        ids = np.asarray(data.pages)
        if p.mapping == "pack":
            uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
            pages = inverse.astype(np.int32).reshape(-1)
            n_pages = int(uniq.size)
        elif p.mapping == "hash":
            pages, n_pages = _hash_pages(ids, size), size
            first = None
        else:
            beyond = np.flatnonzero(ids >= size)
            if beyond.size:
                i = int(beyond[0])
                raise ConfigError(
                    f"{path}.path: {p.path}: page {int(ids[i])} (reference {i}) is beyond the "
                    f"guest's {size} pages (mapping = direct; use pack or hash, or a larger VM)"
                )
            pages, n_pages = ids.astype(np.int32), size
            first = None
        if first is None:
            touched, first = np.unique(pages, return_index=True)
        else:
            touched = np.arange(n_pages)
        # Kind of each page: its first reference's, from the kind column, else the file
        # range, else the default.
        default = p.kind if p.kind != "auto" else ("file" if data.block else "anon")
        page_kind = np.full(n_pages, FILE if default == "file" else ANON, PAGE_KIND_DTYPE)
        bounds = _parse_range(p.file_range, path)
        if data.file_kind is not None:
            page_kind[touched] = np.where(data.file_kind[first] != 0, FILE, ANON)
        elif bounds is not None:
            first_ids = ids[first]
            in_range = (first_ids >= bounds[0]) & (first_ids < bounds[1])
            page_kind[touched] = np.where(in_range, FILE, ANON)
        writes = (
            np.zeros(pages.size, np.uint8)
            if data.writes is None
            else np.ascontiguousarray(data.writes, np.uint8)
        )
        counts = np.bincount(pages, minlength=n_pages)
        order = np.argsort(-counts, kind="stable").astype(np.int32)
        for a in (pages, writes, order, page_kind):
            a.flags.writeable = False  # shared by every VM of the process
        return {"pages": pages, "writes": writes, "n_pages": n_pages, "page_kind": page_kind,
                "order": order, "ws": _coverage(counts, 0.9)}  # fmt: skip

    def _reset(self, layout: np.random.Generator) -> None:
        pass  # a trace has no random layout

    def _pages(self, n: int) -> np.ndarray:  # generate() is overridden
        raise NotImplementedError

    def _due(self, until_ms: float) -> float:
        """References of the whole (looped) stream due before ``until_ms``."""
        if self._timing == "guest" or not math.isfinite(until_ms):
            return math.inf
        if until_ms <= 0:
            return 0
        if self._timing == "rate":
            return math.ceil(until_ms * self._rate_per_ms)  # i is due at i / rate
        t, n = self._t_ms, self._length
        if not self._loop:
            return int(np.searchsorted(t, until_ms, "left"))
        loops = math.floor(until_ms / self._period_ms)
        rest = until_ms - loops * self._period_ms
        return loops * n + int(np.searchsorted(t, rest, "left"))

    def generate(self, n: int, until_ms: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """The next references of the trace: at most ``n``, only those due before
        ``until_ms``, none past the end unless it loops."""
        self._require_reset()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        pos, length = self._position, self._length
        limit = self._due(until_ms)
        if not self._loop:
            limit = min(limit, length)
        k = int(max(0, min(n, limit - pos)))
        self._position += k
        i = pos % length
        if i + k <= length:  # the common case: one slice, no copy
            return self._trace_pages[i : i + k], self._trace_writes[i : i + k]
        idx = (i + np.arange(k, dtype=np.int64)) % length
        return self._trace_pages[idx], self._trace_writes[idx]

    def _warm_order(self) -> np.ndarray:
        return self._order

    def working_set_pages(self) -> int:
        return self._ws


@dataclass(frozen=True)
class DamonParams:
    """``damon`` parameters."""

    path: str = param(
        "",
        "damo record file (JSON, or damo's zlib-compressed default); required; every "
        "worker must see it at this path",
        unit="path",
    )
    footprint_mib: float | None = param(
        None,
        "MiB the record's address ranges (gaps removed) are scaled onto; default their own "
        "size in guest pages",
        lo=0,
        lo_open=True,
        unit="MiB",
    )
    time_scale: float = param(
        1.0,
        "simulated seconds per recorded second (0.1: the record plays 10x faster)",
        lo=0,
        lo_open=True,
        unit="s/s",
    )
    at_end: str = param(
        "loop",
        "after the last snapshot: loop (from the first), hold (keep the last) or idle",
        choices=("loop", "hold", "idle"),
        unit="name",
    )
    write_ratio: float = param(
        0.2, _WRITE_DOC + " (DAMON does not record writes), default 0.2", lo=0, hi=1
    )
    kind: str = param("anon", "page kind of every page: anon (default) or file",
                      choices=("anon", "file"), unit="name")  # fmt: skip


class DamonWorkload(Workload):
    """A guest driven by a DAMON record (``damo record``). The record's address ranges,
    gaps removed, map onto guest pages in address order. In each snapshot (one
    aggregation interval, scaled by ``time_scale``) a region of ``nr_accesses`` takes
    references in proportion to nr_accesses x its size, uniform inside it: a page's
    access rate follows the rate DAMON saw. A snapshot in which nothing was accessed is
    idle. Working set: the pages of regions with nr_accesses > 0 in the current snapshot,
    so it changes over time as the record's did. Warm order: those regions, most accessed
    and then oldest (``age``) first."""

    name = "damon"
    Params = DamonParams

    @staticmethod
    def check(p: DamonParams, path: str) -> None:
        _check_path(p, path)

    def __init__(self, p: DamonParams, mem_pages: int, page_kib: int, path: str) -> None:
        super().__init__(p, mem_pages, page_kib, path)
        self.check(p, path)
        from harness.errors import UserError
        from harness.traces import cached, cached_damon_record, file_key

        size = None if p.footprint_mib is None else _mib_to_pages(
            p, "footprint_mib", mem_pages, page_kib, path)  # fmt: skip
        try:
            snaps = cached_damon_record(p.path)
            key = ("damon-map", *file_key(p.path), size, page_kib, p.time_scale)
            m = cached(key, lambda: self._map(snaps, size, page_kib * 1024, p.time_scale))
        except UserError as exc:
            raise _file_error(path, exc) from None
        self.n_pages = m["n_pages"]
        self.page_kind = np.full(self.n_pages, FILE if p.kind == "file" else ANON,
                                 PAGE_KIND_DTYPE)  # fmt: skip
        self.snapshots = m["snapshots"]
        self._starts_ms, self._duration_ms = m["starts_ms"], m["duration_ms"]
        self._at_end = p.at_end
        self._set_write_ratio(p.write_ratio)
        self._snap = 0

    @staticmethod
    def _map(snaps: list, size: int | None, page_bytes: int, time_scale: float) -> dict:
        """Regions -> guest page ranges and per-snapshot sampling tables."""
        lo = np.concatenate([s.starts for s in snaps])
        hi = np.concatenate([s.ends for s in snaps])
        # The union of every range the record covers, gaps removed: address a in union
        # interval k sits at a - iv_lo[k] + before[k].
        order = np.argsort(lo, kind="stable")
        iv_lo, iv_hi = [], []
        for a, b in zip(lo[order].tolist(), hi[order].tolist(), strict=True):
            if iv_hi and a <= iv_hi[-1]:
                iv_hi[-1] = max(iv_hi[-1], b)
            else:
                iv_lo.append(a)
                iv_hi.append(b)
        iv_lo_a, iv_hi_a = np.array(iv_lo, np.int64), np.array(iv_hi, np.int64)
        before = np.concatenate([[0], np.cumsum(iv_hi_a - iv_lo_a)])
        total = int(before[-1])
        n_pages = max(1, math.ceil(total / page_bytes)) if size is None else size
        per_byte = n_pages / total if size is not None else 1.0 / page_bytes

        def compact(a: np.ndarray) -> np.ndarray:
            k = np.searchsorted(iv_lo_a, a, "right") - 1
            return a - iv_lo_a[k] + before[k]

        t0 = min(s.start_ns for s in snaps)
        out = []
        for s in snaps:
            p_lo = np.minimum(np.floor(compact(s.starts) * per_byte), n_pages - 1)
            p_hi = np.ceil((compact(s.ends - 1) + 1) * per_byte)
            p_lo = p_lo.astype(np.int64)
            p_hi = np.clip(p_hi.astype(np.int64), p_lo + 1, n_pages)
            length = p_hi - p_lo
            weight = s.nr_accesses * length
            hot = np.zeros(n_pages, bool)
            for a, b in zip(p_lo[s.nr_accesses > 0], p_hi[s.nr_accesses > 0], strict=True):
                hot[a:b] = True
            rank = np.lexsort((-s.age, -s.nr_accesses))  # most accessed, then oldest, first
            warm = np.concatenate(
                [np.arange(a, b) for a, b in zip(p_lo[rank], p_hi[rank], strict=True)]
                + [np.arange(n_pages)]
            )
            _, first = np.unique(warm, return_index=True)
            out.append({
                "lo": p_lo, "length": length, "cum": np.cumsum(weight),
                "total": float(weight.sum()), "ws": int(hot.sum()),
                "warm": warm[np.sort(first)].astype(np.int32),
            })  # fmt: skip
        starts = np.array([(s.start_ns - t0) / 1e6 * time_scale for s in snaps])
        duration = (max(s.end_ns for s in snaps) - t0) / 1e6 * time_scale
        return {"n_pages": n_pages, "snapshots": out, "starts_ms": starts,
                "duration_ms": duration}  # fmt: skip

    def snapshot_at(self, t_ms: float) -> int | None:
        """Index of the snapshot in effect at simulated ``t_ms`` (None: idle past the end)."""
        if self._duration_ms > 0 and t_ms >= self._duration_ms:
            if self._at_end == "idle":
                return None
            if self._at_end == "hold":
                return len(self.snapshots) - 1
            t_ms = math.fmod(t_ms, self._duration_ms)
        return max(0, int(np.searchsorted(self._starts_ms, t_ms, "right")) - 1)

    def _reset(self, layout: np.random.Generator) -> None:
        self._snap = 0

    def _pages(self, n: int) -> np.ndarray:  # generate() is overridden
        raise NotImplementedError

    def generate(self, n: int, until_ms: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """``n`` references drawn from the snapshot in effect just before ``until_ms``
        (without a time: the current one); none if it saw no access or the record ended."""
        self._require_reset()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if math.isfinite(until_ms):
            s = self.snapshot_at(max(0.0, until_ms - 1e-6))
            if s is None:
                return np.zeros(0, np.int32), np.zeros(0, np.uint8)
            self._snap = s
        snap = self.snapshots[self._snap]
        if snap["total"] <= 0:
            return np.zeros(0, np.int32), np.zeros(0, np.uint8)
        # One uniform per reference picks both the region (inverse CDF over region
        # weights) and the page inside it (where it falls within the region's share).
        x = self._pick_rng.random(n) * snap["total"]
        cum = snap["cum"]
        r = np.minimum(np.searchsorted(cum, x, "right"), cum.size - 1)
        width = cum[r] - np.where(r > 0, cum[r - 1], 0.0)
        frac = (x - (cum[r] - width)) / width
        length = snap["length"][r]
        pages = snap["lo"][r] + np.minimum((frac * length).astype(np.int64), length - 1)
        pages = pages.astype(np.int32)
        self._position += n
        return pages, self._writes(pages)

    def _warm_order(self) -> np.ndarray:
        return self.snapshots[self._snap]["warm"]

    def working_set_pages(self) -> int:
        return self.snapshots[self._snap]["ws"]


# --------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------

WORKLOADS: dict[str, type[Workload]] = {
    cls.name: cls
    for cls in (
        ZipfWorkload,
        HotColdWorkload,
        PhasesWorkload,
        ScanWorkload,
        DbWorkload,
        IdleWorkload,
        TraceWorkload,
        DamonWorkload,
    )
}


def _workload_class(name: str, path: str) -> type[Workload]:
    try:
        return WORKLOADS[name]
    except KeyError:
        known = ", ".join(WORKLOADS)
        raise ConfigError(f"{path}: unknown workload '{name}' (known: {known})") from None


def check_workload_params(name: str, params: Mapping[str, Any], path: str) -> None:
    """Validate a workload's parameters without building it; ConfigError names
    ``{path}.{key}`` for an unknown parameter, a wrong type or a value out of range, and
    for a file workload (``trace``, ``damon``) a missing ``path`` or file. What needs the
    file's contents (columns, format, ids beyond the guest) is checked when it is built."""
    cls = _workload_class(name, path)
    p = _parse_params(cls, params, path)
    check = getattr(cls, "check", None)
    if check is not None:
        check(p, path)


def make_workload(
    name: str,
    params: Mapping[str, Any],
    mem_pages: int,
    page_kib: int,
    path: str = "workload_params",
) -> Workload:
    """Build workload ``name`` for a VM of ``mem_pages`` pages of ``page_kib`` KiB. Sizes
    that depend on the VM (a working set larger than its footprint, a size under one page)
    are checked here; errors name ``{path}.{key}``. Call ``reset(rng)`` before use."""
    if mem_pages < 1:
        raise ValueError(f"mem_pages must be >= 1, got {mem_pages}")
    if page_kib < 1:
        raise ValueError(f"page_kib must be >= 1, got {page_kib}")
    cls = _workload_class(name, path)
    return cls(_parse_params(cls, params, path), mem_pages, page_kib, path)


def describe_params(name: str) -> list[tuple[str, Any, str]]:
    """(parameter, default, doc) for each parameter of workload ``name``, for help texts."""
    cls = _workload_class(name, "workload")
    return [(f.name, f.default, f.metadata["doc"]) for f in dataclasses.fields(cls.Params)]


def _unit(f: dataclasses.Field) -> str:
    """A parameter's unit: declared, else from its name (``*_mib``: MiB, ``*_refs``:
    references, ratios, shares and fractions: 1), else empty (a dimensionless number)."""
    if f.metadata.get("unit") is not None:
        return f.metadata["unit"]
    if f.name.endswith("_mib"):
        return "MiB"
    if f.name.endswith("_refs"):
        return "references"
    if f.metadata["choices"]:
        return "name"
    return "1" if any(w in f.name for w in ("ratio", "share", "fraction", "prob")) else ""


def param_table(name: str) -> dict[str, dict[str, Any]]:
    """Workload ``name``'s parameters as a data table: parameter -> {default, unit, doc}
    (what ``balloonlab keys vms.workload_params`` prints)."""
    cls = _workload_class(name, "workload")
    return {
        f.name: {"default": f.default, "unit": _unit(f), "doc": f.metadata["doc"]}
        for f in dataclasses.fields(cls.Params)
    }

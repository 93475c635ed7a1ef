"""Seeded workload generators: the page-reference streams guests issue.

A workload owns a footprint of ``n_pages`` virtual pages (ids ``0..n_pages-1``), each
anonymous or file-backed (``page_kind``), and emits references in chunks:
``generate(n) -> (pages int32, writes uint8)``. All randomness comes from the generator
given to ``reset``; chunking does not change the stream (``generate(a)`` then
``generate(b)`` equals ``generate(a + b)``), because each concern draws from its own child
stream and takes exactly one float64 per reference (or per phase).

Parameters are in MiB (pages = MiB * 1024 / page_kib). Sizes default to fractions of the
VM's memory, so every workload fits a VM of any size unless told otherwise.

Registered workloads (``WORKLOADS``): ``zipf``, ``hotcold``, ``phases``, ``scan``, ``db``,
``idle``. Their parameters are the fields of the ``*Params`` dataclasses below.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numba import njit

from sim_core.config import ConfigError
from sim_core.constants import ANON, FILE, PAGE_KIND_DTYPE
from sim_core.theory import zipf_probabilities

# --------------------------------------------------------------------------------------
# Parameters: frozen dataclasses whose field metadata carries range, default rule and doc.
# --------------------------------------------------------------------------------------


def param(
    default: Any,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    mem_fraction: float | None = None,
) -> Any:
    """A workload parameter. ``mem_fraction``: a MiB size whose default (None) is this
    fraction of the VM's memory. ``lo``/``hi``: inclusive bounds (``lo_open``: exclusive)."""
    meta = dict(doc=doc, lo=lo, hi=hi, lo_open=lo_open, choices=choices, mem_fraction=mem_fraction)
    return dataclasses.field(default=default, metadata=meta)


def _check_value(path: str, value: Any, f: dataclasses.Field) -> Any:
    """Type- and range-check one parameter value; return it converted (int -> float)."""
    kind = str(f.type)
    meta = f.metadata
    if value is None and "None" in kind:
        return None
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {value!r}")
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{path}: must be one of {', '.join(meta['choices'])}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: must be a number, got {value!r}")
    if kind.startswith("int"):
        if not float(value).is_integer():
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{path}: must be finite, got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
        raise ConfigError(f"{path}: must be {'>' if meta['lo_open'] else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path}: must be <= {hi}, got {value!r}")
    return value


def _parse_params(cls: type[Workload], params: Mapping[str, Any], path: str) -> Any:
    if not isinstance(params, Mapping):
        raise ConfigError(f"{path}: must be a table of workload parameters, got {params!r}")
    known = {f.name: f for f in dataclasses.fields(cls.Params)}
    values = {}
    for key, value in params.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{path}.{key}: unknown parameter of workload '{cls.name}' "
                f"({hint}known: {', '.join(known) or 'none'})"
            )
        values[key] = _check_value(f"{path}.{key}", value, known[key])
    return cls.Params(**values)


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

    def generate(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` references: page ids (int32 in [0, n_pages)) and writes (uint8)."""
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
    probability. Subclasses call ``_set_distribution`` with probabilities by *rank*; with
    ``shuffle`` a seeded permutation maps ranks to page ids, else rank = page id."""

    def _set_distribution(self, rank_probs: np.ndarray, *, shuffle: bool) -> None:
        self._rank_probs = rank_probs
        self._accept, self._alias = alias_table(rank_probs)
        self._shuffle = shuffle
        self._perm: np.ndarray | None = None
        self._table = pack_alias(self._accept, self._alias)

    def _reset(self, layout: np.random.Generator) -> None:
        if self._shuffle:
            perm = self._perm = layout.permutation(self.n_pages).astype(np.int32)
            # Relabel the alias table from ranks to pages (bin r becomes bin perm[r]): the
            # bins are picked uniformly, so sampling draws pages directly, with no gather.
            accept = np.empty_like(self._accept)
            accept[perm] = self._accept
            alias = np.empty_like(self._alias)
            alias[perm] = perm[self._alias]
            self._table = pack_alias(accept, alias)

    def _pages(self, n: int) -> np.ndarray:
        pages = np.empty(n, np.int32)
        alias_sample(self._pick_rng.random(n), self._table, pages)
        return pages

    def _warm_order(self) -> np.ndarray:
        ranks = np.argsort(-self._rank_probs, kind="stable").astype(np.int32)
        return self._perm[ranks] if self._perm is not None else ranks

    def page_probabilities(self) -> np.ndarray:
        """Reference probability of each page id (after ``reset``)."""
        self._require_reset()
        probs = np.empty(self.n_pages, np.float64)
        pages = self._perm if self._perm is not None else np.arange(self.n_pages)
        probs[pages] = self._rank_probs
        return probs

    def _coverage_pages(self, share: float) -> int:
        """The fewest pages that take ``share`` of the references."""
        cum = np.cumsum(np.sort(self._rank_probs)[::-1])
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
        self._set_distribution(zipf_probabilities(self.n_pages, p.alpha), shuffle=True)

    def working_set_pages(self) -> int:
        return self._coverage_pages(0.9)


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
        hot_share = p.hot_prob if cold > 0 else 1.0
        probs = np.empty(self.n_pages, np.float64)
        probs[: self.hot_pages] = hot_share / self.hot_pages
        probs[self.hot_pages :] = (1.0 - hot_share) / max(cold, 1)
        self._set_write_ratio(p.write_ratio)
        self._set_distribution(probs / probs.sum(), shuffle=False)

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
        probs = np.empty(self.n_pages, np.float64)
        for region, (lo, hi) in zip(
            sizes, (self.cache_range, self.cold_range, self.heap_range), strict=True
        ):
            if hi == lo:
                continue
            alpha = p.cache_alpha if region == "cache" else 0.0
            probs[lo:hi] = shares[region] / total * zipf_probabilities(hi - lo, alpha)
        self._write_ends = np.array([self.cache_range[1], self.cold_range[1]], np.int64)
        self._write_ratios = np.array(
            [p.cache_write_ratio, p.cold_write_ratio, p.heap_write_ratio], np.float64
        )
        self._set_distribution(probs / probs.sum(), shuffle=False)

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
        self._set_distribution(np.full(self.n_pages, 1.0 / self.n_pages), shuffle=False)

    def working_set_pages(self) -> int:
        return self.n_pages


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
    ``{path}.{key}`` for an unknown parameter, a wrong type or a value out of range."""
    _parse_params(_workload_class(name, path), params, path)


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

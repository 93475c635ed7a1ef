"""Spatially hashed sampling of guest pages (``sampling.rate``), after SHARDS (Waldspurger,
Park, Garthwaite, Ahmad: "Efficient MRC Construction with SHARDS", FAST 2015).

What is sampled. Page ``p`` of guest ``g`` is simulated iff ``splitmix64(p ^ salt(seed, g))
< rate * 2**64``. The salt derives from the run's seed and the guest's index only, so the
sampled set of a guest is the same whatever the number of guests and whatever else runs;
every reference to a sampled page is kept, every reference to another page is dropped. The
sampled pages are renumbered densely ``0..k-1`` in order of their full ids (``k ~ rate *
n``); the guest owns only those. (A guest whose hash would sample no page at all keeps the
one page of smallest hash, so it is never empty.)

How the world is scaled (``Scale``), a time dilation: one simulated tick still covers the
same simulated time, and the sampled host is the full one shrunk by ``R = rate``:

- memory ``x R`` (``Scale.pages``): guest frames and swap slots, host frames available to
  guests and host swap; what derives from them follows (watermarks, kswapd's free_low /
  free_high, dirty limits, boot-time kernel frames, the warm start's room);
- per-event CPU time ``x 1/R`` (``Scale.time``): minor, major and host fault costs,
  ``cache_copy_us``: a fault of a sampled page stands for 1/R faults. The scheduling
  quantum by which one guest may run ahead of the others (``faults.QUANTUM_MS``) is
  dilated alike: left at 50 us, a guest behind pays the device clock's skew relative to
  R x fewer, 1/R x longer events, and host faults came out ~8% cheaper than in the full
  run. ``IDLE_RETRY_MS`` (a guest with nothing to wait for) is left as it is. The time of one
  reference, ``ref_us``, is divided by the guest's *reference share* ``f``: the share of
  its full stream that goes to sampled pages (``reference_share``; on average R). For the
  independent-reference workloads ``f`` is known exactly (the probabilities of the sampled
  pages); for the filtered ones it is taken as R. Fewer references per tick then fill the
  tick, so the references a guest issues per tick (and its reference buffer) scale by f.
  Why f and not R: with a skewed popularity (Zipf) a handful of hot pages carry much of
  the mass, and whether they fall in the sample moves f by tens of percent (for Zipf(1)
  over 10**5 pages at R = 0.1, sd(f)/R ~ 0.3). Charging ``ref_us / f`` makes the time a
  sampled guest spends per full reference ``ref_us + (sampled faults / R) / (references)
  x cost``: the faults enter through the Horvitz-Thompson estimate (sampled count / R),
  whose error comes only from the cold, non-resident pages, not from the hot ones. The
  warm start likewise draws ``20 x frames x f / R`` sampled references, the sampled
  share of the full guest's ``20 x frames``;
- the device: IOPS ``x R``, read and write service times ``x 1/R``; ``queue_depth`` and
  ``nr_requests`` are kept, so by Little's law the requests in flight (R x the arrival
  rate times 1/R x the time in the system) are those of the full host; the host's I/O
  buffer frames per request in flight ``x R`` (fixed point in millionths of a frame);
- the balloon driver's rate: ``balloon_batches_per_tick x 256 x R`` pages a tick, at
  least one;
- controllers see full-scale units (``scale_observation``): memory in KiB and event counts
  ``/ R`` (configured sizes and ``min_guarantee`` are the config's own values), PSI,
  fractions and requests in flight unchanged; the balloon targets they return (KiB) are
  multiplied by R before they are applied. ESX-style accessed-bit sampling keeps its
  ``sample_pages`` frames per guest: a uniform sample of the sampled frames is a uniform
  sample of the guest, and the active fraction's variance depends on the sample's size,
  not the guest's. kstaled's age histograms count frames, so they are scaled by 1/R;
- reported quantities are scaled back: references and throughput ``/ f`` per guest, every
  other count, rate and MiB gauge ``/ R`` (summary and tick rows); ratios, fractions,
  PSI, slowdown, the device queue length unchanged.

What is exact, what is an estimate. Exact (up to the rounding of sizes to whole pages):
configured sizes, prices, the per-guest workload's *conditional* reference distribution
over the sampled pages (independent-reference workloads: zipf, hotcold, db, idle, built
directly over the sampled pages), the sampled set itself, time, PSI's definition. Estimates
with a binomial error of about ``1 / sqrt(R n)`` relative: every count (references,
faults, swap and disk I/O, reclaimed pages), every memory gauge, the footprint-to-memory
ratio of a guest (its footprint is ``k`` sampled pages, its memory ``round(R m)``
frames), throughput and what derives from it (SLA violations, profit).

Where sampling breaks down:

- few pages per guest: at ``R n`` of a few hundred pages the binomial error of the
  footprint (and of every hot set, phase working set or scan region inside it) is several
  percent; a region with no sampled page vanishes (its references are all dropped, and a
  guest whose whole stream is such a region idles);
- granularities in pages do not shrink: virtio-balloon's 256-page batches (the rate is
  kept, the batch granularity is lost), reclaim's SWAP_CLUSTER_MAX (32 pages; also the
  dirty-limit slack of ``reclaim_may_write``), the flusher's scan of 4096 frames, free page
  reporting's 512-frame (2 MiB) chunks: each stands for ``1 / R`` times more memory, so
  free page reporting in particular almost never finds a whole free chunk;
- per-request disk latency: one sampled major fault waits ``1 / R`` times the device's
  latency, standing for ``1 / R`` faults of the full guest in a row: the totals agree, the
  per-fault latency and its distribution are not the device's (a fault's wait no longer
  overlaps other guests' requests as finely), and mq-deadline's counts in requests
  (``fifo_batch``, ``writes_starved``) cover ``1 / R`` times more simulated time;
- queue depth: requests in flight match on average, but a sampled request holds a channel
  ``1 / R`` times longer, so bursts queue at a coarser grain;
- the request table: ``nr_requests`` (and mq-deadline's async_depth, 3/4 of it) is kept,
  which by Little's law keeps the requests in flight when the device time dominates. But
  a write also holds its slot until it is reaped, and reaping follows the guests' clocks
  and the slices, times that are not dilated: when the table is full (a host swapping
  blindly at full speed) the sampled host gets 1/R times more pages through it per unit
  of time. Measured on 4 x 1 GiB at overcommit 1.5, R = 0.1: host swap-outs +8.5% with
  the default 256 requests, +2.6% with 4096 (where the table never fills);
- workloads with their own sequence (phases, scan, trace, damon) are generated in full
  and filtered, so their state is that of the full workload (a phase's alias table, the
  trace itself); only the independent-reference workloads are built over the sampled
  pages alone.

At ``rate = 1`` nothing here is used: ``make_scale`` returns None and the simulation takes
its unsampled path, bit for bit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import numpy as np

from sim_core.observation import ColdAges, HostStats, Observation
from sim_core.workloads import (
    Workload,
    _IndependentWorkload,
    alias_sample,
    alias_table,
    pack_alias,
)

SALT_STREAM = 0x5348415244  # "SHARD": the seed-sequence word that keys the sampling salts
HASH_CHUNK = 1 << 20  # page ids hashed at a time when the sampled set is found
FILTER_CHUNK = 1 << 20  # full references drawn at a time by a filtered workload
FILTER_OVERDRAW = 2.0  # a filtered workload draws at most this many x n / R full references

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 (Steele, Lea, Flood, OOPSLA 2014)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


# ---- which pages -----------------------------------------------------------------------------
def salt(seed: int, guest: int) -> np.uint64:
    """The hash salt of guest ``guest`` in a run of ``seed``: a function of those two only
    (not of the number of guests), so a guest's sampled set is the same in any host."""
    rng = np.random.default_rng([int(seed), int(guest), SALT_STREAM])
    return np.uint64(rng.integers(0, 2**63 - 1, dtype=np.int64))


def page_hash(pages: np.ndarray, page_salt: np.uint64) -> np.ndarray:
    """splitmix64's finalizer of ``page ^ salt``: 64 uniform bits per page id (uint64)."""
    x = (pages.astype(np.uint64) ^ page_salt) + _GAMMA
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def threshold(rate: float) -> np.uint64:
    """The hash bound of ``rate``: a page is sampled iff its hash is below it."""
    return np.uint64(min(2**64 - 1, int(rate * 2.0**64)))


def sampled_pages(n_pages: int, page_salt: np.uint64, rate: float) -> np.ndarray:
    """The sampled page ids of a footprint of ``n_pages``, ascending (int64): their index
    is the dense id. Never empty: with no hash under the bound the page of smallest hash
    is kept."""
    bound = threshold(rate)
    out = []
    best, best_hash = 0, None
    for lo in range(0, n_pages, HASH_CHUNK):
        ids = np.arange(lo, min(n_pages, lo + HASH_CHUNK), dtype=np.int64)
        h = page_hash(ids, page_salt)
        out.append(ids[h < bound])
        k = int(np.argmin(h))
        if best_hash is None or h[k] < best_hash:
            best, best_hash = int(ids[k]), h[k]
    pages = np.concatenate(out) if out else np.zeros(0, np.int64)
    return pages if pages.size else np.array([best], np.int64)


def dense_ids(sampled: np.ndarray, pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of ``pages`` that are sampled, their dense ids)."""
    idx = np.searchsorted(sampled, pages)
    hit = idx < sampled.size
    hit[hit] = sampled[idx[hit]] == pages[hit]
    return hit, idx[hit]


# ---- the scaling rules -------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """The scaling of a run sampled at ``rate`` (0 < rate < 1): sizes x rate, per-event
    times / rate, counts reported / rate."""

    rate: float

    def pages(self, full: int) -> int:
        """A size in pages (frames, slots): x rate, at least one page unless zero."""
        return 0 if full <= 0 else max(1, int(round(full * self.rate)))

    def time(self, cost: float) -> float:
        """A per-event cost (ms or us): / rate, so R x fewer events fill the same time."""
        return cost / self.rate

    def events_per_s(self, rate_per_s: float) -> float:
        """An event rate the model serves (device IOPS): x rate."""
        return rate_per_s * self.rate

    def per_event_pages(self, pages: float) -> float:
        """Memory held per event in flight (host I/O buffer frames per request): x rate."""
        return pages * self.rate

    def balloon_pages_per_tick(self, pages: int) -> int:
        """The balloon's rate: x rate, at least one page a tick."""
        return max(1, int(round(pages * self.rate)))

    def count_back(self, x):
        """A sampled count, rate or size -> its full-scale estimate: / rate (floats)."""
        return x / self.rate

    def int_back(self, x):
        """``count_back`` rounded to an integer (int, or int64 array)."""
        if isinstance(x, np.ndarray):
            return np.round(x / self.rate).astype(np.int64)
        return int(round(x / self.rate))

    def kib_to_sampled(self, kib: np.ndarray) -> np.ndarray:
        """Full-scale KiB a controller asks for -> the sampled world's KiB: x rate."""
        return np.asarray(kib, np.float64) * self.rate

    def device_params(self, params: dict) -> dict:
        """``block_device.device_params`` of the full device -> the sampled one."""
        out = dict(params)
        out["read_latency_us"] = self.time(params["read_latency_us"])
        out["write_latency_us"] = self.time(params["write_latency_us"])
        out["iops"] = self.events_per_s(params["iops"])
        return out  # queue_depth, nr_requests: kept (Little's law)


def make_scale(rate: float) -> Scale | None:
    """The Scale of ``sampling.rate``; None at rate 1: nothing is scaled at all."""
    return None if rate >= 1.0 else Scale(float(rate))


def scale_observation(
    obs: Observation, scale: Scale, maximum_kib: np.ndarray, target_kib: np.ndarray
) -> Observation:
    """An Observation of the sampled world -> full-scale units: memory and counts / rate,
    configured sizes (``maximum_kib``) and the controller's own last targets
    (``target_kib``) as given, PSI, fractions and requests in flight unchanged."""
    g, h, b = obs.guests, obs.host, scale.int_back
    balloon = b(g.maximum_kib - g.actual_kib)
    actual = np.asarray(maximum_kib, np.int64) - balloon
    kernel = b(g.actual_kib - g.available_kib)
    guests = replace(
        g,
        maximum_kib=np.asarray(maximum_kib, np.int64).copy(),
        actual_kib=actual,
        available_kib=actual - kernel,
        unused_kib=b(g.unused_kib),
        usable_kib=b(g.usable_kib),
        disk_caches_kib=b(g.disk_caches_kib),
        rss_kib=b(g.rss_kib),
        swap_in_kib=b(g.swap_in_kib),
        swap_out_kib=b(g.swap_out_kib),
        major_fault=b(g.major_fault),
        minor_fault=b(g.minor_fault),
    )  # min_guarantee_kib, psi, polled_s: already full-scale
    host = HostStats(
        memtotal_kib=h.memtotal_kib,  # the config's
        total_kib=b(h.total_kib),
        unused_kib=b(h.unused_kib),
        free_kib=b(h.free_kib),
        low_kib=b(h.low_kib),
        high_kib=b(h.high_kib),
        swap_total_kib=b(h.swap_total_kib),
        swap_used_kib=b(h.swap_used_kib),
        swap_in_kib=b(h.swap_in_kib),
        swap_out_kib=b(h.swap_out_kib),
        psi_some_us=h.psi_some_us,
        psi_full_us=h.psi_full_us,
        io_inflight=h.io_inflight,  # Little's law: the same requests in flight
    )
    cold = obs.cold_ages
    if cold is not None:
        cold = ColdAges(
            hist=b(cold.hist), promotions=b(cold.promotions), period_s=cold.period_s,
            scans=cold.scans,
        )  # fmt: skip
    return replace(
        obs,
        guests=guests,
        host=host,
        balloon_kib=b(obs.balloon_kib),
        target_kib=np.asarray(target_kib, np.int64).copy(),
        cold_ages=cold,
    )  # sample: a fraction of sample_pages frames, as it is


# ---- workloads over the sampled pages ------------------------------------------------------------
class SampledIndependentWorkload(Workload):
    """An independent-reference workload restricted to its sampled pages: page ``S[i]``
    (dense id i) drawn with probability ``P(S[i]) / sum_j P(S[j])``, exactly the full
    stream filtered to the sample, drawn directly from an alias table of ``k`` bins. The
    layout (which page holds which rank) is drawn from the same stream as the full
    workload's, so it is the full workload's layout."""

    def __init__(self, full: _IndependentWorkload, sampled: np.ndarray) -> None:
        super().__init__(full.params, 0, 0, "")
        self.name = full.name  # type: ignore[misc]
        self.Params = full.Params  # type: ignore[misc]
        self._full = full
        self.sampled = sampled
        self.n_pages = int(sampled.size)
        self.page_kind = np.ascontiguousarray(full.page_kind[sampled])
        full.page_kind = None  # type: ignore[assignment]  # no per-full-page array is kept
        self.activity = full.activity
        self._write_ratios = full._write_ratios.copy()
        self._write_ends = np.searchsorted(sampled, full._write_ends).astype(np.int64)
        self._probs = np.zeros(0, np.float64)
        self._ws: int | None = None

    def _page_probabilities_full(self, layout: np.random.Generator) -> np.ndarray:
        """The full workload's probability of every page id (transient, O(full))."""
        full = self._full
        ranks = full._rank_probabilities()
        if not full._shuffle:
            return ranks
        perm = layout.permutation(full.n_pages).astype(np.int32)  # as _IndependentWorkload
        probs = np.empty(full.n_pages, np.float64)
        probs[perm] = ranks
        return probs

    def _reset(self, layout: np.random.Generator) -> None:
        self._layout = copy.deepcopy(layout)
        probs = self._page_probabilities_full(layout)[self.sampled]
        self.reference_share = float(probs.sum())  # the sample's share of the references
        self._probs = probs / probs.sum()
        self._table = pack_alias(*alias_table(self._probs))

    def _pages(self, n: int) -> np.ndarray:
        pages = np.empty(n, np.int32)
        alias_sample(self._pick_rng.random(n), self._table, pages)
        return pages

    def _warm_order(self) -> np.ndarray:
        full = self._full
        order = np.argsort(-full._rank_probabilities(), kind="stable").astype(np.int32)
        if full._shuffle:
            order = copy.deepcopy(self._layout).permutation(full.n_pages).astype(np.int32)[order]
        _, dense = dense_ids(self.sampled, order)
        return dense.astype(np.int32)

    def page_probabilities(self) -> np.ndarray:
        """Reference probability of each sampled (dense) page id."""
        self._require_reset()
        return self._probs.copy()

    def working_set_pages(self) -> int:
        """Sampled pages taking 90% of the references."""
        if self._ws is None:
            cum = np.cumsum(np.sort(self._probs)[::-1])
            self._ws = int(min(np.searchsorted(cum, 0.9 * cum[-1]) + 1, self.n_pages))
        return self._ws


class FilteredWorkload(Workload):
    """Any workload, filtered as SHARDS filters a trace: the full stream is generated and
    only references to sampled pages are kept, renumbered to dense ids. ``generate(n)``
    returns ``n`` references unless the full stream has no more due (or yields none of the
    sample within ``FILTER_OVERDRAW x n / R`` references); what is drawn beyond ``n`` is
    kept for the next call, so chunking does not change the stream."""

    def __init__(self, full: Workload, sampled: np.ndarray, rate: float) -> None:
        super().__init__(full.params, 0, 0, "")
        self.name = full.name  # type: ignore[misc]
        self.Params = full.Params  # type: ignore[misc]
        self._full = full
        self.sampled = sampled
        self._rate = rate
        self.n_pages = int(sampled.size)
        self.page_kind = np.ascontiguousarray(full.page_kind[sampled])
        full.page_kind = None  # type: ignore[assignment]
        self.activity = full.activity
        self._held = (np.zeros(0, np.int32), np.zeros(0, np.uint8))

    def reset(self, rng: np.random.Generator) -> None:
        """(Re)start the full stream from ``rng``; nothing held over."""
        self._full.reset(rng)
        self._position = 0
        self._held = (np.zeros(0, np.int32), np.zeros(0, np.uint8))

    def reseed_stream(self, rng: np.random.Generator) -> None:
        """The full workload's stream reseeded; nothing held over."""
        self._full.reseed_stream(rng)
        self._held = (np.zeros(0, np.int32), np.zeros(0, np.uint8))

    def generate(self, n: int, until_ms: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` sampled references (dense ids, writes), fewer when the full
        stream runs dry before ``until_ms``."""
        self._require_reset()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        pages, writes = [self._held[0]], [self._held[1]]
        have = int(self._held[0].size)
        budget = int(math.ceil(FILTER_OVERDRAW * max(n - have, 0) / self._rate))
        while have < n and budget > 0:
            want = min(FILTER_CHUNK, budget, max(1024, int(math.ceil((n - have) / self._rate))))
            full_pages, full_writes = self._full.generate(want, until_ms)
            budget -= want
            # Membership in the sampled set is the hash test (and keeps the one page of a
            # guest whose hash sampled none).
            keep, dense = dense_ids(self.sampled, np.asarray(full_pages, np.int64))
            pages.append(dense.astype(np.int32))
            writes.append(np.asarray(full_writes)[keep].astype(np.uint8))
            have += int(dense.size)
            if full_pages.size < want:
                break  # nothing more is due
        all_pages, all_writes = np.concatenate(pages), np.concatenate(writes)
        self._held = (all_pages[n:], all_writes[n:])
        self._position += min(n, have)
        return all_pages[:n], all_writes[:n]

    def _reset(self, layout: np.random.Generator) -> None:  # reset() is overridden
        raise NotImplementedError

    def _pages(self, n: int) -> np.ndarray:  # generate() is overridden
        raise NotImplementedError

    def _warm_order(self) -> np.ndarray:
        order = np.asarray(self._full.warm_order(), np.int64)
        _, dense = dense_ids(self.sampled, order)
        return dense.astype(np.int32)

    def working_set_pages(self) -> int:
        """The full working set x rate (the full workload's own measure)."""
        return max(1, int(round(self._full.working_set_pages() * self._rate)))


def reference_share(workload: Workload, scale: Scale) -> float:
    """The share of a guest's full reference stream that goes to its sampled pages: known
    exactly for a workload built over them (its probabilities), else taken as the rate."""
    share = getattr(workload, "reference_share", None)
    return scale.rate if share is None else float(share)


def sample_workload(full: Workload, seed: int, guest: int, rate: float) -> Workload:
    """Guest ``guest``'s workload (built for its full footprint, not reset) restricted to
    its sampled pages: built over them for an independent-reference workload, filtered
    otherwise. Call ``reset(rng)`` on the result."""
    page_salt = salt(seed, guest)
    sampled = sampled_pages(int(full.n_pages), page_salt, rate)
    if isinstance(full, _IndependentWorkload):
        return SampledIndependentWorkload(full, sampled)
    return FilteredWorkload(full, sampled, rate)

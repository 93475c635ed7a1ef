"""The claim beside each figure, checked against the figure's data.

Each ``check_<figure>(rows, quick=False)`` takes the rows of the figure's named query (a
list of dicts, as ``analysis.db.records`` returns them) and returns a :class:`Claim`: the
claim in words, the numbers measured (with their 95% intervals), and a verdict decided by
explicit conditions on those numbers, never by hand. The checks are pure functions of the
rows, so tests feed them constructed data. A condition that cannot be evaluated (a policy
or a setting missing from the data) counts as failed and says so.

Intervals. A row carries its replicates as lists (``<column>_reps``, one value per run,
see the figure queries); a comparison ("A beats B", "x < threshold", "ratio >= 10") holds
only when its whole 95% interval (``analysis.stats``) lies on the claim's side, i.e. the
interval excludes the opposite result. Proportions over trials (fig. 7) use Wilson and
Newcombe intervals. With fewer than ``stats.MIN_REPLICATES`` replicates no interval can be
formed: the comparison is decided on the point estimate, and if it holds there it is
recorded as *untested* (a failure on the point estimate is still a failure).

Verdicts. A condition failed: NOT SUPPORTED. Otherwise, anything untested - a comparison
without its interval, or (``quick=True``) a condition over a range the quick sweep does not
cover ("at every overcommit ratio" with one ratio): NOT TESTED IN QUICK MODE. Otherwise
SUPPORTED. NOT TESTED only ever replaces what would have been SUPPORTED.
"""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis import stats
from analysis.stats import Interval

SUPPORTED = "SUPPORTED"
NOT_SUPPORTED = "NOT SUPPORTED"
NOT_TESTED = "NOT TESTED IN QUICK MODE"
NO_DATA = "NO DATA"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_TESTED, NO_DATA)

Rows = list[dict[str, Any]]
REPS_SUFFIX = "_reps"  # a query's per-replicate list of a column: <column>_reps


@dataclass(frozen=True)
class Claim:
    """A figure's claim, what was measured, and whether the data support it."""

    figure: str
    text: str
    verdict: str  # one of VERDICTS
    numbers: dict[str, Any] = field(default_factory=dict)
    conditions: list[tuple[str, bool]] = field(default_factory=list)  # (condition, held)
    untested: list[str] = field(default_factory=list)  # what could not be tested, and why

    @property
    def supported(self) -> bool:
        return self.verdict == SUPPORTED

    @property
    def holds(self) -> bool:
        """Every condition that could be tested held (SUPPORTED or NOT TESTED)."""
        return self.verdict in (SUPPORTED, NOT_TESTED)

    @property
    def reason(self) -> str:
        """The conditions that failed, or what could not be tested, or that all held."""
        failed = [c for c, ok in self.conditions if not ok]
        if self.verdict == NO_DATA:
            return "no stored runs for this figure"
        if failed:
            return "failed: " + "; ".join(failed)
        if self.untested:
            return "not tested: " + "; ".join(self.untested)
        return "all conditions held: " + "; ".join(c for c, _ in self.conditions)


CLAIMS: dict[str, str] = {
    "fig01_io_amplification": (
        "Blind host swapping amplifies reclaim I/O: at every overcommit ratio, the balloon "
        "and VSwapper's host discard each cause less total reclaim I/O (writes caused by "
        "reclaim plus refault reads, every reclaimer counted alike) than host swapping, "
        "and each runs the guests faster (VSwapper: up to an order of magnitude)."
    ),
    "fig02_esc": (
        "ESC takes most of its victims from class (R,M) = (0,0) - unreferenced and clean - "
        "and so writes back fewer pages than CLOCK at every cache size; Belady's OPT faults "
        "least of all policies."
    ),
    "fig03_ws_vs_file_first": (
        "Under balloon pressure on the `db` workload, the working-set guest policy keeps the "
        "hot buffer cache: fewer major faults per 1,000 references and higher throughput "
        "than file_first at every balloon size where the balloon makes file_first fault "
        "(more than it does without a balloon)."
    ),
    "fig04_push_pull": (
        "A larger balloon moves pressure from the host to the guest: host swapping at the "
        "largest balloon is under 10% of that without a balloon, while guest faults stay "
        "low as long as the guest keeps 25% over its working set and are at least 10x "
        "higher once the balloon cuts into it (the knee at the working set)."
    ),
    "fig05_swap_storm": (
        "Aggressive inflation starts a swap storm: the host's I/O buffers peak over twice "
        "as high as under ws and mom, and the host swaps out more pages."
    ),
    "fig06_nested_swapping": (
        "Nested faults come with host pressure - fewer per 1,000 references at the lowest "
        "overcommit than at the worst - and pinning thrashing guests' swap blocks removes at "
        "least half of them."
    ),
    "fig07_deadlock": (
        "Two deadlocks, each removed by its own fix. The hypervisor-lock cycle (through "
        "hostmem): with the natural lock order random schedules deadlock at every concurrency, "
        "more often with more concurrent balloon operations; with hostmem_first never. The "
        "virtio-balloon OOM deadlock (through balloon_lock, a guest out of memory): the driver "
        "before Linux c7cdff0e8647 (alloc_under_lock) deadlocks at every concurrency under "
        "either lock order; alloc_outside_lock never does. With both fixes no schedule deadlocks."
    ),
    "fig08_economics": (
        "For at least one policy, profit per host-hour rises with overcommitment and then "
        "falls: its maximum lies strictly inside the overcommit range swept."
    ),
    "fig09_balloon_overhead": (
        "A VM ballooned down to m MiB is slower than a VM configured with m MiB - its "
        "kernel structures were sized at boot for its full memory - but by at most 5% at "
        "every m (Waldspurger measured ESX's ballooned VM 1.4-4.4% slower)."
    ),
    "fig10_idle_tax": (
        "With idle memory tax 0.75 the idle VM gives up more memory than the active one "
        "(balloon at least 1.25x as large); with tax 0 both are treated alike (balloons "
        "within 10% of each other)."
    ),
    "fig11_che_validation": (
        "The simulated LRU hit ratio agrees with Che's approximation within 0.01 at every "
        "cache size and Zipf exponent."
    ),
    "fig13_sampling_validation": (
        "Spatially hashed sampling reproduces the full simulation: at every sampling rate "
        "of 0.1 or more, every workload and controller's throughput and guest faults per "
        "1,000 references are within 5% of rate 1's (SHARDS keeps miss ratios within "
        "0.001-0.006 at rates 0.001-0.01)."
    ),
    "controllers": (
        "Ballooning before swapping pays (Waldspurger 2002; MOM): on every workload and "
        "overcommit ratio where host swapping alone (`none`) runs slower than native, some "
        "balloon controller's steady-state throughput beats it."
    ),
}


# ---- deciding a condition on an interval ---------------------------------------------------

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def decide(iv: Interval, op: str, threshold: float) -> tuple[bool, bool]:
    """(held, on the point estimate only) for ``iv op threshold``: with an interval, the
    bound nearer the opposite result must be on the claim's side; without one (too few
    replicates), the point estimate decides."""
    compare = _OPS[op]
    if iv.too_few:
        return bool(compare(iv.estimate, threshold)), True
    bound = iv.lo if op in (">", ">=") else iv.hi
    return bool(compare(bound, threshold)), False


def decide_within(iv: Interval, low: float, high: float) -> tuple[bool, bool]:
    """(held, on the point estimate only) for ``low <= iv <= high``."""
    if iv.too_few:
        return bool(low <= iv.estimate <= high), True
    return bool(iv.lo >= low and iv.hi <= high), False


class _Check:
    """What a check collects: numbers, conditions (text, held) and what went untested."""

    def __init__(self, figure: str, quick: bool) -> None:
        self.figure, self.quick = figure, quick
        self.numbers: dict[str, Any] = {}
        self.conditions: list[tuple[str, bool]] = []
        self.untested: list[str] = []

    def number(self, name: str, iv: Interval) -> None:
        """A measured value and, when it has one, its 95% interval."""
        self.numbers[name] = iv.estimate
        if not iv.too_few:
            self.numbers[f"{name} 95% CI"] = iv.bounds

    def add(self, text: str, held: bool, point_only: bool = False, n: int = 0) -> bool:
        self.conditions.append((text, bool(held)))
        if held and point_only:
            self.untested.append(
                f"{text}: held on the point estimate, but {n} replicate(s) "
                f"(< {stats.MIN_REPLICATES}) give no 95% interval"
            )
        return bool(held)

    def compare(self, text: str, iv: Interval, op: str, threshold: float) -> bool:
        """``iv op threshold``, its numbers shown in the condition."""
        held, point_only = decide(iv, op, threshold)
        return self.add(f"{text}: {iv.text()}", held, point_only, iv.n)

    def within(self, text: str, iv: Interval, low: float, high: float) -> bool:
        held, point_only = decide_within(iv, low, high)
        return self.add(f"{text}: {iv.text()}", held, point_only, iv.n)

    def coverage(self, text: str) -> None:
        """A condition over a range the quick sweep does not cover: untested in quick mode."""
        if self.quick:
            self.untested.append(f"{text} (the quick sweep does not cover the range)")

    def claim(self) -> Claim:
        return _verdict(self.figure, self.numbers, self.conditions, self.untested)


def _verdict(
    figure: str,
    numbers: dict[str, Any],
    conditions: list[tuple[str, bool]],
    untested: Sequence[str] = (),
) -> Claim:
    ok = bool(conditions) and all(held for _, held in conditions)
    verdict = NOT_SUPPORTED if not ok else NOT_TESTED if untested else SUPPORTED
    return Claim(
        figure=figure,
        text=CLAIMS[figure],
        verdict=verdict,
        numbers={k: _round(v) for k, v in numbers.items()},
        conditions=conditions,
        untested=list(untested) if ok else [],
    )


def no_data(figure: str) -> Claim:
    """The claim of a figure with no stored runs."""
    return Claim(figure=figure, text=CLAIMS[figure], verdict=NO_DATA)


def _round(value: Any) -> Any:
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    return value


def _num(value: Any) -> float:
    """A measured value as a float; None (a NaN in the store) as NaN."""
    return math.nan if value is None else float(value)


def reps(row: dict[str, Any], column: str) -> list[float]:
    """A row's per-replicate values of ``column`` (its ``<column>_reps`` list), or its one
    value when the row carries no list (rows built without replicates)."""
    values = row.get(column + REPS_SUFFIX)
    if values is None:
        return [_num(row.get(column))]
    return [_num(v) for v in values]


def _by(rows: Iterable[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        out[key] = row
    return out


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, int | float) else str(x)


def _values(xs: Iterable[Any], unit: str = "") -> str:
    return ", ".join(f"{_fmt(x)}{unit}" for x in sorted(xs, key=_num))


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


# ---- figure 1 ------------------------------------------------------------------------------


def check_fig01_io_amplification(rows: Rows, quick: bool = False) -> Claim:
    """Total reclaim I/O and throughput: host swapping vs balloon vs host discard, per
    overcommit. Both quantities mean the same on every side (the same workload for the
    same time), unlike I/O per reclaimed page, whose denominator differs by reclaimer."""
    c = _Check("fig01_io_amplification", quick)
    by_oc: dict[Any, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_oc[row["overcommit"]][row["mechanism"]] = row
    speedups: list[float] = []
    for oc in sorted(by_oc, key=_num):
        m = by_oc[oc]
        tag = f"{_fmt(oc)}x"
        missing = [k for k in ("host swapping", "balloon", "host discard") if k not in m]
        if missing:
            c.add(f"{tag}: runs of {', '.join(missing)}", False)
            continue
        host = m["host swapping"]
        for name in ("host swapping", "balloon", "host discard"):
            c.number(f"reclaim I/O, {name} ({tag})", stats.mean_ci(reps(m[name], "reclaim_io")))
            c.number(f"throughput, {name} ({tag})", stats.mean_ci(reps(m[name], "throughput")))
        for name in ("balloon", "host discard"):
            c.compare(
                f"{tag}: {name} / host swapping total reclaim I/O < 1",
                stats.ratio_ci(reps(m[name], "reclaim_io"), reps(host, "reclaim_io")),
                "<",
                1.0,
            )
            speed = stats.ratio_ci(reps(m[name], "throughput"), reps(host, "throughput"))
            c.compare(f"{tag}: {name} / host swapping throughput > 1", speed, ">", 1.0)
            if name == "host discard" and math.isfinite(speed.estimate):
                speedups.append(speed.estimate)
    if speedups:
        c.numbers["best throughput ratio, host discard / host swapping"] = max(speedups)
    c.coverage(f"at every overcommit ratio: runs at {_values(by_oc, 'x')} only")
    return c.claim()


# ---- figure 2 ------------------------------------------------------------------------------

ONLINE_POLICIES = ("esc", "clock", "lru", "fifo", "random")
_CLASSES = ("00", "01", "10", "11")


def check_fig02_esc(rows: Rows, quick: bool = False) -> Claim:
    """ESC's eviction classes, its write-backs vs CLOCK, and OPT's faults, per workload and
    cache size."""
    c = _Check("fig02_esc", quick)
    cells: dict[tuple[Any, Any], dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        cells[(row["workload"], row["cache_mib"])][row["policy"]] = row
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (workload, cache), by_policy in sorted(
        cells.items(), key=lambda kv: (str(kv[0][0]), _num(kv[0][1]))
    ):
        tag = f"{workload}, {_fmt(cache)} MiB"
        missing = [p for p in ("esc", "clock", "opt") if p not in by_policy]
        if missing:
            c.add(f"{tag}: runs of {', '.join(missing)}", False)
            continue
        esc, clock, opt = by_policy["esc"], by_policy["clock"], by_policy["opt"]
        c.compare(
            f"{tag}: CLOCK - ESC write-backs > 0",
            stats.diff_ci(reps(clock, "writebacks"), reps(esc, "writebacks")),
            ">",
            0,
        )
        # The (0,0) share per replicate: each run's own evictions.
        by_class = [reps(esc, f"evict_{k}") for k in _CLASSES]
        shares = [
            e[0] / total if total > 0 else math.nan
            for e in zip(*by_class, strict=False)
            for total in [sum(e)]
        ]
        share = stats.mean_ci(shares)
        c.number(f"{tag}: ESC evictions from (0,0)", share)
        c.compare(f"{tag}: share of ESC's evictions from (0,0) > 0.5", share, ">", 0.5)
        # OPT against every online policy: the weakest comparison decides.
        gaps = [
            stats.diff_ci(reps(by_policy[p], "faults"), reps(opt, "faults"))
            for p in ONLINE_POLICIES
            if p in by_policy
        ]
        weakest = min(gaps, key=lambda iv: iv.estimate if iv.too_few else iv.lo)
        c.compare(f"{tag}: (online policy - OPT) faults >= 0, closest policy", weakest, ">=", 0)
        t = totals[str(workload)]
        t["esc_wb"] += _num(esc["writebacks"])
        t["clock_wb"] += _num(clock["writebacks"])
        t["esc_faults"] += _num(esc["faults"])
        t["clock_faults"] += _num(clock["faults"])
        t["evict_00"] += _num(esc["evict_00"])
        t["evictions"] += sum(_num(esc[f"evict_{k}"]) for k in _CLASSES)
    for workload, t in totals.items():
        c.numbers[f"{workload}: ESC/CLOCK write-backs"] = _ratio(t["esc_wb"], t["clock_wb"])
        c.numbers[f"{workload}: ESC/CLOCK faults"] = _ratio(t["esc_faults"], t["clock_faults"])
        c.numbers[f"{workload}: ESC evictions from (0,0)"] = _ratio(t["evict_00"], t["evictions"])
    workloads = {w for w, _ in cells}
    c.coverage(
        f"at every cache size (and workload): runs at {_values({k for _, k in cells}, ' MiB')} "
        f"of {', '.join(sorted(map(str, workloads)))} only"
    )
    return c.claim()


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# ---- figure 3 ------------------------------------------------------------------------------


MAJOR = "major_faults_per_1000_refs"


def check_fig03_ws_vs_file_first(rows: Rows, quick: bool = False) -> Claim:
    """ws vs file_first on `db` at each balloon size where the balloon makes file_first
    fault: a balloon over 0 at which file_first has more major faults per 1,000 references
    than without one (the cold misses every run has are not balloon pressure). Per 1,000
    references: ws, being faster, issues more references in the same time."""
    c = _Check("fig03_ws_vs_file_first", quick)
    ws = _by((r for r in rows if r["guest_policy"] == "ws"), "balloon_mib")
    ff = _by((r for r in rows if r["guest_policy"] == "file_first"), "balloon_mib")
    unballooned = next((_num(ff[b][MAJOR]) for b in ff if _num(b) == 0), 0.0)
    pressured = [b for b in sorted(ff, key=_num)
                 if _num(b) > 0 and _num(ff[b][MAJOR]) > unballooned]  # fmt: skip
    if not pressured:
        c.add("file_first faults more under some balloon than without one (pressure)", False)
    for b in pressured:
        tag = f"balloon {_fmt(b)} MiB"
        if b not in ws:
            c.add(f"{tag}: runs of ws", False)
            continue
        w, f = ws[b], ff[b]
        c.numbers[f"{tag}: major faults per 1000 refs, ws / file_first"] = (
            f"{_num(w[MAJOR]):.3g} / {_num(f[MAJOR]):.3g}"
        )
        c.number(f"{tag}: throughput ws / file_first",
                 stats.ratio_ci(reps(w, "throughput"), reps(f, "throughput")))  # fmt: skip
        c.compare(
            f"{tag}: file_first - ws major faults per 1000 refs > 0",
            stats.diff_ci(reps(f, MAJOR), reps(w, MAJOR)),
            ">",
            0,
        )
        c.compare(
            f"{tag}: ws - file_first throughput > 0",
            stats.diff_ci(reps(w, "throughput"), reps(f, "throughput")),
            ">",
            0,
        )
    c.coverage(
        f"at every balloon size where the balloon makes file_first fault: runs at "
        f"{_values(ff, ' MiB')} only"
    )
    return c.claim()


# ---- figure 4 ------------------------------------------------------------------------------


def check_fig04_push_pull(rows: Rows, quick: bool = False) -> Claim:
    """Host swapping falls with the balloon; guest faults knee at the working set."""
    c = _Check("fig04_push_pull", quick)
    pts = sorted(rows, key=lambda r: _num(r["balloon_mib"]))
    if len(pts) < 2:
        c.add("at least two balloon sizes", False)
        return c.claim()
    first, last = pts[0], pts[-1]
    h0 = stats.mean_ci(reps(first, "host_swap_rate"))
    c.number("host swap-outs/s, smallest balloon", h0)
    c.number("host swap-outs/s, largest balloon", stats.mean_ci(reps(last, "host_swap_rate")))
    c.add(f"host swaps at the smallest balloon ({h0.estimate:.3g}/s)", h0.estimate > 0)
    c.compare(
        "host swapping, largest / smallest balloon < 0.1",
        stats.ratio_ci(reps(last, "host_swap_rate"), reps(first, "host_swap_rate")),
        "<",
        0.1,
    )
    usable = [(_num(r["mem_mib"]) - _num(r["balloon_mib"]), r) for r in pts]
    ws = _num(pts[0]["ws_mib"])
    c.numbers["working set (MiB)"] = ws
    c.numbers["knee: balloon where usable memory = working set (MiB)"] = (
        _num(pts[0]["mem_mib"]) - ws
    )
    roomy = [r for u, r in usable if u >= 1.25 * ws]
    squeezed = [r for u, r in usable if u < ws]
    if not roomy or not squeezed:
        c.add("balloon sizes on both sides of the working set", False)
        return c.claim()
    # The comparison that decides: the most faults with room against the fewest without.
    worst_roomy = max(roomy, key=lambda r: _num(r["guest_fault_rate"]))
    best_squeezed = min(squeezed, key=lambda r: _num(r["guest_fault_rate"]))
    low = stats.mean_ci(reps(best_squeezed, "guest_fault_rate"))
    c.number("max guest faults/s, usable >= 1.25 x working set",
             stats.mean_ci(reps(worst_roomy, "guest_fault_rate")))  # fmt: skip
    c.number("min guest faults/s, usable < working set", low)
    c.add(f"guest faults beyond the knee ({low.estimate:.3g}/s)", low.estimate > 0)
    c.compare(
        f"guest faults at balloon {_fmt(best_squeezed['balloon_mib'])} / at "
        f"{_fmt(worst_roomy['balloon_mib'])} MiB >= 10",
        stats.ratio_ci(reps(best_squeezed, "guest_fault_rate"),
                       reps(worst_roomy, "guest_fault_rate")),
        ">=",
        10,
    )  # fmt: skip
    c.coverage(
        f"at every balloon size on each side of the knee: runs at "
        f"{_values((r['balloon_mib'] for r in pts), ' MiB')} only"
    )
    return c.claim()


# ---- figure 5 ------------------------------------------------------------------------------


def per_run_series(rows: Rows, column: str) -> dict[Any, dict[Any, list[float]]]:
    """group -> run -> the run's per-tick values of ``column``, from tick rows carrying
    ``run_ids`` and ``<column>_reps`` lists; rows without them count as one run (their
    means). The group is the row's ``policy`` or (fig. 10) its (tax rate, role)."""
    out: dict[Any, dict[Any, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        group = row["policy"] if "policy" in row else (_num(row["tax_rate"]), row["role"])
        ids = row.get("run_ids")
        if ids is None:
            out[group][None].append(_num(row[column]))
            continue
        for run, value in zip(ids, reps(row, column), strict=False):
            out[group][run].append(value)
    return out


def _peak(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite) if finite else math.nan


def check_fig05_swap_storm(rows: Rows, quick: bool = False) -> Claim:
    """Peak host I/O buffers and host swap-outs: aggressive vs ws and mom."""
    c = _Check("fig05_swap_storm", quick)
    peaks = {p: [_peak(v) for v in runs.values()]
             for p, runs in per_run_series(rows, "io_buffers_mib").items()}  # fmt: skip
    swaps = {p: [_mean(v) for v in runs.values()]
             for p, runs in per_run_series(rows, "host_swap_rate").items()}  # fmt: skip
    for p in sorted(peaks):
        c.number(f"{p}: peak host I/O buffers (MiB)", stats.mean_ci(peaks[p]))
        c.number(f"{p}: mean host swap-outs/s", stats.mean_ci(swaps[p]))
    if "aggressive" not in peaks:
        c.add("runs of aggressive", False)
        return c.claim()
    for calm in ("ws", "mom"):
        if calm not in peaks:
            c.add(f"runs of {calm}", False)
            continue
        c.compare(f"aggressive / {calm} peak I/O buffers > 2",
                  stats.ratio_ci(peaks["aggressive"], peaks[calm]), ">", 2)  # fmt: skip
        c.compare(f"aggressive - {calm} host swap-outs/s > 0",
                  stats.diff_ci(swaps["aggressive"], swaps[calm]), ">", 0)  # fmt: skip
    return c.claim()


# ---- figure 6 ------------------------------------------------------------------------------


NESTED = "nested_per_1000_refs"  # a count over runs of unequal speed: per 1,000 references


def check_fig06_nested_swapping(rows: Rows, quick: bool = False) -> Claim:
    """Nested faults per 1,000 references vs host pressure, pinned and not."""
    c = _Check("fig06_nested_swapping", quick)
    plain = _by((r for r in rows if not r["pinned"]), "overcommit")
    pinned = _by((r for r in rows if r["pinned"]), "overcommit")
    if not plain or not pinned:
        c.add(f"runs {'unpinned' if not plain else 'pinned'}", False)
        return c.claim()
    ocs = sorted(plain, key=_num)
    worst = max(ocs, key=lambda oc: _num(plain[oc][NESTED]))
    c.number(f"unpinned nested faults per 1000 refs at {_fmt(ocs[0])}x",
             stats.mean_ci(reps(plain[ocs[0]], NESTED)))  # fmt: skip
    c.number(f"unpinned nested faults per 1000 refs at the worst overcommit ({_fmt(worst)}x)",
             stats.mean_ci(reps(plain[worst], NESTED)))  # fmt: skip
    c.compare(
        f"unpinned: nested faults per 1000 refs at {_fmt(worst)}x (the worst) - at "
        f"{_fmt(ocs[0])}x (the lowest) > 0",
        stats.diff_ci(reps(plain[worst], NESTED), reps(plain[ocs[0]], NESTED)),
        ">",
        0,
    )
    common = [oc for oc in ocs if oc in pinned]
    if not common:
        c.add("pinned and unpinned runs at a same overcommit", False)
        return c.claim()

    def totals(table: dict[Any, dict[str, Any]]) -> list[float]:
        # Replicate i's total over the overcommits (independent runs: any pairing is fair).
        columns = [reps(table[oc], NESTED) for oc in common]
        return [sum(v) for v in zip(*columns, strict=False)]

    plain_total, pinned_total = totals(plain), totals(pinned)
    summed = "nested faults per 1000 refs summed over overcommits"
    c.number(f"{summed}, unpinned", stats.mean_ci(plain_total))
    c.number(f"{summed}, pinned", stats.mean_ci(pinned_total))
    c.add(f"unpinned guests have nested faults ({_mean(plain_total):.3g} per 1000 refs)",
          _mean(plain_total) > 0)  # fmt: skip
    c.compare("pinned / unpinned nested faults per 1000 refs <= 0.5",
              stats.ratio_ci(pinned_total, plain_total), "<=", 0.5)  # fmt: skip
    return c.claim()


# ---- figure 7 ------------------------------------------------------------------------------


def check_fig07_deadlock(rows: Rows, quick: bool = False) -> Claim:
    """Each cycle kind: > 0 at every concurrency without its fix, 0 with it; the
    hypervisor cycle rises with concurrency; both fixes: no deadlock at all. Proportions of
    random schedules: Wilson intervals, and Newcombe's for a difference."""
    c = _Check("fig07_deadlock", quick)

    def pick(order: str | None = None, driver: str | None = None) -> Rows:
        return sorted(
            (r for r in rows if order in (None, r["lock_order"])
             and driver in (None, r["balloon_driver"])),
            key=lambda r: _num(r["concurrent_ops"]),
        )  # fmt: skip

    def count(r: dict[str, Any], column: str) -> tuple[int, int]:
        return int(_num(r[column])), int(_num(r["trials"]))

    def every(group: Rows, column: str, label: str) -> None:
        # Wilson's lower bound is above 0 exactly when a deadlock was seen: the condition is
        # the count, the interval shows how rare.
        ivs = [stats.wilson_ci(*count(r, column)) for r in group]
        weakest = min(ivs, key=lambda iv: iv.lo)
        c.add(f"{label}: weakest P = {weakest.text()}", bool(group) and weakest.lo > 0)

    hv = pick("natural", "alloc_outside_lock")  # the hypervisor cycle alone
    if hv:
        lo, hi = hv[0], hv[-1]
        for r in (lo, hi):
            c.number(f"natural, alloc_outside_lock: P(deadlock) at {r['concurrent_ops']} ops",
                     stats.wilson_ci(*count(r, "deadlocked")))  # fmt: skip
        every(pick("natural"), "deadlocked_hostmem",
              "natural: hostmem-cycle deadlocks at every concurrency")  # fmt: skip
        c.add("natural, alloc_outside_lock: more than one concurrency", len(hv) > 1)
        if len(hv) > 1:
            c.compare(
                f"natural, alloc_outside_lock: P(deadlock) at {hi['concurrent_ops']} - at "
                f"{lo['concurrent_ops']} ops > 0",
                stats.newcombe_diff_ci(*count(hi, "deadlocked"), *count(lo, "deadlocked")),
                ">",
                0,
            )
    else:
        c.add("runs of natural, alloc_outside_lock", False)
    oom = pick("hostmem_first", "alloc_under_lock")  # the OOM-notifier cycle alone
    if oom:
        for r in (oom[0], oom[-1]):
            c.number(f"hostmem_first, alloc_under_lock: P(deadlock) at {r['concurrent_ops']} ops",
                     stats.wilson_ci(*count(r, "deadlocked")))  # fmt: skip
        every(pick(driver="alloc_under_lock"), "deadlocked_oom",
              "alloc_under_lock: OOM-cycle deadlocks at every concurrency")  # fmt: skip
    else:
        c.add("runs of hostmem_first, alloc_under_lock", False)
    ordered, fixed, both = (
        pick("hostmem_first"),
        pick(driver="alloc_outside_lock"),
        pick("hostmem_first", "alloc_outside_lock"),
    )
    for label, group, column in (
        ("hostmem_first: no hostmem-cycle deadlock", ordered, "deadlocked_hostmem"),
        ("alloc_outside_lock: no OOM-cycle deadlock", fixed, "deadlocked_oom"),
        ("hostmem_first and alloc_outside_lock: no schedule deadlocks", both, "deadlocked"),
    ):
        trials = sum(int(_num(r["trials"])) for r in group)
        dead = sum(int(_num(r[column])) for r in group)
        name = label.split(":")[0]
        c.numbers[f"{name}: {column} / trials"] = f"{dead:.0f} / {trials:.0f}"
        if group is both:
            c.numbers["deadlocking schedules with both fixes"] = dead
        if trials:  # "never" cannot be shown by an interval: its upper bound says how rare
            c.numbers[f"{name}: P({column}) 95% upper bound"] = stats.wilson_ci(dead, trials).hi
        c.add(label, dead == 0 and trials > 0)
    c.coverage(
        "at every concurrency: runs at "
        f"{_values({r['concurrent_ops'] for r in rows})} concurrent ops only"
    )
    return c.claim()


# ---- figure 8 ------------------------------------------------------------------------------


def check_fig08_economics(rows: Rows, quick: bool = False) -> Claim:
    """Some policy's profit curve has an interior maximum: its best point's profit beats
    both ends of the overcommit range, on intervals."""
    c = _Check("fig08_economics", quick)
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    peaked, on_point, details = [], [], []
    n_min = stats.MIN_REPLICATES
    for policy, pts in sorted(by_policy.items()):
        pts.sort(key=lambda r: _num(r["overcommit"]))
        profits = [reps(r, "profit_per_host_hour") for r in pts]
        best = max(range(len(pts)), key=lambda i: _mean(profits[i]))
        c.number(
            f"{policy}: most profitable overcommit",
            stats.argmax_ci([_num(r["overcommit"]) for r in pts], profits),
        )
        c.number(f"{policy}: its profit per host-hour", stats.mean_ci(profits[best]))
        if len(pts) < 3 or best in (0, len(pts) - 1):
            continue
        gains = [stats.diff_ci(profits[best], profits[end]) for end in (0, -1)]
        verdicts = [decide(iv, ">", 0) for iv in gains]
        details.append(
            f"{policy}: best - lowest {gains[0].text()}, best - highest {gains[1].text()}"
        )
        if all(held for held, _ in verdicts):
            (on_point if any(p for _, p in verdicts) else peaked).append(policy)
            n_min = min(n_min, *(iv.n for iv in gains))
    c.numbers["policies whose profit rises then falls"] = ", ".join(peaked + on_point) or "none"
    text = "some policy's profit peaks inside the overcommit range"
    if details:
        text += " (" + "; ".join(details) + ")"
    c.add(text, bool(peaked or on_point), point_only=not peaked, n=n_min)
    return c.claim()


# ---- figure 9 ------------------------------------------------------------------------------


def check_fig09_balloon_overhead(rows: Rows, quick: bool = False) -> Claim:
    """Ballooned vs configured throughput at each memory size: slower, by at most 5%. A
    model without the boot-sized structures gives a ratio of 1 and fails the first part."""
    c = _Check("fig09_balloon_overhead", quick)
    ballooned = _by((r for r in rows if r["kind"] == "ballooned"), "memory_mib")
    configured = _by((r for r in rows if r["kind"] == "configured"), "memory_mib")
    sizes = sorted(set(ballooned) & set(configured), key=_num)
    if not sizes:
        c.add("ballooned and configured runs of a same m", False)
        return c.claim()
    slowdowns = []
    for m in sizes:
        iv = stats.ratio_ci(reps(ballooned[m], "throughput"), reps(configured[m], "throughput"))
        c.number(f"m = {_fmt(m)} MiB: ballooned / configured throughput", iv)
        c.compare(f"m = {_fmt(m)} MiB: ballooned / configured throughput < 1", iv, "<", 1.0)
        c.compare(f"m = {_fmt(m)} MiB: ballooned / configured throughput >= 0.95", iv, ">=", 0.95)
        if math.isfinite(iv.estimate):
            slowdowns.append(100 * (1 - iv.estimate))
    if slowdowns:
        c.numbers["mean slowdown of the ballooned VM (%)"] = _mean(slowdowns)
    c.coverage(f"at every m: runs at m = {_values(sizes, ' MiB')} only")
    return c.claim()


# ---- figure 10 -----------------------------------------------------------------------------


def steady_balloons(rows: Rows) -> dict[tuple[float, str], float]:
    """(tax rate, role) -> mean balloon (MiB) over the second half of the ticks."""
    last = max((_num(r["tick"]) for r in rows), default=0.0)
    sums: dict[tuple[float, str], list[float]] = defaultdict(list)
    for r in rows:
        if _num(r["tick"]) >= last / 2:
            sums[(_num(r["tax_rate"]), r["role"])].append(_num(r["balloon_mib"]))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def steady_balloon_runs(rows: Rows) -> dict[tuple[float, str], list[float]]:
    """(tax rate, role) -> each run's mean balloon (MiB) over the second half of the ticks."""
    last = max((_num(r["tick"]) for r in rows), default=0.0)
    second_half = [r for r in rows if _num(r["tick"]) >= last / 2]
    return {
        group: [_mean(v) for v in runs.values()]
        for group, runs in per_run_series(second_half, "balloon_mib").items()
    }


def check_fig10_idle_tax(rows: Rows, quick: bool = False) -> Claim:
    """Idle vs active VM's balloon under no tax and the highest tax rate."""
    c = _Check("fig10_idle_tax", quick)
    steady = steady_balloon_runs(rows)
    rates = sorted({rate for rate, _ in steady})
    for rate in rates:
        for role in ("idle", "active"):
            if (rate, role) in steady:
                c.number(f"tax {rate:g}: {role} VM's balloon (MiB, second half)",
                         stats.mean_ci(steady[(rate, role)]))  # fmt: skip
    if 0.0 not in rates or rates[-1] <= 0:
        c.add("runs with tax 0 and with a positive tax", False)
        return c.claim()
    untaxed, taxed = 0.0, rates[-1]
    for rate in (untaxed, taxed):
        if (rate, "idle") not in steady or (rate, "active") not in steady:
            c.add(f"tax {rate:g}: both an idle and an active VM", False)
    if c.conditions:
        return c.claim()
    idle1, active1 = steady[(taxed, "idle")], steady[(taxed, "active")]
    idle0, active0 = steady[(untaxed, "idle")], steady[(untaxed, "active")]
    c.add(f"tax {taxed:g}: the idle VM is ballooned ({_mean(idle1):.1f} MiB)", _mean(idle1) > 0)
    c.compare(f"tax {taxed:g}: idle / active balloon >= 1.25",
              stats.ratio_ci(idle1, active1), ">=", 1.25)  # fmt: skip
    tolerance = 0.1 * max(_mean(idle0), _mean(active0))
    c.within(f"tax 0: idle - active balloon within +-{tolerance:.3g} MiB (10%)",
             stats.diff_ci(idle0, active0), -tolerance, tolerance)  # fmt: skip
    return c.claim()


# ---- figure 11 -----------------------------------------------------------------------------


def check_fig11_che_validation(rows: Rows, quick: bool = False) -> Claim:
    """Simulated LRU hit ratio vs Che's approximation, within 0.01 everywhere."""
    c = _Check("fig11_che_validation", quick)
    points = [r for r in rows if r.get("che_hit_ratio") is not None]
    if not points:
        c.add("points where Che's approximation applies", False)
        return c.claim()

    def errors(r: dict[str, Any]) -> list[float]:
        if r.get("error" + REPS_SUFFIX) is not None:
            return reps(r, "error")
        return [_num(r["hit_ratio"]) - _num(r["che_hit_ratio"])]

    ivs = [(r, stats.mean_ci(errors(r))) for r in points]
    # The worst point: the one whose interval reaches furthest from 0.
    worst_row, worst = max(
        ivs,
        key=lambda e: abs(e[1].estimate) if e[1].too_few else max(abs(e[1].lo), abs(e[1].hi)),
    )
    c.numbers["points"] = len(points)
    c.numbers["max |simulated - Che|"] = max(abs(iv.estimate) for _, iv in ivs)
    c.numbers["mean |simulated - Che|"] = _mean([abs(iv.estimate) for _, iv in ivs])
    c.numbers["worst at"] = (
        f"alpha {_fmt(worst_row['alpha'])}, cache {_fmt(worst_row['cache_mib'])} MiB"
    )
    c.number("simulated - Che at the worst point", worst)
    verdicts = [decide_within(iv, -0.01, 0.01) for _, iv in ivs]
    c.add(
        f"every simulated - Che within +-0.01 (worst: {worst.text('.4f')})",
        all(held for held, _ in verdicts),
        point_only=any(p for _, p in verdicts),
        n=min(iv.n for _, iv in ivs),
    )
    c.coverage(
        f"at every cache size and Zipf exponent: runs at alpha "
        f"{_values({r['alpha'] for r in points})}, cache "
        f"{_values({r['cache_mib'] for r in points}, ' MiB')} only"
    )
    return c.claim()


# ---- the controller shoot-out --------------------------------------------------------------


def check_controllers(rows: Rows, quick: bool = False) -> Claim:
    """Per (workload, overcommit) under memory pressure: the best balloon controller
    against ``none``. A scenario where ``none`` runs at native speed (within 1%) has no
    pressure to relieve: it is reported, not counted."""
    c = _Check("controllers", quick)
    scenarios: dict[tuple[str, float], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        scenarios[(str(r["workload"]), _num(r["overcommit"]))][str(r["policy"])] = r
    for (workload, ratio), by_policy in sorted(scenarios.items()):
        where = f"{workload} at {ratio:g}x"
        steady = {p: _num(r["throughput_steady"]) for p, r in by_policy.items()}
        others = {p: v for p, v in steady.items() if p != "none" and not math.isnan(v)}
        if "none" not in steady or not others:
            c.add(f"{where}: runs of none and of a balloon controller", False)
            continue
        native_share = _num(by_policy["none"].get("relative_steady"))
        if native_share >= 0.99:
            c.numbers[f"{where}"] = (
                f"no memory pressure (none at {100 * native_share:.0f}% of native)"
            )
            continue
        # The best controller by its mean, then its interval against none's.
        best = max(others, key=lambda p: others[p])
        gain = others[best] / steady["none"] - 1 if steady["none"] > 0 else math.inf
        c.numbers[f"{where}: best controller"] = f"{best} ({100 * gain:+.1f}% vs none)"
        gap = stats.diff_ci(reps(by_policy[best], "throughput_steady"),
                            reps(by_policy["none"], "throughput_steady"))  # fmt: skip
        c.number(f"{where}: {best} - none steady throughput (references/s)", gap)
        c.compare(f"{where}: {best} - none steady throughput > 0", gap, ">", 0)
    if not c.conditions:
        c.add("a scenario under memory pressure", False)
    c.coverage(
        f"on every workload and overcommit ratio: runs at {_values({r for _, r in scenarios}, 'x')}"
        f" of {', '.join(sorted({w for w, _ in scenarios}))} only"
    )
    return c.claim()


Check = Callable[..., Claim]  # check(rows, quick=False) -> Claim

# ---- figure 13 -----------------------------------------------------------------------------

SAMPLING_TOLERANCE = 0.05  # the bound: sampled within 5% of the full simulation
SAMPLING_CLAIMED_RATE = 0.1  # ... at rates this high or higher; lower rates are reported


def check_fig13_sampling_validation(rows: Rows, quick: bool = False) -> Claim:
    """Each sampled rate against rate 1, per (workload, policy): the ratio of means of
    throughput and of faults per 1,000 references, within 5% at rates >= 0.1; rates under
    0.1 are reported, not claimed. A sampling that forgot one scaling fails here."""
    c = _Check("fig13_sampling_validation", quick)
    full = {(r["workload"], r["policy"]): r for r in rows if _num(r["rate"]) == 1.0}
    if not full:
        c.add("runs at sampling rate 1", False)
        return c.claim()
    claimed = [r for r in rows if SAMPLING_CLAIMED_RATE <= _num(r["rate"]) < 1.0]
    if not claimed:
        c.add(f"runs at a sampling rate in [{SAMPLING_CLAIMED_RATE}, 1)", False)
    lowest = min((_num(r["rate"]) for r in rows), default=1.0)
    worst_abs = 0.0
    for r in sorted(rows, key=lambda r: (r["workload"], r["policy"], -_num(r["rate"]))):
        rate = _num(r["rate"])
        base = full.get((r["workload"], r["policy"]))
        if rate == 1.0 or base is None:
            continue
        tag = f"{r['workload']}/{r['policy']} at rate {rate:g}"
        for column, label in (("throughput", "throughput"),
                              ("faults_per_1000_refs", "faults per 1,000 refs")):  # fmt: skip
            iv = stats.ratio_ci(reps(r, column), reps(base, column))
            c.number(f"{tag}: {label}, sampled / full", iv)
            if rate >= SAMPLING_CLAIMED_RATE:
                lo, hi = 1 - SAMPLING_TOLERANCE, 1 + SAMPLING_TOLERANCE
                c.within(f"{tag}: {label}, sampled / full in [{lo:g}, {hi:g}]", iv, lo, hi)
        if rate == lowest:
            gap = abs(_num(r["faults_per_1000_refs"]) - _num(base["faults_per_1000_refs"]))
            worst_abs = max(worst_abs, gap / 1000.0)
    if lowest < 1.0:
        c.numbers["largest |fault ratio error| at the smallest rate"] = worst_abs
    return c.claim()


CHECKS: dict[str, Check] = {
    "fig01_io_amplification": check_fig01_io_amplification,
    "fig02_esc": check_fig02_esc,
    "fig03_ws_vs_file_first": check_fig03_ws_vs_file_first,
    "fig04_push_pull": check_fig04_push_pull,
    "fig05_swap_storm": check_fig05_swap_storm,
    "fig06_nested_swapping": check_fig06_nested_swapping,
    "fig07_deadlock": check_fig07_deadlock,
    "fig08_economics": check_fig08_economics,
    "fig09_balloon_overhead": check_fig09_balloon_overhead,
    "fig10_idle_tax": check_fig10_idle_tax,
    "fig11_che_validation": check_fig11_che_validation,
    "controllers": check_controllers,
    "fig13_sampling_validation": check_fig13_sampling_validation,
}

"""The claim beside each figure, checked against the figure's data.

Each ``check_<figure>(rows)`` takes the rows of the figure's named query (a list of dicts,
as ``analysis.db.records`` returns them) and returns a :class:`Claim`: the claim in words,
the numbers measured, and a verdict decided by explicit conditions on those numbers, never
by hand. The checks are pure functions of the rows, so tests feed them constructed data.
A condition that cannot be evaluated (a policy or a setting missing from the data) counts
as failed and says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SUPPORTED = "SUPPORTED"
NOT_SUPPORTED = "NOT SUPPORTED"
NO_DATA = "NO DATA"

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Claim:
    """A figure's claim, what was measured, and whether the data support it."""

    figure: str
    text: str
    verdict: str  # SUPPORTED | NOT SUPPORTED | NO DATA
    numbers: dict[str, Any] = field(default_factory=dict)
    conditions: list[tuple[str, bool]] = field(default_factory=list)  # (condition, held)

    @property
    def supported(self) -> bool:
        return self.verdict == SUPPORTED

    @property
    def reason(self) -> str:
        """The conditions that failed, or that all held."""
        failed = [c for c, ok in self.conditions if not ok]
        if self.verdict == NO_DATA:
            return "no stored runs for this figure"
        if failed:
            return "failed: " + "; ".join(failed)
        return "all conditions held: " + "; ".join(c for c, _ in self.conditions)


CLAIMS: dict[str, str] = {
    "fig01_io_amplification": (
        "Blind host swapping of clean page cache costs about one disk write per reclaimed "
        "page (>= 0.9) and a read when the page is touched again; the balloon reclaims with "
        "less than half the I/O per page, and host discard removes the writes (<= 10% of "
        "host swapping's) - at every overcommit ratio."
    ),
    "fig02_esc": (
        "ESC takes most of its victims from class (R,M) = (0,0) - unreferenced and clean - "
        "and so writes back fewer pages than CLOCK at every cache size; Belady's OPT faults "
        "least of all policies."
    ),
    "fig03_ws_vs_file_first": (
        "Under balloon pressure on the `db` workload, the working-set guest policy keeps the "
        "hot buffer cache: fewer major faults and higher throughput than file_first at "
        "every balloon size where file_first faults."
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
        "Nested faults come with host pressure - fewer at the lowest overcommit than at "
        "the worst - and pinning thrashing guests' swap blocks removes at least half of them."
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
        "A VM ballooned down to m MiB runs within 5% of a VM configured with m MiB at "
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
    "controllers": (
        "Ballooning before swapping pays (Waldspurger 2002; MOM): on every workload and "
        "overcommit ratio where host swapping alone (`none`) runs slower than native, some "
        "balloon controller's steady-state throughput beats it."
    ),
}


def _verdict(figure: str, numbers: dict[str, Any], conditions: list[tuple[str, bool]]) -> Claim:
    ok = bool(conditions) and all(held for _, held in conditions)
    return Claim(
        figure=figure,
        text=CLAIMS[figure],
        verdict=SUPPORTED if ok else NOT_SUPPORTED,
        numbers={k: _round(v) for k, v in numbers.items()},
        conditions=conditions,
    )


def no_data(figure: str) -> Claim:
    """The claim of a figure with no stored runs."""
    return Claim(figure=figure, text=CLAIMS[figure], verdict=NO_DATA)


def _round(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.4g}")
    return value


def _num(value: Any) -> float:
    """A measured value as a float; None (a NaN in the store) as NaN."""
    return math.nan if value is None else float(value)


def _by(rows: Iterable[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = row[keys[0]] if len(keys) == 1 else tuple(row[k] for k in keys)
        out[key] = row
    return out


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, int | float) else str(x)


# ---- figure 1 ------------------------------------------------------------------------------


def check_fig01_io_amplification(rows: Rows) -> Claim:
    """I/O per reclaimed page: host swapping vs balloon vs host discard, per overcommit."""
    figure = "fig01_io_amplification"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    by_oc: dict[Any, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        by_oc[row["overcommit"]][row["mechanism"]] = row
    for oc in sorted(by_oc, key=_num):
        m = by_oc[oc]
        tag = f"{_fmt(oc)}x"
        missing = [k for k in ("host swapping", "balloon", "host discard") if k not in m]
        if missing:
            conditions.append((f"{tag}: runs of {', '.join(missing)}", False))
            continue
        host, balloon, discard = m["host swapping"], m["balloon"], m["host discard"]
        host_io, balloon_io = _num(host["io_per_page"]), _num(balloon["io_per_page"])
        host_w, discard_w = _num(host["writes_per_page"]), _num(discard["writes_per_page"])
        numbers[f"I/O per page, host swapping ({tag})"] = host_io
        numbers[f"I/O per page, balloon ({tag})"] = balloon_io
        numbers[f"I/O per page, host discard ({tag})"] = _num(discard["io_per_page"])
        numbers[f"writes per page, host swapping ({tag})"] = host_w
        numbers[f"writes per page, host discard ({tag})"] = discard_w
        conditions += [
            (f"{tag}: host swapping writes >= 0.9 per page ({host_w:.3g})", host_w >= 0.9),
            (
                f"{tag}: balloon I/O per page < half of host swapping's "
                f"({balloon_io:.3g} vs {host_io:.3g})",
                balloon_io < 0.5 * host_io,
            ),
            (
                f"{tag}: host discard writes <= 10% of host swapping's ({discard_w:.3g})",
                discard_w <= 0.1 * host_w,
            ),
        ]
    return _verdict(figure, numbers, conditions)


# ---- figure 2 ------------------------------------------------------------------------------

ONLINE_POLICIES = ("esc", "clock", "lru", "fifo", "random")


def check_fig02_esc(rows: Rows) -> Claim:
    """ESC's eviction classes, its write-backs vs CLOCK, and OPT's faults, per workload and
    cache size."""
    figure = "fig02_esc"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
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
            conditions.append((f"{tag}: runs of {', '.join(missing)}", False))
            continue
        esc, clock, opt = by_policy["esc"], by_policy["clock"], by_policy["opt"]
        evictions = sum(_num(esc[f"evict_{c}"]) for c in ("00", "01", "10", "11"))
        share_00 = _num(esc["evict_00"]) / evictions if evictions > 0 else math.nan
        online = [_num(by_policy[p]["faults"]) for p in ONLINE_POLICIES if p in by_policy]
        conditions += [
            (
                f"{tag}: ESC write-backs < CLOCK's ({_num(esc['writebacks']):.0f} vs "
                f"{_num(clock['writebacks']):.0f})",
                _num(esc["writebacks"]) < _num(clock["writebacks"]),
            ),
            (f"{tag}: (0,0) is most of ESC's evictions ({share_00:.2f})", share_00 > 0.5),
            (
                f"{tag}: OPT faults <= every online policy's",
                _num(opt["faults"]) <= min(online),
            ),
        ]
        t = totals[str(workload)]
        t["esc_wb"] += _num(esc["writebacks"])
        t["clock_wb"] += _num(clock["writebacks"])
        t["esc_faults"] += _num(esc["faults"])
        t["clock_faults"] += _num(clock["faults"])
        t["evict_00"] += _num(esc["evict_00"])
        t["evictions"] += evictions
    for workload, t in totals.items():
        numbers[f"{workload}: ESC/CLOCK write-backs"] = t["esc_wb"] / t["clock_wb"]
        numbers[f"{workload}: ESC/CLOCK faults"] = t["esc_faults"] / t["clock_faults"]
        numbers[f"{workload}: ESC evictions from (0,0)"] = t["evict_00"] / t["evictions"]
    return _verdict(figure, numbers, conditions)


# ---- figure 3 ------------------------------------------------------------------------------


def check_fig03_ws_vs_file_first(rows: Rows) -> Claim:
    """ws vs file_first on `db` at each balloon size where file_first faults."""
    figure = "fig03_ws_vs_file_first"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    ws = _by((r for r in rows if r["guest_policy"] == "ws"), "balloon_mib")
    ff = _by((r for r in rows if r["guest_policy"] == "file_first"), "balloon_mib")
    pressured = [b for b in sorted(ff, key=_num) if _num(ff[b]["major_faults"]) > 0]
    if not pressured:
        conditions.append(("file_first faults at some balloon size (balloon pressure)", False))
    for b in pressured:
        tag = f"balloon {_fmt(b)} MiB"
        if b not in ws:
            conditions.append((f"{tag}: runs of ws", False))
            continue
        w, f = ws[b], ff[b]
        numbers[f"{tag}: major faults ws / file_first"] = (
            f"{_num(w['major_faults']):.0f} / {_num(f['major_faults']):.0f}"
        )
        numbers[f"{tag}: throughput ws / file_first"] = _num(w["throughput"]) / _num(
            f["throughput"]
        )
        conditions += [
            (
                f"{tag}: ws major faults < file_first's",
                _num(w["major_faults"]) < _num(f["major_faults"]),
            ),
            (
                f"{tag}: ws throughput > file_first's",
                _num(w["throughput"]) > _num(f["throughput"]),
            ),
        ]
    return _verdict(figure, numbers, conditions)


# ---- figure 4 ------------------------------------------------------------------------------


def check_fig04_push_pull(rows: Rows) -> Claim:
    """Host swapping falls with the balloon; guest faults knee at the working set."""
    figure = "fig04_push_pull"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    pts = sorted(rows, key=lambda r: _num(r["balloon_mib"]))
    if len(pts) < 2:
        return _verdict(figure, numbers, [("at least two balloon sizes", False)])
    first, last = pts[0], pts[-1]
    h0, h1 = _num(first["host_swap_rate"]), _num(last["host_swap_rate"])
    numbers["host swap-outs/s, smallest balloon"] = h0
    numbers["host swap-outs/s, largest balloon"] = h1
    conditions.append(
        (f"host swapping at the largest balloon < 10% of the smallest's ({h1:.3g} vs {h0:.3g})",
         h0 > 0 and h1 < 0.1 * h0)
    )  # fmt: skip
    usable = [(_num(r["mem_mib"]) - _num(r["balloon_mib"]), r) for r in pts]
    ws = _num(pts[0]["ws_mib"])
    numbers["working set (MiB)"] = ws
    numbers["knee: balloon where usable memory = working set (MiB)"] = _num(pts[0]["mem_mib"]) - ws
    roomy = [_num(r["guest_fault_rate"]) for u, r in usable if u >= 1.25 * ws]
    squeezed = [_num(r["guest_fault_rate"]) for u, r in usable if u < ws]
    if not roomy or not squeezed:
        conditions.append(("balloon sizes on both sides of the working set", False))
        return _verdict(figure, numbers, conditions)
    numbers["max guest faults/s, usable >= 1.25 x working set"] = max(roomy)
    numbers["min guest faults/s, usable < working set"] = min(squeezed)
    conditions.append(
        (
            f"guest faults beyond the knee >= 10x those before it "
            f"({min(squeezed):.3g} vs {max(roomy):.3g})",
            min(squeezed) > 0 and min(squeezed) >= 10 * max(roomy),
        )
    )
    return _verdict(figure, numbers, conditions)


# ---- figure 5 ------------------------------------------------------------------------------


def check_fig05_swap_storm(rows: Rows) -> Claim:
    """Peak host I/O buffers and host swap-outs: aggressive vs ws and mom."""
    figure = "fig05_swap_storm"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    peak: dict[str, float] = defaultdict(float)
    swaps: dict[str, float] = defaultdict(float)
    for row in rows:
        p = row["policy"]
        peak[p] = max(peak[p], _num(row["io_buffers_mib"]))
        swaps[p] += _num(row["host_swap_rate"])
    for p in sorted(peak):
        numbers[f"{p}: peak host I/O buffers (MiB)"] = peak[p]
        numbers[f"{p}: mean host swap-outs/s"] = swaps[p] / max(
            1, sum(1 for r in rows if r["policy"] == p)
        )
    if "aggressive" not in peak:
        return _verdict(figure, numbers, [("runs of aggressive", False)])
    for calm in ("ws", "mom"):
        if calm not in peak:
            conditions.append((f"runs of {calm}", False))
            continue
        conditions += [
            (
                f"aggressive's peak I/O buffers > 2x {calm}'s "
                f"({peak['aggressive']:.3g} vs {peak[calm]:.3g} MiB)",
                peak["aggressive"] > 2 * peak[calm],
            ),
            (f"aggressive swaps out more than {calm}", swaps["aggressive"] > swaps[calm]),
        ]
    return _verdict(figure, numbers, conditions)


# ---- figure 6 ------------------------------------------------------------------------------


def check_fig06_nested_swapping(rows: Rows) -> Claim:
    """Nested faults vs host pressure, pinned and not."""
    figure = "fig06_nested_swapping"
    numbers: dict[str, Any] = {}
    plain = _by((r for r in rows if not r["pinned"]), "overcommit")
    pinned = _by((r for r in rows if r["pinned"]), "overcommit")
    if not plain or not pinned:
        missing = "unpinned" if not plain else "pinned"
        return _verdict(figure, numbers, [(f"runs {missing}", False)])
    ocs = sorted(plain, key=_num)
    nested = [_num(plain[oc]["nested_faults"]) for oc in ocs]
    worst = max(nested)
    numbers[f"unpinned nested faults at {_fmt(ocs[0])}x"] = nested[0]
    numbers["unpinned nested faults, most at any overcommit"] = worst
    common = [oc for oc in ocs if oc in pinned]
    total_plain = sum(_num(plain[oc]["nested_faults"]) for oc in common)
    total_pinned = sum(_num(pinned[oc]["nested_faults"]) for oc in common)
    numbers["nested faults summed over overcommits, unpinned"] = total_plain
    numbers["nested faults summed over overcommits, pinned"] = total_pinned
    conditions = [
        (
            f"unpinned: fewer nested faults at the lowest overcommit than at the worst "
            f"({nested[0]:.0f} vs {worst:.0f})",
            worst > 0 and nested[0] < worst,
        ),
        (
            f"pinning removes at least half ({total_pinned:.0f} vs {total_plain:.0f})",
            bool(common) and total_plain > 0 and total_pinned <= 0.5 * total_plain,
        ),
    ]
    return _verdict(figure, numbers, conditions)


# ---- figure 7 ------------------------------------------------------------------------------


def check_fig07_deadlock(rows: Rows) -> Claim:
    """Each cycle kind: > 0 at every concurrency without its fix, 0 with it; the
    hypervisor cycle rises with concurrency; both fixes: no deadlock at all."""
    figure = "fig07_deadlock"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []

    def pick(order: str | None = None, driver: str | None = None) -> Rows:
        return sorted(
            (r for r in rows if order in (None, r["lock_order"])
             and driver in (None, r["balloon_driver"])),
            key=lambda r: _num(r["concurrent_ops"]),
        )  # fmt: skip

    def p(r: dict[str, Any], column: str) -> float:
        return _num(r[column]) / max(_num(r["trials"]), 1.0)

    hv = pick("natural", "alloc_outside_lock")  # the hypervisor cycle alone
    if hv:
        lo, hi = hv[0], hv[-1]
        for r in (lo, hi):
            numbers[f"natural, alloc_outside_lock: P(deadlock) at {r['concurrent_ops']} ops"] = p(
                r, "deadlocked"
            )
        conditions.append(
            (
                "natural: hostmem-cycle deadlocks at every concurrency",
                all(_num(r["deadlocked_hostmem"]) > 0 for r in pick("natural")),
            )
        )
        conditions.append(
            (
                "natural, alloc_outside_lock: likelier at the most concurrent ops than the fewest",
                len(hv) > 1 and p(hi, "deadlocked") > p(lo, "deadlocked"),
            )
        )
    else:
        conditions.append(("runs of natural, alloc_outside_lock", False))
    oom = pick("hostmem_first", "alloc_under_lock")  # the OOM-notifier cycle alone
    if oom:
        for r in (oom[0], oom[-1]):
            numbers[
                f"hostmem_first, alloc_under_lock: P(deadlock) at {r['concurrent_ops']} ops"
            ] = p(r, "deadlocked")
        conditions.append(
            (
                "alloc_under_lock: OOM-cycle deadlocks at every concurrency",
                all(_num(r["deadlocked_oom"]) > 0 for r in pick(driver="alloc_under_lock")),
            )
        )
    else:
        conditions.append(("runs of hostmem_first, alloc_under_lock", False))
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
        trials = sum(_num(r["trials"]) for r in group)
        dead = sum(_num(r[column]) for r in group)
        numbers[f"{label.split(':')[0]}: {column} / trials"] = f"{dead:.0f} / {trials:.0f}"
        conditions.append((label, dead == 0 and trials > 0))
    return _verdict(figure, numbers, conditions)


# ---- figure 8 ------------------------------------------------------------------------------


def check_fig08_economics(rows: Rows) -> Claim:
    """Some policy's profit curve has an interior maximum."""
    figure = "fig08_economics"
    numbers: dict[str, Any] = {}
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_policy[row["policy"]].append(row)
    peaked = []
    for policy, pts in sorted(by_policy.items()):
        pts.sort(key=lambda r: _num(r["overcommit"]))
        profits = [_num(r["profit_per_host_hour"]) for r in pts]
        best = max(range(len(pts)), key=lambda i: profits[i])
        numbers[f"{policy}: most profitable overcommit"] = _num(pts[best]["overcommit"])
        numbers[f"{policy}: its profit per host-hour"] = profits[best]
        if len(pts) >= 3 and profits[best] > profits[0] and profits[best] > profits[-1]:
            peaked.append(policy)
    numbers["policies whose profit rises then falls"] = ", ".join(peaked) or "none"
    conditions = [("some policy's profit peaks inside the overcommit range", bool(peaked))]
    return _verdict(figure, numbers, conditions)


# ---- figure 9 ------------------------------------------------------------------------------


def check_fig09_balloon_overhead(rows: Rows) -> Claim:
    """Ballooned vs configured throughput at each memory size, within 5%."""
    figure = "fig09_balloon_overhead"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    ballooned = _by((r for r in rows if r["kind"] == "ballooned"), "memory_mib")
    configured = _by((r for r in rows if r["kind"] == "configured"), "memory_mib")
    sizes = sorted(set(ballooned) & set(configured), key=_num)
    if not sizes:
        return _verdict(figure, numbers, [("ballooned and configured runs of a same m", False)])
    for m in sizes:
        gap = _num(ballooned[m]["throughput"]) / _num(configured[m]["throughput"]) - 1
        numbers[f"m = {_fmt(m)} MiB: ballooned vs configured"] = f"{100 * gap:+.2f}%"
        conditions.append((f"m = {_fmt(m)} MiB: |gap| <= 5% ({100 * gap:+.2f}%)", abs(gap) <= 0.05))
    return _verdict(figure, numbers, conditions)


# ---- figure 10 -----------------------------------------------------------------------------


def steady_balloons(rows: Rows) -> dict[tuple[float, str], float]:
    """(tax rate, role) -> mean balloon (MiB) over the second half of the ticks."""
    last = max((_num(r["tick"]) for r in rows), default=0.0)
    sums: dict[tuple[float, str], list[float]] = defaultdict(list)
    for r in rows:
        if _num(r["tick"]) >= last / 2:
            sums[(_num(r["tax_rate"]), r["role"])].append(_num(r["balloon_mib"]))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def check_fig10_idle_tax(rows: Rows) -> Claim:
    """Idle vs active VM's balloon under no tax and the highest tax rate."""
    figure = "fig10_idle_tax"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    steady = steady_balloons(rows)
    rates = sorted({rate for rate, _ in steady})
    for rate in rates:
        for role in ("idle", "active"):
            if (rate, role) in steady:
                numbers[f"tax {rate:g}: {role} VM's balloon (MiB, second half)"] = steady[
                    (rate, role)
                ]
    if 0.0 not in rates or not rates or rates[-1] <= 0:
        return _verdict(figure, numbers, [("runs with tax 0 and with a positive tax", False)])
    untaxed, taxed = 0.0, rates[-1]
    for rate in (untaxed, taxed):
        if (rate, "idle") not in steady or (rate, "active") not in steady:
            conditions.append((f"tax {rate:g}: both an idle and an active VM", False))
    if conditions:
        return _verdict(figure, numbers, conditions)
    idle0, active0 = steady[(untaxed, "idle")], steady[(untaxed, "active")]
    idle1, active1 = steady[(taxed, "idle")], steady[(taxed, "active")]
    conditions += [
        (
            f"tax {taxed:g}: idle balloon >= 1.25x active's ({idle1:.1f} vs {active1:.1f} MiB)",
            idle1 > 0 and idle1 >= 1.25 * active1,
        ),
        (
            f"tax 0: balloons within 10% ({idle0:.1f} vs {active0:.1f} MiB)",
            abs(idle0 - active0) <= 0.1 * max(idle0, active0),
        ),
    ]
    return _verdict(figure, numbers, conditions)


# ---- figure 11 -----------------------------------------------------------------------------


def check_fig11_che_validation(rows: Rows) -> Claim:
    """Simulated LRU hit ratio vs Che's approximation, within 0.01 everywhere."""
    figure = "fig11_che_validation"
    errors = [
        (r, _num(r["hit_ratio"]) - _num(r["che_hit_ratio"]))
        for r in rows
        if r.get("che_hit_ratio") is not None
    ]
    if not errors:
        return _verdict(figure, {}, [("points where Che's approximation applies", False)])
    worst_row, worst = max(errors, key=lambda e: abs(e[1]))
    numbers = {
        "points": len(errors),
        "max |simulated - Che|": abs(worst),
        "mean |simulated - Che|": sum(abs(e) for _, e in errors) / len(errors),
        "worst at": f"alpha {_fmt(worst_row['alpha'])}, cache {_fmt(worst_row['cache_mib'])} MiB",
    }
    conditions = [(f"every |error| <= 0.01 (max {abs(worst):.4f})", abs(worst) <= 0.01)]
    return _verdict(figure, numbers, conditions)


# ---- the controller shoot-out --------------------------------------------------------------


def check_controllers(rows: Rows) -> Claim:
    """Per (workload, overcommit) under memory pressure: the best balloon controller
    against ``none``. A scenario where ``none`` runs at native speed (within 1%) has no
    pressure to relieve: it is reported, not counted."""
    figure = "controllers"
    numbers: dict[str, Any] = {}
    conditions: list[tuple[str, bool]] = []
    scenarios: dict[tuple[str, float], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        scenarios[(str(r["workload"]), _num(r["overcommit"]))][str(r["policy"])] = r
    for (workload, ratio), by_policy in sorted(scenarios.items()):
        where = f"{workload} at {ratio:g}x"
        steady = {p: _num(r["throughput_steady"]) for p, r in by_policy.items()}
        others = {p: v for p, v in steady.items() if p != "none" and not math.isnan(v)}
        if "none" not in steady or not others:
            conditions.append((f"{where}: runs of none and of a balloon controller", False))
            continue
        native_share = _num(by_policy["none"].get("relative_steady"))
        if native_share >= 0.99:
            numbers[f"{where}"] = (
                f"no memory pressure (none at {100 * native_share:.0f}% of native)"
            )
            continue
        best = max(others, key=lambda p: others[p])
        gain = others[best] / steady["none"] - 1 if steady["none"] > 0 else math.inf
        numbers[f"{where}: best controller"] = f"{best} ({100 * gain:+.1f}% vs none)"
        conditions.append((f"{where}: {best} beats none ({100 * gain:+.1f}%)", gain > 0))
    if not conditions:
        conditions.append(("a scenario under memory pressure", False))
    return _verdict(figure, numbers, conditions)


CHECKS: dict[str, Callable[[Rows], Claim]] = {
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
}

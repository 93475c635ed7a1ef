"""One function per paper figure: ``draw_<figure>(rows, path) -> path`` draws the rows of
the figure's named query into a PNG (matplotlib, Agg backend, no pyplot state).

Every axis says its unit; every figure has a title and a legend. A figure drawn from rows
that lack a series draws what there is rather than failing: whether the data support the
claim is for ``analysis.claims`` to say.

Replicates are drawn as 95% percentile bootstrap intervals (``analysis.stats``, over the
query's per-replicate ``<column>_reps`` lists): error bars on points, bands on per-tick
series; a point of fewer than ``stats.MIN_REPLICATES`` runs has none. A figure drawn from
a quick sweep (``quick=True``) is stamped QUICK MODE.
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only: never a window, never a display server

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

from analysis import stats  # noqa: E402
from analysis.claims import reps, steady_balloons  # noqa: E402

Rows = list[dict[str, Any]]

TITLES: dict[str, str] = {
    "fig01_io_amplification": "Fig. 1 - I/O amplification of blind host swapping",
    "fig02_esc": "Fig. 2 - Enhanced Second Chance vs classic replacement (trace replay)",
    "fig03_ws_vs_file_first": "Fig. 3 - Working-set vs file-first guest policy on `db`",
    "fig04_push_pull": "Fig. 4 - Push-pull: host swapping vs guest faults",
    "fig05_swap_storm": "Fig. 5 - Swap storm under aggressive inflation",
    "fig06_nested_swapping": "Fig. 6 - Nested swapping (double paging)",
    "fig07_deadlock": "Fig. 7 - Deadlock in the balloon lock protocol",
    "fig08_economics": "Fig. 8 - Economics of overcommitment",
    "fig09_balloon_overhead": "Fig. 9 - Balloon overhead (Waldspurger 2002, fig. 2)",
    "fig10_idle_tax": "Fig. 10 - Idle memory tax",
    "fig11_che_validation": "Fig. 11 - Validation: LRU hit ratio vs Che's approximation",
    "controllers": "Fig. 12 - Controller shoot-out",
    "fig13_sampling_validation": "Fig. 13 - Sampling validation: sampled vs full simulation",
}

POLICY_COLORS = {
    "esc": "tab:blue",
    "clock": "tab:orange",
    "lru": "tab:green",
    "fifo": "tab:red",
    "random": "tab:purple",
    "opt": "black",
    "ws": "tab:green",
    "file_first": "tab:red",
    "none": "tab:gray",
    "mom": "tab:blue",
    "aggressive": "tab:red",
    "static": "tab:cyan",
    "pff": "tab:olive",
    "esx": "tab:brown",
    "tmo": "tab:pink",
    "farmem": "tab:purple",
}


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _new(name: str, ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (7.0, 4.5)):
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.suptitle(TITLES[name])
    return fig, axes


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend, when there is anything to label (an empty figure gets none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


QUICK_STAMP = "QUICK MODE"  # shrunken sweep, too few replicates for intervals
BAND_RESAMPLES = 2000  # per tick of a series: thousands of intervals per figure


def _save(fig: Figure, path: Path | str, rows: Rows, quick: bool = False) -> Path:
    if not rows:  # say so rather than leave blank axes to be misread
        fig.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=28, color="gray")
    if quick:  # a quick figure must not pass for the full one
        fig.text(0.005, 0.995, QUICK_STAMP, ha="left", va="top", fontsize=9,
                 color="tab:red", weight="bold")  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, format="png")
    return path


def _series(rows: Rows, key: str, x: str) -> dict[Any, list[dict[str, Any]]]:
    """Rows grouped by ``key``, each group sorted by ``x``."""
    out: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    for group in out.values():
        group.sort(key=lambda r: _num(r[x]))
    return dict(sorted(out.items(), key=lambda kv: str(kv[0])))


def _log2_axis(ax: Any, values: Iterable[float]) -> None:
    """A log-2 x axis labelled with the plain values swept (8, 16, 32, not 2^3 ...)."""
    ticks = sorted({v for v in values if v > 0 and math.isfinite(v)})
    ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def _xy(group: list[dict[str, Any]], x: str, y: str, scale: float = 1.0):
    return [_num(r[x]) for r in group], [_num(r[y]) * scale for r in group]


def _yerr(intervals: Iterable[stats.Interval], ys: Iterable[float], scale: float = 1.0):
    """Error bar lengths [below, above] of each y from its interval (NaN: no bar)."""
    below, above = [], []
    for iv, y in zip(intervals, ys, strict=True):
        below.append(max(y - iv.lo * scale, 0.0) if not iv.too_few else math.nan)
        above.append(max(iv.hi * scale - y, 0.0) if not iv.too_few else math.nan)
    return [below, above]


_DRAWN: weakref.WeakKeyDictionary[Any, list[tuple[str, list[float], list[float]]]] = (
    weakref.WeakKeyDictionary()
)  # per axes: the lines drawn on it so far


def _identical(ax: Any, label: str | None, xs: list[float], ys: list[float]) -> str | None:
    """The label, noting an earlier line of these axes it would hide (same points)."""
    drawn = _DRAWN.setdefault(ax, [])
    note = label
    for other, xs0, ys0 in drawn:
        if (
            xs0 == xs
            and len(ys0) == len(ys)
            and all(
                a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(ys0, ys, strict=True)
            )
        ):
            note = f"{label} (identical to {other})"
            break
    drawn.append((str(label), xs, ys))
    return note


def _ci_plot(
    ax: Any, group: list[dict[str, Any]], x: str, y: str, scale: float = 1.0, **style: Any
) -> None:
    """A line of the group's means with 95% bootstrap error bars over its replicates; a
    line that exactly covers an earlier one says so in its label."""
    xs, ys = _xy(group, x, y, scale)
    if "label" in style:
        style["label"] = _identical(ax, style["label"], xs, ys)
    intervals = [stats.mean_ci(reps(r, y)) for r in group]
    if all(iv.too_few for iv in intervals):
        ax.plot(xs, ys, **style)
        return
    ax.errorbar(xs, ys, yerr=_yerr(intervals, ys, scale), capsize=3, **style)


def _ci_band(ax: Any, group: list[dict[str, Any]], x: str, y: str, **style: Any) -> None:
    """A per-tick line of means with a 95% bootstrap band over the runs."""
    xs, ys = _xy(group, x, y)
    if "label" in style:
        style["label"] = _identical(ax, style["label"], xs, ys)
    line = ax.plot(xs, ys, **style)
    intervals = [stats.mean_ci(reps(r, y), resamples=BAND_RESAMPLES) for r in group]
    if not all(iv.too_few for iv in intervals):
        ax.fill_between(xs, [iv.lo for iv in intervals], [iv.hi for iv in intervals],
                        color=line[0].get_color(), alpha=0.2, linewidth=0)  # fmt: skip


# ---- figure 1 ------------------------------------------------------------------------------

MECHANISMS = ("host swapping", "balloon", "host discard")
MECHANISM_COLORS = {"host swapping": "tab:red", "balloon": "tab:blue", "host discard": "tab:green"}


def draw_fig01_io_amplification(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Grouped bars per overcommit, one group per mechanism: total reclaim I/O per
    simulated second (writes caused by reclaim + refault reads) and guest throughput, the
    two quantities the claim compares, with 95% intervals over replicates."""
    fig, axes = _new("fig01_io_amplification", ncols=2, size=(11.0, 4.5))
    ocs = sorted({_num(r["overcommit"]) for r in rows})
    cells = {(_num(r["overcommit"]), r["mechanism"]): r for r in rows}
    width = 0.8 / len(MECHANISMS)
    panels = (
        ("reclaim_io_per_s", "reclaim I/O per second (writes + refault reads)", 1.0),
        ("throughput", "guest throughput (M references/s)", 1e-6),
    )
    for ax, (column, label, scale) in zip(axes[0], panels, strict=True):
        for j, mech in enumerate(MECHANISMS):
            xs, ys, cis = [], [], []
            for i, oc in enumerate(ocs):
                row = cells.get((oc, mech))
                if row is None or row.get(column) is None:
                    continue
                xs.append(i + (j - 1) * width)
                ys.append(_num(row[column]) * scale)
                cis.append(stats.mean_ci(reps(row, column)))
            ax.bar(xs, ys, width, color=MECHANISM_COLORS[mech], label=mech)
            if not all(iv.too_few for iv in cis):
                ax.errorbar(xs, ys, yerr=_yerr(cis, ys, scale), fmt="none", ecolor="black",
                            capsize=2, linewidth=0.8)  # fmt: skip
        ax.set_xticks(range(len(ocs)), [f"{oc:g}x" for oc in ocs])
        ax.set_xlabel("host overcommit (guest memory / host memory)")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    _legend(axes[0][0], fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 2 ------------------------------------------------------------------------------


def draw_fig02_esc(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Per workload: ESC's evictions by class; faults and write-backs per policy."""
    workloads = sorted({r["workload"] for r in rows}) or ["-"]
    fig, axes = _new("fig02_esc", ncols=3, nrows=len(workloads),
                     size=(13.0, 3.8 * len(workloads)))  # fmt: skip
    classes = (("00", "(0,0) clean, unreferenced"), ("01", "(0,1) dirty, unreferenced"),
               ("10", "(1,0) clean, referenced"), ("11", "(1,1) dirty, referenced"))  # fmt: skip
    colors = ("tab:green", "tab:orange", "tab:blue", "tab:red")
    for w, workload in enumerate(workloads):
        mine = [r for r in rows if r["workload"] == workload]
        esc = sorted((r for r in mine if r["policy"] == "esc"), key=lambda r: _num(r["cache_mib"]))
        ax = axes[w][0]
        labels = [f"{_num(r['cache_mib']):g}" for r in esc]
        bottom = [0.0] * len(esc)
        for (cls, label), color in zip(classes, colors, strict=True):
            totals = [sum(_num(r[f"evict_{c}"]) for c, _ in classes) or 1.0 for r in esc]
            share = [_num(r[f"evict_{cls}"]) / t for r, t in zip(esc, totals, strict=True)]
            ax.bar(labels, share, bottom=bottom, color=color, label=label)
            bottom = [b + s for b, s in zip(bottom, share, strict=True)]
        ax.set_title(f"{workload}: ESC evictions by (R,M) class", fontsize="medium")
        ax.set_xlabel("cache size (MiB)")
        ax.set_ylabel("share of ESC's evictions")
        ax.set_ylim(0, 1)
        _legend(ax, fontsize="x-small")
        for col, (metric, label) in enumerate(
            (("faults_per_1000_refs", "faults per 1000 references"),
             ("writebacks_per_1000_refs", "write-backs per 1000 references")),
            start=1,
        ):  # fmt: skip
            ax = axes[w][col]
            for policy, group in _series(mine, "policy", "cache_mib").items():
                _ci_plot(ax, group, "cache_mib", metric, marker="o", label=policy,
                         color=POLICY_COLORS.get(policy),
                         linestyle="--" if policy == "opt" else "-")  # fmt: skip
            _log2_axis(ax, (_num(r["cache_mib"]) for r in mine))
            ax.set_title(f"{workload}: {label}", fontsize="medium")
            ax.set_xlabel("cache size (MiB)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            _legend(ax, fontsize="x-small")
    return _save(fig, path, rows, quick)


# ---- figure 3 ------------------------------------------------------------------------------


def draw_fig03_ws_vs_file_first(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Major faults and throughput against balloon size, per guest policy."""
    fig, axes = _new("fig03_ws_vs_file_first", ncols=2, size=(11.0, 4.5))
    for policy, group in _series(rows, "guest_policy", "balloon_mib").items():
        color = POLICY_COLORS.get(policy)
        _ci_plot(axes[0][0], group, "balloon_mib", "major_faults_per_1000_refs", marker="o",
                 label=policy, color=color)  # fmt: skip
        _ci_plot(axes[0][1], group, "balloon_mib", "throughput", 1e-3, marker="o",
                 label=policy, color=color)  # fmt: skip
    axes[0][0].set_ylabel("guest major faults per 1000 references")
    axes[0][1].set_ylabel("throughput (thousand references/s)")
    for ax in axes[0]:
        ax.set_xlabel("balloon size (MiB of a 256 MiB guest)")
        ax.grid(alpha=0.3)
        _legend(ax, title="guest policy", fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 4 ------------------------------------------------------------------------------


def draw_fig04_push_pull(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Host swap-out rate and guest fault rate against balloon size, knee marked."""
    fig, axes = _new("fig04_push_pull")
    ax = axes[0][0]
    pts = sorted(rows, key=lambda r: _num(r["balloon_mib"]))
    _ci_plot(ax, pts, "balloon_mib", "host_swap_rate", marker="o", color="tab:red",
             label="host swap-outs")  # fmt: skip
    ax.set_xlabel("balloon size (MiB)")
    ax.set_ylabel("host swap-outs per second", color="tab:red")
    ax2 = ax.twinx()
    _ci_plot(ax2, pts, "balloon_mib", "guest_fault_rate", marker="s", color="tab:blue",
             label="guest page faults")  # fmt: skip
    ax2.set_ylabel("guest page faults per second", color="tab:blue")
    if pts:
        knee = _num(pts[0]["mem_mib"]) - _num(pts[0]["ws_mib"])
        ax.axvline(knee, color="gray", linestyle="--",
                   label=f"usable memory = working set ({knee:g} MiB balloon)")  # fmt: skip
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    if lines[0] or more[0]:
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize="small", loc="center left")
    ax.grid(alpha=0.3)
    return _save(fig, path, rows, quick)


# ---- figure 5 ------------------------------------------------------------------------------


def draw_fig05_swap_storm(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Per-tick host free memory, I/O buffers and swap-out rate, one line per policy."""
    fig, axes = _new("fig05_swap_storm", nrows=3, size=(8.0, 8.5))
    panels = (
        ("host_free_mib", "host free memory (MiB)"),
        ("io_buffers_mib", "host I/O buffers (MiB)"),
        ("host_swap_rate", "host swap-outs per second"),
    )
    series = _series(rows, "policy", "tick")
    for (metric, label), ax in zip(panels, (a[0] for a in axes), strict=True):
        for policy, group in series.items():
            _ci_band(ax, group, "time_s", metric, label=policy, color=POLICY_COLORS.get(policy),
                     linewidth=1.2)  # fmt: skip
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        _legend(ax, title="hypervisor policy", fontsize="small")
    axes[-1][0].set_xlabel("simulated time (s)")
    return _save(fig, path, rows, quick)


# ---- figure 6 ------------------------------------------------------------------------------


def draw_fig06_nested_swapping(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Nested faults (per 1000 references and per 1000 guest swap-outs) against overcommit."""
    fig, axes = _new("fig06_nested_swapping", ncols=2, size=(11.0, 4.5))
    for pinned, group in _series(rows, "pinned", "overcommit").items():
        label = "swap blocks pinned" if pinned else "not pinned"
        style = {"marker": "o", "color": "tab:green" if pinned else "tab:red", "label": label}
        _ci_plot(axes[0][0], group, "overcommit", "nested_per_1000_refs", **style)
        _ci_plot(axes[0][1], group, "overcommit", "nested_per_1000_swap_outs", **style)
    axes[0][0].set_ylabel("nested faults per 1000 references")
    axes[0][1].set_ylabel("nested faults per 1000 guest swap-outs")
    for ax in axes[0]:
        ax.set_xlabel("host overcommit (guest memory / host memory)")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 7 ------------------------------------------------------------------------------


def draw_fig07_deadlock(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Deadlock probability against concurrent operations, one curve per (lock order,
    balloon driver), with 95% Wilson intervals over the schedules tried."""
    fig, axes = _new("fig07_deadlock")
    ax = axes[0][0]
    colors = {"natural": "tab:red", "hostmem_first": "tab:green"}
    styles = {"alloc_under_lock": "--", "alloc_outside_lock": "-"}
    series: dict[tuple[str, str], Rows] = defaultdict(list)
    for r in rows:
        series[(r["lock_order"], r["balloon_driver"] or "alloc_outside_lock")].append(r)
    for (order, driver), group in sorted(series.items()):
        group.sort(key=lambda r: _num(r["concurrent_ops"]))
        xs, ps = _xy(group, "concurrent_ops", "probability")
        errs = _yerr(
            (stats.wilson_ci(int(_num(r["deadlocked"])), int(_num(r["trials"]))) for r in group),
            ps,
        )
        ax.errorbar(xs, ps, yerr=errs, marker="o", capsize=3, label=f"{order}, {driver}",
                    color=colors.get(order), linestyle=styles.get(driver))  # fmt: skip
    ax.set_xlabel("concurrent balloon operations (threads x operations each)")
    ax.set_ylabel("P(deadlock) of a random schedule")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    _legend(ax, title="lock order, balloon driver", fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 8 ------------------------------------------------------------------------------


def draw_fig08_economics(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Profit per host-hour against overcommit per policy; each curve's best point marked."""
    fig, axes = _new("fig08_economics")
    ax = axes[0][0]
    markers = "osD^v<>"
    for i, (policy, group) in enumerate(_series(rows, "policy", "overcommit").items()):
        xs, ys = _xy(group, "overcommit", "profit_per_host_hour")
        color = POLICY_COLORS.get(policy)
        # Policies often coincide (no pressure, no balloon): distinct markers keep each visible.
        _ci_plot(ax, group, "overcommit", "profit_per_host_hour",
                 marker=markers[i % len(markers)], markersize=9 - 1.5 * (i % 3),
                 label=policy, color=color, alpha=0.85)  # fmt: skip
        if ys:
            best = max(range(len(ys)), key=lambda i: ys[i])
            ax.scatter([xs[best]], [ys[best]], s=150, facecolors="none", edgecolors=color)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("host overcommit (guest memory / host memory)")
    ax.set_ylabel("profit per host-hour ($/h)")
    ax.grid(alpha=0.3)
    _legend(ax, title="hypervisor policy (circle: best)", fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 9 ------------------------------------------------------------------------------


def draw_fig09_balloon_overhead(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Throughput of ballooned and configured VMs against m, and the gap with ESX's band."""
    fig, axes = _new("fig09_balloon_overhead", ncols=2, size=(11.0, 4.5))
    series = _series(rows, "kind", "memory_mib")
    styles = {"ballooned": ("tab:blue", "o"), "configured": ("tab:orange", "s")}
    for kind, group in series.items():
        color, marker = styles.get(kind, (None, "o"))
        label = "ballooned from 256 MiB" if kind == "ballooned" else "configured with m MiB"
        _ci_plot(axes[0][0], group, "memory_mib", "throughput", 1e-3, marker=marker,
                 color=color, label=label)  # fmt: skip
    axes[0][0].set_ylabel("steady throughput (thousand references/s)")
    _legend(axes[0][0], fontsize="small")
    b = {_num(r["memory_mib"]): r for r in series.get("ballooned", [])}
    c = {_num(r["memory_mib"]): r for r in series.get("configured", [])}
    ms = sorted(set(b) & set(c))
    ratios = [stats.ratio_ci(reps(b[m], "throughput"), reps(c[m], "throughput")) for m in ms]
    gaps = [100 * (iv.estimate - 1) for iv in ratios]
    pct = [stats.Interval(100 * (iv.estimate - 1), 100 * (iv.lo - 1), 100 * (iv.hi - 1), iv.n,
                          iv.too_few) for iv in ratios]  # fmt: skip
    ax = axes[0][1]
    ax.axhspan(-4.4, -1.4, color="tab:gray", alpha=0.25, label="ESX measured (-4.4% to -1.4%)")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.errorbar(ms, gaps, yerr=_yerr(pct, gaps), marker="o", color="tab:blue", capsize=3,
                label="simulated (95% interval of the ratio)")  # fmt: skip
    ax.set_ylabel("ballooned vs configured throughput (%)")
    _legend(ax, fontsize="small")
    for ax in axes[0]:
        ax.set_xlabel("guest memory m (MiB)")
        ax.grid(alpha=0.3)
    return _save(fig, path, rows, quick)


# ---- figure 10 -----------------------------------------------------------------------------


def draw_fig10_idle_tax(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Balloon size over time of the idle and the active VM, one panel per tax rate."""
    rates = sorted({_num(r["tax_rate"]) for r in rows}) or [math.nan]
    fig, axes = _new("fig10_idle_tax", ncols=len(rates), size=(5.5 * len(rates), 4.5))
    steady = steady_balloons(rows)
    colors = {"idle": "tab:gray", "active": "tab:red"}
    for ax, rate in zip(axes[0], rates, strict=True):
        mine = [r for r in rows if _num(r["tax_rate"]) == rate]
        for role, group in _series(mine, "role", "tick").items():
            mean = steady.get((rate, role), math.nan)
            _ci_band(ax, group, "time_s", "balloon_mib", color=colors.get(role),
                     label=f"{role} VM (mean {mean:.0f} MiB, second half)")  # fmt: skip
        ax.set_title(f"idle memory tax rate {rate:g}", fontsize="medium")
        ax.set_xlabel("simulated time (s)")
        ax.set_ylabel("balloon size (MiB)")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="small")
    return _save(fig, path, rows, quick)


# ---- figure 11 -----------------------------------------------------------------------------


def draw_fig11_che_validation(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Simulated hit ratio (markers) and Che's approximation (lines); the error beneath."""
    fig, axes = _new("fig11_che_validation", nrows=2, size=(7.5, 7.5))
    top, bottom = axes[0][0], axes[1][0]
    cmap = matplotlib.colormaps["viridis"]
    series = _series(rows, "alpha", "cache_mib")
    for i, (alpha, group) in enumerate(series.items()):
        color = cmap(i / max(len(series) - 1, 1) * 0.85)
        xs, che = _xy(group, "cache_mib", "che_hit_ratio")
        _, sim = _xy(group, "cache_mib", "hit_ratio")
        top.plot(xs, che, color=color, label=f"Che, alpha {_num(alpha):g}")
        _ci_plot(top, group, "cache_mib", "hit_ratio", color=color, marker="o", linestyle="none",
                 label=f"simulated LRU, alpha {_num(alpha):g}")  # fmt: skip
        _ci_plot(bottom, group, "cache_mib", "error", color=color, marker="o",
                 label=f"alpha {_num(alpha):g}")  # fmt: skip
    bottom.axhspan(-0.01, 0.01, color="tab:gray", alpha=0.2, label="+-0.01")
    top.set_ylabel("hit ratio")
    bottom.set_ylabel("simulated - Che (hit ratio)")
    for ax in (top, bottom):
        _log2_axis(ax, (_num(r["cache_mib"]) for r in rows))
        ax.set_xlabel("cache size (MiB)")
        ax.grid(alpha=0.3)
        _legend(ax, fontsize="x-small")
    return _save(fig, path, rows, quick)


# ---- the controller shoot-out --------------------------------------------------------------

SHOOT_OUT_PANELS = (
    ("relative_steady", "steady throughput / native"),
    ("relative_p5", "p5 throughput / native"),
    ("sla_violations", "SLA violations (VMs)"),
    ("psi_some", "guest memory PSI (some)"),
    ("profit_per_host_hour", "profit ($ per host-hour)"),
)


def draw_controllers(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """One column per workload, one row per metric; a line per controller over overcommit."""
    workloads = sorted({str(r["workload"]) for r in rows}) or ["-"]
    size = (max(7.0, 4.2 * len(workloads)), 2.6 * len(SHOOT_OUT_PANELS))
    fig, axes = _new("controllers", ncols=len(workloads), nrows=len(SHOOT_OUT_PANELS), size=size)
    markers = "osD^v<>P*X"
    for col, workload in enumerate(workloads):
        mine = [r for r in rows if str(r["workload"]) == workload]
        series = _series(mine, "policy", "overcommit")
        for row, (metric, label) in enumerate(SHOOT_OUT_PANELS):
            ax = axes[row][col]
            for i, (policy, group) in enumerate(series.items()):
                _ci_plot(ax, group, "overcommit", metric, marker=markers[i % len(markers)],
                         markersize=5, alpha=0.85, color=POLICY_COLORS.get(str(policy)),
                         label=str(policy))  # fmt: skip
            if row == 0:
                ax.set_title(f"workload {workload}", fontsize="medium")
            if col == 0:
                ax.set_ylabel(label, fontsize="small")
            if row == len(SHOOT_OUT_PANELS) - 1:
                ax.set_xlabel("host overcommit")
            ax.grid(alpha=0.3)
    _legend(axes[0][-1], title="controller", fontsize="x-small")
    return _save(fig, path, rows, quick)


# ---- figure 13 -----------------------------------------------------------------------------

SAMPLING_PANELS = (
    ("throughput", "throughput"),
    ("faults_per_1000_refs", "guest faults per 1,000 references"),
    ("host_swap_outs", "host swap-outs"),
    ("profit", "profit per host-hour"),
)


def draw_fig13_sampling_validation(rows: Rows, path: Path | str, *, quick: bool = False) -> Path:
    """Relative error against rate 1, one panel per quantity: bars per (workload, policy),
    one per sampling rate, with the 95% interval of the ratio of means where the query
    carries replicates; the +-5% band of the claim shaded."""
    fig, axes = _new("fig13_sampling_validation", ncols=len(SAMPLING_PANELS), size=(13.0, 4.2))
    scenarios = sorted({(r["workload"], r["policy"]) for r in rows})
    rates = sorted({_num(r["rate"]) for r in rows if _num(r["rate"]) < 1.0}, reverse=True)
    cells = {(r["workload"], r["policy"], _num(r["rate"])): r for r in rows}
    width = 0.8 / max(len(rates), 1)
    for ax, (column, label) in zip(axes[0], SAMPLING_PANELS, strict=True):
        ax.axhspan(-5, 5, color="tab:green", alpha=0.1, label="+-5%")
        ax.axhline(0, color="black", linewidth=0.8)
        for j, rate in enumerate(rates):
            xs, ys, cis = [], [], []
            for i, (workload, policy) in enumerate(scenarios):
                row = cells.get((workload, policy, rate))
                error = None if row is None else row.get(f"{column}_rel_error")
                if error is None or not math.isfinite(_num(error)):
                    continue
                xs.append(i + (j - (len(rates) - 1) / 2) * width)
                ys.append(100 * _num(error))
                full = cells.get((workload, policy, 1.0), {})
                iv = stats.ratio_ci(reps(row, column), reps(full, column))
                cis.append(stats.Interval(iv.estimate - 1, iv.lo - 1, iv.hi - 1, iv.n, iv.too_few))
            ax.bar(xs, ys, width, label=f"rate {rate:g}")
            if cis and not all(iv.too_few for iv in cis):
                ax.errorbar(xs, ys, yerr=_yerr(cis, ys, 100.0), fmt="none", ecolor="black",
                            capsize=2, linewidth=0.8)  # fmt: skip
        ax.set_xticks(range(len(scenarios)), [f"{w}\n{p}" for w, p in scenarios])
        ax.set_title(label, fontsize="medium")
        ax.set_ylabel("relative error vs rate 1 (%)")
        ax.grid(axis="y", alpha=0.3)
    _legend(axes[0][0], fontsize="small")
    return _save(fig, path, rows, quick)


DRAW: dict[str, Callable[..., Path]] = {  # draw(rows, path, quick=False)
    "fig01_io_amplification": draw_fig01_io_amplification,
    "fig02_esc": draw_fig02_esc,
    "fig03_ws_vs_file_first": draw_fig03_ws_vs_file_first,
    "fig04_push_pull": draw_fig04_push_pull,
    "fig05_swap_storm": draw_fig05_swap_storm,
    "fig06_nested_swapping": draw_fig06_nested_swapping,
    "fig07_deadlock": draw_fig07_deadlock,
    "fig08_economics": draw_fig08_economics,
    "fig09_balloon_overhead": draw_fig09_balloon_overhead,
    "fig10_idle_tax": draw_fig10_idle_tax,
    "fig11_che_validation": draw_fig11_che_validation,
    "controllers": draw_controllers,
    "fig13_sampling_validation": draw_fig13_sampling_validation,
}

"""`balloonlab bench`: measure the speed targets (replay, simulation, harness) and the
memory per simulated page."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from harness.cli import app
from harness.errors import UserError

PARTS = ("replay", "sim", "harness", "memory", "datacenter")


def _mark(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


@app.command()
def bench(
    only: list[str] = typer.Option(
        [], "--only", help="replay, sim, harness, memory or datacenter (repeatable)."
    ),
    references: int = typer.Option(10_000_000, help="Replay: references per policy."),
    ticks: int = typer.Option(100, help="Simulation: ticks of the 4-guest run."),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON."),
) -> None:
    """Measure replay, full-simulation and harness speed, the bytes per simulated page,
    and a 512 GiB / 32-guest host sampled at 1%, against the targets.

    Example: balloonlab bench --only replay --only sim
    """
    from harness import bench as b

    parts = only or list(PARTS)
    for part in parts:
        if part not in PARTS:
            raise UserError(f"--only {part!r}: expected one of {', '.join(PARTS)}")
    if references < 1000 or ticks < 1:
        raise UserError("--references must be >= 1000 and --ticks >= 1")
    out: dict = {}
    console = Console(stderr=as_json)
    if "replay" in parts:
        console.print(f"replay: {references:,} Zipf references, 16k frames, 64k pages ...")
        out["replay"] = b.bench_replay(references=references)
    if "sim" in parts:
        console.print(f"simulation: 4 guests, {ticks} ticks, benign and pressured ...")
        out["sim"] = b.bench_simulation(ticks=ticks)
        out["sim_pressured"] = b.bench_simulation(ticks=ticks, scenario="pressured")
        out["sim_trace"] = b.bench_trace_guest(ticks=ticks)
    if "harness" in parts:
        console.print("harness: trivial-run overhead, CPU-bound speed-up (starts Ray) ...")
        out["harness"] = b.bench_harness()
    if "memory" in parts:
        console.print("memory: 4 guests of 1 GiB, built and run 3 ticks ...")
        out["memory"] = b.bench_memory()
    if "datacenter" in parts:
        console.print("datacenter: 512 GiB host, 32 guests of 20 GiB, sampling.rate 0.01 ...")
        out["datacenter"] = b.bench_datacenter()
        out["datacenter_pressured"] = b.bench_datacenter(pressured=True)
    if as_json:
        typer.echo(json.dumps(out))
        return
    if "replay" in out:
        t = Table(title="trace replay (one core)")
        for col in ("policy", "refs/s", "target", "meets", "compile s"):
            t.add_column(col)
        for r in out["replay"]:
            t.add_row(r["policy"], f"{r['refs_per_second'] / 1e6:.1f}M",
                      "" if r["target"] is None else f"{r['target'] / 1e6:.0f}M",
                      _mark(r["meets_target"]), f"{r['compile_seconds']:.2f}")  # fmt: skip
        console.print(t)
    for key in ("sim", "sim_pressured"):
        if key not in out:
            continue
        s = out[key]
        console.print(
            f"full simulation, {s['scenario']}: {s['refs_per_second'] / 1e6:.2f}M guest refs/s "
            f"(best of {s['repeats']}, slowest {s['slowest_refs_per_second'] / 1e6:.2f}M; "
            f"target {s['target'] / 1e6:.0f}M: {_mark(s['meets_target'])}); "
            f"{s['simulated_seconds'] / s['seconds']:.2f} simulated s per wall s; "
            f"compile/load {s['compile_seconds']:.2f} s"
        )
    if "sim_trace" in out:
        s = out["sim_trace"]
        console.print(
            f"trace-driven guests: {s['trace_refs_per_second'] / 1e6:.2f}M refs/s vs "
            f"{s['synthetic_refs_per_second'] / 1e6:.2f}M synthetic = {s['ratio']:.2f}x "
            f"(target >= {s['target']:.1f}x: {_mark(s['meets_target'])})"
        )
    if "harness" in out:
        h = out["harness"]
        console.print(
            f"harness: overhead {h['overhead_ms_local']:.1f} ms/run local, "
            f"{h['overhead_ms_ray']:.1f} ms/run Ray (target < 20 ms: "
            f"{_mark(h['overhead_meets_target'])}); speed-up {h['speedup']:.2f}x on "
            f"{h['cores']} cores (target {h['speedup_target']:.2f}x: "
            f"{_mark(h['speedup_meets_target'])})"
        )
    if "memory" in out:
        m = out["memory"]
        parts = ", ".join(f"{k} {v:.2f}" for k, v in m["by_part"].items() if v >= 0.005)
        console.print(
            f"memory, {m['guests']} x {m['mem_mib']} MiB guests: {m['bytes_per_page']:.2f} "
            f"bytes per simulated page measured, {m['estimated_bytes_per_page']:.2f} "
            f"estimated (target <= {m['target']:.0f}: {_mark(m['meets_target'])}); by part: "
            f"{parts}; fixed-size state {m['fixed_bytes'] / 2**20:.1f} MiB; peak while "
            f"building {m['peak_bytes_per_page']:.1f} bytes per page"
        )
    for key in ("datacenter", "datacenter_pressured"):
        if key not in out:
            continue
        d = out[key]
        speed = d["simulated_per_wall_second"]
        console.print(
            f"datacenter, {d['scenario']}, {d['host_gib']:.0f} GiB host, {d['guests']} x "
            f"{d['guest_gib']:.0f} GiB guests at sampling.rate {d['rate']}: {speed:.2f} "
            f"simulated s per wall s over {d['ticks']} ticks (target >= "
            f"{d['speed_target']:.0f}: {_mark(d['speed_meets_target'])}); peak RSS "
            f"{d['peak_rss_bytes'] / 2**30:.2f} GiB (target < "
            f"{d['rss_target_bytes'] / 2**30:.0f}: {_mark(d['rss_meets_target'])}); built in "
            f"{d['build_seconds']:.1f} s; {d['host_swap_outs']:,.0f} host swap-outs"
        )

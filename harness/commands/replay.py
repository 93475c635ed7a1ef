"""`balloonlab replay`: run a page-reference trace through caches of several sizes under
several replacement policies, one row per (size, policy) pair."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from harness.cli import app
from harness.errors import UserError
from harness.traces import TRACE_FORMATS, parse_size, read_trace, trace_format


def _known_policies() -> list[str]:
    from sim_core.policies import GUEST_POLICIES  # imported late: it compiles kernels

    return list(GUEST_POLICIES)


def _split_list(text: str | None, flag: str) -> list[str]:
    if text is None:
        return []
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise UserError(f"{flag} {text!r}: an empty item in the list")
    return items


def _frames_list(text: str | None) -> list[int]:
    out = []
    for item in _split_list(text, "--frames"):
        try:
            value = int(item)
        except ValueError:
            raise UserError(f"--frames {item!r}: not a whole number of frames") from None
        if value <= 0:
            raise UserError(f"--frames must be > 0, got {value}")
        out.append(value)
    return out


def _fractions_list(text: str | None) -> list[float]:
    out = []
    for item in _split_list(text, "--fraction"):
        try:
            value = float(item.rstrip("%")) / (100 if item.endswith("%") else 1)
        except ValueError:
            raise UserError(f"--fraction {item!r}: not a number") from None
        if not 0 < value <= 1:
            raise UserError(f"--fraction must be in (0, 1] (of the footprint), got {item}")
        out.append(value)
    return out


def _human(rows: list[dict], trace: Path, fmt: str) -> str:
    if len(rows) > 1:
        head = f"{'policy':<10} {'frames':>10} {'cache MiB':>10} {'hit ratio':>9} "
        head += f"{'miss ratio':>10} {'faults':>12} {'writebacks':>11} {'M refs/s':>9}"
        lines = [f"trace {trace} ({fmt}): {rows[0]['references']:,} references", head]
        for r in rows:
            lines.append(
                f"{r['policy']:<10} {r['frames']:>10,} {r['cache_mib']:>10,.1f} "
                f"{r['hit_ratio']:>9.4f} {r['miss_ratio']:>10.4f} {r['faults']:>12,} "
                f"{r['writebacks']:>11,} {r['refs_per_second'] / 1e6:>9.1f}"
            )
        return "\n".join(lines)
    out = rows[0]
    lines = [
        ("trace", f"{trace} ({fmt})"),
        ("policy", out["policy"]),
        ("frames", f"{out['frames']:,}  ({out['cache_mib']:,.1f} MiB)"),
        ("references", f"{out['references']:,}"),
        ("hits", f"{out['hits']:,}  (hit ratio {out['hit_ratio']:.4f})"),
        ("faults", f"{out['faults']:,}  (miss ratio {out['miss_ratio']:.4f}, cold misses "
         "included)"),
        ("writebacks", f"{out['writebacks']:,}"),
        (
            "replay",
            f"{out['seconds']:.3f} s, {out['refs_per_second'] / 1e6:.1f} M refs/s "
            f"(compile {out['compile_seconds']:.2f} s, not included)",
        ),
    ]  # fmt: skip
    if out.get("evictions_by_class"):
        classes = "  ".join(f"{k}: {v:,}" for k, v in out["evictions_by_class"].items())
        lines.append(("evictions (R,M)", classes))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


@app.command()
def replay(
    trace: Path = typer.Argument(
        ...,
        help="Trace file: .csv or .parquet (column page, optional write 0/1 or op R/W; or "
        "block requests offset,size), MSR Cambridge .csv, .npy (page ids) or .oracleGeneral "
        "(libCacheSim binary records).",
        show_default=False,
        metavar="TRACE",
    ),
    frames: str | None = typer.Option(
        None, "--frames", "-n", help="Cache sizes in page frames, comma-separated (> 0)."
    ),
    cache: str | None = typer.Option(
        None, "--cache", help="Cache sizes as memory, comma-separated: 64MiB,1GiB (pages of "
        "--page-kib).",
    ),
    fraction: str | None = typer.Option(
        None, "--fraction", help="Cache sizes as fractions of the trace's footprint (its "
        "unique pages): 0.1,0.5 or 10%,50%.",
    ),
    policy: str = typer.Option(
        "lru",
        "--policy",
        "-p",
        help="Replacement policies, comma-separated: esc, clock, lru, fifo, random, "
        "file_first, ws or opt (Belady MIN).",
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help=f"Trace format when the suffix does not say: {', '.join(TRACE_FORMATS)}.",
    ),
    page_split: int | None = typer.Option(
        None, "--page-split", help="Split block requests (offset, size in bytes) into pages "
        "of this many bytes [default: 4096 for block traces].", show_default=False,
    ),
    page_kib: float | None = typer.Option(
        None, "--page-kib", help="KiB per page, for --cache sizes [default: the --page-split "
        "size, else 4].", show_default=False,
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random policy's choices."),
    json_out: bool = typer.Option(
        False, "--json", help="Print JSON: one object for one (size, policy) pair, else a "
        "list of them.",
    ),
) -> None:  # fmt: skip
    """Replay a page-reference trace through caches of several sizes and policies.

    One row per (size, policy) pair. Every miss is a fault (cold misses included);
    evicting a page written since it was loaded costs a write-back. Pages in a trace
    count as file-backed (a cache's view). The replay time excludes compiling.

    Example: balloonlab replay hm_0.csv --cache 64MiB,256MiB --fraction 0.5 --policy lru,clock,opt
    """
    # Cheap checks first, so a typo costs no trace loading.
    sizes = _frames_list(frames)
    caches = [parse_size(c, "--cache") for c in _split_list(cache, "--cache")]
    fractions = _fractions_list(fraction)
    if not (sizes or caches or fractions):
        raise UserError("give the cache size: --frames N, --cache 64MiB or --fraction 0.5")
    if page_kib is None:
        page_kib = page_split / 1024 if page_split else 4.0
    if page_kib <= 0:
        raise UserError(f"--page-kib must be > 0, got {page_kib}")
    page_bytes = page_kib * 1024
    for c in caches:
        if c < page_bytes:
            raise UserError(f"--cache {c} bytes is less than one {page_kib:g} KiB page")
    known = _known_policies()
    policies = _split_list(policy, "--policy")
    for p in policies:
        if p not in known:
            raise UserError(f"unknown policy '{p}' (known: {', '.join(known)})")
    kind = trace_format(trace, fmt)
    data = read_trace(trace, kind, split_bytes=page_split)
    pages, writes = np.asarray(data.pages), data.writes
    sizes += [int(c // page_bytes) for c in caches]
    if fractions:
        unique = int(np.unique(pages).size)
        sizes += [max(1, round(f * unique)) for f in fractions]
    sizes = list(dict.fromkeys(sizes))  # each size once, in the order given

    from sim_core.replay import replay as run_replay

    rows = []
    for p in policies:
        for n in sizes:
            try:
                result = run_replay(pages, n, p, writes=writes, seed=seed)
            except ValueError as exc:  # the engine's own input checks
                raise UserError(str(exc).splitlines()[0]) from None
            out = result.to_dict()
            refs = result.references
            out["miss_ratio"] = result.faults / refs if refs else 0.0
            out["cache_mib"] = n * page_kib / 1024
            rows.append(out)
    if json_out:
        head = {"trace": str(trace), "format": kind}
        objs = [head | r for r in rows]
        typer.echo(json.dumps(objs[0] if len(objs) == 1 else objs))
    else:
        typer.echo(_human(rows, trace, kind))

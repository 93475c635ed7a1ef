"""`balloonlab replay`: run a page-reference trace through one replacement policy."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import UserError
from harness.traces import TRACE_FORMATS, load_trace, trace_format


def _known_policies() -> list[str]:
    from sim_core.policies import GUEST_POLICIES  # imported late: it compiles kernels

    return list(GUEST_POLICIES)


def _human(out: dict, trace: Path, fmt: str) -> str:
    lines = [
        ("trace", f"{trace} ({fmt})"),
        ("policy", out["policy"]),
        ("frames", f"{out['frames']:,}"),
        ("references", f"{out['references']:,}"),
        ("hits", f"{out['hits']:,}  (hit ratio {out['hit_ratio']:.4f})"),
        ("faults", f"{out['faults']:,}  (cold misses included)"),
        ("writebacks", f"{out['writebacks']:,}"),
        (
            "replay",
            f"{out['seconds']:.3f} s, {out['refs_per_second'] / 1e6:.1f} M refs/s "
            f"(compile {out['compile_seconds']:.2f} s, not included)",
        ),
    ]
    if out.get("evictions_by_class"):
        classes = "  ".join(f"{k}: {v:,}" for k, v in out["evictions_by_class"].items())
        lines.append(("evictions (R,M)", classes))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)


@app.command()
def replay(
    trace: Path = typer.Argument(
        ...,
        help="Trace file: .csv or .parquet (column page, optional write 0/1), .npy (page "
        "ids) or .oracleGeneral (libCacheSim binary records).",
        show_default=False,
        metavar="TRACE",
    ),
    frames: int = typer.Option(..., "--frames", "-n", help="Cache size in page frames (> 0)."),
    policy: str = typer.Option(
        "lru",
        "--policy",
        "-p",
        help="Replacement policy: esc, clock, lru, fifo, random, "
        "file_first, ws or opt (Belady MIN).",
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help=f"Trace format when the suffix does not say: {', '.join(TRACE_FORMATS)}.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random policy's choices."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Replay a page-reference trace through one cache of FRAMES page frames.

    Every miss is a fault (cold misses included); evicting a page written
    since it was loaded costs a write-back. Pages in a trace count as file-backed
    (a cache's view). The replay time excludes compiling, reported apart.

    Example: balloonlab replay trace.oracleGeneral --frames 16384 --policy clock --json
    """
    # Cheap checks first, so a typo costs no trace loading.
    if frames <= 0:
        raise UserError(f"--frames must be > 0, got {frames}")
    known = _known_policies()
    if policy not in known:
        raise UserError(f"unknown policy '{policy}' (known: {', '.join(known)})")
    kind = trace_format(trace, fmt)
    pages, writes = load_trace(trace, kind)

    from sim_core.replay import replay as run_replay

    try:
        result = run_replay(pages, frames, policy, writes=writes, seed=seed)
    except ValueError as exc:  # the engine's own input checks
        raise UserError(str(exc).splitlines()[0]) from None
    out = result.to_dict()
    out.setdefault("hit_ratio", result.hits / result.references if result.references else 0.0)
    if json_out:
        typer.echo(json.dumps({"trace": str(trace), "format": kind} | out))
    else:
        typer.echo(_human(out, trace, kind))

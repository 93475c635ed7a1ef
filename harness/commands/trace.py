"""`balloonlab trace stats TRACE`: what a trace is before it sizes a VM: references, unique
pages, footprint, write ratio and the LRU miss-ratio curve (one pass; SHARDS sampling for
long traces), printed, as JSON, and as a PNG."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import typer

from harness.cli import app
from harness.errors import UserError
from harness.traces import TRACE_FORMATS, read_trace

trace_app = typer.Typer(
    help="Look at a trace file before driving a guest with it.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(trace_app, name="trace")

EXACT_LIMIT = 20_000_000  # --sample auto: exact up to this many references, SHARDS above
AUTO_SAMPLED = 10_000_000  # ... sampled down to about this many
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _sample_rate(text: str, references: int) -> float:
    if text == "auto":
        return 1.0 if references <= EXACT_LIMIT else AUTO_SAMPLED / references
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 < rate <= 1.0:
        raise UserError(f"--sample must be 'auto' or a rate in (0, 1], got {text!r}")
    return rate


def trace_stats(
    trace: Path, fmt: str | None, split_bytes: int | None, page_kib: float, sample: str
) -> tuple[dict, object]:
    """The statistics of ``trace`` as a JSON-able dict, and its MissRatioCurve."""
    from sim_core.mrc import lru_mrc

    start = time.perf_counter()
    data = read_trace(trace, fmt, split_bytes=split_bytes)
    pages = np.asarray(data.pages)
    n = int(pages.size)
    writes = 0 if data.writes is None else int(np.count_nonzero(data.writes))
    rate = _sample_rate(sample, n)
    curve = lru_mrc(pages, rate)
    # Exact: every page's first reference is a cold miss. Sampled: count them apart.
    unique = round(curve.cold) if curve.rate >= 1 else int(np.unique(pages).size)
    sizes = sorted({max(1, round(f * unique)) for f in FRACTIONS})
    ratios = curve.miss_ratio(np.array(sizes))
    out = {
        "trace": str(trace),
        "format": data.fmt,
        "requests": data.requests,
        "references": n,
        "unique_pages": unique,
        "page_kib": page_kib,
        "footprint_mib": unique * page_kib / 1024,
        "write_ratio": writes / n,
        "has_writes": data.writes is not None,
        "duration_s": None if data.times_s is None else float(data.times_s[-1]),
        "mrc": {
            "policy": "lru",
            "sample_rate": curve.rate,
            "sampled_references": curve.sampled,
            "frames": sizes,
            "cache_mib": [s * page_kib / 1024 for s in sizes],
            "miss_ratio": [float(r) for r in ratios],
        },
        "seconds": time.perf_counter() - start,
    }
    return out, curve


def plot_mrc(curve, unique: int, page_kib: float, path: Path, title: str) -> None:
    """The miss-ratio curve as a PNG: miss ratio against cache size (MiB)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = np.unique(np.linspace(0, max(unique, 1), 400).round().astype(np.int64))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frames * page_kib / 1024, curve.miss_ratio(frames), lw=1.5)
    ax.set_xlabel("cache size (MiB)")
    ax.set_ylabel("LRU miss ratio")
    ax.set_ylim(0, 1.02)
    label = "exact" if curve.rate >= 1 else f"SHARDS, rate {curve.rate:.3g}"
    ax.set_title(f"{title} ({label})", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the PNG: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)


def _human(out: dict) -> str:
    mrc = out["mrc"]
    sampled = "exact" if mrc["sample_rate"] >= 1 else (
        f"SHARDS rate {mrc['sample_rate']:.3g}, {mrc['sampled_references']:,} sampled"
    )  # fmt: skip
    lines = [
        ("trace", f"{out['trace']} ({out['format']})"),
        ("references", f"{out['references']:,}"
         + (f"  ({out['requests']:,} requests)" if out["requests"] != out["references"] else "")),
        ("unique pages", f"{out['unique_pages']:,}"),
        ("footprint", f"{out['footprint_mib']:,.1f} MiB  ({out['page_kib']:g} KiB pages)"),
        ("write ratio", f"{out['write_ratio']:.4f}" + ("" if out["has_writes"] else
                                                          "  (no write column: all reads)")),
    ]  # fmt: skip
    if out["duration_s"] is not None:
        lines.append(("duration", f"{out['duration_s']:,.3f} s of trace time"))
    lines.append(("LRU miss ratio", sampled))
    width = max(len(k) for k, _ in lines)
    text = [f"{k:<{width}}  {v}" for k, v in lines]
    text.append(f"  {'frames':>12}  {'cache MiB':>10}  {'% footprint':>11}  {'miss ratio':>10}")
    for f, mib, r in zip(mrc["frames"], mrc["cache_mib"], mrc["miss_ratio"], strict=True):
        pct = 100 * f / max(out["unique_pages"], 1)
        text.append(f"  {f:>12,}  {mib:>10,.1f}  {pct:>10.0f}%  {r:>10.4f}")
    return "\n".join(text)


@trace_app.command("stats")
def stats(
    trace: Path = typer.Argument(
        ..., help="Trace file (formats as `replay` reads them).", show_default=False,
        metavar="TRACE",
    ),
    fmt: str | None = typer.Option(
        None, "--format", help=f"Trace format when the suffix does not say: "
        f"{', '.join(TRACE_FORMATS)}.",
    ),
    page_split: int | None = typer.Option(
        None, "--page-split", help="Split block requests (offset, size) into pages of this "
        "many bytes [default: 4096 for block traces].", show_default=False,
    ),
    page_kib: float | None = typer.Option(
        None, "--page-kib", help="KiB per page, for the footprint [default: the --page-split "
        "size, else 4].", show_default=False,
    ),
    sample: str = typer.Option(
        "auto", "--sample", help="SHARDS sampling rate in (0, 1], or auto: exact up to "
        f"{EXACT_LIMIT:,} references, else about {AUTO_SAMPLED:,} sampled.",
    ),
    png: Path | None = typer.Option(None, "--png", help="Also draw the miss-ratio curve here."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:  # fmt: skip
    """A trace's references, footprint, write ratio and LRU miss-ratio curve.

    The first thing to look at before sizing a VM for a trace: references (block
    requests split into pages), unique pages, footprint, write ratio, and the miss ratio
    of an LRU cache at sizes from 1% to 100% of the footprint.

    The curve comes from one pass over the trace (stack distances); above 20M references
    it is computed on a SHARDS spatial sample (--sample sets the rate).

    Example: balloonlab trace stats hm_0.csv --png hm_0.png
    """
    if page_kib is None:
        page_kib = page_split / 1024 if page_split else 4.0
    if page_kib <= 0:
        raise UserError(f"--page-kib must be > 0, got {page_kib}")
    if sample != "auto":
        _sample_rate(sample, 0)  # a bad rate costs no trace loading
    out, curve = trace_stats(trace, fmt, page_split, page_kib, sample)
    if png is not None:
        plot_mrc(curve, out["unique_pages"], page_kib, png, trace.name)
        out["png"] = str(png)
    if json_out:
        typer.echo(json.dumps(out))
    else:
        typer.echo(_human(out) + (f"\nplot: {png}" if png is not None else ""))

"""`balloonlab plot`: any stored sweep as a figure (PNG, SVG) or an interactive page."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness import limits, options
from harness.cli import app


@app.command("plot")
def plot_command(
    sweep: str = typer.Argument(..., help="A stored sweep (see `balloonlab status`)."),
    x: str = typer.Option(..., "--x", help='Config key or column on x, e.g. "host.overcommit".'),
    y: str = typer.Option(..., "--y", help="Column on y, e.g. profit_per_host_hour."),
    hue: str | None = typer.Option(None, "--hue", help="One line per value of this key."),
    facet: str | None = typer.Option(None, "--facet", help="One panel per value of this key."),
    where: str | None = typer.Option(
        None, "--where", help="""SQL condition on the runs, e.g. '"vms.count" = 8'."""
    ),
    fmt: str = typer.Option("png", "--format", "-f", help="png (default), svg or html."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output file (default: <sweep>_<y>_by_<x>.<format>)."
    ),
    results: Path | None = options.RESULTS,
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the plotted points (mean, 95% interval, runs) as JSON."
    ),
) -> None:
    """Plot a column of any stored sweep against a config key, with 95% intervals.

    Each point is the mean over replicates with a 95% interval (percentile bootstrap
    over the runs, 2000 resamples, seeded).

    Runs sharing (facet, hue, x) are one point; failed runs are left out. --format html
    writes a self-contained page (Vega-Lite, inline; no network) with every numeric
    column of every run and a menu to pick the one on y. Keys: `balloonlab keys`;
    columns: `balloonlab columns`.

    Example: balloonlab plot oc --x host.overcommit --y profit_per_host_hour --hue hypervisor.policy --out oc.png
    """  # noqa: E501 (an example is one command line)
    from analysis.plot import plot

    result = plot(
        results if results is not None else options.default_results(),
        sweep,
        x,
        y,
        hue=hue,
        facet=facet,
        where=where,
        out=out,
        fmt=fmt,
        seed=seed,
        memory_limit_bytes=limits.default_budget(),
    )
    if json_out:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        typer.echo(f"{result.path}: {len(result.points)} points from {result.runs} runs")

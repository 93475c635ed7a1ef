"""Reproduce the paper figures: run each figure's sweep through the driver, then draw the
figures and check their claims from the store (``analysis.paper``), then write the report.

Quick mode. ``analysis.paper.FIGURES`` gives each figure a ``quick`` table of overrides
that shrinks its sweep: ``replicates``, and ``base`` / ``grid`` / ``zip`` entries that
replace the spec's (fewer grid points, fewer ticks or references). The shrunken spec is the
shipped TOML with those entries replaced, validated like any spec, under the sweep name
``<figure>-quick``, so quick runs never mix with full ones in the store and a later full
reproduction starts from its own runs. Quick mode keeps one replicate, too few for a 95%
interval, and shrinks the ranges claims quantify over: its figures are stamped QUICK MODE
and a claim whose tested conditions all held is NOT TESTED IN QUICK MODE, never SUPPORTED
(``analysis.claims``; ``draw_figures`` tells each check and drawing its sweep is quick).
``balloonlab show`` does not know quick specs; ``quick_spec(name)`` builds one.

Robustness (full mode). Each figure's neighbourhood (``analysis.neighbourhoods``) is its
quick spec with the neighbourhood's draws in ``[random]`` (a key it draws leaves the grid)
and its base overrides, stored as ``<figure>-neighbourhood``; ``neighbourhood_spec``
builds it, and a full reproduction runs it after the figure's own sweep.
"""

from __future__ import annotations

import copy
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from analysis.neighbourhoods import NEIGHBOURHOOD_SUFFIX, NEIGHBOURHOODS
from analysis.paper import (
    FIGURES,
    QUICK_SUFFIX,
    FigureDef,
    Reproduction,
    SweepRun,
    draw_figures,
    select,
)
from analysis.report import write_reports
from harness import limits
from harness.driver import SweepReport, refuse_stale_runs, run_sweeps, stale_run_ids
from harness.errors import UserError
from harness.executors import make_executor
from harness.progress import SweepProgress
from harness.spec import SweepSpec, load_spec, parse_spec
from harness.sweeps_catalog import shipped
from store.errors import StoreError

QUICK_KEYS = ("replicates", "base", "grid", "zip")


# ---- specs ---------------------------------------------------------------------------------


def _spec_source(name: str) -> Traversable:
    specs = shipped()
    if name not in specs:
        raise UserError(f"{name}: no shipped sweep spec sweeps/{name}.toml")
    return specs[name]


def shrink(data: Mapping[str, Any], overrides: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    """A copy of a parsed spec with quick-mode overrides applied and ``suffix`` appended to
    its name. ``grid`` and ``zip`` overrides must name keys the spec varies in that table,
    so a renamed key cannot leave a quick spec silently sweeping the full grid."""
    out = copy.deepcopy(dict(data))
    unknown = set(overrides) - set(QUICK_KEYS)
    if unknown:
        raise ValueError(f"unknown quick override {sorted(unknown)[0]!r} (known: {QUICK_KEYS})")
    sweep = out.setdefault("sweep", {})
    sweep["name"] = f"{sweep.get('name', 'sweep')}{suffix}"
    if "description" in sweep:
        sweep["description"] = f"{sweep['description']} (quick)"
    if "replicates" in overrides:
        sweep["replicates"] = overrides["replicates"]
    for section in ("base", "grid", "zip"):
        table = out.setdefault(section, {})
        for key, value in overrides.get(section, {}).items():
            if section != "base" and key not in table:
                raise ValueError(f"quick [{section}] {key}: the spec does not vary this key there")
            table[key] = copy.deepcopy(value)
    return {k: v for k, v in out.items() if v or k == "sweep"}


def figure_spec(figure: FigureDef, quick: bool = False) -> SweepSpec:
    """The figure's sweep spec, shrunk for quick mode. Raises UserError if it is invalid."""
    source = _spec_source(figure.name)
    if not quick:
        return load_spec(source)
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    try:
        shrunk = shrink(data, figure.quick, QUICK_SUFFIX)
    except ValueError as exc:
        raise UserError(f"{source} (quick): {exc}") from None
    return parse_spec(shrunk, f"{source} (quick)", default_name=figure.name)


def neighbourhood_spec(figure: FigureDef) -> SweepSpec:
    """The figure's neighbourhood sweep: its quick spec, the neighbourhood's draws in
    ``[random]`` (replacing those keys in the grid and zip), its base overrides, samples
    and replicates. Raises UserError if the figure has none or the result is invalid."""
    if figure.name not in NEIGHBOURHOODS:
        raise UserError(f"{figure.name}: no neighbourhood defined (analysis.neighbourhoods)")
    near = NEIGHBOURHOODS[figure.name]
    source = _spec_source(figure.name)
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    where = f"{source} (neighbourhood)"
    try:
        spec = shrink(data, figure.quick, NEIGHBOURHOOD_SUFFIX)
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from None
    drawn = set(near.random) | set(near.base) | set(near.drop)
    for section in ("grid", "zip"):
        table = {k: v for k, v in spec.get(section, {}).items() if k not in drawn}
        if table:
            spec[section] = table
        else:
            spec.pop(section, None)
    base = {k: v for k, v in spec.get("base", {}).items() if k not in drawn}
    spec["base"] = {**base, **copy.deepcopy(dict(near.base))}
    spec["random"] = copy.deepcopy({k: dict(v) for k, v in near.random.items()})
    sweep = spec["sweep"]
    sweep["samples"], sweep["replicates"] = near.samples, near.replicates
    sweep["description"] = (
        f"{data.get('sweep', {}).get('description', figure.name)} "
        f"(neighbourhood: {near.samples} scenarios around the figure's)"
    )
    return parse_spec(spec, where, default_name=figure.name)


def quick_spec(name: str) -> SweepSpec:
    """The quick spec of a figure by name."""
    return figure_spec(select(name)[0], quick=True)


def _sweep_builders(
    figure: FigureDef, quick: bool, neighbourhoods: bool
) -> list[tuple[str, Callable[[], SweepSpec]]]:
    """The sweeps a reproduction runs for ``figure``, by name, each with the function that
    builds its spec: the figure's own, then (with ``neighbourhoods``) its neighbourhood."""
    builders = [(figure.sweep(quick), lambda: figure_spec(figure, quick))]
    if neighbourhoods and figure.robustness:
        builders.append((figure.name + NEIGHBOURHOOD_SUFFIX, lambda: neighbourhood_spec(figure)))
    return builders


# ---- the plan: what a reproduction would run -------------------------------------------------


@dataclass(frozen=True)
class PlannedSweep:
    """One sweep of a reproduction before it runs: its runs and their compute estimate."""

    figure: str
    sweep: str
    runs: int
    references: int  # upper bound on guest references over every run (host mode)
    estimate: float = 0.0  # one core's seconds by harness.limits' fitted model (host mode)
    error: str = ""

    @property
    def core_seconds(self) -> tuple[float, float]:
        """Compute time on one core, the estimate's range (``limits.core_seconds_range``)."""
        return limits.core_seconds_range(self.estimate)


def plan(only: str | None = None, *, quick: bool = False) -> list[PlannedSweep]:
    """Every sweep ``reproduce`` would run (a full one adds the neighbourhoods), with run
    counts and references, in the order it runs them; stored runs are not looked at."""
    planned: list[PlannedSweep] = []
    for figure in select(only, quick):
        for name, build in _sweep_builders(figure, quick, neighbourhoods=not quick):
            try:
                spec = build()
            except UserError as exc:
                planned.append(PlannedSweep(figure.name, name, 0, 0, error=str(exc)))
                continue
            refs = sum(limits.estimated_references(r.config) for r in spec.runs)
            seconds = sum(limits.estimated_core_seconds(r.config) for r in spec.runs)
            planned.append(PlannedSweep(figure.name, spec.name, len(spec.runs), refs, seconds))
    return planned


# ---- the whole reproduction ----------------------------------------------------------------


def run_figure_sweeps(
    selected: Iterable[FigureDef],
    results: Path | str,
    *,
    quick: bool,
    executor: str = "ray",
    address: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    neighbourhoods: bool = False,
    prune: bool = False,
) -> list[SweepRun]:
    """Run each figure's sweep through the harness (stored runs are skipped), and with
    ``neighbourhoods`` its neighbourhood sweep after it, all in one queue. A spec that does
    not load is recorded and the others still run; an error that stops the queue is
    recorded on every sweep not finished by then."""
    loaded: list[tuple[FigureDef, SweepSpec]] = []
    records: list[SweepRun] = []
    for figure in selected:
        for sweep_name, build in _sweep_builders(figure, quick, neighbourhoods):
            try:
                loaded.append((figure, build()))
            except UserError as exc:
                records.append(SweepRun(figure.name, sweep_name, error=str(exc)))
                log(f"{sweep_name}: spec not usable: {exc}")
    if not loaded:
        return records
    figure_of = {spec.name: figure.name for figure, spec in loaded}
    if not prune:  # before Ray starts (the driver checks again under the sweeps' locks)
        refuse_stale_runs({spec.name: stale_run_ids(spec, results) for _, spec in loaded},
                          results)  # fmt: skip

    def done(report: SweepReport) -> None:
        record = SweepRun(figure_of[report.sweep], report.sweep, runs=report.runs,
                          done=report.done, skipped=report.skipped, failed=report.failed,
                          seconds=report.seconds, run_seconds=report.run_seconds)  # fmt: skip
        records.append(record)
        log(_sweep_line(record))

    with (
        make_executor(executor, address=address) as ex,
        SweepProgress(enabled=progress) as bar,
    ):
        try:  # every sweep's runs in one queue: no core idles at the end of a sweep
            run_sweeps([spec for _, spec in loaded], ex, results, prune=prune, progress=bar,
                       on_done=done)  # fmt: skip
        except (UserError, StoreError):
            raise  # the executor cannot start (a bad --address), a sweep is locked
        except Exception as exc:  # the sweeps not finished yet record why
            finished = {r.sweep for r in records}
            for figure, spec in loaded:
                if spec.name not in finished:
                    record = SweepRun(figure.name, spec.name, runs=len(spec.runs),
                                      error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                    records.append(record)
                    log(_sweep_line(record))
    order = {f.name: i for i, f in enumerate(FIGURES)}
    return sorted(records, key=lambda r: (order.get(r.figure, len(order)),
                                          r.sweep.endswith(NEIGHBOURHOOD_SUFFIX)))  # fmt: skip


def _sweep_line(r: SweepRun) -> str:
    if r.error:
        return f"{r.sweep}: {r.error}"
    return (
        f"{r.sweep}: {r.runs} runs, {r.done} done, {r.skipped} stored before, "
        f"{r.failed} failed (done {r.seconds:.1f} s after the start; its runs took "
        f"{r.run_seconds:.1f} s of one core)"
    )


def reproduce(
    out: Path | str,
    results: Path | str,
    *,
    quick: bool = False,
    only: str | None = None,
    executor: str = "ray",
    address: str | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    prune: bool = False,
) -> Reproduction:
    """Run every figure sweep, draw every figure, check every claim, write report.md and
    report.html into ``out``. Stored runs a sweep's spec no longer makes (results of an
    earlier version) stop it before anything runs (StaleRuns), or with ``prune`` are
    deleted."""
    start = time.perf_counter()
    out, results = Path(out), Path(results)
    selected = select(only, quick)
    sweeps = run_figure_sweeps(
        selected, results, quick=quick, executor=executor, address=address,
        progress=progress, log=log, neighbourhoods=not quick, prune=prune,
    )  # fmt: skip
    outcomes = draw_figures(
        results, out, selected, quick=quick, memory_limit_bytes=limits.default_budget(),
        check_robustness=not quick,
    )  # fmt: skip
    for sweep in sweeps:  # a sweep that could not run explains its figure's missing data
        for outcome in outcomes:
            if outcome.name == sweep.figure and sweep.error and outcome.png is None:
                outcome.error = f"sweep not run: {sweep.error}"
    repro = Reproduction(quick, results, out, executor, sweeps, outcomes,
                         time.perf_counter() - start)  # fmt: skip
    repro.report_md, repro.report_html = write_reports(repro)
    repro.seconds = time.perf_counter() - start
    return repro

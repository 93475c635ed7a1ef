"""The paper's figures, drawn from stored runs: each figure's definition, its quick-mode
overrides, drawing and claim check from the store, and the data a report is made of.

Each figure has one shipped sweep spec (``sweeps/<figure>.toml``), one named query
(``analysis/<figure>.sql``), one drawing function (``analysis.figures.DRAW``) and one
claim check (``analysis.claims.CHECKS``), all under the same name. ``FIGURES`` gives each
figure a ``quick`` table of overrides (plain data) that shrinks its sweep; the harness
(``harness.reproduce``) applies them and runs the sweeps, stored as ``<figure>-quick``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import claims, db, figures, robustness
from analysis.claims import Claim
from analysis.errors import AnalysisError
from analysis.neighbourhoods import NEIGHBOURHOODS, neighbourhood_sweep
from analysis.robustness import Robustness

QUICK_SUFFIX = "-quick"


@dataclass(frozen=True)
class FigureDef:
    """A figure: its name (= sweep, query, PNG stem) and its quick-mode overrides.
    ``full_only``: quick mode leaves it out (it needs full-size runs to mean anything);
    ``robustness``: its claim is also judged on a neighbourhood (full mode)."""

    name: str
    quick: Mapping[str, Any] = field(default_factory=dict)
    full_only: bool = False
    robustness: bool = True

    @property
    def title(self) -> str:
        return figures.TITLES[self.name]

    @property
    def draw(self) -> Callable[..., Path]:
        """``draw(rows, path, quick=False) -> path``."""
        return figures.DRAW[self.name]

    @property
    def check(self) -> Callable[..., Claim]:
        """``check(rows, quick=False) -> Claim``."""
        return claims.CHECKS[self.name]

    def sweep(self, quick: bool) -> str:
        """The sweep name its runs are stored under."""
        return self.name + QUICK_SUFFIX if quick else self.name


# Quick mode: each figure keeps a handful of short runs (seconds each on one core), enough
# for the figure's shape and its claim check.
FIGURES: tuple[FigureDef, ...] = (
    # 40 s, as the shoot-out's: mom has decided four times and ws once.
    FigureDef(
        "fig01_io_amplification",
        {"replicates": 1, "base": {"ticks": 400}, "grid": {"host.overcommit": [1.5]}},
    ),
    FigureDef(
        "fig02_esc",
        {
            "replicates": 1,
            "base": {"replay.references": 1_000_000},
            "zip": {"vms.workload": ["db"], "vms.workload_params": [{}]},
            "grid": {"replay.cache_mib": [16, 64]},
        },
    ),
    FigureDef(
        "fig03_ws_vs_file_first",
        {
            "replicates": 1,
            "grid": {"vms.balloon_mib": [0, 64, 128], "vms.guest_policy": ["ws", "file_first"]},
        },
    ),
    FigureDef(
        "fig04_push_pull",
        {"replicates": 1, "grid": {"vms.balloon_mib": [0, 80, 160, 200, 230]}},
    ),
    FigureDef("fig05_swap_storm", {"replicates": 1, "base": {"ticks": 400}}),
    FigureDef(
        "fig06_nested_swapping",
        {"replicates": 1, "grid": {"host.overcommit": [0.5, 0.85, 1.3]}},
    ),
    FigureDef(
        "fig07_deadlock",
        {
            "replicates": 1,
            "base": {"locks.trials": 500},
            "grid": {"locks.guests": [1], "locks.host_threads": [1], "locks.ops": [1, 2, 4]},
        },
    ),
    FigureDef(
        "fig08_economics",
        {
            "replicates": 1,
            "base": {"ticks": 600},
            "grid": {"host.overcommit": [1.0, 1.5, 2.0], "hypervisor.policy": ["none", "ws"]},
        },
    ),
    FigureDef(
        "fig09_balloon_overhead",
        {
            "replicates": 1,
            "base": {"ticks": 60},
            "zip": {
                "vms.mem_mib": [256, 256, 96, 160],
                "vms.balloon_mib": [160, 96, 0, 0],
                "hypervisor.policy": ["static", "static", "none", "none"],
            },
        },
    ),
    FigureDef("fig10_idle_tax", {"replicates": 1}),
    FigureDef(
        "fig11_che_validation",
        {
            "replicates": 1,
            "base": {"replay.references": 4_000_000},
            "grid": {"vms.workload_params.alpha": [0.8], "replay.cache_mib": [4, 16, 64, 128]},
        },
    ),
    # 40 s: every controller has acted (mom four times, esx and ws after their first 30-s
    # sample); the full sweep runs 120 s at three overcommit ratios.
    FigureDef(
        "controllers", {"replicates": 1, "base": {"ticks": 400}, "grid": {"host.overcommit": [1.4]}}
    ),  # fmt: skip
    # The tool checked against itself: sampled vs full runs of a 4 x 4 GiB host. Rate 1 of it
    # takes minutes, so quick mode leaves it out; it is a property of the simulator, not a
    # claim about hosts, so it has no neighbourhood of scenarios.
    FigureDef("fig13_sampling_validation", full_only=True, robustness=False),
)

BY_NAME: dict[str, FigureDef] = {f.name: f for f in FIGURES}


def select(only: str | None = None, quick: bool = False) -> list[FigureDef]:
    """Every figure (quick: those not ``full_only``), or the one named (its full name, or a
    prefix such as ``fig04``)."""
    if only is None:
        return [f for f in FIGURES if not (quick and f.full_only)]
    if only in BY_NAME:
        return [BY_NAME[only]]
    matches = [f for f in FIGURES if f.name.startswith(only)]
    if len(matches) == 1:
        return matches
    raise AnalysisError(f"--only {only!r}: no such figure (known: {', '.join(BY_NAME)})")


# ---- drawing and checking ------------------------------------------------------------------


@dataclass
class FigureOutcome:
    """One figure of a report: where its data came from, its PNG, its claim."""

    name: str
    title: str
    sweep: str
    claim: Claim
    png: Path | None = None
    runs: int = 0  # stored runs of its sweep
    failed: int = 0  # of which `failed`
    rows: int = 0  # rows of its query
    error: str | None = None  # what went wrong, if anything did
    robustness: Robustness | None = None  # the claim around the scenario (full mode)

    @property
    def verdict(self) -> str:
        """The claim's verdict; a claim that holds (SUPPORTED, or NOT TESTED for want of an
        interval) and was checked for robustness also needs to hold at
        ``robustness.ROBUST_SHARE`` of the neighbouring scenarios."""
        if self.claim.holds and self.robustness is not None and not self.robustness.robust:
            return claims.NOT_SUPPORTED
        return self.claim.verdict

    @property
    def quick(self) -> bool:
        """Whether its data came from the quick sweep."""
        return self.sweep.endswith(QUICK_SUFFIX)

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.name,
            "title": self.title,
            "sweep": self.sweep,
            "verdict": self.verdict,
            "claim": self.claim.text,
            "numbers": self.claim.numbers,
            "conditions": [{"condition": c, "held": ok} for c, ok in self.claim.conditions],
            "untested": list(self.claim.untested),
            "png": str(self.png) if self.png else None,
            "runs": self.runs,
            "failed": self.failed,
            "rows": self.rows,
            "error": self.error,
            "robustness": None if self.robustness is None else self.robustness.to_dict(),
        }


def _stored_counts(con: Any) -> dict[str, tuple[int, int]]:
    rows = db.run_sql(con, "SELECT sweep, runs, failed FROM sweeps").rows
    return {sweep: (int(runs), int(failed)) for sweep, runs, failed in rows}


def _pick_sweep(figure: FigureDef, quick: bool | None, counts: Mapping[str, Any]) -> str:
    """quick None: the full sweep if it has runs, else the quick one if that has runs."""
    if quick is not None:
        return figure.sweep(quick)
    full, fast = figure.sweep(False), figure.sweep(True)
    if counts.get(full, (0, 0))[0] == 0 and counts.get(fast, (0, 0))[0] > 0:
        return fast
    return full


def draw_figures(
    results: Path | str,
    out: Path | str,
    selected: Iterable[FigureDef] | None = None,
    *,
    quick: bool | None = None,
    memory_limit_bytes: int | None = None,
    check_robustness: bool = False,
) -> list[FigureOutcome]:
    """Draw each figure from the store into ``out/<figure>.png`` and check its claim. A
    figure without data, or whose drawing or check fails, is reported, never raised.
    ``memory_limit_bytes``: DuckDB's (see ``db.connect``). ``check_robustness``: also
    evaluate each claim on its stored neighbourhood (``analysis.robustness``); a figure
    whose neighbourhood has no runs then has an empty one (not robust)."""
    selected = list(selected) if selected is not None else list(FIGURES)
    out = Path(out)
    try:
        con = db.connect(results, memory_limit_bytes=memory_limit_bytes)
    except db.StoreError as exc:
        return [
            FigureOutcome(
                f.name, f.title, f.sweep(bool(quick)), claims.no_data(f.name), error=str(exc)
            )  # fmt: skip
            for f in selected
        ]
    try:
        counts = _stored_counts(con)
        outcomes = [
            _one_figure(con, f, _pick_sweep(f, quick, counts), counts, out) for f in selected
        ]
        if check_robustness:
            for figure, outcome in zip(selected, outcomes, strict=True):
                if figure.robustness:
                    outcome.robustness = _robustness(con, outcome, counts)
        return outcomes
    finally:
        con.close()


def _one_figure(
    con: Any, figure: FigureDef, sweep: str, counts: Mapping[str, Any], out: Path
) -> FigureOutcome:
    runs, failed = counts.get(sweep, (0, 0))
    outcome = FigureOutcome(figure.name, figure.title, sweep, claims.no_data(figure.name),
                            runs=runs, failed=failed)  # fmt: skip
    if runs == 0:
        outcome.error = f"no stored runs of sweep {sweep!r}"
        return outcome
    try:
        rows = db.records(db.run_named(con, figure.name, {"sweep": sweep}))
    except db.QueryError as exc:
        outcome.error = f"query {figure.name} failed: {exc}"
        return outcome
    outcome.rows = len(rows)
    if not rows:
        outcome.error = f"sweep {sweep!r} has no completed runs"
        return outcome
    problems = []
    # Quick-ness is the sweep's, known here: the check marks what a quick sweep cannot test,
    # the drawing is stamped.
    quick = sweep == figure.sweep(True)
    try:
        outcome.png = figure.draw(rows, out / f"{figure.name}.png", quick=quick)
    except Exception as exc:  # a broken figure must not take the report down
        problems.append(f"drawing failed: {type(exc).__name__}: {exc}")
    try:
        outcome.claim = figure.check(rows, quick=quick)
    except Exception as exc:
        problems.append(f"check failed: {type(exc).__name__}: {exc}")
        outcome.claim = Claim(
            figure=figure.name,
            text=claims.CLAIMS[figure.name],
            verdict=claims.NOT_SUPPORTED,
            conditions=[(f"the check ran ({type(exc).__name__}: {exc})", False)],
        )
    outcome.error = "; ".join(problems) or None
    return outcome


def _robustness(con: Any, outcome: FigureOutcome, counts: Mapping[str, Any]) -> Robustness:
    """The claim on the figure's stored neighbourhood; empty (not robust) without runs, and
    a failure to evaluate it is the figure's error, never raised."""
    sweep = neighbourhood_sweep(outcome.name)
    if outcome.name not in NEIGHBOURHOODS or counts.get(sweep, (0, 0))[0] == 0:
        return Robustness(outcome.name, sweep)
    try:
        return robustness.evaluate(con, outcome.name, sweep)
    except Exception as exc:
        problem = f"robustness not evaluated: {type(exc).__name__}: {exc}"
        outcome.error = f"{outcome.error}; {problem}" if outcome.error else problem
        return Robustness(outcome.name, sweep)


# ---- a reproduction, as the report shows it ------------------------------------------------


@dataclass
class SweepRun:
    """What running one figure's sweep did, or why it could not run (``harness.reproduce``
    fills it in)."""

    figure: str
    sweep: str
    runs: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0  # from the start of the reproduction until its last run was stored
    run_seconds: float = 0.0  # its runs' wall times in their workers, summed: one core's time
    error: str | None = None


@dataclass
class Reproduction:
    """A reproduction: per-sweep runs, per-figure outcomes, report files (what the report
    shows; ``harness.reproduce.reproduce`` makes one)."""

    quick: bool
    results: Path
    out: Path
    executor: str
    sweeps: list[SweepRun]
    figures: list[FigureOutcome]
    seconds: float
    report_md: Path | None = None
    report_html: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "results": str(self.results),
            "out": str(self.out),
            "executor": self.executor,
            "seconds": round(self.seconds, 2),
            "sweeps": [s.__dict__ for s in self.sweeps],
            "figures": [f.to_dict() for f in self.figures],
            "report_md": str(self.report_md) if self.report_md else None,
            "report_html": str(self.report_html) if self.report_html else None,
        }

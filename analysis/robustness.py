"""Robustness: does a figure's claim hold around its scenario, not only at it?

A figure's neighbourhood sweep (``analysis.neighbourhoods``) stores runs at ``samples``
points drawn around the figure's scenario. :func:`evaluate` runs the figure's own named
query and claim check once per point, on that point's runs alone: the query reads
``completed_runs`` (and the tick views) through CTEs of the same names restricted to the
point, so the query text is the figure's, unchanged. The share of points where the claim
holds is the robustness; a claim is robust at ``ROBUST_SHARE`` (80%) or more.

A point is checked with quick-mode semantics (``check(rows, quick=True)``): neighbours run
the figure's quick grid with few replicates, so their comparisons have no interval and
their ranges are the quick ones. A point holds when every condition tested there held:
its verdict is SUPPORTED or NOT TESTED IN QUICK MODE. The share comes with its Wilson
interval (``analysis.stats.wilson_ci``); robustness is decided on the share itself.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analysis import claims, db, stats
from analysis.claims import Claim
from analysis.errors import AnalysisError
from analysis.neighbourhoods import NEIGHBOURHOODS, neighbourhood_sweep

ROBUST_SHARE = 0.8  # share of neighbours where the claim must hold (the 80%)

# The views a figure query may read, each restricted to the point's runs.
_RUN_VIEWS = ("completed_runs", "runs")
_TICK_VIEWS = ("ticks", "ticks_vm", "ticks_host")
_LEADING_COMMENTS = re.compile(r"^(\s*--[^\n]*\n)*\s*", re.MULTILINE)


@dataclass
class Neighbour:
    """One point of a neighbourhood: the drawn values, its runs and the claim there."""

    point: dict[str, Any]
    runs: int
    claim: Claim

    @property
    def holds(self) -> bool:
        """Every condition tested at this point held (NOT TESTED counts as holding)."""
        return self.claim.holds


@dataclass
class Robustness:
    """A claim evaluated at every point of its figure's neighbourhood."""

    figure: str
    sweep: str
    neighbours: list[Neighbour] = field(default_factory=list)

    @property
    def share(self) -> float:
        """The share of points where the claim holds (NaN without points)."""
        if not self.neighbours:
            return math.nan
        return sum(n.holds for n in self.neighbours) / len(self.neighbours)

    @property
    def share_ci(self) -> stats.Interval:
        """Wilson's 95% interval of the share."""
        return stats.wilson_ci(sum(n.holds for n in self.neighbours), len(self.neighbours))

    @property
    def robust(self) -> bool:
        return bool(self.neighbours) and self.share >= ROBUST_SHARE

    def summary(self) -> str:
        """One line: how many points hold, and the first failed condition elsewhere."""
        if not self.neighbours:
            return f"no stored runs of {self.sweep}"
        held = sum(n.holds for n in self.neighbours)
        line = (
            f"holds at {held} of {len(self.neighbours)} neighbouring scenarios "
            f"({100 * self.share:.0f}%, 95% CI {100 * self.share_ci.lo:.0f}-"
            f"{100 * self.share_ci.hi:.0f}%; robust needs {100 * ROBUST_SHARE:.0f}%)"
        )
        failing = [n for n in self.neighbours if not n.holds]
        if failing:
            line += f"; e.g. at {_point_text(failing[0].point)}: {failing[0].claim.reason}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "sweep": self.sweep,
            "share": None if math.isnan(self.share) else self.share,
            "share_ci": None if self.share_ci.too_few else self.share_ci.bounds,
            "robust": self.robust,
            "neighbours": [
                {
                    "point": n.point,
                    "runs": n.runs,
                    "verdict": n.claim.verdict,
                    "reason": n.claim.reason,
                }
                for n in self.neighbours
            ],  # fmt: skip
        }


def _point_text(point: Mapping[str, Any]) -> str:
    def text(value: Any) -> str:
        if isinstance(value, bool | int):
            return str(value)
        try:  # numbers read from JSON tables come back as text
            return f"{float(value):.3g}"
        except (TypeError, ValueError):
            return str(value)

    return ", ".join(f"{k}={text(v)}" for k, v in point.items())


def _quote(key: str) -> str:
    return '"' + key.replace('"', '""') + '"'


def key_sql(columns: Sequence[str], key: str) -> str:
    """The SQL for a drawn key: its column, or - for a key inside a table the store keeps
    as JSON text (``vms.workload_params``, ``hypervisor.params``) - the value at its path.
    A per-VM key ``vms.<i>.<field>`` reads VM i's column, stored where the VMs differ, else
    the column every VM shares (``SimConfig.flat``)."""
    per_vm = re.fullmatch(r"vms\.(\d+)\.(.+)", key)
    candidates = [key, f"vms.{per_vm.group(2)}"] if per_vm else [key]
    found = [sql for k in candidates if (sql := _column_sql(columns, k)) is not None]
    if not found:
        raise AnalysisError(f"{key}: no such column in the stored runs")
    return found[0] if len(found) == 1 else f"coalesce({', '.join(found)})"


def _column_sql(columns: Sequence[str], key: str) -> str | None:
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        column = ".".join(parts[:n])
        if column in columns:
            if n == len(parts):
                return _quote(column)
            path = ".".join(parts[n:]).replace("'", "''")
            return f"json_extract_string({_quote(column)}, '$.{path}')"
    return None


def _columns(con: Any) -> list[str]:
    return [row[0] for row in con.execute("DESCRIBE completed_runs").fetchall()]


def points(con: Any, sweep: str, keys: Sequence[str]) -> list[tuple[dict[str, Any], int]]:
    """The distinct points of a neighbourhood sweep (values of ``keys``) and their runs,
    in a stable order."""
    if not keys:
        raise AnalysisError("a neighbourhood needs at least one drawn key")
    names = _columns(con)
    columns = ", ".join(key_sql(names, k) for k in keys)
    try:
        rows = con.execute(
            f"SELECT {columns}, count(*) FROM completed_runs WHERE sweep = $sweep "
            f"GROUP BY ALL ORDER BY ALL",
            {"sweep": sweep},
        ).fetchall()
    except Exception as exc:
        raise AnalysisError(f"{sweep}: cannot list its points: {exc}") from None
    return [(dict(zip(keys, row[:-1], strict=True)), int(row[-1])) for row in rows]


def _restricted_sql(query_sql: str, keys: Sequence[str], columns: Sequence[str] = ()) -> str:
    """The figure's query with every view it may read shadowed by a CTE of the same name
    that keeps only the point's runs (parameters ``$p0``, ``$p1``, ... and ``$sweep``).
    ``columns``: the stored run columns (keys inside JSON tables need them)."""
    where = " AND ".join(
        f"{key_sql(columns, k) if columns else _quote(k)} IS NOT DISTINCT FROM $p{i}"
        for i, k in enumerate(keys)
    )
    ctes = [
        f"{name} AS (SELECT * FROM main.{name} WHERE sweep = $sweep AND {where})"
        for name in _RUN_VIEWS
    ]
    ctes += [
        f"{name} AS (SELECT * FROM main.{name} WHERE run_id IN (SELECT run_id FROM completed_runs))"
        for name in _TICK_VIEWS
    ]
    body = _LEADING_COMMENTS.sub("", query_sql, count=1)
    if body[:4].upper() == "WITH" and not body[4:5].isalnum():
        return "WITH " + ", ".join(ctes) + ", " + body[4:].lstrip()
    return "WITH " + ", ".join(ctes) + " " + body


def evaluate(con: Any, figure: str, sweep: str | None = None) -> Robustness:
    """The figure's claim at every point of its stored neighbourhood sweep."""
    if figure not in NEIGHBOURHOODS:
        raise AnalysisError(f"{figure}: no neighbourhood defined")
    keys = NEIGHBOURHOODS[figure].keys
    sweep = sweep or neighbourhood_sweep(figure)
    result = Robustness(figure, sweep)
    query_sql, values = db.named_sql(figure, {"sweep": sweep})
    sql = _restricted_sql(query_sql, keys, _columns(con))
    check = claims.CHECKS[figure]
    for point, runs in points(con, sweep, keys):
        params = dict(values or {}) | {f"p{i}": point[k] for i, k in enumerate(keys)}
        rows = db.records(db.run_sql(con, sql, params))
        result.neighbours.append(Neighbour(point, runs, check(rows, quick=True)))
    return result

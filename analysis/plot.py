"""`balloonlab plot`: any stored sweep, one column against a config key, replicates
aggregated to a mean with a 95% interval.

Pure functions of the store: rows come from DuckDB (the ``completed_runs`` view, so failed
runs are left out), points are aggregated here, and the figure is drawn with matplotlib
(PNG or SVG) or written as a self-contained Vega-Lite page (HTML: data and JavaScript
inline, renders without network).

Aggregation: runs that share (facet, hue, x) are the replicates of one point; runs of a
sweep that varies other keys too are pooled into that point (``--where`` selects a slice).
The interval is a percentile bootstrap over those runs: 2000 resamples of the mean, seeded
(``seed``, default 0), so the same data always gives the same figure. A point of one run
has no interval (low = high = mean).
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import PlotError

FORMATS = ("png", "svg", "html")
RESAMPLES = 2000
LEVEL = 0.95
VENDOR = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


@dataclass(frozen=True)
class Point:
    """One plotted point: a (facet, hue, x) group of runs, its mean and 95% interval."""

    facet: Any
    hue: Any
    x: Any
    n: int
    mean: float
    lo: float
    hi: float


@dataclass
class PlotResult:
    """What `plot` drew: the points, the file, and (when kept) the matplotlib figure."""

    sweep: str
    x: str
    y: str
    hue: str | None
    facet: str | None
    path: Path
    points: list[Point]
    runs: int
    figure: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what `--json` prints."""
        return {
            "sweep": self.sweep,
            "x": self.x,
            "y": self.y,
            "hue": self.hue,
            "facet": self.facet,
            "path": str(self.path),
            "runs": self.runs,
            "interval": f"{LEVEL:.0%} percentile bootstrap over runs, {RESAMPLES} resamples",
            "points": [asdict(p) for p in self.points],
        }


# ---- data ----------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_columns(con: Any, view: str = "completed_runs") -> dict[str, str]:
    """Column name -> DuckDB type of a view."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()
    return {r[0]: r[1] for r in rows}


def _check_column(name: str, known: Mapping[str, str], what: str) -> None:
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise PlotError(
            f"--{what} {name}: no such column in the runs{hint}; see `balloonlab columns`"
        )


def load_rows(
    con: Any, sweep: str, columns: Sequence[str], where: str | None = None
) -> list[dict[str, Any]]:
    """The sweep's completed runs, one dict per run with ``columns`` (and run_id)."""
    from analysis.db import QueryError, run_sql

    wanted = list(dict.fromkeys(["run_id", *columns]))
    select = ", ".join(_ident(c) for c in wanted)
    sql = f"SELECT {select} FROM completed_runs WHERE sweep = $sweep"
    if where:
        sql += f" AND ({where})"
    sql += " ORDER BY run_id"
    try:
        result = run_sql(con, sql, {"sweep": sweep})
    except QueryError as exc:
        raise PlotError(f"--where {where!r}: {exc}" if where else str(exc)) from None
    return result.records()


def bootstrap_interval(
    values: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (seeded)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return (math.nan, math.nan)
    if data.size == 1:
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return (float(lo), float(hi))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    return (1, str(value))


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def aggregate(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    hue: str | None = None,
    facet: str | None = None,
    *,
    seed: int = 0,
) -> list[Point]:
    """Group runs by (facet, hue, x); mean and bootstrap interval of ``y`` per group. Runs
    whose ``y`` is missing or not finite are left out of their group."""
    groups: dict[tuple[Any, Any, Any], list[float]] = {}
    for row in rows:
        value = _number(row.get(y))
        if value is None:
            continue
        key = (row.get(facet) if facet else None, row.get(hue) if hue else None, row.get(x))
        groups.setdefault(key, []).append(value)
    points = []
    for (f, h, xv), values in sorted(
        groups.items(), key=lambda kv: tuple(_sort_key(v) for v in kv[0])
    ):
        lo, hi = bootstrap_interval(values, seed=seed)
        points.append(Point(f, h, xv, len(values), float(np.mean(values)), lo, hi))
    return points


# ---- matplotlib ----------------------------------------------------------------------------


def _label(value: Any) -> str:
    return "-" if value is None else str(value)


def draw(
    points: Sequence[Point],
    x: str,
    y: str,
    hue: str | None = None,
    facet: str | None = None,
    title: str = "",
) -> Any:
    """A matplotlib Figure: one panel per facet value, one line per hue value (its label is
    the hue value), the 95% interval as a band (numeric x) or error bars (categorical x)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never a display
    import matplotlib.pyplot as plt

    facets = sorted({p.facet for p in points}, key=_sort_key)
    numeric_x = all(isinstance(p.x, int | float) and not isinstance(p.x, bool) for p in points)
    categories = sorted({p.x for p in points}, key=_sort_key)
    position = {c: i for i, c in enumerate(categories)}
    ncols = min(len(facets), 3)
    nrows = math.ceil(len(facets) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.5 * ncols, 4.0 * nrows), squeeze=False, sharey=True
    )
    for index, facet_value in enumerate(facets):
        ax = axes[index // ncols][index % ncols]
        in_facet = [p for p in points if p.facet == facet_value]
        hues = sorted({p.hue for p in in_facet}, key=_sort_key)
        for h in hues:
            series = sorted((p for p in in_facet if p.hue == h), key=lambda p: _sort_key(p.x))
            xs = [p.x if numeric_x else position[p.x] for p in series]
            means = [p.mean for p in series]
            label = _label(h) if hue else y
            (line,) = ax.plot(xs, means, marker="o", label=label)
            lo = [p.lo for p in series]
            hi = [p.hi for p in series]
            if numeric_x:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            else:
                err = [np.subtract(means, lo), np.subtract(hi, means)]
                ax.errorbar(xs, means, yerr=err, fmt="none", ecolor=line.get_color(), capsize=3)
        if not numeric_x:
            ax.set_xticks(range(len(categories)), [_label(c) for c in categories])
        ax.set_xlabel(x)
        if index % ncols == 0:
            ax.set_ylabel(f"{y} (mean, 95% CI)")
        if facet:
            ax.set_title(f"{facet} = {_label(facet_value)}")
        ax.grid(True, alpha=0.3)
        if hue:
            ax.legend(title=hue, fontsize="small")
    for index in range(len(facets), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- Vega-Lite page ------------------------------------------------------------------------


def _vl_field(name: str) -> str:
    """Vega-Lite reads ``a.b`` as a nested field: escape the dots of config keys."""
    return re.sub(r"([.\[\]])", r"\\\1", name)


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no ``</`` can close the element early."""
    return json.dumps(data, default=str, allow_nan=False).replace("</", "<\\/")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def vega_lite_spec(
    rows: Sequence[Mapping[str, Any]],
    x: str,
    y: str,
    y_options: Sequence[str],
    hue: str | None = None,
    facet: str | None = None,
    title: str = "",
) -> dict[str, Any]:
    """A Vega-Lite spec over the per-run rows: a menu picks the column on y (default
    ``y``); mean line plus a 95% bootstrap error bar (Vega-Lite's ``ci`` extent)."""
    numeric_x = all(
        isinstance(r.get(x), int | float) and not isinstance(r.get(x), bool) for r in rows
    )
    x_enc = {"field": _vl_field(x), "type": "quantitative" if numeric_x else "nominal", "title": x}
    if numeric_x:
        x_enc["scale"] = {"zero": False}
    enc: dict[str, Any] = {"x": x_enc}
    if hue:
        enc["color"] = {"field": _vl_field(hue), "type": "nominal", "title": hue}
    mean_y = {"aggregate": "mean", "field": "value", "type": "quantitative", "title": "mean"}
    layer = [
        {"mark": {"type": "line", "point": True}, "encoding": enc | {"y": mean_y}},
        {
            "mark": {"type": "errorbar", "extent": "ci"},
            "encoding": enc | {"y": {"field": "value", "type": "quantitative", "title": "mean"}},
        },
    ]
    spec: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": title,
        "data": {"values": [{k: _clean(v) for k, v in r.items()} for r in rows]},
        "params": [
            {
                "name": "column",
                "value": y,
                "bind": {"input": "select", "options": list(y_options), "name": "y: "},
            }
        ],
        "transform": [
            {"fold": list(y_options), "as": ["column", "value"]},
            {"filter": "datum.column == column"},
        ],
    }
    if facet:
        spec["facet"] = {"column": {"field": _vl_field(facet), "type": "nominal", "title": facet}}
        spec["spec"] = {"layer": layer, "width": 320, "height": 240}
    else:
        spec |= {"layer": layer, "width": 560, "height": 340}
    return spec


def _vendor_js() -> str:
    root = importlib.resources.files("analysis") / "vendor"
    parts = []
    for name in VENDOR:
        text = (root / name).read_text(encoding="utf-8")
        if "</script" in text.lower():  # would end the inline element early
            raise RuntimeError(f"analysis/vendor/{name} contains '</script'")
        parts.append(f"<script>\n{text}\n</script>")
    return "\n".join(parts)


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html_page(
    spec: Mapping[str, Any], points: Sequence[Point], x: str, y: str, hue: str | None, title: str
) -> str:
    """A self-contained page: the vendored Vega JavaScript, the spec with its data, and
    the aggregated points of ``y`` as a plain table (readable without JavaScript)."""
    head = ["facet", "hue", x, "n", f"mean {y}", "95% low", "95% high"]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{_html_escape(_label(v))}</td>"
            for v in (p.facet, p.hue, p.x, p.n, f"{p.mean:.6g}", f"{p.lo:.6g}", f"{p.hi:.6g}")
        )
        + "</tr>"
        for p in points
    )
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{_html_escape(h)}</th>" for h in head)
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_html_escape(title)}</title>
<style>body {{ font-family: sans-serif; margin: 1.5em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}</style>
{_vendor_js()}
</head>
<body>
<h1>{_html_escape(title)}</h1>
<p>Pick the column on y from the menu. Lines: mean over runs; bars: 95% bootstrap interval
(Vega-Lite <code>ci</code>). Every run is in the page (script <code>#balloonlab-spec</code>).</p>
<div id="vis"></div>
<h2>{_html_escape(y)}: mean and 95% bootstrap interval (balloonlab)</h2>
{table}
<script type="application/json" id="balloonlab-spec">{_script_json(spec)}</script>
<script>
const spec = JSON.parse(document.getElementById("balloonlab-spec").textContent);
vegaEmbed("#vis", spec, {{renderer: "svg", actions: false}})
  .then(() => {{ document.body.dataset.rendered = "ok"; }})
  .catch((err) => {{ document.body.dataset.rendered = "error: " + err; }});
</script>
</body>
</html>
"""


# ---- the command's work --------------------------------------------------------------------


def _numeric_columns(types: Mapping[str, str]) -> list[str]:
    numeric = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "BIGINT", "HUGEINT", "REAL", "SMALLINT")
    return [c for c, t in types.items() if "." not in c and any(n in t.upper() for n in numeric)]


def default_out(sweep: str, x: str, y: str, fmt: str) -> Path:
    """``<sweep>_<y>_by_<x>.<fmt>`` in the current directory, path-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{sweep}_{y}_by_{x}")
    return Path(f"{safe}.{fmt}")


def plot(
    results: Path | str,
    sweep: str,
    x: str,
    y: str,
    *,
    hue: str | None = None,
    facet: str | None = None,
    where: str | None = None,
    out: Path | None = None,
    fmt: str = "png",
    seed: int = 0,
    keep_figure: bool = False,
    memory_limit_bytes: int | None = None,
) -> PlotResult:
    """Query the sweep, aggregate, draw and write the file; PlotError in one line on a
    missing sweep, an unknown column, a bad --where or no data."""
    from analysis.db import connect

    if fmt not in FORMATS:
        raise PlotError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    con = connect(results, memory_limit_bytes=memory_limit_bytes)
    try:
        stored = [
            r[0] for r in con.execute("SELECT DISTINCT sweep FROM runs ORDER BY 1").fetchall()
        ]
        if sweep not in stored:
            raise PlotError(f"{sweep}: no such sweep in {results} (stored: {', '.join(stored)})")
        types = view_columns(con)
        for name, what in ((x, "x"), (y, "y"), (hue, "hue"), (facet, "facet")):
            if name is not None:
                _check_column(name, types, what)
        keys = [k for k in (x, hue, facet) if k]
        if fmt == "html":
            columns = [*keys, *_numeric_columns(types)]
        else:
            columns = [*keys, y]
        rows = load_rows(con, sweep, columns, where)
    finally:
        con.close()
    points = aggregate(rows, x, y, hue, facet, seed=seed)
    if not points:
        where_text = f" with --where {where!r}" if where else ""
        raise PlotError(f"{sweep}: no completed run has a value of {y}{where_text}")
    path = out if out is not None else default_out(sweep, x, y, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = f"{sweep}: {y} by {x}" + (f", per {hue}" if hue else "")
    figure = None
    if fmt == "html":
        options = [
            c for c in _numeric_columns(types) if any(_number(r.get(c)) is not None for r in rows)
        ]
        if y not in options:
            options.insert(0, y)
        spec = vega_lite_spec(rows, x, y, options, hue, facet, title)
        path.write_text(html_page(spec, points, x, y, hue, title), encoding="utf-8")
    else:
        import matplotlib.pyplot as plt

        figure = draw(points, x, y, hue, facet, title)
        figure.savefig(path, format=fmt, dpi=120)
        if not keep_figure:
            plt.close(figure)
            figure = None
    return PlotResult(sweep, x, y, hue, facet, path, points, len(rows), figure)

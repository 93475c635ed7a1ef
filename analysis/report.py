"""The reproduction report: ``report.md`` (figures as relative links) and ``report.html``
(self-contained, figures inline as base64 PNG). For each figure: its claim, the numbers
measured, the conditions checked, and the verdict."""

from __future__ import annotations

import base64
import html
import importlib.metadata
import platform
import time
from pathlib import Path
from typing import Any

from analysis.claims import NO_DATA, NOT_TESTED, SUPPORTED, VERDICTS
from analysis.paper import FigureOutcome, Reproduction
from analysis.published import comparison
from store.parquet import git_commit

VERDICT_COLORS = {SUPPORTED: "#1a7f37", NOT_TESTED: "#9a6700", NO_DATA: "#6e7781"}  # else red
NOT_SUPPORTED_COLOR = "#cf222e"


SWEEPS_NOTE = (
    "Every sweep's runs go to the workers in one queue, in this order. 'finished at' is the "
    "wall time from the start of the reproduction until the sweep's last run was stored; "
    "'one core' sums its runs' wall times in their workers, the compute it takes on one "
    "core (divide by the cores of a cluster for its share of the wall time)."
)


def _version() -> str:
    try:
        return importlib.metadata.version("balloonlab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _header(repro: Reproduction) -> list[tuple[str, str]]:
    commit = git_commit()
    counts = verdict_counts(repro)
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return [
        ("generated", time.strftime("%Y-%m-%d %H:%M:%S %z")),
        ("balloonlab", _version() + (f" (git {commit[:12]})" if commit else "")),
        ("python", platform.python_version()),
        ("mode", "quick (shrunken sweeps)" if repro.quick else "full sweeps"),
        ("results", str(repro.results)),
        ("executor", repro.executor),
        ("wall time", f"{repro.seconds:.1f} s (sweeps, figures and checks)"),
        ("verdicts", tally or "none"),
    ]


def verdict_counts(repro: Reproduction) -> dict[str, int]:
    """How many figures got each verdict, every verdict listed (NOT TESTED too)."""
    counts = dict.fromkeys(VERDICTS, 0)
    for f in repro.figures:
        counts[f.verdict] = counts.get(f.verdict, 0) + 1
    return counts


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):  # an interval
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


# ---- markdown ------------------------------------------------------------------------------


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(repro: Reproduction) -> str:
    """The report as Markdown; figure images are linked by file name (same directory)."""
    lines = ["# balloonlab: reproduction report", ""]
    lines += [f"- **{k}**: {_md_escape(v)}" for k, v in _header(repro)]
    lines += ["", "| figure | verdict | sweep | runs |", "|---|---|---|---|"]
    for f in repro.figures:
        lines.append(
            f"| [{_md_escape(f.title)}](#{f.name}) | **{f.verdict}** | `{f.sweep}` | "
            f"{f.runs}{f' ({f.failed} failed)' if f.failed else ''} |"
        )
    for f in repro.figures:
        lines += ["", f'<a id="{f.name}"></a>', "", f"## {f.title}", ""]
        lines += [f"**Verdict: {f.verdict}**", "", f"**Claim.** {f.claim.text}", ""]
        published = comparison(f.name, f.claim)
        if published:
            lines += [f"**Published.** {_md_escape(published)}", ""]
        if f.png is not None:
            lines += [f"![{f.title}]({f.png.name})", ""]
        if f.error:
            lines += [f"> {_md_escape(f.error)}", ""]
        if f.claim.numbers:
            lines += ["| measured | value |", "|---|---|"]
            lines += [f"| {_md_escape(k)} | {_fmt(v)} |" for k, v in f.claim.numbers.items()]
            lines.append("")
        if f.claim.conditions:
            lines.append("Conditions checked (95% intervals in brackets):")
            lines += [f"- [{'x' if ok else ' '}] {c}" for c, ok in f.claim.conditions]
            lines.append("")
        if f.claim.untested:
            lines.append(f"{NOT_TESTED}: what could not be tested:")
            lines += [f"- {_md_escape(u)}" for u in f.claim.untested]
            lines.append("")
        if f.robustness is not None:
            lines += [f"**Robustness.** {_md_escape(f.robustness.summary())}", ""]
        lines.append(
            f"Data: sweep `{f.sweep}` ({f.runs} stored runs, {f.failed} failed), query "
            f"`{f.name}` ({f.rows} rows); `balloonlab query {f.name} --param sweep={f.sweep}`."
        )
    lines += ["", "## Sweeps", "", SWEEPS_NOTE, "",
              "| sweep | runs | done | stored before | failed | finished at (s) | "
              "one core (s) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in repro.sweeps:
        if s.error:
            lines.append(f"| `{s.sweep}` | - | - | - | - | not run: {_md_escape(s.error)} | - |")
        else:
            lines.append(
                f"| `{s.sweep}` | {s.runs} | {s.done} | {s.skipped} | {s.failed} | "
                f"{s.seconds:.1f} | {s.run_seconds:.1f} |"
            )
    return "\n".join(lines) + "\n"


# ---- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #1f2328; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; text-align: left; }
th { background: #f6f8fa; }
.verdict { font-weight: bold; padding: 0.1em 0.5em; border-radius: 4px; color: white; }
.figure { border-top: 2px solid #d0d7de; margin-top: 2em; padding-top: 0.5em; }
img { max-width: 100%; border: 1px solid #d0d7de; }
.error { color: #cf222e; }
ul.conditions { list-style: none; padding-left: 0.5em; }
code { background: #f6f8fa; padding: 0 0.2em; }
"""


def _badge(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, NOT_SUPPORTED_COLOR)
    return f'<span class="verdict" style="background:{color}">{html.escape(verdict)}</span>'


def _inline_png(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _html_figure(f: FigureOutcome) -> str:
    e = html.escape
    parts = [f'<div class="figure" id="{e(f.name)}">', f"<h2>{e(f.title)}</h2>"]
    parts.append(f"<p>{_badge(f.verdict)}</p>")
    parts.append(f"<p><b>Claim.</b> {e(f.claim.text)}</p>")
    published = comparison(f.name, f.claim)
    if published:
        parts.append(f"<p><b>Published.</b> {e(published)}</p>")
    if f.png is not None and f.png.is_file():
        parts.append(f'<img alt="{e(f.title)}" src="{_inline_png(f.png)}">')
    if f.error:
        parts.append(f'<p class="error">{e(f.error)}</p>')
    if f.claim.numbers:
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{e(_fmt(v))}</td></tr>" for k, v in f.claim.numbers.items()
        )
        parts.append(f"<table><tr><th>measured</th><th>value</th></tr>{rows}</table>")
    if f.claim.conditions:
        items = "".join(
            f"<li>{'&#9745;' if ok else '&#9746;'} {e(c)}</li>" for c, ok in f.claim.conditions
        )
        parts.append(
            "<p>Conditions checked (95% intervals in brackets):</p>"
            f'<ul class="conditions">{items}</ul>'
        )
    if f.claim.untested:
        items = "".join(f"<li>{e(u)}</li>" for u in f.claim.untested)
        parts.append(f"<p>{e(NOT_TESTED)}: what could not be tested:</p><ul>{items}</ul>")
    if f.robustness is not None:
        parts.append(f"<p><b>Robustness.</b> {e(f.robustness.summary())}</p>")
    parts.append(
        f"<p>Data: sweep <code>{e(f.sweep)}</code> ({f.runs} stored runs, {f.failed} failed), "
        f"query <code>{e(f.name)}</code> ({f.rows} rows).</p>"
    )
    parts.append("</div>")
    return "\n".join(parts)


def render_html(repro: Reproduction) -> str:
    """The report as one self-contained HTML page (figures inline)."""
    e = html.escape
    head = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _header(repro))
    summary = "".join(
        f'<tr><td><a href="#{e(f.name)}">{e(f.title)}</a></td><td>{_badge(f.verdict)}</td>'
        f"<td><code>{e(f.sweep)}</code></td><td>{f.runs}</td></tr>"
        for f in repro.figures
    )
    sweeps = "".join(
        f"<tr><td><code>{e(s.sweep)}</code></td><td>{s.runs}</td><td>{s.done}</td>"
        f"<td>{s.skipped}</td><td>{s.failed}</td>"
        + (
            f"<td colspan=2>not run: {e(s.error)}</td></tr>"
            if s.error
            else f"<td>{s.seconds:.1f}</td><td>{s.run_seconds:.1f}</td></tr>"
        )
        for s in repro.sweeps
    )
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>balloonlab: reproduction report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>balloonlab: reproduction report</h1>",
        f"<table>{head}</table>",
        "<table><tr><th>figure</th><th>verdict</th><th>sweep</th><th>runs</th></tr>",
        f"{summary}</table>",
        *(_html_figure(f) for f in repro.figures),
        "<h2>Sweeps</h2>",
        f"<p>{e(SWEEPS_NOTE)}</p>",
        "<table><tr><th>sweep</th><th>runs</th><th>done</th><th>stored before</th>"
        f"<th>failed</th><th>finished at (s)</th><th>one core (s)</th></tr>{sweeps}</table>",
        "</body></html>",
    ]
    return "\n".join(body) + "\n"


def write_reports(repro: Reproduction) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``repro.out``; return their paths."""
    repro.out.mkdir(parents=True, exist_ok=True)
    md = repro.out / "report.md"
    page = repro.out / "report.html"
    md.write_text(render_markdown(repro), encoding="utf-8")
    page.write_text(render_html(repro), encoding="utf-8")
    return md, page

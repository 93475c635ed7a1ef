"""The analysis layer's errors: each message is one line, printed by the CLI as such."""

from __future__ import annotations


class AnalysisError(Exception):
    """Stored data cannot answer what was asked: a query, a plot, a figure. One line."""


class QueryError(AnalysisError):
    """DuckDB refused a query; the message is its first line (plus any hint)."""


class PlotError(AnalysisError):
    """A plot cannot be drawn: an unknown sweep, column or format, a bad --where, no data."""

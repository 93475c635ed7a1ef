"""The store's one error type: the CLI prints it as one line (exit code 2)."""

from __future__ import annotations


class StoreError(Exception):
    """The results directory is missing, holds no runs, or cannot be read: one line."""

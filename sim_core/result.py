"""What one run returns: a summary row and per-tick rows, convertible to Arrow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Outcomes of a run, in the summary column `outcome`.
OUTCOMES = ("ok", "guest_oom", "deadlock", "failed")


@dataclass
class RunResult:
    """``summary``: one row, column name -> scalar (config columns flattened with dotted
    names, then outcome and totals). ``ticks``: equal-length columns, one row per tick and
    VM (``vm`` = -1 is the host's row)."""

    summary: dict[str, Any]
    ticks: dict[str, np.ndarray] = field(default_factory=dict)

    def summary_table(self):  # -> pyarrow.Table
        """The summary as a one-row Arrow table."""
        import pyarrow as pa

        return pa.Table.from_pylist([self.summary])

    def ticks_table(self):  # -> pyarrow.Table
        """The per-tick series as an Arrow table."""
        import pyarrow as pa

        return pa.Table.from_pydict({k: np.asarray(v) for k, v in self.ticks.items()})

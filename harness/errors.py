"""The errors the CLI turns into one line on stderr and exit code 2: the harness's own
UserError and the error types of the layers it drives (``ONE_LINE``)."""

from __future__ import annotations

from analysis.errors import AnalysisError
from store.errors import StoreError


class UserError(Exception):
    """Bad input from the user: a file, a flag, a spec. Printed as one line, exit code 2."""


# What `balloonlab` prints as `error: <message>` (exit code 2) rather than a traceback.
ONE_LINE: tuple[type[Exception], ...] = (UserError, StoreError, AnalysisError)

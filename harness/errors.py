"""The one exception type the CLI turns into a one-line error and a non-zero exit."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a file, a flag, a spec. Printed as one line, exit code 2."""

"""The sweep specs shipped in the ``sweeps`` package, usable by name or by path."""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable
from pathlib import Path

from harness.errors import UserError

PACKAGE = "sweeps"


def _root() -> Traversable:
    return importlib.resources.files(PACKAGE)


def shipped() -> dict[str, Traversable]:
    """Shipped spec name (file stem) -> resource, sorted by name."""
    specs = {
        entry.name.removesuffix(".toml"): entry
        for entry in _root().iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    }
    return dict(sorted(specs.items()))


def resolve(spec: str) -> Path | Traversable:
    """A spec argument as given on the command line: an existing file path, else the name
    of a shipped spec (with or without ``.toml``)."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.exists():
        raise UserError(f"{spec}: not a spec file")
    specs = shipped()
    name = path.name.removesuffix(".toml")
    if path.parent == Path(".") and name in specs:
        return specs[name]
    names = ", ".join(specs) or "none"
    raise UserError(f"{spec}: no such spec file and no shipped sweep of that name ({names})")

"""Typed, range-checked parameter tables: the ``Params`` dataclasses of workloads and of
balloon controllers (built-in or plug-in). A field declared with ``param`` carries its doc,
bounds and unit; ``parse_params`` checks a raw table against it, naming ``{path}.{key}``
in every error."""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from typing import Any

from sim_core.config import ConfigError


def param(
    default: Any,
    doc: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    choices: tuple[str, ...] | None = None,
    mem_fraction: float | None = None,
    unit: str | None = None,
) -> Any:
    """A parameter. ``mem_fraction``: a MiB size whose default (None) is this
    fraction of the VM's memory. ``lo``/``hi``: inclusive bounds (``lo_open``: exclusive).
    ``unit``: its unit for help tables (None: inferred from the name, see ``_unit``)."""
    meta = dict(
        doc=doc, lo=lo, hi=hi, lo_open=lo_open, choices=choices, mem_fraction=mem_fraction,
        unit=unit,
    )  # fmt: skip
    return dataclasses.field(default=default, metadata=meta)


def check_value(path: str, value: Any, f: dataclasses.Field) -> Any:
    """Type- and range-check one parameter value; return it converted (int -> float)."""
    kind = str(f.type)
    meta = f.metadata
    if value is None and "None" in kind:
        return None
    if kind.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {value!r}")
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{path}: must be one of {', '.join(meta['choices'])}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}: must be a number, got {value!r}")
    if kind.startswith("int"):
        if not float(value).is_integer():
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{path}: must be finite, got {value!r}")
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value <= lo if meta["lo_open"] else value < lo):
        raise ConfigError(f"{path}: must be {'>' if meta['lo_open'] else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{path}: must be <= {hi}, got {value!r}")
    return value


def parse_params(params_cls: type, raw: Mapping[str, Any], path: str, owner: str) -> Any:
    """Build ``params_cls`` from ``raw``; ``owner`` names what the table belongs to in
    errors (e.g. "workload 'zipf'")."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a table of parameters, got {raw!r}")
    known = {f.name: f for f in dataclasses.fields(params_cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                f"{path}.{key}: unknown parameter of {owner} "
                f"({hint}known: {', '.join(known) or 'none'})"
            )
        values[key] = check_value(f"{path}.{key}", value, known[key])
    return params_cls(**values)

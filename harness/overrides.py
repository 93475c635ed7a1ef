"""``key=value`` overrides from the command line, values read as TOML literals."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from typing import Any

from harness.errors import UserError


def parse_value(text: str) -> Any:
    """``4096`` -> int, ``1.5`` -> float, ``true`` -> bool, ``[1, 2]`` -> list; anything
    that is not a TOML literal stays a string (``db``, ``hostmem_first``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["host.mem_mib=4096", "vms.workload=db"]`` -> ``{"host.mem_mib": 4096, ...}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected key=value, as in host.mem_mib=4096")
        out[key.strip()] = parse_value(value.strip())
    return out

"""``key=value`` overrides from the command line (values read as TOML literals), and config
files normalised to the same dotted keys."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
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


def config_file_overrides(data: Mapping[str, Any], source: str) -> tuple[dict[str, Any], dict]:
    """A ``--config`` file (parsed TOML) as ``(raw, overrides)`` for ``build_config``.

    One syntax everywhere: the file takes what a sweep's ``[base]`` takes, and tables too.
    Flat dotted keys (``"vms.count" = 8``), tables (``[host] mem_mib = 4096``,
    ``[vms] count = 4``, ``[vms.workload_params] alpha = 1.2``) and mixes of both all become
    dotted overrides; ``[[vms]]`` tables (one per VM) are kept as the raw VM list, and
    dotted ``vms.*`` keys then apply on top of it. A key given twice is refused."""
    raw: dict[str, Any] = {}
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in out:
            raise UserError(f"{source}: {key}: given twice (once dotted, once in a table?)")
        out[key] = value

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, Mapping) and value:
                walk(dotted, value)
            else:
                put(dotted, value)

    for key, value in data.items():
        if key == "vms" and isinstance(value, list):
            if not all(isinstance(v, Mapping) for v in value):
                raise UserError(f"{source}: vms: must be [[vms]] tables or a [vms] table")
            raw["vms"] = [dict(v) for v in value]
        elif isinstance(value, Mapping):
            walk(key, value)
        else:
            put(key, value)
    return raw, out

"""Sweeps without a file, and the spec each stored sweep was run with.

``balloonlab run --name S --grid key=a,b --set key=v --replicates 3`` writes the TOML a user
would have written and parses it with the same parser as a file (``harness.spec``), so a
sweep from the command line and its TOML twin have the same run ids.

Every `run` keeps the text of each spec it ran at ``RESULTS/specs/<name>.toml`` (written
atomically), so `status` can count missing runs of any sweep, not only shipped ones.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.overrides import parse_overrides, parse_value
from harness.spec import SweepSpec, load_spec, parse_spec
from harness.sweeps_catalog import resolve

SPECS_DIR = "specs"
CLI_SOURCE = "command line"


def toml_value(value: Any) -> str:
    """One value as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{"
            + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
            + "}"
        )
    raise UserError(f"cannot write {value!r} as a TOML value")


def spec_toml(
    name: str,
    *,
    grid: Mapping[str, list[Any]],
    base: Mapping[str, Any],
    replicates: int,
    seed: int | None,
    description: str = "",
) -> str:
    """The TOML text of a sweep given on the command line."""
    lines = ["[sweep]", f"name = {toml_value(name)}"]
    if description:
        lines.append(f"description = {toml_value(description)}")
    lines.append(f"replicates = {replicates}")
    if seed is not None:
        lines.append(f"seed = {seed}")
    for section, table in (("base", base), ("grid", grid)):
        if table:
            lines += ["", f"[{section}]"]
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["host.overcommit=1,1.5", "hypervisor.policy=none,mom"]`` -> lists of values, each
    read as a TOML literal (``1`` int, ``1.5`` float, ``none`` string); ``key=[...]`` takes a
    TOML list as is."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key, values = key.strip(), values.strip()
        if not sep or not key or not values:
            raise UserError(f"--grid {item!r}: expected key=a,b,..., as in host.overcommit=1,1.5")
        if key in out:
            raise UserError(f"--grid {key}: given twice; list all its values once")
        if values.startswith("["):
            parsed = parse_value(values)
            if not isinstance(parsed, list):
                raise UserError(f"--grid {item!r}: not a TOML list")
            out[key] = parsed
        else:
            out[key] = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not out[key]:
            raise UserError(f"--grid {item!r}: give at least one value")
    return out


def spec_from_options(
    name: str | None,
    grid: list[str],
    sets: list[str],
    replicates: int,
    seed: int | None,
    description: str = "",
    max_runs: int | None = None,
) -> tuple[SweepSpec, str]:
    """The spec (and its TOML text) of a sweep given with --name/--grid/--set."""
    if not name:
        raise UserError("--grid/--set without a spec file need --name NAME for the sweep")
    text = spec_toml(
        name,
        grid=parse_grid(grid),
        base=parse_overrides(sets),
        replicates=replicates,
        seed=seed,
        description=description or f"from the command line: {' '.join(grid + sets)}",
    )
    # Through tomllib and the spec parser, exactly as a file would go.
    spec = parse_spec(tomllib.loads(text), CLI_SOURCE, default_name=name, max_runs=max_runs)
    return spec, text


def load_with_text(arg: str, max_runs: int | None = None) -> tuple[SweepSpec, str]:
    """A spec file or shipped sweep, with the text it was read from."""
    source = resolve(arg)
    spec = load_spec(source, max_runs=max_runs)
    return spec, source.read_text(encoding="utf-8")


def write_stored_spec(results: Path | str, name: str, text: str) -> Path:
    """Keep a sweep's spec text beside its runs (atomically: temp file, then rename)."""
    directory = Path(results) / SPECS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stored_specs(results: Path | str) -> dict[str, SweepSpec]:
    """The specs kept under RESULTS/specs/, by sweep name; unreadable ones are left out
    (status then shows stored counts only for that sweep)."""
    directory = Path(results) / SPECS_DIR
    out: dict[str, SweepSpec] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.toml")):
        try:
            spec = load_spec(path)
        except UserError:
            continue
        out[spec.name] = spec
    return out

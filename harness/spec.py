"""Sweep specs: parse a TOML file, validate every key, expand it into runs.

A spec has five tables::

    [sweep]   name, description, replicates, seed, samples (with [random])
    [base]    dotted config keys every run starts from
    [grid]    dotted key -> list of values; the cartesian product of all lists
    [zip]     dotted key -> list of values; the lists vary together (equal lengths)
    [random]  dotted key -> {uniform = [lo, hi]} | {loguniform = [lo, hi]}
              | {randint = [lo, hi]} | {choice = [v, ...]}; ``samples`` points, seeded

The runs are grid x zip x random samples x replicates. A run's id hashes its resolved config
(without the seed), its replicate and the sweep seed, so the same spec always gives the same
ids and changing any value that reaches the config changes them. Its seed derives from the
sweep seed and the id by SHA-256. Every error is one line: ``<file>: <key>: <why>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from harness.errors import UserError
from sim_core.config import ConfigError, SimConfig, apply_overrides, from_dict

SECTIONS = ("sweep", "base", "grid", "zip", "random")
SWEEP_KEYS = ("name", "description", "replicates", "seed", "samples")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
# Sweep names become directory names (results/runs/sweep=<name>/): keep them path-safe.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class TextSource(Protocol):
    """A spec file: a Path, or a resource of the shipped `sweeps` package."""

    name: str

    def read_text(self, encoding: str = ...) -> str: ...


@dataclass(frozen=True)
class Run:
    """One run of a sweep: what the executor ships and the store files."""

    sweep: str
    run_id: str
    replicate: int
    seed: int
    overrides: dict[str, Any]  # every dotted override: [base] then this run's point
    point: dict[str, Any]  # only the varying keys ([grid], [zip], [random])
    config: SimConfig  # resolved, with ``seed`` set to ``self.seed``


@dataclass(frozen=True)
class SweepSpec:
    """A validated, expanded sweep spec."""

    name: str
    description: str
    source: str  # the file, for messages
    replicates: int
    seed: int
    samples: int
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    zip: dict[str, list[Any]]
    random: dict[str, dict[str, list[Any]]]
    runs: tuple[Run, ...] = field(repr=False, default=())

    @property
    def varying(self) -> list[str]:
        """The dotted keys that differ between runs, in spec order."""
        return [*self.grid, *self.zip, *self.random]


# ---- ids and seeds -----------------------------------------------------------------------


def run_id_for(config: SimConfig, replicate: int, sweep_seed: int) -> str:
    """First 16 hex digits of SHA-256 over the canonical config (seed left out, since the
    seed derives from the id), the replicate and the sweep seed."""
    data = config.to_dict()
    data.pop("seed", None)
    canonical = json.dumps(
        {"config": data, "replicate": replicate, "sweep_seed": sweep_seed},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def seed_for(sweep_seed: int, run_id: str) -> int:
    """A run's seed: 63 bits of SHA-256 over (sweep seed, run id) — fits a signed int64."""
    digest = hashlib.sha256(f"{sweep_seed}:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _rng(sweep_seed: int, purpose: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{sweep_seed}:{purpose}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


# ---- loading -----------------------------------------------------------------------------


def load_spec(source: str | Path | TextSource, *, max_runs: int | None = None) -> SweepSpec:
    """Read, validate and expand a spec file. Raises UserError naming the file and key.
    A spec of more than ``max_runs`` runs (default harness.limits.MAX_RUNS) is refused
    before it is expanded."""
    if isinstance(source, str):
        source = Path(source)
    label = str(source)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{label}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{label}: not UTF-8 text (byte {exc.start}): not a spec file") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{label}: invalid TOML: {exc}") from None
    default_name = Path(getattr(source, "name", label)).stem
    return parse_spec(data, label, default_name=default_name, max_runs=max_runs)


def parse_spec(
    data: Mapping[str, Any], source: str, *, default_name: str = "", max_runs: int | None = None
) -> SweepSpec:
    """Validate a parsed spec (a dict as from TOML) and expand it into runs."""
    err = _Errors(source)
    for section in data:
        if section not in SECTIONS:
            raise err(f"[{section}]", f"unknown section (expected {', '.join(SECTIONS)})")
        if not isinstance(data[section], Mapping):
            raise err(f"[{section}]", "must be a table")

    meta = dict(data.get("sweep", {}))
    for key in meta:
        if key not in SWEEP_KEYS:
            raise err(f"[sweep] {key}", f"unknown key (expected {', '.join(SWEEP_KEYS)})")
    name = meta.get("name", default_name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise err("[sweep] name", f"must be letters, digits, '_', '.', '-', got {name!r}")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise err("[sweep] description", f"must be a string, got {description!r}")
    replicates = _int(err, "[sweep] replicates", meta.get("replicates", 1), minimum=1)
    seed = _int(err, "[sweep] seed", meta.get("seed", 0), minimum=0)

    base = _flatten(err, "base", data.get("base", {}), _is_value)
    grid = _flatten(err, "grid", data.get("grid", {}), _is_value)
    zipped = _flatten(err, "zip", data.get("zip", {}), _is_value)
    random = _flatten(err, "random", data.get("random", {}), _is_distribution)

    if random and "samples" not in meta:
        raise err("[sweep] samples", "required with [random]: how many points to draw")
    samples = _int(err, "[sweep] samples", meta.get("samples", 1), minimum=1)
    if "samples" in meta and not random:
        raise err("[sweep] samples", "only meaningful with a [random] table")

    _check_lists(err, "grid", grid)
    _check_lists(err, "zip", zipped)
    if zipped:
        lengths = {k: len(v) for k, v in zipped.items()}
        first = next(iter(lengths))
        for key, n in lengths.items():
            if n != lengths[first]:
                raise err(
                    f"[zip] {key}",
                    f"has {n} values but {first} has {lengths[first]}; "
                    "[zip] lists vary together and need equal lengths",
                )
    for key, dist in random.items():
        _check_distribution(err, key, dist)

    seen: dict[str, str] = {}
    for section, keys in (("base", base), ("grid", grid), ("zip", zipped), ("random", random)):
        for key in keys:
            if key == "seed":
                raise err(f"[{section}] seed", "set per run from [sweep] seed; remove it")
            if key in seen:
                raise err(f"[{section}] {key}", f"also given in [{seen[key]}]; give it once")
            seen[key] = section

    spec = SweepSpec(
        name=name,
        description=description,
        source=source,
        replicates=replicates,
        seed=seed,
        samples=samples if random else 1,
        base=base,
        grid=grid,
        zip=zipped,
        random=random,
    )
    check_limits(spec, max_runs)  # before any config is built or any run expanded
    base_raw = _validate_keys(err, spec)
    return dataclasses.replace(spec, runs=tuple(_expand(err, spec, base_raw)))


# ---- size, without expanding -------------------------------------------------------------


def count_runs(spec: SweepSpec) -> int:
    """The number of runs ``spec`` expands to, computed without expanding it: grid product
    x zip length x random samples x replicates (see ``_points``)."""
    grid = math.prod(len(values) for values in spec.grid.values())
    n_zip = len(next(iter(spec.zip.values()))) if spec.zip else 1
    samples = spec.samples if spec.random else 1
    return grid * n_zip * samples * spec.replicates


def check_limits(spec: SweepSpec, max_runs: int | None = None) -> None:
    """Refuse, before expansion, a sweep of more than ``max_runs`` runs and a ``vms.count``
    over the ceiling of one run (harness.limits): each in well under a second."""
    from harness import limits

    n = count_runs(spec)
    parts = [f"{len(v)} {k}" for k, v in spec.grid.items()]
    parts += [f"{len(next(iter(spec.zip.values())))} zipped"] if spec.zip else []
    parts += [f"{spec.samples} samples"] if spec.random else []
    parts += [f"{spec.replicates} replicates"]
    limits.check_run_count(n, max_runs, spec.source, " x ".join(parts))
    for section, table in (("base", spec.base), ("grid", spec.grid), ("zip", spec.zip)):
        limits.check_raw_vm_counts(None, table, f"{spec.source}: [{section}]")


# ---- validation helpers ------------------------------------------------------------------


class _Errors:
    """Builds the one-line UserError ``<file>: <key>: <why>``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, key: str, why: str) -> UserError:
        return UserError(f"{self.source}: {key}: {why}")


def _int(err: _Errors, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err(key, f"must be an integer, got {value!r}")
    if value < minimum:
        raise err(key, f"must be >= {minimum}, got {value!r}")
    return value


def _is_value(value: Any) -> bool:
    return not isinstance(value, Mapping)


def _is_distribution(value: Any) -> bool:
    return not isinstance(value, Mapping) or (
        len(value) > 0 and all(k in DISTRIBUTIONS for k in value)
    )


def _flatten(err: _Errors, section: str, table: Mapping[str, Any], is_leaf) -> dict[str, Any]:
    """Dotted keys from a table. TOML turns unquoted ``host.mem_mib = 1`` into nested
    tables; both spellings mean the same key here."""
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        if not node:
            raise err(f"[{section}] {prefix}" if prefix else f"[{section}]", "empty table")
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if is_leaf(value):
                out[dotted] = value
            else:
                walk(dotted, value)

    if table:
        walk("", table)
    return out


def _check_lists(err: _Errors, section: str, table: dict[str, Any]) -> None:
    for key, values in table.items():
        if not isinstance(values, list):
            raise err(f"[{section}] {key}", f"must be a list of values, got {values!r}")
        if not values:
            raise err(f"[{section}] {key}", "empty list: give at least one value")


def _check_distribution(err: _Errors, key: str, dist: Any) -> None:
    where = f"[random] {key}"
    if not isinstance(dist, Mapping):
        raise err(where, f"must be a table like {{uniform = [lo, hi]}}, got {dist!r}")
    if len(dist) != 1:
        raise err(where, f"give exactly one of {', '.join(DISTRIBUTIONS)}")
    ((kind, args),) = dist.items()
    if not isinstance(args, list):
        raise err(f"{where}.{kind}", f"must be a list, got {args!r}")
    if kind == "choice":
        if not args:
            raise err(f"{where}.choice", "empty list: give at least one value")
        return
    if len(args) != 2:
        raise err(f"{where}.{kind}", f"must be [low, high], got {args!r}")
    lo, hi = args
    numeric = (int,) if kind == "randint" else (int, float)
    for bound in args:
        if isinstance(bound, bool) or not isinstance(bound, numeric):
            what = "integers" if kind == "randint" else "numbers"
            raise err(f"{where}.{kind}", f"bounds must be {what}, got {bound!r}")
    if not (lo < hi if kind != "randint" else lo <= hi):
        raise err(f"{where}.{kind}", f"needs low < high, got {args!r}")
    if kind == "loguniform" and lo <= 0:
        raise err(f"{where}.{kind}", f"needs 0 < low, got {args!r}")


def _normalize_field(path: str) -> str:
    """``vms[0].mem_mib`` -> ``vms.mem_mib``: how a spec names a ConfigError's field."""
    return re.sub(r"^vms\[\d+\]", "vms", path)


def _config_error(err: _Errors, where: str, keys: Sequence[str], exc: ConfigError) -> UserError:
    """Name the spec key a ConfigError came from (its message starts with the field)."""
    message = str(exc)
    field_path, _, why = message.partition(": ")
    normalized = _normalize_field(field_path)
    for key in keys:
        if key in (field_path, normalized) or re.sub(r"^vms\.\d+\.", "vms.", key) == normalized:
            return err(f"[{where}] {key}", why or message)
    return err(f"[{where}]", message)


def _base_raw(base: Mapping[str, Any]) -> dict[str, Any]:
    """[base] as a raw config dict; a ``vms`` list of tables ([[base.vms]]) is taken as is."""
    raw: dict[str, Any] = {}
    dotted = dict(base)
    if isinstance(dotted.get("vms"), list):
        raw["vms"] = dotted.pop("vms")
    return apply_overrides(raw, dotted)


def _build(raw: Mapping[str, Any], point: Mapping[str, Any]) -> SimConfig:
    return from_dict(apply_overrides(raw, point))


def _validate_keys(err: _Errors, spec: SweepSpec) -> dict[str, Any]:
    """Build the base config, then the base with each single varying value, so that an
    unknown key or a bad value is named before any combination is tried."""
    try:
        base_raw = _base_raw(spec.base)
        from_dict(base_raw)
    except ConfigError as exc:
        raise _config_error(err, "base", list(spec.base), exc) from None
    checks: list[tuple[str, dict[str, Any]]] = []
    checks += [("grid", {key: v}) for key, values in spec.grid.items() for v in values]
    # Values of a [zip] vary together, so they are checked together, row by row.
    rows = len(next(iter(spec.zip.values()))) if spec.zip else 0
    checks += [("zip", {key: values[i] for key, values in spec.zip.items()}) for i in range(rows)]
    for key, dist in spec.random.items():
        ((kind, args),) = dist.items()
        checks += [("random", {key: v}) for v in args]
    for section, point in checks:
        try:
            _build(base_raw, point)
        except ConfigError as exc:
            raise _config_error(err, section, list(point), exc) from None
    return base_raw


# ---- expansion ---------------------------------------------------------------------------


def _draw(rng: np.random.Generator, dist: Mapping[str, list[Any]]) -> Any:
    ((kind, args),) = dist.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    lo, hi = args
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(lo, hi, endpoint=True))  # randint: both bounds included


def _points(spec: SweepSpec) -> list[dict[str, Any]]:
    """grid (cartesian, in spec order) x zip (by index) x random samples."""
    grid_points = [
        dict(zip(spec.grid, combo, strict=True)) for combo in itertools.product(*spec.grid.values())
    ]
    n_zip = len(next(iter(spec.zip.values()))) if spec.zip else 1
    zip_points = [{k: v[i] for k, v in spec.zip.items()} for i in range(n_zip)]
    rng = _rng(spec.seed, "random")
    random_points = [
        {k: _draw(rng, dist) for k, dist in spec.random.items()} for _ in range(spec.samples)
    ]
    return [g | z | r for g, z, r in itertools.product(grid_points, zip_points, random_points)]


def _expand(err: _Errors, spec: SweepSpec, base_raw: dict[str, Any]) -> list[Run]:
    runs: list[Run] = []
    owner: dict[str, dict[str, Any]] = {}
    for point in _points(spec):
        try:
            config = _build(base_raw, point)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in point.items())
            raise err(f"run {{{where}}}", str(exc)) from None
        for replicate in range(spec.replicates):
            run_id = run_id_for(config, replicate, spec.seed)
            if run_id in owner:
                raise err(
                    ", ".join(point) or "[base]",
                    f"points {owner[run_id]} and {point} resolve to the same config; "
                    "a varying value has no effect",
                )
            owner[run_id] = point
            seed = seed_for(spec.seed, run_id)
            runs.append(
                Run(
                    sweep=spec.name,
                    run_id=run_id,
                    replicate=replicate,
                    seed=seed,
                    overrides=spec.base | point,
                    point=dict(point),
                    config=dataclasses.replace(config, seed=seed),
                )
            )
    return runs

"""Refuse work the machine cannot do, before any of it starts.

- memory: each run's estimate (``sim_core.footprint``) against a budget, by default a
  fraction of this machine's memory divided by the runs that execute at once
  (``--memory-budget`` overrides it); the refusal names the config fields that drive it;
- absolute ceilings on config sizes (VM count, int32 page ids), whatever the budget;
- sweep size: ``harness.spec.count_runs`` (from the spec, without expanding it) against
  ``--max-runs``;
- the `deadlock` explorer: instance size, trials x steps, and the memo of --max-states.

Every refusal is a one-line UserError (exit code 2) and costs no allocation.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import UserError
from sim_core.footprint import (
    MAX_INDEX,
    MAX_VMS,
    estimate_run_bytes,
    footprint_breakdown,
    human_bytes,
    index_counts,
    workload_pages,
)
from sim_core.locks import instance_steps

BUDGET_FRACTION = 0.5  # of this machine's memory, shared by the runs executing at once
BUDGET_OPTION = "--memory-budget"
_UNITS = {
    "": 1, "b": 1,
    "k": 1024, "kb": 1000, "kib": 1024,
    "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1024**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1024**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str, option: str = BUDGET_OPTION) -> int:
    """``4GiB``, ``512MiB``, ``1.5G``, ``2e9`` (bytes) -> bytes. Raises UserError."""
    match = _SIZE_RE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _UNITS:
        raise UserError(f"{option} {text!r}: expected a size such as 4GiB, 512MiB or 2e9")
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1:
        raise UserError(f"{option} {text!r}: must be at least one byte")
    return int(value)


def machine_memory() -> int:
    """Total memory of this machine in bytes (/proc/meminfo, else sysconf)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3  # unknown: assume a small machine


def default_budget(workers: int = 1) -> int:
    """Bytes one run may use: BUDGET_FRACTION of this machine's memory over ``workers``
    runs executing at once (a Ray sweep runs one per CPU)."""
    return int(machine_memory() * BUDGET_FRACTION / max(1, workers))


def budget_from(option: str | None, workers: int = 1) -> int:
    """The budget of ``--memory-budget`` if given, else ``default_budget(workers)``."""
    return parse_size(option) if option is not None else default_budget(workers)


def executor_workers(executor: str) -> int:
    """Runs that execute at once: 1 in-process, one per CPU of this machine on Ray."""
    return 1 if executor == "local" else max(1, os.cpu_count() or 1)


# ---- configs -----------------------------------------------------------------------------


def check_vm_count(count: Any, where: str = "") -> None:
    """Refuse a VM count over the absolute ceiling, before the config is built (building
    100,000 VM tables alone takes seconds)."""
    if isinstance(count, bool) or not isinstance(count, int | float):
        return  # not a number: the config's own validation names it
    if count > MAX_VMS:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}vms.count={count:,}: over the ceiling of {MAX_VMS:,} VMs per run")


def check_raw_vm_counts(
    raw: Mapping[str, Any] | None, overrides: Mapping[str, Any], where: str = ""
) -> None:
    """Check ``vms.count`` among dotted overrides (values or lists of values, as in a
    spec's [grid]) and the length of a raw ``vms`` list against MAX_VMS."""
    vms = (raw or {}).get("vms")
    if isinstance(vms, list):
        check_vm_count(len(vms), where)
    for key, value in overrides.items():
        if key == "vms.count":
            for v in value if isinstance(value, list) else [value]:
                check_vm_count(v, where)
        elif key == "vms" and isinstance(value, list):
            check_vm_count(len(value), where)


def _uniform(values: Iterable[Any]) -> Any:
    values = list(values)
    return values[0] if values and all(v == values[0] for v in values) else None


def _vm_desc(config: Any, field: str) -> str:
    vms = config.vms
    value = _uniform(getattr(v, field) for v in vms)
    if value is not None:
        return f"vms.count={len(vms):,} x vms.{field}={value:,}"
    total = sum(getattr(v, field) for v in vms)
    return f"vms.count={len(vms):,}, vms.{field} summing to {total:,}"


def _footprint_desc(config: Any) -> str:
    explicit = [v for v in config.vms if any(k.endswith("_mib") for k in v.workload_params)]
    if not explicit:
        return _vm_desc(config, "mem_mib")
    keys = sorted({k for v in explicit for k in v.workload_params if k.endswith("_mib")})
    pages = sum(workload_pages(config, v) for v in config.vms)
    names = ", ".join(f"vms.workload_params.{k}" for k in keys)
    return f"{names} ({pages:,} pages over vms.count={len(config.vms):,})"


def _part_fields(config: Any, part: str) -> str:
    """The config fields that size one part of the footprint."""
    n = len(config.vms)
    if part in ("frames", "units", "guests"):
        return _vm_desc(config, "mem_mib")
    if part in ("pages", "workload"):
        if config.mode == "replay":
            return _footprint_desc(config) if part == "workload" else "replay.cache_mib"
        return _footprint_desc(config)
    if part == "swap":
        return _vm_desc(config, "swap_mib")
    if part == "refs":
        field = "refs_per_tick" if hasattr(config.vms[0], "refs_per_tick") else "ref_us"
        return _vm_desc(config, field)
    if part == "ticks":
        return f"ticks={config.ticks:,} x (vms.count={n:,} + 1) rows"
    if part == "replay":
        return f"replay.references={config.replay.references:,}"
    if part == "native":  # the baseline run of the largest VM: sized by its memory
        return _vm_desc(config, "mem_mib")
    return part


def drivers(config: Any, parts: Mapping[str, int] | None = None) -> str:
    """The fields behind the largest parts of a run's footprint, e.g.
    ``vms.count=100,000 x vms.mem_mib=256``."""
    parts = parts if parts is not None else footprint_breakdown(config)
    by_fields: dict[str, int] = {}
    for part, size in parts.items():
        desc = _part_fields(config, part)
        by_fields[desc] = by_fields.get(desc, 0) + size
    total = sum(by_fields.values()) or 1
    ranked = sorted(by_fields.items(), key=lambda kv: -kv[1])
    named = [ranked[0][0]] + [d for d, size in ranked[1:2] if size >= 0.25 * total]
    return "; ".join(named)


def check_config(config: Any, budget: int, *, where: str = "", option: str = BUDGET_OPTION) -> int:
    """Refuse a run of ``config`` over the absolute ceilings or over ``budget`` bytes; the
    message names the fields that drive its size. Returns the estimate (bytes)."""
    prefix = f"{where}: " if where else ""
    check_vm_count(len(config.vms), where)
    if config.mode == "host":
        for what, count in index_counts(config).items():
            if count > MAX_INDEX:
                part = "swap" if what == "swap slots" else "pages"
                raise UserError(
                    f"{prefix}{_part_fields(config, part)}: {count:,} {what}, over the "
                    f"{MAX_INDEX:,} a run can index"
                )
    if config.mode == "locks":
        _check_locks_mode(config, prefix)
    parts = footprint_breakdown(config)
    need = int(sum(parts.values()))
    if need > budget:
        raise UserError(
            f"{prefix}{drivers(config, parts)}: a run needs ~{human_bytes(need)}, "
            f"budget {human_bytes(budget)} ({option})"
        )
    return need


# One core's compute time of a host-mode run, three terms: per run (setup, the native
# baseline, the summary), per guest-tick (a tick's control plane in Python: refills,
# monitor, controller, metrics) and per nominal reference (every guest busy every tick,
# the sampled share; a thrashing guest completes fewer references but pays for faults, so
# this term is an average over pressure). Fitted (positive coefficients, least squares on
# log(actual/estimate) per sweep) over the host-mode sweeps of one full reproduction
# (FIT_SOURCE); ESTIMATE_RANGE is the lowest and highest actual/estimate among them, the
# range a plan prints. A single reference rate was off by up to 10x both ways.
SECONDS_PER_RUN = 0.137  # s, see FIT_SOURCE
SECONDS_PER_GUEST_TICK = 114.5e-6  # s, see FIT_SOURCE
SECONDS_PER_REFERENCE = 9.51e-9  # s, see FIT_SOURCE
ESTIMATE_RANGE = (0.47, 4.34)  # actual / estimate, lowest and highest of the fitted sweeps
FIT_SOURCE = "the full reproduction of ac1f916 on 2 cores (2026-12-08), 19 host-mode sweeps"


def estimated_references(config: Any) -> int:
    """Upper bound on the guest references a host-mode run simulates: every guest busy
    every tick, one reference per ``ref_us`` (idle guests and stalls only lower it); under
    ``sampling.rate`` R only the sampled pages' share, about R of them."""
    if config.mode != "host":
        return 0
    seconds = config.ticks * config.tick_ms / 1000.0
    rate = config.sampling.rate
    return int(sum(seconds * 1e6 / vm.ref_us for vm in config.vms) * rate)


def estimated_core_seconds(config: Any) -> float:
    """One core's compute time of a host-mode run by the fitted three-term model (0 for the
    replay and locks modes, which it does not cover)."""
    if config.mode != "host":
        return 0.0
    guest_ticks = config.ticks * len(config.vms)
    return (SECONDS_PER_RUN + guest_ticks * SECONDS_PER_GUEST_TICK
            + estimated_references(config) * SECONDS_PER_REFERENCE)  # fmt: skip


def core_seconds_range(estimate: float) -> tuple[float, float]:
    """The range of an estimate: the fitted sweeps' lowest and highest actual/estimate."""
    return estimate * ESTIMATE_RANGE[0], estimate * ESTIMATE_RANGE[1]


def time_phrase(config: Any) -> str:
    """How long a run of ``config`` takes: its guest references and a compute-time range."""
    refs = estimated_references(config)
    fast, slow = core_seconds_range(estimated_core_seconds(config))
    sampled = "" if config.sampling.rate == 1.0 else f" (sampled at {config.sampling.rate:g})"
    return (
        f"for up to {refs / 1e6:,.0f}M guest references{sampled}, {duration(fast)} to "
        f"{duration(slow)} of one core"
    )


def estimate_line(config: Any) -> str:
    """One line a user reads before a long run: memory and a compute-time range."""
    return f"this run needs ~{human_bytes(estimate_run_bytes(config))} and, {time_phrase(config)}"


def duration(seconds: float) -> str:
    """Seconds as '42 s', '17 min' or '3.1 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def check_runs(runs: Iterable[Any], budget: int, *, source: str = "") -> int:
    """``check_config`` on every distinct config of a sweep's runs (replicates share one);
    the refusal names the run's point. Returns the largest estimate."""
    worst = 0
    seen: set[str] = set()
    for run in runs:
        key = repr(sorted(run.point.items(), key=lambda kv: kv[0]))
        if key in seen:
            continue
        seen.add(key)
        point = ", ".join(f"{k}={v!r}" for k, v in run.point.items())
        where = f"{source}: run {{{point}}}" if point else source
        worst = max(worst, check_config(run.config, budget, where=where))
    return worst


def _check_locks_mode(config: Any, prefix: str) -> None:
    """A ``mode = "locks"`` run is random schedules: bound its instance and its work."""
    lk = config.locks
    steps = instance_steps(lk.guests, lk.host_threads, lk.ops, lk.oom_tasks)
    if steps > MAX_LOCK_STEPS:
        oom = f" + locks.oom_tasks={lk.oom_tasks:,}" if lk.oom_tasks else ""
        raise UserError(
            f"{prefix}locks.guests={lk.guests:,} + locks.host_threads={lk.host_threads:,}{oom} "
            f"x locks.ops={lk.ops:,}: {steps:,} lock steps, over the {MAX_LOCK_STEPS:,} an "
            "instance may have"
        )
    if lk.trials * steps > MAX_TRIAL_STEPS:
        raise UserError(
            f"{prefix}locks.trials={lk.trials:,} x {steps:,} steps per schedule: over the "
            f"bound of {MAX_TRIAL_STEPS:,} scheduler steps"
        )


# ---- sweep size --------------------------------------------------------------------------

MAX_RUNS = 1_000_000  # default of --max-runs
MAX_RUNS_OPTION = "--max-runs"


def check_run_count(count: int, limit: int | None, where: str, detail: str = "") -> None:
    """Refuse a sweep of more than ``limit`` runs (None: MAX_RUNS)."""
    limit = MAX_RUNS if limit is None else limit
    if count > limit:
        why = f" ({detail})" if detail else ""
        raise UserError(
            f"{where}: {count:,} runs{why}, over the limit of {limit:,} ({MAX_RUNS_OPTION})"
        )


# ---- the deadlock explorer ---------------------------------------------------------------

MAX_LOCK_STEPS = 200_000  # steps of all threads' programs together: the instance's size
MAX_TRIAL_STEPS = 100_000_000  # --trials x steps per schedule: ~2 us each, minutes at most
STATE_BYTES = 600  # a memoized LockState (tuples, dict entry, counts) for a few threads
STATE_BYTES_PER_THREAD = 120  # ... and per thread on top
MAX_STATES = 20_000_000  # --max-states ceiling whatever the budget: ~15 us each, minutes


def check_deadlock(
    guests: int,
    host_threads: int,
    ops: int,
    *,
    trials: int | None,
    max_states: int,
    budget: int,
    oom_tasks: int = 0,
) -> None:
    """Refuse a `deadlock` instance, a trial count or a --max-states that cannot finish or
    fit, before the instance is built."""
    threads = guests + host_threads + oom_tasks
    steps = instance_steps(guests, host_threads, ops, oom_tasks)
    if steps > MAX_LOCK_STEPS:
        oom = f" + --oom-tasks {oom_tasks:,}" if oom_tasks else ""
        raise UserError(
            f"--guests {guests:,} + --host-threads {host_threads:,}{oom} x --ops {ops:,}: "
            f"{steps:,} lock steps, over the {MAX_LOCK_STEPS:,} an instance may have"
        )
    if trials is not None:
        if trials * steps > MAX_TRIAL_STEPS:
            raise UserError(
                f"--trials {trials:,} x {steps:,} steps per schedule = {trials * steps:,} "
                f"scheduler steps, over the bound of {MAX_TRIAL_STEPS:,}; lower --trials"
            )
        return
    per_state = STATE_BYTES + STATE_BYTES_PER_THREAD * threads
    ceiling = min(MAX_STATES, budget // per_state)
    if max_states > ceiling:
        raise UserError(
            f"--max-states {max_states:,}: the memo could need "
            f"~{human_bytes(max_states * per_state)}, over the ceiling of {ceiling:,} states "
            f"(memory budget {human_bytes(budget)}); lower --max-states or use --trials N"
        )
    # Running threads one after another, whole ops at a time, reaches every vector of
    # completed-op counts with no lock held: at least (ops + 1) ** threads distinct states.
    if threads * math.log(ops + 1) > math.log(max_states):
        lower = f"(--ops {ops:,} + 1) ^ {threads:,} threads"
        oom = f", --oom-tasks {oom_tasks:,}" if oom_tasks else ""
        raise UserError(
            f"--guests {guests:,}, --host-threads {host_threads:,}{oom}, --ops {ops:,}: at "
            f"least {lower} distinct states, over --max-states {max_states:,}; use --trials N"
        )

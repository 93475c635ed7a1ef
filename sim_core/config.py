"""Simulation configuration: frozen dataclasses, validation that names the field, dotted overrides.

A config starts as a plain nested dict (from TOML, JSON or code), is patched with dotted
overrides (``host.mem_mib=4096``, ``vms.count=4``, ``vms.workload=db``, ``vms.1.mem_mib=512``)
and is then resolved into a :class:`SimConfig`. ``vms`` is a list of per-VM tables; a
``vms.<field>`` override applies to every VM, ``vms.<i>.<field>`` to one, and ``vms.count``
grows the list (copying the last VM) or shrinks it.

Units: memory in MiB, time in ticks of ``tick_ms`` simulated milliseconds, rates per
simulated second unless a name says otherwise.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the field."""


@dataclass(frozen=True)
class VMConfig:
    """One guest: its memory, swap area, workload, page replacement and balloon driver."""

    name: str = ""
    mem_mib: int = 256  # guest-physical memory
    swap_mib: int = 256  # guest swap area on the virtual disk
    workload: str = "zipf"
    workload_params: dict = field(default_factory=dict)
    guest_policy: str = "esc"
    ws_tau_s: float = 2.0  # `ws` guest policy: working-set window, simulated seconds
    free_low_pct: float = 1.0  # guest reclaim (kswapd) starts under this % of free frames
    free_high_pct: float = 2.0  # ... and stops over this %
    refs_per_tick: int = 20000  # references per tick when every one hits (1 / t_mem)
    fault_ms: float = 0.02  # CPU cost of a guest page fault (trap, page tables, copy), beyond
    #   any disk wait
    balloon_batches_per_tick: int = 8  # virtio-balloon moves 256-page batches
    deflate_on_oom: bool = True
    shares: float = 1.0  # proportional-share weight
    balloon_mib: int = 0  # target of the `static` controller


@dataclass(frozen=True)
class HostConfig:
    """Physical host memory, its reserve and watermarks, and its blind swapping."""

    mem_mib: int | None = None  # derived from overcommit when only that is given
    overcommit: float | None = None  # sum of guest memory / memory available to guests
    reserve_mib: int = 64  # host kernel and hypervisor, never available to guests
    low_watermark_pct: float = 2.0  # host swapping starts under this % free ...
    high_watermark_pct: float = 4.0  # ... and stops over this %
    swap_policy: str = "random"  # blind victim choice: random (ESX) or clock (accessed bits)
    swap_mib: int = 1 << 20  # host swap capacity
    discard_clean: bool = False  # VSwapper: drop pages that mirror unchanged disk blocks
    pin_guest_swap: bool = False  # keep a thrashing guest's swap file blocks in host memory
    pin_fault_rate: float = 50.0  # guest faults/s over which its swap blocks are pinned
    io_buffer_kib: int = 4  # host memory held per request in the disk queue (a page being
    #   written stays in memory until the disk has it, so reclaim frees memory only as
    #   fast as the disk writes)


@dataclass(frozen=True)
class DiskConfig:
    """The one disk shared by guest I/O and host swap: a FIFO queue with finite IOPS."""

    iops: float = 5000.0
    latency_ms: float = 0.2  # service time of a request that finds the queue empty


@dataclass(frozen=True)
class HypervisorConfig:
    """The hypervisor's balloon policy and its parameters."""

    policy: str = "none"
    period: int = 10  # ticks between controller decisions
    lock_order: str = "natural"  # balloon lock protocol: natural | hostmem_first
    lock_contention: float = 0.0  # probability per tick that a host reclaim thread runs a
    #   callback into a guest that is ballooning at the same time (0 disables the lock model)
    tax_rate: float = 0.75  # Waldspurger's idle memory tax tau
    sample_pages: int = 100  # pages sampled per VM per period to estimate the active fraction
    ws_headroom_pct: float = 20.0  # `ws` keeps this much above the estimated working set
    pff_upper: float = 50.0  # `pff`: guest faults/s above which the balloon deflates
    pff_lower: float = 5.0  # `pff`: ... below which it inflates
    pff_step_pct: float = 5.0  # `pff`: step as % of guest memory
    mom_pressure_threshold: float = 0.20
    mom_pressure_critical: float = 0.05
    mom_min_guest_free_pct: float = 0.20
    mom_max_balloon_change_pct: float = 0.05
    mom_min_balloon_change_pct: float = 0.0025
    mom_grow_pct: float = 0.05


@dataclass(frozen=True)
class EconomicsConfig:
    """Prices and SLA. ~$0.005 per GiB-hour is the memory share of a public-cloud
    general-purpose instance; the host's cost per GiB-hour covers hardware, power and
    space. SLA credits follow public-cloud compute SLAs (e.g. EC2: 10% of the bill under
    99.99% availability, 30% under 99%, 100% under 95%), with availability read as a VM's
    throughput relative to its native throughput."""

    price_per_gib_hour: float = 0.005  # revenue per configured guest GiB-hour
    host_cost_per_gib_hour: float = 0.003  # cost of a host GiB-hour
    sla_threshold: float = 0.9  # a VM under this fraction of native throughput violates ...
    sla_credit_fraction: float = 0.10  # ... and this share of its revenue is credited back
    sla_threshold_2: float = 0.75  # deeper tier
    sla_credit_fraction_2: float = 0.30
    sla_threshold_3: float = 0.5  # deepest tier
    sla_credit_fraction_3: float = 1.0


@dataclass(frozen=True)
class ReplayConfig:
    """``mode = "replay"``: VM 0's reference stream through one cache, no host."""

    policy: str = "lru"
    cache_mib: float = 64.0
    references: int = 1_000_000


@dataclass(frozen=True)
class LocksConfig:
    """``mode = "locks"``: random schedules of the balloon lock protocol (order from
    ``hypervisor.lock_order``)."""

    guests: int = 1  # guest threads ballooning at once
    host_threads: int = 1  # host reclaim threads calling back into guests
    ops: int = 1  # operations per thread, back to back
    trials: int = 1000  # random schedules


MODES = ("host", "replay", "locks")


@dataclass(frozen=True)
class SimConfig:
    """One run: the full host simulation (``mode = "host"``), a trace replay of one
    workload through one cache (``"replay"``), or the lock protocol alone (``"locks"``)."""

    mode: str = "host"
    ticks: int = 200
    seed: int = 0
    tick_ms: float = 100.0
    page_kib: int = 4
    warm_start: bool = True  # start with each guest's hottest pages resident
    host: HostConfig = field(default_factory=HostConfig)
    disk: DiskConfig = field(default_factory=DiskConfig)
    hypervisor: HypervisorConfig = field(default_factory=HypervisorConfig)
    economics: EconomicsConfig = field(default_factory=EconomicsConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    locks: LocksConfig = field(default_factory=LocksConfig)
    vms: tuple[VMConfig, ...] = field(default_factory=lambda: (VMConfig(name="vm0"),))

    # ---- derived quantities -------------------------------------------------------------
    def pages(self, mib: float) -> int:
        """MiB -> pages of ``page_kib``."""
        return int(round(mib * 1024 / self.page_kib))

    @property
    def host_mem_mib(self) -> int:
        assert self.host.mem_mib is not None  # resolved by build_config
        return self.host.mem_mib

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config as plain data (JSON-able)."""
        return dataclasses.asdict(self) | {"vms": [dataclasses.asdict(v) for v in self.vms]}

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the basis of run ids."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def flat(self) -> dict[str, Any]:
        """Config columns with dotted names for the summary row. Per-VM fields appear as
        ``vms.<field>`` when every VM agrees, else as None (the full list is in to_json)."""
        out: dict[str, Any] = {}
        for name in _TOP_SCALARS:
            out[name] = getattr(self, name)
        for section in _SECTIONS:
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                out[f"{section}.{key}"] = value
        out["vms.count"] = len(self.vms)
        for f in fields(VMConfig):
            if f.name == "name":
                continue
            values = [getattr(v, f.name) for v in self.vms]
            if f.name == "workload_params":
                values = [json.dumps(v, sort_keys=True) for v in values]
            out[f"vms.{f.name}"] = values[0] if all(v == values[0] for v in values) else None
        return out


_SECTIONS: dict[str, type] = {
    "host": HostConfig,
    "disk": DiskConfig,
    "hypervisor": HypervisorConfig,
    "economics": EconomicsConfig,
    "replay": ReplayConfig,
    "locks": LocksConfig,
}
_TOP_SCALARS = ("mode", "ticks", "seed", "tick_ms", "page_kib", "warm_start")


def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f for f in fields(cls)}


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{key}: unknown config key{hint}")


def _coerce(path: str, value: Any, type_name: str) -> Any:
    """Check one scalar against the declared type of its field, converting int -> float."""
    if type_name in ("dict",):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: must be a table, got {value!r}")
        return dict(value)
    if "bool" in type_name:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{path}: must be true or false, got {value!r}")
    if "None" in type_name and value is None:
        return None
    if "int" in type_name and "float" not in type_name:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except ValueError:
            raise ConfigError(f"{path}: must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        return int(as_float)
    if "float" in type_name:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{path}: must be a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{path}: must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{path}: must be finite, got {value!r}")
        return number
    if "str" in type_name:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {value!r}")
        return value
    return value


def _build_section(cls: type, raw: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix}: must be a table, got {raw!r}")
    known = _field_types(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in known:
            raise _unknown(f"{prefix}.{key}", list(known))
        f = known[key]
        kwargs[key] = _coerce(f"{prefix}.{key}", value, str(f.type))
    return cls(**kwargs)


def _require(cond: bool, path: str, why: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{path}: {why}, got {value!r}")


def _validate(cfg: SimConfig) -> None:
    from sim_core.controllers import CONTROLLERS
    from sim_core.policies import GUEST_POLICIES
    from sim_core.workloads import WORKLOADS, check_workload_params

    _require(cfg.mode in MODES, "mode", f"must be one of {', '.join(MODES)}", cfg.mode)
    _require(cfg.ticks >= 1, "ticks", "must be >= 1", cfg.ticks)
    r = cfg.replay
    _require(
        r.policy in GUEST_POLICIES,
        "replay.policy",
        f"must be one of {', '.join(GUEST_POLICIES)}",
        r.policy,
    )
    _require(r.cache_mib > 0, "replay.cache_mib", "must be > 0", r.cache_mib)
    _require(r.references >= 1, "replay.references", "must be >= 1", r.references)
    lk = cfg.locks
    _require(lk.guests >= 1, "locks.guests", "must be >= 1", lk.guests)
    _require(lk.host_threads >= 0, "locks.host_threads", "must be >= 0", lk.host_threads)
    _require(lk.ops >= 1, "locks.ops", "must be >= 1", lk.ops)
    _require(lk.trials >= 1, "locks.trials", "must be >= 1", lk.trials)
    _require(cfg.tick_ms > 0, "tick_ms", "must be > 0", cfg.tick_ms)
    _require(cfg.page_kib in (4, 8, 16, 64), "page_kib", "must be 4, 8, 16 or 64", cfg.page_kib)
    _require(cfg.seed >= 0, "seed", "must be >= 0", cfg.seed)
    _require(len(cfg.vms) >= 1, "vms.count", "must be >= 1", len(cfg.vms))
    for i, vm in enumerate(cfg.vms):
        p = f"vms[{i}]"
        _require(vm.mem_mib >= 1, f"{p}.mem_mib", "must be >= 1", vm.mem_mib)
        _require(vm.swap_mib >= 0, f"{p}.swap_mib", "must be >= 0", vm.swap_mib)
        _require(
            vm.workload in WORKLOADS,
            f"{p}.workload",
            f"must be one of {', '.join(sorted(WORKLOADS))}",
            vm.workload,
        )
        _require(
            vm.guest_policy in GUEST_POLICIES and vm.guest_policy != "opt",
            f"{p}.guest_policy",
            "must be one of "
            + ", ".join(sorted(n for n in GUEST_POLICIES if n != "opt"))
            + " (opt needs the future: replay only)",
            vm.guest_policy,
        )
        _require(
            0 <= vm.free_low_pct < vm.free_high_pct < 50,
            f"{p}.free_low_pct",
            "needs 0 <= free_low_pct < free_high_pct < 50",
            vm.free_low_pct,
        )
        _require(vm.refs_per_tick >= 1, f"{p}.refs_per_tick", "must be >= 1", vm.refs_per_tick)
        _require(vm.fault_ms >= 0, f"{p}.fault_ms", "must be >= 0", vm.fault_ms)
        _require(vm.ws_tau_s > 0, f"{p}.ws_tau_s", "must be > 0", vm.ws_tau_s)
        _require(
            vm.balloon_batches_per_tick >= 1,
            f"{p}.balloon_batches_per_tick",
            "must be >= 1",
            vm.balloon_batches_per_tick,
        )
        _require(vm.shares > 0, f"{p}.shares", "must be > 0", vm.shares)
        _require(
            0 <= vm.balloon_mib < vm.mem_mib,
            f"{p}.balloon_mib",
            "must be in [0, mem_mib)",
            vm.balloon_mib,
        )
        check_workload_params(vm.workload, vm.workload_params, f"{p}.workload_params")
    h = cfg.host
    _require(h.mem_mib is not None and h.mem_mib > 0, "host.mem_mib", "must be > 0", h.mem_mib)
    _require(h.reserve_mib >= 0, "host.reserve_mib", "must be >= 0", h.reserve_mib)
    _require(
        h.mem_mib is None or h.reserve_mib < h.mem_mib,
        "host.reserve_mib",
        "must be smaller than host.mem_mib",
        h.reserve_mib,
    )
    _require(
        0 <= h.low_watermark_pct < h.high_watermark_pct < 100,
        "host.low_watermark_pct",
        "needs 0 <= low < high_watermark_pct < 100",
        h.low_watermark_pct,
    )
    _require(
        h.swap_policy in ("random", "clock"),
        "host.swap_policy",
        "must be random or clock",
        h.swap_policy,
    )
    _require(h.swap_mib >= 0, "host.swap_mib", "must be >= 0", h.swap_mib)
    _require(h.pin_fault_rate >= 0, "host.pin_fault_rate", "must be >= 0", h.pin_fault_rate)
    _require(h.io_buffer_kib >= 0, "host.io_buffer_kib", "must be >= 0", h.io_buffer_kib)
    _require(cfg.disk.iops > 0, "disk.iops", "must be > 0", cfg.disk.iops)
    _require(cfg.disk.latency_ms >= 0, "disk.latency_ms", "must be >= 0", cfg.disk.latency_ms)
    hv = cfg.hypervisor
    _require(
        hv.policy in CONTROLLERS,
        "hypervisor.policy",
        f"must be one of {', '.join(sorted(CONTROLLERS))}",
        hv.policy,
    )
    _require(hv.period >= 1, "hypervisor.period", "must be >= 1", hv.period)
    _require(
        hv.lock_order in ("natural", "hostmem_first"),
        "hypervisor.lock_order",
        "must be natural or hostmem_first",
        hv.lock_order,
    )
    _require(
        0 <= hv.lock_contention <= 1,
        "hypervisor.lock_contention",
        "must be in [0, 1]",
        hv.lock_contention,
    )
    _require(0 <= hv.tax_rate < 1, "hypervisor.tax_rate", "must be in [0, 1)", hv.tax_rate)
    _require(hv.sample_pages >= 1, "hypervisor.sample_pages", "must be >= 1", hv.sample_pages)
    _require(
        hv.pff_lower < hv.pff_upper, "hypervisor.pff_lower", "must be < pff_upper", hv.pff_lower
    )
    e = cfg.economics
    _require(
        0 <= e.sla_threshold <= 1, "economics.sla_threshold", "must be in [0, 1]", e.sla_threshold
    )
    _require(
        0 <= e.sla_credit_fraction <= 1,
        "economics.sla_credit_fraction",
        "must be in [0, 1]",
        e.sla_credit_fraction,
    )


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Apply one dotted override to a raw config dict, in place."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{key}: malformed key")
    if parts[0] == "vms":
        vms = raw.setdefault("vms", [{}])
        if isinstance(vms, Mapping):  # a single [vms] table: one template VM
            vms = raw["vms"] = [dict(vms)]
        if not isinstance(vms, list) or not all(isinstance(v, Mapping) for v in vms):
            raise ConfigError("vms: must be a list of [[vms]] tables")
        if len(parts) == 1:
            raise ConfigError("vms: give a field, as in vms.mem_mib or vms.count")
        if parts[1] == "count":
            count = _coerce("vms.count", value, "int")
            if count < 1:
                raise ConfigError(f"vms.count: must be >= 1, got {value!r}")
            template = vms[-1] if vms else {}
            raw["vms"] = [dict(v) for v in vms[:count]] + [
                copy.deepcopy(dict(template)) for _ in range(count - len(vms))
            ]
            for i, vm in enumerate(raw["vms"]):
                if i >= len(vms) and "name" in vm:
                    vm["name"] = f"vm{i}"
            return
        if parts[1].isdigit():
            index = int(parts[1])
            if index >= len(vms):
                raise ConfigError(f"{key}: there are only {len(vms)} VMs")
            targets, rest = [vms[index]], parts[2:]
        else:
            targets, rest = vms, parts[1:]
        if not rest:
            raise ConfigError(f"{key}: give a VM field")
        for vm in targets:
            _set_path(vm, rest, value, key)
        return
    _set_path(raw, parts, value, key)


def _set_path(node: dict, parts: list[str], value: Any, key: str) -> None:
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: '{part}' is not a table")
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted overrides applied (``vms.count`` first)."""
    out = copy.deepcopy(dict(raw))
    if isinstance(out.get("vms"), list):
        out["vms"] = [dict(v) for v in out["vms"]]
    ordered = sorted(overrides.items(), key=lambda kv: kv[0] != "vms.count")
    for key, value in ordered:
        set_dotted(out, key, value)
    return out


def build_config(raw: Mapping[str, Any] | None = None, **overrides: Any) -> SimConfig:
    """Resolve a raw nested dict (plus dotted overrides, ``__`` for ``.``) into a SimConfig."""
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    data = apply_overrides(raw or {}, dotted)
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> SimConfig:
    """Build and validate a SimConfig from a nested dict; errors name the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: must be a table, got {data!r}")
    known = list(_TOP_SCALARS) + list(_SECTIONS) + ["vms"]
    top = _field_types(SimConfig)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TOP_SCALARS:
            kwargs[key] = _coerce(key, value, str(top[key].type))
        elif key in _SECTIONS:
            kwargs[key] = _build_section(_SECTIONS[key], value, key)
        elif key == "vms":
            vms_raw = [value] if isinstance(value, Mapping) else value
            if not isinstance(vms_raw, list) or not vms_raw:
                raise ConfigError("vms: must be a non-empty list of [[vms]] tables")
            vms = []
            for i, vm_raw in enumerate(vms_raw):
                vm = _build_section(VMConfig, vm_raw, f"vms[{i}]")
                if not vm.name:
                    vm = dataclasses.replace(vm, name=f"vm{i}")
                vms.append(vm)
            kwargs["vms"] = tuple(vms)
        else:
            raise _unknown(key, known)
    cfg = SimConfig(**kwargs)
    cfg = _resolve_host_memory(cfg)
    _validate(cfg)
    return cfg


def _resolve_host_memory(cfg: SimConfig) -> SimConfig:
    """Derive the pair (host.mem_mib, host.overcommit). When overcommit is given it wins:
    host.mem_mib = ceil(sum of guest memory / overcommit) + reserve. With only mem_mib,
    overcommit = sum of guest memory / (mem_mib - reserve). With neither, overcommit 1.0."""
    h = cfg.host
    guest_total = sum(v.mem_mib for v in cfg.vms)
    if h.overcommit is not None or h.mem_mib is None:
        ratio = 1.0 if h.overcommit is None else h.overcommit
        _require(ratio > 0, "host.overcommit", "must be > 0", ratio)
        mem = int(math.ceil(guest_total / ratio)) + h.reserve_mib
        if h.mem_mib is not None and abs(h.mem_mib - mem) <= 1:
            mem = h.mem_mib  # a resolved config read back: the pair already agrees
        return dataclasses.replace(cfg, host=dataclasses.replace(h, mem_mib=mem, overcommit=ratio))
    available = h.mem_mib - h.reserve_mib
    ratio = guest_total / available if available > 0 else math.inf
    return dataclasses.replace(cfg, host=dataclasses.replace(h, overcommit=round(ratio, 6)))

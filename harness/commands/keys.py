"""`balloonlab keys` and `balloonlab columns`: every config key, workload parameter and
output column with its unit, default, allowed values and one-line doc.

Nothing here is written by hand: config keys come from the ``knob`` metadata of the
dataclasses in ``sim_core.config``, workload parameters from the ``param`` metadata of each
workload's ``Params`` dataclass, names of controllers, policies and workloads from their
registries, and columns from ``sim_core.columns``. A new field shows up here by itself.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness.cli import app
from harness.errors import UserError

WORKLOAD_PARAMS = "vms.workload_params"
CONTROLLER_PARAMS = "hypervisor.params"


def _type_name(f: dataclasses.Field) -> str:
    """``int | None`` -> ``int or none``; the annotations are strings (PEP 563)."""
    text = str(f.type).replace("typing.", "")
    if text.startswith("tuple"):
        return "list"
    return " or ".join(part.strip().replace("None", "none") for part in text.split("|"))


def _first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring, on one line."""
    if not doc:
        return ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    head, sep, _ = paragraph.partition(". ")
    return head + "." if sep else paragraph


def _registry_choices() -> dict[str, tuple[str, ...]]:
    """Keys whose allowed values are a registry rather than a fixed ``choices`` tuple."""
    from sim_core.controllers import CONTROLLERS
    from sim_core.policies import GUEST_POLICIES
    from sim_core.workloads import WORKLOADS

    guest = tuple(n for n, p in GUEST_POLICIES.items() if not p.replay_only)
    return {
        "vms.workload": tuple(WORKLOADS),
        "vms.guest_policy": guest,
        "hypervisor.policy": tuple(CONTROLLERS),
        "replay.policy": tuple(GUEST_POLICIES),
    }


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        return value if not dataclasses.is_dataclass(value) else None
    return None


def _section_classes() -> dict[str, type]:
    """SimConfig's fields whose default is a section dataclass (host, disk, ...)."""
    from sim_core.config import SimConfig

    out: dict[str, type] = {}
    for f in dataclasses.fields(SimConfig):
        factory = f.default_factory  # type: ignore[misc]
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            out[f.name] = factory
    return out


def _entry(key: str, f: dataclasses.Field, choices: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    meta = f.metadata
    allowed = meta.get("choices") or choices.get(key)
    return {
        "key": key,
        "type": _type_name(f),
        "unit": meta.get("unit", ""),
        "default": _default_of(f),
        "choices": list(allowed) if allowed else None,
        "doc": meta.get("doc", ""),
        "source": meta.get("source", ""),
    }


def config_keys() -> list[dict[str, Any]]:
    """Every settable config key (dotted, as in ``--set`` and a spec's ``[base]``), from
    the dataclass fields and their ``knob`` metadata, in declaration order."""
    from sim_core.config import DEVICE_PRESETS, SimConfig, VMConfig

    choices = _registry_choices()
    sections = _section_classes()
    out: list[dict[str, Any]] = []
    for f in dataclasses.fields(SimConfig):
        if f.name in sections or f.name == "vms":
            continue
        out.append(_entry(f.name, f, choices))
    for section, cls in sections.items():
        for f in dataclasses.fields(cls):
            entry = _entry(f"{section}.{f.name}", f, choices)
            if section == "disk" and any(f.name in p for p in DEVICE_PRESETS.values()):
                # None means "from disk.preset": show what each preset gives.
                entry["default"] = None
                entry["preset_defaults"] = {
                    name: preset[f.name] for name, preset in DEVICE_PRESETS.items()
                }
            out.append(entry)
    out.append(
        {
            "key": "vms.count",
            "type": "int",
            "unit": "VMs",
            "default": 1,
            "choices": None,
            "doc": "number of guests: grows the list by copying the last VM, or shrinks it",
            "source": "",
        }
    )
    for f in dataclasses.fields(VMConfig):
        out.append(_entry(f"vms.{f.name}", f, choices))
    return out


def _range(meta: dict[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is None and hi is None:
        return ""
    left = "(" if meta.get("lo_open") else "["
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def workload_params() -> list[dict[str, Any]]:
    """Every parameter of every registered workload (``vms.workload_params.<name>``), from
    the ``param`` metadata of its ``Params`` dataclass."""
    from sim_core.workloads import WORKLOADS

    return _param_rows(WORKLOADS, WORKLOAD_PARAMS, "workload")


def controller_params() -> list[dict[str, Any]]:
    """Every parameter of every registered controller (``hypervisor.params.<name>``)."""
    from sim_core.controllers import CONTROLLERS

    return _param_rows(CONTROLLERS, CONTROLLER_PARAMS, "controller")


def _param_rows(classes: dict[str, type], prefix: str, owner: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, cls in classes.items():
        params = getattr(cls, "Params", None)
        if params is None or not dataclasses.is_dataclass(params):
            continue
        for f in dataclasses.fields(params):
            meta = dict(f.metadata)
            default: Any = _default_of(f)
            fraction = meta.get("mem_fraction")
            if default is None and fraction is not None:
                default = f"{fraction} x vms.mem_mib"
            unit = meta.get("unit") or ("MiB" if f.name.endswith("_mib") else "")
            out.append(
                {
                    "key": f"{prefix}.{f.name}",
                    owner: name,
                    "type": _type_name(f),
                    "unit": unit,
                    "default": default,
                    "choices": list(meta["choices"]) if meta.get("choices") else None,
                    "range": _range(meta),
                    "doc": meta.get("doc", ""),
                }
            )
    return out


def registry(kind: str) -> list[dict[str, str]]:
    """Names and one-line summaries of the workloads, controllers or guest policies."""
    if kind == "workloads":
        from sim_core.workloads import WORKLOADS

        return [{"name": n, "summary": _first_sentence(c.__doc__)} for n, c in WORKLOADS.items()]
    if kind == "controllers":
        from sim_core.controllers import CONTROLLERS

        return [{"name": n, "summary": _first_sentence(c.__doc__)} for n, c in CONTROLLERS.items()]
    if kind == "policies":
        from sim_core.policies import GUEST_POLICIES

        return [
            {"name": n, "summary": p.summary + (" (replay only)" if p.replay_only else "")}
            for n, p in GUEST_POLICIES.items()
        ]
    raise ValueError(f"unknown registry {kind!r}")


# Columns the store adds to what a run returns (store/parquet.py: summary_row, write_run).
STORE_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "runs": [
        ("ray_node_id", "", "Ray node that ran the run (null off Ray; added by the store)"),
        ("worker_host", "", "host name of the worker that ran the run (added by the store)"),
    ],
    "ticks": [
        ("sweep", "", "the sweep the run belongs to (added by the store)"),
        ("run_id", "", "the run the row belongs to (added by the store)"),
    ],
}


def columns() -> list[dict[str, str]]:
    """Every summary and per-tick column a run writes, from ``sim_core.columns``, plus the
    few the store adds. Config columns (dotted) are the keys: see ``config_keys``."""
    from sim_core.columns import SUMMARY_COLUMNS, TICK_COLUMNS

    out = []
    for table, catalogue in (("runs", SUMMARY_COLUMNS), ("ticks", TICK_COLUMNS)):
        rows = [(c.name, c.unit, c.doc) for c in catalogue.values()]
        known = {name for name, _, _ in rows}
        rows += [r for r in STORE_COLUMNS[table] if r[0] not in known]
        for name, unit, doc in rows:
            out.append({"table": table, "column": name, "unit": unit, "doc": doc})
    return out


def _matches(key: str, prefix: str) -> bool:
    """``host`` matches ``host.mem_mib``; ``vms.mem`` matches ``vms.mem_mib``."""
    return key == prefix or key.startswith(prefix)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _print(rows: list[dict[str, Any]], cols: list[str]) -> None:
    table = Table()
    for c in cols:
        # Keys and names stay whole (a script or a reader copies them); prose wraps.
        whole = c in ("key", "name", "column", "table", "workload")
        table.add_column(
            c, overflow="fold", no_wrap=whole, min_width=28 if c in ("doc", "summary") else None
        )
    for row in rows:
        table.add_row(*(_cell(row, c) for c in cols))
    console = Console()
    if not console.is_terminal:  # a file or a pipe: no terminal width to respect
        console = Console(width=160)
    console.print(table)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if column == "choices" and value:
        return ", ".join(value)
    if column == "default" and "preset_defaults" in row:
        return "from disk.preset: " + ", ".join(
            f"{k} {v}" for k, v in row["preset_defaults"].items()
        )
    return _show(value)


@app.command("keys")
def keys_command(
    prefix: str | None = typer.Argument(
        None, help="Only keys starting with this, e.g. host, disk., vms.workload_params."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
    workloads: bool = typer.Option(False, "--workloads", help="List the workloads instead."),
    controllers: bool = typer.Option(
        False, "--controllers", help="List the balloon controllers (hypervisor.policy) instead."
    ),
    policies: bool = typer.Option(
        False, "--policies", help="List the guest page replacement policies instead."
    ),
) -> None:
    """Every config key with its unit, default, allowed values and a one-line doc.

    Keys are dotted as in `--set`, `--config` files and a sweep's [base]; `vms.<field>`
    sets every VM, `vms.<i>.<field>` one. `keys vms.workload_params` lists the parameters
    of every workload, `keys hypervisor.params` those of every controller. Generated from
    the config dataclasses: nothing else documents a key.

    Example: balloonlab keys host --json
    """
    lists = [name for name, on in (("workloads", workloads), ("controllers", controllers),
                                   ("policies", policies)) if on]  # fmt: skip
    if len(lists) > 1:
        raise UserError("give at most one of --workloads, --controllers, --policies")
    if lists:
        if prefix is not None:
            raise UserError(f"--{lists[0]} lists names: drop the PREFIX {prefix!r}")
        rows: list[dict[str, Any]] = registry(lists[0])
        if json_out:
            typer.echo(json.dumps(rows, indent=2))
        else:
            _print(rows, ["name", "summary"])
        return
    config_rows = config_keys()
    param_rows = workload_params()
    ctl_rows = controller_params()
    if prefix is None:
        selected_config, selected_params, selected_ctl = config_rows, param_rows, ctl_rows
    else:
        selected_config = [r for r in config_rows if _matches(r["key"], prefix)]
        selected_params = [
            r for r in param_rows if _matches(r["key"], prefix) or prefix == WORKLOAD_PARAMS
        ]
        selected_ctl = [
            r for r in ctl_rows if _matches(r["key"], prefix) or prefix == CONTROLLER_PARAMS
        ]
        if prefix.startswith((WORKLOAD_PARAMS, CONTROLLER_PARAMS)) and prefix not in (
            WORKLOAD_PARAMS, CONTROLLER_PARAMS
        ):  # fmt: skip
            selected_config = []
    if not selected_config and not selected_params and not selected_ctl:
        raise UserError(f"{prefix}: no config key starts with this (see `balloonlab keys`)")
    if json_out:
        rows = selected_config + selected_params + selected_ctl
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if selected_config:
        _print(selected_config, ["key", "type", "unit", "default", "choices", "doc"])
    if selected_params:
        _print(selected_params, ["key", "workload", "type", "default", "range", "doc"])
    if selected_ctl:
        _print(selected_ctl, ["key", "controller", "type", "unit", "default", "range", "doc"])


@app.command("columns")
def columns_command(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Every column a run writes: the `runs` summary row and the `ticks` series, with units.

    Config columns (dotted, such as "host.mem_mib") are the config keys: see `keys`.
    Names: `_per_vm_` marks a mean over VMs, other names are host totals; the unit says
    whether money is $ per run or $ per host-hour.

    Example: balloonlab columns --json
    """
    rows = columns()
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    _print(rows, ["table", "column", "unit", "doc"])

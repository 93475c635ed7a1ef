"""`balloonlab keys` and `balloonlab columns`: generated from the dataclasses, registries and
the column catalogue, so every field, workload parameter and written column is there."""

from __future__ import annotations

import dataclasses
import json

import pytest

import sim_core
from harness.commands import keys
from harness.spec import parse_spec
from sim_core.config import DEVICE_PRESETS, SimConfig, VMConfig
from store import parquet


def _walk(cls: type, prefix: str = "") -> list[str]:
    """Every leaf field of a config dataclass, dotted (sections by their default factory,
    and VMConfig under ``vms.``)."""
    out = []
    for f in dataclasses.fields(cls):
        factory = f.default_factory  # type: ignore[misc]
        if isinstance(factory, type) and dataclasses.is_dataclass(factory):
            out += _walk(factory, f"{prefix}{f.name}.")
        elif f.name == "vms":
            out += _walk(VMConfig, f"{prefix}vms.")
        else:
            out.append(prefix + f.name)
    return out


def test_keys_cover_every_dataclass_field_with_its_metadata(balloonlab_cli):
    code, out, err = balloonlab_cli("keys", "--json")
    assert code == 0, err
    rows = {r["key"]: r for r in json.loads(out)}
    fields = _walk(SimConfig)
    assert len(fields) > 60  # the walk found the sections, not just the top level
    missing = [k for k in fields if k not in rows]
    assert not missing
    assert "vms.count" in rows
    # Metadata comes straight from knob(): unit, doc, default and choices.
    assert rows["host.reserve_mib"]["unit"] == "MiB" and rows["host.reserve_mib"]["default"] == 64
    assert rows["host.cache"]["choices"] == ["none", "writeback"]
    assert rows["host.swap_policy"]["source"].startswith("Waldspurger")
    for key, row in rows.items():
        if key.startswith("vms.workload_params."):
            continue
        assert row["doc"], f"{key} has no doc"
    # Registry choices: the controllers, guest policies (no opt) and workloads.
    assert "mom" in rows["hypervisor.policy"]["choices"]
    assert "opt" not in rows["vms.guest_policy"]["choices"]
    assert "opt" in rows["replay.policy"]["choices"]
    assert "db" in rows["vms.workload"]["choices"]
    # Disk fields left to the preset show what each preset gives.
    assert rows["disk.iops"]["preset_defaults"] == {n: p["iops"] for n, p in DEVICE_PRESETS.items()}


def test_every_key_is_settable_as_shown(balloonlab_cli):
    """Each listed key is accepted as a dotted override (as in [base] or --set) with
    its default value: the listing names keys the config really takes."""
    code, out, _ = balloonlab_cli("keys", "--json")
    rows = [r for r in json.loads(out) if not r["key"].startswith("vms.workload_params.")]
    for row in rows:
        if row["key"] == "seed" or row["default"] is None or isinstance(row["default"], dict):
            continue
        value = row["default"]
        # A controller's parameter is a key of the controller that declares it.
        owner = {"hypervisor.policy": row["controller"]} if row.get("controller") else {}
        sim_core.build_config({}, **owner, **{row["key"]: value})  # raises on an unknown key


def test_keys_cover_every_controller_parameter(balloonlab_cli):
    from sim_core.controllers import CONTROLLERS

    code, out, err = balloonlab_cli("keys", "hypervisor.params", "--json")
    assert code == 0, err
    listed = {(r.get("controller"), r["key"]) for r in json.loads(out)}
    for name, cls in CONTROLLERS.items():
        for f in dataclasses.fields(cls.Params):
            assert (name, f"hypervisor.params.{f.name}") in listed, (name, f.name)
    assert ("mom", "hypervisor.params.pressure_threshold") in listed


def test_keys_cover_every_workload_parameter(balloonlab_cli):
    from sim_core.workloads import WORKLOADS

    code, out, err = balloonlab_cli("keys", "vms.workload_params", "--json")
    assert code == 0, err
    rows = json.loads(out)
    listed = {(r.get("workload"), r["key"]) for r in rows}
    for name, cls in WORKLOADS.items():
        for f in dataclasses.fields(cls.Params):
            assert (name, f"vms.workload_params.{f.name}") in listed, (name, f.name)
    by = {(r.get("workload"), r["key"].rsplit(".", 1)[-1]): r for r in rows if r.get("workload")}
    db_cache = by[("db", "cache_mib")]
    assert db_cache["default"] == "0.45 x vms.mem_mib" and db_cache["unit"] == "MiB"
    assert by[("zipf", "alpha")]["range"] == "[0, 10]"
    # A workload parameter shown is one the config takes.
    sim_core.build_config({}, **{"vms.workload": "zipf", "vms.workload_params.alpha": 1.2})


def test_keys_prefix_and_registries(balloonlab_cli):
    code, out, _ = balloonlab_cli("keys", "disk.", "--json")
    assert code == 0
    assert {r["key"] for r in json.loads(out)} == {
        f"disk.{f.name}" for f in dataclasses.fields(SimConfig().disk)
    }
    code, out, _ = balloonlab_cli("keys", "host")  # human table
    assert code == 0 and "host.overcommit" in out and "reserve_mib" in out
    for flag, registry in (
        ("--controllers", "sim_core.controllers:CONTROLLERS"),
        ("--policies", "sim_core.policies:GUEST_POLICIES"),
        ("--workloads", "sim_core.workloads:WORKLOADS"),
    ):
        module, name = registry.split(":")
        expected = set(getattr(__import__(module, fromlist=[name]), name))
        code, out, _ = balloonlab_cli("keys", flag, "--json")
        assert code == 0
        listed = json.loads(out)
        assert {r["name"] for r in listed} == expected
        assert all(r["summary"] for r in listed)
    code, out, _ = balloonlab_cli("keys", "--workloads", "--json")
    db = next(r for r in json.loads(out) if r["name"] == "db")
    assert "database" in db["summary"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["keys", "nosuchkey"], "nosuchkey"),
        (["keys", "--workloads", "--policies"], "at most one"),
        (["keys", "host", "--controllers"], "PREFIX"),
    ],
)
def test_keys_bad_input_is_one_line(args, needle, balloonlab_cli):
    code, out, err = balloonlab_cli(*args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err


@pytest.mark.parametrize("command", ["keys", "columns"])
def test_help_has_an_example(command, balloonlab_cli):
    code, out, _ = balloonlab_cli(command, "--help")
    assert code == 0 and "Example: balloonlab" in out


def test_columns_cover_every_summary_and_tick_column_the_simulation_writes(
    tmp_path, balloonlab_cli
):
    """Real runs in every mode, stored through the store: every column of the stored files
    that is not a config column is in the catalogue, with its unit field."""
    code, out, err = balloonlab_cli("columns", "--json")
    assert code == 0, err
    catalogue = json.loads(out)
    runs_cols = {r["column"] for r in catalogue if r["table"] == "runs"}
    tick_cols = {r["column"] for r in catalogue if r["table"] == "ticks"}
    assert all("unit" in r and r["doc"] for r in catalogue)
    spec = parse_spec(
        {
            "sweep": {"name": "cols"},
            "base": {"ticks": 3, "vms.count": 2, "vms.mem_mib": 16, "replay.references": 2000,
                     "replay.cache_mib": 1.0, "locks.trials": 10},
            "grid": {"mode": ["host", "replay", "locks"]},
        },
        "test",
    )  # fmt: skip
    from harness.executors import LocalExecutor

    seen_ticks = False
    for done in LocalExecutor().map(spec.runs):
        assert not done.failed, done.summary.column("error")[0].as_py()
        parquet.write_run(tmp_path, done.run, done.summary, done.ticks, host="test")
        config_cols = set(done.run.config.flat())
        stored = parquet.read_table(tmp_path, "runs", "cols")
        missing = set(stored.column_names) - config_cols - runs_cols
        assert not missing, (done.run.config.mode, sorted(missing))
        if done.ticks is not None and done.ticks.num_rows:
            seen_ticks = True
            ticks = parquet.read_table(tmp_path, "ticks", "cols")
            assert not set(ticks.column_names) - tick_cols, sorted(
                set(ticks.column_names) - tick_cols
            )
    assert seen_ticks
    code, out, _ = balloonlab_cli("columns")
    assert code == 0 and "profit_per_host_hour" in out and "$ per host-hour" in out


def test_generated_from_metadata_a_new_field_appears(monkeypatch):
    """One source of truth: a field added to a section shows up without touching keys."""
    from sim_core import config

    @dataclasses.dataclass(frozen=True)
    class Extra:
        knob_x: int = config.knob(7, "widgets", "a new knob")

    @dataclasses.dataclass(frozen=True)
    class Patched(SimConfig):
        extra: Extra = config.knob(unit="", doc="new section", factory=Extra)

    monkeypatch.setattr(config, "SimConfig", Patched)
    rows = {r["key"]: r for r in keys.config_keys()}
    assert rows["extra.knob_x"] == {
        "key": "extra.knob_x",
        "type": "int",
        "unit": "widgets",
        "default": 7,
        "choices": None,
        "doc": "a new knob",
        "source": "",
    }

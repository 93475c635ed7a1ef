"""One config syntax everywhere: a `--config` file takes a sweep's [base] dotted keys, nested
tables, [[vms]] lists, and mixes of them; the spellings resolve to the same config (the
same run id)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import sim_core
from harness.commands.sim import load_config_file
from harness.errors import UserError
from harness.spec import parse_spec, run_id_for

FLAT = """
"vms.count" = 4
"vms.mem_mib" = 64
"vms.workload" = "db"
"host.overcommit" = 1.5
"hypervisor.policy" = "mom"
"vms.workload_params.cache_alpha" = 0.9
ticks = 3
"""

NESTED = """
ticks = 3

[host]
overcommit = 1.5

[hypervisor]
policy = "mom"

[vms]
count = 4
mem_mib = 64
workload = "db"

[vms.workload_params]
cache_alpha = 0.9
"""

# Unquoted dotted keys are TOML tables too.
DOTTED_UNQUOTED = """
ticks = 3
vms.count = 4
vms.mem_mib = 64
vms.workload = "db"
vms.workload_params.cache_alpha = 0.9
host.overcommit = 1.5
hypervisor.policy = "mom"
"""

LIST = """
ticks = 3
"vms.count" = 4

[host]
overcommit = 1.5

[hypervisor]
policy = "mom"

[[vms]]
mem_mib = 64
workload = "db"
workload_params = { cache_alpha = 0.9 }
"""


def _config(tmp_path: Path, text: str, name: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    raw, overrides = load_config_file(path)
    return sim_core.build_config(raw, **overrides)


def test_flat_nested_and_list_files_give_the_same_run_id(tmp_path):
    configs = {
        name: _config(tmp_path, text, name)
        for name, text in (
            ("flat", FLAT),
            ("nested", NESTED),
            ("dotted", DOTTED_UNQUOTED),
            ("list", LIST),
        )
    }
    ids = {name: run_id_for(cfg, 0, 0) for name, cfg in configs.items()}
    assert len(set(ids.values())) == 1, ids
    cfg = configs["flat"]
    assert len(cfg.vms) == 4 and cfg.vms[3].workload == "db"
    assert cfg.vms[0].workload_params == {"cache_alpha": 0.9}
    assert cfg.host.overcommit == 1.5 and cfg.hypervisor.policy == "mom"
    # ... and the same as a sweep whose [base] holds the flat keys.
    import tomllib

    spec = parse_spec({"sweep": {"name": "same"}, "base": tomllib.loads(FLAT)}, "test")
    assert run_id_for(spec.runs[0].config, 0, 0) == ids["flat"]
    # A different value is a different id (the comparison can fail).
    other = _config(tmp_path, FLAT.replace("1.5", "2.0"), "other")
    assert run_id_for(other, 0, 0) != ids["flat"]


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "twice.toml"
    path.write_text('"host.overcommit" = 1.5\n[host]\novercommit = 2.0\n')
    with pytest.raises(UserError, match="host.overcommit: given twice"):
        load_config_file(path)


def test_sim_takes_a_flat_file_and_set_wins(tmp_path, balloonlab_cli):
    path = tmp_path / "flat.toml"
    path.write_text('"vms.count" = 2\n"vms.mem_mib" = 16\nticks = 3\n[host]\novercommit = 1.5\n')
    code, out, err = balloonlab_cli(
        "sim", "--config", str(path), "--set", "host.overcommit=1.25", "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["vms.count"] == 2 and summary["host.overcommit"] == 1.25
    assert summary["ticks"] == 3


def test_an_unknown_key_in_a_file_is_one_line(tmp_path, balloonlab_cli):
    path = tmp_path / "bad.toml"
    path.write_text("[host]\nmem_mb = 4096\n")
    code, out, err = balloonlab_cli("sim", "--config", str(path))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "host.mem_mb" in err

"""Sweep specs: expansion (grid x zip x random x replicates), stable run ids and seeds, and
every kind of bad spec refused with one line naming the file and the key."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import cli
from harness.errors import UserError
from harness.spec import load_spec, run_id_for, seed_for
from harness.sweeps_catalog import resolve, shipped

GRID_ZIP = """
[sweep]
name = "expand"
description = "grid x zip x replicates"
replicates = 2
seed = 7

[base]
ticks = 20
"vms.count" = 2
"vms.mem_mib" = 32

[grid]
"hypervisor.policy" = ["none", "ws"]
"host.overcommit" = [1.0, 1.25, 1.5]

[zip]
"disk.iops" = [1000, 4000]
"vms.guest_policy" = ["esc", "lru"]
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_grid_zip_replicates_expand_to_the_product(tmp_path):
    spec = load_spec(write(tmp_path, GRID_ZIP))
    assert spec.name == "expand"
    assert spec.varying == ["hypervisor.policy", "host.overcommit", "disk.iops", "vms.guest_policy"]
    assert len(spec.runs) == 2 * 3 * 2 * 2

    combos = collections.Counter(
        (
            r.config.hypervisor.policy,
            r.config.host.overcommit,
            r.config.disk.iops,
            r.config.vms[0].guest_policy,
        )
        for r in spec.runs
    )
    # every grid point with every zip pair, each exactly `replicates` times ...
    assert set(combos.values()) == {2}
    assert {(p, o) for p, o, _, _ in combos} == {
        (p, o) for p in ("none", "ws") for o in (1.0, 1.25, 1.5)
    }
    # ... and the zip lists vary together, never crossed
    assert {(iops, gp) for _, _, iops, gp in combos} == {(1000.0, "esc"), (4000.0, "lru")}

    for run in spec.runs:
        assert run.sweep == "expand"
        assert run.config.ticks == 20 and len(run.config.vms) == 2
        assert all(
            vm.mem_mib == 32 and vm.guest_policy == run.point["vms.guest_policy"]
            for vm in run.config.vms
        )
        assert run.config.seed == run.seed
        assert set(run.point) == set(spec.varying)
        assert run.overrides == spec.base | run.point
    assert collections.Counter(r.replicate for r in spec.runs) == {0: 12, 1: 12}
    assert len({r.run_id for r in spec.runs}) == len(spec.runs)
    assert len({r.seed for r in spec.runs}) == len(spec.runs)


def test_unquoted_dotted_keys_mean_the_same(tmp_path):
    quoted = load_spec(write(tmp_path, GRID_ZIP, "a.toml"))
    unquoted_text = (
        GRID_ZIP.replace('"vms.count"', "vms.count")
        .replace('"hypervisor.policy"', "hypervisor.policy")
        .replace('"disk.iops"', "disk.iops")
    )
    unquoted = load_spec(write(tmp_path, unquoted_text, "b.toml"))
    assert [r.run_id for r in quoted.runs] == [r.run_id for r in unquoted.runs]


def test_random_points_are_seeded_and_within_bounds(tmp_path):
    text = """
    [sweep]
    name = "rnd"
    seed = 3
    samples = 6

    [base]
    ticks = 10
    "vms.mem_mib" = 64

    [random]
    "host.overcommit" = {uniform = [1.0, 2.5]}
    "disk.iops" = {loguniform = [100.0, 10000.0]}
    "host.reserve_mib" = {randint = [8, 16]}
    "hypervisor.policy" = {choice = ["none", "mom", "ws"]}
    """
    spec = load_spec(write(tmp_path, text))
    assert len(spec.runs) == 6
    for run in spec.runs:
        p = run.point
        assert 1.0 <= p["host.overcommit"] <= 2.5
        assert 100.0 <= p["disk.iops"] <= 10000.0
        assert isinstance(p["host.reserve_mib"], int) and 8 <= p["host.reserve_mib"] <= 16
        assert p["hypervisor.policy"] in ("none", "mom", "ws")
        assert run.config.host.overcommit == p["host.overcommit"]
    # distinct draws, reproducible from the sweep seed, different under another seed
    assert len({r.point["host.overcommit"] for r in spec.runs}) == 6
    again = load_spec(write(tmp_path, text, "again.toml"))
    assert [r.point for r in again.runs] == [r.point for r in spec.runs]
    other = load_spec(write(tmp_path, text.replace("seed = 3", "seed = 4"), "other.toml"))
    assert [r.point for r in other.runs] != [r.point for r in spec.runs]


def test_run_ids_are_stable_and_follow_the_config(tmp_path):
    ids = [r.run_id for r in load_spec(write(tmp_path, GRID_ZIP)).runs]
    assert ids == [r.run_id for r in load_spec(write(tmp_path, GRID_ZIP, "copy.toml")).runs]
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)

    # the order of keys in [base] does not matter: the resolved config does
    reordered = GRID_ZIP.replace(
        'ticks = 20\n"vms.count" = 2\n"vms.mem_mib" = 32',
        '"vms.mem_mib" = 32\n"vms.count" = 2\nticks = 20',
    )
    assert reordered != GRID_ZIP
    assert ids == [r.run_id for r in load_spec(write(tmp_path, reordered, "r.toml")).runs]

    # a value no grid key touches changes every id
    changed = GRID_ZIP.replace("ticks = 20", 'ticks = 20\n"disk.read_latency_us" = 300.0')
    changed_ids = [r.run_id for r in load_spec(write(tmp_path, changed, "c.toml")).runs]
    assert not set(ids) & set(changed_ids)

    # so does the sweep seed; the description and name do not
    reseeded = GRID_ZIP.replace("seed = 7", "seed = 8")
    assert not set(ids) & {r.run_id for r in load_spec(write(tmp_path, reseeded, "s.toml")).runs}
    renamed = GRID_ZIP.replace('name = "expand"', 'name = "other"').replace("grid x", "x")
    assert ids == [r.run_id for r in load_spec(write(tmp_path, renamed, "n.toml")).runs]


def test_run_id_and_seed_are_sha256_of_their_inputs(tmp_path):
    run = load_spec(write(tmp_path, GRID_ZIP)).runs[5]
    config = run.config.to_dict()
    config.pop("seed")
    canonical = json.dumps(
        {"config": config, "replicate": run.replicate, "sweep_seed": 7},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert run.run_id == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert run_id_for(run.config, run.replicate, 7) == run.run_id
    digest = hashlib.sha256(f"7:{run.run_id}".encode()).digest()
    assert run.seed == seed_for(7, run.run_id) == int.from_bytes(digest[:8], "big") >> 1
    assert 0 <= run.seed < 2**63


def test_ids_do_not_depend_on_python_hash_seed(tmp_path):
    path = write(tmp_path, GRID_ZIP)
    here = [(r.run_id, r.seed) for r in load_spec(path).runs]
    code = (
        "import json, sys; from harness.spec import load_spec; "
        "print(json.dumps([(r.run_id, r.seed) for r in load_spec(sys.argv[1]).runs]))"
    )
    env = os.environ | {"PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert [tuple(x) for x in json.loads(out.stdout)] == here


def test_missing_name_defaults_to_the_file_stem(tmp_path):
    spec = load_spec(write(tmp_path, '[grid]\n"host.overcommit" = [1.0, 2.0]\n', "my-sweep.toml"))
    assert spec.name == "my-sweep" and len(spec.runs) == 2 and spec.replicates == 1


BAD_SPECS = {
    "unknown config key in grid": ('[grid]\n"host.bogus" = [1, 2]\n', "host.bogus"),
    "unknown config key in base": ('[base]\n"vms.colour" = "red"\n', "vms.colour"),
    "unknown section": ("[gird]\nticks = [1]\n", "gird"),
    "unknown sweep key": ('[sweep]\nname = "x"\nreplicas = 2\n', "replicas"),
    "wrong type in grid": ('[grid]\n"host.overcommit" = [1.0, "lots"]\n', "host.overcommit"),
    "wrong type in base": ('[base]\nticks = "many"\n', "ticks"),
    "wrong type in sweep": ('[sweep]\nreplicates = "3"\n', "replicates"),
    "grid value not a list": ('[grid]\n"vms.count" = 3\n', "vms.count"),
    "empty grid": ('[grid]\n"hypervisor.policy" = []\n', "hypervisor.policy"),
    "unequal zip": ('[zip]\n"disk.iops" = [1, 2, 3]\n"vms.mem_mib" = [64, 128]\n', "zip"),
    "bad distribution": (
        '[sweep]\nsamples = 2\n[random]\n"host.overcommit" = {uniform = [2.0, 1.0]}\n',
        "host.overcommit",
    ),
    "random without samples": ('[random]\n"host.overcommit" = {uniform = [1, 2]}\n', "samples"),
    "seed set by hand": ("[base]\nseed = 5\n", "seed"),
    "key given twice": ("[base]\nticks = 5\n[grid]\nticks = [5, 6]\n", "ticks"),
    "bad value of a known key": (
        '[grid]\n"hypervisor.policy" = ["none", "psychic"]\n',
        "hypervisor.policy",
    ),
    "invalid toml": ("[grid\n", "invalid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_spec_is_one_line_naming_file_and_key(case, tmp_path, monkeypatch, capsys):
    text, key = BAD_SPECS[case]
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(UserError) as info:
        load_spec(path)
    assert str(path) in str(info.value) and key in str(info.value)

    # through the real entry point: exit 2, one line on stderr, no traceback
    monkeypatch.setattr(sys, "argv", ["balloonlab", "show", str(path)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and key in lines[0]
    assert "Traceback" not in err


def test_a_bad_spec_stops_the_run_before_anything_runs(tmp_path, monkeypatch, capsys):
    good = write(tmp_path, GRID_ZIP, "good.toml")
    bad = write(tmp_path, '[grid]\n"host.overcommit" = []\n', "bad.toml")
    results = tmp_path / "results"
    argv = [
        "balloonlab",
        "run",
        str(good),
        str(bad),
        "--executor",
        "local",
        "--results",
        str(results),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert "bad.toml" in capsys.readouterr().err
    assert not results.exists()


def test_shipped_smoke_spec_resolves_by_name_and_by_path():
    assert "smoke" in shipped()
    by_name = load_spec(resolve("smoke"))
    by_file = load_spec(resolve(str(resolve("smoke"))))
    assert by_name.name == by_file.name == "smoke"
    assert [r.run_id for r in by_name.runs] == [r.run_id for r in by_file.runs]
    assert 4 <= len(by_name.runs) <= 8
    assert all(r.config.ticks <= 50 for r in by_name.runs)
    with pytest.raises(UserError, match="no shipped sweep"):
        resolve("no_such_sweep")


def test_zip_values_are_validated_together(tmp_path):
    # db-only parameters are valid only beside workload = db: a [zip] row is one point.
    text = """
[sweep]
name = "zipjoint"
[base]
ticks = 5
[zip]
"vms.workload" = ["db", "zipf"]
"vms.workload_params" = [{cache_mib = 10.0}, {alpha = 1.2}]
"""
    spec = load_spec(write(tmp_path, text))
    assert [r.config.vms[0].workload for r in spec.runs] == ["db", "zipf"]
    bad = text.replace("{alpha = 1.2}", "{cache_mib = 10.0}")
    with pytest.raises(UserError, match=r"\[zip\]"):
        load_spec(write(tmp_path, bad, name="bad.toml"))

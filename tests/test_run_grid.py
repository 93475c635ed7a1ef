"""Sweeps without a file: `run --name --grid --set --replicates --seed` stores the same runs
as the equivalent TOML spec, `show` expands it the same way, and `status` counts it from the
spec `run` kept."""

from __future__ import annotations

import json

import pytest

from harness import executors
from store import parquet

TOML = """
[sweep]
name = "{name}"
replicates = 3
seed = 7

[base]
"vms.count" = 2
"vms.mem_mib" = 16
ticks = 4

[grid]
"host.overcommit" = [1, 1.1, 1.2]
"hypervisor.policy" = ["none", "mom"]
"""

GRID = [
    "--grid", "host.overcommit=1,1.1,1.2",
    "--grid", "hypervisor.policy=none,mom",
    "--set", "vms.count=2",
    "--set", "vms.mem_mib=16",
    "--set", "ticks=4",
    "--replicates", "3",
    "--seed", "7",
]  # fmt: skip


@pytest.fixture
def balloonlab(monkeypatch, balloonlab_cli, stand_in):
    monkeypatch.setattr(executors, "_default_run_fn", lambda: stand_in)
    return balloonlab_cli


def _stored_ids(results, sweep):
    return set(parquet.read_table(results, "runs", sweep).column("run_id").to_pylist())


def test_run_grid_stores_the_same_runs_as_the_toml_spec(tmp_path, balloonlab):
    spec = tmp_path / "s.toml"
    spec.write_text(TOML.format(name="study"))
    from_file, from_cli = tmp_path / "file", tmp_path / "cli"
    code, out, err = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(from_file), "--json"
    )
    assert code == 0, err
    code, out, err = balloonlab(
        "run", "--name", "study", *GRID, "--executor", "local", "--results", str(from_cli),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    [report] = json.loads(out)
    assert report["runs"] == report["done"] == 18
    ids = _stored_ids(from_cli, "study")
    assert len(ids) == 18 and ids == _stored_ids(from_file, "study")
    # The kept spec is the TOML a user would write; it parses to the same runs.
    kept = from_cli / "specs" / "study.toml"
    assert '"host.overcommit" = [1, 1.1, 1.2]' in kept.read_text()
    code, out, _ = balloonlab("show", str(kept), "--json")
    assert {r["run_id"] for r in json.loads(out)["rows"]} == ids
    # A different seed is a different sweep (the comparison can fail).
    code, out, _ = balloonlab("show", "--name", "study", *GRID[:-1], "8", "--json")
    assert not {r["run_id"] for r in json.loads(out)["rows"]} & ids


def test_show_grid_matches_the_toml_spec(tmp_path, balloonlab):
    spec = tmp_path / "s.toml"
    spec.write_text(TOML.format(name="study"))
    code, from_file, _ = balloonlab("show", str(spec), "--json")
    assert code == 0
    code, from_cli, err = balloonlab("show", "--name", "study", *GRID, "--json")
    assert code == 0, err
    a, b = json.loads(from_file), json.loads(from_cli)
    assert a["rows"] == b["rows"] and a["varying"] == b["varying"] == [
        "host.overcommit",
        "hypervisor.policy",
    ]
    code, text, _ = balloonlab("show", "--name", "study", *GRID, "--toml")
    assert code == 0 and text.startswith('[sweep]\nname = "study"')


def test_status_counts_a_custom_sweep_from_its_stored_spec(tmp_path, balloonlab):
    results = tmp_path / "results"
    code, _, err = balloonlab(
        "run", "--name", "mine", *GRID, "--executor", "local", "--results", str(results)
    )
    assert code == 0, err
    next((results / "runs" / "sweep=mine").glob("*.parquet")).unlink()
    code, out, _ = balloonlab("status", "--results", str(results), "--json")
    [row] = json.loads(out)
    assert row == {
        "sweep": "mine",
        "runs": 18,
        "done": 17,
        "failed": 0,
        "missing": 1,
        "not_in_spec": 0,
    }
    code, out, _ = balloonlab("status", "--results", str(results))
    assert code == 0 and "-" not in out.split("mine", 1)[1].split("\n")[0]
    # A rerun of the same command runs only the missing one.
    code, out, _ = balloonlab(
        "run", "--name", "mine", *GRID, "--executor", "local", "--results", str(results),
        "--json",
    )  # fmt: skip
    [report] = json.loads(out)
    assert (report["done"], report["skipped"]) == (1, 17)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "--grid", "host.overcommit=1,2"], "--name"),
        (["run", "smoke", "--name", "x", "--grid", "host.overcommit=1,2"], "not both"),
        (["run", "--name", "x", "--grid", "host.overcommit"], "key=a,b"),
        (["run", "--name", "x", "--grid", "host.overcommt=1,2"], "host.overcommt"),
        (["run", "--name", "x", "--set", "vms.count"], "key=value"),
        (["run"], "spec file"),
        (["show", "--name", "x", "--grid", "hypervisor.policy=none,nope"], "nope"),
    ],
)
def test_bad_grid_input_is_one_line(args, needle, balloonlab, tmp_path):
    code, out, err = (
        balloonlab(*args, "--results", str(tmp_path / "r"))
        if args[0] == "run"
        else (balloonlab(*args))
    )
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "r" / "runs").exists()

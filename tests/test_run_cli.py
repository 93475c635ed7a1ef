"""The sweep commands end to end: `run` (JSON report, skip stored runs, retry failed ones,
--fresh), `show`, `sweeps`, `status`, `compact`; then, as subprocesses with the real
simulation: resume after the driver is SIGKILLed, and a sweep joined to a two-node Ray
cluster on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness import executors
from store import parquet

SPEC = """
[sweep]
name = "{name}"
description = "cli test"
seed = 2
replicates = {replicates}

[base]
ticks = {ticks}
"vms.count" = 2
"vms.mem_mib" = {mem}

[grid]
"hypervisor.policy" = ["none", "ws"]
"host.overcommit" = [1.0, 1.5]
"disk.iops" = {iops}
"""


def write_spec(tmp_path: Path, name: str, *, replicates=1, ticks=6, mem=16, iops="[1000.0]"):
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, replicates=replicates, ticks=ticks, mem=mem, iops=iops))
    return path


@pytest.fixture
def balloonlab(monkeypatch, balloonlab_cli, stand_in):
    """The real entry point in-process with the stand-in simulation; returns (exit code,
    stdout, stderr)."""
    monkeypatch.setattr(executors, "_default_run_fn", lambda: stand_in)
    return balloonlab_cli


def test_run_reports_json_and_skips_stored_runs(tmp_path, balloonlab):
    spec = write_spec(tmp_path, "cli", replicates=2)
    results = tmp_path / "results"
    code, out, err = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(results), "--json"
    )
    assert code == 0, err
    [report] = json.loads(out)
    assert {k: report[k] for k in ("sweep", "runs", "done", "skipped", "failed")} == {
        "sweep": "cli",
        "runs": 8,
        "done": 8,
        "skipped": 0,
        "failed": 0,
    }
    assert report["seconds"] >= 0
    assert len(list((results / "runs" / "sweep=cli").glob("*.parquet"))) == 8
    assert len(list((results / "ticks" / "sweep=cli").glob("*.parquet"))) == 8

    code, out, _ = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(results), "--json"
    )
    [again] = json.loads(out)
    assert code == 0 and (again["done"], again["skipped"], again["failed"]) == (0, 8, 0)

    code, out, _ = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(results), "--json", "--fresh"
    )
    [fresh] = json.loads(out)
    assert (fresh["done"], fresh["skipped"]) == (8, 0)
    assert parquet.read_table(results, "runs", "cli").num_rows == 8


def test_failed_runs_exit_1_and_are_retried(tmp_path, balloonlab):
    spec = write_spec(tmp_path, "flaky", iops="[1000.0, 666.0]")  # 666: the stand-in raises
    results = tmp_path / "results"
    args = ("run", str(spec), "--executor", "local", "--results", str(results), "--json")
    code, out, _ = balloonlab(*args)
    [report] = json.loads(out)
    assert code == 1
    assert (report["runs"], report["done"], report["failed"]) == (8, 4, 4)
    errors = parquet.read_table(results, "runs", "flaky").column("error").to_pylist()
    assert sorted(e for e in errors if e) == ["ValueError: injected failure"] * 4

    code, out, _ = balloonlab(*args)
    [again] = json.loads(out)
    assert code == 1
    assert (again["skipped"], again["retried"], again["failed"]) == (4, 4, 4)
    assert parquet.read_table(results, "runs", "flaky").num_rows == 8  # overwritten, not added

    code, out, _ = balloonlab("status", str(spec), "--results", str(results), "--json")
    assert code == 0
    assert json.loads(out) == [
        {"sweep": "flaky", "runs": 8, "done": 4, "failed": 4, "missing": 0, "not_in_spec": 0}
    ]


def test_status_show_sweeps_and_compact(tmp_path, balloonlab):
    spec = write_spec(tmp_path, "st")
    results = tmp_path / "results"
    balloonlab("run", str(spec), "--executor", "local", "--results", str(results), "--json")

    # missing is counted against a given spec ...
    (tmp_path / "v2").mkdir()
    bigger = write_spec(tmp_path / "v2", "st", replicates=3)  # same sweep, more replicates
    code, out, _ = balloonlab("status", str(bigger), "--results", str(results), "--json")
    [row] = json.loads(out)
    assert code == 0 and (row["runs"], row["done"], row["missing"]) == (12, 4, 8)
    # without one, against the spec `run` kept (RESULTS/specs/st.toml) ...
    code, out, _ = balloonlab("status", "--results", str(results), "--json")
    assert json.loads(out) == [
        {"sweep": "st", "runs": 4, "done": 4, "failed": 0, "missing": 0, "not_in_spec": 0}
    ]
    # ... and with no spec anywhere, only stored counts
    (results / "specs" / "st.toml").unlink()
    code, out, _ = balloonlab("status", "--results", str(results), "--json")
    assert json.loads(out) == [
        {"sweep": "st", "runs": None, "done": 4, "failed": 0, "missing": None, "not_in_spec": None}
    ]

    code, out, _ = balloonlab("show", str(spec), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["runs"] == 4 and len(shown["rows"]) == 4
    assert shown["varying"] == ["hypervisor.policy", "host.overcommit", "disk.iops"]
    stored = {p.stem for p in (results / "runs" / "sweep=st").glob("*.parquet")}
    assert {r["run_id"] for r in shown["rows"]} == stored

    code, out, _ = balloonlab("sweeps", "--json")
    assert code == 0 and "smoke" in {s["name"] for s in json.loads(out)}

    before = parquet.read_table(results, "ticks", "st").num_rows
    code, out, _ = balloonlab("compact", "st", "--results", str(results), "--json")
    assert code == 0 and [r["rows"] for r in json.loads(out)] == [4, before]
    assert len(list((results / "runs" / "sweep=st").glob("*.parquet"))) == 1
    code, out, _ = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(results), "--json"
    )
    assert json.loads(out)[0]["skipped"] == 4  # compacted runs still count as stored


@pytest.mark.parametrize(
    "args, needle",
    [
        (["run", "smoke", "--executor", "threads"], "--executor"),
        (["run", "smoke", "--executor", "local", "--address", "auto"], "--address"),
        (["run", "smoke", "--batch-size", "0"], "--batch-size"),
        (["run", "nonexistent_sweep"], "nonexistent_sweep"),
        (["run", "smoke", "--address", "127.0.0.1:1"], "127.0.0.1:1"),  # nobody listens
        (["run", "smoke", "--address", "nonsense"], "nonsense"),
        (["compact", "nope"], "nope"),
        (["status", "--results", "{tmp}/missing"], "missing"),
    ],
)
def test_bad_input_is_one_line(args, needle, balloonlab, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--results" not in args and args[0] in ("run", "compact"):
        args += ["--results", str(tmp_path / "results")]
    code, out, err = balloonlab(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "results" / "runs").exists()  # refused before anything ran


@pytest.mark.parametrize("command", ["run", "show", "sweeps", "status", "compact"])
def test_help_has_an_example(command, balloonlab):
    code, out, _ = balloonlab(command, "--help")
    assert code == 0 and "Example: balloonlab" in out


# ---- subprocesses with the real simulation ------------------------------------------------


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: Ray on loopback, no usage stats, no TTY."""
    return os.environ | {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def balloonlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from harness.cli import main; main()", *args]


@pytest.mark.ray
def test_resume_after_the_driver_is_killed(tmp_path):
    """SIGKILL `balloonlab run` once some but not all runs are stored; run again: it
    finishes, runs nothing twice, and the store holds one row per run id."""
    spec = write_spec(tmp_path, "resume", replicates=3, ticks=150, mem=64)  # 12 runs
    results = tmp_path / "results"
    runs_dir = results / "runs" / "sweep=resume"
    args = ["run", str(spec), "--results", str(results), "--batch-size", "1", "--json"]
    proc = subprocess.Popen(
        balloonlab_cmd(*args),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    stored_before = 0
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            stored_before = len(list(runs_dir.glob("*.parquet")))
            if stored_before >= 1:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # the driver only: its Ray dies with it
        proc.wait(timeout=60)
    finally:
        _kill_group(proc)
    stored_before = len(list(runs_dir.glob("*.parquet")))
    assert 1 <= stored_before < 12, "the kill did not land part-way"
    for path in runs_dir.glob("*.parquet"):
        assert pq.read_table(path).num_rows == 1

    done = subprocess.run(
        balloonlab_cmd(*args), env=cli_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report["runs"] == 12
    assert report["skipped"] == stored_before
    assert report["done"] == 12 - stored_before and report["failed"] == 0

    table = parquet.read_table(results, "runs", "resume")
    ids = table.column("run_id").to_pylist()
    assert len(ids) == len(set(ids)) == 12
    assert set(table.column("outcome").to_pylist()) <= {"ok", "guest_oom", "deadlock"}
    for path in results.rglob("*.parquet"):
        pq.read_table(path)


CLUSTER_SCRIPT = textwrap.dedent(
    """
    import sys
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False,
                        "node_ip_address": "127.0.0.1"},
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    cluster.shutdown()
    """
)


@pytest.mark.ray
def test_a_sweep_joined_to_a_two_node_cluster_runs_on_both(tmp_path):
    spec = write_spec(tmp_path, "two", replicates=2, ticks=300, mem=64)  # 8 runs, ~1 s each
    results = tmp_path / "results"
    cluster = subprocess.Popen(
        [sys.executable, "-c", CLUSTER_SCRIPT],
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        done = subprocess.run(
            balloonlab_cmd(
                "run",
                str(spec),
                "--address",
                address,
                "--results",
                str(results),
                "--batch-size",
                "1",
                "--json",
            ),
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        [report] = json.loads(done.stdout)
        assert (report["runs"], report["done"], report["failed"]) == (8, 8, 0)
    finally:
        cluster.stdin.close()
        try:
            cluster.wait(timeout=60)
        finally:
            _kill_group(cluster)

    table = parquet.read_table(results, "runs", "two")
    assert table.num_rows == 8
    nodes = set(table.column("ray_node_id").to_pylist())
    assert len(nodes) == 2 and None not in nodes
    # every file was written by the driver: provenance names the node that ran the run
    for path in (results / "runs" / "sweep=two").glob("*.parquet"):
        assert parquet.read_provenance(path)["ray_node_id"] in nodes
    assert len(list((results / "ticks" / "sweep=two").glob("*.parquet"))) == 8


def _kill_group(proc: subprocess.Popen) -> None:
    """Make sure nothing the test started outlives it (the process group it leads)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_status_counts_missing_against_the_shipped_spec_of_the_same_name(tmp_path, balloonlab):
    results = tmp_path / "results"
    code, out, _ = balloonlab(
        "run", "smoke", "--executor", "local", "--results", str(results), "--json"
    )
    assert code == 0 and json.loads(out)[0]["done"] >= 4
    victim = next((results / "runs" / "sweep=smoke").glob("*.parquet"))
    victim.unlink()
    code, out, _ = balloonlab("status", "--results", str(results), "--json")
    [row] = json.loads(out)
    assert code == 0 and row["sweep"] == "smoke"
    assert row["missing"] == 1 and row["done"] == row["runs"] - 1 and row["failed"] == 0


def test_runs_of_an_earlier_spec_stop_run_and_reproduce_until_pruned(tmp_path, balloonlab):
    """A sweep whose spec changed (ticks 6 -> 7) would mix the old runs into every analysis
    of its name: `run` refuses before anything runs, leaving the store and the stored spec
    as they were; `status` counts them; --prune deletes them and runs the new spec. A
    grown spec (more replicates) holds the old runs and is not refused."""
    results = tmp_path / "results"
    old = write_spec(tmp_path, "st")
    args = ("--executor", "local", "--results", str(results), "--json")
    assert balloonlab("run", str(old), *args)[0] == 0
    (tmp_path / "v2").mkdir()
    new = write_spec(tmp_path / "v2", "st", ticks=7)
    stored_spec = (results / "specs" / "st.toml").read_text()

    code, out, err = balloonlab("run", str(new), *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "st (4 runs)" in err and "--prune" in err
    assert parquet.read_table(results, "runs", "st").num_rows == 4
    assert (results / "specs" / "st.toml").read_text() == stored_spec

    code, out, _ = balloonlab("status", str(new), "--results", str(results), "--json")
    assert json.loads(out) == [
        {"sweep": "st", "runs": 4, "done": 0, "failed": 0, "missing": 4, "not_in_spec": 4}
    ]

    code, out, err = balloonlab("run", str(new), *args, "--prune")
    assert code == 0, err
    assert json.loads(out)[0]["done"] == 4
    ticks = parquet.read_table(results, "runs", "st").column("ticks").to_pylist()
    assert ticks == [7] * 4

    (tmp_path / "v3").mkdir()
    grown = write_spec(tmp_path / "v3", "st", ticks=7, replicates=2)
    code, out, _ = balloonlab("run", str(grown), *args)
    assert code == 0 and (json.loads(out)[0]["skipped"], json.loads(out)[0]["done"]) == (4, 4)


def test_reproduce_refuses_runs_of_an_earlier_version_of_a_shipped_sweep(tmp_path, balloonlab):
    """Runs stored under a shipped sweep's name by another spec (as after an upgrade that
    changed it) stop `reproduce` before anything runs; --prune is the way on."""
    results = tmp_path / "results"
    earlier = tmp_path / "fig10_idle_tax.toml"
    earlier.write_text(SPEC.format(name="fig10_idle_tax-quick", replicates=1, ticks=5, mem=16,
                                   iops="[1000.0]"))  # fmt: skip
    assert balloonlab("run", str(earlier), "--executor", "local", "--results", str(results))[0] == 0
    code, _, err = balloonlab(
        "reproduce", "--quick", "--only", "fig10", "--executor", "local",
        "--results", str(results), "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 2 and "fig10_idle_tax-quick (4 runs)" in err and "--prune" in err
    assert not (tmp_path / "out").exists()

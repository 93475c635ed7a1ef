"""Concurrency: one driver per sweep through an advisory lock file (holder named, stale
locks taken over, --wait), different sweeps side by side, and two real drivers started at
once on one sweep: no crash, every run stored once, no run executed twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import executors
from store import parquet, sweep_lock

SPEC = """
[sweep]
name = "{name}"
seed = 9

[base]
ticks = {ticks}
"vms.count" = 1
"vms.mem_mib" = 16

[grid]
"host.overcommit" = [1.0, 1.2, 1.4]
"hypervisor.policy" = ["none", "ws"]
"""


def write_spec(tmp_path: Path, name: str, ticks: int = 5) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, ticks=ticks))
    return path


def _fake_lock(results: Path, sweep: str, pid: int, host: str | None = None, **extra) -> Path:
    path = sweep_lock.lock_path(results, sweep)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": "earlier"} | extra
    path.write_text(json.dumps(record))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_lock_is_exclusive_reentrant_and_released(tmp_path):
    with sweep_lock.hold(tmp_path, "a"):
        holder = sweep_lock.read_holder(sweep_lock.lock_path(tmp_path, "a"))
        assert holder.pid == os.getpid() and holder.host == socket.gethostname()
        with sweep_lock.hold(tmp_path, "a"):  # the same process again: fine
            pass
        assert sweep_lock.lock_path(tmp_path, "a").exists()
        with sweep_lock.hold(tmp_path, "b"):  # another sweep: independent
            assert sweep_lock.lock_path(tmp_path, "b").exists()
    assert not sweep_lock.lock_path(tmp_path, "a").exists()
    assert not sweep_lock.lock_path(tmp_path, "b").exists()


def test_a_live_holder_is_refused_and_named(tmp_path, sleeper):
    _fake_lock(tmp_path, "a", sleeper.pid)
    with pytest.raises(sweep_lock.SweepLocked) as exc:
        sweep_lock.acquire(tmp_path, "a")
    message = str(exc.value)
    assert f"pid {sleeper.pid} on {socket.gethostname()}" in message and "--wait" in message
    assert "\n" not in message
    sweep_lock.acquire(tmp_path, "b")  # another sweep of the same results directory
    sweep_lock.release(tmp_path, "b")


def test_a_stale_lock_is_taken_over(tmp_path):
    _fake_lock(tmp_path, "a", _dead_pid())
    with sweep_lock.hold(tmp_path, "a"):
        assert sweep_lock.read_holder(sweep_lock.lock_path(tmp_path, "a")).pid == os.getpid()
    _fake_lock(tmp_path, "a", os.getppid(), start_ticks=1)  # a pid reused since: stale
    with sweep_lock.hold(tmp_path, "a"):
        pass
    sweep_lock.lock_path(tmp_path, "a").write_text("{half a rec")  # its writer died mid-way
    with sweep_lock.hold(tmp_path, "a"):
        pass


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    _fake_lock(tmp_path, "a", _dead_pid(), host="some-other-host")
    with pytest.raises(sweep_lock.SweepLocked, match="some-other-host"):
        sweep_lock.acquire(tmp_path, "a")


def test_wait_polls_until_the_holder_is_gone(tmp_path, sleeper):
    _fake_lock(tmp_path, "a", sleeper.pid)
    told = []
    threading.Timer(0.6, sleeper.kill).start()
    start = time.monotonic()
    sweep_lock.acquire(tmp_path, "a", wait=True, on_wait=told.append, poll=0.05)
    assert time.monotonic() - start >= 0.5
    assert [h.pid for h in told] == [sleeper.pid]
    sweep_lock.release(tmp_path, "a")


def test_run_refuses_a_sweep_another_driver_holds(tmp_path, sleeper, monkeypatch, balloonlab_cli):
    monkeypatch.setattr(executors, "_default_run_fn", lambda: pytest.fail("ran a run"))
    results = tmp_path / "results"
    _fake_lock(results, "c", sleeper.pid)
    spec = write_spec(tmp_path, "c")
    start = time.perf_counter()
    code, out, err = balloonlab_cli(
        "run", str(spec), "--executor", "local", "--results", str(results)
    )
    assert time.perf_counter() - start < 1.0
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"pid {sleeper.pid}" in err and "'c' is being run by" in err
    assert not (results / "runs").exists()


def _driver(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"RAY_USAGE_STATS_ENABLED": "0"},
    )


def test_two_drivers_started_at_once_on_one_sweep(tmp_path):
    """The fixed temporary name killed one of them (FileNotFoundError); with the lock the
    second refuses, or with --wait waits and then skips every run."""
    spec = write_spec(tmp_path, "both", ticks=30)
    results = tmp_path / "results"
    args = ["run", str(spec), "--executor", "local", "--results", str(results), "--json"]
    first, second = _driver(*args), _driver(*args, "--wait")
    outs = [p.communicate(timeout=600) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    for _, err in outs:
        assert "Traceback" not in err, err
    assert codes[1] == 0, outs[1][1]
    reports = [json.loads(out)[0] for code, (out, _) in zip(codes, outs, strict=True) if code == 0]
    if codes[0] != 0:  # it lost the race: refused in one line, naming the holder
        assert codes[0] == 2 and "is being run by pid" in outs[0][1]
        assert len(outs[0][1].strip().splitlines()) == 1
    assert sum(r["done"] for r in reports) == 6  # no run executed twice
    assert sorted(r["skipped"] for r in reports) == ([0, 6] if len(reports) == 2 else [0])
    scan = parquet.scan_sweep(results, "both")
    assert len(scan.outcomes) == 6 and scan.problems == []
    for table in parquet.TABLES:
        assert len(list(parquet.sweep_dir(results, table, "both").iterdir())) == 6
    assert not sweep_lock.lock_path(results, "both").exists()


def test_different_sweeps_run_side_by_side(tmp_path):
    results = tmp_path / "results"
    procs = [
        _driver("run", str(write_spec(tmp_path, name, ticks=20)), "--executor", "local",
                "--results", str(results), "--json")
        for name in ("left", "right")
    ]  # fmt: skip
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert json.loads(out)[0]["done"] == 6
    assert set(parquet.sweeps(results)) == {"left", "right"}


def test_compact_refuses_a_sweep_a_driver_is_running(tmp_path, sleeper, stand_in):
    from harness.executors import execute_run
    from harness.spec import load_spec

    results = tmp_path / "results"
    for run in load_spec(write_spec(tmp_path, "k")).runs:
        parquet.write_run(results, run, *execute_run(run, stand_in)[:2])
    _fake_lock(results, "k", sleeper.pid)
    with pytest.raises(sweep_lock.SweepLocked, match=f"pid {sleeper.pid}"):
        parquet.compact(results, "k")
    assert len(list(parquet.sweep_dir(results, "runs", "k").glob("*.parquet"))) == 6
    sweep_lock.lock_path(results, "k").unlink()
    parquet.compact(results, "k")
    assert len(list(parquet.sweep_dir(results, "runs", "k").glob("*.parquet"))) == 1

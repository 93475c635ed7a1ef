"""Executors: local and Ray give the same rows; Ray batches with bounded tasks in flight,
survives a worker that dies, and turns runs it cannot finish into `failed` rows."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.driver import run_sweep, run_sweeps
from harness.executors import LocalExecutor, RayExecutor, execute_run
from harness.spec import load_spec
from store import parquet

SPEC = """
[sweep]
name = "{name}"
seed = 5

[base]
ticks = {ticks}
"vms.count" = 2
"vms.mem_mib" = {mem}

[grid]
"hypervisor.policy" = ["none", "ws"]
"host.overcommit" = [{overcommits}]
"""

# Columns that legitimately differ between two executions of the same run.
NONDETERMINISTIC = {"wall_seconds", "refs_per_second", "ray_node_id", "worker_host"}


def spec(tmp_path: Path, name: str, n_overcommit: int = 3, ticks: int = 8, mem: int = 16):
    overcommits = ", ".join(str(1.0 + 0.25 * i) for i in range(n_overcommit))
    path = tmp_path / f"{name}.toml"
    path.write_text(SPEC.format(name=name, ticks=ticks, mem=mem, overcommits=overcommits))
    return load_spec(path)


def rows(results: Path, sweep: str) -> dict[str, dict]:
    table = parquet.read_table(results, "runs", sweep)
    return {
        r["run_id"]: {k: v for k, v in r.items() if k not in NONDETERMINISTIC}
        for r in table.to_pylist()
    }


def exit_once(config, *, marker: str, inner):
    """Kill the worker process the first time any run executes; run ``inner`` after."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return inner(config)


def always_exit(config):
    os._exit(1)


@pytest.fixture
def ray_with_test_functions(ray_local):
    """The session Ray, able to unpickle functions defined in this test module."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return ray_local


def test_execute_run_turns_an_exception_into_a_failed_row(tmp_path):
    run = spec(tmp_path, "x").runs[0]

    def broken(config):
        raise RuntimeError("boom")

    summary, ticks, seconds = execute_run(run, broken)
    row = summary.to_pylist()[0]
    assert row["outcome"] == "failed" and row["error"] == "RuntimeError: boom"
    assert row["host.overcommit"] == run.config.host.overcommit and row["seed"] == run.seed
    assert ticks is None and seconds >= 0


def test_local_executor_yields_every_run_in_order(tmp_path, stand_in):
    runs = spec(tmp_path, "loc").runs
    out = list(LocalExecutor(stand_in).map(runs))
    assert [c.run.run_id for c in out] == [r.run_id for r in runs]
    assert all(not c.failed and c.node_id is None for c in out)
    assert all(c.summary.num_rows == 1 and c.ticks.num_rows == 8 * 3 for c in out)


class RecordingExecutor(LocalExecutor):
    """A local executor that records the runs of each ``map`` call."""

    def __init__(self, run_fn) -> None:
        super().__init__(run_fn)
        self.calls: list[list[str]] = []

    def map(self, runs):
        runs = list(runs)
        self.calls.append([r.run_id for r in runs])
        return super().map(runs)


def test_several_sweeps_run_as_one_queue_and_report_each(tmp_path, stand_in):
    first, second, stored = spec(tmp_path, "q1"), spec(tmp_path, "q2", 2), spec(tmp_path, "q3", 1)
    results = tmp_path / "results"
    run_sweep(stored, LocalExecutor(stand_in), results)
    ex = RecordingExecutor(stand_in)
    finished: list[tuple[str, int]] = []
    reports = run_sweeps(
        [first, second, stored], ex, results,
        on_done=lambda r: finished.append((r.sweep, r.done)),
    )  # fmt: skip
    # One queue, the sweeps in order; the stored sweep adds nothing to it.
    assert ex.calls == [[r.run_id for r in first.runs + second.runs]]
    assert [(r.sweep, r.runs, r.done, r.skipped, r.failed) for r in reports] == [
        ("q1", 6, 6, 0, 0), ("q2", 4, 4, 0, 0), ("q3", 2, 0, 2, 0)
    ]  # fmt: skip
    assert finished == [("q3", 0), ("q1", 6), ("q2", 4)]  # q3 had nothing to run
    assert all(r.run_seconds > 0 for r in reports[:2]) and reports[2].run_seconds == 0
    assert reports[0].seconds <= reports[1].seconds  # q1's runs were queued first
    assert set(rows(results, "q1")) == {r.run_id for r in first.runs}
    assert set(rows(results, "q2")) == {r.run_id for r in second.runs}
    with pytest.raises(ValueError, match="listed twice"):
        run_sweeps([first, first], ex, results)


def test_adaptive_batch_size_balances_then_amortizes():
    ex = RayExecutor(target_task_seconds=1.0)
    assert ex._next_batch_size(remaining=4, cpus=2) == 1  # few runs: one per task
    assert ex._next_batch_size(remaining=1000, cpus=2) == 4  # unknown run time: modest
    ex._observe([0.001] * 10)  # 1 ms runs: batch many per task, keep 4 tasks per CPU
    assert ex._next_batch_size(remaining=1000, cpus=2) == 125
    ex._observe([10.0] * 10)  # slow runs: one per task
    ex._observe([10.0] * 10)
    assert ex._next_batch_size(remaining=1000, cpus=2) == 1
    assert RayExecutor(batch_size=7)._next_batch_size(remaining=3, cpus=64) == 7


@pytest.mark.ray
def test_ray_batches_with_bounded_tasks_in_flight(ray_local, stand_in, tmp_path):
    runs = spec(tmp_path, "bp", n_overcommit=6).runs  # 12 runs
    ex = RayExecutor(run_fn=stand_in, batch_size=2, max_in_flight=2)
    out = list(ex.map(runs))
    ex.close()  # the session's Ray: left running
    assert ray_local.is_initialized()
    assert sorted(c.run.run_id for c in out) == sorted(r.run_id for r in runs)
    assert ex.peak_in_flight == 2
    node = ray_local.get_runtime_context().get_node_id()
    assert {c.node_id for c in out} == {node}
    local = {c.run.run_id: c for c in LocalExecutor(stand_in).map(runs)}
    for c in out:  # same rows as in-process (up to wall-clock columns)
        a = {k: v for k, v in c.summary.to_pylist()[0].items() if k not in NONDETERMINISTIC}
        b = local[c.run.run_id].summary.to_pylist()[0]
        assert a == {k: v for k, v in b.items() if k not in NONDETERMINISTIC}
        assert c.ticks.equals(local[c.run.run_id].ticks)


@pytest.mark.ray
def test_a_worker_killed_mid_sweep_is_retried(ray_with_test_functions, stand_in, tmp_path):
    marker = tmp_path / "worker-died"
    the_spec = spec(tmp_path, "kill", n_overcommit=3)  # 6 runs
    results = tmp_path / "results"
    ex = RayExecutor(
        run_fn=functools.partial(exit_once, marker=str(marker), inner=stand_in),
        batch_size=2,
        max_retries=3,
    )
    report = run_sweep(the_spec, ex, results)

    assert marker.exists()  # a worker really did die (os._exit) during the sweep
    assert (report.done, report.failed) == (6, 0)
    files = sorted((results / "runs" / "sweep=kill").glob("*.parquet"))
    assert sorted(p.stem for p in files) == sorted(r.run_id for r in the_spec.runs)
    for path in files:
        table = pq.read_table(path)
        assert table.num_rows == 1 and table.column("outcome")[0].as_py() == "ok"
    assert parquet.stored_run_ids(results, "kill") == {r.run_id for r in the_spec.runs}


@pytest.mark.ray
def test_runs_of_a_task_out_of_retries_become_failed_rows(ray_with_test_functions, tmp_path):
    the_spec = spec(tmp_path, "dead", n_overcommit=1)  # 2 runs
    results = tmp_path / "results"
    ex = RayExecutor(run_fn=always_exit, batch_size=2, max_retries=0)
    report = run_sweep(the_spec, ex, results)
    assert (report.done, report.failed) == (0, 2)
    assert parquet.failed_run_ids(results, "dead") == {r.run_id for r in the_spec.runs}
    errors = parquet.read_table(results, "runs", "dead").column("error").to_pylist()
    assert all("Worker" in e or "worker" in e for e in errors), errors


@pytest.mark.ray
def test_local_and_ray_store_identical_rows_of_the_real_simulation(ray_local, tmp_path):
    the_spec = spec(tmp_path, "same", n_overcommit=2, ticks=20, mem=32)  # 4 runs, sim_core.run
    local_results, ray_results = tmp_path / "local", tmp_path / "ray"
    local = run_sweep(the_spec, LocalExecutor(), local_results)
    remote = run_sweep(the_spec, RayExecutor(batch_size=1), ray_results)
    assert local.done == remote.done == len(the_spec.runs)

    a, b = rows(local_results, "same"), rows(ray_results, "same")
    assert set(a) == {r.run_id for r in the_spec.runs}
    assert a == b
    assert {r["seed"] for r in a.values()} == {r.seed for r in the_spec.runs}
    ta = parquet.read_table(local_results, "ticks", "same").sort_by([("run_id", "ascending")])
    tb = parquet.read_table(ray_results, "ticks", "same").sort_by([("run_id", "ascending")])
    assert ta.num_rows > 0 and ta.equals(tb)
    nodes = set(parquet.read_table(ray_results, "runs", "same").column("ray_node_id").to_pylist())
    assert nodes == {ray_local.get_runtime_context().get_node_id()}

"""The one door in, ``run(config)``, and the two runs besides the full simulation: a
replay of one workload through one cache, and random schedules of the lock protocol.
Each returns a ``RunResult`` whose summary starts with the config's dotted columns."""

from __future__ import annotations

import math
import time

import numpy as np

from sim_core.config import SimConfig
from sim_core.deadlock_explorer import random_trials
from sim_core.locks import build_instance
from sim_core.replay import replay
from sim_core.result import RunResult
from sim_core.simulation import Simulation
from sim_core.theory import che_lru_hit_ratio
from sim_core.workloads import make_workload


def run(config: SimConfig) -> RunResult:
    """Run one config: the one door into sim_core. Pure: same config, same result."""
    if config.mode == "replay":
        return run_replay(config)
    if config.mode == "locks":
        return run_locks(config)
    return Simulation(config).run()


def run_replay(cfg: SimConfig) -> RunResult:
    """VM 0's workload, ``replay.references`` references, through a cache of
    ``replay.cache_mib`` under ``replay.policy``; Che's approximation beside it."""
    start = time.perf_counter()
    vm = cfg.vms[0]
    workload = make_workload(vm.workload, vm.workload_params, cfg.pages(vm.mem_mib), cfg.page_kib)
    workload.reset(np.random.default_rng(cfg.seed))
    pages, writes = workload.generate(cfg.replay.references)
    frames = max(1, cfg.pages(cfg.replay.cache_mib))
    result = replay(pages, frames, cfg.replay.policy, writes, seed=cfg.seed,
                    kinds=workload.page_kind, ws_tau=None)  # fmt: skip
    che = math.nan
    if hasattr(workload, "page_probabilities"):
        che = float(che_lru_hit_ratio(workload.page_probabilities(), frames))
    classes = result.evictions_by_class or {}
    row = dict(cfg.flat())
    row.update(
        outcome="ok",
        error=None,
        references=result.references,
        replay_faults=result.faults,
        replay_hits=result.hits,
        replay_writebacks=result.writebacks,
        hit_ratio=result.hit_ratio,
        che_hit_ratio=che,
        footprint_pages=int(workload.n_pages),
        cache_pages=frames,
        **{f"esc_evict_{k}": int(classes.get(k, 0)) for k in ("00", "01", "10", "11")},
        compile_seconds=result.compile_seconds,
        wall_seconds=time.perf_counter() - start,
        refs_per_second=result.refs_per_second,
    )
    return RunResult(summary=row)


def run_locks(cfg: SimConfig) -> RunResult:
    """``locks.trials`` seeded random schedules of the balloon lock protocol; deadlocks in
    all and by cycle: through hostmem (the hypervisor locks) or balloon(g) (the OOM
    notifier)."""
    start = time.perf_counter()
    lk = cfg.locks
    inst = build_instance(
        lk.guests,
        lk.host_threads,
        lk.ops,
        cfg.hypervisor.lock_order,
        oom_tasks=lk.oom_tasks,
        driver=lk.balloon_driver,
    )
    trials = random_trials(inst, lk.trials, cfg.seed)
    row = dict(cfg.flat())
    row.update(
        outcome="ok",
        error=None,
        lock_trials=trials.trials,
        lock_deadlocked=trials.deadlocked,
        deadlock_probability=trials.probability,
        concurrent_ops=(lk.guests + lk.host_threads + lk.oom_tasks) * lk.ops,
        lock_deadlocked_hostmem=trials.deadlocked_by_kind["hostmem"],
        lock_deadlocked_oom=trials.deadlocked_by_kind["oom"],
        wall_seconds=time.perf_counter() - start,
    )
    return RunResult(summary=row)

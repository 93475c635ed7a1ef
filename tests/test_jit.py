"""Kernels compiled without numba's reference counting (sim_core.jit) must never hand an
array to their caller, and must read the World's arrays as the reference-counted path does."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from numba import typeof, types
from numba.core.registry import CPUDispatcher

import sim_core
from sim_core import Simulation, build_config
from sim_core.jit import njit_kernel


def holds_an_array(t: types.Type) -> bool:
    """Whether a numba type is or contains an array (tuples, optionals)."""
    if isinstance(t, types.Array):
        return True
    if isinstance(t, types.BaseTuple):
        return any(holds_an_array(m) for m in t.types)
    if isinstance(t, types.Optional):
        return holds_an_array(t.type)
    return False


def unreferenced_returns(dispatchers) -> list[str]:
    """Compiled signatures of functions without reference counting that return arrays."""
    bad = []
    for d in dispatchers:
        if d.targetoptions.get("_nrt", True):
            continue
        for sig, cres in d.overloads.items():
            if holds_an_array(cres.signature.return_type):
                bad.append(f"{d.py_func.__module__}.{d.py_func.__name__}{sig}")
    return bad


def sim_core_dispatchers() -> list[CPUDispatcher]:
    found = {}
    for info in pkgutil.walk_packages(sim_core.__path__, "sim_core."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, CPUDispatcher):
                found[id(obj)] = obj
    return list(found.values())


CHECK_EVERY_KERNEL = """
import json
import sim_core
from sim_core import build_config
import test_jit

for overrides in (
    {"hypervisor.policy": "mom", "host.overcommit": 1.6, "vms.workload": "db"},
    {"hypervisor.policy": "aggressive", "host.cache": "writeback", "host.overcommit": 1.5},
    {"vms.guest_policy": "lru", "host.swap_policy": "clock", "host.overcommit": 2.0},
    {"hypervisor.policy": "static", "vms.balloon_mib": 4, "vms.free_page_reporting": True},
):
    sim_core.run(build_config({}, ticks=20, **{"vms.count": 2, "vms.mem_mib": 16} | overrides))
dispatchers = test_jit.sim_core_dispatchers()
compiled = [d for d in dispatchers if not d.targetoptions.get("_nrt", True) and d.overloads]
print(json.dumps({"compiled": len(compiled), "bad": test_jit.unreferenced_returns(dispatchers)}))
"""


def test_no_kernel_without_reference_counting_returns_an_array(tmp_path):
    # In a child with an empty numba cache: a function loaded from the cache lists no
    # signatures for the functions it calls, so only a compile in this process shows them.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", CHECK_EVERY_KERNEL], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["compiled"] > 50  # the fault path, reclaim, the block device, the host
    assert got["bad"] == []


def test_the_check_finds_a_kernel_that_returns_an_array():
    """numba itself refuses to return an array a function without reference counting did
    not get as an argument; one it did get, alone or in a tuple, it lets through."""

    @njit_kernel
    def hands_back(a, b):
        return a, b.shape[0]

    hands_back.compile((typeof(np.zeros(3)), typeof(np.zeros((2, 2), np.int8))))
    assert len(unreferenced_returns([hands_back])) == 1


def test_a_kernel_without_reference_counting_reads_the_worlds_arrays():
    @njit_kernel
    def read(w, g):
        w.cnt[g, 0] += 5
        gi = w.gi
        return gi[g, 0] + w.cnt[g, 0] + w.dvf.shape[0]

    sim = Simulation(build_config({}, ticks=1, **{"vms.count": 2, "vms.mem_mib": 8}))
    w = sim.world
    before = int(w.cnt[1, 0])
    got = read(w, 1)
    assert w.cnt[1, 0] == before + 5  # written through to the NumPy array Python holds
    assert got == int(w.gi[1, 0]) + before + 5 + w.dvf.shape[0]
    assert isinstance(got, (int, np.integer))


def test_calls_from_python_leave_no_reference_behind():
    """Unboxing a World takes a reference the call must give back, with numba's runtime or
    without: otherwise no World is ever freed (a Ray worker running one run after another
    grew to 14 GB)."""
    from sim_core.block_device import dev_advance, dev_read, device_params, make_device
    from sim_core.config import DiskConfig

    for overrides in (
        {"hypervisor.policy": "mom", "host.overcommit": 1.6, "vms.workload": "db"},
        {"hypervisor.policy": "static", "vms.balloon_mib": 4, "vms.free_page_reporting": True},
    ):
        sim = Simulation(
            build_config({}, ticks=30, **{"vms.count": 2, "vms.mem_mib": 16} | overrides)
        )
        for _ in range(sim.cfg.ticks):
            sim.step()
        sim.summary(0.0)
        assert sim.world._meminfo.refcount == 1
    device = make_device(**device_params(DiskConfig(preset="hdd")))
    dev_read(device, 0.0)
    dev_advance(device, 100.0)
    assert device._meminfo.refcount == 1

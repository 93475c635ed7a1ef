"""Shared fixtures: one local Ray for the whole session (bound to 127.0.0.1), and a small
deterministic stand-in for ``sim_core.run`` for harness tests that do not need the model."""

from __future__ import annotations

import logging
import os
import sys
import time

import numpy as np
import pytest

# Before anything imports Ray: keep every Ray process of the test session (and of the CLI
# subprocesses the tests start, which inherit this environment) on loopback, and never let
# Ray report usage statistics over the network.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

FAIL_IOPS = 666.0  # the stand-in raises for configs with this disk.iops


def fake_run(config):
    """A deterministic stand-in for ``sim_core.run``: a summary with the config columns, an
    outcome and a few seeded metrics, and a per-tick series for the host and each VM."""
    from sim_core.result import RunResult

    start = time.perf_counter()
    if config.disk.iops == FAIL_IOPS:
        raise ValueError("injected failure")
    rng = np.random.default_rng(config.seed)
    n_vm = len(config.vms)
    references = int(rng.integers(1_000, 2_000)) * config.ticks * n_vm
    wall = time.perf_counter() - start
    summary = config.flat() | {
        "outcome": "ok",
        "references": references,
        "guest_faults": int(references * (config.host.overcommit - 0.9) * 0.01),
        "host_swap_outs": int(rng.integers(0, 100)),
        "throughput_mean": float(rng.random()),
        "wall_seconds": wall,
        "refs_per_second": references / max(wall, 1e-9),
    }
    rows = config.ticks * (n_vm + 1)
    ticks = {
        "tick": np.repeat(np.arange(config.ticks), n_vm + 1),
        "vm": np.tile(np.arange(-1, n_vm), config.ticks),
        "free_pages": rng.integers(0, 1000, rows),
        "throughput": rng.random(rows),
    }
    return RunResult(summary, ticks)


@pytest.fixture
def stand_in():
    """The stand-in run function (see ``fake_run``)."""
    return fake_run


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session: 2 CPUs, 127.0.0.1, no dashboard, quiet. Yields the
    ``ray`` module; shut down at the end of the session."""
    import ray

    if ray.is_initialized():  # someone else's instance: use it, leave it
        yield ray
        return
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    # Let workers unpickle functions defined in test modules (not importable there).
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[fake_run.__module__])
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def balloonlab_cli(monkeypatch, capsys):
    """The real `balloonlab` entry point, in-process: call(*args) -> (exit code, stdout,
    stderr)."""
    from harness import cli

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["balloonlab", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return call

"""balloonlab's simulation core: pure, deterministic, no I/O.

The one door in is :func:`run`: ``run(config) -> RunResult``. Configs come from
:func:`build_config` (a nested dict plus dotted overrides)."""

from sim_core.config import ConfigError, SimConfig, build_config
from sim_core.modes import run
from sim_core.result import RunResult
from sim_core.simulation import Simulation

__all__ = ["ConfigError", "RunResult", "SimConfig", "Simulation", "build_config", "run"]

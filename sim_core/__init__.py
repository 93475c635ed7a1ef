"""balloonlab's simulation core: pure, deterministic, no I/O.

The one door in is :func:`run`: ``run(config) -> RunResult``. Configs come from
:func:`build_config` (a nested dict plus dotted overrides)."""

from sim_core import _numba_cache

_numba_cache.configure()  # before any module below compiles

from sim_core.config import ConfigError, SimConfig, build_config  # noqa: E402
from sim_core.modes import run  # noqa: E402
from sim_core.result import RunResult  # noqa: E402
from sim_core.simulation import Simulation  # noqa: E402

__all__ = ["ConfigError", "RunResult", "SimConfig", "Simulation", "build_config", "run"]

"""An example balloon controller plug-in: keep each guest's usable memory in a band.

The rule of many small auto-balloon scripts around ``virsh dommemstat``: when a guest's
usable memory (free plus reclaimable cache) falls under ``low`` of its current memory,
give it memory back; over ``high``, take the excess down to the middle of the band.

Use it without installing anything, from this directory:

    balloonlab sim --set hypervisor.policy=keep_free:KeepFree \\
        --set hypervisor.params.low=0.2 --set vms.count=4 --set host.overcommit=1.3

or from anywhere with ``PYTHONPATH=examples/controllers``. A cluster needs the module
installed on every node, or shipped with ``BALLOONLAB_RAY_RUNTIME_ENV='{"working_dir":
"examples/controllers"}'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.controllers.base import Controller, clamp_targets
from sim_core.observation import Observation
from sim_core.params import param


@dataclass(frozen=True)
class KeepFreeParams:
    low: float = param(0.25, "deflate when usable memory is under this share", lo=0, hi=1)
    high: float = param(0.35, "inflate when usable memory is over this share", lo=0, hi=1)


class KeepFree(Controller):
    """Keep every guest's usable memory between ``low`` and ``high`` of its memory."""

    name = "keep_free"
    Params = KeepFreeParams
    interval_s = 5.0  # one poll of the balloon statistics

    def decide(self, obs: Observation) -> np.ndarray:
        p, g = self.params, obs.guests
        actual = g.actual_kib.astype(np.float64)
        share = g.usable_kib / np.maximum(actual, 1.0)
        middle = (p.low + p.high) / 2
        # Memory to add (positive) or take (negative) to bring usable back to the middle.
        change = np.where((share < p.low) | (share > p.high), (middle - share) * actual, 0.0)
        return clamp_targets(obs.balloon_kib - change, obs)

"""The controllers that need no estimate: ``none``, ``static`` and ``aggressive``."""

from __future__ import annotations

import numpy as np

from sim_core.controllers.base import Controller, clamp_targets
from sim_core.observation import Observation


class NoBalloon(Controller):
    """No balloon: the host copes by swapping alone."""

    name = "none"
    interval_s = 1.0

    def decide(self, obs: Observation) -> None:
        return None


class Static(Controller):
    """Fixed per-VM balloons (``vms.balloon_mib``), set at the first decision."""

    name = "static"
    interval_s = 1.0

    def decide(self, obs: Observation) -> np.ndarray:
        return self.setup.static_balloon_kib


class Aggressive(Controller):
    """The swap-storm trigger: on any host shortage (free under twice the high
    watermark), inflate every guest at once, evenly, by enough to cover the whole
    overcommitment, blind to working sets; balloons never deflate."""

    name = "aggressive"
    interval_s = 1.0

    def decide(self, obs: Observation) -> np.ndarray:
        host = obs.host
        if host.unused_kib >= 2 * host.high_kib:
            return obs.target_kib
        short = float(obs.guests.maximum_kib.sum()) - host.total_kib + 2 * host.high_kib
        share = max(short, 0.0) / obs.n_guests
        return clamp_targets(np.maximum(obs.target_kib, share), obs)

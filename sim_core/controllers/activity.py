"""ESX's active-memory estimate from statistical sampling, shared by ``ws`` and ``esx``.

Waldspurger (OSDI 2002, sec. 5.2): every sampling period the hypervisor clears the
accessed bits of a few random guest frames (100 per 30 s) and counts how many were touched
by the end; the estimate is the larger of a fast and a slow exponentially weighted moving
average of those fractions, so it rises at once when a guest gets busy and falls slowly
when it idles. The paper gives no gains: ``fast_alpha``/``slow_alpha`` are ours.
"""

from __future__ import annotations

import math

import numpy as np

from sim_core.observation import AccessSample


class ActiveFraction:
    """Per-guest active fraction: max(fast, slow) EWMA of completed samples."""

    def __init__(self, fast_alpha: float, slow_alpha: float) -> None:
        self.fast_alpha, self.slow_alpha = fast_alpha, slow_alpha
        self.fast: np.ndarray | None = None
        self.slow: np.ndarray | None = None
        self.seen = math.nan

    def update(self, sample: AccessSample | None) -> np.ndarray | None:
        """Fold in a newly completed sample; the estimate, or None before the first."""
        if sample is None or math.isnan(sample.completed_s):
            return None
        if sample.completed_s != self.seen:
            self.seen = sample.completed_s
            if self.fast is None or self.slow is None:
                self.fast, self.slow = sample.active.copy(), sample.active.copy()
            else:
                self.fast += self.fast_alpha * (sample.active - self.fast)
                self.slow += self.slow_alpha * (sample.active - self.slow)
        assert self.fast is not None and self.slow is not None
        return np.clip(np.maximum(self.fast, self.slow), 0.0, 1.0)

"""Closed-form models the simulator is checked against.

Zipf popularity and Che's approximation of an LRU cache under the independent reference
model (Che, Tung and Wang, IEEE JSAC 2002): a page stays in an LRU cache of ``C`` pages for
a *characteristic time* ``T`` after its last reference, where ``T`` solves

    sum_i (1 - exp(-p_i T)) = C,

and the hit ratio is ``sum_i p_i (1 - exp(-p_i T))``. Time is counted in references.
"""

from __future__ import annotations

import math

import numpy as np


def zipf_probabilities(n: int, alpha: float) -> np.ndarray:
    """Reference probabilities of ``n`` pages ranked by popularity: ``p_k ~ k**-alpha``
    (rank ``k = 1..n``), normalized to sum to 1. ``alpha = 0`` is uniform."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    weights = np.arange(1, n + 1, dtype=np.float64) ** -float(alpha)
    return weights / weights.sum()


def _positive_probabilities(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError("probs must be finite, non-negative and not all zero")
    p = p / p.sum()
    return p[p > 0]  # pages never referenced take no cache space in the model


def che_characteristic_time(probs: np.ndarray, cache_size: int) -> float:
    """Solve ``sum_i (1 - exp(-p_i T)) = cache_size`` for ``T`` (in references).

    Returns 0.0 for an empty cache and ``math.inf`` when the cache holds every page that is
    ever referenced. ``probs`` is normalized first.
    """
    p = _positive_probabilities(probs)
    c = float(cache_size)
    if c <= 0:
        return 0.0
    if c >= p.size:
        return math.inf
    # The occupancy f(T) = sum(1 - e^(-p T)) rises from 0 to p.size and is concave, and
    # since 1 - e^(-x) <= x, f(c) <= c: the root lies at or above c. Newton's method started
    # left of the root of a concave increasing function never overshoots, so it climbs to
    # the root monotonically (quadratically near it; a few dozen steps at worst, when the
    # cache holds nearly every page and T is set by the coldest ones).
    t = c
    for _ in range(500):
        em1 = np.expm1(-p * t)  # e^(-p t) - 1, accurate for the hot pages' small p t
        shortfall = c + float(em1.sum())  # c - f(t) >= 0, up to rounding
        slope = float((p * (1.0 + em1)).sum())  # f'(t)
        if shortfall <= 0 or slope <= 0:
            break
        step = shortfall / slope
        if step <= 1e-15 * t:
            break
        t += step
    return t


def che_lru_hit_ratio(probs: np.ndarray, cache_size: int) -> float:
    """Che's approximation of the hit ratio of an LRU cache of ``cache_size`` pages under
    independent references with probabilities ``probs`` (normalized first)."""
    p = _positive_probabilities(probs)
    t = che_characteristic_time(p, cache_size)
    if t == 0.0:
        return 0.0
    if math.isinf(t):
        return 1.0
    return float((p * -np.expm1(-p * t)).sum())

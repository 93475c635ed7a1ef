"""Confidence intervals for claims and figures: pure functions of numbers (numpy only).

- :func:`mean_ci`: percentile bootstrap interval of a mean over replicates.
- :func:`diff_ci`, :func:`ratio_ci`: bootstrap intervals of the difference and of the ratio
  of two means, each side's replicates resampled independently (two separate sets of runs).
- :func:`wilson_ci`: Wilson's score interval of a proportion k / n (Wilson 1927).
- :func:`newcombe_diff_ci`: Newcombe's hybrid score interval of p1 - p2 (Newcombe 1998,
  method 10), from the two Wilson intervals.

Every bootstrap draws from a ``numpy.random.Generator`` seeded with a fixed ``SEED``, so
the same data always gives the same interval, the same verdict and the same report.

No bootstrap interval from fewer than ``MIN_REPLICATES`` (5) samples: with 1 sample every
resample is that sample (a zero-width "interval" that says nothing), and with 2-4 samples
the percentile bootstrap has so few distinct resample means (at most C(2n-1, n): 3, 10,
35) that its 95% interval is far too narrow - it would pass a comparison the data cannot
carry. Such a result is marked ``too_few`` with NaN bounds, and callers decide on the point
estimate while saying the comparison was not tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_REPLICATES = 5
LEVEL = 0.95
RESAMPLES = 10_000
SEED = 20_021_211  # fixed: reports are deterministic


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval; ``too_few`` when no interval could be formed
    (bounds NaN). ``n``: the samples behind it (the smaller side for two-sample ones)."""

    estimate: float
    lo: float
    hi: float
    n: int
    too_few: bool = False

    @property
    def bounds(self) -> list[float]:
        """[lo, hi], as a claim's numbers carry it."""
        return [self.lo, self.hi]

    def text(self, fmt: str = ".3g") -> str:
        """``12.3 [11, 13.4]``, or ``12.3 (n=1, no interval)``."""
        if self.too_few:
            return f"{self.estimate:{fmt}} (n={self.n}, no interval)"
        return f"{self.estimate:{fmt}} [{self.lo:{fmt}}, {self.hi:{fmt}}]"


def _clean(values: Iterable[float | None]) -> np.ndarray:
    """The finite samples (a NaN or None is a run that measured nothing, left out)."""
    data = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return data[np.isfinite(data)]


def _point(data: np.ndarray) -> float:
    return float(data.mean()) if data.size else math.nan


def _resampled_means(data: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    return data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)


def _percentiles(stats: np.ndarray, level: float) -> tuple[float, float]:
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    # Interpolating between two infinite ratios (a zero denominator) gives NaN: with any
    # infinity, take the order statistics themselves.
    method = "linear" if np.isfinite(stats).all() else "inverted_cdf"
    lo, hi = np.percentile(stats, [tail, 100 - tail], method=method)
    return float(lo), float(hi)


def mean_ci(
    values: Iterable[float | None],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    min_samples: int = MIN_REPLICATES,
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values``."""
    data = _clean(values)
    estimate = _point(data)
    if data.size < min_samples:
        return Interval(estimate, math.nan, math.nan, int(data.size), too_few=True)
    lo, hi = _percentiles(_resampled_means(data, np.random.default_rng(seed), resamples), level)
    return Interval(estimate, lo, hi, int(data.size))


def _two_sample(
    a: Iterable[float | None],
    b: Iterable[float | None],
    op: str,
    level: float,
    resamples: int,
    seed: int,
    min_samples: int,
) -> Interval:
    x, y = _clean(a), _clean(b)

    def combine(p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray | float:
        if op == "diff":
            return np.subtract(p, q)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is NaN, k/0 infinite
            return np.divide(p, q)

    estimate = float(combine(_point(x), _point(y))) if x.size and y.size else math.nan
    n = int(min(x.size, y.size))
    if n < min_samples:
        return Interval(estimate, math.nan, math.nan, n, too_few=True)
    rng = np.random.default_rng(seed)
    # Each side resampled on its own: the two sides are separate sets of runs, paired by
    # nothing (replicate i of one configuration has nothing to do with replicate i of another).
    stats = np.asarray(
        combine(_resampled_means(x, rng, resamples), _resampled_means(y, rng, resamples))
    )
    lo, hi = _percentiles(stats, level)
    return Interval(estimate, lo, hi, n)


def argmax_ci(
    xs: Sequence[float],
    samples: Sequence[Iterable[float | None]],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    min_samples: int = MIN_REPLICATES,
) -> Interval:
    """Percentile bootstrap interval of the x whose mean is largest (e.g. the most
    profitable overcommit): each point's replicates resampled on their own, the argmax
    taken in every resample. The estimate is the argmax of the means."""
    data = [_clean(s) for s in samples]
    if not xs or any(d.size == 0 for d in data):
        return Interval(math.nan, math.nan, math.nan, 0, too_few=True)
    estimate = float(xs[int(np.argmax([d.mean() for d in data]))])
    n = int(min(d.size for d in data))
    if n < min_samples:
        return Interval(estimate, math.nan, math.nan, n, too_few=True)
    rng = np.random.default_rng(seed)
    means = np.stack([_resampled_means(d, rng, resamples) for d in data], axis=1)
    best = np.asarray(xs, dtype=float)[means.argmax(axis=1)]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(best, [tail, 100 - tail], method="inverted_cdf")
    return Interval(estimate, float(lo), float(hi), n)


def diff_ci(
    a: Iterable[float | None],
    b: Iterable[float | None],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    min_samples: int = MIN_REPLICATES,
) -> Interval:
    """Bootstrap interval of mean(a) - mean(b), each side resampled independently."""
    return _two_sample(a, b, "diff", level, resamples, seed, min_samples)


def ratio_ci(
    a: Iterable[float | None],
    b: Iterable[float | None],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    min_samples: int = MIN_REPLICATES,
) -> Interval:
    """Bootstrap interval of mean(a) / mean(b), each side resampled independently. A
    resample whose denominator mean is 0 gives +-inf (or NaN for 0/0, left out)."""
    return _two_sample(a, b, "ratio", level, resamples, seed, min_samples)


def _z(level: float) -> float:
    """The two-sided normal quantile (1.959964 for 95%), by bisection on erf: numpy only."""
    target = 1 - (1 - level) / 2
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def wilson_ci(k: int, n: int, *, level: float = LEVEL) -> Interval:
    """Wilson's score interval of the proportion k / n. No trials: NaN, ``too_few``."""
    if n <= 0:
        return Interval(math.nan, math.nan, math.nan, 0, too_few=True)
    if not 0 <= k <= n:
        raise ValueError(f"wilson_ci: need 0 <= k <= n, got k={k}, n={n}")
    z = _z(level)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact ends at k = 0 and k = n (the formula gives them up to rounding).
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, lo, hi, n)


def newcombe_diff_ci(k1: int, n1: int, k2: int, n2: int, *, level: float = LEVEL) -> Interval:
    """Newcombe's hybrid score interval of p1 - p2 for independent proportions k1/n1 and
    k2/n2 (Newcombe 1998, method 10)."""
    a, b = wilson_ci(k1, n1, level=level), wilson_ci(k2, n2, level=level)
    if a.too_few or b.too_few:
        return Interval(math.nan, math.nan, math.nan, min(a.n, b.n), too_few=True)
    p1, p2 = a.estimate, b.estimate
    d = p1 - p2
    lo = d - math.sqrt((p1 - a.lo) ** 2 + (b.hi - p2) ** 2)
    hi = d + math.sqrt((a.hi - p1) ** 2 + (p2 - b.lo) ** 2)
    return Interval(d, lo, hi, min(n1, n2))

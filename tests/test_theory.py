"""Zipf probabilities and Che's approximation of LRU."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_core.theory import che_characteristic_time, che_lru_hit_ratio, zipf_probabilities
from sim_core.workloads import make_workload


def test_zipf_probabilities_follow_the_law():
    p = zipf_probabilities(1000, 0.8)
    assert p.shape == (1000,)
    assert math.isclose(p.sum(), 1.0)
    assert (np.diff(p) < 0).all()
    np.testing.assert_allclose(p[0] / p[[1, 3, 9]], [2**0.8, 4**0.8, 10**0.8])


def test_zipf_alpha_zero_is_uniform():
    np.testing.assert_allclose(zipf_probabilities(7, 0.0), np.full(7, 1 / 7))


@pytest.mark.parametrize("n, alpha", [(0, 1.0), (10, -0.5), (10, float("nan"))])
def test_zipf_rejects_bad_arguments(n, alpha):
    with pytest.raises(ValueError):
        zipf_probabilities(n, alpha)


@pytest.mark.parametrize("n, alpha, cache", [(1000, 0.8, 100), (10_000, 1.2, 50), (500, 0.0, 499)])
def test_characteristic_time_solves_the_equation(n, alpha, cache):
    p = zipf_probabilities(n, alpha)
    t = che_characteristic_time(p, cache)
    assert 0 < t < math.inf
    occupancy = float((1 - np.exp(-p * t)).sum())
    assert occupancy == pytest.approx(cache, rel=1e-9)


@pytest.mark.parametrize("n, alpha", [(2000, 1.5), (100_000, 0.9), (50, 3.0)])
def test_characteristic_time_near_saturation(n, alpha):
    # the cache misses only the coldest page: T is large and the solver must still get there
    p = zipf_probabilities(n, alpha)
    t = che_characteristic_time(p, n - 1)
    assert float((-np.expm1(-p * t)).sum()) == pytest.approx(n - 1, rel=1e-12)


def test_uniform_popularity_has_a_closed_form():
    # all p = 1/n: n (1 - e^(-T/n)) = C  =>  T = -n ln(1 - C/n), hit ratio C/n
    n, cache = 400, 100
    p = np.full(n, 1 / n)
    assert che_characteristic_time(p, cache) == pytest.approx(-n * math.log(1 - cache / n))
    assert che_lru_hit_ratio(p, cache) == pytest.approx(cache / n)


def test_limits():
    p = zipf_probabilities(100, 0.9)
    assert che_lru_hit_ratio(p, 100) == 1.0
    assert che_lru_hit_ratio(p, 10**6) == 1.0
    assert che_characteristic_time(p, 100) == math.inf
    assert che_lru_hit_ratio(p, 0) == 0.0
    assert che_characteristic_time(p, 0) == 0.0
    # an LRU cache of one page hits only on a repeat: exactly sum p^2; Che comes close
    assert che_lru_hit_ratio(p, 1) == pytest.approx((p**2).sum(), rel=0.05)


def test_pages_never_referenced_take_no_space():
    p = np.concatenate([zipf_probabilities(50, 1.0), np.zeros(50)])
    assert che_lru_hit_ratio(p, 50) == 1.0
    assert che_lru_hit_ratio(p * 3, 20) == pytest.approx(che_lru_hit_ratio(p, 20))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 400), alpha=st.floats(0.0, 2.0), seed=st.integers(0, 2**31))
def test_hit_ratio_is_monotone_in_cache_size(n, alpha, seed):
    p = np.random.default_rng(seed).permutation(zipf_probabilities(n, alpha))
    ratios = [che_lru_hit_ratio(p, c) for c in range(0, n + 1)]
    assert all(0.0 <= r <= 1.0 for r in ratios)
    assert all(b >= a - 1e-12 for a, b in zip(ratios, ratios[1:], strict=False))


def test_bad_probabilities_rejected():
    for bad in ([], [0.0, 0.0], [0.5, -0.1], [np.nan, 1.0]):
        with pytest.raises(ValueError):
            che_lru_hit_ratio(np.array(bad), 3)


def _lru_hits(pages: np.ndarray, size: int, warmup: int) -> int:
    """A reference LRU, as plain as possible; counts hits after the first ``warmup``."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for i, page in enumerate(pages.tolist()):
        if page in cache:
            hits += i >= warmup
            cache.move_to_end(page)
        else:
            cache[page] = None
            if len(cache) > size:
                cache.popitem(last=False)
    return hits


@pytest.mark.parametrize("alpha, cache", [(0.8, 100), (1.0, 50), (0.6, 300)])
def test_che_matches_a_simulated_lru_on_the_zipf_workload(alpha, cache):
    w = make_workload("zipf", {"footprint_mib": 4, "alpha": alpha}, 1, 4)  # 1024 pages
    w.reset(np.random.default_rng(2))
    pages, _ = w.generate(170_000)
    measured = _lru_hits(pages, cache, warmup=20_000) / 150_000
    predicted = che_lru_hit_ratio(w.page_probabilities(), cache)
    assert abs(measured - predicted) < 0.01

"""analysis.stats against cases with known answers: Wilson's and Newcombe's intervals from
Newcombe (1998), the bootstrap of a normal sample against the textbook interval, and the
edge cases (identical replicates, too few samples, zero denominators)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import stats

# Newcombe (1998a), "Two-sided confidence intervals for the single proportion", Stat. Med.
# 17:857-872, Table I, method 3 (Wilson score, no continuity correction).
WILSON = [
    ((81, 263), (0.2553, 0.3662)),
    ((15, 148), (0.0624, 0.1605)),
    ((0, 20), (0.0000, 0.1611)),
    ((1, 29), (0.0061, 0.1718)),
]

# Newcombe (1998b), "Interval estimation for the difference between independent
# proportions", Stat. Med. 17:873-890, Table II, method 10 (hybrid score).
NEWCOMBE = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), WILSON)
def test_wilson_matches_newcombe_table_i(counts, expected):
    iv = stats.wilson_ci(*counts)
    assert iv.lo == pytest.approx(expected[0], abs=5e-5)
    assert iv.hi == pytest.approx(expected[1], abs=5e-5)
    assert iv.estimate == counts[0] / counts[1] and not iv.too_few


def test_wilson_by_hand_for_every_k_of_a_small_n():
    """Wilson (1927): (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    n, z = 10, 1.959963984540054
    for k in range(n + 1):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        iv = stats.wilson_ci(k, n)
        assert iv.lo == pytest.approx(max(0.0, centre - half), abs=1e-9)
        assert iv.hi == pytest.approx(min(1.0, centre + half), abs=1e-9)
        assert 0 <= iv.lo <= p <= iv.hi <= 1
    assert stats.wilson_ci(0, n).lo == 0.0 and stats.wilson_ci(n, n).hi == 1.0


def test_wilson_without_trials_is_no_interval_and_refuses_impossible_counts():
    iv = stats.wilson_ci(0, 0)
    assert iv.too_few and math.isnan(iv.lo) and math.isnan(iv.hi)
    with pytest.raises(ValueError):
        stats.wilson_ci(3, 2)


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE)
def test_newcombe_matches_table_ii(counts, expected):
    iv = stats.newcombe_diff_ci(*counts)
    assert iv.lo == pytest.approx(expected[0], abs=5e-5)
    assert iv.hi == pytest.approx(expected[1], abs=5e-5)


def test_bootstrap_of_a_large_normal_sample_is_the_textbook_interval():
    x = np.random.default_rng(7).normal(10.0, 2.0, 400)
    iv = stats.mean_ci(x)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.lo == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert iv.hi == pytest.approx(x.mean() + half, abs=0.1 * half)


def test_identical_replicates_give_a_zero_width_interval():
    iv = stats.mean_ci([3.5] * 5)
    assert (iv.lo, iv.estimate, iv.hi) == (3.5, 3.5, 3.5) and not iv.too_few
    assert stats.diff_ci([2.0] * 6, [2.0] * 5).bounds == [0.0, 0.0]
    assert stats.ratio_ci([4.0] * 5, [2.0] * 5).bounds == [2.0, 2.0]


def test_fewer_than_five_samples_give_no_interval():
    assert stats.MIN_REPLICATES == 5
    for values in ([], [1.0], [1.0, 2.0, 3.0, 4.0]):
        iv = stats.mean_ci(values)
        assert iv.too_few and math.isnan(iv.lo) and math.isnan(iv.hi) and iv.n == len(values)
    iv = stats.diff_ci([1.0] * 5, [2.0] * 4)  # one side short: no interval
    assert iv.too_few and iv.estimate == -1.0 and iv.n == 4
    assert "no interval" in iv.text()
    # NaN (a run that measured nothing) is left out, and can make a sample too small.
    assert stats.mean_ci([1.0, 2.0, 3.0, 4.0, None, math.nan]).too_few


def test_the_difference_of_separated_samples_excludes_zero_and_of_one_distribution_not():
    rng = np.random.default_rng(3)
    a, b = rng.normal(10.0, 1.0, 8), rng.normal(14.0, 1.0, 8)
    iv = stats.diff_ci(b, a)
    assert iv.lo > 0 and iv.estimate == pytest.approx(b.mean() - a.mean())
    same = stats.diff_ci(rng.normal(10.0, 1.0, 30), rng.normal(10.0, 1.0, 30))
    assert same.lo < 0 < same.hi
    ratio = stats.ratio_ci(b, a)
    assert ratio.lo > 1 and ratio.estimate == pytest.approx(b.mean() / a.mean())


def test_intervals_are_deterministic():
    x = [1.0, 2.5, 2.0, 4.0, 3.0, 7.0]
    assert stats.mean_ci(x) == stats.mean_ci(x)
    assert stats.diff_ci(x, x[::-1]) == stats.diff_ci(x, x[::-1])


def test_a_zero_denominator_gives_an_infinite_ratio_not_nan():
    iv = stats.ratio_ci([5.0, 6.0, 7.0, 8.0, 9.0], [0.0] * 5)
    assert iv.estimate == math.inf and iv.lo == math.inf
    iv = stats.ratio_ci([5.0, 6.0, 7.0, 8.0, 9.0], [0.0, 0.0, 0.0, 0.0, 1.0])
    assert iv.lo > 1 and iv.hi == math.inf


def test_argmax_interval_is_one_point_when_the_best_is_clear_and_spans_a_tie():
    from analysis.stats import argmax_ci

    xs = [1.0, 1.5, 2.0]
    clear = argmax_ci(xs, [[1.0] * 5, [3.0, 3.1, 2.9, 3.0, 3.05], [2.0] * 5])
    assert clear.estimate == 1.5 and clear.bounds == [1.5, 1.5]
    # Two points equal in distribution: the best flips between them across resamples.
    tie = argmax_ci(xs, [[0.0] * 5, [1.0, 3.0, 2.0, 1.5, 2.5], [3.0, 1.0, 2.5, 1.5, 2.0]])
    assert tie.lo == 1.5 and tie.hi == 2.0
    assert argmax_ci(xs, [[1.0], [2.0], [0.5]]).too_few

"""The published results beside ours: every figure names its source, and the report says
by how much our number differs where both have one."""

from __future__ import annotations

import pytest

from analysis import claims, published
from analysis.claims import Claim


def _claim(figure: str, **numbers: float) -> Claim:
    return Claim(figure=figure, text="", verdict=claims.SUPPORTED, numbers=numbers)


def test_every_figure_names_its_published_result():
    missing = set(claims.CHECKS) - set(published.PUBLISHED)
    assert not missing, missing
    for entry in published.PUBLISHED.values():
        assert entry.source and entry.result
        if entry.low is not None:
            assert entry.high is not None and entry.low <= entry.high and entry.ours


def test_a_number_inside_the_published_range_says_so():
    text = published.comparison(
        "fig09_balloon_overhead", _claim("fig09", **{"mean slowdown of the ballooned VM (%)": 2.0})
    )
    assert "Waldspurger" in text and "within the published range" in text


@pytest.mark.parametrize(
    "ours, says",
    [(-0.5, "1.9 % slower below the published value (136% of it)"),
     (8.4, "4 % slower above the published value (91% of it)")],
)  # fmt: skip
def test_a_number_outside_the_published_range_says_by_how_much(ours, says):
    text = published.comparison(
        "fig09_balloon_overhead", _claim("fig09", **{"mean slowdown of the ballooned VM (%)": ours})
    )
    assert says in text, text


def test_an_up_to_result_is_a_maximum():
    key = "best throughput ratio, host discard / host swapping"
    below = published.comparison("fig01_io_amplification", _claim("fig01", **{key: 2.5}))
    assert "up to 10 x" in below and "below the published maximum by 7.5 x" in below
    above = published.comparison("fig01_io_amplification", _claim("fig01", **{key: 12.0}))
    assert "2 x above the published value" in above


def test_a_missing_number_is_not_measured_and_a_source_without_one_invents_none():
    assert "not measured" in published.comparison("fig09_balloon_overhead", _claim("fig09"))
    text = published.comparison("fig05_swap_storm", _claim("fig05"))
    assert "Ours" not in text and "no number" in text

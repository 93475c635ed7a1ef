"""`balloonlab validate-sampling`: the shipped validation sweep at the rates given, stored
like any sweep, and each rate's relative error against rate 1."""

from __future__ import annotations

import json

import pytest

from harness.commands import validate_sampling as vs
from harness.errors import UserError


def test_rates_are_parsed_sorted_and_must_include_one():
    assert vs.parse_rates("0.01, 1,0.1,1") == [1.0, 0.1, 0.01]
    for bad, says in (("0.1,0.01", "include 1"), ("1", "at least one"), ("1,2", "(0, 1]"),
                      ("1,x", "not a number"), ("1,0", "(0, 1]")):  # fmt: skip
        with pytest.raises(UserError, match=says.replace("(", r"\(").replace("]", r"\]")):
            vs.parse_rates(bad)


def test_the_spec_takes_the_rates_replicates_ticks_and_base_keys():
    spec, text = vs.validation_spec([1.0, 0.5], 2, 30, {"vms.mem_mib": 64})
    assert spec.name == vs.SWEEP and spec.replicates == 2
    rates = sorted({run.config.sampling.rate for run in spec.runs})
    assert rates == [0.5, 1.0]
    assert {run.config.ticks for run in spec.runs} == {30}
    assert {run.config.vms[0].mem_mib for run in spec.runs} == {64}
    assert '"sampling.rate" = [1.0, 0.5]' in text


def test_validate_sampling_runs_and_prints_relative_errors(balloonlab_cli, tmp_path):
    code, out, err = balloonlab_cli(
        "validate-sampling", "--rates", "1,0.5", "--replicates", "1", "--ticks", "20",
        "--set", "vms.mem_mib=64", "--set", "vms.count=2", "--executor", "local",
        "--results", str(tmp_path / "results"), "--json",
    )  # fmt: skip
    assert code == 0, err
    rows = json.loads(out)
    # two workloads x two controllers x two rates, rate 1 first in each scenario
    assert len(rows) == 8
    assert {(r["workload"], r["policy"]) for r in rows} == {
        ("zipf", "none"),
        ("zipf", "mom"),
        ("db", "none"),
        ("db", "mom"),
    }
    for r in rows:
        if r["rate"] == 1.0:
            assert r["throughput_rel_error"] == 0.0
        else:
            assert r["rate"] == 0.5 and r["throughput"] > 0
            # the sampled run is a different simulation: some error, bounded here loosely
            assert abs(r["throughput_rel_error"]) < 0.5, r
    # a second call reuses the stored runs
    code, out2, _ = balloonlab_cli(
        "validate-sampling", "--rates", "1,0.5", "--replicates", "1", "--ticks", "20",
        "--set", "vms.mem_mib=64", "--set", "vms.count=2", "--executor", "local",
        "--results", str(tmp_path / "results"), "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out2) == rows


def test_a_rate_given_with_set_is_refused(balloonlab_cli):
    code, _, err = balloonlab_cli("validate-sampling", "--set", "sampling.rate=0.5")
    assert code != 0 and "--rates" in err and len(err.strip().splitlines()) == 1

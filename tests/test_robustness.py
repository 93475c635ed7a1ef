"""Robustness: a claim evaluated at every point of its figure's stored neighbourhood.

The neighbourhood sweeps here are real specs (``harness.reproduce.neighbourhood_spec``) run
through the driver into a temporary store; the run function is a stand-in for the lock
model whose deadlock counts follow the claim's rules, except at points built to break them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis import claims, db, paper, robustness
from analysis.neighbourhoods import NEIGHBOURHOODS, Neighbourhood
from analysis.paper import BY_NAME
from harness.driver import run_sweep
from harness.executors import LocalExecutor
from harness.reproduce import neighbourhood_spec
from sim_core.result import RunResult

FIG07 = "fig07_deadlock"
SMALL = Neighbourhood({"locks.trials": {"randint": [100, 1000]}}, samples=5)


def lock_stand_in(broken_trials: set[int]):
    """Locks-mode summaries by the claim's rules: the natural order deadlocks through
    hostmem, more with more ops; the old driver deadlocks through the OOM notifier; each
    fix removes its own cycle - except at the trial counts in ``broken_trials``, where
    hostmem_first still deadlocks (a model the claim must reject)."""

    def run(config) -> RunResult:
        locks = config.locks
        ops = (locks.guests + locks.host_threads + locks.oom_tasks) * locks.ops
        natural = config.hypervisor.lock_order == "natural"
        hostmem = (ops * locks.trials // 20) if natural else 0
        if not natural and locks.trials in broken_trials:
            hostmem = 1
        oom = locks.trials // 4 if locks.balloon_driver == "alloc_under_lock" else 0
        summary = config.flat() | {
            "outcome": "ok",
            "concurrent_ops": ops,
            "lock_trials": locks.trials,
            "lock_deadlocked": hostmem + oom,
            "lock_deadlocked_hostmem": hostmem,
            "lock_deadlocked_oom": oom,
        }
        return RunResult(summary, {"tick": np.zeros(0, np.int64)})

    return run


@pytest.fixture
def small_fig07(monkeypatch):
    monkeypatch.setitem(NEIGHBOURHOODS, FIG07, SMALL)
    return neighbourhood_spec(BY_NAME[FIG07])


def store(tmp_path, spec, broken: set[int] = frozenset()):
    with LocalExecutor(lock_stand_in(set(broken))) as ex:
        report = run_sweep(spec, ex, tmp_path)
    assert report.failed == 0
    return db.connect(tmp_path)


def drawn_trials(spec) -> list[int]:
    return sorted({r.overrides["locks.trials"] for r in spec.runs})


def test_the_neighbourhood_spec_draws_its_keys_around_the_quick_grid(small_fig07):
    spec = small_fig07
    assert spec.name == FIG07 + "-neighbourhood"
    assert len(drawn_trials(spec)) == SMALL.samples
    quick_points = len(paper.BY_NAME[FIG07].quick["grid"]["locks.ops"]) * 2 * 2
    assert len(spec.runs) == SMALL.samples * quick_points


def test_every_point_holding_is_robust(small_fig07, tmp_path):
    con = store(tmp_path, small_fig07)
    result = robustness.evaluate(con, FIG07)
    assert len(result.neighbours) == SMALL.samples
    assert result.share == 1.0 and result.robust
    assert all(n.runs == 12 for n in result.neighbours)
    # Checked as quick (one replicate, the quick grid of concurrencies): NOT TESTED, held.
    assert {n.claim.verdict for n in result.neighbours} == {claims.NOT_TESTED}
    assert result.share_ci.lo == pytest.approx(0.5655, abs=1e-4)  # Wilson, 5 of 5
    assert "95% CI 57-100%" in result.summary()


def neighbour(verdict: str) -> robustness.Neighbour:
    claim = claims.Claim("fig07_deadlock", claims.CLAIMS["fig07_deadlock"], verdict,
                         conditions=[("c", verdict != claims.NOT_SUPPORTED)])  # fmt: skip
    return robustness.Neighbour({"locks.trials": 1}, 1, claim)


def test_not_tested_points_hold_and_failed_ones_do_not():
    verdicts = [claims.SUPPORTED] * 3 + [claims.NOT_TESTED] * 5 + [claims.NOT_SUPPORTED] * 2
    result = robustness.Robustness(FIG07, "s", [neighbour(v) for v in verdicts])
    assert result.share == pytest.approx(0.8) and result.robust
    assert [n.holds for n in result.neighbours] == [True] * 8 + [False] * 2
    lo, hi = result.to_dict()["share_ci"]
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)  # Wilson 8/10
    result.neighbours[0] = neighbour(claims.NOT_SUPPORTED)
    assert result.share == pytest.approx(0.7) and not result.robust


def test_the_share_counts_the_points_built_to_fail(small_fig07, tmp_path):
    trials = drawn_trials(small_fig07)
    con = store(tmp_path, small_fig07, broken={trials[0], trials[3]})
    result = robustness.evaluate(con, FIG07)
    assert result.share == pytest.approx(3 / 5)
    assert not result.robust  # 60% < 80%
    failing = [n.point["locks.trials"] for n in result.neighbours if not n.holds]
    assert failing == [trials[0], trials[3]]
    assert "hostmem_first: no hostmem-cycle deadlock" in result.summary()


def test_one_broken_point_of_five_is_still_robust(small_fig07, tmp_path):
    con = store(tmp_path, small_fig07, broken={drawn_trials(small_fig07)[2]})
    result = robustness.evaluate(con, FIG07)
    assert result.share == pytest.approx(0.8) and result.robust


def test_a_supported_claim_that_is_not_robust_is_not_supported(small_fig07, tmp_path):
    trials = drawn_trials(small_fig07)
    store(tmp_path / "results", small_fig07, broken=set(trials[:2])).close()
    quick = paper.BY_NAME[FIG07]
    with LocalExecutor(lock_stand_in(set())) as ex:  # the figure's own sweep holds
        from harness.reproduce import figure_spec

        run_sweep(figure_spec(quick, quick=True), ex, tmp_path / "results")
    [outcome] = paper.draw_figures(tmp_path / "results", tmp_path / "out", [quick], quick=True,
                                   check_robustness=True)  # fmt: skip
    assert outcome.claim.holds  # NOT TESTED IN QUICK MODE: every tested condition held
    assert outcome.robustness is not None and not outcome.robustness.robust
    assert outcome.verdict == "NOT SUPPORTED"
    assert outcome.to_dict()["robustness"]["share"] == pytest.approx(3 / 5)


def test_a_figure_without_neighbourhood_runs_is_not_robust(tmp_path):
    quick = paper.BY_NAME[FIG07]
    from harness.reproduce import figure_spec

    with LocalExecutor(lock_stand_in(set())) as ex:
        run_sweep(figure_spec(quick, quick=True), ex, tmp_path / "results")
    [outcome] = paper.draw_figures(tmp_path / "results", tmp_path / "out", [quick], quick=True,
                                   check_robustness=True)  # fmt: skip
    assert outcome.robustness is not None and outcome.robustness.neighbours == []
    assert outcome.verdict == "NOT SUPPORTED"
    assert "no stored runs" in outcome.robustness.summary()


def test_the_restricted_query_keeps_the_figure_query_text():
    sql = robustness._restricted_sql("-- a comment\nWITH x AS (SELECT 1) SELECT * FROM x", ["k"])
    assert sql.startswith("WITH completed_runs AS (SELECT * FROM main.completed_runs")
    assert sql.endswith(", x AS (SELECT 1) SELECT * FROM x")
    plain = robustness._restricted_sql("SELECT * FROM completed_runs", ["k"])
    assert plain.endswith(") SELECT * FROM completed_runs")


@pytest.mark.parametrize("figure", sorted(NEIGHBOURHOODS))
def test_every_shipped_neighbourhood_is_a_valid_sweep_of_20_points(figure):
    spec = neighbourhood_spec(BY_NAME[figure])
    near = NEIGHBOURHOODS[figure]
    points = {tuple(r.overrides[k] for k in near.keys) for r in spec.runs}
    assert len(points) == near.samples >= 20
    for run in spec.runs:  # every drawn value within its distribution
        for key, dist in near.random.items():
            [(kind, bounds)] = dist.items()
            value = run.overrides[key]
            if kind == "choice":
                assert value in bounds
            else:
                assert bounds[0] <= value <= bounds[1]


def test_a_neighbourhood_key_the_store_lacks_is_an_analysis_error(small_fig07, tmp_path):
    con = store(tmp_path, small_fig07)
    bad = dataclasses.replace(SMALL, random={"no.such_key": {"uniform": [0, 1]}})
    NEIGHBOURHOODS[FIG07] = bad  # restored by the fixture's monkeypatch
    with pytest.raises(robustness.AnalysisError, match="no.such_key"):
        robustness.evaluate(con, FIG07)


def test_a_drawn_key_inside_a_json_table_reads_its_path():
    columns = ["host.overcommit", "vms.workload_params"]
    assert robustness.key_sql(columns, "host.overcommit") == '"host.overcommit"'
    assert (
        robustness.key_sql(columns, "vms.workload_params.alpha")
        == "json_extract_string(\"vms.workload_params\", '$.alpha')"
    )
    with pytest.raises(robustness.AnalysisError, match="vms.count"):
        robustness.key_sql(columns, "vms.count")


def test_a_per_vm_key_finds_its_points(monkeypatch, tmp_path):
    # Fig. 10's neighbourhood draws one guest's footprint (vms.1.workload_params...): its
    # runs store VM 1's table in its own column, and every point is found (it was none).
    per_vm = Neighbourhood(
        {"locks.trials": {"randint": [100, 1000]},
         "vms.1.workload_params.footprint_mib": {"uniform": [100, 140]}},
        base={"vms.count": 2},
        samples=5,
    )  # fmt: skip
    monkeypatch.setitem(NEIGHBOURHOODS, FIG07, per_vm)
    spec = neighbourhood_spec(BY_NAME[FIG07])
    assert all(len(r.config.vms) >= 2 for r in spec.runs)
    con = store(tmp_path, spec)
    result = robustness.evaluate(con, FIG07)
    assert len(result.neighbours) == 5 and result.robust
    drawn = sorted(
        {round(r.overrides["vms.1.workload_params.footprint_mib"], 6) for r in spec.runs}
    )
    found = sorted(round(float(n.point["vms.1.workload_params.footprint_mib"]), 6)
                   for n in result.neighbours)  # fmt: skip
    assert found == drawn


def test_a_per_vm_key_reads_its_own_column_else_the_shared_one():
    shared = robustness.key_sql(["vms.workload_params"], "vms.1.workload_params.alpha")
    assert shared == "json_extract_string(\"vms.workload_params\", '$.alpha')"
    both = robustness.key_sql(["vms.mem_mib", "vms.1.mem_mib"], "vms.1.mem_mib")
    assert both == 'coalesce("vms.1.mem_mib", "vms.mem_mib")'
    with pytest.raises(robustness.AnalysisError, match="vms.2.swap_mib"):
        robustness.key_sql(["vms.mem_mib"], "vms.2.swap_mib")


def test_the_summary_row_has_a_column_per_vm_only_where_the_vms_differ():
    from sim_core.config import build_config

    cfg = build_config(None, **{"vms.count": 3, "vms.1.mem_mib": 512})
    flat = cfg.flat()
    assert flat["vms.mem_mib"] is None
    assert [flat[f"vms.{i}.mem_mib"] for i in range(3)] == [
        cfg.vms[0].mem_mib,
        512,
        cfg.vms[2].mem_mib,
    ]
    assert "vms.0.swap_mib" not in flat and flat["vms.swap_mib"] == cfg.vms[0].swap_mib

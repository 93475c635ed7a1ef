"""The reproduction: figure sweeps and their quick versions, robustness of the report when
data are missing or a figure breaks, the reports' content, and `balloonlab reproduce
--quick` end to end (a subprocess on the embedded Ray; marked slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from analysis import claims, figures
from analysis.claims import NO_DATA, NOT_SUPPORTED, NOT_TESTED, SUPPORTED, Claim
from analysis.errors import AnalysisError
from analysis.paper import (
    FIGURES,
    QUICK_SUFFIX,
    FigureOutcome,
    Reproduction,
    SweepRun,
    draw_figures,
    select,
)
from analysis.report import render_html, render_markdown, write_reports
from harness import reproduce
from harness.errors import UserError
from harness.reproduce import figure_spec, shrink
from harness.spec import load_spec
from harness.sweeps_catalog import shipped

NAMES = [f.name for f in FIGURES]
QUICK_NAMES = [f.name for f in FIGURES if not f.full_only]  # what --quick reproduces
BALLOONLAB = [sys.executable, "-c", "from harness.cli import main; main()"]  # the console script


# ---- specs ---------------------------------------------------------------------------------


def test_every_figure_has_a_shipped_spec_of_its_name_and_names_are_unique():
    specs = {name: load_spec(resource) for name, resource in shipped().items()}
    assert set(NAMES) <= set(specs)
    names = [s.name for s in specs.values()]
    assert len(names) == len(set(names))
    for name in NAMES:
        assert specs[name].name == name and specs[name].description


def test_quick_mode_leaves_out_only_the_sampling_validation():
    assert sorted(set(NAMES) - set(QUICK_NAMES)) == ["fig13_sampling_validation"]
    assert [f.name for f in select(quick=True)] == QUICK_NAMES
    assert [f.name for f in select()] == NAMES


@pytest.mark.parametrize("name", QUICK_NAMES)
def test_quick_spec_is_a_smaller_sweep_of_the_same_figure(name):
    full, quick = figure_spec(select(name)[0]), figure_spec(select(name)[0], quick=True)
    assert quick.name == name + QUICK_SUFFIX
    # A handful of runs each; the shoot-out needs one per controller and workload (8 x 3).
    assert 0 < len(quick.runs) <= (24 if name == "controllers" else 12), len(quick.runs)
    assert len(quick.runs) < len(full.runs)
    assert quick.replicates == 1
    # Same kind of run: quick mode shrinks, it does not change what is simulated.
    assert {r.config.mode for r in quick.runs} == {r.config.mode for r in full.runs}
    assert set(quick.varying) == set(full.varying)


def test_shrink_replaces_entries_and_refuses_keys_the_spec_does_not_vary():
    data = {
        "sweep": {"name": "s", "description": "d", "replicates": 3},
        "base": {"ticks": 100},
        "grid": {"host.overcommit": [1.0, 1.5, 2.0]},
    }
    small = shrink(data, {"replicates": 1, "base": {"ticks": 10},
                          "grid": {"host.overcommit": [1.5]}}, "-quick")  # fmt: skip
    assert small["sweep"] == {"name": "s-quick", "description": "d (quick)", "replicates": 1}
    assert small["base"] == {"ticks": 10} and small["grid"] == {"host.overcommit": [1.5]}
    assert data["grid"]["host.overcommit"] == [1.0, 1.5, 2.0]  # the input is not changed
    with pytest.raises(ValueError, match="does not vary"):
        shrink(data, {"grid": {"host.mem_mib": [1]}}, "-quick")
    with pytest.raises(ValueError, match="unknown quick override"):
        shrink(data, {"ticks": 5}, "-quick")


def test_select_by_name_or_prefix():
    assert [f.name for f in select("fig04")] == ["fig04_push_pull"]
    assert [f.name for f in select("fig11_che_validation")] == ["fig11_che_validation"]
    assert select(None) == list(FIGURES)
    for bad in ("fig1", "nope"):  # fig1 is ambiguous (fig10, fig11)
        with pytest.raises(AnalysisError, match="no such figure"):
            select(bad)


def test_che_validation_sweep_covers_several_cache_sizes():
    spec = figure_spec(select("fig11")[0], quick=True)
    sizes = {r.config.replay.cache_mib for r in spec.runs}
    assert len(sizes) >= 4 and {r.config.replay.policy for r in spec.runs} == {"lru"}


# ---- robustness ----------------------------------------------------------------------------


def test_no_store_means_no_data_for_every_figure_and_still_a_report(tmp_path):
    outcomes = draw_figures(tmp_path / "nothing", tmp_path / "out")
    assert [o.verdict for o in outcomes] == [NO_DATA] * len(FIGURES)
    assert all(o.png is None and "no such results directory" in o.error for o in outcomes)
    repro = Reproduction(True, tmp_path / "nothing", tmp_path / "out", "local", [], outcomes, 0.1)
    md, page = write_reports(repro)
    assert md.read_text().count("**Verdict: NO DATA**") == len(FIGURES)
    assert page.read_text().count(">NO DATA</span>") >= len(FIGURES)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """The quick fig07 (lock protocol) and fig11 (replay) sweeps: seconds in-process."""
    results = tmp_path_factory.mktemp("reproduce") / "results"
    runs = reproduce.run_figure_sweeps(
        select("fig07") + select("fig11"), results, quick=True, executor="local", progress=False
    )
    assert [(r.figure, r.error, r.failed) for r in runs] == [
        ("fig07_deadlock", None, 0), ("fig11_che_validation", None, 0)
    ]  # fmt: skip
    return results


def test_a_store_without_per_tick_rows_still_has_a_ticks_view(small_store):
    from analysis import db

    # Lock and replay runs store no per-tick series: the views exist and are empty.
    assert db.query(small_store, "SELECT count(*) FROM ticks_host").rows == [(0,)]
    columns = db.query(small_store, "SELECT * FROM ticks").columns
    assert {"sweep", "run_id", "tick", "vm"} <= set(columns)
    assert db.query(small_store, "SELECT count(*) FROM runs").rows == [(16,)]  # 12 + 4


def test_a_broken_figure_or_check_is_reported_not_raised(small_store, tmp_path, monkeypatch):
    def broken_draw(rows, path, quick=False):
        raise RuntimeError("no ink")

    def broken_check(rows, quick=False):
        raise KeyError("probability")

    monkeypatch.setitem(figures.DRAW, "fig07_deadlock", broken_draw)
    monkeypatch.setitem(claims.CHECKS, "fig11_che_validation", broken_check)
    outcomes = {o.name: o for o in draw_figures(small_store, tmp_path, quick=True)}
    locks, che = outcomes["fig07_deadlock"], outcomes["fig11_che_validation"]
    assert locks.png is None and "drawing failed: RuntimeError: no ink" in locks.error
    assert locks.verdict == NOT_TESTED  # the check still ran on the data (a quick sweep)
    assert che.png is not None and che.png.is_file()
    assert che.verdict == NOT_SUPPORTED and "check failed: KeyError" in che.error
    others = [o for o in outcomes.values() if o not in (locks, che)]
    assert all(o.verdict == NO_DATA and "no stored runs" in o.error for o in others)


def test_reproduce_skips_stored_runs_and_writes_both_reports(small_store, tmp_path):
    repro = reproduce.reproduce(
        tmp_path / "out", small_store, quick=True, only="fig11", executor="local", progress=False
    )
    [sweep] = repro.sweeps
    assert (sweep.runs, sweep.done, sweep.skipped, sweep.error) == (4, 0, 4, None)
    [fig] = repro.figures
    # One replicate of a quick sweep: every condition held, none on an interval.
    assert fig.verdict == NOT_TESTED and fig.png == tmp_path / "out" / "fig11_che_validation.png"
    md, page = repro.report_md.read_text(), repro.report_html.read_text()
    assert "![Fig. 11" in md and "(fig11_che_validation.png)" in md
    assert "data:image/png;base64," in page and "max |simulated - Che|" in page


def test_a_sweep_that_cannot_load_is_reported(tmp_path, monkeypatch):
    def unusable(figure, quick=False):
        raise UserError(f"{figure.name}.toml: [base] mode: must be one of host")

    monkeypatch.setattr(reproduce, "figure_spec", unusable)
    repro = reproduce.reproduce(
        tmp_path / "out", tmp_path / "results", quick=True, only="fig07", executor="local"
    )
    assert repro.sweeps[0].error.endswith("must be one of host")
    assert repro.figures[0].verdict == NO_DATA
    assert "sweep not run" in repro.figures[0].error
    assert "not run:" in repro.report_md.read_text()


def test_reports_state_claim_numbers_conditions_and_verdict(tmp_path):
    png = figures.DRAW["fig07_deadlock"]([], tmp_path / "fig07_deadlock.png")
    claim = Claim(
        figure="fig07_deadlock",
        text=claims.CLAIMS["fig07_deadlock"],
        verdict=NOT_SUPPORTED,
        numbers={"hostmem_first: deadlocked / trials": "3 / 1000", "p": 0.123456},
        conditions=[("natural: deadlocks", True), ("hostmem_first: no schedule deadlocks", False)],
    )
    outcome = FigureOutcome("fig07_deadlock", figures.TITLES["fig07_deadlock"],
                            "fig07_deadlock", claim, png=png, runs=8, failed=1, rows=4)  # fmt: skip
    repro = Reproduction(False, tmp_path / "r", tmp_path, "ray", [SweepRun("fig07_deadlock",
                         "fig07_deadlock", runs=8, done=7, failed=1)], [outcome], 3.2)  # fmt: skip
    md, page = render_markdown(repro), render_html(repro)
    for text in (md, page):
        assert claims.CLAIMS["fig07_deadlock"] in text
        assert "NOT SUPPORTED" in text and "3 / 1000" in text and "0.1235" in text
        assert "hostmem_first: no schedule deadlocks" in text
        assert "full sweeps" in text
    assert "- [ ] hostmem_first: no schedule deadlocks" in md and "- [x] natural" in md
    assert "(fig07_deadlock.png)" in md
    assert page.count("data:image/png;base64,") == 1


def test_reports_say_what_quick_mode_could_not_test(tmp_path):
    claim = Claim(
        figure="fig01_io_amplification",
        text=claims.CLAIMS["fig01_io_amplification"],
        verdict=NOT_TESTED,
        numbers={"x": 1.25, "x 95% CI": [1.0, 1.5]},
        conditions=[("1.5x: host swapping writes per page >= 0.9: 1.02 (n=1, no interval)", True)],
        untested=["at every overcommit ratio: runs at 1.5x only (the quick sweep does not cover "
                  "the range)"],
    )  # fmt: skip
    outcome = FigureOutcome("fig01_io_amplification", "t", "fig01_io_amplification-quick",
                            claim, runs=3, rows=3)  # fmt: skip
    repro = Reproduction(True, tmp_path / "r", tmp_path, "ray", [], [outcome], 1.0)
    md, page = render_markdown(repro), render_html(repro)
    for text in (md, page):
        assert "NOT TESTED IN QUICK MODE" in text
        assert "at every overcommit ratio: runs at 1.5x only" in text
        assert "1 NOT TESTED IN QUICK MODE" in text  # the verdict count in the header
        assert "[1, 1.5]" in text  # the interval among the numbers
    assert outcome.to_dict()["untested"] == claim.untested


# ---- end to end ----------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """A CLI subprocess: Ray on loopback, no usage statistics, plain output."""
    return os.environ | {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "NO_COLOR": "1",
    }


@pytest.mark.slow
@pytest.mark.ray
def test_reproduce_quick_end_to_end(tmp_path):
    out, results = tmp_path / "reproduction", tmp_path / "results"
    cmd = [*BALLOONLAB, "reproduce", "--quick", "--out", str(out),
           "--results", str(results), "--json"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=900,
                          cwd=tmp_path)  # fmt: skip
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    print(f"balloonlab reproduce --quick: {seconds:.1f} s wall")  # shown with -s; not asserted
    assert report["quick"] is True and report["executor"] == "ray"
    assert [f["figure"] for f in report["figures"]] == QUICK_NAMES
    for fig in report["figures"]:
        assert fig["verdict"] in (SUPPORTED, NOT_SUPPORTED, NOT_TESTED), (
            fig["figure"],
            fig["error"],
        )
        # One replicate: nothing quick can be SUPPORTED (fig. 7's trials have intervals, but
        # its concurrencies are the quick grid's).
        assert fig["verdict"] != SUPPORTED, fig
        if fig["verdict"] == NOT_TESTED:
            assert fig["untested"], fig
        assert fig["error"] is None and fig["runs"] > 0 and fig["failed"] == 0
        png = out / f"{fig['figure']}.png"
        assert Path(fig["png"]) == png and png.read_bytes()[:4] == b"\x89PNG"
    assert all(s["error"] is None and s["failed"] == 0 for s in report["sweeps"])
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for fig in report["figures"]:
        assert f"**Verdict: {fig['verdict']}**" in md
        for what in fig["untested"]:  # the report says which condition could not be tested
            assert what in md
        assert claims.CLAIMS[fig["figure"]] in md
    assert page.count("data:image/png;base64,") == len(QUICK_NAMES)
    assert {p.name for p in out.iterdir()} == {f"{n}.png" for n in QUICK_NAMES} | {
        "report.md", "report.html"
    }  # fmt: skip
    stored = {p.name for p in (results / "runs").iterdir()}
    assert stored == {f"sweep={n}{QUICK_SUFFIX}" for n in QUICK_NAMES}
    # The store answers the figures' own queries from the command line too.
    q = subprocess.run(
        [*BALLOONLAB, "query", "fig07_deadlock", "--param",
         f"sweep=fig07_deadlock{QUICK_SUFFIX}", "--results", str(results), "--format", "json"],
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )  # fmt: skip
    assert q.returncode == 0, q.stderr
    assert {r["lock_order"] for r in json.loads(q.stdout)} == {"natural", "hostmem_first"}


def test_shipped_specs_parse_as_toml_with_a_comment_header():
    for name in NAMES:
        text = shipped()[name].read_text()
        assert text.startswith("# Figure "), name  # says what the figure shows, how to run it
        assert tomllib.loads(text)["sweep"]["name"] == name


# ---- the CLI in-process --------------------------------------------------------------------


@pytest.fixture
def balloonlab(balloonlab_cli):
    """The real entry point in-process; returns (exit code, stdout, stderr)."""
    return balloonlab_cli


def test_figures_command_draws_what_has_data(small_store, tmp_path, balloonlab):
    out = tmp_path / "figs"
    code, stdout, err = balloonlab(
        "figures", "--results", str(small_store), "--out", str(out), "--json"
    )
    assert code == 0, err
    by_name = {f["figure"]: f for f in json.loads(stdout)}
    assert set(by_name) == set(NAMES)
    assert by_name["fig07_deadlock"]["sweep"] == "fig07_deadlock-quick"  # found on its own
    assert by_name["fig07_deadlock"]["verdict"] == NOT_TESTED  # quick: not every concurrency
    assert by_name["fig04_push_pull"]["verdict"] == NO_DATA
    assert sorted(p.name for p in out.iterdir()) == [
        "fig07_deadlock.png", "fig11_che_validation.png"
    ]  # fmt: skip
    code, stdout, err = balloonlab(
        "figures", "--results", str(small_store), "--out", str(out), "--only", "fig04", "--full"
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no figure" in err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["reproduce", "--only", "fig99"], "fig99"),
        (["reproduce", "--executor", "threads"], "--executor"),
        (["reproduce", "--executor", "local", "--address", "auto"], "--address"),
        (["figures", "--only", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_and_runs_nothing(args, needle, tmp_path, balloonlab):
    results = tmp_path / "results"
    code, out, err = balloonlab(*args, "--results", str(results), "--out", str(tmp_path / "o"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
    assert "Traceback" not in out + err
    assert not results.exists() and not (tmp_path / "o").exists()


def test_reproduce_plan_lists_every_sweep_and_runs_nothing(tmp_path, monkeypatch):
    """--plan expands every sweep a reproduction runs (full: with the neighbourhoods),
    counts runs and references, and writes nothing."""
    from typer.testing import CliRunner

    from harness import cli

    cli._register()
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    full = runner.invoke(cli.app, ["reproduce", "--plan", "--json"])
    assert full.exit_code == 0, full.output
    out = json.loads(full.stdout)
    names = {s["sweep"] for s in out["sweeps"]}
    for figure in FIGURES:
        if figure.robustness:
            assert figure.name + "-neighbourhood" in names
        assert figure.name in names
    by_name = {s["sweep"]: s for s in out["sweeps"]}
    assert by_name["controllers"]["runs"] == len(figure_spec(select("controllers")[0]).runs)
    assert out["total"]["runs"] == sum(s["runs"] for s in out["sweeps"])
    lo, hi = out["total"]["core_seconds"]
    assert 0 < lo < hi
    quick = json.loads(runner.invoke(cli.app, ["reproduce", "--plan", "--quick", "--json"]).stdout)
    assert all(s["sweep"].endswith("-quick") for s in quick["sweeps"])
    assert quick["total"]["runs"] < out["total"]["runs"] / 10
    assert list(tmp_path.iterdir()) == []  # no results, no reproduction directory

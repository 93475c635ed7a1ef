"""`balloonlab plot` on a custom sweep: the PNG's lines and the `--json` points match a DuckDB
query of the same sweep; `--format html` writes a self-contained page holding the data, and
it renders in headless Chromium. Plus the named capacity queries on known numbers."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import duckdb
import pytest

from analysis import db, plot
from harness import executors

GRID = [
    "--name", "mine",
    "--grid", "host.overcommit=1,1.5,2",
    "--grid", "hypervisor.policy=none,mom",
    "--set", "vms.count=2", "--set", "vms.mem_mib=16", "--set", "ticks=4",
    "--replicates", "4",
]  # fmt: skip


@pytest.fixture
def results(tmp_path, monkeypatch, balloonlab_cli, stand_in):
    """A temporary store holding the custom sweep `mine` (24 runs of the stand-in)."""
    monkeypatch.setattr(executors, "_default_run_fn", lambda: stand_in)
    out = tmp_path / "results"
    code, _, err = balloonlab_cli("run", *GRID, "--executor", "local", "--results", str(out))
    assert code == 0, err
    return out


def _expected(results, y):
    con = db.connect(results)
    rows = con.execute(
        f'SELECT "hypervisor.policy", "host.overcommit", avg({y}), count(*) '
        "FROM completed_runs WHERE sweep = 'mine' GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    con.close()
    return {(p, x): (mean, n) for p, x, mean, n in rows}


def test_plot_png_matches_duckdb(results, tmp_path, balloonlab_cli):
    png = tmp_path / "mine.png"
    code, out, err = balloonlab_cli(
        "plot", "mine", "--results", str(results), "--x", "host.overcommit",
        "--y", "guest_faults", "--hue", "hypervisor.policy", "--out", str(png), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dumped = json.loads(out)
    expected = _expected(results, "guest_faults")
    got = {(p["hue"], p["x"]): (p["mean"], p["n"]) for p in dumped["points"]}
    assert got.keys() == expected.keys()
    for key, (mean, n) in expected.items():
        assert got[key][1] == n == 4
        assert math.isclose(got[key][0], mean, rel_tol=1e-12)
    for p in dumped["points"]:
        assert p["lo"] <= p["mean"] <= p["hi"]

    # The figure itself: one line per policy, its points the same means.
    result = plot.plot(
        results, "mine", "host.overcommit", "guest_faults", hue="hypervisor.policy",
        out=tmp_path / "again.png", keep_figure=True,
    )  # fmt: skip
    [ax] = result.figure.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"none", "mom"}
    for policy, line in lines.items():
        for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True):
            assert math.isclose(y, expected[(policy, float(x))][0], rel_tol=1e-12)
    # A mean that moved would be caught: the check compares real numbers.
    assert len({round(m, 6) for m, _ in expected.values()}) > 1


def test_interval_is_a_seeded_bootstrap():
    values = [1.0, 2.0, 4.0, 8.0]
    a = plot.bootstrap_interval(values, seed=3)
    assert a == plot.bootstrap_interval(values, seed=3)
    assert a[0] < sum(values) / 4 < a[1]
    assert min(values) <= a[0] and a[1] <= max(values)
    assert plot.bootstrap_interval([5.0]) == (5.0, 5.0)


def test_svg_and_facets(results, tmp_path, balloonlab_cli):
    svg = tmp_path / "mine.svg"
    code, out, err = balloonlab_cli(
        "plot", "mine", "--results", str(results), "--x", "hypervisor.policy",
        "--y", "throughput_mean", "--facet", "host.overcommit", "--format", "svg",
        "--out", str(svg), "--json", "--where", '"host.overcommit" > 1',
    )  # fmt: skip
    assert code == 0, err
    assert "<svg" in svg.read_text()[:500]
    points = json.loads(out)["points"]
    assert {p["facet"] for p in points} == {1.5, 2.0}  # --where left 1.0 out
    assert {p["x"] for p in points} == {"none", "mom"}


def _html(results, tmp_path, balloonlab_cli):
    page = tmp_path / "mine.html"
    code, out, err = balloonlab_cli(
        "plot", "mine", "--results", str(results), "--x", "host.overcommit",
        "--y", "guest_faults", "--hue", "hypervisor.policy", "--format", "html",
        "--out", str(page),
    )  # fmt: skip
    assert code == 0, err
    return page


def test_html_page_holds_the_data_and_needs_no_network(results, tmp_path, balloonlab_cli):
    page = _html(results, tmp_path, balloonlab_cli)
    text = page.read_text()
    # No element loads anything: script contents aside, no src= or href= in the page.
    markup = re.sub(r"(?s)(<script[^>]*>).*?</script>", r"\1</script>", text)
    assert markup.count("<script") == 5  # three vendored libraries, the spec, the embed call
    assert not re.search(r"\b(src|href)\s*=", markup)
    start = text.index('id="balloonlab-spec">') + len('id="balloonlab-spec">')
    spec = json.loads(text[start : text.index("</script>", start)])
    rows = spec["data"]["values"]
    stored = db.query(
        results, "SELECT run_id, guest_faults, throughput_mean FROM completed_runs "
        "WHERE sweep = 'mine'",
    ).records()  # fmt: skip
    by_id = {r["run_id"]: r for r in rows}
    assert len(rows) == len(stored) == 24
    for r in stored:
        assert by_id[r["run_id"]]["guest_faults"] == r["guest_faults"]
        assert by_id[r["run_id"]]["throughput_mean"] == r["throughput_mean"]
    options = spec["params"][0]["bind"]["options"]
    assert "guest_faults" in options and "throughput_mean" in options
    # The aggregated table is in the page too.
    assert f"{_expected(results, 'guest_faults')[('mom', 2.0)][0]:.6g}" in text


def test_html_page_renders_in_headless_chromium(results, tmp_path, balloonlab_cli):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = _html(results, tmp_path, balloonlab_cli)
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
         f"--user-data-dir={tmp_path / 'chromium'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert 'data-rendered="ok"' in dom, dom[-2000:]
    assert "Symbol legend titled 'hypervisor.policy'" in dom  # the hue's legend
    # The drawn points (their accessible labels) are the means of the stored runs.
    drawn = re.findall(
        r'aria-label="host\.overcommit: ([0-9.]+); mean: ([0-9.]+); hypervisor\.policy: (\w+)"', dom
    )
    expected = _expected(results, "guest_faults")
    assert {(p, float(x)) for x, _, p in drawn} == set(expected)
    for x, mean, policy in drawn:
        assert math.isclose(float(mean), expected[(policy, float(x))][0], rel_tol=1e-3)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["plot", "nosuch", "--x", "host.overcommit", "--y", "guest_faults"], "nosuch"),
        (["plot", "mine", "--x", "host.overcommt", "--y", "guest_faults"], "host.overcommt"),
        (["plot", "mine", "--x", "host.overcommit", "--y", "nope"], "nope"),
        (["plot", "mine", "--x", "host.overcommit", "--y", "guest_faults", "--where", "x ="],
         "--where"),
        (["plot", "mine", "--x", "host.overcommit", "--y", "guest_faults", "--format", "gif"],
         "--format"),
        (["plot", "mine", "--x", "host.overcommit", "--y", "guest_faults", "--where",
          '"host.overcommit" > 5'], "no completed run"),
    ],
)  # fmt: skip
def test_bad_plot_input_is_one_line(args, needle, results, balloonlab_cli):
    code, out, err = balloonlab_cli(*args, "--results", str(results))
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_plot_help_has_an_example(balloonlab_cli):
    code, out, _ = balloonlab_cli("plot", "--help")
    assert code == 0 and "Example: balloonlab plot" in out


# ---- named capacity queries on known numbers ----------------------------------------------


@pytest.fixture
def economics():
    """completed_runs with profit falling linearly in overcommit: none crosses zero at
    1.5 (profit = 3 - 2x), mom at 1.75 (profit = 3.5 - 2x); two replicates per point."""
    con = duckdb.connect()
    con.execute(
        'CREATE TABLE completed_runs (sweep VARCHAR, "hypervisor.policy" VARCHAR, '
        '"host.overcommit" DOUBLE, "vms.count" BIGINT, profit_per_host_hour DOUBLE, '
        "sla_violations BIGINT, sla_credits_per_host_hour DOUBLE, sla_violated_fraction DOUBLE)"
    )
    for policy, a in (("none", 3.0), ("mom", 3.5)):
        for x in (1.0, 1.25, 1.5, 1.75, 2.0):
            for noise in (-0.01, 0.01):
                violations = 0 if x < 1.5 else 2
                con.execute(
                    "INSERT INTO completed_runs VALUES ('e', ?, ?, 8, ?, ?, ?, ?)",
                    [policy, x, a - 2 * x + noise, violations, 0.1 * x, violations / 80],
                )
    return con


def test_break_even_overcommit(economics):
    rows = {r["policy"]: r for r in db.run_named(economics, "break_even_overcommit",
                                                 {"sweep": "e"}).records()}  # fmt: skip
    assert math.isclose(rows["none"]["break_even_overcommit"], 1.5)
    assert math.isclose(rows["mom"]["break_even_overcommit"], 1.75)
    assert rows["none"]["profitable_at_lowest"] is True
    raised = db.run_named(economics, "break_even_overcommit", {"sweep": "e", "threshold": "0.25"})
    none = next(r for r in raised.records() if r["policy"] == "none")
    assert math.isclose(none["break_even_overcommit"], 1.375)  # between 1.25 (0.5) and 1.5 (0)


def test_most_profitable_overcommit_with_interval(economics):
    rows = {r["policy"]: r for r in db.run_named(economics, "most_profitable_overcommit",
                                                 {"sweep": "e"}).records()}  # fmt: skip
    none = rows["none"]
    assert none["best_overcommit"] == 1.0 and math.isclose(none["profit_per_host_hour"], 1.0)
    # two replicates at +-0.01: sd = 0.01414, t(0.975, 1) = 12.706
    half = 12.706 * math.sqrt(2) * 0.01 / math.sqrt(2)
    assert math.isclose(none["ci_high"] - none["profit_per_host_hour"], half, rel_tol=1e-3)
    assert none["runs"] == 2


def test_sla_violations_by_policy_and_ratio(economics):
    rows = db.run_named(economics, "sla_violations", {"sweep": "e"}).records()
    assert len(rows) == 10
    at = {(r["policy"], r["overcommit"]): r for r in rows}
    assert at[("mom", 2.0)]["violating_vm_share"] == 0.25
    assert at[("mom", 1.0)]["runs_with_violations"] == 0
    assert at[("none", 1.5)]["runs_with_violations"] == 2
    assert at[("none", 2.0)]["violated_window_share"] == pytest.approx(2 / 80)
    assert at[("none", 2.0)]["sla_credits_per_host_hour"] == pytest.approx(0.2)

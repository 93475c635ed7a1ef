"""`balloonlab sim` and `balloonlab bench` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from harness.overrides import parse_overrides, parse_value

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def balloonlab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_values_are_toml_literals_or_strings():
    assert parse_value("4096") == 4096
    assert parse_value("1.5") == 1.5
    assert parse_value("true") is True
    assert parse_value("db") == "db"
    assert parse_overrides(["vms.count=2", "vms.workload=db"]) == {
        "vms.count": 2,
        "vms.workload": "db",
    }


def test_sim_json_has_the_summary_fields(tmp_path):
    config = tmp_path / "host.toml"
    config.write_text(
        'ticks = 10\n\n[hypervisor]\npolicy = "mom"\n\n'
        '[[vms]]\nmem_mib = 64\nworkload = "db"\n\n[[vms]]\nmem_mib = 32\n'
    )
    ticks = tmp_path / "ticks.parquet"
    out = balloonlab("sim", "--config", str(config), "--set", "host.overcommit=1.5",
                     "--ticks-out", str(ticks), "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    for key in ("outcome", "references", "guest_faults", "guest_swap_outs", "guest_swap_ins",
                "writebacks", "file_drops", "host_swap_outs", "host_swap_ins",
                "reclaimed_pages", "io_per_reclaimed_page", "nested_faults",
                "silent_swap_writes", "stale_swap_reads", "false_swap_reads",
                "throughput_mean", "slowdown", "wall_seconds", "refs_per_second"):  # fmt: skip
        assert key in summary, key
    assert summary["vms.count"] == 2 and summary["hypervisor.policy"] == "mom"
    assert summary["host.overcommit"] == 1.5
    import pyarrow.parquet as pq

    assert pq.read_table(ticks).num_rows == 10 * 3


def test_sim_prints_a_table_without_json():
    out = balloonlab("sim", "--set", "ticks=5", "--set", "vms.mem_mib=32")
    assert out.returncode == 0, out.stderr
    assert "throughput_mean" in out.stdout and "outcome" in out.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "host.bogus=1"], "host.bogus"),
        (["--set", "vms.mem_mib=-3"], "vms[0].mem_mib"),
        (["--set", "novalue"], "key=value"),
        (["--config", "/nonexistent/host.toml"], "no such config file"),
    ],
)
def test_sim_bad_input_is_one_line(args, needle):
    out = balloonlab("sim", *args)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_bench_measures_replay_and_simulation():
    out = balloonlab("bench", "--only", "replay", "--only", "sim", "--references", "200000",
                     "--ticks", "5", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    policies = {row["policy"] for row in data["replay"]}
    assert {"clock", "fifo", "esc", "lru", "opt"} <= policies
    for row in data["replay"]:
        assert row["references"] == 200_000 and row["refs_per_second"] > 0
    assert data["sim"]["guests"] == 4 and data["sim"]["references"] > 0
    assert data["sim"]["compile_seconds"] >= 0
    assert data["sim"]["repeats"] == 3
    assert data["sim"]["slowest_refs_per_second"] <= data["sim"]["refs_per_second"]


def test_bench_rejects_an_unknown_part():
    out = balloonlab("bench", "--only", "gpu")
    assert out.returncode != 0 and "gpu" in out.stderr


def test_a_config_file_that_is_not_utf8_is_one_line_naming_it(balloonlab_cli, tmp_path):
    bad = tmp_path / "host.toml"
    bad.write_bytes(b'"vms.count" = 2\n# \xff\xfe\n')
    code, out, err = balloonlab_cli("sim", "--config", str(bad))
    assert code == 2
    assert str(bad) in err and "UTF-8" in err and len(err.strip().splitlines()) == 1


def test_bench_datacenter_builds_the_sampled_512_gib_host_in_its_own_process():
    from harness import bench

    # A parent holding more than the target: the child's peak is its own (ru_maxrss would
    # report the parent's, as Linux carries the larger high-water mark across exec).
    ballast = np.ones(2 * 1024**3 // 8 + 1)
    got = bench.bench_datacenter(ticks=3)
    del ballast
    assert (got["host_gib"], got["guests"], got["guest_gib"], got["rate"]) == (512, 32, 20, 0.01)
    assert got["scenario"] == "benign" and got["ticks"] == 3
    assert got["simulated_seconds"] == pytest.approx(0.3) and got["seconds"] > 0
    # Memory is an upper bound (the target), not a timing: the process is the run's own.
    assert 0 < got["peak_rss_bytes"] < got["rss_target_bytes"] == 2 * 1024**3
    assert got["rss_meets_target"] is True
    assert {"speed_target", "speed_meets_target", "host_swap_outs"} <= set(got)

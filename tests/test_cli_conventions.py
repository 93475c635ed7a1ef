"""The CLI conventions users expect: `--version`, an example in the top-level help, a plain
progress line when stdout is not a terminal, Ctrl-C (SIGINT) and SIGTERM during a sweep
print "interrupted: N runs stored, rerun to resume" and a rerun resumes, with no traceback
and no Ray C++ dump."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import harness.interrupts

SPEC = """
[sweep]
name = "{name}"
seed = 3

[base]
ticks = 3
"vms.count" = 2
"vms.mem_mib" = 16

[grid]
"host.overcommit" = [1.0, 1.25, 1.5, 1.75]
"hypervisor.policy" = ["none", "mom"]
"""

# The real entry point, with every run made to last a second (so a signal lands mid-sweep).
SLOW_MAIN = textwrap.dedent(
    """
    import time
    import harness.executors as ex
    import sim_core

    def slow(cfg):
        time.sleep(1.0)
        return sim_core.run(cfg)

    make = ex.make_executor
    ex.make_executor = lambda kind="ray", **kw: make(kind, **(kw | {"run_fn": slow}))
    from harness.cli import main
    main()
    """
)


def env(**extra: str) -> dict[str, str]:
    """The worktree first on the path, Ray on loopback, no usage stats."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return os.environ | {
        "PYTHONPATH": root + (os.pathsep + path if path else ""),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness.cli", *args]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_version_and_top_level_help(balloonlab_cli):
    from importlib.metadata import version

    code, out, _ = balloonlab_cli("--version")
    assert code == 0 and out.strip() == f"balloonlab {version('balloonlab')}"
    code, out, _ = balloonlab_cli("--help")
    assert code == 0 and "Example: balloonlab run" in out


def test_progress_prints_plain_lines_when_stdout_is_not_a_tty(tmp_path):
    spec = tmp_path / "prog.toml"
    spec.write_text(SPEC.format(name="prog"))
    done = subprocess.run(
        [sys.executable, "-c", SLOW_MAIN, "run", str(spec), "--executor", "local",
         "--results", str(tmp_path / "r")],
        env=env(BALLOONLAB_PROGRESS_SECONDS="0.5"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: prog")]
    assert len(lines) >= 5, done.stderr  # 8 runs of ~1 s, a line every 0.5 s
    assert re.fullmatch(
        r"progress: prog \d+/8 \(done \d+, failed 0, skipped 0\) \d\d:\d\d elapsed, ETA \S+",
        lines[len(lines) // 2],
    ), lines
    assert lines[-1].startswith("progress: prog 8/8 (done 8, failed 0, skipped 0)")
    # Mid-sweep lines estimate the rest from the runs so far.
    assert any(re.search(r"ETA 00:0\d$", line) for line in lines[1:-1])


def _interrupt_mid_sweep(tmp_path: Path, name: str, sig: int, executor: str) -> tuple:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(name=name))
    results = tmp_path / "results"
    runs_dir = results / "runs" / f"sweep={name}"
    args = ["run", str(spec), "--executor", executor, "--results", str(results)]
    if executor == "ray":
        args += ["--batch-size", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_MAIN, *args],
        env=env(BALLOONLAB_PROGRESS_SECONDS="60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(runs_dir.glob("*.parquet"))) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(sig)  # the driver only, as a shell's kill or Ctrl-C would
        out, err = proc.communicate(timeout=120)
    finally:
        _kill_group(proc)
    stored = len(list(runs_dir.glob("*.parquet")))
    return proc.returncode, out, err, stored, spec, results


def _check_resumes(spec: Path, results: Path, stored: int) -> None:
    again = subprocess.run(
        cli("run", str(spec), "--executor", "local", "--results", str(results), "--json"),
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    [report] = json.loads(again.stdout)
    assert (report["skipped"], report["done"], report["failed"]) == (stored, 8 - stored, 0)


def test_ctrl_c_during_a_sweep_says_what_is_stored_and_a_rerun_resumes(tmp_path):
    code, out, err, stored, spec, results = _interrupt_mid_sweep(
        tmp_path, "intr", signal.SIGINT, "local"
    )
    assert code == 130, err
    assert 2 <= stored < 8
    assert err.strip().splitlines()[-1] == f"interrupted: {stored} runs stored, rerun to resume"
    assert "Traceback" not in err
    _check_resumes(spec, results, stored)


@pytest.mark.ray
def test_sigterm_during_a_ray_sweep_is_clean(tmp_path):
    code, out, err, stored, spec, results = _interrupt_mid_sweep(
        tmp_path, "term", signal.SIGTERM, "ray"
    )
    assert code == 143, err
    assert err.strip().splitlines()[-1] == f"interrupted: {stored} runs stored, rerun to resume"
    for dump in ("Traceback", "SIGTERM received", "*** ", "Stack trace", "core_worker"):
        assert dump not in err, err
    _check_resumes(spec, results, stored)


def test_report_outside_a_sweep_is_plain(capsys, monkeypatch):
    monkeypatch.setattr(harness.interrupts, "_sweeping", False)
    assert harness.interrupts.report(KeyboardInterrupt()) == 130
    assert capsys.readouterr().err.strip() == "interrupted"
    assert harness.interrupts.report(harness.interrupts.Terminated()) == 143

"""`balloonlab deadlock`: JSON in both modes, help, one-line errors on bad input."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import harness.commands.deadlock  # noqa: F401  (registers the command on the app)
from harness import cli

# Assemble the app as `balloonlab` does: with every command family registered, `deadlock`
# is a subcommand (Typer turns an app with a single command into that command).
cli._register()
runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(cli.app, ["deadlock", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_exhaustive_json_smallest_instance():
    out = run_json(
        "--guests", "1", "--host-threads", "1", "--ops", "1", "--order", "natural", "--exhaustive"
    )
    assert out["mode"] == "exhaustive"
    assert (out["schedules"], out["deadlocked"]) == (14, 4)  # see test_locks
    assert out["probability"] == pytest.approx(4 / 14)
    assert out["random_scheduler_probability"] == pytest.approx(0.5)
    assert (out["guests"], out["host_threads"], out["ops"], out["order"]) == (1, 1, 1, "natural")
    assert out["seconds"] >= 0
    cycle = out["example"]["cycle"]
    assert set(cycle["threads"]) == {"guest0", "host0"}
    assert set(cycle["locks"]) == {"hostmem", "vmem(0)"}


def test_exhaustive_is_the_default_and_hostmem_first_is_clean():
    out = run_json("--guests", "2", "--host-threads", "2", "--order", "hostmem_first")
    assert out["mode"] == "exhaustive"
    assert out["schedules"] > 0 and out["deadlocked"] == 0 and out["probability"] == 0
    assert out["example"] is None


def test_trials_json_is_seeded():
    args = ("--guests", "2", "--host-threads", "2", "--trials", "200", "--seed", "4")
    a, b = run_json(*args), run_json(*args)
    assert a["mode"] == "trials" and a["schedules"] == 200 and a["seed"] == 4
    assert 0 < a["deadlocked"] < 200
    assert a["probability"] == a["deadlocked"] / 200
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_human_output_names_the_cycle():
    result = runner.invoke(cli.app, ["deadlock", "--guests", "1", "--host-threads", "1"])
    assert result.exit_code == 0, result.output
    assert "deadlock cycle" in result.stdout and "waits for hostmem" in result.stdout


def test_help_has_an_example():
    result = runner.invoke(cli.app, ["deadlock", "--help"])
    assert result.exit_code == 0
    assert "Example: balloonlab deadlock" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--guests", "0"],
        ["--host-threads", "-1"],
        ["--ops", "0"],
        ["--order", "alphabetical"],
        ["--exhaustive", "--trials", "10"],
        ["--trials", "0"],
        ["--seed", "3"],
        ["--trials", "5", "--seed", "-1"],
        ["--guests", "4", "--host-threads", "4", "--max-states", "1000"],
        ["--guests", "two"],
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, monkeypatch, capsys):
    # Through the real entry point, which turns UserError into one line on stderr.
    monkeypatch.setattr(sys, "argv", ["balloonlab", "deadlock", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code not in (0, None)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_too_large_suggests_trials(monkeypatch, capsys):
    monkeypatch.setattr(
        sys, "argv", ["balloonlab", "deadlock", "--guests", "3", "--max-states", "50"]
    )
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    assert "--trials" in capsys.readouterr().err


def test_oom_deadlock_exhaustive_json_old_and_fixed_driver():
    args = ("--guests", "1", "--host-threads", "0", "--oom-tasks", "1", "--exhaustive")
    old = run_json(*args, "--driver", "alloc_under_lock")
    assert (old["oom_tasks"], old["driver"]) == (1, "alloc_under_lock")
    assert (old["schedules"], old["deadlocked"]) == (36, 4)  # derived by hand in test_locks
    assert old["deadlocked_by_kind"] == {"hostmem": 0, "oom": 4, "other": 0}
    cycle = old["example"]["cycle"]
    assert cycle["kind"] == "oom" and set(cycle["locks"]) == {"balloon(0)", "fs(0)"}
    assert set(cycle["threads"]) == {"guest0", "oom0"}
    fixed = run_json(*args, "--driver", "alloc_outside_lock")
    assert (fixed["schedules"], fixed["deadlocked"], fixed["example"]) == (63, 0, None)


def test_oom_trials_split_by_kind_and_default_output_has_no_oom_line():
    out = run_json("--guests", "1", "--host-threads", "1", "--oom-tasks", "1",
                   "--driver", "alloc_under_lock", "--trials", "300", "--seed", "2")  # fmt: skip
    kinds = out["deadlocked_by_kind"]
    assert kinds["hostmem"] > 0 and kinds["oom"] > 0
    assert kinds["hostmem"] + kinds["oom"] == out["deadlocked"]
    result = runner.invoke(
        cli.app, ["deadlock", "--oom-tasks", "1", "--driver", "alloc_under_lock"]
    )
    assert result.exit_code == 0, result.output
    assert "1 OOM task" in result.stdout and "by cycle" in result.stdout
    plain = runner.invoke(cli.app, ["deadlock", "--guests", "1", "--host-threads", "1"])
    assert "OOM" not in plain.stdout and "by cycle" not in plain.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--oom-tasks", "-1"], "--oom-tasks"), (["--driver", "fixed"], "--driver must be one of")],
)
def test_bad_oom_options_are_one_line_naming_the_option(args, needle, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["balloonlab", "deadlock", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code not in (0, None)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err

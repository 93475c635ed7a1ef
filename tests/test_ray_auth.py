"""Joining a Ray cluster that has token authentication on (Ray >= 2.52: RAY_AUTH_MODE=token).

A local head is started on 127.0.0.1 with a token; `balloonlab run --address` with a wrong
or missing token must fail within seconds with one line naming the cause and the fix, and
without Ray's GCS log lines; with the right token the sweep runs on the cluster. The head
is stopped by signalling the `ray start --block` process this test started (it takes its
children down), then its process group: never `ray stop`, which would stop other people's
clusters on this machine."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import executors
from harness.errors import UserError

RIGHT = "balloonlab-test-token-0123456789abcdef"
SPEC = """
[sweep]
name = "auth"

[base]
ticks = 3
"vms.count" = 2
"vms.mem_mib" = 16

[grid]
"host.overcommit" = [1.0, 1.5]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, **extra: str) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"
    }
    path = env.get("PYTHONPATH", "")
    return env | {
        "HOME": str(home),  # no ~/.ray/auth_token of the user's
        "PYTHONPATH": root + (os.pathsep + path if path else ""),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }


@pytest.fixture(scope="module")
def auth_cluster():
    """A one-node Ray head on 127.0.0.1 with token auth on; yields (address, home)."""
    ray_bin = shutil.which("ray")
    if ray_bin is None:
        pytest.fail("the `ray` command is missing: Ray is a dependency")
    # Short paths: Ray's unix sockets live under the temp dir (108-byte limit).
    temp = Path(tempfile.mkdtemp(prefix="blray", dir="/tmp"))
    home = temp / "home"
    home.mkdir()
    port = _free_port()
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
         "--port", str(port), "--num-cpus", "1", "--include-dashboard", "false",
         "--dashboard-port", str(_free_port()),
         "--temp-dir", str(temp / "ray"), "--disable-usage-stats"],
        env=_env(home, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=RIGHT),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        log = []
        for line in head.stdout:
            log.append(line)
            if "Ray runtime started" in line or time.monotonic() > deadline:
                break
        assert head.poll() is None, "ray start --head failed:\n" + "".join(log[-20:])
        yield f"127.0.0.1:{port}", home
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything left in its process group
        except ProcessLookupError:
            pass
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _run(
    address: str, home: Path, tmp_path: Path, **auth: str
) -> tuple[subprocess.CompletedProcess, float]:
    spec = tmp_path / "auth.toml"
    spec.write_text(SPEC)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(spec), "--address", address,
         "--results", str(tmp_path / "results"), "--json"],
        env=_env(home, **auth), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return done, time.monotonic() - start


@pytest.mark.ray
def test_wrong_token_is_one_line_naming_the_fix_within_seconds(auth_cluster, tmp_path):
    address, home = auth_cluster
    done, seconds = _run(
        address, home, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN="wrong-token-0000"
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # no GCS log spam
    assert "token authentication" in lines[0] and "RAY_AUTH_TOKEN" in lines[0]
    assert "~/.ray/auth_token" in lines[0] and address in lines[0]
    assert seconds < 15, seconds  # Ray alone retries for ~20 s
    assert not (tmp_path / "results" / "runs").exists()


@pytest.mark.ray
def test_missing_token_says_to_turn_token_mode_on(auth_cluster, tmp_path):
    address, home = auth_cluster
    done, seconds = _run(address, home, tmp_path)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "export RAY_AUTH_MODE=token" in line and "RAY_AUTH_TOKEN" in line
    assert seconds < 15


@pytest.mark.ray
def test_right_token_runs_the_sweep_on_the_cluster(auth_cluster, tmp_path):
    address, home = auth_cluster
    done, _ = _run(address, home, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=RIGHT)
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert (report["runs"], report["done"], report["failed"]) == (2, 2, 0)


def test_the_error_ray_raises_is_mapped(monkeypatch):
    """The mapping itself, on the exception Ray raises (for `auto` and ray:// addresses,
    which skip the pre-flight check and reach ray.init)."""
    from ray.exceptions import AuthenticationError

    assert executors._is_auth_error(AuthenticationError("RPC error: InvalidAuthToken"))
    assert executors._is_auth_error(ConnectionError("Unauthenticated: InvalidAuthToken"))
    assert not executors._is_auth_error(ConnectionError("Failed to connect to Ray cluster"))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    message = executors.auth_message("10.0.0.1:6379")
    assert "export RAY_AUTH_MODE=token" in message and "10.0.0.1:6379" in message

    import ray

    def refuse(*args, **kwargs):
        raise ConnectionError("RPC error: InvalidAuthToken: token is missing or incorrect")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(UserError, match="token authentication.*RAY_AUTH_TOKEN"):
        executors.RayExecutor("auto").start()

"""Executors: run a sweep's runs and hand each result back to the driver as it arrives.

``LocalExecutor`` runs in-process (for debugging). ``RayExecutor`` fans runs out as Ray
Core tasks, several short runs per task, with a bounded number of tasks in flight; this is
the only module that imports Ray. Both take the run function as a parameter (default
``sim_core.run``, imported lazily where the run executes) and both turn a run that raises
into a ``failed`` summary row, so one bad config never crashes a sweep.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from harness.errors import UserError
from harness.spec import Run
from sim_core.config import SimConfig

RunFn = Callable[[SimConfig], Any]  # SimConfig -> sim_core.result.RunResult


@dataclass
class Completed:
    """One finished run, as the driver receives it."""

    run: Run
    summary: pa.Table  # one row: the run's summary, or its `failed` row
    ticks: pa.Table | None  # None for a failed run
    seconds: float  # wall time of the run in its worker
    node_id: str | None = None  # Ray node id; None off Ray
    host: str | None = None

    @property
    def failed(self) -> bool:
        return self.summary.column("outcome")[0].as_py() == "failed"


def _default_run_fn() -> RunFn:
    from sim_core import run  # lazily: workers import the simulation, not the driver

    return run


def failed_summary(run: Run, error: str) -> pa.Table:
    """The summary row of a run that did not finish: its config columns, outcome `failed`,
    and the error message."""
    row = run.config.flat() | {"outcome": "failed", "error": error}
    return pa.Table.from_pylist([row])


def execute_run(run: Run, run_fn: RunFn | None = None) -> tuple[pa.Table, pa.Table | None, float]:
    """Run one config; never raises for a failure of the run itself."""
    start = time.perf_counter()
    try:
        fn = run_fn or _default_run_fn()
        result = fn(run.config)
        summary = result.summary_table()
        if summary.num_rows != 1 or "outcome" not in summary.column_names:
            raise ValueError("the run's summary must be one row with an `outcome` column")
        ticks = result.ticks_table()
    except Exception as exc:  # a bug or a bad config in one run must not end the sweep
        return failed_summary(run, f"{type(exc).__name__}: {exc}"), None, _since(start)
    return summary, ticks, _since(start)


def _since(start: float) -> float:
    return time.perf_counter() - start


class LocalExecutor:
    """Runs every run in this process, one after the other."""

    name = "local"

    def __init__(self, run_fn: RunFn | None = None) -> None:
        self.run_fn = run_fn

    def map(self, runs: Iterable[Run]) -> Iterator[Completed]:
        """Yield each run's result in order."""
        host = socket.gethostname()
        for run in runs:
            summary, ticks, seconds = execute_run(run, self.run_fn)
            yield Completed(run, summary, ticks, seconds, None, host)

    def close(self) -> None:
        pass

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- Ray ---------------------------------------------------------------------------------


def _run_batch(runs: list[Run], run_fn: RunFn | None) -> dict[str, Any]:
    """Body of one Ray task: run a batch of runs, return their Arrow tables."""
    import ray

    results = []
    for run in runs:
        summary, ticks, seconds = execute_run(run, run_fn)
        results.append((run.run_id, summary, ticks, seconds))
    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "results": results,
    }


def _prepare_environment(embedded: bool) -> None:
    """Environment for Ray, set before it is imported (its constants read it once)."""
    # A sweep never reports usage statistics over the network.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if embedded:
        # On Linux Ray binds to the primary interface even when asked for 127.0.0.1; this
        # switch keeps an embedded instance (and every process it spawns) on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None and os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
            constants.ENABLE_RAY_CLUSTER = False


class RayExecutor:
    """Runs batches of runs as Ray tasks and yields results as tasks finish.

    ``address``: None starts an embedded local Ray on 127.0.0.1 (unless RAY_ADDRESS is
    set); ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` joins a cluster. If Ray is
    already initialized in this process it is used as is and left running on close.
    ``batch_size``: runs per task; None adapts it so that tasks last about
    ``target_task_seconds`` while leaving several tasks per CPU for load balance.
    ``max_in_flight``: tasks submitted but not yet collected (default: 2 per cluster CPU).
    ``max_retries``: Ray resubmits a task whose worker died this many times; after that its
    runs come back as `failed` rows.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        run_fn: RunFn | None = None,
        batch_size: int | None = None,
        max_in_flight: int | None = None,
        max_retries: int = 3,
        num_cpus: int | None = None,
        target_task_seconds: float = 2.0,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.run_fn = run_fn
        self.batch_size = batch_size
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.target_task_seconds = target_task_seconds
        self._owns_ray = False
        self._ray: Any = None
        self._remote: Any = None
        self._fn_ref: Any = None
        self._mean_run_seconds: float | None = None
        self.peak_in_flight = 0  # most tasks ever in flight at once (back-pressure check)

    # -- life cycle --
    def start(self) -> None:
        """Connect to (or start) Ray; idempotent. Called by the first ``map``."""
        if self._ray is not None:
            return
        _prepare_environment(embedded=self.address is None)
        if self.address is not None:
            _check_reachable(self.address)
            _check_auth(self.address)
        import ray

        if not ray.is_initialized():
            quiet = {
                "log_to_driver": False,  # worker output goes to files under the session dir
                "logging_level": logging.ERROR,
            }
            if self.address is None:
                ray.init(
                    address="local",
                    num_cpus=self.num_cpus,
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    **quiet,
                )
            else:
                try:
                    ray.init(address=self.address, **quiet, **_runtime_env())
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    if _is_auth_error(exc):
                        raise UserError(auth_message(self.address)) from None
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise UserError(f"cannot join Ray at {self.address!r}: {first}") from None
            self._owns_ray = True
            # ray.init replaced our SIGTERM handler with a bare sys.exit: put ours back so
            # SIGTERM unwinds like Ctrl-C and Ray is shut down cleanly on the way out.
            from harness import interrupts

            interrupts.install()
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_retries=self.max_retries)(_run_batch)
        self._fn_ref = ray.put(self.run_fn) if self.run_fn is not None else None

    def close(self) -> None:
        """Shut Ray down if this executor started or joined it."""
        if self._ray is not None and self._owns_ray:
            self._ray.shutdown()
        self._ray = None
        self._owns_ray = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling --
    def _cluster_cpus(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def _next_batch_size(self, remaining: int, cpus: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        # Several tasks per CPU for the rest of the sweep, so no core idles at the end ...
        balance = math.ceil(remaining / (4 * cpus))
        # ... but batch short runs so each task amortizes its overhead over ~target seconds.
        if self._mean_run_seconds is None:
            by_time = 4
        else:
            by_time = int(self.target_task_seconds / max(self._mean_run_seconds, 1e-6))
        return max(1, min(balance, by_time, 256))

    def _observe(self, seconds: list[float]) -> None:
        if not seconds:
            return
        mean = sum(seconds) / len(seconds)
        old = self._mean_run_seconds
        self._mean_run_seconds = mean if old is None else 0.7 * old + 0.3 * mean

    def map(self, runs: Iterable[Run]) -> Iterator[Completed]:
        """Yield each run's result as its task finishes (not in submission order)."""
        queue = deque(runs)
        if not queue:
            return
        self.start()
        ray = self._ray
        cpus = self._cluster_cpus()
        limit = self.max_in_flight or 2 * cpus
        in_flight: dict[Any, list[Run]] = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < limit:
                    size = self._next_batch_size(len(queue), cpus)
                    batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                    options: dict[str, Any] = {"scheduling_strategy": "SPREAD"}
                    env = _plugin_runtime_env(batch) if self.address is None else None
                    if env:
                        options["runtime_env"] = env
                    ref = self._remote.options(**options).remote(batch, self._fn_ref)
                    in_flight[ref] = batch
                self.peak_in_flight = max(self.peak_in_flight, len(in_flight))
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    batch = in_flight.pop(ref)
                    yield from self._collect(ref, batch)
        finally:
            for ref in in_flight:  # interrupted: do not leave work running for nobody
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished, or a client that cannot force
                    pass

    def _collect(self, ref: Any, batch: list[Run]) -> Iterator[Completed]:
        try:
            payload = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            # Retries exhausted (worker or node died, object lost) or the task itself broke:
            # the runs are `failed` rows, retried by the next `balloonlab run`.
            error = _describe(exc)
            for run in batch:
                yield Completed(run, failed_summary(run, error), None, 0.0, None, None)
            return
        by_id = {run.run_id: run for run in batch}
        self._observe([seconds for *_, seconds in payload["results"]])
        for run_id, summary, ticks, seconds in payload["results"]:
            yield Completed(
                by_id[run_id], summary, ticks, seconds, payload["node_id"], payload["host"]
            )


def _check_reachable(address: str) -> None:
    """Fail fast on a cluster address nobody listens on (Ray itself retries for minutes)."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"--address {address!r}: expected auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(f"cannot join Ray at {address!r}: {exc.strerror or exc}") from None


def _plugin_runtime_env(batch: list[Run]) -> dict[str, Any] | None:
    """On the embedded Ray, workers find a plug-in controller (``module:Class``) where this
    process found it: its directory goes on their PYTHONPATH. On a cluster the plug-in
    must be installed or shipped with ``BALLOONLAB_RAY_RUNTIME_ENV`` (working_dir)."""
    roots: list[str] = []
    for run in batch:
        policy = getattr(run.config, "hypervisor", None)
        name = getattr(policy, "policy", "")
        if ":" not in name:
            continue
        root = _import_root(name.partition(":")[0])
        if root and root not in roots:
            roots.append(root)
    if not roots:
        return None
    existing = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(roots + existing)}}


def _import_root(module: str) -> str | None:
    """The sys.path entry this process imports ``module`` from (None if it cannot)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = os.path.dirname(spec.origin)
    if spec.submodule_search_locations:  # a package: its parent directory
        origin = os.path.dirname(origin)
    return origin


def _runtime_env() -> dict[str, Any]:
    """``runtime_env`` for joining a cluster, from $BALLOONLAB_RAY_RUNTIME_ENV (JSON, e.g.
    ``{"working_dir": "."}``): how workers without balloonlab installed get the code."""
    text = os.environ.get("BALLOONLAB_RAY_RUNTIME_ENV", "").strip()
    if not text:
        return {}
    try:
        env = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"BALLOONLAB_RAY_RUNTIME_ENV: not JSON: {exc}") from None
    if not isinstance(env, dict):
        raise UserError("BALLOONLAB_RAY_RUNTIME_ENV: must be a JSON object")
    return {"runtime_env": env}


def auth_message(address: str) -> str:
    """The one line for a cluster that refused this client's token."""
    mode = os.environ.get("RAY_AUTH_MODE", "")
    fix = (
        "set RAY_AUTH_TOKEN to the cluster's token (or put it in ~/.ray/auth_token, or "
        "point RAY_AUTH_TOKEN_PATH at a file holding it; `ray get-auth-token` on the head "
        "prints it)"
    )
    if mode.lower() != "token":
        fix = "export RAY_AUTH_MODE=token and " + fix
    return (
        f"cannot join Ray at {address!r}: the cluster uses token authentication and "
        f"rejected this client's token (missing or wrong); fix: {fix}"
    )


def _is_auth_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return "AuthenticationError" in text or "InvalidAuthToken" in text or "UNAUTHENTICATED" in text


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ side of Ray on file descriptor 2 (its GCS client logs each failed
    attempt there, below Python's reach)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _check_auth(address: str) -> None:
    """Ask the cluster's GCS for its id once, with this client's token, before ray.init:
    a wrong or missing token is refused in well under a second, where ray.init retries for
    ~20 s and logs every attempt. Only for host:port (the GCS); `auto` and ray:// are left
    to ray.init, whose error is mapped the same way."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    try:
        from ray._raylet import GcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:  # a Ray without token auth: nothing to check
        return
    try:
        with _quiet_stderr():
            GcsClient(address)
    except AuthenticationError:
        raise UserError(auth_message(address)) from None
    except Exception as exc:  # anything else: ray.init reports it in its own words
        if _is_auth_error(exc):
            raise UserError(auth_message(address)) from None


def _describe(exc: BaseException) -> str:
    """One line for a Ray error: the underlying cause when Ray wraps one."""
    cause = getattr(exc, "cause", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[-1] if isinstance(cause, Exception) and cause is not exc else " ".join(lines)
    return f"{type(cause).__name__}: {text}"[:2000]


def make_executor(
    kind: str = "ray",
    *,
    address: str | None = None,
    batch_size: int | None = None,
    run_fn: RunFn | None = None,
) -> LocalExecutor | RayExecutor:
    """The executor for ``--executor``: ``ray`` (default) or ``local``."""
    if kind == "local":
        return LocalExecutor(run_fn)
    if kind == "ray":
        return RayExecutor(address, run_fn=run_fn, batch_size=batch_size)
    raise ValueError(f"unknown executor {kind!r} (expected ray or local)")

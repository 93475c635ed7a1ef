"""`balloonlab deadlock`: count (or sample) the schedules of the balloon lock protocol that
deadlock."""

from __future__ import annotations

import json
import time

import typer

from harness.cli import app
from harness.errors import UserError
from harness.limits import check_deadlock, default_budget
from sim_core.deadlock_explorer import (
    DEFAULT_MAX_STATES,
    ExplorationTooLarge,
    explore,
    random_trials,
)
from sim_core.locks import (
    BALLOON_DRIVERS,
    DEFAULT_BALLOON_DRIVER,
    LOCK_ORDERS,
    DeadlockCycle,
    build_instance,
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _example(schedule: tuple[str, ...] | None, cycle: DeadlockCycle | None) -> dict | None:
    if cycle is None:
        return None
    return {"schedule": list(schedule or ()), "cycle": cycle.to_dict()}


@app.command()
def deadlock(
    guests: int = typer.Option(2, "--guests", help="Guests, one balloon-driver thread each."),
    host_threads: int = typer.Option(2, "--host-threads", help="Host reclaim threads (>= 0)."),
    ops: int = typer.Option(1, "--ops", help="Balloon operations per thread, back to back."),
    order: str = typer.Option(
        "natural", "--order", help="Lock order: natural (deadlock-prone) or hostmem_first."
    ),
    oom_tasks: int = typer.Option(
        0, "--oom-tasks", help="Guest tasks out of memory whose OOM notifier deflates (>= 0)."
    ),
    driver: str = typer.Option(
        DEFAULT_BALLOON_DRIVER,
        "--driver",
        help="fill_balloon: alloc_under_lock (before Linux c7cdff0e8647) or alloc_outside_lock.",
    ),
    exhaustive: bool = typer.Option(
        False, "--exhaustive", help="Explore every schedule (the default mode)."
    ),
    trials: int | None = typer.Option(
        None, "--trials", help="Instead, run N random schedules and estimate the probability."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of --trials (default 0)."),
    max_states: int = typer.Option(
        DEFAULT_MAX_STATES, "--max-states", help="Refuse --exhaustive beyond this many states."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Count the schedules in which the balloon's lock protocol deadlocks.

    Guest thread g runs OPS balloon ops: lock vmem(g), then hostmem (hypercall).
    Host thread h runs OPS reclaim ops: hostmem, then vmem(g) (callback); its
    k-th op targets guest (h + k) % GUESTS. hostmem_first: hostmem always first.

    --oom-tasks N: task i, in guest i % GUESTS, holds fs(g) while its allocation
    runs the OOM notifier, which takes balloon(g) to deflate. That guest's
    balloon ops wait for fs(g) in direct reclaim: holding balloon(g) with
    --driver alloc_under_lock (the deadlock fixed by Linux c7cdff0e8647), before
    taking it with alloc_outside_lock. Deadlocks are counted by cycle kind
    (hostmem or oom).

    --exhaustive (the default): every schedule (a maximal sequence of choices
    among runnable threads), the deadlocking ones, and the exact deadlock
    probability of a uniformly random scheduler. --trials N --seed S: N random
    schedules instead. `probability` = deadlocked / schedules in both modes.

    Example: balloonlab deadlock --guests 2 --host-threads 2 --trials 500 --json
    """
    if guests < 1:
        raise UserError(f"--guests must be >= 1, got {guests}")
    if host_threads < 0:
        raise UserError(f"--host-threads must be >= 0, got {host_threads}")
    if ops < 1:
        raise UserError(f"--ops must be >= 1, got {ops}")
    if order not in LOCK_ORDERS:
        raise UserError(f"--order must be one of {', '.join(LOCK_ORDERS)}, got {order!r}")
    if oom_tasks < 0:
        raise UserError(f"--oom-tasks must be >= 0, got {oom_tasks}")
    if driver not in BALLOON_DRIVERS:
        raise UserError(f"--driver must be one of {', '.join(BALLOON_DRIVERS)}, got {driver!r}")
    if exhaustive and trials is not None:
        raise UserError("choose one of --exhaustive or --trials N, not both")
    if trials is None and seed is not None:
        raise UserError("--seed applies to --trials only (--exhaustive is not random)")
    if trials is not None and trials < 1:
        raise UserError(f"--trials must be >= 1, got {trials}")
    if seed is not None and seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if max_states < 1:
        raise UserError(f"--max-states must be >= 1, got {max_states}")

    # Before anything is built: an instance, a trial count or a memo that cannot finish or
    # fit is refused here, naming the option.
    check_deadlock(
        guests,
        host_threads,
        ops,
        trials=trials,
        max_states=max_states,
        budget=default_budget(),
        oom_tasks=oom_tasks,
    )
    inst = build_instance(guests, host_threads, ops, order, oom_tasks=oom_tasks, driver=driver)
    oom = f" x {_plural(oom_tasks, 'OOM task')}" if oom_tasks else ""
    shape = (
        f"{_plural(guests, 'guest')} x {_plural(host_threads, 'host thread')}{oom} "
        f"x {_plural(ops, 'op')} each, {order} order"
    )
    if oom_tasks:
        shape += f", {driver}"
    out: dict = {
        "guests": guests,
        "host_threads": host_threads,
        "ops": ops,
        "order": order,
        "oom_tasks": oom_tasks,
        "driver": driver,
        "mode": "exhaustive" if trials is None else "trials",
    }
    start = time.perf_counter()
    if trials is None:
        try:
            res = explore(inst, max_states=max_states)
        except ExplorationTooLarge as exc:
            raise UserError(
                f"{shape}: too large to explore exhaustively ({exc}); "
                "use --trials N, or raise --max-states"
            ) from None
        out.update(
            schedules=res.schedules,
            deadlocked=res.deadlocked,
            probability=res.probability,
            random_scheduler_probability=res.random_scheduler_probability,
            states=res.states,
            deadlocked_by_kind=res.deadlocked_by_kind,
        )
        example = _example(res.example_schedule, res.example_cycle)
    else:
        seed = 0 if seed is None else seed
        res = random_trials(inst, trials, seed)
        out.update(
            schedules=res.trials,
            deadlocked=res.deadlocked,
            probability=res.probability,
            stderr=res.stderr,
            seed=seed,
            deadlocked_by_kind=res.deadlocked_by_kind,
        )
        example = _example(res.example_schedule, res.example_cycle)
    out["seconds"] = round(time.perf_counter() - start, 6)
    out["example"] = example

    if json_out:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"{shape}: {out['mode']}")
    if trials is None:
        typer.echo(f"  schedules          {out['schedules']:,}")
        typer.echo(
            f"  deadlocking        {out['deadlocked']:,} ({out['probability']:.4%} of schedules)"
        )
        typer.echo(
            f"  random scheduler   P(deadlock) = {out['random_scheduler_probability']:.4f} (exact)"
        )
        typer.echo(f"  distinct states    {out['states']:,}")
    else:
        typer.echo(f"  random schedules   {out['schedules']:,} (seed {seed})")
        typer.echo(
            f"  deadlocking        {out['deadlocked']:,}  P(deadlock) = "
            f"{out['probability']:.4f} +- {out['stderr']:.4f}"
        )
    if oom_tasks:
        kinds = out["deadlocked_by_kind"]
        typer.echo(f"  by cycle           hostmem {kinds['hostmem']:,}, oom {kinds['oom']:,}")
    typer.echo(f"  time               {out['seconds']:.3f} s")
    if example is None:
        typer.echo("  no deadlock")
    else:
        typer.echo(f"  example schedule   {' '.join(example['schedule'])}")
        typer.echo(f"  deadlock cycle     {example['cycle']['description']}")

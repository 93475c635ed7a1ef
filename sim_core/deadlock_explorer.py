"""Every interleaving of a small lock-protocol instance, and random-schedule estimates.

:func:`explore` counts the schedules of an :class:`~sim_core.locks.Instance` (defined in
:mod:`sim_core.locks`: maximal sequences of choices among runnable threads) and how many
of them end in a deadlock. The tree of schedules is exponential, but many prefixes lead to
the same :class:`~sim_core.locks.LockState` (program counters, lock owners, wait queues),
and the schedules below a state depend on that state alone. So a depth-first search
memoizes, per state, (schedules below it, deadlocking ones below it): the counts are the
number of root-to-leaf paths through the DAG of states, exact (Python integers), while the
work is proportional to the number of distinct states. A cap on that number refuses
instances too large to finish (:class:`ExplorationTooLarge`).

The same pass also gives the exact deadlock probability under the random scheduler
(uniform among runnable threads at each step), which :func:`random_trials` estimates by
sampling. The two differ from ``deadlocked / schedules``: schedules are not equally likely.
Deadlocks are also counted by the kind of their cycle (:data:`~sim_core.locks.CYCLE_KINDS`:
the hypervisor-lock cycle through hostmem, the OOM-notifier cycle through a balloon lock).
Every lock step, the OOM tasks' and the balloon and fs locks' included, is a step of a
program, so a :class:`~sim_core.locks.LockState` still decides the future: it is the memo key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim_core.locks import (
    CYCLE_KINDS,
    DeadlockCycle,
    Instance,
    LockState,
    initial_state,
    is_finished,
    run_schedule,
    runnable,
    step,
)

DEFAULT_MAX_STATES = 200_000  # ~100 MB of memo at most; 2 guests x 2 hosts x 1 op needs ~10^3


def _no_deadlocks() -> dict[str, int]:
    return dict.fromkeys(CYCLE_KINDS, 0)


class ExplorationTooLarge(Exception):
    """The instance has more distinct states than the cap allows."""

    def __init__(self, max_states: int):
        super().__init__(f"more than {max_states:,} distinct states")
        self.max_states = max_states


@dataclass(frozen=True)
class ExplorationResult:
    """Exact counts over every schedule of an instance.

    ``schedules``: distinct complete schedules; ``deadlocked``: those ending in a deadlock;
    ``states``: distinct states visited; ``random_scheduler_probability``: the exact
    probability that the uniform random scheduler deadlocks; ``example_schedule`` and
    ``example_cycle``: one deadlocking schedule (the first in thread order) and its cycle;
    ``deadlocked_by_kind``: ``deadlocked`` split by cycle kind (every kind, zeros too)."""

    schedules: int
    deadlocked: int
    states: int
    random_scheduler_probability: float
    example_schedule: tuple[str, ...] | None
    example_cycle: DeadlockCycle | None
    deadlocked_by_kind: dict[str, int] = field(default_factory=_no_deadlocks)

    @property
    def probability(self) -> float:
        """Fraction of the schedules that deadlock (each schedule counted once)."""
        return self.deadlocked / self.schedules


@dataclass(frozen=True)
class TrialsResult:
    """``deadlocked`` of ``trials`` random schedules (seeded by ``seed``) deadlocked;
    ``deadlocked_by_kind`` splits them by cycle kind (every kind, zeros too)."""

    trials: int
    deadlocked: int
    seed: int
    example_schedule: tuple[str, ...] | None
    example_cycle: DeadlockCycle | None
    deadlocked_by_kind: dict[str, int] = field(default_factory=_no_deadlocks)

    @property
    def probability(self) -> float:
        """Estimated probability that a random schedule deadlocks."""
        return self.deadlocked / self.trials

    @property
    def stderr(self) -> float:
        """Binomial standard error of :attr:`probability`."""
        p = self.probability
        return math.sqrt(p * (1.0 - p) / self.trials)


# Per state: (schedules below, deadlocking below, probability the random scheduler
# deadlocks, deadlocking below by cycle kind in CYCLE_KINDS order)
_Counts = tuple[int, int, float, tuple[int, ...]]
_NONE = (0,) * len(CYCLE_KINDS)
_LEAF_OK: _Counts = (1, 0, 0.0, _NONE)
_LEAF_DEADLOCK: dict[str, _Counts] = {
    kind: (1, 1, 1.0, tuple(int(k == kind) for k in CYCLE_KINDS)) for kind in CYCLE_KINDS
}


def _children(
    inst: Instance, state: LockState
) -> list[tuple[int, LockState, DeadlockCycle | None, bool]]:
    """(thread, next state, cycle, terminal) for each runnable thread, in thread order."""
    out = []
    for t in runnable(inst, state):
        nxt, cycle = step(inst, state, t)
        out.append((t, nxt, cycle, cycle is not None or is_finished(inst, nxt)))
    return out


def explore(inst: Instance, max_states: int = DEFAULT_MAX_STATES) -> ExplorationResult:
    """Count every schedule of ``inst`` and the deadlocking ones (see the module docstring).
    Raises :class:`ExplorationTooLarge` once more than ``max_states`` states are seen."""
    root = initial_state(inst)
    if is_finished(inst, root):  # no thread has a step: one empty schedule
        return ExplorationResult(1, 0, 1, 0.0, None, None)
    memo: dict[LockState, _Counts] = {}
    pending: dict[LockState, list] = {}  # expanded, waiting for their children's counts
    stack = [root]
    # Iterative post-order DFS: schedules can be far longer than Python's recursion limit.
    while stack:
        state = stack[-1]
        if state in memo:
            stack.pop()
            continue
        kids = pending.get(state)
        if kids is None:
            if len(memo) + len(pending) >= max_states:
                raise ExplorationTooLarge(max_states)
            kids = pending[state] = _children(inst, state)
            assert kids, "a live state always has a runnable thread"
            unseen = [n for _, n, _, term in kids if not term and n not in memo]
            if unseen:
                stack.extend(unseen)
                continue
        del pending[state]
        stack.pop()
        total, dead, prob, kinds = 0, 0, 0.0, _NONE
        for _, nxt, cycle, term in kids:
            if term:
                c = _LEAF_DEADLOCK[cycle.kind] if cycle is not None else _LEAF_OK
            else:
                c = memo[nxt]
            total += c[0]
            dead += c[1]
            prob += c[2]
            if c[1]:
                kinds = tuple(a + b for a, b in zip(kinds, c[3], strict=True))
        memo[state] = (total, dead, prob / len(kids), kinds)
    schedules, deadlocked, prob, kinds = memo[root]
    example, cycle = _example(inst, root, memo) if deadlocked else (None, None)
    by_kind = dict(zip(CYCLE_KINDS, kinds, strict=True))
    return ExplorationResult(schedules, deadlocked, len(memo), prob, example, cycle, by_kind)


def _example(
    inst: Instance, state: LockState, memo: dict[LockState, _Counts]
) -> tuple[tuple[str, ...], DeadlockCycle]:
    """Walk down from ``state`` always taking the first child with a deadlock below it."""
    choices: list[str] = []
    while True:
        for t, nxt, cycle, term in _children(inst, state):
            if cycle is not None or (not term and memo[nxt][1] > 0):
                choices.append(inst.thread_names[t])
                if cycle is not None:
                    return tuple(choices), cycle
                state = nxt
                break
        else:  # unreachable: memo said a deadlock lies below
            raise AssertionError("no deadlocking child below a deadlocking state")


def random_trials(inst: Instance, trials: int, seed: int) -> TrialsResult:
    """Run ``trials`` random schedules of ``inst`` from one ``numpy`` Generator seeded with
    ``seed`` (trial i continues the stream of trial i - 1, so the result is a function of
    (instance, trials, seed))."""
    if trials < 1:
        raise ValueError("trials must be >= 1")
    rng = np.random.default_rng(seed)
    deadlocked = 0
    by_kind = _no_deadlocks()
    example: tuple[str, ...] | None = None
    cycle: DeadlockCycle | None = None
    for _ in range(trials):
        result = run_schedule(inst, rng)
        if result.cycle is not None:
            deadlocked += 1
            by_kind[result.cycle.kind] += 1
            if cycle is None:
                example, cycle = result.choices, result.cycle
    return TrialsResult(trials, deadlocked, seed, example, cycle, by_kind)

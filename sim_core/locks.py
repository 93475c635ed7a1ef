"""The balloon's lock protocol: explicit threads, FIFO locks, a wait-for graph, deadlocks.

Two kinds of lock: ``hostmem`` (one per host: the hypervisor's memory map) and ``vmem(g)``
(one per guest: guest g's memory map). Two kinds of thread run balloon operations ("ops"):

- a **guest thread** (its balloon driver) runs guest ops on its own guest g. Under the
  ``natural`` order an op is: acquire vmem(g); acquire hostmem (the hypercall);
  release hostmem; release vmem(g).
- a **host reclaim thread** runs host ops: acquire hostmem; acquire vmem(g) (the callback
  into guest g); release vmem(g); release hostmem.

Under ``hostmem_first`` every path takes hostmem before vmem, so the guest op becomes:
acquire hostmem; acquire vmem(g); release vmem(g); release hostmem. With one global order
no wait-for cycle can form.

In :func:`build_instance` a thread runs ``ops`` ops back to back; guest thread g always
works on guest g, and host thread h's k-th op (k = 0, 1, ...) targets guest ``(h + k) % G``
(a fixed, deterministic spread: host threads start on different guests and walk round).

**The balloon driver's OOM deadlock**, fixed by Linux commit c7cdff0e8647 ("virtio_balloon:
fix deadlock on OOM", Michael S. Tsirkin, analysis by Tetsuo Handa; in v4.15-rc1, 2017).
Before it, fill_balloon() allocated its pages while holding ``vb->balloon_lock``; under
memory exhaustion the allocation's direct reclaim (a __GFP_FS context) waits for a
filesystem lock held by another task, whose own allocation (GFP_NOFS) reaches
out_of_memory() and its notifier chain: virtballoon_oom_notify() -> leak_balloon(), which
takes balloon_lock. Two more locks per such guest g: ``balloon(g)`` (vb->balloon_lock)
and ``fs(g)``, and a third kind of thread:

- an **OOM task** ``oom<i>`` of guest g allocates while holding fs(g) in a guest out of
  memory, so each op is: acquire fs(g); acquire balloon(g) (leak_balloon from the OOM
  notifier); release balloon(g); release fs(g).

A guest with an OOM task is out of memory, so each guest op of its guest thread (an
inflation, fill_balloon) first allocates, and the allocation waits for fs(g) in direct
reclaim (acquire fs(g); release fs(g)). Where that happens is ``driver``:

- ``alloc_under_lock`` (before c7cdff0e8647): acquire balloon(g); acquire fs(g);
  release fs(g); the guest op; release balloon(g). The guest thread holds balloon(g)
  while it waits for fs(g), held by an OOM task waiting for balloon(g): a cycle of two.
- ``alloc_outside_lock`` (c7cdff0e8647 on: allocate onto a private list, then take
  balloon_lock only to enqueue the pages and tell the host): acquire fs(g); release
  fs(g); acquire balloon(g); the guest op; release balloon(g). Nothing waits for fs(g)
  while holding balloon(g), so that cycle cannot form; with ``hostmem_first`` as well
  the order fs < balloon < hostmem < vmem is global and no cycle forms at all.

The cycle has length 2, not 1: __GFP_NORETRY makes fill_balloon's own allocation give up
before the OOM killer (mm/page_alloc.c, __alloc_pages_slowpath), so the notifier runs in
another task. The notifier's tell_host is left out (leak_balloon is modelled by its lock
alone), and so is oom_lock (taken with mutex_trylock: it never blocks). Balloon(g) and
fs(g) exist only in guests with an OOM task: elsewhere only one thread would take them,
which can neither block nor close a cycle, and instances without OOM tasks stay exactly
as they were. (In Linux 4.19 the OOM notifier gave way to a shrinker; in 5.7
deflate-on-OOM went back to an OOM notifier, "virtio-balloon: Switch back to OOM handler
for VIRTIO_BALLOON_F_DEFLATE_ON_OOM"; fill_balloon still allocates outside the lock.)

Semantics, step by step. A thread's program is a list of acquire/release steps and one
scheduler choice runs one step of one *runnable* thread (not finished, not blocked):

- acquire of a free lock: the thread owns it and moves on;
- acquire of a held lock: the thread joins the lock's FIFO wait queue and blocks. This
  adds the wait-for edge thread -> owner; if that edge closes a cycle, a deadlock has
  formed and is reported (:class:`DeadlockCycle`) at once. Locks are not recursive (a
  kernel ``struct mutex``): a thread acquiring a lock it already owns blocks on itself, the
  self-edge thread -> thread, a cycle of length 1;
- release: the lock passes straight to the head of its wait queue (FIFO hand-off: that
  waiter's acquire completes and it is runnable again) or becomes free.

Hand-off never adds an edge out of a blocked thread, so a cycle can only form when a
thread blocks, and it always contains that thread: checking there catches every deadlock
the moment it forms. A thread holds nothing when it finishes, so while no cycle exists
some thread is runnable.

**Schedules.** A schedule is a maximal sequence of scheduler choices: the thread picked at
each step among the runnable threads, until every thread has finished or a deadlock forms
(a *deadlocking* schedule). Two schedules are different iff their sequences of chosen
threads differ. A blocking acquire is a choice of its own; a step that completes because
of a hand-off is not (it happens inside the releaser's step). A forced choice (one runnable
thread) still belongs to the sequence but does not branch, so the number of schedules is
the number of leaves of the tree of choices. The random scheduler picks uniformly among
the runnable threads at every step (with a ``numpy.random.Generator``; no draw is made for a
forced choice), so different schedules are, in general, not equally likely.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

LOCK_ORDERS = ("natural", "hostmem_first")
# fill_balloon before Linux c7cdff0e8647, and from it on (see the module docstring)
BALLOON_DRIVERS = ("alloc_under_lock", "alloc_outside_lock")
DEFAULT_BALLOON_DRIVER = "alloc_outside_lock"
# What a deadlock cycle runs through: hostmem (the hypervisor-lock cycle), a balloon(g)
# lock (the OOM-notifier cycle of c7cdff0e8647), or neither (hand-built instances only).
CYCLE_KINDS = ("hostmem", "oom", "other")

ACQUIRE = 0
RELEASE = 1
FREE = -1  # owner of a free lock; `waiting` of a thread that waits for nothing

HOSTMEM = 0  # index of the hostmem lock in every instance


@dataclass(frozen=True)
class DeadlockCycle:
    """A cycle in the wait-for graph: ``threads[i]`` waits for ``locks[i]``, which is held by
    ``threads[(i + 1) % n]``. ``threads[0]`` is the thread whose blocking acquire closed the
    cycle. ``guests``: the guests whose memory map (vmem lock) or balloon driver is in it."""

    threads: tuple[str, ...]
    locks: tuple[str, ...]
    guests: frozenset[int]

    @property
    def kind(self) -> str:
        """``hostmem`` if hostmem is in the cycle, else ``oom`` if a balloon(g) lock is,
        else ``other`` (one of :data:`CYCLE_KINDS`)."""
        if "hostmem" in self.locks:
            return "hostmem"
        if any(lock.startswith("balloon(") for lock in self.locks):
            return "oom"
        return "other"

    def describe(self) -> str:
        """One line, e.g. ``guest0 waits for hostmem held by host0; host0 waits for ...``."""
        n = len(self.threads)
        return "; ".join(
            f"{self.threads[i]} waits for {self.locks[i]} held by {self.threads[(i + 1) % n]}"
            for i in range(n)
        )

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "threads": list(self.threads),
            "locks": list(self.locks),
            "guests": sorted(self.guests),
            "kind": self.kind,
            "description": self.describe(),
        }


@dataclass(frozen=True)
class Instance:
    """Threads with their step programs over a set of locks. ``programs[t]`` is a tuple of
    ``(ACQUIRE | RELEASE, lock index)`` steps. ``thread_guests[t]`` is the guest a guest
    thread drives (None for a host thread); ``lock_guests[l]`` the guest of a vmem lock
    (None for hostmem)."""

    order: str
    thread_names: tuple[str, ...]
    thread_guests: tuple[int | None, ...]
    lock_names: tuple[str, ...]
    lock_guests: tuple[int | None, ...]
    programs: tuple[tuple[tuple[int, int], ...], ...]
    driver: str = DEFAULT_BALLOON_DRIVER

    @property
    def n_threads(self) -> int:
        return len(self.thread_names)

    @property
    def n_steps(self) -> int:
        """Steps of all programs together (the length of a schedule with no blocking)."""
        return sum(len(p) for p in self.programs)


class LockState(NamedTuple):
    """Everything that decides the future of a schedule (hashable, for memoization).

    ``pcs[t]``: next step of thread t; ``owners[l]``: owning thread of lock l or FREE;
    ``queues[l]``: threads blocked on lock l, in arrival order; ``waiting[t]``: the lock
    thread t is blocked on or FREE (redundant with ``queues``, kept for speed)."""

    pcs: tuple[int, ...]
    owners: tuple[int, ...]
    queues: tuple[tuple[int, ...], ...]
    waiting: tuple[int, ...]


@dataclass(frozen=True)
class ScheduleResult:
    """One schedule run to its end: the threads chosen, and the deadlock if one formed."""

    choices: tuple[str, ...]
    cycle: DeadlockCycle | None
    state: LockState

    @property
    def deadlocked(self) -> bool:
        return self.cycle is not None


@dataclass(frozen=True)
class RoundResult:
    """One round of concurrent balloon operations. ``deadlocked_guests``: the guests in the
    deadlock cycle (empty if every operation completed); ``steps``: scheduler choices made."""

    deadlocked_guests: frozenset[int]
    cycle: DeadlockCycle | None
    steps: int


# ---------------------------------------------------------------------------- programs


def _check_order(order: str) -> None:
    if order not in LOCK_ORDERS:
        raise ValueError(f"lock order must be one of {', '.join(LOCK_ORDERS)}, not {order!r}")


def _check_driver(driver: str) -> None:
    if driver not in BALLOON_DRIVERS:
        raise ValueError(
            f"balloon driver must be one of {', '.join(BALLOON_DRIVERS)}, not {driver!r}"
        )


def guest_op(vmem: int, order: str) -> tuple[tuple[int, int], ...]:
    """The steps of one guest balloon op on the guest whose vmem lock index is ``vmem``."""
    _check_order(order)
    if order == "natural":  # balloon driver holds its memory map, then makes the hypercall
        return ((ACQUIRE, vmem), (ACQUIRE, HOSTMEM), (RELEASE, HOSTMEM), (RELEASE, vmem))
    return ((ACQUIRE, HOSTMEM), (ACQUIRE, vmem), (RELEASE, vmem), (RELEASE, HOSTMEM))


def host_op(vmem: int, order: str) -> tuple[tuple[int, int], ...]:
    """The steps of one host reclaim op whose callback enters the guest of lock ``vmem``.
    Already hostmem-first, so the same under both orders."""
    _check_order(order)
    return ((ACQUIRE, HOSTMEM), (ACQUIRE, vmem), (RELEASE, vmem), (RELEASE, HOSTMEM))


def inflate_op(
    vmem: int, balloon: int, fs: int, order: str, driver: str
) -> tuple[tuple[int, int], ...]:
    """The steps of one guest op in a guest out of memory: fill_balloon's allocation waits
    for the fs lock ``fs`` in direct reclaim, under (``alloc_under_lock``) or before
    (``alloc_outside_lock``) the balloon lock ``balloon``, which is held over the guest op."""
    _check_driver(driver)
    reclaim = ((ACQUIRE, fs), (RELEASE, fs))
    op = guest_op(vmem, order)
    if driver == "alloc_under_lock":
        return ((ACQUIRE, balloon), *reclaim, *op, (RELEASE, balloon))
    return (*reclaim, (ACQUIRE, balloon), *op, (RELEASE, balloon))


def oom_op(balloon: int, fs: int) -> tuple[tuple[int, int], ...]:
    """The steps of one OOM task op: it holds the fs lock while its allocation reaches the
    OOM notifier, whose leak_balloon takes the balloon lock. The same under every order and
    driver (c7cdff0e8647 left leak_balloon as it was)."""
    return ((ACQUIRE, fs), (ACQUIRE, balloon), (RELEASE, balloon), (RELEASE, fs))


def oom_guest(task: int, guests: int) -> int:
    """The guest that OOM task ``task`` runs in."""
    return task % guests


def host_target(host_thread: int, op: int, guests: int) -> int:
    """The guest that host thread ``host_thread`` reclaims from in its op number ``op``."""
    return (host_thread + op) % guests


def _make_instance(
    order: str,
    guest_threads: Sequence[tuple[str, int, int]],
    host_threads: Sequence[tuple[str, Sequence[int]]],
    oom_threads: Sequence[tuple[str, int, int]] = (),
    driver: str = DEFAULT_BALLOON_DRIVER,
) -> Instance:
    """``guest_threads``: (name, guest, ops); ``host_threads``: (name, target per op);
    ``oom_threads``: (name, guest, ops). Locks: hostmem, the vmem locks, then balloon(g)
    and fs(g) for each guest with an OOM task; threads in the order given."""
    _check_order(order)
    _check_driver(driver)
    guest_ids = sorted(
        {g for _, g, _ in guest_threads}
        | {g for _, ts in host_threads for g in ts}
        | {g for _, g, _ in oom_threads}
    )
    lock_index = {g: i + 1 for i, g in enumerate(guest_ids)}
    out_of_memory = sorted({g for _, g, _ in oom_threads})
    balloon_index = {g: len(guest_ids) + 1 + 2 * i for i, g in enumerate(out_of_memory)}
    fs_index = {g: i + 1 for g, i in balloon_index.items()}
    names, guests, programs = [], [], []
    for name, g, ops in guest_threads:
        names.append(name)
        guests.append(g)
        if g in balloon_index:
            op = inflate_op(lock_index[g], balloon_index[g], fs_index[g], order, driver)
        else:
            op = guest_op(lock_index[g], order)
        programs.append(op * ops)
    for name, targets in host_threads:
        names.append(name)
        guests.append(None)
        programs.append(tuple(s for g in targets for s in host_op(lock_index[g], order)))
    for name, g, ops in oom_threads:
        names.append(name)
        guests.append(g)
        programs.append(oom_op(balloon_index[g], fs_index[g]) * ops)
    return Instance(
        order=order,
        thread_names=tuple(names),
        thread_guests=tuple(guests),
        lock_names=(
            "hostmem",
            *(f"vmem({g})" for g in guest_ids),
            *(f"{kind}({g})" for g in out_of_memory for kind in ("balloon", "fs")),
        ),
        lock_guests=(None, *guest_ids, *(g for g in out_of_memory for _ in range(2))),
        programs=tuple(programs),
        driver=driver,
    )


def build_instance(
    guests: int,
    host_threads: int,
    ops: int,
    order: str,
    *,
    oom_tasks: int = 0,
    driver: str = DEFAULT_BALLOON_DRIVER,
) -> Instance:
    """``guests`` guest threads (guest g's is ``guest<g>``), ``host_threads`` host reclaim
    threads (``host<h>``) and ``oom_tasks`` OOM tasks (``oom<i>``, in guest
    :func:`oom_guest`), each running ``ops`` ops back to back (host targets by
    :func:`host_target`). ``driver`` decides the guest ops of guests with an OOM task."""
    if guests < 1 or host_threads < 0 or ops < 1 or oom_tasks < 0:
        raise ValueError("need guests >= 1, host_threads >= 0, ops >= 1 and oom_tasks >= 0")
    return _make_instance(
        order,
        [(f"guest{g}", g, ops) for g in range(guests)],
        [
            (f"host{h}", [host_target(h, k, guests) for k in range(ops)])
            for h in range(host_threads)
        ],
        [(f"oom{i}", oom_guest(i, guests), ops) for i in range(oom_tasks)],
        driver,
    )


def instance_steps(guests: int, host_threads: int, ops: int, oom_tasks: int = 0) -> int:
    """The steps of all programs of :func:`build_instance` together, without building it:
    4 per guest, host and OOM-task op, and 4 more per guest op in a guest with an OOM task."""
    out_of_memory = min(guests, oom_tasks)  # OOM tasks fill guests 0, 1, ... first
    return 4 * ops * (guests + host_threads + oom_tasks + out_of_memory)


def round_instance(
    ballooning_guests: Sequence[int], host_reclaim_targets: Sequence[int], order: str
) -> Instance:
    """One op per ballooning guest (thread ``guest<g>``) and one host op per entry of
    ``host_reclaim_targets`` (thread ``host<i>`` reclaims from guest
    ``host_reclaim_targets[i]``; several may target the same guest)."""
    gs = [int(g) for g in ballooning_guests]
    if len(set(gs)) != len(gs):
        raise ValueError(f"a guest has one balloon driver; duplicate in {gs}")
    return _make_instance(
        order,
        [(f"guest{g}", g, 1) for g in gs],
        [(f"host{i}", [int(g)]) for i, g in enumerate(host_reclaim_targets)],
    )


# ---------------------------------------------------------------------------- semantics


def initial_state(inst: Instance) -> LockState:
    """No thread has started, every lock is free."""
    n, m = inst.n_threads, len(inst.lock_names)
    return LockState((0,) * n, (FREE,) * m, ((),) * m, (FREE,) * n)


def runnable(inst: Instance, state: LockState) -> list[int]:
    """Threads the scheduler may pick: not finished and not blocked."""
    pcs, waiting, programs = state.pcs, state.waiting, inst.programs
    return [t for t in range(len(pcs)) if waiting[t] == FREE and pcs[t] < len(programs[t])]


def is_finished(inst: Instance, state: LockState) -> bool:
    """Every thread has run its whole program."""
    return all(pc == len(p) for pc, p in zip(state.pcs, inst.programs, strict=True))


def wait_for_graph(state: LockState) -> dict[int, int]:
    """Edges blocked thread -> thread owning the lock it waits for (at most one each; ``t: t``
    for a thread waiting for a lock it owns itself)."""
    return {t: state.owners[lock] for t, lock in enumerate(state.waiting) if lock != FREE}


def _cycle_through(inst: Instance, state: LockState, t: int) -> DeadlockCycle | None:
    """The wait-for cycle through the just-blocked thread ``t``, if its new edge closed one.
    Each blocked thread has exactly one outgoing edge, so following them is enough; a
    self-edge (``t`` waits for a lock it owns) is the cycle ``(t,)`` of length 1."""
    threads, locks = [t], []
    cur = t
    while True:
        lock = state.waiting[cur]
        locks.append(lock)
        cur = state.owners[lock]
        if cur == t:
            break
        if state.waiting[cur] == FREE:  # the chain ends at a thread that can run
            return None
        threads.append(cur)
    guests = {inst.thread_guests[x] for x in threads} | {inst.lock_guests[x] for x in locks}
    guests.discard(None)
    return DeadlockCycle(
        threads=tuple(inst.thread_names[x] for x in threads),
        locks=tuple(inst.lock_names[x] for x in locks),
        guests=frozenset(guests),
    )


def step(inst: Instance, state: LockState, t: int) -> tuple[LockState, DeadlockCycle | None]:
    """Run the next step of runnable thread ``t``; the new state, and the deadlock cycle if
    this step (a blocking acquire) closed one."""
    pcs, owners, queues, waiting = state
    kind, lock = inst.programs[t][pcs[t]]
    if kind == ACQUIRE:
        if owners[lock] == FREE:
            return (
                LockState(_set(pcs, t, pcs[t] + 1), _set(owners, lock, t), queues, waiting),
                None,
            )
        blocked = LockState(
            pcs, owners, _set(queues, lock, queues[lock] + (t,)), _set(waiting, t, lock)
        )
        return blocked, _cycle_through(inst, blocked, t)
    if owners[lock] != t:
        raise RuntimeError(f"{inst.thread_names[t]} releases {inst.lock_names[lock]} unheld")
    pcs = _set(pcs, t, pcs[t] + 1)
    queue = queues[lock]
    if not queue:
        return LockState(pcs, _set(owners, lock, FREE), queues, waiting), None
    nxt = queue[0]  # FIFO hand-off: the head waiter's acquire completes now
    return (
        LockState(
            _set(pcs, nxt, pcs[nxt] + 1),
            _set(owners, lock, nxt),
            _set(queues, lock, queue[1:]),
            _set(waiting, nxt, FREE),
        ),
        None,
    )


def _set(tup: tuple, i: int, value) -> tuple:
    return tup[:i] + (value,) + tup[i + 1 :]


# ---------------------------------------------------------------------------- scheduling


def replay(inst: Instance, choices: Sequence[str | int]) -> ScheduleResult:
    """Run the given choices (thread names or indices) from the start; stops early at a
    deadlock. Raises ValueError if a choice is not runnable."""
    state, cycle, done = initial_state(inst), None, []
    for c in choices:
        t = inst.thread_names.index(c) if isinstance(c, str) else int(c)
        if cycle is not None or t not in runnable(inst, state):
            raise ValueError(f"thread {inst.thread_names[t]} is not runnable at step {len(done)}")
        state, cycle = step(inst, state, t)
        done.append(inst.thread_names[t])
    return ScheduleResult(tuple(done), cycle, state)


def run_schedule(inst: Instance, rng: np.random.Generator) -> ScheduleResult:
    """One schedule to its end, each choice uniform among the runnable threads."""
    state, done = initial_state(inst), []
    while True:
        ready = runnable(inst, state)
        if not ready:  # no cycle and nothing runnable can only mean everyone finished
            assert is_finished(inst, state)
            return ScheduleResult(tuple(done), None, state)
        t = ready[0] if len(ready) == 1 else ready[int(rng.integers(len(ready)))]
        done.append(inst.thread_names[t])
        state, cycle = step(inst, state, t)
        if cycle is not None:
            return ScheduleResult(tuple(done), cycle, state)


def balloon_round(
    ballooning_guests: Sequence[int],
    host_reclaim_targets: Sequence[int],
    order: str,
    rng: np.random.Generator,
) -> RoundResult:
    """One round of concurrent balloon operations under a random schedule: each guest in
    ``ballooning_guests`` runs one guest op, host reclaim thread i runs one host op on guest
    ``host_reclaim_targets[i]``. Returns the guests caught in a deadlock cycle (empty when
    every op completed). Deterministic for a given ``rng`` state; never deadlocks under
    ``hostmem_first``."""
    inst = round_instance(ballooning_guests, host_reclaim_targets, order)
    if inst.n_threads == 0:
        return RoundResult(frozenset(), None, 0)
    result = run_schedule(inst, rng)
    guests = result.cycle.guests if result.cycle is not None else frozenset()
    return RoundResult(guests, result.cycle, len(result.choices))

"""The balloon lock protocol: hand-checked counts, lock ordering, random schedules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_core.config import ConfigError, build_config
from sim_core.deadlock_explorer import ExplorationTooLarge, explore, random_trials
from sim_core.locks import (
    ACQUIRE,
    HOSTMEM,
    RELEASE,
    Instance,
    balloon_round,
    build_instance,
    initial_state,
    instance_steps,
    is_finished,
    replay,
    round_instance,
    runnable,
    step,
    wait_for_graph,
)
from sim_core.modes import run


def brute_force(inst) -> tuple[int, int]:
    """Count schedules by walking the whole tree of choices, no memoization: an independent
    check of the explorer's counting through the DAG of states."""

    def walk(state) -> tuple[int, int]:
        total = dead = 0
        for t in runnable(inst, state):
            nxt, cycle = step(inst, state, t)
            if cycle is not None:
                total, dead = total + 1, dead + 1
            elif is_finished(inst, nxt):
                total += 1
            else:
                a, b = walk(nxt)
                total, dead = total + a, dead + b
        return total, dead

    return walk(initial_state(inst))


def test_smallest_natural_instance_matches_hand_derivation():
    # 1 guest thread g and 1 host thread h, one op each, natural order:
    #   g: g1 acq V, g2 acq H, g3 rel H, g4 rel V      h: h1 acq H, h2 acq V, h3 rel V, h4 rel H
    # A schedule = maximal sequence of choices among runnable threads; a blocking acquire is
    # a choice, an acquire completed by a hand-off is not. Write (i, j) = steps done by g, h.
    # (1,1): g holds V and wants H, h holds H and wants V. Whoever moves next blocks, the
    #   other is then the only runnable thread and blocks too, closing the cycle:
    #   2 schedules, both deadlocking.
    # (3,1) [g holds V, h holds H and wants V]: g4 then h runs alone (1), or h2 blocks, g4
    #   hands V to h, h runs alone (1): 2 schedules.
    # (3,0) [g holds V]: g4 then h alone (1), or h1 -> (3,1) (2): 3.
    # (2,0) [g holds V,H]: g3 -> (3,0) (3), or h1 blocks on H, g3 hands H to h -> (3,1) (2): 5.
    # (1,0): g2 -> (2,0) (5), or h1 -> (1,1) (2, deadlock): 7, of which 2 deadlock.
    # (0,1) is the mirror image of (1,0) (h2 -> (0,2): 5 with no deadlock; g1 -> (1,1)): 7, 2.
    # (0,0): 7 + 7 = 14 schedules, 2 + 2 = 4 deadlocking.
    # Under the random scheduler it deadlocks iff its first two choices differ: P = 1/2.
    res = explore(build_instance(1, 1, 1, "natural"))
    assert (res.schedules, res.deadlocked) == (14, 4)
    assert res.random_scheduler_probability == pytest.approx(0.5)
    assert res.example_cycle is not None
    assert set(res.example_cycle.threads) == {"guest0", "host0"}


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1), (1, 1, 2), (1, 1, 3), (2, 1, 1), (1, 2, 1), (2, 2, 1), (2, 2, 2), (3, 2, 1)],
)
def test_hostmem_first_never_deadlocks_where_natural_does(shape):
    ordered = explore(build_instance(*shape, "hostmem_first"))
    assert ordered.schedules > 1
    assert ordered.deadlocked == 0
    assert ordered.example_cycle is None
    assert ordered.random_scheduler_probability == 0.0
    natural = explore(build_instance(*shape, "natural"))
    assert natural.deadlocked > 0  # the same shape is deadlock-prone without the order


def test_natural_two_by_two_deadlocks_and_names_the_cycle():
    inst = build_instance(2, 2, 1, "natural")
    res = explore(inst)
    assert 0 < res.deadlocked < res.schedules
    cycle = res.example_cycle
    assert cycle is not None and len(cycle.threads) == len(cycle.locks) == 2
    # The schedule replays to the very same cycle.
    assert replay(inst, res.example_schedule).cycle == cycle
    guest_thread = next(t for t in cycle.threads if t.startswith("guest"))
    g = int(guest_thread.removeprefix("guest"))
    assert set(cycle.locks) == {"hostmem", f"vmem({g})"}
    assert cycle.guests == frozenset({g})


@pytest.mark.parametrize(
    ("shape", "order"),
    [
        ((1, 1, 2), "natural"),
        ((2, 1, 1), "natural"),
        ((1, 2, 1), "natural"),
        ((1, 1, 2), "hostmem_first"),
        ((2, 1, 1), "hostmem_first"),
    ],
)
def test_memoized_counts_equal_brute_force(shape, order):
    inst = build_instance(*shape, order)
    res = explore(inst)
    assert (res.schedules, res.deadlocked) == brute_force(inst)
    assert res.states < res.schedules  # memoization did merge paths


def test_cycle_detected_when_the_closing_acquire_blocks():
    inst = build_instance(1, 1, 1, "natural")
    # host0 takes hostmem, guest0 takes vmem(0), guest0 blocks on hostmem: no cycle yet.
    partial = replay(inst, ["host0", "guest0", "guest0"])
    assert partial.cycle is None
    g, h = inst.thread_names.index("guest0"), inst.thread_names.index("host0")
    assert wait_for_graph(partial.state) == {g: h}
    assert runnable(inst, partial.state) == [h]
    # host0 now blocks on vmem(0), held by guest0: the cycle closes at this acquire.
    full = replay(inst, ["host0", "guest0", "guest0", "host0"])
    assert full.cycle is not None
    assert full.cycle.threads == ("host0", "guest0")
    assert full.cycle.locks == ("vmem(0)", "hostmem")
    assert full.cycle.guests == frozenset({0})
    assert "host0 waits for vmem(0) held by guest0" in full.cycle.describe()
    assert wait_for_graph(full.state) == {g: h, h: g}


def test_release_hands_the_lock_to_the_first_waiter():
    inst = build_instance(1, 2, 1, "natural")  # both host threads target guest 0
    g, h0, h1 = (inst.thread_names.index(n) for n in ("guest0", "host0", "host1"))
    # guest0 takes vmem(0) and hostmem; host1 then host0 queue on hostmem.
    res = replay(inst, ["guest0", "guest0", "host1", "host0"])
    assert res.state.queues[HOSTMEM] == (h1, h0)
    res = replay(inst, ["guest0", "guest0", "host1", "host0", "guest0"])  # releases hostmem
    assert res.state.owners[HOSTMEM] == h1
    assert res.state.queues[HOSTMEM] == (h0,)
    assert h1 in runnable(inst, res.state) and h0 not in runnable(inst, res.state)
    assert res.state.pcs[h1] == 1  # its acquire completed in the hand-off
    assert g in runnable(inst, res.state)


def test_replay_refuses_a_blocked_thread():
    inst = build_instance(1, 1, 1, "natural")
    with pytest.raises(ValueError, match="not runnable"):
        replay(inst, ["host0", "guest0", "guest0", "guest0"])


def test_host_targets_walk_round_the_guests():
    inst = build_instance(3, 2, 3, "natural")
    h1 = inst.thread_names.index("host1")
    vmem_taken = [inst.lock_names[lock] for kind, lock in inst.programs[h1][1::4]]
    assert vmem_taken == ["vmem(1)", "vmem(2)", "vmem(0)"]  # (h + k) % G for k = 0, 1, 2


def test_explorer_refuses_too_large_instances():
    with pytest.raises(ExplorationTooLarge):
        explore(build_instance(2, 2, 2, "natural"), max_states=100)


def test_random_trials_are_reproducible():
    inst = build_instance(2, 2, 1, "natural")
    a, b = random_trials(inst, 300, seed=7), random_trials(inst, 300, seed=7)
    assert a == b
    assert a.example_cycle is not None and a.example_schedule is not None


def test_random_trials_agree_with_exact_probability():
    inst = build_instance(2, 2, 1, "natural")
    exact = explore(inst).random_scheduler_probability
    est = random_trials(inst, 2000, seed=3)
    assert abs(est.probability - exact) < 5 * max(est.stderr, 1e-3)


def test_deadlock_probability_rises_with_concurrent_operations():
    # n guests each ballooning while n host threads reclaim (2n concurrent operations).
    # Exact values: 0.50, 0.81, 0.98; 1000 trials give a standard error under 0.016.
    probs = [
        random_trials(build_instance(n, n, 1, "natural"), 1000, seed=11).probability
        for n in (1, 2, 4)
    ]
    assert probs[0] < probs[1] < probs[2]
    assert probs[2] - probs[0] > 0.3
    for n in (1, 2, 4):
        assert random_trials(build_instance(n, n, 1, "hostmem_first"), 300, seed=11).deadlocked == 0


def test_balloon_round_deadlock_rate_rises_with_concurrency():
    def rate(n: int) -> float:
        rng = np.random.default_rng(5)
        guests = list(range(n))
        return np.mean(
            [bool(balloon_round(guests, guests, "natural", rng).cycle) for _ in range(800)]
        )

    assert rate(1) < rate(4)


def test_balloon_round_is_deterministic():
    def rounds(seed: int) -> list:
        rng = np.random.default_rng(seed)
        return [balloon_round([0, 1, 2], [2, 0, 0], "natural", rng) for _ in range(50)]

    first = rounds(42)
    assert first == rounds(42)
    assert any(r.deadlocked_guests for r in first)  # the comparison is not vacuous


@settings(max_examples=60, deadline=None)
@given(
    guests=st.lists(st.integers(0, 5), unique=True, max_size=5),
    targets=st.lists(st.integers(0, 5), max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_balloon_round_cycles_stay_within_the_contending_guests(guests, targets, seed):
    ordered = balloon_round(guests, targets, "hostmem_first", np.random.default_rng(seed))
    assert ordered.cycle is None and ordered.deadlocked_guests == frozenset()
    natural = balloon_round(guests, targets, "natural", np.random.default_rng(seed))
    # A cycle needs a ballooning guest whose memory map a host thread also wants.
    assert natural.deadlocked_guests <= set(guests) & set(targets)
    if natural.cycle is not None:
        assert len(natural.deadlocked_guests) == 1
        assert {"hostmem"} < set(natural.cycle.locks)


def test_balloon_round_rejects_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        balloon_round([1, 1], [1], "natural", rng)
    with pytest.raises(ValueError):
        round_instance([0], [0], "alphabetical")
    empty = balloon_round([], [], "natural", rng)
    assert empty.cycle is None and empty.steps == 0


# ---------------------------------------------------------------------------- self-deadlock


def _hand_built(programs: dict[str, list[tuple[int, int]]], locks: tuple[str, ...]) -> Instance:
    """An instance written step by step: thread name -> its (ACQUIRE | RELEASE, lock) steps."""
    return Instance(
        order="natural",
        thread_names=tuple(programs),
        thread_guests=(None,) * len(programs),
        lock_names=locks,
        lock_guests=(None,) * len(locks),
        programs=tuple(tuple(p) for p in programs.values()),
    )


def test_reacquiring_an_owned_lock_is_a_self_cycle():
    # t0: acquire L, acquire L again (a non-recursive mutex), release, release.
    # t1: acquire L, release L.
    inst = _hand_built(
        {"t0": [(ACQUIRE, 0), (ACQUIRE, 0), (RELEASE, 0)], "t1": [(ACQUIRE, 0), (RELEASE, 0)]},
        ("L",),
    )
    # t0 takes L; t1 blocks on it (edge t1 -> t0, no cycle); t0 re-acquires L: self-edge.
    partial = replay(inst, ["t0", "t1"])
    assert partial.cycle is None
    assert wait_for_graph(partial.state) == {1: 0}
    res = replay(inst, ["t0", "t1", "t0"])
    assert res.cycle is not None
    assert (res.cycle.threads, res.cycle.locks) == (("t0",), ("L",))  # length 1: t1 only waits
    assert res.cycle.describe() == "t0 waits for L held by t0"
    assert wait_for_graph(res.state) == {0: 0, 1: 0}
    assert res.state.queues[0] == (1, 0)  # t0 queued behind t1 on its own lock
    # Every schedule deadlocks: t0 first, then t0 (t0 t0) or t1 blocking first (t0 t1 t0);
    # t1 first, then t1 releasing (t1 t1 t0 t0) or t0 blocking until t1's release hands it L
    # (t1 t0 t1 t0). 4 schedules, all deadlocking on t0's self-edge.
    res = explore(inst)
    assert (res.schedules, res.deadlocked) == (4, 4) == brute_force(inst)
    assert res.random_scheduler_probability == pytest.approx(1.0)


# ---------------------------------------------------------------- the OOM deadlock (c7cdff0e8647)

OLD, FIXED = "alloc_under_lock", "alloc_outside_lock"


def oom_instance(driver: str, order: str = "natural"):
    """1 guest thread, no host thread, 1 OOM task in guest 0, one op each."""
    return build_instance(1, 0, 1, order, oom_tasks=1, driver=driver)


def test_oom_programs_follow_fill_balloon_before_and_after_the_fix():
    old, fixed = oom_instance(OLD), oom_instance(FIXED)
    assert old.lock_names == fixed.lock_names == ("hostmem", "vmem(0)", "balloon(0)", "fs(0)")
    assert old.thread_names == ("guest0", "oom0") and old.thread_guests == (0, 0)

    def named(inst, t):
        return [
            ("acq" if k == ACQUIRE else "rel", inst.lock_names[lk]) for k, lk in inst.programs[t]
        ]

    op = [("acq", "vmem(0)"), ("acq", "hostmem"), ("rel", "hostmem"), ("rel", "vmem(0)")]
    reclaim = [("acq", "fs(0)"), ("rel", "fs(0)")]
    assert named(old, 0) == [("acq", "balloon(0)"), *reclaim, *op, ("rel", "balloon(0)")]
    assert named(fixed, 0) == [*reclaim, ("acq", "balloon(0)"), *op, ("rel", "balloon(0)")]
    leak = [("acq", "fs(0)"), ("acq", "balloon(0)"), ("rel", "balloon(0)"), ("rel", "fs(0)")]
    assert named(old, 1) == named(fixed, 1) == leak


def test_old_driver_deadlocks_in_the_schedule_of_the_commit_message():
    inst = oom_instance(OLD)
    g, o = inst.thread_names.index("guest0"), inst.thread_names.index("oom0")
    balloon, fs = inst.lock_names.index("balloon(0)"), inst.lock_names.index("fs(0)")
    # 1. guest0: fill_balloon takes balloon_lock.
    res = replay(inst, ["guest0"])
    assert res.state.owners[balloon] == g
    # 2. oom0: the other task takes the fs lock.
    res = replay(inst, ["guest0", "oom0"])
    assert res.state.owners[fs] == o
    # 3. guest0: its allocation's direct reclaim waits for the fs lock: blocked, no cycle.
    res = replay(inst, ["guest0", "oom0", "guest0"])
    assert res.cycle is None
    assert wait_for_graph(res.state) == {g: o}
    assert runnable(inst, res.state) == [o]
    # 4. oom0: its allocation runs the OOM notifier; leak_balloon waits for balloon_lock.
    res = replay(inst, ["guest0", "oom0", "guest0", "oom0"])
    assert res.cycle is not None
    assert res.cycle.threads == ("oom0", "guest0")
    assert res.cycle.locks == ("balloon(0)", "fs(0)")
    assert res.cycle.kind == "oom" and res.cycle.guests == frozenset({0})
    assert wait_for_graph(res.state) == {g: o, o: g}
    # The same four choices with the fixed driver: guest0 takes fs(0) first, oom0 blocks on
    # it, guest0's release hands it over, and oom0 gets balloon_lock: no cycle.
    res = replay(oom_instance(FIXED), ["guest0", "oom0", "guest0", "oom0"])
    assert res.cycle is None
    assert res.state.owners[balloon] == o and res.state.owners[fs] == o


def test_oom_instance_counts_match_hand_derivation():
    # Old driver, g: g1 acq B, g2 acq F, g3 rel F, g4..g7 the guest op, g8 rel B;
    # o: o1 acq F, o2 acq B, o3 rel B, o4 rel F. (a, b) = steps done by g and o.
    # With g past g3 and k steps left (holding B): M(k, 1) = M(k-1, 1) + 1 (o2 blocks,
    # then all is forced), M(0, .) = 1, so M(k, 1) = k + 1; M(k, 0) = M(k-1, 0) + M(k, 1),
    # so M(k, 0) = C(k + 2, 2). (3,0) = M(5,0) = 21, (3,1) = M(5,1) = 6.
    # (2,0): g3 -> 21, or o1 blocks and g3 hands F over -> (3,1) = 6: 27.
    # (1,1): g holds B wanting F, o holds F wanting B: 2 schedules, both deadlocking.
    # (1,0) = (2,0) + (1,1) = 29, 2 deadlocking.
    # (0,3) [o holds F]: g1 then (g2 blocks: 1 | o4: 1), or o4: 3. (0,2): o3 -> (0,3) = 3,
    #   or g1 blocks and o3 hands B over -> (1,3) = 2: 5. (0,1) = (1,1) + (0,2) = 7, 2 dead.
    # (0,0) = 29 + 7 = 36 schedules, 4 deadlocking; the random scheduler deadlocks iff its
    # first two choices differ: P = 1/2.
    old = explore(oom_instance(OLD))
    assert (old.schedules, old.deadlocked) == (36, 4) == brute_force(oom_instance(OLD))
    assert old.random_scheduler_probability == pytest.approx(0.5)
    assert old.deadlocked_by_kind == {"hostmem": 0, "oom": 4, "other": 0}
    assert old.example_cycle is not None and old.example_cycle.kind == "oom"
    # Fixed driver, g: g1 acq F, g2 rel F, g3 acq B, g4..g7, g8 rel B (o as before).
    # (2,3) [o holds F]: g3 -> (3,3): 6 interleavings of g's 5 steps with o4, or o4: 7.
    # (2,2): o3 -> 7, or g3 blocks and o3 hands B over -> (3,3) = 6: 13.
    # (2,1): g3 -> M(5,1) = 6, or o2 -> 13: 19. (2,0): g3 -> M(5,0) = 21, or o1 -> 19: 40.
    # (1,0) [g holds F]: g2 -> 40, or o1 blocks and g2 hands F over -> (2,1) = 19: 59.
    # (0,1) [o holds F]: g1 blocks (then forced: 1), or o2 -> (0,2) = 1 + (0,3) = 1 + 2: 4.
    # (0,0) = 59 + 4 = 63 schedules, none deadlocking.
    fixed = explore(oom_instance(FIXED))
    assert (fixed.schedules, fixed.deadlocked) == (63, 0) == brute_force(oom_instance(FIXED))
    assert fixed.random_scheduler_probability == 0.0 and fixed.example_cycle is None


@pytest.mark.parametrize(
    "shape", [(1, 0, 1, 1), (1, 0, 2, 1), (1, 0, 1, 2), (2, 0, 1, 2), (1, 1, 1, 1), (2, 1, 1, 1)]
)
def test_each_fix_removes_its_own_cycle(shape):
    guests, hosts, ops, oom = shape

    def kinds(order: str, driver: str) -> dict[str, int]:
        inst = build_instance(guests, hosts, ops, order, oom_tasks=oom, driver=driver)
        res = explore(inst)
        assert sum(res.deadlocked_by_kind.values()) == res.deadlocked
        return res.deadlocked_by_kind

    both = kinds("hostmem_first", FIXED)
    assert both == {"hostmem": 0, "oom": 0, "other": 0}  # both fixes: no deadlock at all
    old_driver = kinds("hostmem_first", OLD)
    assert old_driver["oom"] > 0 and old_driver["hostmem"] == 0
    natural = kinds("natural", FIXED)
    assert natural["oom"] == 0
    assert (natural["hostmem"] > 0) == (hosts > 0)  # the hypervisor cycle needs a host thread


def test_no_oom_task_leaves_the_instance_as_it_was():
    for order in ("natural", "hostmem_first"):
        plain = build_instance(2, 2, 2, order)
        for driver in (OLD, FIXED):
            inst = build_instance(2, 2, 2, order, oom_tasks=0, driver=driver)
            assert (inst.lock_names, inst.programs) == (plain.lock_names, plain.programs)


def test_oom_tasks_fill_guests_round_robin_and_steps_are_counted():
    inst = build_instance(2, 1, 3, "natural", oom_tasks=3, driver=OLD)
    assert inst.thread_names == ("guest0", "guest1", "host0", "oom0", "oom1", "oom2")
    assert inst.thread_guests == (0, 1, None, 0, 1, 0)
    assert inst.lock_names[3:] == ("balloon(0)", "fs(0)", "balloon(1)", "fs(1)")
    for shape in [(1, 0, 1, 0), (1, 1, 2, 1), (2, 1, 3, 3), (3, 2, 1, 2)]:
        inst = build_instance(*shape[:3], "natural", oom_tasks=shape[3])
        assert instance_steps(*shape) == inst.n_steps
    one_guest_out_of_memory = build_instance(2, 0, 1, "natural", oom_tasks=1)
    assert [len(p) for p in one_guest_out_of_memory.programs] == [8, 4, 4]


def test_random_trials_count_deadlocks_by_kind():
    old = random_trials(oom_instance(OLD), 1000, seed=9)
    assert old.deadlocked_by_kind == {"hostmem": 0, "oom": old.deadlocked, "other": 0}
    assert abs(old.probability - 0.5) < 5 * old.stderr  # exact: 1/2 (hand-derived above)
    assert random_trials(oom_instance(FIXED), 300, seed=9).deadlocked == 0
    mixed = random_trials(build_instance(1, 1, 1, "natural", oom_tasks=1, driver=OLD), 500, 9)
    assert mixed.deadlocked_by_kind["hostmem"] > 0 and mixed.deadlocked_by_kind["oom"] > 0


def test_bad_driver_is_refused():
    with pytest.raises(ValueError, match="alloc_under_lock, alloc_outside_lock"):
        build_instance(1, 0, 1, "natural", oom_tasks=1, driver="fixed")
    with pytest.raises(ValueError, match="oom_tasks"):
        build_instance(1, 0, 1, "natural", oom_tasks=-1)


# ---------------------------------------------------------------- config and locks mode


def test_config_refuses_a_bad_balloon_driver_naming_the_field():
    with pytest.raises(
        ConfigError,
        match=r"^locks\.balloon_driver: unknown 'fixed', "
        r"choose one of alloc_under_lock, alloc_outside_lock$",
    ):
        build_config({"mode": "locks"}, **{"locks.balloon_driver": "fixed"})
    with pytest.raises(ConfigError, match=r"^locks\.oom_tasks: must be >= 0, got -1$"):
        build_config({"mode": "locks", "locks": {"oom_tasks": -1}})
    cfg = build_config({"mode": "locks", "locks": {"balloon_driver": OLD, "oom_tasks": 2}})
    assert (cfg.locks.balloon_driver, cfg.locks.oom_tasks) == (OLD, 2)


def test_locks_mode_defaults_run_the_protocol_without_oom_tasks():
    row = run(build_config({"mode": "locks"})).summary
    assert (row["locks.balloon_driver"], row["locks.oom_tasks"]) == (FIXED, 0)
    plain = random_trials(build_instance(1, 1, 1, "natural"), 1000, seed=0)
    assert row["lock_deadlocked"] == plain.deadlocked > 0
    assert row["lock_deadlocked_hostmem"] == plain.deadlocked and row["lock_deadlocked_oom"] == 0
    assert row["concurrent_ops"] == 2


def test_locks_mode_varies_the_driver_beside_the_lock_order():
    base = {"mode": "locks", "seed": 3, "locks": {"host_threads": 1, "oom_tasks": 1, "trials": 400}}
    rows = {
        (order, driver): run(
            build_config(base, **{"hypervisor.lock_order": order, "locks.balloon_driver": driver})
        ).summary
        for order in ("natural", "hostmem_first")
        for driver in (OLD, FIXED)
    }
    for (order, driver), row in rows.items():
        assert row["locks.balloon_driver"] == driver and row["hypervisor.lock_order"] == order
        assert row["lock_deadlocked_hostmem"] + row["lock_deadlocked_oom"] == row["lock_deadlocked"]
        assert row["concurrent_ops"] == 3  # guest, host thread and OOM task, one op each
    assert rows[("hostmem_first", FIXED)]["lock_deadlocked"] == 0
    assert rows[("hostmem_first", OLD)]["lock_deadlocked_hostmem"] == 0
    assert rows[("hostmem_first", OLD)]["lock_deadlocked_oom"] > 0
    assert rows[("natural", FIXED)]["lock_deadlocked_oom"] == 0
    assert rows[("natural", FIXED)]["lock_deadlocked_hostmem"] > 0
    assert rows[("natural", OLD)]["lock_deadlocked_oom"] > 0

"""The block device: mq-deadline-style read priority, write starvation and expiry bounds,
channels and the IOPS gate, async_depth admission, exact completion times, and a property
test over random interleavings. Every expected number is derived in the comment above it."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_core.block_device import (
    DEVICE_FIELDS,
    DV_EXPIRED_BATCHES,
    DV_FORCED_BATCHES,
    DV_FORCED_WRITES,
    DV_NOW,
    DV_READ_WAIT_MS,
    DV_WRITE_WAIT_MS,
    DV_WRITES,
    DV_WRITES_DONE,
    DV_WRITES_REFUSED,
    dev_advance,
    dev_next_completion,
    dev_pop_completion,
    dev_queue_length,
    dev_read,
    dev_reads_in_flight,
    dev_try_write,
    dev_writes_in_flight,
    dev_writes_pending,
    device_params,
    make_device,
    make_device_arrays,
    make_device_from_config,
)
from sim_core.config import DEVICE_PRESETS, DiskConfig

INF = math.inf


def simple(**over):
    """1 ms reads and writes, one channel, no IOPS cap, Linux's scheduler defaults."""
    params = dict(
        read_latency_us=1000.0,
        write_latency_us=1000.0,
        iops=INF,
        queue_depth=1,
        nr_requests=256,
        write_expire_ms=5000.0,
        writes_starved=2,
        fifo_batch=16,
    )
    params.update(over)
    return make_device(**params)


def drain(d):
    """Pop every completion queued now: a list of (tag, time)."""
    out = []
    while True:
        tag, t = dev_pop_completion(d)
        if tag < 0:
            return out
        out.append((int(tag), float(t)))


def finish(d):
    """Advance completion by completion until nothing is left; every write completion."""
    out = drain(d)
    for _ in range(10**6):  # each step completes something: a stuck clock fails, not hangs
        t = dev_next_completion(d)
        if t == INF:
            return out
        dev_advance(d, t)
        out += drain(d)
    raise AssertionError("the device never empties")


def run_readers(d, n_readers, think_ms, until_ms, start_ms=0.0):
    """Synchronous readers: each submits a read, waits for it, thinks, submits again.
    Returns [(submit, done)] in submission order (ties: lower reader first)."""
    nxt = [start_ms] * n_readers
    log = []
    while True:
        r = min(range(n_readers), key=lambda k: (nxt[k], k))
        if nxt[r] > until_ms:
            return log
        done = dev_read(d, nxt[r])
        log.append((nxt[r], done))
        nxt[r] = done + think_ms


# ---- reads are not queued behind writes -----------------------------------------------


def test_read_behind_10k_writes_hdd():
    # nr_requests 13336 -> async_depth 10002: 10,000 writes fit at t = 0.
    disk = DiskConfig(preset="hdd", nr_requests=13336)
    L = DEVICE_PRESETS["hdd"]["read_latency_us"] / 1000  # 8 ms, reads and writes
    gap = 1000 / DEVICE_PRESETS["hdd"]["iops"]  # 6.67 ms < L: channel-bound
    assert gap < L

    def loaded():
        d = make_device_from_config(disk)
        assert all(dev_try_write(d, 0.0, k) for k in range(10_000))
        return d

    # At t = 0 no write has been dispatched (a dispatch due at t waits for the next call):
    # the read goes first, 0 -> 8.
    d = loaded()
    assert dev_read(d, 0.0) == L
    # Writes run back to back at 8k ms. At t = 1001 the write dispatched at 1000 holds the
    # one channel until 1008; the read waits for it only: 1008 -> 1016, not 80 s.
    d = loaded()
    assert dev_read(d, 1001.0) == 1016.0
    assert dev_writes_pending(d) == 10_000 - 126 and dev_writes_in_flight(d) == 1
    assert d.dvi[DV_FORCED_BATCHES] == 0
    # After write_expire (5 s) the oldest write has expired: at t = 6001 the read waits for
    # the write in service (6000 -> 6008), a forced batch of fifo_batch = 16 writes
    # (6008 -> 6136) and itself: done at 6144. Bound: (1 + fifo_batch + 1) * L = 144 ms.
    d = loaded()
    done = dev_read(d, 6001.0)
    assert done == 6144.0
    assert done - 6001.0 <= (1 + disk.fifo_batch + 1) * L
    assert d.dvi[DV_FORCED_BATCHES] == 1 and d.dvi[DV_EXPIRED_BATCHES] == 1
    assert d.dvi[DV_FORCED_WRITES] == 16
    # and the writes then carry on: all 10,000 plus one read -> 10,001 services of 8 ms.
    out = finish(d)
    assert [tag for tag, _ in out] == list(range(10_000))
    assert out[-1][1] == 10_001 * L


def test_read_behind_10k_writes_nvme():
    # NVMe: 32 channels of 20 us writes serve 1.6 M/s, the gate 500k/s: gate-bound, one
    # dispatch per 2 us; 10,000 writes take 20 ms. A read at t = 1.0001 ms waits at most one
    # gate interval for its dispatch (no expiry, no starvation yet): <= gap + 80 us.
    disk = DiskConfig(preset="nvme", nr_requests=13336)
    p = DEVICE_PRESETS["nvme"]
    R, gap = p["read_latency_us"] / 1000, 1000 / p["iops"]
    d = make_device_from_config(disk)
    assert all(dev_try_write(d, 0.0, k) for k in range(10_000))
    t = 1.0001
    done = dev_read(d, t)
    assert R <= done - t <= R + gap + 1e-9
    assert dev_writes_pending(d) > 9000
    # Four synchronous readers (no think time) read while the writes drain. A read waits
    # at most for the other readers' dispatches (3), a forced batch (16) and its own: 20
    # gates (the channels never run out: <= 10 writes in flight + 16 + 4 < 32).
    log = run_readers(d, 4, 0.0, 25.0, start_ms=t)
    worst = max(done - sub for sub, done in log)
    assert worst <= R + (4 + disk.fifo_batch) * gap + 1e-9
    assert len(log) > 4 * 20 / (R + 20 * gap)
    out = finish(d)
    assert [tag for tag, _ in out] == list(range(10_000))
    assert out[-1][1] > 20.0  # the writes themselves take 20 ms (more, sharing the gate)


def test_read_wins_a_tie_with_a_pending_write():
    # One channel, 1 ms. A read at 0 holds it until 1; a write submitted at 0 is due at 1.
    # A read submitted at 1 ties with it and goes first (1 -> 2), the write after (2 -> 3),
    # whether or not the caller advanced to 1 first.
    for advance_first in (False, True):
        d = simple()
        assert dev_read(d, 0.0) == 1.0
        assert dev_try_write(d, 0.0, 9)
        if advance_first:
            dev_advance(d, 1.0)
            assert dev_writes_pending(d) == 1
        assert dev_read(d, 1.0) == 2.0
        assert finish(d) == [(9, 3.0)]


# ---- writes are not starved ------------------------------------------------------------


def test_reads_starve_writes_for_two_batches_only():
    # One channel, 1 ms each, 100 writes then 200 reads, all at t = 0. Reads 0..31 run at
    # 0..31; read 32 finds 32 reads dispatched while writes waited (writes_starved 2 x
    # fifo_batch 16) and forces 16 writes first (32..47), then itself (48). So read j ends
    # at j + 1 + 16 * (j // 32) and write w at 48 * (w // 16) + 32 + w % 16 + 1, for the
    # 6 forced batches (96 writes) 200 reads allow; the last 4 writes follow read 199
    # (ends 296): 297..300.
    d = simple()
    assert all(dev_try_write(d, 0.0, w) for w in range(100))
    ends = [dev_read(d, 0.0) for _ in range(200)]
    assert ends == [j + 1 + 16 * (j // 32) for j in range(200)]
    assert d.dvi[DV_FORCED_BATCHES] == 6 and d.dvi[DV_EXPIRED_BATCHES] == 0
    out = finish(d)
    expect = [48 * (w // 16) + 32 + w % 16 + 1 for w in range(96)] + [297, 298, 299, 300]
    assert out == [(w, float(e)) for w, e in enumerate(expect)]


@pytest.mark.parametrize("writes_starved,fifo_batch", [(2, 16), (1, 4), (3, 8), (0, 2)])
def test_write_rate_under_continuous_reads(writes_starved, fifo_batch):
    # Two synchronous readers keep the one 1 ms channel busy (each thinks 0.5 ms, less than
    # the other's read) and a writer keeps async_depth full, so no write is dispatched
    # unforced. The (ws * fb + 1)-th read since the last write batch forces fb writes: of
    # every ws * fb + fb dispatches (1 ms each), fb are writes.
    d = simple(writes_starved=writes_starved, fifo_batch=fifo_batch, write_expire_ms=1e9)
    nxt, tag, done, reads = [0.0, 0.0], 0, [], 0
    while (t := min(nxt)) <= 2000.0:
        while dev_try_write(d, t, tag):
            tag += 1
        r = nxt.index(t)
        nxt[r] = dev_read(d, t) + 0.5
        reads += 1
        done += drain(d)
    dev_advance(d, 2000.0)
    done += drain(d)
    limit = writes_starved * fifo_batch
    assert d.dvi[DV_FORCED_BATCHES] == (reads if limit == 0 else (reads - 1) // limit)
    assert d.dvi[DV_FORCED_WRITES] == fifo_batch * d.dvi[DV_FORCED_BATCHES]
    cycle = max(limit, 1) + fifo_batch  # ws = 0: every read forces a batch
    assert len(done) >= fifo_batch * (2000 // cycle - 1)
    assert len(done) <= fifo_batch * (2000 // cycle + 1)
    assert [k for k, _ in done] == list(range(len(done)))


def test_write_expire_puts_a_lone_old_write_ahead_of_reads():
    # Two readers (think 0.5 ms) keep the channel busy: read k (k >= 1) is submitted at
    # k + 0.5 and dispatched at k + 1. The write submitted at 0 never finds the channel
    # free; starvation is off (writes_starved 1000). write_expire = 100 ms: the first read
    # submitted after 100 (at 100.5) finds it expired: the write runs 101..102 and that read
    # 102..103.
    d = simple(writes_starved=1000, write_expire_ms=100.0)
    assert dev_try_write(d, 0.0, 7)
    log = run_readers(d, 2, 0.5, 99.6)
    assert log[-1] == (99.5, 101.0)
    assert dev_writes_pending(d) == 1 and drain(d) == []
    assert dev_read(d, 100.5) == 103.0
    assert d.dvi[DV_EXPIRED_BATCHES] == 1 and dev_writes_pending(d) == 0
    dev_advance(d, 102.0)
    assert drain(d) == [(7, 102.0)]
    # 101 ms from submission to dispatch
    assert d.dvf[DV_WRITE_WAIT_MS] == 101.0


# ---- channels and the gate -------------------------------------------------------------


@pytest.mark.parametrize("P,N", [(1, 5), (4, 10), (8, 8), (32, 100)])
def test_parallel_reads_complete_in_rounds(P, N):
    # P channels of L = 2 ms, no gate: read i ends at (i // P + 1) * L; the last at
    # ceil(N / P) * L.
    L = 2.0
    d = simple(queue_depth=P, read_latency_us=L * 1000)
    ends = [dev_read(d, 0.0) for _ in range(N)]
    assert ends == [(i // P + 1) * L for i in range(N)]
    assert max(ends) == math.ceil(N / P) * L
    assert dev_reads_in_flight(d) == N and dev_queue_length(d) == N
    dev_advance(d, L)
    assert dev_reads_in_flight(d) == max(N - P, 0)


def test_parallel_writes_complete_in_rounds():
    # Same for writes: 10 writes on 4 channels of 1 ms end at 1,1,1,1,2,2,2,2,3,3.
    d = simple(queue_depth=4)
    assert all(dev_try_write(d, 0.0, k) for k in range(10))
    assert finish(d) == [(k, float(k // 4 + 1)) for k in range(10)]


def test_iops_cap_network_3000_writes_in_one_second():
    # Network preset: 64 channels of 1 ms serve 64,000/s; the gate 3,000/s binds. One
    # writer submits 3,000 writes, retrying at dev_next_completion when async_depth (192)
    # is full. The gate stays busy, so write k is dispatched at k / 3 ms and ends 1 ms
    # later: the last at 2999/3 + 1 = 1000.67 ms.
    d = make_device_from_config(DiskConfig(preset="network"))
    t, k, out = 0.0, 0, []
    while k < 3000:
        if dev_try_write(d, t, k):
            k += 1
        else:
            t = dev_next_completion(d)
            out += drain(d)
    assert d.dvi[DV_WRITES_REFUSED] > 0
    out += finish(d)
    assert [tag for tag, _ in out] == list(range(3000))
    times = np.array([c for _, c in out])
    assert np.allclose(times, np.arange(3000) / 3 + 1.0, rtol=0, atol=1e-6)
    assert abs(times[-1] - 1000.667) < 1e-3


def test_gate_spaces_reads():
    # Reads at the same instant on 64 channels under a 3,000 IOPS gate: 1/3 ms apart.
    d = make_device_from_config(DiskConfig(preset="network"))
    ends = np.array([dev_read(d, 0.0) for _ in range(30)])
    assert np.allclose(ends, np.arange(30) / 3 + 1.0, rtol=0, atol=1e-9)
    assert d.dvf[DV_READ_WAIT_MS] == pytest.approx(sum(i / 3 for i in range(30)))


# ---- admission ---------------------------------------------------------------------------


@pytest.mark.parametrize("nr,depth", [(1, 1), (2, 1), (4, 3), (8, 6), (256, 192)])
def test_async_depth_refuses_then_admits(nr, depth):
    # async_depth = max(1, 3 * nr // 4). Two channels, 1 ms: the (depth + 1)-th write at
    # t = 0 is refused and nothing changes; the first write ends at 1.0: just before it still
    # refused, at it admitted.
    d = simple(queue_depth=2, nr_requests=nr)
    assert all(dev_try_write(d, 0.0, k) for k in range(depth))
    before = {name: getattr(d, name).copy() for name in DEVICE_FIELDS}
    assert not dev_try_write(d, 0.0, depth)
    for name in DEVICE_FIELDS:
        if name != "dvi":
            assert np.array_equal(getattr(d, name), before[name]), name
    assert d.dvi[DV_WRITES] == depth and d.dvi[DV_WRITES_REFUSED] == 1
    assert dev_next_completion(d) == 1.0
    early = np.nextafter(1.0, 0.0)
    assert not dev_try_write(d, early, depth)
    assert drain(d) == []
    assert dev_try_write(d, 1.0, depth)
    out = finish(d)
    assert [tag for tag, _ in out] == list(range(depth + 1))
    assert all(a[1] <= b[1] for a, b in zip(out, out[1:], strict=False))


def test_undrained_completions_hold_back_writes_without_loss():
    # nr 8 -> async_depth 6; completions not popped may fill 2 * 6 entries: with nothing
    # popped, 12 writes in all are admitted, then writes are refused; nothing is dropped.
    d = simple(nr_requests=8, queue_depth=8)
    accepted = []
    t = 0.0
    for k in range(40):
        if dev_try_write(d, t, k):
            accepted.append(k)
        t += 1.0
    assert accepted == list(range(12))
    assert finish(d) == [(k, float(k + 1)) for k in range(12)]


def test_past_submissions_are_treated_as_now():
    d = simple()
    dev_advance(d, 10.0)
    assert dev_read(d, 5.0) == 11.0  # submitted at 10, waits for nothing
    assert d.dvf[DV_READ_WAIT_MS] == 0.0
    assert dev_try_write(d, 3.0, 1)  # submitted at 10, dispatched at 11 when the read ends
    assert d.dvf[DV_NOW] == 10.0
    dev_advance(d, 4.0)  # no-op
    assert d.dvf[DV_NOW] == 10.0
    assert finish(d) == [(1, 12.0)]
    assert d.dvf[DV_WRITE_WAIT_MS] == 1.0


# ---- dev_next_completion ---------------------------------------------------------------


def test_next_completion_is_exact():
    # Mixed reads and writes, two latencies, channels and a gate (SATA SSD: 8 channels,
    # 100 us reads, 40 us writes, 90k IOPS). At each dev_next_completion t: advancing to the
    # float just below t completes nothing; advancing to t completes at least one request.
    d = make_device_from_config(DiskConfig(preset="sata_ssd", nr_requests=64))
    rng = np.random.default_rng(3)
    tag = 0
    for t in np.cumsum(rng.exponential(0.002, 200)):
        if rng.random() < 0.3:
            dev_read(d, t)
        elif dev_try_write(d, t, tag):
            tag += 1
    steps = 0
    while (t := dev_next_completion(d)) < INF:
        n = dev_queue_length(d)
        dev_advance(d, np.nextafter(t, -INF))
        assert dev_queue_length(d) == n and dev_next_completion(d) == t
        dev_advance(d, t)
        assert dev_queue_length(d) < n
        steps += 1
    assert steps > 50 and dev_queue_length(d) == 0
    assert [k for k, _ in drain(d)] == list(range(tag))


# ---- determinism and the property test --------------------------------------------------


def script(d, seed):
    rng = np.random.default_rng(seed)
    out, t = [], 0.0
    for k in range(3000):
        t += rng.exponential(0.05)
        op = rng.integers(3)
        if op == 0:
            out.append(dev_read(d, t))
        elif op == 1:
            out.append(float(dev_try_write(d, t, k)))
        else:
            dev_advance(d, t)
            out += [c for _, c in drain(d)]
    return out


def test_deterministic():
    disk = DiskConfig(preset="hdd", nr_requests=16)
    a, b = make_device_from_config(disk), make_device_from_config(disk)
    assert script(a, 1) == script(b, 1)
    for name in DEVICE_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


ops = st.lists(
    st.tuples(
        st.sampled_from(["read", "write", "advance", "pop", "sleep"]),
        st.floats(-0.5, 3.0),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(
    ops=ops,
    qd=st.integers(1, 4),
    nr=st.integers(1, 12),
    ws=st.integers(0, 3),
    fb=st.integers(1, 4),
    lat=st.sampled_from([(1.0, 1.0), (0.3, 2.0), (2.0, 0.5)]),
    iops=st.sampled_from([INF, 2000.0, 300.0]),
    expire=st.sampled_from([0.0, 2.0, 1e9]),
)
def test_random_interleavings(ops, qd, nr, ws, fb, lat, iops, expire):
    # Reads come from at most `readers` synchronous submitters: a read is issued only while
    # fewer are outstanding (otherwise the op sleeps to dev_next_completion).
    readers = qd
    d = make_device(
        read_latency_us=lat[0] * 1000,
        write_latency_us=lat[1] * 1000,
        iops=iops,
        queue_depth=qd,
        nr_requests=nr,
        write_expire_ms=expire,
        writes_starved=ws,
        fifo_batch=fb,
    )
    async_depth = max(1, 3 * nr // 4)
    t, tag, clock = 0.0, 0, 0.0
    submitted = {}
    popped = []
    for op, dt in ops:
        t = max(t + dt, 0.0)  # dt < 0: a caller whose clock is behind
        if op == "read" and dev_reads_in_flight(d) < readers:
            now = d.dvf[DV_NOW]
            done = dev_read(d, t)
            assert done >= max(t, now) + lat[0]
        elif op == "write":
            dev_advance(d, t)  # what dev_try_write does first
            now = d.dvf[DV_NOW]
            full = dev_writes_pending(d) + dev_writes_in_flight(d) >= async_depth
            ok = dev_try_write(d, t, tag)
            if full:
                assert not ok  # (it may also refuse while undrained completions pile up)
            if ok:
                submitted[tag] = now
                tag += 1
        elif op == "advance":
            dev_advance(d, t)
        elif op == "pop":
            popped += drain(d)
        else:
            nxt = dev_next_completion(d)
            if nxt < INF:
                t = max(t, nxt)
                dev_advance(d, t)
        assert d.dvf[DV_NOW] >= clock
        clock = d.dvf[DV_NOW]
        assert dev_queue_length(d) <= nr + qd
        assert dev_queue_length(d) <= async_depth + readers
        assert dev_writes_pending(d) + dev_writes_in_flight(d) <= async_depth
    popped += finish(d)
    # every accepted write comes out exactly once, in submission (= completion) order,
    # at non-decreasing times, no earlier than submission + write latency
    assert [k for k, _ in popped] == list(range(tag))
    times = [c for _, c in popped]
    assert all(a <= b for a, b in zip(times, times[1:], strict=False))
    assert all(c >= submitted[k] + lat[1] - 1e-9 for k, c in popped)
    # the write wait total is the sum of (dispatch - submission) over the writes
    wait = sum(c - lat[1] - submitted[k] for k, c in popped)
    assert d.dvf[DV_WRITE_WAIT_MS] == pytest.approx(wait, abs=1e-6)
    assert d.dvi[DV_WRITES_DONE] == tag and dev_queue_length(d) == 0


# ---- construction, configuration, other StructRefs -------------------------------------


def test_params_from_config():
    p = device_params(DiskConfig())  # preset nvme, nothing set: the preset fills in
    nvme = DEVICE_PRESETS["nvme"]
    assert p == dict(
        nvme,
        nr_requests=256,
        write_expire_ms=5000.0,
        writes_starved=2,
        fifo_batch=16,
    )
    p = device_params(DiskConfig(preset="hdd", queue_depth=4))
    assert p["queue_depth"] == 4 and p["read_latency_us"] == 8000.0
    arrays = make_device_arrays(**p)
    assert tuple(arrays) == DEVICE_FIELDS and all(n.startswith("dv") for n in arrays)
    assert arrays["dvch"].shape == (4,) and arrays["dvwq_t"].shape == (192,)
    with pytest.raises(ValueError, match="queue_depth"):
        make_device_arrays(**(p | {"queue_depth": 0}))
    with pytest.raises(ValueError, match="read_latency_us"):
        make_device_arrays(**(p | {"read_latency_us": 0.0}))


def test_too_many_reads_outstanding_raises():
    d = make_device(**device_params(DiskConfig(preset="hdd")), read_slots=3)
    for _ in range(3):
        dev_read(d, 0.0)
    with pytest.raises(RuntimeError, match="reads outstanding"):
        dev_read(d, 0.0)
    assert dev_read(d, 8.0) == 32.0  # after one completes there is room again


OTHER_STRUCTREF = """
import numpy as np
from numba import types
from numba.experimental import structref

from sim_core.block_device import (
    DEVICE_FIELDS, DV_READS, dev_advance, dev_pop_completion, dev_read, dev_try_write,
    device_params, make_device_arrays,
)
from sim_core.config import DiskConfig
from sim_core.jit import register_struct


@register_struct
class BiggerType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class Bigger(structref.StructRefProxy):
    pass


structref.define_proxy(Bigger, BiggerType, ["other", *DEVICE_FIELDS, "more"])
arrays = make_device_arrays(**device_params(DiskConfig(preset="hdd")))
w = Bigger(np.zeros(3), *(arrays[n] for n in DEVICE_FIELDS), np.ones(2, np.int32))
assert dev_try_write(w, 0.0, 5)
assert dev_read(w, 0.0) == 8.0
dev_advance(w, 100.0)
assert dev_pop_completion(w) == (5, 16.0)
assert arrays["dvi"][DV_READS] == 1  # the caller's arrays are the device's state
print("ok")
"""


def test_works_on_any_structref_with_the_fields(tmp_path):
    # Like the World: other arrays around the device's, in another order. In a child with
    # its own numba cache: a StructRef type defined outside an importable module would make
    # the shared cache index of every dev_* function unloadable for other processes.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    script = tmp_path / "other_structref.py"
    script.write_text(OTHER_STRUCTREF)
    run = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"

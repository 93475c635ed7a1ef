"""The block device under every guest disk image and host swap, with mq-deadline-style
scheduling of synchronous reads and asynchronous writes.

State is a handful of NumPy arrays (names in :data:`DEVICE_FIELDS`, all prefixed ``dv``);
every function is compiled (numba, ``cache=True``, without reference counting:
``sim_core.jit``) and takes one argument ``d``: any StructRef registered with
``sim_core.jit.register_struct`` that has attributes of those names. The simulation's
``World`` carries them next to its own arrays; :class:`Device` is a StructRef with nothing
else, for tests and tools.

Model
-----
Time is in ms (float64) on one device clock that only moves forward. The device serves up
to ``queue_depth`` requests at once (channels, ``dvch`` = the time each is next free): a
read holds a channel for ``read_latency``, a write for ``write_latency``. Dispatches are
spaced at least ``1000 / iops`` ms apart (the IOPS gate, ``dvf[DV_GATE]`` = the earliest next
dispatch). Every dispatch happens at ``max(ready, gate, earliest free channel)``; the gate
only grows, so dispatch times never decrease, and since each direction has one latency,
reads and writes each complete in the order they were dispatched (FIFO rings suffice).

* Reads are synchronous (``dev_read``): dispatched at once, waiting only for a channel and
  the gate, never behind queued writes, unless the starvation rule first forces a write
  batch: with writes pending, if ``writes_starved * fifo_batch`` reads have been dispatched
  since the last write dispatch while writes waited, or the oldest pending write has
  waited longer than ``write_expire``, up to ``fifo_batch`` pending writes are dispatched
  first. Reads are always admitted.
* Writes are asynchronous (``dev_try_write``): admitted while pending + in-flight writes <
  ``async_depth = max(1, 3 * nr_requests // 4)``; otherwise refused with nothing enqueued
  (the caller retries; nothing is lost). ``dev_advance`` dispatches pending writes in FIFO
  order whenever a channel and the gate allow, at their exact times, and completes what is
  due; each completed write's (tag, time) goes to a completion FIFO (``dev_pop_completion``).
* Every entry point first moves the device clock to its ``t`` (as ``dev_advance``); a
  submission with ``t`` before the device clock (a caller whose clock is slightly behind)
  is treated as submitted at the device clock.
* Ties: a dispatch due exactly at ``t`` is left to the next call, so a read submitted at
  ``t`` takes a channel that frees at ``t`` ahead of a pending write (reads first, as in
  mq-deadline); completions due exactly at ``t`` are completed.

Capacity (sized at construction, checked on every push, never silently overwritten):
pending and in-flight writes each at most ``async_depth`` (by admission); completed writes
not yet popped at most ``2 * async_depth`` (a write is also refused while pending +
in-flight + undrained completions would exceed that: a caller that drains after every
``dev_advance`` never sees this); reads admitted and not completed at most ``read_slots``
(default ``max(nr_requests, queue_depth, 4096)``: a synchronous caller has one read
outstanding per thread, so exceeding it is a caller bug and raises).

Divergences from Linux block/mq-deadline.c
------------------------------------------
1. No sector order, no merging, no priorities (RT/BE/IDLE), no prio aging, no zoned
   writes: both directions are served FIFO, as if every request were expired. Requests are
   4 KiB and independent.
2. ``write_expire`` forces a write batch ahead of reads. In mq-deadline the direction of a
   new batch is chosen only by ``starved >= writes_starved`` (reads always win otherwise);
   an expired FIFO head only makes the batch start from the FIFO head instead of sector
   order. Here, with no sector order, the expiry is used as a second trigger of a write
   batch, which bounds a write's wait when reads alone would not.
3. ``read_expire`` is not modelled: reads never wait in the scheduler, they are dispatched
   on arrival and wait only for a channel and the gate (in Linux they queue in the
   scheduler when the hardware tags are all busy; with reads first in FIFO order that
   gives the same dispatch times).
4. Batches are counted, not run: Linux counts ``starved`` once per read batch of up to
   ``fifo_batch`` reads and resets it when it picks writes. Here the reads dispatched
   while writes wait are counted and compared with ``writes_starved * fifo_batch``; any
   write dispatch (forced, or made because a channel was free with no read in the way)
   resets the count, as Linux resets ``starved`` whenever it dispatches writes. A read batch
   cut short because reads ran out therefore counts its reads, not a whole batch.
5. A forced write batch is dispatched at once, back to back, ahead of the read that
   triggered it; Linux would interleave it with dispatch calls as tags free. Dispatch
   times are the same (FIFO, one gate, earliest free channel).
6. async_depth = max(1, 3 * nr_requests // 4), as dd_depth_updated() sets it since Linux
   5.14 ("reserve 25% of the scheduler tags for synchronous requests"); current mainline
   sets async_depth = nr_requests. Reads do not use up the request table: writes are
   limited only by async_depth, reads only by ``read_slots`` (see Capacity), so up to
   async_depth + read_slots requests may be outstanding instead of nr_requests.
7. The hardware is idealised: ``queue_depth`` identical channels with fixed service times
   and an IOPS gate (no seek model, no write cache, no read/write interference beyond
   sharing channels and the gate).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import types
from numba.experimental import structref

from sim_core.config import DEVICE_PRESETS, DiskConfig
from sim_core.jit import define_proxy, njit_kernel, register_struct

# ---- dvi: int64 scalars ------------------------------------------------------------------
# counters (read by callers)
DV_READS = 0  # reads admitted
DV_WRITES = 1  # writes admitted
DV_WRITES_REFUSED = 2  # dev_try_write calls refused (full)
DV_FORCED_BATCHES = 3  # write batches forced ahead of a read (starvation or expiry)
DV_FORCED_WRITES = 4  # writes dispatched in those batches
DV_WRITES_DONE = 5  # writes completed (moved to the completion FIFO)
DV_EXPIRED_BATCHES = 6  # of DV_FORCED_BATCHES: triggered by write_expire
# configuration
DV_QUEUE_DEPTH = 7
DV_ASYNC_DEPTH = 8
DV_FIFO_BATCH = 9
DV_STARVE_LIMIT = 10  # writes_starved * fifo_batch reads
# scheduler state
DV_STARVED = 11  # reads dispatched while writes waited, since the last write dispatch
DV_WQ_HEAD = 12  # pending writes: ring (dvwq_t, dvwq_tag)
DV_WQ_N = 13
DV_FL_HEAD = 14  # in-flight writes: ring (dvfl_t, dvfl_tag) of completion times
DV_FL_N = 15
DV_CQ_HEAD = 16  # completed writes not yet popped: ring (dvcq_t, dvcq_tag)
DV_CQ_N = 17
DV_RD_HEAD = 18  # reads admitted, not completed: ring dvrd_t of completion times
DV_RD_N = 19
DVI_COLS = 20

# ---- dvf: float64 scalars ----------------------------------------------------------------
DV_NOW = 0  # the device clock (ms)
DV_GATE = 1  # earliest time of the next dispatch (IOPS gate)
DV_READ_MS = 2  # read service time
DV_WRITE_MS = 3  # write service time
DV_GAP_MS = 4  # 1000 / iops (0: no cap)
DV_WRITE_EXPIRE_MS = 5
DV_READ_WAIT_MS = 6  # total over reads: dispatch - submission
DV_WRITE_WAIT_MS = 7  # total over dispatched writes: dispatch - submission
DV_BUSY_MS = 8  # total service time dispatched (channel-ms)
DVF_COLS = 9

READ_SLOTS_MIN = 4096  # reads outstanding at once, at least (one per synchronous submitter)

DEVICE_FIELDS: tuple[str, ...] = (
    "dvi",  # int64 scalars (DV_* above)
    "dvf",  # float64 scalars (DV_* above)
    "dvch",  # time each channel is next free
    "dvwq_t", "dvwq_tag",  # pending writes: submission time, tag
    "dvfl_t", "dvfl_tag",  # in-flight writes: completion time, tag
    "dvcq_t", "dvcq_tag",  # completed writes to pop: completion time, tag
    "dvrd_t",  # reads admitted and not completed: completion time
)  # fmt: skip


def make_device_arrays(
    read_latency_us: float,
    write_latency_us: float,
    iops: float,
    queue_depth: int,
    nr_requests: int,
    write_expire_ms: float,
    writes_starved: int,
    fifo_batch: int,
    read_slots: int | None = None,
) -> dict[str, np.ndarray]:
    """The device's arrays, keyed by the names in DEVICE_FIELDS, with the device idle at
    time 0. ``iops = inf`` removes the IOPS cap. ``read_slots`` bounds the reads admitted
    and not completed (default ``max(nr_requests, queue_depth, READ_SLOTS_MIN)``)."""
    checks = (
        (read_latency_us > 0, "read_latency_us", read_latency_us),
        (write_latency_us > 0, "write_latency_us", write_latency_us),
        (iops > 0, "iops", iops),
        (queue_depth >= 1, "queue_depth", queue_depth),
        (nr_requests >= 1, "nr_requests", nr_requests),
        (write_expire_ms >= 0, "write_expire_ms", write_expire_ms),
        (writes_starved >= 0, "writes_starved", writes_starved),
        (fifo_batch >= 1, "fifo_batch", fifo_batch),
    )
    for ok, name, value in checks:
        if not ok:
            raise ValueError(f"block device: {name} out of range: {value!r}")
    queue_depth, nr_requests = int(queue_depth), int(nr_requests)
    async_depth = max(1, 3 * nr_requests // 4)
    if read_slots is None:
        read_slots = max(nr_requests, queue_depth, READ_SLOTS_MIN)
    if read_slots < 1:
        raise ValueError(f"block device: read_slots out of range: {read_slots!r}")
    dvi = np.zeros(DVI_COLS, np.int64)
    dvi[DV_QUEUE_DEPTH] = queue_depth
    dvi[DV_ASYNC_DEPTH] = async_depth
    dvi[DV_FIFO_BATCH] = int(fifo_batch)
    dvi[DV_STARVE_LIMIT] = int(writes_starved) * int(fifo_batch)
    dvf = np.zeros(DVF_COLS, np.float64)
    dvf[DV_READ_MS] = read_latency_us / 1000.0
    dvf[DV_WRITE_MS] = write_latency_us / 1000.0
    dvf[DV_GAP_MS] = 0.0 if math.isinf(iops) else 1000.0 / iops
    dvf[DV_WRITE_EXPIRE_MS] = write_expire_ms
    arrays = dict(
        dvi=dvi,
        dvf=dvf,
        dvch=np.zeros(queue_depth, np.float64),
        dvwq_t=np.zeros(async_depth, np.float64),
        dvwq_tag=np.zeros(async_depth, np.int64),
        dvfl_t=np.zeros(async_depth, np.float64),
        dvfl_tag=np.zeros(async_depth, np.int64),
        dvcq_t=np.zeros(2 * async_depth, np.float64),
        dvcq_tag=np.zeros(2 * async_depth, np.int64),
        dvrd_t=np.zeros(int(read_slots), np.float64),
    )
    assert tuple(arrays) == DEVICE_FIELDS
    return arrays


def device_params(disk: DiskConfig) -> dict[str, Any]:
    """make_device_arrays arguments for a DiskConfig; fields left unset come from its
    preset (a resolved SimConfig has them all set)."""
    preset = DEVICE_PRESETS[disk.preset]

    def pick(name):
        value = getattr(disk, name)
        return preset[name] if value is None else value

    return dict(
        read_latency_us=float(pick("read_latency_us")),
        write_latency_us=float(pick("write_latency_us")),
        iops=float(pick("iops")),
        queue_depth=int(pick("queue_depth")),
        nr_requests=int(disk.nr_requests),
        write_expire_ms=float(disk.write_expire_ms),
        writes_starved=int(disk.writes_starved),
        fifo_batch=int(disk.fifo_batch),
    )


# ---- a StructRef holding only the device (the World holds the same fields) --------------
@register_struct
class DeviceType(types.StructRef):
    """numba's type of a Device: its fields are the arrays of DEVICE_FIELDS."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class Device(structref.StructRefProxy):
    """The device's arrays; compiled code takes it as one argument ``d``."""

    def __new__(cls, *arrays):
        self = structref.StructRefProxy.__new__(cls, *arrays)
        self._arrays = dict(zip(DEVICE_FIELDS, arrays, strict=True))
        return self

    def __getattr__(self, name):
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)


define_proxy(Device, DeviceType, list(DEVICE_FIELDS))


def make_device(**params: Any) -> Device:
    """A Device built by make_device_arrays(**params)."""
    arrays = make_device_arrays(**params)
    return Device(*(arrays[name] for name in DEVICE_FIELDS))


def make_device_from_config(disk: DiskConfig) -> Device:
    return make_device(**device_params(disk))


# ---- compiled core -----------------------------------------------------------------------
@njit_kernel
def _slot(d, ready):
    """The channel a request ready at ``ready`` would take, and its dispatch time."""
    ch = d.dvch
    k = 0
    free = ch[0]
    for c in range(1, ch.shape[0]):
        if ch[c] < free:
            free = ch[c]
            k = c
    s = max(ready, d.dvf[DV_GATE], free)
    return k, s


@njit_kernel
def _dispatch_write(d, k, s):
    """Move the head pending write onto channel ``k`` at time ``s``."""
    i = d.dvi
    f = d.dvf
    head = i[DV_WQ_HEAD]
    cap = d.dvwq_t.shape[0]
    submitted = d.dvwq_t[head]
    tag = d.dvwq_tag[head]
    head += 1
    if head == cap:
        head = 0
    i[DV_WQ_HEAD] = head
    i[DV_WQ_N] -= 1
    done = s + f[DV_WRITE_MS]
    n = i[DV_FL_N]
    fcap = d.dvfl_t.shape[0]
    if n >= fcap:
        raise RuntimeError("block device: in-flight write ring full")
    tail = i[DV_FL_HEAD] + n
    if tail >= fcap:
        tail -= fcap
    if n > 0:
        last = tail - 1 if tail > 0 else fcap - 1
        if done < d.dvfl_t[last]:
            raise RuntimeError("block device: write completions out of order")
    d.dvfl_t[tail] = done
    d.dvfl_tag[tail] = tag
    i[DV_FL_N] = n + 1
    d.dvch[k] = done
    f[DV_GATE] = s + f[DV_GAP_MS]
    f[DV_WRITE_WAIT_MS] += s - submitted
    f[DV_BUSY_MS] += f[DV_WRITE_MS]
    i[DV_STARVED] = 0


@njit_kernel
def _retire(d, t):
    """Complete every read and write due at or before ``t``."""
    i = d.dvi
    rcap = d.dvrd_t.shape[0]
    while i[DV_RD_N] > 0 and d.dvrd_t[i[DV_RD_HEAD]] <= t:
        h = i[DV_RD_HEAD] + 1
        i[DV_RD_HEAD] = 0 if h == rcap else h
        i[DV_RD_N] -= 1
    fcap = d.dvfl_t.shape[0]
    ccap = d.dvcq_t.shape[0]
    while i[DV_FL_N] > 0:
        h = i[DV_FL_HEAD]
        done = d.dvfl_t[h]
        if done > t:
            break
        n = i[DV_CQ_N]
        if n >= ccap:
            raise RuntimeError("block device: completion ring full")
        tail = i[DV_CQ_HEAD] + n
        if tail >= ccap:
            tail -= ccap
        d.dvcq_t[tail] = done
        d.dvcq_tag[tail] = d.dvfl_tag[h]
        i[DV_CQ_N] = n + 1
        h += 1
        i[DV_FL_HEAD] = 0 if h == fcap else h
        i[DV_FL_N] -= 1
        i[DV_WRITES_DONE] += 1


@njit_kernel
def dev_advance(d, t):
    """Move the device clock to ``t`` (nothing if ``t`` is not after it): dispatch pending
    writes in FIFO order at their exact times before ``t``, complete everything due by
    ``t`` and queue the completed writes for dev_pop_completion."""
    f = d.dvf
    if not t > f[DV_NOW]:
        return
    i = d.dvi
    while i[DV_WQ_N] > 0:
        k, s = _slot(d, d.dvwq_t[i[DV_WQ_HEAD]])
        if not s < t:
            break
        _dispatch_write(d, k, s)
    _retire(d, t)
    f[DV_NOW] = t


@njit_kernel
def dev_read(d, t):
    """Submit a synchronous read at ``t`` (the device clock if later); return the time it
    completes. A forced write batch (starvation or write_expire) is dispatched first."""
    dev_advance(d, t)
    i = d.dvi
    f = d.dvf
    now = f[DV_NOW]
    if i[DV_WQ_N] > 0:
        expired = now - d.dvwq_t[i[DV_WQ_HEAD]] > f[DV_WRITE_EXPIRE_MS]
        if expired or i[DV_STARVED] >= i[DV_STARVE_LIMIT]:
            n = min(i[DV_FIFO_BATCH], i[DV_WQ_N])
            for _ in range(n):
                k, s = _slot(d, now)
                _dispatch_write(d, k, s)
            i[DV_FORCED_BATCHES] += 1
            i[DV_FORCED_WRITES] += n
            if expired:
                i[DV_EXPIRED_BATCHES] += 1
    n = i[DV_RD_N]
    rcap = d.dvrd_t.shape[0]
    if n >= rcap:
        raise RuntimeError("block device: more reads outstanding than the request table")
    k, s = _slot(d, now)
    done = s + f[DV_READ_MS]
    tail = i[DV_RD_HEAD] + n
    if tail >= rcap:
        tail -= rcap
    d.dvrd_t[tail] = done
    i[DV_RD_N] = n + 1
    d.dvch[k] = done
    f[DV_GATE] = s + f[DV_GAP_MS]
    f[DV_READ_WAIT_MS] += s - now
    f[DV_BUSY_MS] += f[DV_READ_MS]
    i[DV_READS] += 1
    if i[DV_WQ_N] > 0:
        i[DV_STARVED] += 1
    return done


@njit_kernel
def dev_try_write(d, t, tag):
    """Submit an asynchronous write carrying ``tag`` at ``t`` (the device clock if later).
    False when pending + in-flight writes already fill async_depth: nothing is queued (the
    clock still moves to ``t``) and the caller retries, e.g. at dev_next_completion."""
    dev_advance(d, t)
    i = d.dvi
    out = i[DV_WQ_N] + i[DV_FL_N]
    if out >= i[DV_ASYNC_DEPTH] or out + i[DV_CQ_N] >= d.dvcq_t.shape[0]:
        i[DV_WRITES_REFUSED] += 1
        return False
    cap = d.dvwq_t.shape[0]
    n = i[DV_WQ_N]
    if n >= cap:
        raise RuntimeError("block device: pending write ring full")
    tail = i[DV_WQ_HEAD] + n
    if tail >= cap:
        tail -= cap
    d.dvwq_t[tail] = d.dvf[DV_NOW]
    d.dvwq_tag[tail] = tag
    i[DV_WQ_N] = n + 1
    i[DV_WRITES] += 1
    return True


@njit_kernel
def dev_pop_completion(d):
    """The oldest completed write not yet popped: (tag, completion time); (-1, inf) when
    there is none."""
    i = d.dvi
    if i[DV_CQ_N] == 0:
        return -1, np.inf
    h = i[DV_CQ_HEAD]
    tag = d.dvcq_tag[h]
    done = d.dvcq_t[h]
    h += 1
    i[DV_CQ_HEAD] = 0 if h == d.dvcq_t.shape[0] else h
    i[DV_CQ_N] -= 1
    return tag, done


@njit_kernel
def dev_next_completion(d):
    """The earliest time something admitted now completes if nothing new arrives (a read,
    an in-flight write, or the first pending write once dispatched); inf if none."""
    i = d.dvi
    best = np.inf
    if i[DV_RD_N] > 0:
        best = d.dvrd_t[i[DV_RD_HEAD]]
    if i[DV_FL_N] > 0:
        best = min(best, d.dvfl_t[i[DV_FL_HEAD]])
    elif i[DV_WQ_N] > 0:
        # Dispatch times never decrease and writes share one latency, so the first
        # pending write cannot finish before an in-flight one: only needed here.
        _, s = _slot(d, d.dvwq_t[i[DV_WQ_HEAD]])
        best = min(best, s + d.dvf[DV_WRITE_MS])
    return best


@njit_kernel
def dev_queue_length(d):
    """Requests admitted and not completed: pending writes, reads and in-flight writes."""
    i = d.dvi
    return i[DV_WQ_N] + i[DV_FL_N] + i[DV_RD_N]


@njit_kernel
def dev_reads_in_flight(d):
    """Reads admitted and not completed (some may wait for a channel)."""
    return d.dvi[DV_RD_N]


@njit_kernel
def dev_writes_in_flight(d):
    """Writes dispatched and not completed."""
    return d.dvi[DV_FL_N]


@njit_kernel
def dev_writes_pending(d):
    """Writes admitted and not yet dispatched."""
    return d.dvi[DV_WQ_N]

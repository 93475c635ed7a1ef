"""TEMPORARY stub with the block device interface (for debugging only)."""
import numpy as np
from numba import njit

DEVICE_FIELDS = ("dvi", "dvf", "dvwq_t", "dvwq_tag")
DV_READS, DV_WRITES, DV_HEAD, DV_TAIL, DV_CAP, DV_ASYNC = 0, 1, 2, 3, 4, 5
DF_NOW, DF_RLAT, DF_WLAT, DF_WFREE, DF_GAP = 0, 1, 2, 3, 4


def make_device_arrays(read_latency_us, write_latency_us, iops, queue_depth, nr_requests,
                       write_expire_ms, writes_starved, fifo_batch):
    cap = max(1, 3 * nr_requests // 4)
    dvi = np.zeros(8, np.int64); dvi[DV_CAP] = cap; dvi[DV_ASYNC] = cap
    dvf = np.zeros(8, np.float64)
    dvf[DF_RLAT] = read_latency_us / 1000; dvf[DF_WLAT] = write_latency_us / 1000
    dvf[DF_GAP] = 1000.0 / iops / queue_depth
    return dict(dvi=dvi, dvf=dvf, dvwq_t=np.zeros(cap), dvwq_tag=np.zeros(cap, np.int64))


def device_params(disk):
    return dict(read_latency_us=disk.read_latency_us, write_latency_us=disk.write_latency_us,
                iops=disk.iops, queue_depth=disk.queue_depth, nr_requests=disk.nr_requests,
                write_expire_ms=disk.write_expire_ms, writes_starved=disk.writes_starved,
                fifo_batch=disk.fifo_batch)


@njit(cache=True)
def dev_advance(d, t):
    if t > d.dvf[DF_NOW]:
        d.dvf[DF_NOW] = t


@njit(cache=True)
def dev_read(d, t):
    d.dvi[DV_READS] += 1
    return max(t, d.dvf[DF_NOW]) + d.dvf[DF_RLAT]


@njit(cache=True)
def dev_try_write(d, t, tag):
    n = d.dvi[DV_TAIL] - d.dvi[DV_HEAD]
    if n >= d.dvi[DV_CAP]:
        return False
    start = max(max(t, d.dvf[DF_NOW]), d.dvf[DF_WFREE])
    d.dvf[DF_WFREE] = start + d.dvf[DF_WLAT] / 4
    i = d.dvi[DV_TAIL] % d.dvi[DV_CAP]
    d.dvwq_t[i] = start + d.dvf[DF_WLAT]
    d.dvwq_tag[i] = tag
    d.dvi[DV_TAIL] += 1
    d.dvi[DV_WRITES] += 1
    return True


@njit(cache=True)
def dev_pop_completion(d):
    if d.dvi[DV_TAIL] > d.dvi[DV_HEAD]:
        i = d.dvi[DV_HEAD] % d.dvi[DV_CAP]
        if d.dvwq_t[i] <= d.dvf[DF_NOW]:
            d.dvi[DV_HEAD] += 1
            return d.dvwq_tag[i], d.dvwq_t[i]
    return -1, 0.0


@njit(cache=True)
def dev_next_completion(d):
    if d.dvi[DV_TAIL] > d.dvi[DV_HEAD]:
        return d.dvwq_t[d.dvi[DV_HEAD] % d.dvi[DV_CAP]]
    return np.inf


@njit(cache=True)
def dev_queue_length(d):
    return d.dvi[DV_TAIL] - d.dvi[DV_HEAD]

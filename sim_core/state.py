"""The simulation's memory state as flat NumPy arrays, shared by every compiled kernel.

No Python object per page or per reference: one ``World`` (a numba StructRef of a few
packed arrays, passed to compiled code as one pointer) holds every guest's frames and
pages, the guest swap slots, and the host's view, concatenated across guests. Fields of
one dtype share a 2-D array, one column a field (``w.fb[f, FB_REF]``), so one frame's bits
sit in one cache line. Per-page state is kept narrow (sim_core.footprint counts it): a
field only some policies read (LRU/FIFO links, WS's last use) is allocated only when a
guest uses one of them, else it is a one-element placeholder of the same type, so the
compiled code is the same either way. Guest ``g`` owns frames
``[gi[g, F_LO], gi[g, F_HI])``, pages ``[gi[g, P_LO], gi[g, P_HI])`` and swap slots
``[gi[g, S_LO], gi[g, S_HI])``. The constants below name states and the columns of the
per-guest (``gi``, ``gf``, ``cnt``) and host (``hi``, ``hf``, ``hcnt``) tables; numba
compiles them in as literals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import types
from numba.experimental import structref

from sim_core.block_device import DEVICE_FIELDS, make_device_arrays
from sim_core.constants import ANON, FILE  # noqa: F401 - page kinds: defined once, there
from sim_core.jit import define_proxy, njit_leaf, register_struct

# ---- guest frame states (FB_STATE) ---------------------------------------------------------
FREE = 0
USED = 1  # holds a resident page, mapped
BALLOONED = 2
RECLAIM = 3  # reclaim unmapped its page and is writing it out: freed when the write completes
KERNEL = 4  # guest kernel structures sized at boot (struct page): never free, never reclaimed

# ---- guest page states (PB_STATE) ------------------------------------------------------------
UNTOUCHED = 0  # anonymous page never touched: zero-filled on first touch, no I/O
RESIDENT = 1  # in a frame (USED, or RECLAIM while its write is in flight)
SWAPPED = 2  # anonymous page whose only copy is in guest swap (PG_SLOT says where)
ON_DISK = 3  # file page whose only copy is on disk

# ---- who evicted a page last (PB_EVICTOR): its refault read is charged to that reclaimer ----
EVICTOR_NONE, EVICTOR_GUEST, EVICTOR_BALLOON = 0, 1, 2

# ---- host view of a guest frame (FB_HSTATE) --------------------------------------------------
UNBACKED = 0  # no host frame (never touched, ballooned, or reported free)
BACKED = 1
HOST_SWAPPED = 2  # the host wrote it to host swap and freed the frame
HOST_DISCARDED = 3  # the host dropped a clean copy of a disk block (VSwapper)
HOST_WRITEBACK = 4  # the host is writing it to host swap: still in host memory until done

# ---- per-guest integer columns (gi) ----------------------------------------------------------
F_LO, F_HI, P_LO, P_HI, S_LO, S_HI = 0, 1, 2, 3, 4, 5
HAND = 6  # clock hand (absolute frame index)
LIST_HEAD = 7  # LRU / FIFO list: head = next victim
LIST_TAIL = 8
POLICY = 9
FREE_TOP = 10  # free frames on this guest's stack
BAL_TOP = 11  # ballooned frames on this guest's stack
SLOT_TOP = 12  # free swap slots: the last ones of the guest's range (none is ever freed)
VTIME = 13  # the guest's virtual time: references it has issued
WS_TAU = 14  # `ws` policy window, in references
PINNED = 15  # 1 when the host pins this guest's swap blocks
STALLED = 16  # why the guest cannot run: 0 runs, STALL_* otherwise
REF_POS = 17  # cursor into this guest's reference buffer
REF_LEN = 18
N_FREE = 19  # frames in state FREE
N_USED = 20  # frames in state USED
N_BALLOONED = 21
N_SWAPPED = 22  # swap slots holding a copy (swapped-out pages and the swap cache)
N_BACKED = 23  # this guest's frames in host memory (BACKED or HOST_WRITEBACK)
N_HSWAPPED = 24  # this guest's frames in host swap or discarded
N_DIRTY = 25  # resident file pages with M = 1 (dirty page cache)
ESC_CLASS = 26  # class (0..3) of ESC's last victim
ESC_N00 = 27  # ESC: resident frames with (R, M) = (0, 0) ...
ESC_N01 = 28  # ... and (0, 1), so a pass that cannot succeed is skipped
DEFLATE_ON_OOM = 29  # 1: the balloon gives frames back before the guest runs out
N_WRITEBACK = 30  # frames with a guest write in flight (flusher or reclaim)
N_RECLAIM = 31  # frames in state RECLAIM (freed when their write completes)
N_KERNEL = 32  # frames in state KERNEL
DIRTY_LIMIT = 33  # dirty + writeback pages over which writers are throttled (dirty_ratio)
DIRTY_BG = 34  # dirty pages over which the flusher writes back (dirty_background_ratio)
FLUSH_HAND = 35  # the flusher's position among the guest's frames
PSI_N = 36  # stall intervals recorded this tick (for host PSI)
FREE_LOW = 37  # kswapd watermarks, frames
FREE_HIGH = 38
GI_COLS = 39

STALL_RUNS, STALL_DEADLOCK, STALL_OOM, STALL_KILLED = 0, 1, 2, 3
STALL_BLOCKED = 4  # stopped by the hypervisor until its next decision (ESX's low state)

# ---- per-guest float columns (gf) ------------------------------------------------------------
CLOCK_MS = 0  # the guest's own clock: busy (or blocked) until then
REF_MS = 1  # CPU time per reference (ref_us / activity)
MINOR_MS = 2  # CPU time of a minor fault
MAJOR_MS = 3  # CPU time of a major fault beyond the device wait
HOST_FAULT_MS = 4  # CPU time of a host fault beyond the device wait
STALL_MS = 5  # this tick: time stalled on guest memory (guest PSI)
IDLE_FROM = 6  # this tick: when the guest ran out of work (tick end when it did not)
CACHE_COPY_MS = 7  # time of a request served by the host page cache (host.cache_copy_us)
DP_READ_DONE = 8  # when the host's last double-paging read for this guest completes
GF_COLS = 9

# ---- per-guest counters (cnt) ----------------------------------------------------------------
C_REFS = 0
C_FAULTS = 1  # every miss: minor and major
C_MAJOR = 2  # misses that waited for the device
C_SWAP_OUTS = 3  # guest swap writes
C_SWAP_INS = 4  # guest swap reads
C_WRITEBACKS = 5  # dirty file pages written (flusher and reclaim)
C_FILE_DROPS = 6  # clean file pages dropped by reclaim
C_FILE_READS = 7
C_EVICTIONS = 8  # pages reclaim took from the guest (guest and balloon)
C_NESTED = 9  # guest evictions of frames the host is writing or has swapped (double paging)
C_HOST_FAULTS = 10  # touches of a frame the host had taken away
C_STALE_READS = 11  # host swap-in of a frame the guest is about to fill from disk
C_FALSE_READS = 12  # host swap-in of a frame the guest is about to zero-fill
C_DOUBLE_PAGING = 13  # guest evicts a page the host had swapped: host read to write it out
C_HOST_SWAP_OUTS = 14  # this guest's frames written to host swap
C_HOST_DISCARDS = 15
C_SILENT_WRITES = 16  # host swap-out of a clean page-cache page (VSwapper: needless write)
C_ESC_00 = 17
C_ESC_01 = 18
C_ESC_10 = 19
C_ESC_11 = 20
C_OOM = 21  # times reclaim found nothing to evict
C_BALLOON_RECLAIMS = 22  # evictions the balloon's allocations forced
C_SWAPCACHE_DROPS = 23  # anonymous pages evicted without a write: their swap copy was current
C_BALLOON_WRITES = 24  # writes issued by evictions the balloon forced
C_MINOR = 25  # minor faults: zero-fill, swap cache, pages under writeback
C_GUEST_REFAULTS = 26  # reads of pages guest reclaim had evicted
C_BALLOON_REFAULTS = 27  # reads of pages balloon-forced reclaim had evicted
C_THROTTLES = 28  # times a writer waited in balance_dirty_pages
C_DIRECT_WAITS = 29  # times direct reclaim waited for writeback
C_GUEST_RECLAIM_WRITES = 30  # writes issued by guest reclaim (kswapd and direct)
C_REPORTED = 31  # frames unbacked through free page reporting
C_HOST_REFAULTS = 32  # reads caused by host reclaim: host swap-ins and discarded re-reads
C_INFLATED = 33  # frames the balloon took into itself
CNT_COLS = 34

# ---- host integer columns (hi) ---------------------------------------------------------------
H_FREE = 0  # host frames free
H_NRES = 1  # guest frames in host memory
H_HAND = 2
H_SWAP_USED = 3  # host swap slots in use (swapped frames, writes in flight, swap cache)
H_SWAP_CAP = 4
H_SWAP_POLICY = 5  # 0 random, 1 clock
H_DISCARD = 6
H_IOBUF = 7  # host frames held as I/O buffers
H_IOBUF_PER_REQ_PPM = 8  # buffer frames per request in flight, in millionths (sampling)
H_NFRAMES = 9  # total guest frames
H_WRITEBACK = 10  # host swap writes in flight
H_TOTAL = 11  # host frames available to guests and I/O buffers
H_OOM_KILLED = 12  # the guest the host OOM-killed, -1 if none
H_LOW = 13  # host watermarks, frames
H_HIGH = 14
# The host page cache of guest disk blocks (host.cache = "writeback"; sim_core.host_cache)
H_CACHE_ON = 15  # 1 with host.cache = writeback
H_CACHE = 16  # host frames holding cached blocks (dirty and in transit included)
H_CACHE_DIRTY = 17  # cached blocks dirty or being written back
H_CACHE_WB = 18  # cached blocks being written back
H_CACHE_HAND = 19  # reclaim's clock hand over the cached-block list
H_CACHE_FLUSH = 20  # the host flusher's position in that list
H_CACHE_N = 21  # blocks in the cached-block list
H_BLOCK_SWAP0 = 22  # block number of guest swap slot 0 (file page p is block p)
H_DIRTY_RATIO_X100 = 23  # vm.dirty_ratio, in hundredths of a percent
H_DIRTY_BG_X100 = 24  # vm.dirty_background_ratio, likewise
H_CQ_HEAD = 25  # guest writes copied into the cache, completing: ring (hcq_t, hcq_tag)
H_CQ_N = 26
HI_COLS = 27

# ---- host counters (hcnt) --------------------------------------------------------------------
HC_SWAP_OUTS = 0
HC_SWAP_INS = 1
HC_DISCARDS = 2
HC_SWAPCACHE_DROPS = 3  # host evictions without a write: the host swap copy was current
HC_READS = 4  # device reads, every cause
HC_WRITES = 5  # device writes, every cause
HC_DIRECT_WAITS = 6  # guest faults that waited for a host swap write to free a frame
HC_CACHE_HITS = 7  # guest reads served by the host page cache
HC_CACHE_MISSES = 8  # guest reads of blocks not cached (read from the device)
HC_CACHE_DROPS = 9  # clean cached blocks host reclaim dropped
HC_CACHE_FLUSHES = 10  # dirty cached blocks the host flusher wrote to the device
HC_CACHE_THROTTLES = 11  # guest writes held back by the host's dirty limit
HCNT_COLS = 12

# Tags of writes on the device: guest frame f -> f; host swap-out of guest frame f -> HOST_TAG + f;
# the host flusher's write of cached block b -> CACHE_TAG + b
HOST_TAG = 1 << 40
CACHE_TAG = 1 << 41
PSI_CAP = 2048  # stall intervals kept per guest per tick; more merge into the last one

POLICY_IDS = {
    "esc": 0,
    "clock": 1,
    "lru": 2,
    "fifo": 3,
    "random": 4,
    "file_first": 5,
    "ws": 6,
    "opt": 7,
}

# ---- columns of the packed arrays ---------------------------------------------------
# fr (int32, per frame): the page in the frame. The owning guest is not stored: guest g
# owns frames [gi[g, F_LO], gi[g, F_HI]) (frame_guest)
# lk (int32, per frame, only with an LRU or FIFO guest): the list links
LK_PREV, LK_NEXT = 0, 1
# fb (int8): frame state, kind of its page, R and M bits, host state, host accessed bit,
# guest write in flight, host dirty bit (EPT D bit), host swap slot kept (host swap cache),
# frame filled from a disk block and unchanged since (VSwapper's swap mapper knows it)
FB_STATE, FB_KIND, FB_REF, FB_MOD, FB_HSTATE, FB_HACC = 0, 1, 2, 3, 4, 5
FB_WB, FB_HDIRTY, FB_HSLOT, FB_MIRROR = 6, 7, 8, 9
FB_ROWS = 10
# pg (int32): frame holding the page, swap slot holding it
PG_FRAME, PG_SLOT = 0, 1
PG_ROWS = 2
# pb (int8): page state, page kind, who evicted it last
PB_STATE, PB_KIND, PB_EVICTOR = 0, 1, 2
PB_ROWS = 3
# sb (int8): swap slot holds a copy of a page
SB_USED = 0
SB_ROWS = 1
# stk (int32, per frame): each guest's free-frame stack grows up from F_LO, its balloon
# stack down from F_HI - 1. A frame is on at most one of them (free or ballooned), so the
# two share one slot a frame.
# hu (int32, per guest frame): a dense list of the frames in host memory, and each frame's
# place in it (-1 when not in host memory)
HU_RES, HU_POS = 0, 1
# hcb (int8, per guest disk block: file pages, then swap slots): host page cache state and
# accessed bit; hcl (int32, per block): the dense list of cached blocks and each one's place
HCB_STATE, HCB_ACC = 0, 1
HCB_NONE, HCB_CLEAN, HCB_DIRTY, HCB_WB = 0, 1, 2, 3
HCL_BLOCK, HCL_POS = 0, 1
CACHE_QUEUE = 4096  # guest writes being copied into the host page cache, at most

WORLD_FIELDS = (
    "fr", "fb",  # frames: the page in each (int32), int8 columns
    "fl",  # WS only: each frame's last use, in the guest's virtual time (int64)
    "lk",  # LRU / FIFO only: list links (int32 columns)
    "esc00",  # ESC: bitset of frames in class (R, M) = (0, 0)
    "pg", "pb",  # pages: int32 columns, int8 columns
    "sb",  # swap slots: int8 columns
    "stk",  # free and balloon stacks (int32 over frames)
    "hu",  # the host's dense list of guest frames in host memory
    "gi", "gf", "cnt", "grng",  # per guest: ints, floats, counters, rng streams
    "hi", "hcnt", "hrng",  # host: ints, counters, rng stream
    "ref_page", "ref_write",  # reference buffers: row g holds guest g's next ones
    "psi_iv",  # per guest: this tick's intervals stalled on host memory (start, end), ms
    "hcb", "hcl", "hcq_t", "hcq_tag",  # host page cache: blocks, cached list, copy queue
) + DEVICE_FIELDS  # fmt: skip


@register_struct
class WorldType(types.StructRef):
    """numba's type of a World: its fields are the arrays above."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(t)) for name, t in fields)


class World(structref.StructRefProxy):
    """The simulation's arrays; compiled code takes it as one argument. Python reads the
    same NumPy arrays as attributes (``world.gi``) without a call into compiled code."""

    def __new__(cls, *arrays):
        self = structref.StructRefProxy.__new__(cls, *arrays)
        self._arrays = dict(zip(WORLD_FIELDS, arrays, strict=True))
        return self

    def __getattr__(self, name):
        arrays = self.__dict__.get("_arrays", {})
        if name in arrays:
            return arrays[name]
        raise AttributeError(name)


define_proxy(World, WorldType, list(WORLD_FIELDS))


@njit_leaf
def frame_guest(gi, f):
    """The guest owning frame f: the last one whose frames start at or before f (a
    binary search over the guests' ranges, which tile the frames in guest order)."""
    lo = 0
    hi = gi.shape[0] - 1
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if gi[mid, F_LO] <= f:
            lo = mid
        else:
            hi = mid - 1
    return lo


def splitmix_seed(seed: int, stream: int) -> np.uint64:
    """A 64-bit seed for the compiled splitmix64 generator of one stream."""
    rng = np.random.default_rng([seed, stream])
    return np.uint64(rng.integers(1, 2**63 - 1))


def make_world(
    frames: Sequence[int],
    page_kinds: Sequence[np.ndarray],
    swap_slots: Sequence[int],
    policies: Sequence[int],
    seed: int,
    host_frames: int,
    ref_buffer: int = 1,
    device: dict[str, np.ndarray] | None = None,
    host_cache: bool = False,
) -> World:
    """Allocate the arrays for guests with ``frames[g]`` frames, pages of ``page_kinds[g]``
    and ``swap_slots[g]`` swap slots, on ``device`` (arrays of block_device; a default NVMe
    device when None), with a host page cache of guest blocks if ``host_cache``. Every
    frame starts FREE and UNBACKED."""
    n = len(frames)
    f_total = int(sum(frames))
    p_total = int(sum(len(k) for k in page_kinds))
    s_total = int(sum(swap_slots))
    gi = np.zeros((n, GI_COLS), np.int64)
    stk = np.zeros(max(f_total, 1), np.int32)
    pb = np.zeros((max(p_total, 1), PB_ROWS), np.int8)
    f_lo = p_lo = s_lo = 0
    for g in range(n):
        f_hi, p_hi, s_hi = f_lo + frames[g], p_lo + len(page_kinds[g]), s_lo + swap_slots[g]
        gi[g, F_LO], gi[g, F_HI] = f_lo, f_hi
        gi[g, P_LO], gi[g, P_HI] = p_lo, p_hi
        gi[g, S_LO], gi[g, S_HI] = s_lo, s_hi
        gi[g, HAND] = gi[g, FLUSH_HAND] = f_lo
        gi[g, LIST_HEAD] = gi[g, LIST_TAIL] = -1
        gi[g, POLICY] = policies[g]
        gi[g, DIRTY_LIMIT] = gi[g, DIRTY_BG] = frames[g]
        # Stacks pop from the top: push in reverse so low indices come out first.
        stk[f_lo:f_hi] = np.arange(f_hi - 1, f_lo - 1, -1, dtype=np.int32)
        gi[g, FREE_TOP] = frames[g]
        gi[g, N_FREE] = frames[g]
        gi[g, SLOT_TOP] = swap_slots[g]
        pb[p_lo:p_hi, PB_KIND] = page_kinds[g]
        f_lo, p_lo, s_lo = f_hi, p_hi, s_hi
    pb[:, PB_STATE] = np.where(pb[:, PB_KIND] == FILE, ON_DISK, UNTOUCHED)
    hi = np.zeros(HI_COLS, np.int64)
    hi[H_FREE] = host_frames
    hi[H_TOTAL] = host_frames
    hi[H_NFRAMES] = f_total
    hi[H_OOM_KILLED] = -1
    hu = np.zeros((max(f_total, 1), 2), np.int32)
    hu[:, HU_POS] = -1
    blocks = p_total + s_total if host_cache else 1  # no cache: no per-block state
    hcl = np.zeros((max(blocks, 1), 2), np.int32)
    hcl[:, HCL_POS] = -1
    hi[H_CACHE_ON] = int(host_cache)
    hi[H_BLOCK_SWAP0] = p_total
    if device is None:
        device = make_device_arrays(80.0, 20.0, 500_000.0, 32, 256, 5000.0, 2, 16)
    used = set(policies)
    links = f_total if used & {POLICY_IDS["lru"], POLICY_IDS["fifo"]} else 1
    last_use = f_total if POLICY_IDS["ws"] in used else 1
    arrays = dict(
        fr=np.full(max(f_total, 1), -1, np.int32),
        fb=np.zeros((max(f_total, 1), FB_ROWS), np.int8),
        fl=np.zeros(max(last_use, 1), np.int64),
        lk=np.full((max(links, 1), 2), -1, np.int32),
        esc00=np.zeros(f_total // 64 + 1, np.uint64),
        pg=np.full((max(p_total, 1), PG_ROWS), -1, np.int32),
        pb=pb,
        sb=np.zeros((max(s_total, 1), SB_ROWS), np.int8),
        stk=stk,
        hu=hu,
        gi=gi,
        gf=np.zeros((n, GF_COLS), np.float64),
        cnt=np.zeros((n, CNT_COLS), np.int64),
        grng=np.array([splitmix_seed(seed, g) for g in range(n)], dtype=np.uint64),
        hi=hi,
        hcnt=np.zeros(HCNT_COLS, np.int64),
        hrng=np.array([splitmix_seed(seed, 1_000_003)], dtype=np.uint64),
        ref_page=np.zeros((n, max(ref_buffer, 1)), np.int32),
        ref_write=np.zeros((n, max(ref_buffer, 1)), np.uint8),
        psi_iv=np.zeros((n, PSI_CAP, 2), np.float64),
        hcb=np.zeros((max(blocks, 1), 2), np.int8),
        hcl=hcl,
        hcq_t=np.zeros(CACHE_QUEUE if host_cache else 1, np.float64),
        hcq_tag=np.zeros(CACHE_QUEUE if host_cache else 1, np.int64),
        **device,
    )
    return World(*(arrays[name] for name in WORLD_FIELDS))

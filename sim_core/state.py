"""The simulation's memory state as flat NumPy arrays, shared by every compiled kernel.

No Python object per page or per reference: one ``World`` (a numba StructRef of a few
packed arrays, passed to compiled code as one pointer) holds every guest's frames and
pages, the guest swap slots, and the host's view, concatenated across guests. Fields of
one dtype share a 2-D array, one column a field (``w.fb[f, FB_REF]``), so one frame's bits
sit in one cache line. Guest ``g`` owns frames
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

# ---- page kinds (one definition: sim_core.constants) -------------------------------------
from sim_core.constants import ANON, FILE  # noqa: E402,F401

# ---- guest frame states (f_state) ------------------------------------------------------------
FREE = 0
USED = 1  # holds a resident page
BALLOONED = 2

# ---- guest page states (p_state) -------------------------------------------------------------
UNTOUCHED = 0  # anonymous page never written: a zero page, no I/O to bring in
RESIDENT = 1
SWAPPED = 2  # anonymous page in guest swap (p_slot says where)
ON_DISK = 3  # file page whose only copy is on disk

# ---- host view of a guest frame (h_state) ----------------------------------------------------
UNBACKED = 0  # no host frame (never touched, or ballooned)
BACKED = 1
HOST_SWAPPED = 2  # the host wrote it to host swap
HOST_DISCARDED = 3  # the host dropped a clean copy: the guest's disk image has it

# ---- guest swap file blocks, as the host caches them (s_block) -------------------------------
BLK_NONE = 0  # never written: nothing to read before a write
BLK_CACHED = 1  # in host memory (uses a host frame)
BLK_EVICTED = 2  # the host dropped it: a write to it needs a host read first (nested fault)

# ---- per-guest integer columns (gi) ----------------------------------------------------------
F_LO, F_HI, P_LO, P_HI, S_LO, S_HI = 0, 1, 2, 3, 4, 5
HAND = 6  # clock hand (absolute frame index)
LIST_HEAD = 7  # LRU / FIFO list: head = next victim
LIST_TAIL = 8
POLICY = 9
FREE_TOP = 10  # free frames on this guest's stack
BAL_TOP = 11  # ballooned frames on this guest's stack
SLOT_TOP = 12  # free swap slots on this guest's stack
VTIME = 13  # the guest's virtual time: references it has issued
WS_TAU = 14  # `ws` policy window, in references
PINNED = 15  # 1 when the host pins this guest's swap blocks
STALLED = 16  # 1 when the guest cannot run (deadlocked, or out of memory)
REF_POS = 17  # cursor into this guest's reference buffer
REF_LEN = 18
N_FREE = 19  # frames in state FREE
N_USED = 20
N_BALLOONED = 21
N_SWAPPED = 22  # pages in guest swap
N_BACKED = 23  # this guest's frames backed by host memory
N_HSWAPPED = 24  # this guest's frames in host swap
N_CACHED_BLOCKS = 25  # this guest's swap blocks cached in host memory
ESC_CLASS = 26  # class (0..3) of ESC's last victim
ESC_N00 = 27  # ESC: resident frames with (R, M) = (0, 0) ...
ESC_N01 = 28  # ... and (0, 1), so a pass that cannot succeed is skipped
DEFLATE_ON_OOM = 29  # 1: the balloon gives frames back before the guest runs out
GI_COLS = 30

# ---- per-guest float columns (gf) ------------------------------------------------------------
CLOCK_MS = 0  # the guest's own clock: busy until then
REF_MS = 1  # time per reference (t_mem / activity)
FAULT_MS = 2  # CPU cost of taking a fault
GF_COLS = 3

# ---- per-guest counters (cnt) ----------------------------------------------------------------
C_REFS = 0
C_FAULTS = 1  # every miss: major and minor
C_MAJOR = 2  # misses that waited for the disk
C_SWAP_OUTS = 3
C_SWAP_INS = 4
C_WRITEBACKS = 5
C_FILE_DROPS = 6
C_FILE_READS = 7
C_EVICTIONS = 8
C_NESTED = 9  # guest swap-out to a block the host had evicted: a host read first
C_HOST_FAULTS = 10  # touches of a host-swapped frame
C_STALE_READS = 11  # host swap-in of a frame the guest is about to fill from disk
C_FALSE_READS = 12  # host swap-in of a frame the guest is about to overwrite (zero-fill)
C_DOUBLE_PAGING = 13  # guest evicts a page the host had swapped: read back to write out
C_HOST_SWAP_OUTS = 14  # this guest's frames written to host swap
C_HOST_DISCARDS = 15
C_SILENT_WRITES = 16  # host swap-out of a clean page-cache page (needless write)
C_ESC_00 = 17
C_ESC_01 = 18
C_ESC_10 = 19
C_ESC_11 = 20
C_OOM = 21  # times reclaim found nothing to evict
C_BALLOON_RECLAIMS = 22  # evictions forced by balloon inflation
C_HOST_BLOCK_DROPS = 23  # this guest's cached swap blocks dropped by the host
C_BALLOON_WRITES = 24  # writes issued by evictions the balloon forced
CNT_COLS = 25

# ---- host integer columns (hi) ---------------------------------------------------------------
H_FREE = 0  # host frames free
H_NRES = 1  # units resident in host memory (guest frames + cached swap blocks)
H_HAND = 2
H_SWAP_USED = 3
H_SWAP_CAP = 4
H_SWAP_POLICY = 5  # 0 random, 1 clock
H_DISCARD = 6
H_IOBUF = 7  # host frames held as I/O buffers
H_IOBUF_PER_REQ_X1000 = 8  # buffer frames per request in the queue, x1000
H_NFRAMES = 9  # total guest frames (unit ids below this are frames, above are swap blocks)
H_NUNITS = 10
H_TOTAL = 11  # host frames available to guests, buffers and swap-block cache
H_GQ_HEAD = 12  # guest requests in flight: a FIFO of completion times (ring buffer gq)
H_GQ_TAIL = 13
H_NRES_FRAMES = 14  # of H_NRES: guest frames ...
H_NRES_BLOCKS = 15  # ... and guest swap-file blocks the host caches
HI_COLS = 16
GQ_CAPACITY = 1 << 18  # guest requests in flight tracked at most (older ones count as done)

# ---- host float columns (hf) -----------------------------------------------------------------
D_FREE_AT = 0  # the disk is busy until this time (ms): FIFO queue with finite IOPS
D_SERVICE = 1  # ms per request (1 / IOPS)
D_LATENCY = 2  # ms added to every read that waits for the disk
HF_COLS = 3

# ---- host counters (hcnt) --------------------------------------------------------------------
HC_SWAP_OUTS = 0
HC_SWAP_INS = 1
HC_DISCARDS = 2
HC_BLOCK_DROPS = 3
HC_READS = 4  # disk reads, every cause
HC_WRITES = 5  # disk writes, every cause
HC_OOM = 6  # host could not find a victim
HCNT_COLS = 7

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
# fr (int32): the page in the frame, LRU/FIFO list links, owning guest
FR_PAGE, FR_PREV, FR_NEXT, FR_GUEST = 0, 1, 2, 3
FR_ROWS = 4
# fb (int8): frame state, kind of its page, R and M bits, host state, host accessed bit
FB_STATE, FB_KIND, FB_REF, FB_MOD, FB_HSTATE, FB_HACC = 0, 1, 2, 3, 4, 5
FB_ROWS = 6
# pg (int32): frame holding the page, swap slot holding it
PG_FRAME, PG_SLOT = 0, 1
PG_ROWS = 2
# pb (int8): page state, page kind
PB_STATE, PB_KIND = 0, 1
PB_ROWS = 2
# sb (int8): swap slot holds a page, host state of its block, host accessed bit
SB_USED, SB_BLOCK, SB_ACC = 0, 1, 2
SB_ROWS = 3
# stk (int32, per frame): the free-frame stacks and the balloon stacks of every guest
STK_FREE, STK_BAL = 0, 1
# hu (int32, per host unit): dense lists of resident units (frames in rows [0, F), swap
# blocks in rows [F, F+S)), and each unit's place in its list
HU_RES, HU_POS = 0, 1

WORLD_FIELDS = (
    "fr", "fb", "fl",  # frames: int32 columns, int8 columns, last use (int64)
    "esc00",  # ESC: bitset of frames in class (R, M) = (0, 0)
    "pg", "pb",  # pages: int32 columns, int8 columns
    "sb", "sg", "sstk",  # swap slots: int8 columns, owning guest, free-slot stacks
    "stk",  # free and balloon stacks (int32 columns over frames)
    "hu",  # host resident units: frames 0..F-1, then swap blocks F..F+S-1
    "gi", "gf", "cnt", "grng",  # per guest: ints, floats, counters, rng streams
    "hi", "hf", "hcnt", "hrng",  # host: ints, floats, counters, rng stream
    "ref_page", "ref_write",  # reference buffers: row g holds guest g's next ones
    "gq",  # completion times of guest I/O requests in flight (a ring of GQ_CAPACITY)
)  # fmt: skip


@structref.register
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


structref.define_proxy(World, WorldType, list(WORLD_FIELDS))


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
) -> World:
    """Allocate the arrays for guests with ``frames[g]`` frames, pages of ``page_kinds[g]``
    and ``swap_slots[g]`` swap slots. Every frame starts FREE and UNBACKED."""
    n = len(frames)
    f_total = int(sum(frames))
    p_total = int(sum(len(k) for k in page_kinds))
    s_total = int(sum(swap_slots))
    units = max(f_total + s_total, 1)
    gi = np.zeros((n, GI_COLS), np.int64)
    fr = np.full((max(f_total, 1), FR_ROWS), -1, np.int32)
    stk = np.zeros((max(f_total, 1), 2), np.int32)
    sg = np.zeros(max(s_total, 1), np.int32)
    sstk = np.zeros(max(s_total, 1), np.int32)
    pb = np.zeros((max(p_total, 1), PB_ROWS), np.int8)
    f_lo = p_lo = s_lo = 0
    for g in range(n):
        f_hi, p_hi, s_hi = f_lo + frames[g], p_lo + len(page_kinds[g]), s_lo + swap_slots[g]
        gi[g, F_LO], gi[g, F_HI] = f_lo, f_hi
        gi[g, P_LO], gi[g, P_HI] = p_lo, p_hi
        gi[g, S_LO], gi[g, S_HI] = s_lo, s_hi
        gi[g, HAND] = f_lo
        gi[g, LIST_HEAD] = gi[g, LIST_TAIL] = -1
        gi[g, POLICY] = policies[g]
        fr[f_lo:f_hi, FR_GUEST] = g
        sg[s_lo:s_hi] = g
        # Stacks pop from the top: push in reverse so low indices come out first.
        stk[f_lo:f_hi, STK_FREE] = np.arange(f_hi - 1, f_lo - 1, -1, dtype=np.int32)
        gi[g, FREE_TOP] = frames[g]
        gi[g, N_FREE] = frames[g]
        sstk[s_lo:s_hi] = np.arange(s_hi - 1, s_lo - 1, -1, dtype=np.int32)
        gi[g, SLOT_TOP] = swap_slots[g]
        pb[p_lo:p_hi, PB_KIND] = page_kinds[g]
        f_lo, p_lo, s_lo = f_hi, p_hi, s_hi
    pb[:, PB_STATE] = np.where(pb[:, PB_KIND] == FILE, ON_DISK, UNTOUCHED)
    hi = np.zeros(HI_COLS, np.int64)
    hi[H_FREE] = host_frames
    hi[H_TOTAL] = host_frames
    hi[H_NFRAMES] = f_total
    hi[H_NUNITS] = f_total + s_total
    hu = np.zeros((units, 2), np.int32)
    hu[:, HU_POS] = -1
    arrays = dict(
        fr=fr,
        fb=np.zeros((max(f_total, 1), FB_ROWS), np.int8),
        fl=np.zeros(max(f_total, 1), np.int64),
        esc00=np.zeros(f_total // 64 + 1, np.uint64),
        pg=np.full((max(p_total, 1), PG_ROWS), -1, np.int32),
        pb=pb,
        sb=np.zeros((max(s_total, 1), SB_ROWS), np.int8),
        sg=sg,
        sstk=sstk,
        stk=stk,
        hu=hu,
        gi=gi,
        gf=np.zeros((n, GF_COLS), np.float64),
        cnt=np.zeros((n, CNT_COLS), np.int64),
        grng=np.array([splitmix_seed(seed, g) for g in range(n)], dtype=np.uint64),
        hi=hi,
        hf=np.zeros(HF_COLS, np.float64),
        hcnt=np.zeros(HCNT_COLS, np.int64),
        hrng=np.array([splitmix_seed(seed, 1_000_003)], dtype=np.uint64),
        ref_page=np.zeros((n, max(ref_buffer, 1)), np.int32),
        ref_write=np.zeros((n, max(ref_buffer, 1)), np.uint8),
        gq=np.zeros(GQ_CAPACITY, np.float64),
    )
    return World(*(arrays[name] for name in WORLD_FIELDS))

"""Constants shared across the simulation core.

Page kinds: every guest page is either anonymous (heap, stack: evicting it means a write
to guest swap) or file-backed (page cache: a clean one is dropped for free, a dirty one is
written back to its file). Arrays of page kinds use ``PAGE_KIND_DTYPE``.
"""

from __future__ import annotations

import numpy as np

ANON = 0  # anonymous memory: evicted to guest swap
FILE = 1  # file-backed page cache: dropped when clean, written back when dirty
PAGE_KIND_DTYPE = np.int8

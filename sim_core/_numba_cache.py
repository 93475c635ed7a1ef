"""Where numba caches the compiled kernels: one directory per version of sim_core's source.

numba keys a cached function on its own file's timestamp only, not on the functions it
calls in other modules, so after an edit of (say) writeback.py a cached caller in
guest_reclaim.py would keep the old code inlined. A cache directory named after a hash of
every sim_core source file makes any edit start from a clean cache. An explicit
NUMBA_CACHE_DIR is left alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def source_hash() -> str:
    """A short hash of every .py file of sim_core, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def configure() -> None:
    """Point numba's cache at this source version's directory (before any njit runs)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    import numba

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = base / "balloonlab" / f"numba-{source_hash()}"
    numba.config.CACHE_DIR = str(cache)
    os.environ["NUMBA_CACHE_DIR"] = str(cache)  # Ray workers and subprocesses agree

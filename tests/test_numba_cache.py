"""numba's cache directory follows sim_core's sources, so a stale cached caller never runs."""

from __future__ import annotations

import subprocess
import sys

from sim_core import _numba_cache


def test_the_cache_directory_is_named_after_the_sources():
    assert _numba_cache.source_hash() == _numba_cache.source_hash()
    assert len(_numba_cache.source_hash()) == 16


def test_an_explicit_cache_directory_wins_and_otherwise_the_hash_names_it(tmp_path):
    code = "import sim_core, numba; print(numba.config.CACHE_DIR)"
    explicit = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "", "NUMBA_CACHE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert explicit.stdout.strip() == str(tmp_path)
    hashed = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "", "XDG_CACHE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = tmp_path / "balloonlab" / f"numba-{_numba_cache.source_hash()}"
    assert hashed.stdout.strip() == str(expected)

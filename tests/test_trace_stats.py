"""The LRU miss-ratio curve (stack distances, SHARDS) and `balloonlab trace stats`."""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.cli import main
from sim_core.mrc import lru_mrc, spatial_hash
from sim_core.replay import replay


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    argv = sys.argv
    sys.argv = ["balloonlab", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def small_trace(n: int = 4000, seed: int = 3) -> np.ndarray:
    """Zipf-ish with a scan mixed in: distances of every size occur."""
    rng = np.random.default_rng(seed)
    pages = rng.zipf(1.2, n) % 300
    pages[::7] = np.arange(len(pages[::7])) % 350 + 1000
    return pages.astype(np.int64) * 5  # sparse ids


def test_lru_curve_equals_replay_at_every_size():
    pages = small_trace()
    curve = lru_mrc(pages)
    unique = np.unique(pages).size
    assert curve.rate == 1.0 and curve.unique_pages == unique
    for frames in range(1, unique + 2):
        faults = replay(pages, frames, "lru").faults
        assert curve.misses(frames) == faults, frames
        assert curve.miss_ratio(frames) == pytest.approx(faults / pages.size)
    assert curve.misses(0) == pages.size  # no cache: every reference misses


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=60), st.integers(1, 14))
def test_lru_curve_matches_replay_on_any_trace(refs, frames):
    pages = np.array(refs, np.int64)
    assert lru_mrc(pages).misses(frames) == replay(pages, frames, "lru").faults


def test_stack_distances_by_hand():
    # a b c a b d a: distances - - - 2 2 - 2 (distinct pages between)
    curve = lru_mrc(np.array([1, 2, 3, 1, 2, 4, 1]))
    assert curve.cold == 4
    assert curve.hist.tolist()[:3] == [0, 0, 3]
    assert curve.misses(np.array([1, 2, 3, 4])).tolist() == [7, 7, 4, 4]


def test_shards_sample_estimates_the_curve():
    from harness.bench import zipf_trace

    pages, _ = zipf_trace(400_000, 200_000, alpha=0.8, seed=2)
    exact = lru_mrc(pages)
    sampled = lru_mrc(pages, 0.2)
    assert sampled.rate == pytest.approx(0.2, abs=1e-6)
    assert sampled.sampled < 0.25 * pages.size
    sizes = np.array([2_000, 10_000, 40_000, 100_000])
    # an estimate: within 0.025 of the exact curve on this skewed trace
    np.testing.assert_allclose(sampled.miss_ratio(sizes), exact.miss_ratio(sizes), atol=0.025)
    assert sampled.unique_pages == pytest.approx(exact.unique_pages, rel=0.1)


def test_spatial_hash_keeps_a_page_in_or_out_everywhere():
    pages = np.arange(100_000)
    h = spatial_hash(pages)
    assert (h == spatial_hash(pages.copy())).all()
    assert abs((h < (1 << 24) * 0.1).mean() - 0.1) < 0.01  # uniform


def test_bad_arguments():
    with pytest.raises(ValueError, match="sample_rate"):
        lru_mrc(np.array([1, 2]), 0.0)
    with pytest.raises(ValueError, match="integer page ids"):
        lru_mrc(np.array([1.5]))


# ---- the command -----------------------------------------------------------------------------


@pytest.fixture
def csv_trace(tmp_path):
    pages = small_trace(2000)
    writes = (np.arange(pages.size) % 4 == 0).astype(np.uint8)
    path = tmp_path / "t.csv"
    pcsv.write_csv(pa.table({"page": pages, "write": writes}), path)
    return path, pages


def test_stats_json_and_png(capsys, csv_trace, tmp_path):
    path, pages = csv_trace
    png = tmp_path / "mrc.png"
    code, out, err = run_cli(capsys, "trace", "stats", str(path), "--json", "--png", str(png))
    assert code == 0, err
    s = json.loads(out)
    unique = np.unique(pages).size
    assert s["references"] == pages.size and s["unique_pages"] == unique
    assert s["footprint_mib"] == pytest.approx(unique * 4 / 1024)
    assert s["write_ratio"] == pytest.approx(0.25, abs=0.001)
    mrc = s["mrc"]
    assert mrc["sample_rate"] == 1.0 and mrc["frames"][-1] == unique
    for frames, ratio in zip(mrc["frames"], mrc["miss_ratio"], strict=True):
        assert ratio == pytest.approx(replay(pages, frames, "lru").faults / pages.size)
    assert (np.diff(mrc["miss_ratio"]) <= 0).all()  # LRU: bigger is never worse
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stats_human_output_and_sampling(capsys, csv_trace):
    path, pages = csv_trace
    code, out, err = run_cli(capsys, "trace", "stats", str(path))
    assert code == 0 and err == ""
    for word in ("references", "unique pages", "footprint", "write ratio", "miss ratio"):
        assert word in out
    assert f"{pages.size:,}" in out and "exact" in out
    code, out, _ = run_cli(capsys, "trace", "stats", str(path), "--sample", "0.5", "--json")
    assert code == 0 and json.loads(out)["mrc"]["sample_rate"] == pytest.approx(0.5)


def test_stats_splits_block_requests(capsys, tmp_path):
    path = tmp_path / "hm_0.csv"
    path.write_text(
        "128166372003061629,hm,0,Read,8192,4096,1\n"
        "128166372003561629,hm,0,Write,4096,8192,1\n"
        "128166372004061629,hm,0,Read,0,12288,1\n"
    )
    code, out, err = run_cli(capsys, "trace", "stats", str(path), "--json")
    assert code == 0, err
    s = json.loads(out)
    assert (s["format"], s["requests"], s["references"], s["unique_pages"]) == ("msr", 3, 6, 3)
    assert s["write_ratio"] == pytest.approx(2 / 6)
    code, out, _ = run_cli(capsys, "trace", "stats", str(path), "--json", "--page-split", "2048")
    assert json.loads(out)["references"] == 2 + 4 + 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.csv"], "missing.csv: no such file"),
        (["t.csv", "--sample", "2"], "--sample must be 'auto' or a rate in (0, 1]"),
        (["t.csv", "--page-kib", "0"], "--page-kib must be > 0"),
        (["t.csv", "--png", "/nonexistent/dir/x.png"], "cannot write the PNG"),
    ],
)
def test_stats_bad_input_is_one_line(capsys, csv_trace, args, message):
    path, _ = csv_trace
    args = [str(path.parent / args[0]), *args[1:]]
    code, out, err = run_cli(capsys, "trace", "stats", *args)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_help_has_an_example(capsys):
    code, out, _ = run_cli(capsys, "trace", "stats", "--help")
    assert code == 0 and "Example: balloonlab trace stats" in out


def test_auto_sampling_switches_to_shards_on_long_traces(capsys, csv_trace, monkeypatch):
    import harness.commands.trace as cmd

    path, pages = csv_trace
    monkeypatch.setattr(cmd, "EXACT_LIMIT", 1000)
    monkeypatch.setattr(cmd, "AUTO_SAMPLED", 500)
    code, out, _ = run_cli(capsys, "trace", "stats", str(path), "--json")
    s = json.loads(out)
    assert code == 0
    assert s["mrc"]["sample_rate"] == pytest.approx(500 / pages.size, rel=0.01)
    assert s["unique_pages"] == np.unique(pages).size  # counted exactly all the same


def test_footprint_pages_follow_the_split_size(capsys, tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("offset,size\n0,16384\n")
    code, out, _ = run_cli(capsys, "trace", "stats", str(path), "--json", "--page-split", "8192")
    s = json.loads(out)
    assert (s["references"], s["page_kib"], s["footprint_mib"]) == (2, 8.0, 16 / 1024)

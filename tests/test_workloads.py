"""Workload generators: determinism, chunking, layout, and the statistics they promise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_core.config import ConfigError
from sim_core.constants import ANON, FILE
from sim_core.workloads import (
    WORKLOADS,
    Workload,
    alias_sample,
    alias_table,
    check_workload_params,
    make_workload,
    pack_alias,
    param_table,
)

MEM_PAGES = 4096  # a 16 MiB VM of 4 KiB pages
FILE_DRIVEN = {"trace", "damon"}  # need a file: tested in test_trace_workload.py
ALL = sorted(set(WORKLOADS) - FILE_DRIVEN)


def started(name: str, seed: int = 1, mem_pages: int = MEM_PAGES, **params) -> Workload:
    w = make_workload(name, params, mem_pages, 4)
    w.reset(np.random.default_rng(seed))
    return w


# ---- the registry and the interface -------------------------------------------------------


def test_registry_holds_the_six_synthetic_and_two_file_driven_workloads():
    assert set(WORKLOADS) == {"zipf", "hotcold", "phases", "scan", "db", "idle"} | FILE_DRIVEN
    for name, cls in WORKLOADS.items():
        assert cls.name == name


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_parameter_has_a_default_a_unit_and_a_one_line_doc(name):
    table = param_table(name)
    assert table, name
    for key, row in table.items():
        assert set(row) == {"default", "unit", "doc"}, key
        assert row["doc"] and "\n" not in row["doc"], key
        assert isinstance(row["unit"], str), key
        if key.endswith("_mib"):
            assert row["unit"] == "MiB", key
    assert param_table("trace")["split_bytes"]["unit"] == "bytes"
    assert param_table("zipf")["write_ratio"]["unit"] == "1"


@pytest.mark.parametrize("name", ALL)
def test_synthetic_workloads_ignore_until_ms(name):
    """The simulation passes the end of the tick; a synthetic stream does not depend on it
    and always returns all it was asked for."""
    a, b = started(name, seed=5), started(name, seed=5)
    pa, wa = a.generate(5000)
    pb, wb = b.generate(5000, 0.0)
    assert pb.size == 5000
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_gives_the_same_stream(name):
    a, b = started(name, seed=7), started(name, seed=7)
    pa, wa = a.generate(30_000)
    pb, wb = b.generate(30_000)
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(a.warm_order(), b.warm_order())


@pytest.mark.parametrize("name", ALL)
def test_different_seeds_give_different_streams(name):
    pa, _ = started(name, seed=1).generate(30_000)
    pb, _ = started(name, seed=2).generate(30_000)
    assert not np.array_equal(pa, pb)


@pytest.mark.parametrize("name", ALL)
def test_reset_restarts_the_stream(name):
    w = started(name, seed=3)
    first = w.generate(10_000)
    w.generate(5_000)
    w.reset(np.random.default_rng(3))
    again = w.generate(10_000)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


@pytest.mark.parametrize("name", ALL)
def test_chunked_generation_continues_the_same_stream(name):
    # phase_refs small enough that the chunks cross phase boundaries
    params = {"phase_refs": 700} if name == "phases" else {}
    whole = started(name, seed=5, **params).generate(20_001)
    w = started(name, seed=5, **params)
    parts = [w.generate(n) for n in (1, 6_999, 0, 3, 13_000 - 2, 0)]
    np.testing.assert_array_equal(np.concatenate([p for p, _ in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([x for _, x in parts]), whole[1])


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(ALL),
    chunks=st.lists(st.integers(0, 3000), min_size=1, max_size=8),
    phase_refs=st.integers(1, 2000),
)
def test_any_chunking_gives_the_same_stream(name, chunks, phase_refs):
    params = {"phase_refs": phase_refs} if name == "phases" else {}
    whole_pages, whole_writes = started(name, seed=11, mem_pages=512, **params).generate(
        sum(chunks)
    )
    w = started(name, seed=11, mem_pages=512, **params)
    parts = [w.generate(n) for n in chunks]
    np.testing.assert_array_equal(np.concatenate([p for p, _ in parts]), whole_pages)
    np.testing.assert_array_equal(np.concatenate([x for _, x in parts]), whole_writes)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("mem_pages", [1, 37, 4096])
def test_pages_in_range_and_dtypes(name, mem_pages):
    w = started(name, mem_pages=mem_pages)
    pages, writes = w.generate(20_000)
    assert pages.dtype == np.int32 and writes.dtype == np.uint8
    assert pages.shape == writes.shape == (20_000,)
    assert pages.min() >= 0 and pages.max() < w.n_pages
    assert set(np.unique(writes)) <= {0, 1}
    assert w.page_kind.dtype == np.int8 and w.page_kind.shape == (w.n_pages,)
    assert set(np.unique(w.page_kind)) <= {ANON, FILE}
    order = w.warm_order()
    assert order.dtype == np.int32
    np.testing.assert_array_equal(np.sort(order), np.arange(w.n_pages))
    assert 1 <= w.working_set_pages() <= w.n_pages


@pytest.mark.parametrize("name", ALL)
def test_using_a_workload_before_reset_is_an_error(name):
    w = make_workload(name, {}, MEM_PAGES, 4)
    with pytest.raises(RuntimeError, match="reset"):
        w.generate(10)


# ---- sizes: MiB params, defaults relative to the VM ---------------------------------------


def test_default_sizes_are_fractions_of_vm_memory():
    mem = 1000
    assert make_workload("zipf", {}, mem, 4).n_pages == 600
    hc = make_workload("hotcold", {}, mem, 4)
    assert (hc.working_set_pages(), hc.n_pages) == (300, 900)
    ph = make_workload("phases", {}, mem, 4)
    assert (ph.working_set_pages(), ph.n_pages) == (400, 900)
    assert make_workload("scan", {}, mem, 4).n_pages == 1200
    db = make_workload("db", {}, mem, 4)
    assert (db.cache_pages, db.cold_pages, db.heap_pages) == (450, 400, 50)
    assert make_workload("idle", {}, mem, 4).n_pages == 50


def test_mib_params_convert_with_the_page_size():
    assert make_workload("zipf", {"footprint_mib": 10}, 1, 4).n_pages == 2560
    assert make_workload("zipf", {"footprint_mib": 10}, 1, 16).n_pages == 640
    assert make_workload("scan", {"footprint_mib": 0.5}, 1, 4).n_pages == 128


def test_activity():
    assert make_workload("idle", {}, MEM_PAGES, 4).activity == 0.01
    assert make_workload("idle", {"activity": 0.2}, MEM_PAGES, 4).activity == 0.2
    for name in ("zipf", "hotcold", "phases", "scan", "db"):
        assert make_workload(name, {}, MEM_PAGES, 4).activity == 1.0


# ---- layout: page kinds per region --------------------------------------------------------


def test_db_regions_and_page_kinds():
    db = started("db")
    kinds = db.page_kind
    assert (kinds[slice(*db.cache_range)] == FILE).all()
    assert (kinds[slice(*db.cold_range)] == ANON).all()
    assert (kinds[slice(*db.heap_range)] == ANON).all()
    assert db.working_set_pages() == db.cache_pages + db.heap_pages


def test_scan_is_file_backed_and_read_only():
    w = started("scan")
    assert (w.page_kind == FILE).all()
    _, writes = w.generate(10_000)
    assert writes.sum() == 0


@pytest.mark.parametrize("name", ["zipf", "phases"])
def test_file_fraction_marks_that_share_of_pages(name):
    w = started(name, file_fraction=0.25)
    assert (w.page_kind == FILE).sum() == round(0.25 * w.n_pages)
    assert (started(name).page_kind == ANON).all()


def test_hotcold_file_fraction_applies_to_each_set():
    w = started("hotcold", file_fraction=0.5)
    hot = w.working_set_pages()
    assert (w.page_kind[:hot] == FILE).sum() == round(0.5 * hot)
    assert (w.page_kind[hot:] == FILE).sum() == round(0.5 * (w.n_pages - hot))


def test_zipf_file_pages_get_random_popularity():
    # rank -> page is a seeded permutation, so file pages are not all the coldest ones
    w = started("zipf", file_fraction=0.5)
    top = w.warm_order()[: w.n_pages // 10]
    assert 0.3 < (w.page_kind[top] == FILE).mean() < 0.7


# ---- statistics ---------------------------------------------------------------------------

N = 200_000  # references per statistical test: a share's standard error is < 0.0012


def test_hotcold_hot_set_takes_its_share():
    w = started("hotcold", hot_prob=0.8)
    pages, _ = w.generate(N)
    assert abs((pages < w.working_set_pages()).mean() - 0.8) < 0.01


def test_db_regions_take_their_shares_and_write_ratios():
    w = started("db")
    pages, writes = w.generate(N)
    for (lo, hi), share, write_ratio in [
        (w.cache_range, 0.70, 0.05),
        (w.cold_range, 0.05, 0.3),
        (w.heap_range, 0.25, 0.5),
    ]:
        inside = (pages >= lo) & (pages < hi)
        assert abs(inside.mean() - share) < 0.01
        assert abs(writes[inside].mean() - write_ratio) < 0.02


def test_db_shares_are_relative_weights():
    w = started("db", cache_share=1, cold_share=1, heap_share=0)
    pages, _ = w.generate(N)
    lo, hi = w.cache_range
    assert abs(((pages >= lo) & (pages < hi)).mean() - 0.5) < 0.01
    lo, hi = w.heap_range
    assert not ((pages >= lo) & (pages < hi)).any()


@pytest.mark.parametrize(
    "name, params, ratio",
    [
        ("zipf", {}, 0.2),
        ("zipf", {"write_ratio": 0.7}, 0.7),
        ("hotcold", {}, 0.2),
        ("phases", {}, 0.2),
        ("idle", {}, 0.1),
        ("idle", {"write_ratio": 0}, 0.0),
    ],
)
def test_write_ratio_close_to_declared(name, params, ratio):
    _, writes = started(name, **params).generate(N)
    assert abs(writes.mean() - ratio) < 0.01


def test_zipf_references_follow_the_zipf_law():
    w = started("zipf", footprint_mib=0.5, alpha=1.0)  # 128 pages
    pages, _ = w.generate(N)
    empirical = np.bincount(pages, minlength=w.n_pages) / N
    expected = w.page_probabilities()
    assert 0.5 * np.abs(empirical - expected).sum() < 0.02  # total variation distance
    order = w.warm_order()
    np.testing.assert_allclose(expected[order[:2]] / expected[order[1:3]], [2.0, 1.5])


def test_warm_order_is_hottest_first():
    w = started("db")
    probs = w.page_probabilities()[w.warm_order()]
    assert (np.diff(probs) <= 1e-15).all()


def test_working_set_of_zipf_takes_ninety_percent():
    w = started("zipf")
    probs = np.sort(w.page_probabilities())[::-1]
    k = w.working_set_pages()
    assert probs[:k].sum() >= 0.9 > probs[: k - 1].sum()


def test_phases_stay_in_their_window_and_really_shift():
    w = started("phases", ws_mib=1, footprint_mib=8, phase_refs=5000)  # 256 in 2048 pages
    pages, _ = w.generate(4 * 5000)
    touched = [set(pages[k * 5000 : (k + 1) * 5000].tolist()) for k in range(4)]
    for k, seen in enumerate(touched):
        window = {(w.phase_start(k) + i) % w.n_pages for i in range(w.ws_pages)}
        assert seen <= window
        assert len(seen) > 0.9 * w.ws_pages  # uniform inside: nearly every page touched
    for k in range(3):
        assert touched[k] != touched[k + 1]
    assert len(set().union(*touched)) > 1.5 * w.ws_pages


def test_phases_warm_order_starts_with_the_current_window():
    w = started("phases", phase_refs=1000)
    w.generate(2500)  # now inside phase 2
    head = w.warm_order()[: w.ws_pages]
    assert head[0] == w.phase_start(2)
    pages, _ = w.generate(400)
    assert set(pages.tolist()) <= set(head.tolist())


def test_phases_zipf_inside_concentrates_on_the_window_start():
    w = started("phases", inner="zipf", alpha=1.2, phase_refs=10**9)
    pages, _ = w.generate(50_000)
    assert (pages == w.phase_start(0)).mean() > 0.1


def test_scan_is_sequential_and_wraps():
    w = started("scan", footprint_mib=0.25)  # 64 pages
    pages, _ = w.generate(200)
    assert ((np.diff(pages) == 1) | (np.diff(pages) == -63)).all()
    assert np.bincount(pages[:128], minlength=64).tolist() == [2] * 64
    assert w.warm_order()[0] == pages[-1]  # most recently scanned first


def test_idle_is_uniform_over_a_small_footprint():
    w = started("idle")
    pages, _ = w.generate(N)
    counts = np.bincount(pages, minlength=w.n_pages)
    assert counts.min() > 0.8 * N / w.n_pages and counts.max() < 1.2 * N / w.n_pages


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60).filter(lambda x: sum(x) > 0))
def test_alias_table_encodes_the_distribution_exactly(weights):
    probs = np.array(weights) / sum(weights)
    accept, alias = alias_table(probs)
    m = len(probs)
    implied = accept.copy()
    np.add.at(implied, alias, 1.0 - accept)
    np.testing.assert_allclose(implied / m, probs, atol=1e-12)
    # the packed table keeps it to 32-bit fixed point
    table = pack_alias(accept, alias)
    keep = (table >> np.uint64(32)).astype(np.float64) / 2**32
    target = (table & np.uint64(0xFFFFFFFF)).astype(np.int64)
    implied = keep.copy()
    np.add.at(implied, target, 1.0 - keep)
    np.testing.assert_allclose(implied / m, probs, atol=1e-9)


def test_alias_sample_on_a_uniform_grid_reproduces_the_distribution():
    # u on an even grid: each bin sees R evenly spaced fractions, so the counts are exact
    # up to 1/R per bin, with no sampling noise
    probs = np.array([0.5, 0.0, 0.125, 0.25, 0.125])
    table = pack_alias(*alias_table(probs))
    r = 4000
    u = (np.arange(probs.size * r) + 0.5) / (probs.size * r)
    out = np.empty(u.size, np.int32)
    alias_sample(u, table, out)
    np.testing.assert_allclose(np.bincount(out, minlength=5) / u.size, probs, atol=1 / r)


# ---- parameter validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("zipf", {"alfa": 1.0}, r"vms\[0\]\.workload_params\.alfa: unknown .*did you mean 'alpha'"),
        ("zipf", {"alpha": "high"}, r"vms\[0\]\.workload_params\.alpha: must be a number"),
        ("zipf", {"alpha": -1}, r"workload_params\.alpha: must be >= 0"),
        ("zipf", {"write_ratio": 1.5}, r"workload_params\.write_ratio: must be <= 1"),
        ("zipf", {"footprint_mib": 0}, r"workload_params\.footprint_mib: must be > 0"),
        ("zipf", {"file_fraction": True}, r"workload_params\.file_fraction: must be a number"),
        ("hotcold", {"hot_prob": -0.1}, r"workload_params\.hot_prob: must be >= 0"),
        ("phases", {"phase_refs": 0}, r"workload_params\.phase_refs: must be >= 1"),
        ("phases", {"phase_refs": 1.5}, r"workload_params\.phase_refs: must be an integer"),
        ("phases", {"inner": "gauss"}, r"workload_params\.inner: must be one of uniform, zipf"),
        ("idle", {"activity": 0}, r"workload_params\.activity: must be > 0"),
        ("scan", {"write_ratio": 0.1}, r"workload_params\.write_ratio: unknown parameter"),
        ("db", {"cache_share": float("nan")}, r"workload_params\.cache_share: must be finite"),
        ("nosuch", {}, r"vms\[0\]\.workload_params: unknown workload 'nosuch'"),
    ],
)
def test_bad_params_are_rejected_naming_the_path(name, params, message):
    with pytest.raises(ConfigError, match=message):
        check_workload_params(name, params, "vms[0].workload_params")
    with pytest.raises(ConfigError, match=message.replace(r"vms\[0\]\.", "")):
        make_workload(name, params, MEM_PAGES, 4)


def test_good_params_pass_validation():
    check_workload_params("phases", {"ws_mib": 2, "phase_refs": 1000.0, "inner": "zipf"}, "p")
    check_workload_params("db", {"cold_mib": 0, "cache_alpha": 1}, "p")
    check_workload_params("zipf", {"footprint_mib": None}, "p")


def test_sizes_checked_against_the_vm_when_built():
    with pytest.raises(ConfigError, match=r"wp\.ws_mib: the working set .* must fit"):
        make_workload("phases", {"ws_mib": 64}, MEM_PAGES, 4, path="wp")
    with pytest.raises(ConfigError, match=r"wp\.footprint_mib: 0\.001 MiB is less than one"):
        make_workload("zipf", {"footprint_mib": 0.001}, MEM_PAGES, 4, path="wp")
    with pytest.raises(ConfigError, match=r"wp\.cache_share: .* sum to 0"):
        make_workload("db", {"cache_share": 0, "cold_share": 0, "heap_share": 0}, 100, 4, "wp")

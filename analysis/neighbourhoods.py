"""The scenarios around each figure's own: what the robustness check samples.

A claim that holds only at the one scenario a figure was drawn at says little about the
model. Each figure's neighbourhood perturbs that scenario - the device, the workload and
its parameters, the guests' count and size, the overcommit within the figure's range -
drawing ``samples`` points with the sweep spec's ``[random]`` distributions
(``uniform``, ``loguniform``, ``randint``, ``choice``). At each point the figure's quick
grid runs (the compared variants: policies, balloon sizes, cache sizes) with
``replicates`` replicates; a key the neighbourhood draws replaces that key's values in
the grid, and ``drop`` removes keys of the figure's spec. The harness builds and runs
these sweeps (``harness.reproduce``), stored as ``<figure>-neighbourhood``;
``analysis.robustness`` evaluates the claim at every point.

Plain data only: the harness reads this table, analysis never runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NEIGHBOURHOOD_SUFFIX = "-neighbourhood"
SAMPLES = 20  # points per neighbourhood (the issue asks for at least 20)

_DISKS = {"choice": ["nvme", "sata_ssd", "network"]}  # hdd: seconds per run become minutes


@dataclass(frozen=True)
class Neighbourhood:
    """Distributions drawn around a figure's scenario (dotted key -> distribution), base
    overrides that hold at every point, and how many points and replicates."""

    random: Mapping[str, Mapping[str, list[Any]]]
    base: Mapping[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()  # keys the figure's spec sets that the neighbourhood removes
    samples: int = SAMPLES
    replicates: int = 1

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys that identify a point (every key drawn)."""
        return tuple(self.random)


NEIGHBOURHOODS: dict[str, Neighbourhood] = {
    # Clean page cache reclaimed by the balloon vs host swapping vs host discard.
    "fig01_io_amplification": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.count": {"randint": [2, 6]},
            "vms.workload_params.footprint_mib": {"uniform": [180, 240]},
            "vms.workload_params.alpha": {"uniform": [0.7, 1.2]},
            "host.overcommit": {"uniform": [1.25, 2.0]},
        }
    ),
    # ESC vs CLOCK write-backs and OPT (trace replay): the Zipf workload's shape.
    "fig02_esc": Neighbourhood(
        {
            "vms.workload_params.footprint_mib": {"uniform": [150, 250]},
            "vms.workload_params.alpha": {"uniform": [0.6, 1.1]},
            "vms.workload_params.write_ratio": {"uniform": [0.1, 0.5]},
        },
        base={"vms.workload": "zipf"},
        drop=("vms.workload_params",),
    ),
    # A guest's own policy under a static balloon: db's mix of cache, heap and cold memory.
    "fig03_ws_vs_file_first": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.workload_params.cache_share": {"uniform": [0.6, 0.8]},
            "vms.workload_params.cache_alpha": {"uniform": [0.6, 1.0]},
            "vms.workload_params.heap_write_ratio": {"uniform": [0.3, 0.7]},
        }
    ),
    # The push-pull knee: the working set's size and how hot it is.
    "fig04_push_pull": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.workload_params.hot_mib": {"uniform": [56, 72]},
            "vms.workload_params.hot_prob": {"uniform": [0.99, 0.999]},
        }
    ),
    # The swap storm under aggressive ballooning.
    "fig05_swap_storm": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.count": {"randint": [3, 6]},
            "vms.workload_params.footprint_mib": {"uniform": [170, 230]},
            "host.overcommit": {"uniform": [1.3, 1.7]},
        }
    ),
    # Nested faults and pinning: the guests' thrashing and the host's size.
    "fig06_nested_swapping": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.workload_params.footprint_mib": {"uniform": [135, 170]},
            "vms.workload_params.alpha": {"uniform": [0.4, 0.8]},
        }
    ),
    # The lock protocols: other instance shapes (the concurrency grid stays). The shapes
    # are few, so points also differ in their number of random schedules.
    "fig07_deadlock": Neighbourhood(
        {
            "locks.guests": {"randint": [1, 2]},
            "locks.host_threads": {"randint": [1, 3]},
            "locks.oom_tasks": {"randint": [1, 2]},
            "locks.trials": {"randint": [400, 600]},
        }
    ),
    # Economics: the device, the workload's skew and the guests' size, 2-16 GiB (the
    # hosts scale with them; the overcommit grid stays: the claim is about the shape of
    # profit over it).
    "fig08_economics": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.mem_mib": {"choice": [2048, 4096, 8192, 16384]},
            "vms.workload_params.alpha": {"uniform": [0.7, 1.2]},
        }
    ),
    # A ballooned VM vs one configured with the same memory.
    "fig09_balloon_overhead": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.workload_params.footprint_mib": {"uniform": [130, 190]},
            "vms.workload_params.alpha": {"uniform": [0.7, 1.2]},
        }
    ),
    # The idle memory tax: the active guest's footprint (always over an equal split of the
    # host, as in the figure) and the host's size.
    "fig10_idle_tax": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.1.workload_params.footprint_mib": {"uniform": [200, 250]},
            "host.mem_mib": {"randint": [360, 400]},
        }
    ),
    # Che's approximation against LRU replay: other footprints and exponents.
    "fig11_che_validation": Neighbourhood(
        {
            "vms.workload_params.footprint_mib": {"uniform": [150, 250]},
            "vms.workload_params.alpha": {"uniform": [0.6, 1.1]},
        }
    ),
    # The shoot-out: device, workload, guest count and overcommit (every controller at
    # each point; one workload per point keeps it to 160 runs).
    "controllers": Neighbourhood(
        {
            "disk.preset": _DISKS,
            "vms.workload": {"choice": ["db", "zipf", "phases"]},
            "vms.count": {"randint": [3, 6]},
            "host.overcommit": {"uniform": [1.2, 1.6]},
        }
    ),
}


def neighbourhood_sweep(figure: str) -> str:
    """The sweep a figure's neighbourhood is stored under."""
    return figure + NEIGHBOURHOOD_SUFFIX

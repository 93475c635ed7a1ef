"""The published results the figures reproduce, and how far our numbers are from them.

Each figure's entry names its source, the result in words and, where the source gives
one, the published number as a range (``low == high`` for one value) with the key of the
claim's numbers that holds ours (``analysis.claims``). ``comparison(claim)`` says by how
much ours differs. A figure whose source gives no number says so rather than inventing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysis.claims import Claim


@dataclass(frozen=True)
class Published:
    """A published result: its source, the result in words, and its number if it has one."""

    source: str
    result: str
    low: float | None = None
    high: float | None = None
    unit: str = ""
    ours: str | None = None  # the key of Claim.numbers that is comparable
    up_to: bool = False  # the source gives a maximum ("up to 10x"), not a typical value

    @property
    def has_number(self) -> bool:
        return self.low is not None and self.ours is not None


PUBLISHED: dict[str, Published] = {
    "fig01_io_amplification": Published(
        "Amit, Tsafrir, Schuster, 'VSwapper', ASPLOS 2014 (abstract)",
        "with the balloon inactive, VSwapper (the host discards pages that mirror unchanged "
        "guest disk blocks) is up to an order of magnitude faster than uncooperative host "
        "swapping",
        10.0,
        10.0,
        "x",
        ours="best throughput ratio, host discard / host swapping",
        up_to=True,
    ),
    "fig02_esc": Published(
        "Belady, IBM Systems Journal 1966; Enhanced Second Chance (Silberschatz et al., "
        "Operating System Concepts, sec. 10.4.5)",
        "OPT faults least of all policies (a theorem); ESC prefers clean unreferenced pages "
        "so that eviction writes less - the sources give no number",
    ),
    "fig03_ws_vs_file_first": Published(
        "Denning, 'The working set model for program behavior', CACM 1968",
        "a policy that keeps each program's working set resident avoids thrashing - no "
        "number for this workload",
    ),
    "fig04_push_pull": Published(
        "Waldspurger, OSDI 2002, sec. 3; Denning 1968",
        "the balloon moves reclaim from the host into the guest, whose faults rise steeply "
        "once it cuts into the working set - the sources give no number",
    ),
    "fig05_swap_storm": Published(
        "Amit et al., VSwapper, ASPLOS 2014, sec. 2",
        "uncooperative swapping under fast-changing load degrades into superfluous swap "
        "operations - no number comparable to the peak of host I/O buffers",
    ),
    "fig06_nested_swapping": Published(
        "Goldberg and Hassinger, 'The double paging anomaly', AFIPS 1974; VSwapper 2014",
        "a guest swapping out a page the host already swapped forces the host to read it "
        "back first (double paging) - no number for this scenario",
    ),
    "fig07_deadlock": Published(
        "Linux commit c7cdff0e8647, 'virtio_balloon: fix deadlock on OOM' (v4.15, 2017)",
        "fill_balloon allocating under balloon_lock deadlocks with the OOM notifier; "
        "allocating outside the lock removes it (0 deadlocks)",
        0.0,
        0.0,
        "deadlocking schedules",
        ours="deadlocking schedules with both fixes",
    ),
    "fig08_economics": Published(
        "no published number: the provider's profit depends on its prices and SLA",
        "profit per host-hour has a maximum at some overcommit ratio",
    ),
    "fig09_balloon_overhead": Published(
        "Waldspurger, 'Memory Resource Management in VMware ESX Server', OSDI 2002, fig. 2",
        "a VM ballooned down to m MB runs 1.4% to 4.4% slower than one configured with m MB "
        "(dbench), from guest structures sized at boot",
        1.4,
        4.4,
        "% slower",
        ours="mean slowdown of the ballooned VM (%)",
    ),
    "fig10_idle_tax": Published(
        "Waldspurger, OSDI 2002, sec. 5.2",
        "with the default tax rate 0.75 an idle page costs k = 1/(1 - 0.75) = 4 times an "
        "active one, so memory is reclaimed from the idle VM first",
    ),
    "fig11_che_validation": Published(
        "Che, Tung, Wang, IEEE JSAC 2002; Fricker, Robert, Roberts, ITC 2012",
        "Che's approximation of the LRU hit ratio under the independent reference model is "
        "very accurate - the sources give no error bound that applies to every point",
    ),
    "controllers": Published(
        "Waldspurger, OSDI 2002; oVirt MOM; Amit et al., VSwapper, ASPLOS 2014",
        "cooperative ballooning outperforms blind host swapping; VSwapper finds "
        "uncooperative swapping up to an order of magnitude slower than its fix",
    ),
    "fig13_sampling_validation": Published(
        "Waldspurger et al., 'Efficient MRC Construction with SHARDS', FAST 2015",
        "spatially hashed sampling at R = 0.001-0.01 keeps miss ratios within a mean "
        "absolute error of 0.001-0.006",
        0.001,
        0.006,
        "absolute error of the miss ratio",
        ours="largest |fault ratio error| at the smallest rate",
    ),
}


def _value(claim: Claim, key: str) -> float | None:
    value: Any = claim.numbers.get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def comparison(figure: str, claim: Claim) -> str:
    """One sentence: the published result and, where both have a number, how far ours is."""
    pub = PUBLISHED.get(figure)
    if pub is None:
        return ""
    text = f"{pub.source}: {pub.result}."
    if not pub.has_number:
        return text
    assert pub.low is not None and pub.high is not None and pub.ours is not None
    ours = _value(claim, pub.ours)
    if ours is None:
        return f"{text} Ours ({pub.ours}): not measured."
    published = f"{pub.low:g}" if pub.low == pub.high else f"{pub.low:g}-{pub.high:g}"
    lead = f"{text} Ours: {ours:.3g} {pub.unit} against {'up to ' if pub.up_to else ''}"
    lead += f"{published} {pub.unit}"
    if pub.low <= ours <= pub.high:
        return f"{lead}: within the published range."
    if pub.up_to and ours <= pub.high:
        return f"{lead}: below the published maximum by {pub.high - ours:.3g} {pub.unit}."
    edge = pub.low if ours < pub.low else pub.high
    side = "below" if ours < pub.low else "above"
    gap = abs(ours - edge)
    rel = f" ({100 * gap / abs(edge):.0f}% of it)" if edge else ""
    return f"{lead}: {gap:.3g} {pub.unit} {side} the published value{rel}."

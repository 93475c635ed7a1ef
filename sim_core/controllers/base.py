"""The interface every balloon controller implements, built-in or plug-in.

A controller is constructed once per run with its parameters and what the administrator
configured (``Setup``), then called every decision interval with an ``Observation``
(``sim_core.observation``) - the only thing it ever sees of the simulated host. It
returns the balloon size it wants per guest in KiB (an array), ``None`` to leave the
balloons alone, or a ``Decision`` when it also steers host swapping (``esx``).

The control plane checks every answer: one finite target per guest within
[0, maximum_kib]; anything else fails the run with a ``ControllerError`` naming the
controller and the guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sim_core.observation import Observation


class ControllerError(Exception):
    """A controller answered something the hypervisor cannot carry out, or raised."""


@dataclass(frozen=True)
class NoParams:
    """A controller without parameters."""


@dataclass(frozen=True)
class Setup:
    """What the administrator configured, known to the hypervisor before the first tick."""

    names: tuple[str, ...]
    maximum_kib: np.ndarray  # configured guest memory
    static_balloon_kib: np.ndarray  # vms.balloon_mib (the `static` controller's targets)
    page_kib: int
    tick_s: float


@dataclass(frozen=True)
class Decision:
    """A controller's full answer. ``balloon_kib``: targets per guest (None: unchanged).
    ``host_swap``: False keeps the host from swapping until free memory falls under its
    min watermark (ESX's high and soft states), True or None leaves host reclaim to its
    watermarks. ``block``: guests to stop until the next decision (ESX's low state)."""

    balloon_kib: np.ndarray | None = None
    host_swap: bool | None = None
    block: np.ndarray | None = None


class Controller:
    """A balloon policy. Subclasses set ``name`` and implement ``decide``; ``Params`` is a
    frozen dataclass of ``sim_core.params.param`` fields (``hypervisor.params.<name>``).
    ``interval_s`` is the default decision interval; ``sample_pages`` > 0 asks for
    accessed-bit sampling every ``sample_period_s``; ``scan_period_s`` asks for
    idle-page scans. Instances may override the last three from their parameters. An
    optional static ``check_params(params)`` raises ConfigError on contradictory values."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    interval_s: float = 1.0
    sample_pages: int = 0
    sample_period_s: float = 30.0
    scan_period_s: float | None = None

    def __init__(self, params: Any, setup: Setup) -> None:
        self.params = params
        self.setup = setup

    def decide(self, obs: Observation) -> np.ndarray | Decision | None:
        raise NotImplementedError


def clamp_targets(balloon_kib: np.ndarray, obs: Observation) -> np.ndarray:
    """Balloon targets rounded to whole pages within [0, maximum) - for controllers whose
    arithmetic may overshoot (the hypervisor never balloons a guest to nothing)."""
    page = obs.page_kib
    top = obs.guests.maximum_kib - page
    return (np.clip(np.round(np.asarray(balloon_kib, np.float64) / page) * page, 0, top)).astype(
        np.int64
    )


def check_answer(answer: Any, n_guests: int, maximum_kib: np.ndarray, who: str,
                 names: tuple[str, ...]) -> Decision:  # fmt: skip
    """A controller's answer as a Decision, or ControllerError saying what is wrong."""
    if answer is None:
        return Decision()
    if not isinstance(answer, Decision):
        answer = Decision(balloon_kib=answer)
    if answer.balloon_kib is not None:
        try:
            targets = np.asarray(answer.balloon_kib, dtype=np.float64)
        except (TypeError, ValueError):
            raise ControllerError(
                f"hypervisor.policy {who!r}: balloon targets must be numbers (KiB), got "
                f"{answer.balloon_kib!r}"
            ) from None
        if targets.shape != (n_guests,):
            raise ControllerError(
                f"hypervisor.policy {who!r}: expected {n_guests} balloon targets (one per guest), "
                f"got shape {targets.shape}"
            )
        for g in range(n_guests):
            t = targets[g]
            if not np.isfinite(t) or t < 0 or t > maximum_kib[g]:
                raise ControllerError(
                    f"hypervisor.policy {who!r}: balloon target for guest {names[g]} is {t!r} "
                    f"KiB, outside [0, {int(maximum_kib[g])}]"
                )
        answer = Decision(targets, answer.host_swap, answer.block)
    if answer.block is not None:
        block = np.asarray(answer.block, dtype=np.bool_)
        if block.shape != (n_guests,):
            raise ControllerError(
                f"hypervisor.policy {who!r}: block must have one entry per guest, got shape "
                f"{block.shape}"
            )
        answer = Decision(answer.balloon_kib, answer.host_swap, block)
    return answer

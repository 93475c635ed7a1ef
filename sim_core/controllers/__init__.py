"""The hypervisor's balloon controllers, registered by name in ``CONTROLLERS``.

``hypervisor.policy`` names one of them, a plug-in class as ``"package.module:Class"``, or
an entry point in group ``balloonlab.controllers`` (a package declares
``[project.entry-points."balloonlab.controllers"] mine = "mypkg.ctl:Mine"``). A plug-in
implements ``sim_core.controllers.base.Controller``'s interface - ``__init__(params,
setup)`` and ``decide(observation)`` - and may declare a ``Params`` dataclass of
``sim_core.params.param`` fields; its parameters come from ``hypervisor.params.<name>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from sim_core.config import ConfigError
from sim_core.controllers.base import (
    Controller,
    ControllerError,
    Decision,
    NoParams,
    Setup,
    check_answer,
)
from sim_core.controllers.basic import Aggressive, NoBalloon, Static
from sim_core.controllers.esx import Esx
from sim_core.controllers.farmem import FarMemory
from sim_core.controllers.mom import Mom
from sim_core.controllers.pff import PageFaultFrequency
from sim_core.controllers.tmo import Tmo
from sim_core.controllers.ws import WorkingSet
from sim_core.params import parse_params

ENTRY_POINT_GROUP = "balloonlab.controllers"

CONTROLLERS: dict[str, type[Controller]] = {
    c.name: c for c in (NoBalloon, Static, Aggressive, Mom, WorkingSet, Esx, PageFaultFrequency,
                        Tmo, FarMemory)
}  # fmt: skip

__all__ = [
    "CONTROLLERS",
    "Controller",
    "ControllerError",
    "Decision",
    "Setup",
    "check_answer",
    "check_controller",
    "controller_class",
    "make_controller",
]

PATH = "hypervisor.policy"


def controller_class(name: str) -> type:
    """The class ``hypervisor.policy`` names; ConfigError in one line if there is none."""
    if name in CONTROLLERS:
        return CONTROLLERS[name]
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # an ImportError, or whatever the module raised
            raise ConfigError(
                f"{PATH}: plug-in module {module_name!r} does not import "
                f"({type(exc).__name__}: {exc})"
            ) from None
        cls = getattr(module, attr, None)
        if cls is None:
            raise ConfigError(f"{PATH}: module {module_name!r} has no {attr!r}")
        return _checked_interface(cls, name)
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if found:
        try:
            cls = found[0].load()
        except Exception as exc:
            raise ConfigError(
                f"{PATH}: entry point {name!r} ({found[0].value}) does not load "
                f"({type(exc).__name__}: {exc})"
            ) from None
        return _checked_interface(cls, name)
    known = ", ".join(sorted(CONTROLLERS))
    close = difflib.get_close_matches(name, list(CONTROLLERS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"{PATH}: unknown controller {name!r} ({hint}known: {known}; or 'package.module:Class', "
        f"or an entry point in group {ENTRY_POINT_GROUP})"
    )


def _checked_interface(cls: Any, name: str) -> type:
    if not isinstance(cls, type):
        raise ConfigError(f"{PATH}: {name!r} is not a class")
    if not callable(getattr(cls, "decide", None)):
        raise ConfigError(
            f"{PATH}: {name!r} lacks the controller interface (a decide(observation) method; "
            "see sim_core.controllers.base.Controller)"
        )
    return cls


def _params_of(cls: type, raw: Mapping[str, Any]) -> Any:
    params_cls = getattr(cls, "Params", NoParams)
    if dataclasses.is_dataclass(params_cls):
        owner = f"controller {getattr(cls, 'name', '') or cls.__name__!r}"
        params = parse_params(params_cls, raw, "hypervisor.params", owner)
        check = getattr(cls, "check_params", None)
        if check is not None:  # relations between parameters, refused before anything runs
            check(params)
        return params
    return dict(raw)  # a plug-in without a Params table takes its table as given


def check_controller(name: str, raw_params: Mapping[str, Any]) -> None:
    """Validate ``hypervisor.policy`` and ``hypervisor.params`` before anything runs."""
    _params_of(controller_class(name), raw_params)


def make_controller(name: str, raw_params: Mapping[str, Any], setup: Setup) -> Any:
    """Build the controller; a plug-in whose constructor raises fails with its error."""
    cls = controller_class(name)
    params = _params_of(cls, raw_params)
    try:
        return cls(params, setup)
    except Exception as exc:
        raise ControllerError(
            f"{PATH} {name!r}: constructor raised {type(exc).__name__}: {exc}"
        ) from exc


def display_name(controller: Any, policy: str) -> str:
    return getattr(controller, "name", "") or policy

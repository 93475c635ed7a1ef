"""The layers import downwards only: harness -> analysis -> store, and sim_core imports
none of them (one known exception). Every import statement counts, at any depth (function
bodies, TYPE_CHECKING and try blocks), found by parsing the source; each helper is first
shown to catch a synthetic violation. The CLI prints the store's and the analysis's errors
as one line, like UserError."""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from analysis import db
from analysis.errors import AnalysisError, PlotError, QueryError
from harness.errors import UserError
from store.errors import StoreError
from store.sweep_lock import SweepLocked

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Import:
    """One import statement: the module it names and the names it takes from it."""

    module: str
    names: tuple[str, ...] = ()


def _base(module: str, is_package: bool, level: int) -> str:
    parts = module.split(".") if is_package else module.split(".")[:-1]
    return ".".join(parts[: len(parts) - (level - 1)] if level > 1 else parts)


def find_imports(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import in ``source`` (the code of ``module``), at any depth; relative imports
    resolved; ``importlib.import_module("x")`` and ``__import__("x")`` with a literal too."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                base = _base(module, is_package, node.level)
                name = f"{base}.{name}".strip(".") if name else base
            found.append(Import(name, tuple(a.name for a in node.names)))
        elif isinstance(node, ast.Call) and node.args:
            func, arg = node.func, node.args[0]
            dynamic = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
                isinstance(func, ast.Name) and func.id == "__import__"
            )
            if dynamic and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append(Import(arg.value))
    return found


def _in(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def forbidden_imports(
    sources: Mapping[str, str], forbidden: Iterable[str], packages: Iterable[str] = ()
) -> set[tuple[str, str]]:
    """(module, what it imports) for every import of ``sources`` (module -> code; those in
    ``packages`` are ``__init__`` files) that names a ``forbidden`` package or a module
    inside one."""
    forbidden, packages = tuple(forbidden), set(packages)
    return {
        (module, imp.module)
        for module, source in sources.items()
        for imp in find_imports(source, module, is_package=module in packages)
        if _in(imp.module, forbidden)
    }


def import_graph(sources: Mapping[str, str], packages: Iterable[str] = ()) -> dict[str, set[str]]:
    """module -> the modules among ``sources`` it imports (``from p import m`` names p.m
    when that is one of them)."""
    packages = set(packages)
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        targets: set[str] = set()
        for imp in find_imports(source, module, is_package=module in packages):
            targets |= {imp.module, *(f"{imp.module}.{n}" for n in imp.names)}
        graph[module] = (targets & set(sources)) - {module}
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One import cycle (``[a, b, a]``), or None when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def sources_of(package: str) -> tuple[dict[str, str], set[str]]:
    """Module name -> source of every .py file under ``ROOT/package``, and which of those
    modules are packages (``__init__.py``)."""
    sources: dict[str, str] = {}
    packages: set[str] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    assert len(sources) > 1, f"too few Python files under {package}/"
    return sources, packages


# ---- the helpers catch what they must ------------------------------------------------------

SYNTHETIC = """
import os, harness.cli
from typing import TYPE_CHECKING
from . import figures
from .db import connect
if TYPE_CHECKING:
    from harness.spec import SweepSpec
try:
    import harness.limits as limits
except ImportError:
    limits = None

def run():
    from harness.errors import UserError
    importlib.import_module("harness.executors")
    return UserError
"""


def test_find_imports_sees_every_kind_of_import():
    names = {i.module for i in find_imports(SYNTHETIC, "analysis.paper")}
    assert names == {
        "os", "harness.cli", "typing", "analysis", "analysis.db",
        "harness.spec", "harness.limits", "harness.errors", "harness.executors",
    }  # fmt: skip
    # In a package's __init__, "." is the package itself.
    [imp] = find_imports("from .parquet import x", "store", is_package=True)
    assert imp.module == "store.parquet"


def test_forbidden_imports_catches_a_function_level_import():
    sources = {
        "analysis.bad": "import duckdb\n\ndef f():\n    from harness.errors import UserError\n",
        "analysis.good": "from analysis.errors import AnalysisError\nfrom store import parquet\n",
    }
    assert forbidden_imports(sources, ["harness"]) == {("analysis.bad", "harness.errors")}
    assert forbidden_imports(sources, ["harnes"]) == set()  # a package, not a prefix
    assert forbidden_imports(sources, ["store", "analysis"]) == {
        ("analysis.good", "analysis.errors"), ("analysis.good", "store")
    }  # fmt: skip


def test_find_cycle_finds_a_cycle_through_a_deferred_import():
    sources = {
        "analysis.report": "from analysis.paper import Reproduction\n",
        "analysis.paper": "def reproduce():\n    from analysis import report\n",
        "analysis.claims": "import math\n",
    }
    graph = import_graph(sources)
    assert graph == {
        "analysis.report": {"analysis.paper"},
        "analysis.paper": {"analysis.report"},
        "analysis.claims": set(),
    }
    assert find_cycle(graph) == ["analysis.paper", "analysis.report", "analysis.paper"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# ---- the rules on the real code ------------------------------------------------------------


def upper_imports(package: str, upper: list[str]) -> set[tuple[str, str]]:
    """What the modules of ``package`` import from the ``upper`` packages."""
    sources, packages = sources_of(package)
    return forbidden_imports(sources, upper, packages)


def test_analysis_never_imports_the_harness():
    assert upper_imports("analysis", ["harness"]) == set()


def test_store_imports_neither_the_harness_nor_the_analysis():
    found = upper_imports("store", ["harness", "analysis"])
    assert found == set()


# sim_core.workloads reads trace files (the `trace` and `damon` workloads) through the
# harness's readers and their UserError, imported inside the workload classes. A known
# exception, named here exactly: any other import of an upper layer fails, and so does
# this list once workloads no longer needs it (then empty it).
SIM_CORE_KNOWN = {
    ("sim_core.workloads", "harness.errors"),
    ("sim_core.workloads", "harness.traces"),
}


def test_sim_core_imports_no_upper_layer_but_the_known_trace_readers():
    found = upper_imports("sim_core", ["harness", "analysis", "store"])
    assert found == SIM_CORE_KNOWN


def test_no_import_cycle_among_analysis_modules():
    graph = import_graph(*sources_of("analysis"))
    assert "analysis.paper" in graph["analysis.report"]  # the graph sees the real imports
    assert {"analysis.db", "analysis.claims"} <= graph["analysis.paper"]
    assert find_cycle(graph) is None


def test_every_package_is_installed():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert on_disk - {"tests"} <= set(packages), on_disk


# ---- the CLI prints the lower layers' errors as one line -----------------------------------


def test_store_and_analysis_errors_are_not_user_errors():
    for error in (StoreError, SweepLocked, AnalysisError, QueryError, PlotError):
        assert issubclass(error, Exception) and not issubclass(error, UserError)


@pytest.mark.parametrize(
    "error",
    [
        StoreError("results: cannot read the store: bad footer"),
        SweepLocked("sweep 'x' is being run by pid 1 on h"),
        AnalysisError("--only 'x': no such figure"),
        QueryError("Parser Error: syntax error at or near 'SELEC'"),
        PlotError("--y nope: no such column in the runs"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_cli_prints_each_lower_layer_error_as_one_line(
    error, balloonlab_cli, monkeypatch, tmp_path
):
    import analysis.paper

    def fails(only=None):
        raise error

    monkeypatch.setattr(analysis.paper, "select", fails)
    code, out, err = balloonlab_cli("figures", "--results", str(tmp_path), "--out", str(tmp_path))
    assert (code, out, err) == (2, "", f"error: {error}\n")


def test_a_missing_store_and_a_bad_query_are_one_line_errors(balloonlab_cli, tmp_path):
    missing = tmp_path / "nothing"
    with pytest.raises(StoreError, match="no such results directory"):
        db.connect(missing)
    code, out, err = balloonlab_cli("query", "SELECT 1", "--results", str(missing))
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert "no such results directory" in err
    with pytest.raises(QueryError):
        db.check_read_only("SELEC 1")
    code, out, err = balloonlab_cli("query", "SELEC 1", "--results", str(missing))
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert "syntax error" in err.lower()

"""The import contract: which part of smpc_ehr may import which (docs/architecture.md,
"Layers"), checked over every import of the package (module and function level, read
with ast, nothing is imported), and no cycle between the top-level subpackages."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

from smpc_ehr.analyses.registry import FAMILIES
from tests.federations import ROOT

PACKAGE = ROOT / "smpc_ehr"
ENTRY_POINT = re.compile(r"smpc_ehr(\.\w+)+:\w+")
"""A module loaded by name, as `cli/commands.py` loads the roles' servers."""

EVERYONE = frozenset({"errors", "compute_threads", ""})
"""What any part may import: the errors every layer raises, the process's compute
threads (numpy's and torch's thread pools), and the package root (`smpc_ehr.__version__`)."""

LAYERS: dict[str, frozenset[str]] = {
    # The one table of allowed imports: docs/architecture.md, "Layers", with what its
    # diagram leaves out marked "(not drawn)". A part may import what it lists and,
    # transitively, what whole subpackages it lists may import; an entry with a module
    # path ("transport.arrays") allows that module only. Keep the two in step.
    "cli": frozenset(
        {"client", "local", "party", "coordinator", "dealer"}
        # (not drawn) what the command line checks and writes itself
        | {"backends", "config", "data", "pki", "policy", "study", "audit"}
    ),
    "__main__": frozenset({"cli"}),  # `python -m smpc_ehr`
    "party": frozenset({"analyses", "policy", "data", "config", "audit"}),  # config: (not drawn)
    "audit": frozenset({"pki", "privacy"}),
    "coordinator": frozenset({"analyses", "study", "policy", "config"}),  # config: (not drawn)
    "dealer": frozenset({"dealer_protocol", "transport", "wire", "config"}),  # config: (not drawn)
    "client": frozenset({"config", "policy", "study", "transport", "wire"}),  # (not drawn)
    # (not drawn) data.sources: what a party folder may hold instead of files
    "local": frozenset({"config", "pki", "policy", "transport", "wire", "data.sources"}),
    "analyses": frozenset({"backends", "securemath", "data"}),
    "backends": frozenset({"transport", "securemath", "dealer_protocol", "backend_names"}),
    "dealer_protocol": frozenset({"transport.arrays", "wire"}),
    "transport": frozenset({"wire", "pki"}),  # pki (not drawn): the TLS identity's checks
    "config": frozenset({"policy", "study"}),
    "pki": frozenset({"config"}),
    "policy": frozenset({"study", "securemath.constants", "privacy"}),  # (not drawn)
    "study": frozenset({"backend_names"}),
    "testing": frozenset(  # test support: anything below cli, used by no role
        {"analyses", "backends", "config", "data", "policy", "securemath", "study"}
        | {"transport", "wire", "party", "coordinator", "audit"}
    ),
    "securemath": frozenset(),
    "privacy": frozenset(),  # (not drawn) the accountant and the noise; used by policy
    "backend_names": frozenset(),
    "data": frozenset(),
    "wire": frozenset(),
    "errors": frozenset(),
    "compute_threads": frozenset(),
}

KNOWN: dict[tuple[str, str], str] = {
    # Imports that break the table, to be removed (the test fails once one is gone,
    # so that this list only shrinks).
}


def _imports(path: Path) -> Iterator[str]:
    """The smpc_ehr modules a file imports (relative to smpc_ehr, "" for the root),
    entry points named in a string ("smpc_ehr.party.server:run") included."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value.partition(":")[0]] if ENTRY_POINT.fullmatch(node.value) else []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            # `from smpc_ehr.x import y` may name a module y: count it as x.y
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            if name == "smpc_ehr" or name.startswith("smpc_ehr."):
                yield name.removeprefix("smpc_ehr").removeprefix(".")


def _part(path: Path) -> str:
    """The top-level part a file belongs to; "" for the package's own __init__.py."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "" if parts == ("__init__",) else parts[0]


@functools.cache
def _edges() -> dict[tuple[str, str], set[str]]:
    """(importing part, imported module) -> the files, for imports across parts."""
    edges: dict[tuple[str, str], set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name.startswith("test_"):
            continue  # the tests beside an analysis package drive whole federations
        src = _part(path)
        for target in map(_real, _imports(path)):
            if target.partition(".")[0] != src:
                edges.setdefault((src, target), set()).add(str(path.relative_to(ROOT)))
    return edges


def _real(target: str) -> str:
    """The imported module itself, without a `from x import name` name that is no module."""
    while target and not (
        (PACKAGE / target.replace(".", "/")).with_suffix(".py").exists()
        or (PACKAGE / target.replace(".", "/")).is_dir()
    ):
        target = target.rpartition(".")[0]
    return target


def _allowed(src: str) -> set[str]:
    """What `src` may import: its entries, and transitively those of whole subpackages."""
    allowed, todo = set(EVERYONE), [src]
    while todo:
        for entry in LAYERS.get(todo.pop(), frozenset()):
            if entry not in allowed:
                allowed.add(entry)
                if "." not in entry:
                    todo.append(entry)
    return allowed


def _covered(target: str, entries: set[str]) -> bool:
    return any(target == e or target.startswith(f"{e}.") or e == "" == target for e in entries)


def test_every_import_follows_the_layers() -> None:
    wrong = []
    for (src, target), files in sorted(_edges().items()):
        if (src, target) in KNOWN or _covered(target, _allowed(src)):
            continue
        wrong.append(f"{src} -> {target} ({', '.join(sorted(files))})")
    assert not wrong, "imports outside docs/architecture.md's layers:\n" + "\n".join(wrong)


def test_known_exceptions_still_exist() -> None:
    fixed = sorted(set(KNOWN) - set(_edges()))
    assert not fixed, f"no longer imported, remove from KNOWN: {fixed}"


def test_no_role_imports_the_test_support() -> None:
    users = {src for src, target in _edges() if target.partition(".")[0] == "testing"}
    assert not users, users


def test_no_cycle_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for src, target in _edges():
        if (src, target) not in KNOWN and target.partition(".")[0] not in (src, ""):
            graph.setdefault(src, set()).add(target.partition(".")[0])
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_the_table_names_every_subpackage() -> None:
    parts = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("__")}
    assert parts <= set(LAYERS), parts - set(LAYERS)


def test_no_analysis_package_imports_another() -> None:
    """An analysis package is self-contained: it imports analyses.base, analyses.common
    and the layers below, never another analysis package (shared code goes to common/;
    the tests beside a package may borrow another's checks)."""
    wrong = []
    for family in FAMILIES:
        for package in sorted(p for p in (PACKAGE / "analyses" / family).iterdir() if p.is_dir()):
            own = ["analyses", family, package.name]
            for path in sorted(package.rglob("*.py")):
                if path.name.startswith("test_"):
                    continue
                for target in _imports(path):
                    parts = target.split(".")
                    family_part = parts[0] == "analyses" and parts[1:2] in ([f] for f in FAMILIES)
                    if family_part and parts[:3] != own:
                        wrong.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not wrong, "analysis packages importing another one:\n" + "\n".join(wrong)

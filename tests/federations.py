"""Shared fixtures, a pytest plugin (see the root conftest.py): synthetic data and real
local federations (separate processes, mTLS).

Federations are started with the same code as `smpc-ehr local up` on free ports of
127.0.0.1, with a PKI made for the test session; they are stopped at teardown.

Two tiers: every test that starts processes (a federation, the CLI, a script) is marked
`slow` at collection (`pytest_collection_modifyitems`); `-m "not slow"` is the fast
tier (`scripts/test.sh --fast`), and a test outside the slow tier that starts a
process anyway fails, so the tiers cannot drift.
"""

from __future__ import annotations

import subprocess
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.data.synth import generate_federation
from smpc_ehr.local.federation import LocalFederation, down, up

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
TESTS = ROOT / "tests"
COUNT_TEMPLATE = PROTOCOLS / "rare_disease_count.toml"


def make_data(out: Path, parties: int, patients: int, seed: int) -> Path:
    """Synthetic data, one folder per party named hospital-1..n."""
    ids = [f"hospital-{i + 1}" for i in range(parties)]
    generate_federation(ids, patients, seed, out)
    return out


def start_federation(data: Path, state: Path, **kwargs: object) -> LocalFederation:
    return up(data, state, protocols=PROTOCOLS, timeout=90.0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def data3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data3"), 3, 4000, seed=3)


@pytest.fixture(scope="session")
def fed3(data3: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("fed3")
    federation = start_federation(data3, state)
    yield federation
    down(state)


@pytest.fixture(scope="session")
def data5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data5"), 5, 2500, seed=5)


@pytest.fixture(scope="session")
def fed5(data5: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("fed5")
    federation = start_federation(data5, state)
    yield federation
    down(state)


# ------------------------------------------------------------------ the slow tier

PROCESS_STARTERS = frozenset({"start_federation", "up", "subprocess", "Popen", "getfixturevalue"})
"""Names whose use in a test, a fixture or a test helper they call makes the test
slow: they start processes (`getfixturevalue` fetches federations by computed name)."""


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names a code object and its nested functions use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _is_test_code(filename: str) -> bool:
    """Code of tests/ or of a test module beside an analysis package (smpc_ehr/**/test_*.py)."""
    path = Path(filename)
    return path.is_relative_to(TESTS) or (
        path.is_relative_to(ROOT / "smpc_ehr") and path.name.startswith("test_")
    )


def _starts_processes(func: Callable[..., Any], seen: set[int]) -> bool:
    """Whether `func`, or a function of tests/ it names, uses a `PROCESS_STARTERS` name."""
    func = getattr(func, "__func__", func)
    code = getattr(func, "__code__", None)
    if code is None or id(code) in seen or not _is_test_code(code.co_filename):
        return False
    seen.add(id(code))
    names = _names(code)
    if names & PROCESS_STARTERS:
        return True
    scope = getattr(func, "__globals__", {})
    return any(callable(scope.get(name)) and _starts_processes(scope[name], seen) for name in names)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test whose function or fixtures start processes."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        funcs = [item.obj]
        for defs in item._fixtureinfo.name2fixturedefs.values():  # test code's fixtures only
            funcs.extend(d.func for d in defs if d.argname != "_fast_tests_start_no_process")
        seen: set[int] = set()
        if any(_starts_processes(f, seen) for f in funcs):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _fast_tests_start_no_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test outside the slow tier must not start Python or smpc-ehr processes (a party,
    the CLI, a script), so the tiers stay true. Libraries' own short system calls (MPyC's
    import asks `platform` about the machine) are let through."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    original = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        program = str(args if isinstance(args, (str, bytes, Path)) else next(iter(args)))
        if Path(program).name.startswith(("python", "smpc-ehr")):
            raise AssertionError(
                f"{request.node.nodeid} starts {program} but is not marked slow "
                "(tests/federations.py, PROCESS_STARTERS)"
            )
        original(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = guarded  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]

"""Every analysis is one package with one template, and its leakage has one source.

The template's `leakage` text (what a hospital approves by hash) is the source; the
analysis package's docstring, docs/security.md ("The leakage of each template") and
every leakage note a result carries must say the same (compared with whitespace
normalised; a result's note is a passage of the template's text). Results are checked
as they come: every package runs its own tests on the in-process federation
(tests/_inprocess.py), which checks each result's notes; this module checks that every
package has such tests.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.registry import FAMILIES
from smpc_ehr.study.template import load_template
from smpc_ehr.testing.federation import InProcessFederation
from tests._inprocess import INPROCESS_FIXTURES, CheckedFederation, check_leakage_notes, norm
from tests.federations import PROTOCOLS, ROOT

SECURITY = ROOT / "docs" / "security.md"
SECTION = "## The leakage of each template"
SUBSECTION = re.compile(r"^### (\S+) \(analysis (\S+)\)$", re.MULTILINE)
TEMPLATES: dict[str, dict[str, Any]] = {
    path.stem: tomllib.loads(path.read_text(encoding="utf-8"))["protocol"]
    for path in sorted(PROTOCOLS.glob("*.toml"))
}
"""Each template's [protocol] table, by file name."""


def package_of(analysis: Analysis) -> ModuleType:
    """The analysis package (`smpc_ehr.analyses.<family>.<name>`) defining `analysis`."""
    parts = type(analysis).__module__.split(".")
    return importlib.import_module(".".join(parts[:4]))


def package_modules(package: ModuleType) -> Iterator[ModuleType]:
    """The package and its modules, without the tests beside it."""
    yield package
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if not info.name.rpartition(".")[2].startswith("test_"):
            yield importlib.import_module(info.name)


def security_sections() -> dict[str, tuple[str, str]]:
    """docs/security.md's leakage section: template name -> (analysis, its text)."""
    text = SECURITY.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/security.md has no {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    heads = list(SUBSECTION.finditer(section))
    ends = [h.start() for h in heads[1:]] + [len(section)]
    return {h[1]: (h[2], section[h.end() : end]) for h, end in zip(heads, ends, strict=True)}


def test_every_package_sets_analysis() -> None:
    packages = []
    for family in FAMILIES:
        for init in sorted((ROOT / "smpc_ehr" / "analyses" / family).glob("*/__init__.py")):
            tree = ast.parse(init.read_text(encoding="utf-8"))
            assigned = {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)
            }
            assert "ANALYSIS" in assigned, f"{init} sets no ANALYSIS"
            packages.append(f"smpc_ehr.analyses.{family}.{init.parent.name}")
    assert sorted(package_of(a).__name__ for a in ANALYSES.values()) == sorted(packages)


def test_templates_and_analyses_pair_one_to_one() -> None:
    named = [proto["analysis"] for proto in TEMPLATES.values()]
    assert set(named) <= set(ANALYSES), f"not registered: {set(named) - set(ANALYSES)}"
    counts = {name: named.count(name) for name in ANALYSES}
    assert all(n == 1 for n in counts.values()), f"templates per analysis: {counts}"


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_package_docstring_quotes_the_template(template: str) -> None:
    proto = TEMPLATES[template]
    package = package_of(ANALYSES[proto["analysis"]])
    assert norm(proto["leakage"]) in norm(package.__doc__ or ""), (
        f"{package.__name__}'s docstring does not quote protocols/{template}.toml's leakage"
    )


def test_docs_security_quotes_every_template() -> None:
    sections = security_sections()
    assert sorted(sections) == sorted(TEMPLATES), "one subsection per template"
    for template, (analysis, text) in sections.items():
        proto = TEMPLATES[template]
        assert analysis == proto["analysis"], template
        assert norm(proto["leakage"]) in norm(text), (
            f"docs/security.md does not quote protocols/{template}.toml's leakage"
        )


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_leakage_constants_are_passages_of_the_template(template: str) -> None:
    proto = TEMPLATES[template]
    for module in package_modules(package_of(ANALYSES[proto["analysis"]])):
        for name, value in vars(module).items():
            if "LEAKAGE" in name and isinstance(value, str):
                assert norm(value) in norm(proto["leakage"]), f"{module.__name__}.{name}"


def inprocess_tests(folder: Path) -> list[str]:
    """The tests in `folder`'s test_*.py files that take an in-process fixture."""
    return [
        node.name
        for path in sorted(folder.glob("test_*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and {arg.arg for arg in node.args.args} & INPROCESS_FIXTURES
    ]


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_every_package_runs_on_the_in_process_federation(name: str) -> None:
    package = package_of(ANALYSES[name])
    folder = Path(package.__file__ or "").parent
    assert inprocess_tests(folder), (
        f"{package.__name__} has no test taking {' or '.join(sorted(INPROCESS_FIXTURES))} "
        f"(tests/_inprocess.py) in {folder.relative_to(ROOT)}/test_*.py: the fast tier "
        "must run the analysis end to end"
    )


def test_in_process_results_have_their_leakage_notes_checked(
    inprocess: InProcessFederation,
) -> None:
    """Every package's in-process tests run on a federation that checks each result's
    leakage notes against its template (tests/_inprocess.py), so no list of jobs here."""
    assert isinstance(inprocess, CheckedFederation)
    template = load_template(PROTOCOLS / "kmeans.toml")
    passage = " ".join(template.leakage.split()[:6])
    check_leakage_notes({"clusters": [{"leakage": passage.replace(" ", "\n  ")}]}, template)
    with pytest.raises(AssertionError, match="more than was approved"):
        check_leakage_notes({"clusters": [{"leakage": "more than was approved"}]}, template)

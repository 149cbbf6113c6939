"""Every analysis is one package with one template, and its leakage has one source.

The template's `leakage` text (what a hospital approves by hash) is the source; the
analysis package's docstring, docs/security.md ("The leakage of each template") and
every leakage note a result carries must say the same (compared with whitespace
normalised; a result's note is a passage of the template's text). Fast tier: the
results come from the in-process federation, on which every package runs its own tests.
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
from smpc_ehr.testing.federation import InProcessFederation
from tests._inprocess import INPROCESS_FIXTURES
from tests._stats_jobs import JOBS
from tests.federations import PROTOCOLS, ROOT

SECURITY = ROOT / "docs" / "security.md"
SECTION = "## The leakage of each template"
SUBSECTION = re.compile(r"^### (\S+) \(analysis (\S+)\)$", re.MULTILINE)
TEMPLATES: dict[str, dict[str, Any]] = {
    path.stem: tomllib.loads(path.read_text(encoding="utf-8"))["protocol"]
    for path in sorted(PROTOCOLS.glob("*.toml"))
}
"""Each template's [protocol] table, by file name."""

JOBS_RUN: dict[str, list[tuple[dict[str, Any], str]]] = {
    # One small job per template and mode (params, backend), whose result's leakage
    # notes are checked; a new template gets its line here.
    "rare_disease_count": [({"codes": "E11", "by": "sex"}, "mpyc")],
    "backend_selftest": [({"seed": 1, "size": 4}, "mpyc")],
    "summary": [(JOBS["summary_sex"][1], "mpyc")],
    "correlation": [(JOBS["correlation"][1], "mpyc")],
    "histogram": [(JOBS["histogram"][1], "mpyc")],
    "quantiles": [(JOBS["quantiles_bmi"][1], "mpyc")],
    "contingency": [(JOBS["contingency_sex"][1], "mpyc")],
    "ttest": [(JOBS["ttest"][1], "mpyc")],
    "odds_ratio": [(JOBS["odds_ratio"][1], "mpyc")],
    "kmeans": [
        ({"features": "hba1c,bmi", "k": 3, "n_init": 1, "codes": "E11"}, "mpyc"),
        ({"features": "hba1c,bmi", "k": 3, "n_init": 1, "codes": "E11", "mode": "full"}, "crypten"),
    ],
    "logistic_regression": [
        ({"outcome": "readmit_30d", "features": "bmi,hba1c", "codes": "E11"}, "mpyc"),
        (
            {"outcome": "readmit_30d", "features": "bmi,hba1c", "codes": "E11", "mode": "full"},
            "crypten",
        ),
    ],
}


def norm(text: str) -> str:
    return " ".join(text.split())


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


def leakage_notes(value: Any) -> Iterator[str]:
    """Every string under a "leakage" key, at any depth of a result."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "leakage" and isinstance(item, str):
                yield item
            else:
                yield from leakage_notes(item)
    elif isinstance(value, list):
        for item in value:
            yield from leakage_notes(item)


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


def test_every_template_has_jobs_to_run() -> None:
    assert sorted(JOBS_RUN) == sorted(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_result_leakage_notes_are_passages_of_the_template(
    inprocess: InProcessFederation, template: str
) -> None:
    proto = TEMPLATES[template]
    notes = [
        note
        for params, backend in JOBS_RUN[template]
        for note in leakage_notes(
            inprocess.run(PROTOCOLS / f"{template}.toml", params, backend).result
        )
    ]
    for note in notes:
        assert norm(note) in norm(proto["leakage"]), f"{template}: {note!r}"
    constants = [
        name
        for module in package_modules(package_of(ANALYSES[proto["analysis"]]))
        for name in vars(module)
        if "LEAKAGE" in name
    ]
    assert len(notes) >= len(JOBS_RUN[template]) or not constants, (
        f"{template}: its package states leakage in results, but no job here carries it"
    )

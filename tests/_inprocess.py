"""The in-process federation as fixtures, a pytest plugin (see the root conftest.py).

`inprocess` is the fast tier's federation: the 3 hospitals of `data3` with threshold 11,
their servicers and the coordinator in one event loop over in-memory channels, the
secure programs over the plaintext reference ops (smpc_ehr/testing/federation.py). It
starts no process. Every result it returns has had its leakage notes checked against
the template's `leakage` text (what the hospitals approved), so each package's
in-process tests check that too, with no list of jobs to keep. `inprocess_combo` lets
the statistics packages' end-to-end checks, written for a real federation's `Combo`,
read it. Each analysis package has at least one test taking one of
`INPROCESS_FIXTURES` (tests/test_analysis_packages.py checks).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import tests._stats_jobs as stats
from smpc_ehr.study.template import ProtocolTemplate, load_template
from smpc_ehr.testing.federation import InProcessFederation, Outcome

THRESHOLD = stats.THRESHOLD
INPROCESS_FIXTURES = frozenset({"inprocess", "inprocess_combo"})
"""A test taking one of these runs its analysis on the in-process federation."""


def norm(text: str) -> str:
    return " ".join(text.split())


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


def check_leakage_notes(result: dict[str, Any], template: ProtocolTemplate) -> None:
    """A result's leakage notes are passages of its template's `leakage` text (compared
    with whitespace normalised): a result says no more than what was approved."""
    for note in leakage_notes(result):
        assert norm(note) in norm(template.leakage), f"{template.name}: {note!r}"


class CheckedFederation(InProcessFederation):
    """The in-process federation, checking every result's leakage notes."""

    def run(self, template: Path | ProtocolTemplate, *args: Any, **kwargs: Any) -> Outcome:
        """`InProcessFederation.run`, then the check."""
        if not isinstance(template, ProtocolTemplate):
            template = load_template(template)
        outcome = super().run(template, *args, **kwargs)
        check_leakage_notes(outcome.result, template)
        return outcome


@dataclass
class InProcessCombo:
    """What the statistics packages' checks read of a federation (its `Combo`), here in
    process; `backend` "mpyc" because the reference keeps MPyC's precision."""

    fed: InProcessFederation
    data: Path
    parties: int = 3
    backend: str = "mpyc"
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def eps(self) -> float:
        return stats.eps(self.backend, self.parties)

    def run(self, key: str) -> dict[str, Any]:
        if key not in self.cache:
            name, params = stats.JOBS[key]
            self.cache[key] = self.fed.run(stats.template(name), params).result
            assert self.cache[key]["threshold"] == THRESHOLD
        return self.cache[key]


@pytest.fixture(scope="session")
def inprocess(data3: Path) -> InProcessFederation:
    return CheckedFederation.from_folder(data3, THRESHOLD)


@pytest.fixture(scope="session")
def inprocess_combo(inprocess: InProcessFederation, data3: Path) -> InProcessCombo:
    return InProcessCombo(inprocess, data3)

"""How many sequential secure operations a logistic regression makes, per phase, counted
on the in-process federation (party 0's calls on the plaintext reference ops).

A product (`mul`, `matmul`, a `mul_public` by a non-integer, `mul_pow2`) is one round
of messages on MPyC and two hops plus dealer calls on CrypTen, whose products run one
after the other; its output elements are the truncations (on MPyC each needs 32 random
bits). A comparison is tens of rounds. Inputs and reveals are one hop each. The counts
are exact for a given program, so the tests pin them as bounds: a change that adds
rounds to a Newton step fails here (rounds are what a WAN multiplies).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.testing.reference import ReferenceOps, RefSecret

TEMPLATE = Path(__file__).resolve().parents[4] / "protocols" / "logistic_regression.toml"
FEATURES = "bmi,hba1c,sbp,ldl"


class Phases:
    """Party 0's counts, one Counter per phase; a progress note starts the next phase."""

    def __init__(self) -> None:
        self.phases: list[Counter[str]] = [Counter()]

    def add(self, ops: Any, kind: str, elements: int) -> None:
        if getattr(ops, "my_index", None) == 0:
            self.phases[-1][kind] += 1
            self.phases[-1][f"{kind} elements"] += elements

    def next(self, ops: Any) -> None:
        if ops.my_index == 0:
            self.phases.append(Counter())


def _size(value: Any) -> int:
    return int(np.asarray(value.value if isinstance(value, RefSecret) else value).size)


@contextmanager
def counting() -> Iterator[Phases]:
    """Count party 0's secure operations by kind while the block runs."""
    phases = Phases()
    saved: dict[tuple[type, str], Any] = {}

    def wrap(cls: type, name: str, kind: Callable[[Any, tuple[Any, ...]], str | None]) -> None:
        original = getattr(cls, name)
        saved[(cls, name)] = original

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            what = kind(self, args)
            if what is not None:
                owner = self.ops if isinstance(self, RefSecret) else self
                phases.add(owner, what, _size(result))
            return result

        setattr(cls, name, counted)

    def secret_product(self: Any, args: tuple[Any, ...]) -> str | None:
        return "products" if isinstance(args[0], RefSecret) else None

    def public_product(self: Any, args: tuple[Any, ...]) -> str | None:
        constant = np.asarray(args[1], dtype=float)
        return None if np.all(constant == np.round(constant)) else "products"

    wrap(RefSecret, "__mul__", secret_product)
    wrap(RefSecret, "__matmul__", lambda s, a: "products")
    wrap(ReferenceOps, "mul_public", public_product)
    wrap(ReferenceOps, "mul_pow2", lambda s, a: "products")
    for name in ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"):
        wrap(RefSecret, name, lambda s, a: "comparisons")
    # ge_public is `>=` on the reference: counted there.
    wrap(ReferenceOps, "reciprocal", lambda s, a: "approximations")
    wrap(ReferenceOps, "sqrt", lambda s, a: "approximations")
    wrap(ReferenceOps, "input_values", lambda s, a: "inputs")
    wrap(ReferenceOps, "input_ints", lambda s, a: "inputs")
    progress = ReferenceOps.progress
    saved[(ReferenceOps, "progress")] = progress

    def noted(self: Any, *args: Any, **kwargs: Any) -> None:
        progress(self, *args, **kwargs)
        phases.next(self)

    ReferenceOps.progress = noted  # type: ignore[method-assign]
    reveal = ReferenceOps.reveal
    saved[(ReferenceOps, "reveal")] = reveal

    async def revealed(self: Any, a: Any) -> np.ndarray:
        phases.add(self, "reveals", _size(a))
        return await reveal(self, a)

    ReferenceOps.reveal = revealed  # type: ignore[method-assign]
    try:
        yield phases
    finally:
        for (cls, name), original in saved.items():
            setattr(cls, name, original)


def counted_run(fed: InProcessFederation, **params: Any) -> tuple[dict[str, Any], Phases]:
    with counting() as phases:
        result = fed.run(TEMPLATE, {"outcome": "readmit_30d", "features": FEATURES, **params})
    return result.result, phases


def describe(phases: Phases) -> str:
    keys = ("inputs", "reveals", "products", "products elements", "comparisons")
    keys += ("comparisons elements",)
    return "\n".join(
        f"phase {i}: " + ", ".join(f"{k} {phase[k]}" for k in keys)
        for i, phase in enumerate(phases.phases)
    )


def test_a_newton_step_of_mode_iterates_costs_at_most_six_products(
    inprocess: InProcessFederation,
) -> None:
    """Before 2026-12-06 (measured by this counter): 7 products in every later step
    (2 Newton-Schulz steps, then a refinement), 10 for the covariance, 53 up to the first
    step, with 3 comparisons (the third re-checked N >= threshold, which the group-size
    check already implies). Now the step rides on the Newton-Schulz products
    (`linalg.inverse_and_solve`), 1 to 3 of them by the last step's size; and the
    standardisation divides by the public N (`division.fractions_of_public_total`)."""
    result, counted = counted_run(inprocess)
    phases = counted.phases
    setup_and_first, steps, covariance = phases[0], phases[1:-1], phases[-1]
    assert len(steps) == result["iterations"] - 1 >= 3, describe(counted)
    for step in steps:
        assert step["reveals"] == 1 and step["inputs"] == 3, describe(counted)  # 1 per party
        assert step["products"] <= 6 and step["comparisons"] == 0, describe(counted)
    assert steps[-1]["products"] == 2, describe(counted)  # near the optimum: 1 step
    assert sum(step["products"] for step in steps) <= 4.5 * len(steps), describe(counted)
    # N is opened on its own (the parties know it), then the weights n_j / N cost two
    # products by public numbers instead of a secret division (52 products, 4 reveals).
    # Plus the model summary's left-out count (summary.py): a comparison with the
    # threshold beside the group-size check's, and one product (the bit times the count).
    assert setup_and_first["products"] <= 45 and setup_and_first["reveals"] <= 5
    # The group-size check's and the left-out count's comparisons (`>=`, once per call).
    assert setup_and_first["comparisons"] <= 2, describe(counted)
    assert covariance["products"] <= 4 and covariance["reveals"] == 0, describe(counted)


def test_a_newton_step_of_mode_pooled_costs_no_product(inprocess: InProcessFederation) -> None:
    result, counted = counted_run(inprocess, mode="pooled")
    phases = counted.phases
    assert len(phases) == result["iterations"] + 1
    for step in phases[1:-1]:
        assert step["products"] == 0 and step["reveals"] == 1, describe(counted)
    assert phases[-1]["products"] == 0 and phases[-1]["reveals"] == 1  # the last Hessian
    # Up to the first step: the group-size check and the standardisation only (and the
    # summary's left-out count: one product).
    assert phases[0]["products"] <= 22, describe(counted)


def test_a_step_of_mode_bohning_is_one_matrix_vector_product(
    inprocess: InProcessFederation,
) -> None:
    result, counted = counted_run(inprocess, mode="bohning")
    phases, k = counted.phases, len(FEATURES.split(",")) + 1
    assert len(phases) == result["iterations"] + 1
    for step in phases[1:-1]:  # the gradient alone is pooled (k values per party)
        assert step["products"] == 1 and step["products elements"] == k, describe(counted)
        assert step["inputs elements"] == 3 * k and step["reveals"] == 1, describe(counted)
    assert phases[-1]["products"] <= 20  # the covariance: 10 Newton-Schulz steps from B^-1

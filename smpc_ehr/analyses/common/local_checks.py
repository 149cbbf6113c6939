"""Problems with a party's values found in its local step, decided jointly.

Why: a party that stopped alone with "column 'x' has values beyond +-16384" would
tell the analyst something about that hospital's patients (that one of them has such
a value), and its name comes with every party error. So such a problem does not stop
the party: it takes part in one joint step first, where each party inputs a secret
bit "my values are unusable" and only the OR of the bits is opened, to the parties.
If it is set, every party raises the same `JointRefusal`, which names no hospital;
the hospital with the problem logs its own message (its staff can fix the data).

Problems that are not about patients' values (a column a hospital does not have at
all, a template or policy refusal) still stop the party with its name.
"""

from __future__ import annotations

from smpc_ehr.errors import DataError, JointRefusal
from smpc_ehr.securemath.boolean import any_party
from smpc_ehr.securemath.ops import Secret, SecureOps, SecureProgram

JOINT_MESSAGE = (
    "the values of at least one hospital cannot be used for this analysis (a value beyond "
    "the fixed-point range, a 0/1 variable with other values, or more linked patients than "
    "a deduplicated count's dedup_bound); the hospitals' own logs name the column or "
    "bound; nothing is released (values beyond +-16384 are taken by mode 'full' of "
    "logistic regression and k-means)"
)


class UnusableValues(DataError):
    """A party's values cannot be used by the analysis; raised in a local step and
    decided jointly by `guarded` (never reported with the party's name)."""


def guarded(program: SecureProgram | None, problem: UnusableValues | None) -> SecureProgram:
    """`program`, run only if no party found `UnusableValues` in its local step
    (`securemath.boolean.any_party`: one opened bit). A party with a problem passes program
    None (it never runs)."""

    async def checked(ops: SecureOps) -> list[Secret]:
        if await any_party(ops, problem is not None):
            raise JointRefusal(JOINT_MESSAGE)
        assert program is not None  # only a party with a problem has none, and it refused
        return await program(ops)

    return checked

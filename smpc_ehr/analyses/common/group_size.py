"""Group-size rules for values revealed to the parties: a value computed from a group
of patients is revealed only if, for every coalition of hospitals that may collude,
the patients of the *other* hospitals in that group reach the small-cell threshold.

Why "the others": in an iterates mode every hospital sees the revealed value (a mean,
a centroid, a model iterate) and knows its own patients' contribution, so it can
subtract that contribution. What is left must still come from at least the threshold
of patients it does not know. A coalition of c hospitals pools what it knows, so the
rule is, per group g and for every set S of c hospitals:

    N_g - sum over i in S of n_ig  >=  threshold

Only sets of exactly c hospitals need checking: counts are never negative, so a
smaller set leaves at least as many patients. c is `coalition_size(n)`,
max(1, (n - 1) // 2): MPyC's Shamir threshold (any t colluding parties learn nothing
of the inputs), and the same for CrypTen (whose sharing holds against n - 1, but
with n - 1 colluders the rule would demand that every hospital alone reach the
threshold: the docs state the coverage as c).

The comparison happens inside MPC; only the AND over every group and coalition is
opened, to the parties, and a failure is a `JointRefusal` that names no hospital
(every party raises the same one). A hospital with few, even zero, patients in a
group takes part like any other.
"""

from __future__ import annotations

import itertools

import numpy as np

from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.ops import Secret, SecureOps


def coalition_size(n_parties: int) -> int:
    """How many hospitals the group-size rule assumes may pool what they know."""
    return max(1, (n_parties - 1) // 2)


def coalitions(n_parties: int) -> list[tuple[int, ...]]:
    """Every set of `coalition_size(n_parties)` hospitals (by MPC party index)."""
    return list(itertools.combinations(range(n_parties), coalition_size(n_parties)))


def others_remaining(ops: SecureOps, counts: Secret) -> Secret:
    """Per coalition S and group g, N_g - sum_S n_ig (coalitions x g, whole numbers),
    from every party's counts (P x g): what the rule compares with the threshold (a
    caller may put these comparisons in a batch of its own, `require_all`)."""
    total = ops.sum(counts, axis=0)
    groups = coalitions(ops.n_parties)
    known = ops.stack([ops.sum_vectors([counts[i] for i in group]) for group in groups])
    return ops.sub(ops.stack([total] * len(groups)), known)


def others_reach(ops: SecureOps, counts: Secret, threshold: int) -> Secret:
    """Per group, the secret bit [for every coalition S: N_g - sum_S n_ig >= threshold],
    from every party's counts (P x g, whole numbers): one batch of comparisons and
    ceil(log2 #coalitions) rounds of products."""
    return all_of(ops, ops.ge_public(others_remaining(ops, counts), threshold))


async def require_others_reach(ops: SecureOps, counts: Secret, threshold: int, what: str) -> None:
    """Open to the parties only whether every group passes `others_reach`; if one does
    not, raise `JointRefusal` ("`what`: ..."), naming neither the group nor a hospital.
    `counts` is P x g (or P x ... : it is flattened per party)."""
    parties, groups = counts.shape[0], int(np.prod(counts.shape[1:]))
    flat = ops.reshape(counts, (parties, groups))
    await require_all(ops, others_reach(ops, flat, threshold), threshold, what)


async def require_all(ops: SecureOps, bits: Secret, threshold: int, what: str) -> None:
    """Open to the parties only the AND of the rule's secret bits (any shape: per
    group, or per coalition and group); `JointRefusal` ("`what`: ...") if it is 0."""
    flat = ops.reshape(bits, (int(np.prod(bits.shape)), 1))
    if not (await ops.reveal(all_of(ops, flat)))[0] > 0.5:
        raise JointRefusal(
            f"{what}: some group would hold fewer than {threshold} patients of the other "
            "hospitals; nothing is released"
        )

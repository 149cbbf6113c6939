"""Joint Kaplan-Meier survival curves on a public time grid and the log-rank test
between groups.

How it runs: each party selects its cohort (the codes are required: time zero is each
patient's earliest onset of them) and, in plaintext on its own data (local.py), rounds
each patient's follow-up up to the grid 0, 1, ..., horizon in `time_unit` and counts,
per group level g and grid point i, its patients at risk (rounded time >= i) and its
events at i. It secret-shares the vector

    [at_risk (groups x grid), events (groups x grid), left_out, cohort (groups)]

(the shape depends on the parameters only: horizon <= 120 and the group's public
levels; `cohort` counts each group's cohort patients, usable or not). Inside MPC the
vectors are summed; one batch of comparisons gives, per group and point, the bit [joint
at risk >= threshold], for the left-out count its bit, and per group whether its
cohort minus its number at risk at time 0 is 1 to t - 1 (the plain count of the same
cohort and group would then give that small number by subtraction: the group is
barred); a second batch makes the points' bits a prefix per group (`released_prefix`:
a point is released only if every point up to it reaches the threshold and the group
is not barred, whatever a party input);
only those bits, bit * at_risk, bit * events and bit * left_out are opened (finalize
also cuts at the first suppressed point).

With `strata`, each (group, stratum) pair is its own curve (its own row of the input)
and the log-rank test is summed over the strata; no total over the strata is formed.

finalize (estimate.py, plain floats) builds from the released prefix of each group the
Kaplan-Meier survival, Greenwood variance and log(-log) 95% intervals, the median and
its interval, as lifelines computes them; the log-rank test between the groups that
have released points uses only the grid points released for all of them (the result
says which), equivalent to censoring everyone at the last such point.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.cells import cell_release, decode_released, exact_int
from smpc_ehr.analyses.common.noise import NoisyRelease, add_int_noise
from smpc_ehr.analyses.common.survival import validate_cohort_and_grid
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import category_levels
from smpc_ehr.analyses.statistics.kaplan_meier.estimate import kaplan_meier, stratified_logrank
from smpc_ehr.analyses.statistics.kaplan_meier.local import (
    curves,
    group_levels,
    local_counts,
    strata_levels,
)
from smpc_ehr.analyses.statistics.kaplan_meier.render import render_kaplan_meier
from smpc_ehr.analyses.statistics.kaplan_meier.tidy import tidy_kaplan_meier
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS
from smpc_ehr.securemath.ops import Secret, SecureOps

DP_NOTE = (
    "differentially private: the numbers at risk, events and left-out count are noisy "
    "(events clamped to 0..at risk); the confidence intervals, medians and the log-rank "
    "test treat them as exact and do not include the noise"
)


def grid_size(params: Params) -> int:
    return int(params["horizon"]) + 1


def noisy_cells(params: Params) -> int:
    """The cells that get noise with epsilon: events and censored per curve and grid
    point, beyond the horizon per curve, left out (each patient in one: sensitivity 1)."""
    rows = len(curves(params))
    return 2 * rows * grid_size(params) + rows + 1


def released_prefix(
    ops: SecureOps, reaches: Secret, rows: int, barred: Secret | None = None
) -> Secret:
    """Per row (curve) of the secret bits `reaches` (rows x grid, flattened), the bits
    [reaches[j] = 1 for every j <= i, and the row's `barred` bit is 0]: a point is
    released only with all the points before it, whatever the parties input (honest
    numbers at risk never grow along the grid, so this changes nothing for them; a
    party that input growing numbers could otherwise have a later point opened after a
    suppressed one), and a barred row not at all. The running sums of the bits, less
    the barred bit, are sums (exact on both backends, no product of bits); one batch of
    comparisons [running sum - barred - (i + 1) >= 0] turns them into bits."""
    grid = reaches.shape[0] // rows
    table = ops.reshape(reaches, (rows, grid))
    running = ops.stack([ops.sum(table[:, : i + 1], axis=1) for i in range(grid)], axis=1)
    if barred is not None:
        running = ops.sub(running, ops.stack([barred] * grid, axis=1))
    needed = -np.tile(np.arange(1.0, grid + 1.0), rows)
    return ops.ge_public(ops.add_public(ops.reshape(running, (rows * grid,)), needed), 0)


def numbers_at_risk(ops: SecureOps, events: Secret, censored: Secret, beyond: Secret) -> Secret:
    """The numbers at risk (rows x grid, flattened) from the interval cells: per curve,
    the patients beyond the horizon plus the events and censored at each point or later
    (sums only: exact, and noisy cells give noisy numbers at risk)."""
    rows = beyond.shape[0]
    grid = events.shape[0] // rows
    leaving = ops.reshape(ops.add(events, censored), (rows, grid))
    later = ops.stack([ops.sum(leaving[:, i:], axis=1) for i in range(grid)], axis=1)
    return ops.reshape(ops.add(later, ops.stack([beyond] * grid, axis=1)), (rows * grid,))


def small_gaps(ops: SecureOps, at_risk: Secret, cohort: Secret, threshold: int) -> Secret:
    """Per curve, [gap + t - 1] and [gap] for gap = its cohort patients minus its number
    at risk at time 0 (those left out: no time zero, or an end before it): compared with
    t in the caller's one batch they give [gap >= 1] and [gap >= t] (`barred_curves`)."""
    rows = cohort.shape[0]
    first = ops.reshape(ops.reshape(at_risk, (rows, at_risk.shape[0] // rows))[:, 0:1], (rows,))
    gap = ops.sub(cohort, first)
    return ops.concatenate([ops.add_public(gap, threshold - 1), gap])


def barred_curves(ops: SecureOps, bits: Secret) -> Secret:
    """The secret bits [1 <= gap <= t - 1] from `small_gaps`' compared values: the plain
    count of the same cohort and group minus the curve's number at risk at time 0 would
    give a small count, so the curve is suppressed whole."""
    rows = bits.shape[0] // 2
    return ops.sub(bits[:rows], bits[rows:])


class KaplanMeierAnalysis(Analysis):
    """Survival per group from joint numbers at risk and events on a public grid,
    released while the joint number at risk reaches the threshold."""

    name = "kaplan_meier"
    bits = COUNT_INPUT_BITS

    def validate(self, params: Params) -> None:
        validate_cohort_and_grid(params)
        group = params.get("group")
        if group:
            category_levels(group, params)
        strata = params.get("strata")
        if strata and not group:
            raise TemplateError("parameter 'strata' needs a 'group' to compare")
        if strata and strata == group:
            raise TemplateError("parameter 'strata' must differ from 'group'")

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        return local_counts(data, params)

    def outputs(self, params: Params) -> tuple[Output, ...]:
        cells = len(curves(params)) * grid_size(params)
        return (
            Output("released", (cells + 1,)),
            Output("counts", (cells + 1,)),
            Output("events", (cells,)),
        )

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (cell_release(noisy_cells(params)),)

    def secure_program(self, local: list[int], params: Params, threshold: int) -> NamedProgram:
        rows = len(curves(params))
        cells = rows * grid_size(params)
        (release,) = self.noisy_releases(params)
        exact = params.get("epsilon") is None
        width = noisy_cells(params)

        async def program(ops: SecureOps) -> NamedSecrets:
            totals = ops.sum_vectors(ops.input_ints(list(local), COUNT_INPUT_BITS))
            noisy = add_int_noise(ops, totals[:width], params, release, COUNT_INPUT_BITS)
            events, left = noisy[:cells], noisy[width - 1 :]
            at_risk = numbers_at_risk(
                ops, events, noisy[cells : 2 * cells], noisy[2 * cells : 2 * cells + rows]
            )
            compare = [at_risk, left]
            if exact:  # with noise, no exact count decides anything
                compare.append(small_gaps(ops, at_risk, totals[width:], threshold))
            compared = ops.ge_public(ops.concatenate(compare), threshold)
            barred = barred_curves(ops, compared[cells + 1 :]) if exact else None
            points = released_prefix(ops, compared[:cells], rows, barred)
            released = ops.concatenate([points, compared[cells : cells + 1]])
            return {
                "released": released,
                "counts": ops.mul(released, ops.concatenate([at_risk, left])),
                "events": ops.mul(points, events),
            }

        return program

    def render(self, result: dict[str, Any]) -> str:
        return render_kaplan_meier(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_kaplan_meier(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        grid = grid_size(params)
        noisy = params.get("epsilon") is not None
        cells = decode_released(opened)
        events_all = [exact_int(v) for v in opened["events"]]
        groups, pooled = [], []
        for c, (level, stratum) in enumerate(curves(params)):
            at_risk = cells[c * grid : (c + 1) * grid]
            shown = next((i for i, n in enumerate(at_risk) if n is None), grid)
            n = [int(x) for x in at_risk[:shown] if x is not None]
            d = events_all[c * grid : c * grid + shown]
            if noisy:  # post-processing: a noisy count of events within 0..at risk
                d = [min(max(e, 0), m) for e, m in zip(d, n, strict=True)]
            elif any(e < 0 or e > m for e, m in zip(d, n, strict=True)):
                raise ValueError("opened event counts are inconsistent with the numbers at risk")
            curve = kaplan_meier(n, d)
            hidden: list[None] = [None] * (grid - shown)
            entry = {
                "group": level,
                "time": list(range(grid)),
                "at_risk": [*n, *hidden],
                "events": [*d, *hidden],
                "survival": [*curve.survival, *hidden],
                "ci_low": [*curve.ci_low, *hidden],
                "ci_high": [*curve.ci_high, *hidden],
                "median": curve.median,
                "median_ci": list(curve.median_ci),
            }
            groups.append(entry | ({"stratum": stratum} if params.get("strata") else {}))
            if shown:
                pooled.append((level, stratum, n, d))
        return {
            "event": params.get("event") or "death_date",
            "time_unit": params["time_unit"],
            "group_by": params.get("group") or None,
            "strata": params.get("strata") or None,
            "groups": groups,
            "logrank": _logrank(pooled, params) if params.get("group") else None,
            "left_out": cells[-1],
            "threshold": threshold,
            "missing_values": "left out (no time zero, end before it, or no group or "
            "stratum value); their count is left_out",
        } | ({"dp_note": DP_NOTE} if noisy else {})


Released = list[tuple[str | None, str | None, list[int], list[int]]]


def _logrank(pooled: Released, params: Params) -> dict[str, Any] | None:
    """The log-rank test, per stratum over the grid points released for every group
    that has any in it (strata where fewer than two groups have any add nothing),
    summed over strata."""
    levels = group_levels(params)
    parts, used, last = [], set(), {}
    for stratum in strata_levels(params):
        mine = [(g, n, d) for g, s, n, d in pooled if s == stratum]
        if len(mine) < 2:
            continue
        stop = min(len(n) for _, n, _ in mine)
        at_risk = np.zeros((len(levels), stop))
        events = np.zeros((len(levels), stop))
        for g, n, d in mine:
            at_risk[levels.index(g)] = n[:stop]
            events[levels.index(g)] = d[:stop]
            used.add(g)
        parts.append((at_risk, events))
        last[stratum] = stop - 1
    test = stratified_logrank(parts) if parts else None
    if test is None:
        return None
    out: dict[str, Any] = {
        "chi2": test.chi2,
        "df": test.df,
        "p": test.p,
        "groups": [g for g in levels if g in used],
    }
    if not params.get("strata"):
        return out | {
            "last_time": last[None],
            "note": "computed from the released grid points only (0 to last_time), where "
            "every group listed is released",
        }
    return out | {
        "strata": params["strata"],
        "last_time": None,
        "last_time_by_stratum": {str(s): t for s, t in last.items()},
        "note": "stratified: per stratum, from the released grid points where every "
        "group released in it is released (0 to last_time_by_stratum), summed over strata",
    }

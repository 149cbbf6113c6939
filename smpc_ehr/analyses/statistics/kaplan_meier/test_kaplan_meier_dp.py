"""Kaplan-Meier with epsilon on the in-process federation (every party's real exact
sampler): the released numbers are the pooled truth plus noise of the stated size, the
run is charged to the budget, and nothing exact decides the release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.policy.ledger import PrivacyLedger
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.testing.federation import InProcessFederation
from tests._km_truth import grid, pooled_times
from tests._stats_jobs import THRESHOLD, template

KM = template("kaplan_meier")
HORIZON = 10
DELTA = 1e-6
PARAMS = {"codes": "E11,I50", "group": "sex", "time_unit": "year", "horizon": str(HORIZON)}
SIGMAS = 6.0
"""A released value further than this many noise sds from the truth fails the test
(probability < 2e-9 per value for Gaussian-like noise)."""


def test_kaplan_meier_with_epsilon_releases_noisy_counts_of_the_stated_size(
    data3: Path, tmp_path: Path
) -> None:
    federation = InProcessFederation.from_folder(data3)
    federation.state = tmp_path  # each hospital's ledger, kept
    result = federation.run(KM, {**PARAMS, "epsilon": 1.0}).result
    dp = result["dp"]
    sd = float(dp["noise_sd"])
    assert dp["epsilon"] == 1.0 and sd > 0.5
    assert "noisy" in result["dp_note"]
    truth = pooled_times(data3, ("E11", "I50"), "year", "sex")
    differences = []
    for g in result["groups"][:2]:  # F and M: far above the threshold at time 0
        at_risk, events = grid(truth[truth["group"] == g["group"]], HORIZON)
        shown = sum(n is not None for n in g["at_risk"])
        assert shown >= 5
        for i in range(shown):
            # at risk at i sums the noisy events and censored at i..horizon, and beyond
            at_sd = sd * np.sqrt(2 * (HORIZON - i + 1) + 1)
            assert abs(g["at_risk"][i] - at_risk[i]) <= SIGMAS * at_sd, (g["group"], i)
            assert g["at_risk"][i] >= THRESHOLD
            assert 0 <= g["events"][i] <= g["at_risk"][i]
            clamp = abs(g["at_risk"][i] - at_risk[i])  # events are clamped to 0..at risk
            assert abs(g["events"][i] - events[i]) <= SIGMAS * sd + clamp, (g["group"], i)
            differences.append(g["at_risk"][i] - int(at_risk[i]))
        assert all(0.0 <= s <= 1.0 for s in g["survival"][:shown])
    assert any(differences), "the numbers at risk carry noise"
    assert abs(result["left_out"] - sum(truth.attrs["left_out"].values())) <= SIGMAS * sd
    for hospital in ("hospital-1", "hospital-2", "hospital-3"):
        ledger = PrivacyLedger.in_state_folder(tmp_path / hospital, hospital, PrivacyPolicy())
        assert ledger.report().total.rho_spent == pytest.approx(rho_for(1.0, DELTA))

"""The privacy ledger and its accountant: zCDP composition, the (epsilon, delta)
conversion checked against the Canonne-Kamath-Steinke formula computed here, atomic
reservations, restarts, periods and the refusal texts."""

from __future__ import annotations

import math
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scipy.optimize import brentq, minimize_scalar

from smpc_ehr.errors import BadRequest, ConfigError, Refusal, SmpcEhrError
from smpc_ehr.policy.ledger import LEDGER_FILE, PrivacyLedger
from smpc_ehr.policy.privacy import PrivacyPolicy, check_exact_run
from smpc_ehr.privacy.accountant import Charge, epsilon_for, rho_for

DELTA = 1e-6


def cks_epsilon(rho: float, delta: float) -> float:
    """Canonne, Kamath, Steinke 2020 (Cor. 13), minimised over the Renyi order a here."""

    def bound(a: float) -> float:
        return a * rho + (math.log(1 / delta) + (a - 1) * math.log(1 - 1 / a) - math.log(a)) / (
            a - 1
        )

    # search over t = ln(a - 1); the grid guards the optimiser against a poor local minimum
    best = minimize_scalar(
        lambda t: bound(1 + math.exp(t)),
        bounds=(-20, 14),
        method="bounded",
        options={"xatol": 1e-10},
    )
    grid = min(bound(1 + math.exp(k / 20)) for k in range(-400, 280))
    return float(min(best.fun, grid))


def textbook_epsilon(rho: float, delta: float) -> float:
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


def room_for(queries: int) -> float:
    """A budget (epsilon at DELTA) that holds `queries` queries of epsilon = 1, not more."""
    return epsilon_for((queries + 0.5) * rho_for(1.0, DELTA), DELTA)


def ledger(tmp_path: Path, clock: float | None = None, **policy: object) -> PrivacyLedger:
    settings = PrivacyPolicy(**policy)  # type: ignore[arg-type]
    if clock is None:
        return PrivacyLedger(tmp_path / LEDGER_FILE, "hospital-a", settings)
    return PrivacyLedger(tmp_path / LEDGER_FILE, "hospital-a", settings, clock=lambda: clock)


# ---------------------------------------------------------------- accountant


@pytest.mark.parametrize("rho", [1e-4, 0.01, 0.0243, 0.5, 3.0])
@pytest.mark.parametrize("delta", [1e-6, 1e-9])
def test_conversion_is_the_tight_one(rho: float, delta: float) -> None:
    ours = epsilon_for(rho, delta)
    assert ours == pytest.approx(cks_epsilon(rho, delta), rel=1e-6)
    assert ours < textbook_epsilon(rho, delta)


def test_inverse_conversion_never_overstates_the_budget() -> None:
    rho = rho_for(1.0, DELTA)
    assert epsilon_for(rho, DELTA) <= 1.0
    assert epsilon_for(rho * (1 + 1e-9), DELTA) > 1.0 - 1e-6
    assert epsilon_for(0.0, DELTA) == 0.0
    with pytest.raises(ValueError, match="delta"):
        epsilon_for(0.1, 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        rho_for(-1.0, DELTA)


def test_composition_adds_rho_exactly(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    for k in range(5):
        book.reserve(f"job-{k}", "alice", Charge.of_rho(0.02))
    report = book.report()
    assert report.total.rho_spent == pytest.approx(5 * 0.02, rel=1e-12)
    assert report.total.epsilon_spent == pytest.approx(cks_epsilon(0.1, DELTA), rel=1e-6)


def test_epsilon_one_queries_in_a_budget_of_three(tmp_path: Path) -> None:
    """Computed here independently: rho of one epsilon = 1 query and of the budget, by
    root finding on the CKS formula; the ledger must allow exactly floor(ratio)."""
    rho_query = brentq(lambda r: cks_epsilon(r, DELTA) - 1.0, 1e-9, 1.0, xtol=1e-14)
    rho_budget = brentq(lambda r: cks_epsilon(r, DELTA) - 3.0, 1e-9, 3.0, xtol=1e-14)
    expected = math.floor(rho_budget / rho_query)
    assert expected > 3
    assert abs(rho_budget / rho_query - round(rho_budget / rho_query)) > 0.01  # no edge case
    book = ledger(tmp_path, epsilon_budget_per_analyst=3.0)
    allowed = 0
    with pytest.raises(Refusal, match="per-analyst budget of 3"):
        while True:
            book.reserve(f"job-{allowed}", "alice", Charge.of_epsilon(1.0, DELTA))
            book.commit(f"job-{allowed}")
            allowed += 1
    assert allowed == expected
    assert book.report().total.epsilon_spent <= 3.0


# ---------------------------------------------------------------- ledger


def test_reservations_are_atomic_under_concurrency(tmp_path: Path) -> None:
    """Many threads, each with its own ledger object (own connections), race for a budget
    that holds exactly 3 charges: exactly 3 win."""
    rho = rho_for(1.0, DELTA)
    books = [ledger(tmp_path, epsilon_budget_total=room_for(3)) for _ in range(8)]
    outcomes: list[str] = []
    start = threading.Barrier(len(books))

    def race(i: int) -> None:
        start.wait()
        try:
            books[i].reserve(f"job-{i}", f"analyst-{i % 2}", Charge.of_rho(rho))
            outcomes.append("reserved")
        except Refusal:
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(books))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["refused"] * 5 + ["reserved"] * 3
    assert len(books[0].pending()) == 3


def test_restart_keeps_spending_and_counts_unsettled_reservations(tmp_path: Path) -> None:
    book = ledger(tmp_path, epsilon_budget_per_analyst=room_for(2))
    book.reserve("done", "alice", Charge.of_epsilon(1.0, DELTA))
    book.commit("done")
    book.reserve("crashed", "alice", Charge.of_epsilon(1.0, DELTA))
    del book  # the party stops without settling "crashed"
    reopened = ledger(tmp_path, epsilon_budget_per_analyst=room_for(2))
    assert reopened.pending() == ["crashed"]
    usage = reopened.report().analysts[0]
    assert usage.rho_spent == pytest.approx(2 * rho_for(1.0, DELTA))
    assert usage.pending == 1
    with pytest.raises(Refusal, match="analyst 'alice' has spent"):
        reopened.reserve("next", "alice", Charge.of_epsilon(1.0, DELTA))
    assert reopened.release("crashed")  # an operator who knows nothing was released
    reopened.reserve("next", "alice", Charge.of_epsilon(1.0, DELTA))


def test_release_gives_budget_back_and_refusal_records_nothing(tmp_path: Path) -> None:
    book = ledger(tmp_path, epsilon_budget_per_analyst=1.0)
    book.reserve("j1", "alice", Charge.of_epsilon(1.0, DELTA))
    with pytest.raises(Refusal):
        book.reserve("j2", "alice", Charge.of_epsilon(1.0, DELTA))
    assert book.pending() == ["j1"]  # the refused j2 left no row
    assert book.release("j1")  # another hospital refused: give it back
    assert not book.release("j1")  # twice is harmless
    assert not book.release("never-reserved")
    book.reserve("j2", "alice", Charge.of_epsilon(1.0, DELTA))
    book.commit("j2")
    book.commit("j2")  # twice is harmless
    with pytest.raises(SmpcEhrError, match="already committed; it cannot be released"):
        book.release("j2")
    with pytest.raises(SmpcEhrError, match="already released; it cannot be committed"):
        book.commit("j1")
    with pytest.raises(SmpcEhrError, match="no privacy charge"):
        book.commit("unknown")
    with pytest.raises(BadRequest, match="already has a privacy charge"):
        book.reserve("j2", "alice", Charge.of_rho(0.0))


def test_two_analysts_cannot_together_exceed_the_total(tmp_path: Path) -> None:
    book = ledger(tmp_path, epsilon_budget_per_analyst=2.0, epsilon_budget_total=2.0)
    per_query = Charge.of_epsilon(1.0, DELTA)
    runs = {"alice": 0, "bob": 0}
    for i in range(20):
        name = "alice" if i % 2 == 0 else "bob"
        try:
            book.reserve(f"job-{i}", name, per_query)
            runs[name] += 1
        except Refusal as exc:
            assert "has no room left for this job's" in str(exc)
    total = sum(runs.values())
    assert total == math.floor(rho_for(2.0, DELTA) / per_query.rho)
    assert book.report().total.epsilon_spent <= 2.0
    # alone, either analyst's own budget would have allowed all of these
    assert max(runs.values()) < total


def refused(book: PrivacyLedger, job: str, analyst: str, epsilon: float) -> str:
    """The text of the budget refusal of the analyst's job of `epsilon`."""
    with pytest.raises(Refusal) as info:
        book.reserve(job, analyst, Charge.of_epsilon(epsilon, DELTA))
    message = str(info.value)
    assert message.startswith("the privacy budget of hospital-a does not allow this job:")
    return message


def test_refusal_texts_name_hospital_budget_and_reason(tmp_path: Path) -> None:
    book = ledger(
        tmp_path,
        clock=datetime(2026, 12, 6, tzinfo=UTC).timestamp(),
        epsilon_budget_per_analyst=1.2,
        budget_period="month",
    )
    book.reserve("j1", "alice", Charge.of_epsilon(1.0, DELTA))
    message = refused(book, "j2", "alice", 1.0)
    assert "analyst 'alice' has spent epsilon = 1 of its per-analyst budget of 1.2" in message
    assert "(delta = 1e-06, budget period: calendar month since 2026-12-01 UTC);" in message
    assert "this job's epsilon = 1 at delta = 1e-06 (rho = 0.02436)" in message
    capped = ledger(tmp_path / "b", max_epsilon_per_query=0.5)
    with pytest.raises(Refusal, match=r"hospital-a allows at most epsilon = 0.5 per query"):
        capped.reserve("j3", "alice", Charge.of_epsilon(1.0, DELTA))
    with pytest.raises(Refusal, match="hospital-a requires differential privacy"):
        check_exact_run(PrivacyPolicy(require_dp=True), "hospital-a", None)
    check_exact_run(PrivacyPolicy(), "hospital-a", None)  # the default allows exact runs
    # the backend self-test computes on public numbers: it runs where DP is required
    check_exact_run(PrivacyPolicy(require_dp=True), "hospital-a", None, reads_patient_data=False)


def test_a_total_budget_refusal_shows_only_the_analysts_own_spending(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice spends 2 x epsilon 0.6 (0.868 composed) of a total of 1.2; Bob's first
    query (epsilon 0.9) is refused on the total: he reads his own spending (0) and the
    budget, never what Alice or everyone spent; the hospital's log keeps the total."""
    book = ledger(tmp_path, epsilon_budget_total=1.2, budget_period="month")
    for job in ("a1", "a2"):
        book.reserve(job, "alice", Charge.of_epsilon(0.6, DELTA))
    everyone = epsilon_for(2 * rho_for(0.6, DELTA), DELTA)
    message = refused(book, "b1", "bob", 0.9)
    assert "its total budget for all analysts together, epsilon = 1.2 (delta = 1e-06" in message
    assert "this job's epsilon = 0.9 at delta = 1e-06" in message
    assert "analyst 'bob' has spent epsilon = 0 of it" in message
    assert "alice" not in message and "0.6" not in message
    figures = [float(x) for x in re.findall(r"\d+(?:\.\d+)?(?:e-?\d+)?", message)]
    assert not any(x == pytest.approx(everyone, rel=1e-3) for x in figures), message
    assert f"{everyone:.4g}" in caplog.text and "'bob'" in caplog.text


def test_a_new_period_starts_a_new_budget(tmp_path: Path) -> None:
    november = datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp()
    december = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    book = ledger(tmp_path, clock=november, epsilon_budget_total=1.0, budget_period="month")
    book.reserve("old", "alice", Charge.of_epsilon(1.0, DELTA))
    with pytest.raises(Refusal):
        book.reserve("same-month", "alice", Charge.of_epsilon(1.0, DELTA))
    later = ledger(tmp_path, clock=december, epsilon_budget_total=1.0, budget_period="month")
    later.reserve("new", "alice", Charge.of_epsilon(1.0, DELTA))
    forever = ledger(tmp_path, clock=december, epsilon_budget_total=1.0)
    assert forever.report().total.rho_spent == pytest.approx(2 * rho_for(1.0, DELTA))


def test_report_lists_each_analyst(tmp_path: Path) -> None:
    book = ledger(tmp_path, epsilon_budget_per_analyst=3.0)
    book.reserve("a", "alice", Charge.of_epsilon(1.0, DELTA))
    book.commit("a")
    book.reserve("b", "bob", Charge.of_rho(0.01))
    report = book.report()
    assert [u.analyst for u in report.analysts] == ["alice", "bob"]
    alice = report.analysts[0]
    assert alice.epsilon_spent == pytest.approx(1.0, abs=1e-9)
    assert alice.epsilon_remaining == pytest.approx(2.0, abs=1e-9)
    assert (alice.pending, report.analysts[1].pending) == (0, 1)
    assert report.total.epsilon_budget is None and report.total.epsilon_remaining is None
    text = "\n".join(report.lines())
    assert "privacy budget of hospital-a" in text and "alice" in text and "(all analysts)" in text


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"delta": 0.0}, "delta must be a number strictly between 0 and 1"),
        ({"delta": 1.0}, "delta must be"),
        ({"epsilon_budget_total": -1.0}, "epsilon_budget_total must be a finite number > 0"),
        ({"max_epsilon_per_query": math.inf}, "max_epsilon_per_query must be"),
        ({"budget_period": "week"}, "budget_period must be one of forever, year, quarter"),
        ({"require_dp": 1}, "require_dp must be true or false"),
    ],
)
def test_invalid_privacy_policy(settings: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        PrivacyPolicy(**settings)  # type: ignore[arg-type]


def test_unusable_ledger_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILE).write_text("not a database " * 100)
    with pytest.raises(ConfigError, match=r"privacy ledger .* cannot be used"):
        ledger(tmp_path)


def test_configuration_docs_state_the_accountant_figures() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "configuration.md").read_text()
    fits = math.floor(rho_for(3.0, DELTA) / rho_for(1.0, DELTA))
    assert f"a budget of epsilon = 3 holds **{fits}** queries of epsilon = 1" in text
    assert f"(each is rho = {rho_for(1.0, DELTA):.4g};" in text
    assert f"spend epsilon = {epsilon_for(2 * rho_for(1.0, DELTA), DELTA):.3g}, not 2" in text

"""A hospital's privacy ledger: what each analyst's DP queries have spent, in SQLite.

The data owner enforces its own budget, so every hospital keeps its own ledger in its
state folder. A job's charge goes through three steps:

- `reserve` (before the job's secure step): inside one write transaction it checks the
  per-query cap, the analyst's budget and the hospital's total over all analysts, then
  records the charge as reserved. SQLite's write lock (BEGIN IMMEDIATE) serialises
  concurrent reservations, also across threads and processes, so two jobs can never
  both take the last of a budget.
- `commit` once the outputs are released, or `release` when the job ended without
  releasing anything (another hospital refused, a failure before opening).
- A reservation neither committed nor released (the party crashed) stays counted as
  spent after a restart: a crash loses budget, never privacy. An operator who knows
  nothing was released may `release` it explicitly.

Charges are summed as rho (zCDP adds exactly) and compared with the budget converted
to rho at the policy's delta (`accountant.rho_for`), which is the same as comparing the
epsilon of the total with the budget. Released rows are kept, for the audit.

Schema (PRAGMA user_version 1), one table:
    charges(job_id TEXT PRIMARY KEY, analyst TEXT, rho REAL, epsilon REAL NULL,
            delta REAL NULL, state TEXT 'reserved'|'committed'|'released',
            reserved_at REAL (Unix seconds), settled_at REAL NULL)
A charge counts in the budget period holding its `reserved_at`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smpc_ehr.errors import BadRequest, ConfigError, Refusal, SmpcEhrError
from smpc_ehr.policy.privacy import (
    PrivacyPolicy,
    check_query_cap,
    period_label,
    period_start,
)
from smpc_ehr.privacy.accountant import Charge, epsilon_for, rho_for

log = logging.getLogger(__name__)

LEDGER_FILE = "privacy-ledger.sqlite3"
"""The ledger's file name in a party's state folder."""
SCHEMA_VERSION = 1
LOCK_TIMEOUT_SECONDS = 30.0
"""How long a reservation waits for another one holding the write lock."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS charges (
        job_id TEXT PRIMARY KEY,
        analyst TEXT NOT NULL,
        rho REAL NOT NULL CHECK (rho >= 0),
        epsilon REAL,
        delta REAL,
        state TEXT NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
        reserved_at REAL NOT NULL,
        settled_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS charges_by_analyst ON charges (analyst, reserved_at)",
)
_SPENT = (
    "SELECT COALESCE(SUM(rho), 0.0) FROM charges WHERE state != 'released' AND reserved_at >= ?"
)


@dataclass(frozen=True)
class Usage:
    """What one analyst (or, with analyst None, everyone) has spent in the current period.

    `epsilon_spent` is the total rho converted at the policy's delta; `epsilon_remaining`
    is the budget minus that (None without a budget). `pending` counts reservations not
    yet committed or released, which are counted as spent.
    """

    analyst: str | None
    rho_spent: float
    epsilon_spent: float
    epsilon_budget: float | None
    epsilon_remaining: float | None
    pending: int


@dataclass(frozen=True)
class BudgetReport:
    """A hospital's budget use, for `smpc-ehr budget`: per analyst and in total."""

    party: str
    delta: float
    period: str
    analysts: tuple[Usage, ...]
    total: Usage

    def lines(self) -> list[str]:
        """A plain-text table of the report."""

        def row(name: str, u: Usage) -> str:
            budget = "-" if u.epsilon_budget is None else f"{u.epsilon_budget:g}"
            left = "-" if u.epsilon_remaining is None else f"{u.epsilon_remaining:.4g}"
            return (
                f"{name:<24} {u.epsilon_spent:>10.4g} {budget:>8} {left:>10} "
                f"{u.rho_spent:>10.4g} {u.pending:>7}"
            )

        head = (
            f"{'analyst':<24} {'epsilon':>10} {'budget':>8} {'remaining':>10} {'rho':>10} pending"
        )
        return [
            f"privacy budget of {self.party}, {self.period}, epsilon at delta = {self.delta:g}",
            head,
            *(row(u.analyst or "", u) for u in self.analysts),
            row("(all analysts)", self.total),
        ]


class PrivacyLedger:
    """The ledger of one hospital (`party`) under its `policy`, stored at `path`.

    Each call opens its own connection, so one ledger may be used from any thread and
    several ledgers (or processes) on one file see one another's reservations. (One
    kept connection would need a lock: the party reserves on its event loop but
    commits and releases in worker threads, `asyncio.to_thread`.)
    """

    def __init__(
        self,
        path: Path | str,
        party: str,
        policy: PrivacyPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.party = party
        self.policy = policy
        self._clock = clock
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise ConfigError(
                        f"privacy ledger {self.path} has schema version {version}, newer "
                        f"than this program's {SCHEMA_VERSION}"
                    )
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"privacy ledger {self.path} cannot be used: {exc}") from None

    @classmethod
    def in_state_folder(cls, state: Path | str, party: str, policy: PrivacyPolicy) -> PrivacyLedger:
        """The ledger of a party whose state folder is `state`."""
        return cls(Path(state) / LEDGER_FILE, party, policy)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection inside BEGIN IMMEDIATE (the write lock), committed on success."""
        db = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
        with closing(db):
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # a reservation is on disk when it returns
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _start(self) -> tuple[float, str]:
        """The current budget period: its start (Unix seconds) and its label."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        start = period_start(self.policy.budget_period, now)
        return (-1e300 if start is None else start.timestamp()), period_label(
            self.policy.budget_period, now
        )

    def reserve(self, job_id: str, analyst: str, charge: Charge) -> None:
        """Reserve `charge` for `job_id` of `analyst`, or raise Refusal naming this hospital
        and the budget that does not allow it (nothing is recorded then)."""
        check_query_cap(self.policy, self.party, charge)
        start, period = self._start()
        try:
            with self._transaction() as db:
                if db.execute("SELECT 1 FROM charges WHERE job_id = ?", (job_id,)).fetchone():
                    raise BadRequest(f"job {job_id} already has a privacy charge at {self.party}")
                mine = db.execute(_SPENT + " AND analyst = ?", (start, analyst)).fetchone()[0]
                everyone = db.execute(_SPENT, (start,)).fetchone()[0]
                self._check_own(analyst, mine, charge, period)
                self._check_total(job_id, analyst, mine, everyone, charge, period)
                db.execute(
                    "INSERT INTO charges (job_id, analyst, rho, epsilon, delta, state, "
                    "reserved_at) VALUES (?, ?, ?, ?, ?, 'reserved', ?)",
                    (job_id, analyst, charge.rho, charge.epsilon, charge.delta, self._clock()),
                )
        except sqlite3.Error as exc:
            raise Refusal(f"{self.party} could not record the privacy charge: {exc}") from None

    def _check_own(self, analyst: str, mine: float, charge: Charge, period: str) -> None:
        """Refusal if the analyst's own spending plus `charge` exceeds its budget."""
        budget, delta = self.policy.epsilon_budget_per_analyst, self.policy.delta
        if budget is None or mine + charge.rho <= rho_for(budget, delta):
            return
        raise Refusal(
            f"the privacy budget of {self.party} does not allow this job: analyst "
            f"'{analyst}' has spent epsilon = {epsilon_for(mine, delta):.4g} of its "
            f"per-analyst budget of {budget:g} (delta = {delta:g}, {period}); this job's "
            f"{charge.describe()} would bring it to epsilon = "
            f"{epsilon_for(mine + charge.rho, delta):.4g}"
        )

    def _check_total(
        self, job_id: str, analyst: str, mine: float, everyone: float, charge: Charge, period: str
    ) -> None:
        """Refusal if all analysts' spending plus `charge` exceeds the hospital's total.
        The analyst is told its own spending and the total budget, never what other
        analysts spent (the hospital's log and `smpc-ehr budget` show that)."""
        budget, delta = self.policy.epsilon_budget_total, self.policy.delta
        if budget is None or everyone + charge.rho <= rho_for(budget, delta):
            return
        log.warning(
            "job %s of analyst %r refused: all analysts together have spent epsilon = %.4g "
            "of %s's total budget of %g (delta = %g, %s); the job's %s would exceed it",
            job_id,
            analyst,
            epsilon_for(everyone, delta),
            self.party,
            budget,
            delta,
            period,
            charge.describe(),
        )
        raise Refusal(
            f"the privacy budget of {self.party} does not allow this job: its total budget "
            f"for all analysts together, epsilon = {budget:g} (delta = {delta:g}, {period}), "
            f"has no room left for this job's {charge.describe()}; analyst '{analyst}' has "
            f"spent epsilon = {epsilon_for(mine, delta):.4g} of it"
        )

    def _settle(self, job_id: str, to: str) -> str | None:
        """Move a reserved charge to `to`; the state it had (None: no such job)."""
        try:
            with self._transaction() as db:
                row = db.execute("SELECT state FROM charges WHERE job_id = ?", (job_id,)).fetchone()
                if row is None or row[0] == to:
                    return None if row is None else str(row[0])
                if row[0] != "reserved":
                    raise SmpcEhrError(
                        f"job {job_id}'s privacy charge at {self.party} is already {row[0]}; "
                        f"it cannot be {to}"
                    )
                db.execute(
                    "UPDATE charges SET state = ?, settled_at = ? WHERE job_id = ?",
                    (to, self._clock(), job_id),
                )
                return "reserved"
        except sqlite3.Error as exc:
            raise SmpcEhrError(f"{self.party}: privacy ledger {self.path}: {exc}") from None

    def commit(self, job_id: str) -> None:
        """Mark a reserved charge as spent for good (its outputs were released); committing
        twice is harmless, committing a released or unknown job an error."""
        if self._settle(job_id, "committed") is None:
            raise SmpcEhrError(f"job {job_id} has no privacy charge at {self.party} to commit")

    def release(self, job_id: str) -> bool:
        """Give a reservation back (its job released nothing); False if there was none to
        give back (unknown job, or released before). A committed charge cannot be."""
        return self._settle(job_id, "released") == "reserved"

    def pending(self) -> list[str]:
        """Jobs whose reservation was neither committed nor released (counted as spent)."""
        with closing(sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS)) as db:
            rows = db.execute(
                "SELECT job_id FROM charges WHERE state = 'reserved' ORDER BY reserved_at"
            ).fetchall()
        return [r[0] for r in rows]

    def report(self) -> BudgetReport:
        """Spent and remaining budget per analyst, and in total, in the current period."""
        start, period = self._start()
        with closing(sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS)) as db:
            rows = db.execute(
                "SELECT analyst, SUM(rho), SUM(state = 'reserved') FROM charges "
                "WHERE state != 'released' AND reserved_at >= ? GROUP BY analyst "
                "ORDER BY analyst",
                (start,),
            ).fetchall()
        analysts = tuple(
            self._usage(name, rho, pending, self.policy.epsilon_budget_per_analyst)
            for name, rho, pending in rows
        )
        total = self._usage(
            None,
            sum(r[1] for r in rows),
            sum(r[2] for r in rows),
            self.policy.epsilon_budget_total,
        )
        return BudgetReport(self.party, self.policy.delta, period, analysts, total)

    def _usage(self, analyst: str | None, rho: float, pending: int, budget: float | None) -> Usage:
        epsilon = epsilon_for(rho, self.policy.delta)
        left = None if budget is None else max(0.0, budget - epsilon)
        return Usage(analyst, rho, epsilon, budget, left, pending)

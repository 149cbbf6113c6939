"""The dealer's config: its identity, key and certificate (CrypTen backend only).

The id must be the roster's `[dealer]`; the roster itself refuses a dealer id that
is also a party's or the coordinator's, because one certificate would then stand
for two roles and the dealer could learn a party's seed and shares at once.

`max_jobs_per_party` bounds the jobs one party holds at the dealer (joined, not left);
a Join beyond it ends that party's oldest job (see `dealer.sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.compute_threads import DEFAULT_COMPUTE_THREADS
from smpc_ehr.config._common import (
    check_identity_files,
    check_log_level,
    read_identity_section,
    read_listen,
    read_log_level,
)
from smpc_ehr.config._toml import (
    rel,
    toml_document,
    toml_table,
    write_text,
)
from smpc_ehr.config.roster import Roster

MAX_JOBS_PER_PARTY = 4
MAX_OPEN_JOBS = 256
"""Most jobs the dealer holds at once; max_jobs_per_party x parties must fit in it, so
that the parties' own bounds keep one party from filling it."""
"""Default `max_jobs_per_party`: a party needs one, or two while a lost Leave waits for
the job's deadline."""


@dataclass(frozen=True)
class DealerConfig:
    """A validated dealer config."""

    id: str
    roster: Roster
    listen: str
    key: Path
    cert: Path
    log_level: str
    source: Path
    max_jobs_per_party: int = MAX_JOBS_PER_PARTY
    compute_threads: int = DEFAULT_COMPUTE_THREADS
    """Threads of torch (and numpy's BLAS) in the dealer process (smpc_ehr.compute_threads)."""


def load_dealer_config(path: Path | str, *, check_files: bool = True) -> DealerConfig:
    """Read and validate a dealer config; its id must be the roster's dealer."""
    s = read_identity_section(path, "dealer")
    listen = read_listen(s.table, s.member)
    max_jobs = s.table.get_int("max_jobs_per_party", MAX_JOBS_PER_PARTY, minimum=1)
    parties = len(s.roster.party_ids())
    if max_jobs * parties > MAX_OPEN_JOBS:
        raise s.table.error(
            "max_jobs_per_party",
            f"{max_jobs} x {parties} parties exceeds the dealer's {MAX_OPEN_JOBS} open jobs; "
            f"at most {MAX_OPEN_JOBS // parties}",
        )
    threads = s.table.get_int("compute_threads", DEFAULT_COMPUTE_THREADS, minimum=1)
    s.table.done()
    if check_files:
        check_identity_files(s.table, s.roster, s.key, s.cert)
    log_level = read_log_level(s.top)
    s.top.done()
    return DealerConfig(
        id=s.id,
        roster=s.roster,
        listen=listen,
        key=s.key,
        cert=s.cert,
        log_level=log_level,
        source=s.path,
        max_jobs_per_party=max_jobs,
        compute_threads=threads,
    )


def write_dealer_config(
    path: Path | str,
    *,
    id: str,
    roster: Path | str,
    key: Path | str,
    cert: Path | str,
    listen: str | None = None,
    log_level: str = "INFO",
    max_jobs_per_party: int = MAX_JOBS_PER_PARTY,
) -> Path:
    """Write a dealer config; paths as in `write_party_config`."""
    path = Path(path)
    base = path.parent
    values = {
        "id": id,
        "roster": rel(roster, base),
        "listen": listen,
        "key": rel(key, base),
        "cert": rel(cert, base),
        "max_jobs_per_party": int(max_jobs_per_party),
    }
    text = toml_document(
        [
            toml_table("dealer", values),
            toml_table("log", {"level": check_log_level(log_level)}),
        ]
    )
    return write_text(path, text)

"""The analyst's config: which identity to present, and (via the roster) where the
coordinator is and which CA to trust."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.config._common import check_identity_files, read_identity_section
from smpc_ehr.config._toml import rel, toml_table, write_text
from smpc_ehr.config.roster import Roster

LOCAL_ANALYST_CONFIG = "analyst.toml"
"""The analyst config's file name in a local federation's state folder."""


@dataclass(frozen=True)
class AnalystConfig:
    """A validated analyst config."""

    id: str
    roster: Roster
    key: Path
    cert: Path
    source: Path

    @property
    def coordinator_address(self) -> str:
        """Where `smpc-ehr run` connects."""
        address = self.roster.coordinator.address
        assert address is not None  # Member validation guarantees it
        return address

    @property
    def ca_cert(self) -> Path:
        """The federation CA the coordinator's certificate must chain to."""
        return self.roster.ca_cert


def load_analyst_config(path: Path | str, *, check_files: bool = True) -> AnalystConfig:
    """Read and validate an analyst config; its id must be a roster analyst."""
    s = read_identity_section(path, "analyst")
    s.table.done()
    s.top.done()
    if check_files:
        check_identity_files(s.table, s.roster, s.key, s.cert)
    return AnalystConfig(id=s.id, roster=s.roster, key=s.key, cert=s.cert, source=s.path)


def write_analyst_config(
    path: Path | str, *, id: str, roster: Path | str, key: Path | str, cert: Path | str
) -> Path:
    """Write an analyst config; paths as in `write_party_config`."""
    path = Path(path)
    base = path.parent
    values = {"id": id, "roster": rel(roster, base), "key": rel(key, base), "cert": rel(cert, base)}
    return write_text(path, toml_table("analyst", values))

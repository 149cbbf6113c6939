"""`smpc-ehr linkage-key new --out FILE`: the federation's linkage key for deduplicated
counts (docs/data.md, "Linkage key"): made once by one hospital, copied to the other
hospitals over a channel they trust, never to the coordinator, dealer or analysts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add `linkage-key new`."""
    parser = sub.add_parser("linkage-key", help="the hospitals' shared key for deduplicated counts")
    actions = parser.add_subparsers(dest="linkage_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="write a fresh random 32-byte key (mode 0600)")
    new.add_argument("--out", required=True, help="key file to write (refused if it exists)")
    new.set_defaults(handler=linkage_key_new)


def linkage_key_new(args: argparse.Namespace) -> int:
    from smpc_ehr.config.linkage_key import new_linkage_key

    path = new_linkage_key(Path(args.out))
    print(
        f"linkage key: {path}; copy it to every hospital's party (linkage_key = ... in its "
        "[party] table) over a channel you trust, and to no one else"
    )
    return 0

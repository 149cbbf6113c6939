"""`smpc-ehr certs ca|request|sign|show`: keys made by each member, certificates by the CA.

Registered from `cli/__init__.build_parser` by one call, so the commands live here
with their handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from smpc_ehr.config.roster import ROLES


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register_certs(certs_sub: Any) -> None:
    """Add `ca`, `request`, `sign` and `show` beside `certs init`."""
    from smpc_ehr.pki.requests import DEFAULT_DAYS

    ca = certs_sub.add_parser(
        "ca", help="make only the federation CA (ca.pem, ca.key): the operator's first step"
    )
    ca.add_argument("--roster", required=True, help="roster TOML (the federation's name)")
    ca.add_argument("--out", required=True, help="folder for ca.pem and ca.key (0600)")
    ca.add_argument("--force", action="store_true", help="overwrite an existing CA")
    ca.set_defaults(handler=certs_ca)

    req = certs_sub.add_parser(
        "request", help="make this member's key and a certificate request (CSR) in DIR"
    )
    req.add_argument("--id", required=True, help="this member's id in the roster")
    req.add_argument("--role", required=True, choices=ROLES, help="this member's role")
    req.add_argument("--federation", help="federation name, recorded in the request")
    req.add_argument("--roster", help="roster TOML, for the federation name (optional)")
    req.add_argument("--out", required=True, help="folder for <id>.key (0600) and <id>.csr")
    req.set_defaults(handler=certs_request)

    sign = certs_sub.add_parser(
        "sign", help="issue the certificate a CSR asks for, if the roster lists its id and role"
    )
    sign.add_argument("--ca", required=True, help="CA certificate (ca.pem)")
    sign.add_argument("--ca-key", required=True, help="CA private key")
    sign.add_argument("--roster", required=True, help="roster TOML")
    sign.add_argument("csr", help="the member's <id>.csr")
    sign.add_argument(
        "--days", type=_days, default=DEFAULT_DAYS, help=f"validity (default {DEFAULT_DAYS})"
    )
    sign.add_argument("--out", help="certificate file (default: <id>.pem beside the CSR)")
    sign.set_defaults(handler=certs_sign)

    show = certs_sub.add_parser(
        "show", help="identity, role, validity and fingerprint of a certificate or CSR"
    )
    show.add_argument("file", help="certificate (.pem) or request (.csr)")
    show.set_defaults(handler=certs_show)


def register_roster(sub: Any) -> None:
    """Add `roster sign`."""
    roster = sub.add_parser("roster", help="the federation roster")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    sign = roster_sub.add_parser(
        "sign", help="write ROSTER.sig: the CA's signature over the roster file's bytes"
    )
    sign.add_argument("--ca-key", required=True, help="CA private key")
    sign.add_argument("roster", help="roster TOML")
    sign.set_defaults(handler=roster_sign)


def roster_sign(args: argparse.Namespace) -> int:
    from smpc_ehr.config.roster import load_roster
    from smpc_ehr.config.roster_sig import sign_roster

    out = sign_roster(args.roster, args.ca_key)
    roster = load_roster(args.roster)
    print(
        f"signature: {out} (roster version {roster.version}, "
        f"{len(roster.revoked)} revoked certificate(s)); copy both files to every member, "
        "then reload them (kill -HUP PID)"
    )
    return 0


def _federation(args: argparse.Namespace) -> str | None:
    """The federation to name in the request, if known (the signer's roster decides)."""
    from smpc_ehr.config.roster import load_roster

    if args.federation:
        return str(args.federation)
    if args.roster:
        return load_roster(args.roster).federation
    return None


def certs_ca(args: argparse.Namespace) -> int:
    from smpc_ehr.config.roster import load_roster
    from smpc_ehr.pki.certs import init_ca

    roster = load_roster(args.roster)
    cert, key = init_ca(roster.federation, Path(args.out), force=args.force)
    print(f"CA certificate: {cert} (give it to every member; the roster's ca_cert)")
    print(f"CA key:         {key} (mode 0600; keep it offline, it signs certificates and rosters)")
    if cert.resolve() != roster.ca_cert.resolve():
        print(f"note: the roster's ca_cert is {roster.ca_cert}, not {cert}")
    return 0


def certs_request(args: argparse.Namespace) -> int:
    from smpc_ehr.pki.requests import make_request

    paths = make_request(args.id, args.role, _federation(args), Path(args.out))
    print(f"key:     {paths.key} (mode 0600; it never leaves this folder)")
    print(f"request: {paths.csr} (send this file to the federation operator)")
    return 0


def certs_sign(args: argparse.Namespace) -> int:
    from smpc_ehr.config.roster import load_roster
    from smpc_ehr.pki.requests import sign_request

    roster = load_roster(args.roster)
    cert = sign_request(args.ca, args.ca_key, roster, args.csr, days=args.days, out=args.out)
    print(f"certificate: {cert} (valid {args.days} days; send it back to the member)")
    return 0


def certs_show(args: argparse.Namespace) -> int:
    from smpc_ehr.pki.requests import describe

    print("\n".join(describe(args.file)))
    return 0

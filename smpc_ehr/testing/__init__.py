"""Test support shipped with the package: never imported by a party, coordinator or dealer.

`reference.py` is a plaintext `SecureOps` for P parties in one process, with the
stated precision of a real backend; `federation.py` runs an analysis end to end over
it (local steps, secure program, opening, finaliser), so the fast test tier checks
every analysis without starting processes.
"""

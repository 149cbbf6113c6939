"""Test support shipped with the package: never imported by a party, coordinator or dealer.

`reference.py` is a plaintext `SecureOps` for P parties, with the stated precision of
a real backend, meeting over a job's channel; `backend.py` makes it a `Backend` that
is never registered; `memory.py` holds meshes and a party client without sockets; and
`federation.py` runs the real coordinator, party servicers and job runners in one
event loop over them, so the fast test tier checks every analysis end to end without
starting processes.
"""

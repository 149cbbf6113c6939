"""MPC backends: each runs a job's secure part over the mesh behind `SecureOps`.

Analyses are written once against `smpc_ehr.backends.base.SecureOps`; a backend
turns those operations into its own protocol (MPyC: Shamir sharing over a prime
field, honest majority). `shamir` recombines output shares at the coordinator.
"""

BACKENDS = ("mpyc",)
"""Backends this build can run; a job naming another one is refused."""

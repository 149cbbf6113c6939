"""MPyC (Shamir secret sharing, honest majority) running over the project's mesh.

`library` imports and patches MPyC, `exchange` carries its messages over a job's
`JobChannel`, `ops` implements `SecureOps` on its secure arrays, `runtime` runs one job
in the party server's event loop, and `codec` replaces the pickle MPyC marshals arrays
with. `shamir` (one level up) recombines its output shares at the coordinator.
"""

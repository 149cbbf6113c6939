"""Differential privacy for released values: the distributed noise each party adds
(docs/privacy.md). A leaf: local plaintext per party, no secure math, no backend.

- `mechanism`: the distributed discrete Gaussian's calibration and accounting
  (zero-concentrated DP), with the collusion threshold each backend tolerates;
- `sampling`: each party's noise share, drawn exactly with a CSPRNG (OpenDP).
"""

"""Secure math built from `SecureOps`, for analyses and for the backends themselves.

Each function works on any backend through the operations of
`smpc_ehr.backends.base.SecureOps` and states its error bound in its docstring, in
units of the backend's `precision.product_error` where the error comes from roundings.

Layering: `backends.base` (the `SecureOps` interface) is below this package; the
concrete backends (`backends.mpyc`, `backends.crypten`) and the analyses are above
it, so a backend can use the one implementation here (MPyC's sqrt uses `roots`) and
hook its own faster step in (`SecureOps.pow2_normalize`, `SecureOps.parties_only`).

- `constants`: the bit widths counts are held in and divided by, Newton step counts;
- `division`: division by counts, fractions of a total, 1/a on [1, 2];
- `roots`: the inverse square root by Newton's iteration;
- `boolean`: AND along an axis (`all_of`) and OR over the parties (`any_party`);
- `linalg`: the inverse of a symmetric positive definite matrix (Newton-Schulz);
- `sigmoid`: the logistic function on secret values.
"""

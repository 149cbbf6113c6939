"""The secure operations analyses are written against, and the math built from them.

`ops` is the interface (`SecureOps`, its stated `Precision`, the secure program
type); the backends implement it. The other modules are functions of any `SecureOps`
that state their error bound, in units of the backend's `precision.product_error`
where the error comes from roundings. Analyses and the concrete backends both sit
above this package (MPyC's sqrt uses `roots`; a backend may hook a faster step in:
`SecureOps.pow2_normalize`, `SecureOps.parties_only`); it imports nothing of
smpc_ehr but errors.

- `ops`: `SecureOps`, `Precision`, `ApproxError`, `OutputShareSet`, `SecureProgram`;
- `constants`: the bit widths counts are held in and divided by, Newton step counts;
- `division`: division by counts, fractions of a total, 1/a on [1, 2];
- `roots`: the inverse square root by Newton's iteration;
- `boolean`: AND along an axis (`all_of`) and OR over the parties (`any_party`);
- `linalg`: the inverse of a symmetric positive definite matrix (Newton-Schulz);
- `sigmoid`: the logistic function on secret values.
"""

"""The one set of secure-math constants (bit widths of counts, Newton step counts)."""

COUNT_BITS = 30
"""Counts that are divided by (`division.divide_by_counts`, `fractions_of_total`), and
sums of them, stay below 2^COUNT_BITS (a billion); so do small-cell thresholds."""
COUNT_INPUT_BITS = 32
"""Bit length of the secret integers that count tables are input and released as
(totals below 2^31 patients). Not COUNT_BITS: that one bounds the fixed-point values
division works on (below MPyC's fixed-point limit of 2^31, with the room its search
for the leading bit needs); this one the exact secret integers of released counts."""
RECIPROCAL_STEPS = 3
"""Newton steps for 1/a on [1, 2]: relative error 1/17 -> 3.5e-3 -> 1.2e-5 -> 1.4e-10."""

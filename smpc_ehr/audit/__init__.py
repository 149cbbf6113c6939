"""A party's tamper-evident audit trail: a hash-chained JSON-lines log (chain.py),
signed heads of it exchanged with the other parties (heads.py), and the check of a
log against its own chain and the heads others hold (verify.py)."""

"""Backend self-test: every secure operation, on inputs that are public by construction.
Template: protocols/backend_selftest.toml.

Leakage (the template's `leakage` text, verbatim):
Nothing about patients: this protocol does not read any hospital's data. Each
hospital's inputs are generated from the public seed and its party index, so the
inputs themselves are public by construction; anyone can recompute them. The
coordinator (and the analyst it answers) learns the results of the fixed battery of
operations on those inputs; the hospitals see only random-looking shares.
"""

from smpc_ehr.analyses.diagnostics.selftest.analysis import SelftestAnalysis

ANALYSIS = SelftestAnalysis()

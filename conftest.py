"""pytest setup for the whole tree: the shared fixtures (real local federations, the
in-process one, synthetic data) serve tests/ and the tests that sit beside each analysis
package alike."""

pytest_plugins = [
    "tests.federations",
    "tests._stats_jobs",
    "tests._cells",
    "tests._inprocess",
    "tests._postgres",
]

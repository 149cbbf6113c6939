"""A whole federation on one machine, for demos, tests and trying things out."""

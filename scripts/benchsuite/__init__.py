"""The benchmarks of scripts/bench.py: `harness` holds what they share, each other module
declares one benchmark (its data, baseline, checks and columns). Method and previous
figures: docs/benchmarks.md."""

"""Operator tools: checking a config before starting, and health of a running federation."""

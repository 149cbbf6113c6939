"""Descriptive statistics and tests, one package per analysis."""

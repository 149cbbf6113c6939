"""Checks of the federation itself (the backend self-test), one package per analysis."""

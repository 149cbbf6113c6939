"""Secure math on backend-neutral secret values: each function states its error bound."""

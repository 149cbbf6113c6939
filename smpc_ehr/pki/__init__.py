"""The federation CA and per-identity certificates (see certs.py)."""

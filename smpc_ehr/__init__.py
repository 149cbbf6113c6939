"""smpc-ehr: secure multi-party computation over hospitals' electronic health records.

Each hospital runs one party process beside its data; parties secret-share values
derived from their records over mutual-TLS gRPC and compute jointly with an MPC
backend; a coordinator dispatches approved study protocols and sees only the
aggregate outputs. See docs/ and the README for the architecture.
"""

__version__ = "0.1.0"

"""The mesh: mutual-TLS gRPC channels, peer identity, per-job mailboxes and links.

Everything that touches sockets lives here; analyses and backends see only a
`JobChannel` (send bytes to a party, receive bytes from a party, per job and tag).
"""

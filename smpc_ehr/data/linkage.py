"""Keyed link tokens: what a party inputs to a deduplicated count instead of link ids.

token(id) = 1 + (the first 8 bytes of HMAC-SHA256(key, id as UTF-8), big-endian,
shifted right by one bit): an integer in 1..2^63, and 0 for a patient without a link
id. Without the key (which only the hospitals hold) a token says nothing about the
id; with it, the same id gives the same token at every hospital.

Why 63 bits are enough: two different ids give the same token with probability
2^-63 (HMAC-SHA256 as a pseudo-random function), so among the N tokens of one count
(at most parties x the padded bound, say 10 x 1,000) some pair collides with
probability at most N^2 / 2^64, about 5e-12; a collision would merge two patients
(the count one lower), nothing more. Tokens and the padding values (above 2^63) are
all below MPyC's field modulus (> 2^70 for the count's 32-bit integers), so two of
them are equal in the field exactly when they are equal as integers.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import numpy as np

from smpc_ehr.data.records import PartyData

TOKEN_BITS = 63
"""Tokens are in 1..2^TOKEN_BITS."""


def link_token(key: bytes, link_id: str) -> int:
    """The token of one link id (0 for an empty id: no link)."""
    if not link_id:
        return 0
    mac = hmac.new(key, link_id.encode("utf-8"), hashlib.sha256).digest()
    return (int.from_bytes(mac[:8], "big") >> (64 - TOKEN_BITS)) + 1


def link_tokens(key: bytes, link_ids: np.ndarray) -> np.ndarray:
    """The tokens of an array of link ids (uint64)."""
    return np.array([link_token(key, str(i)) for i in link_ids], dtype=np.uint64)


def with_link_tokens(data: PartyData, key: bytes) -> PartyData:
    """`data` with its link ids replaced by their tokens (none if it has no link ids):
    what the party keeps, so the ids themselves never reach an analysis."""
    if data.link_id is None:
        return data
    return replace(data, link_id=None, link_token=link_tokens(key, data.link_id))

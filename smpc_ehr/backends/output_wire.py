"""Output shares on the wire: the one place they are encoded (party) and decoded
(coordinator), as fixed-width little-endian ring or field elements."""

from __future__ import annotations

from smpc_ehr.errors import TransportError
from smpc_ehr.securemath.ops import OutputShareSet
from smpc_ehr.wire import common_pb2


def encode_output_shares(shares: OutputShareSet) -> common_pb2.OutputShares:
    """A party's output shares as the message it sends the coordinator."""
    width = max(1, (shares.modulus.bit_length() + 7) // 8)
    return common_pb2.OutputShares(
        scheme=shares.scheme,
        modulus=str(shares.modulus),
        point=shares.point,
        threshold=shares.degree,
        byte_length=width,
        values=b"".join(v.to_bytes(width, "little") for v in shares.values),
        count=len(shares.values),
        public_meta=shares.public_meta,
    )


def decode_output_shares(message: common_pb2.OutputShares) -> OutputShareSet:
    """The shares a party sent; TransportError if the message is malformed."""
    width, count = message.byte_length, message.count
    if width < 1 or count < 0 or len(message.values) != width * count:
        raise TransportError("malformed output shares: the byte count does not match")
    try:
        modulus = int(message.modulus)
    except ValueError:
        raise TransportError("malformed output shares: the modulus is not a number") from None
    return OutputShareSet(
        scheme=message.scheme,
        modulus=modulus,
        point=message.point,
        degree=message.threshold,
        values=[
            int.from_bytes(message.values[i * width : (i + 1) * width], "little")
            for i in range(count)
        ],
        public_meta=dict(message.public_meta),
    )

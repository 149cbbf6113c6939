"""The dealer protocol, shared by the dealer and CrypTen's dealer provider on each party.

`streams` expands a seed into the AES-256-CTR stream both ends draw from,
`correlations` says what each party draws for a request and what rank 0's correction
is, and `messages` converts requests and corrections to and from the wire. Pure torch
and protobuf: nothing here touches a socket (the party's gRPC client is
`transport.dealer_client`) or imports crypten.
"""

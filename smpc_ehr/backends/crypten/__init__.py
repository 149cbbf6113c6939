"""CrypTen (additive secret sharing over Z_2^64, any number of parties >= 2) over the mesh.

`compat` is the only module that imports crypten; `communicator` carries CrypTen's
traffic over a job's `JobChannel`; `provider` gets correlated randomness (Beaver
triples and the rest) from the federation's dealer. Nothing here is imported until a
CrypTen job runs, so a party that only runs MPyC never loads torch.
"""

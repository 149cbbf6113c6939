"""The dealer process (CrypTen backend only): correlated randomness from per-job seeds.

What it learns, and all it learns: the job ids, each job's ordered party list, and
the shapes (and op names and arguments) of the job's multiplications and
comparisons. It never receives data, shares of data or opened values: each party
sends it one fresh 32-byte seed per job, and rank 0 sends the sizes of what it needs.
From these it replays every party's random stream and returns to rank 0 the one
correction term that makes the Beaver triples (and the rest) consistent.

It is trusted not to collude with any party: with a party's view, its knowledge of
every party's randomness would unmask the other parties' shares.

sessions: per-job state and checks; service: the thin gRPC servicer;
server: `serve(config)` / `run(config)`.
"""

"""`bench.py randomness`: what issue 12's randomness hardening costs, old next to new.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from benchsuite.harness import log, worker_command, worker_env
from benchsuite.report import finish_figures, table

OLD_K, NEW_K = 30, 40
PARTIES = 3
STEPS = ("int compare", "fxp compare", "fxp product", "selftest")
PARTY_SECONDS = 600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    parser.add_argument("--compare", type=int, default=2_000, help="N (default 2000)")
    parser.add_argument("--selftest-size", type=int, default=8, help="S (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.compare, args.selftest_size, args.repeats = 500, 4, 1
    figures: dict[str, Any] = {"compare": args.compare, "selftest_size": args.selftest_size}
    figures["mpyc"] = mpyc_figures(args)
    figures["crypten"] = crypten_figures(args.compare, args.repeats)
    return finish_figures(figures, [])


# --- MPyC -----------------------------------------------------------------------------


def mpyc_figures(args: argparse.Namespace) -> dict[str, Any]:
    rounds: dict[int, list[dict[str, Any]]] = {OLD_K: [], NEW_K: []}
    for r in range(args.repeats):
        for k in (OLD_K, NEW_K) if r % 2 == 0 else (NEW_K, OLD_K):  # neither always first
            log(f"MPyC round {r + 1}/{args.repeats}, k = {k}")
            rounds[k].append(_mpyc_round(k, args.compare, args.selftest_size))
    rows: list[list[object]] = []
    out: dict[str, Any] = {}
    for step in STEPS:
        figures = {
            what: [statistics.median(x[what][step] for x in rounds[k]) for k in (OLD_K, NEW_K)]
            for what in ("seconds", "cpu", "bytes")
        }
        wall, cpu, sent = figures["seconds"], figures["cpu"], figures["bytes"]
        rows.append(
            [
                step,
                wall[0],
                wall[1],
                wall[1] / wall[0],
                cpu[0],
                cpu[1],
                cpu[1] / cpu[0],
                sent[0] / 1e6,
                sent[1] / 1e6,
                sent[1] / sent[0],
            ]
        )
        out[step] = {
            "wall_s": [round(v, 4) for v in wall],
            "wall_ratio": round(wall[1] / wall[0], 3),
            "cpu_s": [round(v, 4) for v in cpu],
            "cpu_ratio": round(cpu[1] / cpu[0], 3),
            "bytes": sent,
            "bytes_ratio": round(sent[1] / sent[0], 3),
        }
    fields = {k: rounds[k][0]["field_bits"] for k in rounds}
    print(
        f"MPyC, {PARTIES} parties on its own TCP (loopback), median of {args.repeats} rounds "
        f"(k = 30 and 40 alternating); wall: slowest party; CPU and bytes: sum of the parties.\n"
        f"Field bits (SecInt(32), SecFxp(64, 32)): k=30 {fields[OLD_K]}, k=40 {fields[NEW_K]}"
    )
    headers = [
        "step",
        "wall s 30",
        "wall s 40",
        "x",
        "CPU s 30",
        "CPU s 40",
        "x",
        "MB 30",
        "MB 40",
        "x",
    ]
    print(table(headers, rows) + "\n")
    out["field_bits"] = fields
    return out


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _mpyc_round(k: int, compare: int, size: int) -> dict[str, Any]:
    ports = _free_ports(PARTIES)
    procs = [
        subprocess.Popen(
            worker_command(
                "randomness",
                "--mpyc-party",
                str(i),
                "--k",
                str(k),
                "--ports",
                ",".join(map(str, ports)),
                "--compare",
                str(compare),
                "--size",
                str(size),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=worker_env(),
            text=True,
        )
        for i in range(PARTIES)
    ]
    results = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=PARTY_SECONDS)
            if p.returncode != 0:
                raise RuntimeError(f"an MPyC party (k = {k}) failed with status {p.returncode}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return {
        "seconds": {s: max(r["seconds"][s] for r in results) for s in STEPS},
        "cpu": {s: sum(r["cpu"][s] for r in results) for s in STEPS},
        "bytes": {s: sum(r["bytes"][s] for r in results) for s in STEPS},
        "field_bits": results[0]["field_bits"],
    }


def mpyc_party(index: int, k: int, ports: list[int], compare: int, size: int) -> None:
    """One MPyC party (a child process): prints its step times and bytes as JSON."""
    import numpy as np

    sys.argv = [
        sys.argv[0],
        *(a for p in ports for a in ("-P", f"127.0.0.1:{p}")),
        "-I",
        str(index),
        "-K",
        str(k),
        "--no-log",
    ]
    from mpyc.runtime import mpc

    from smpc_ehr.analyses.diagnostics.selftest.analysis import SelftestAnalysis
    from smpc_ehr.backends.mpyc.ops import MpycOps

    assert mpc.options.sec_param == k

    async def main() -> dict[str, Any]:
        await mpc.start()
        ops = MpycOps(mpc, bits=32)
        rng = np.random.default_rng(index)
        quarter = max(1, compare // 4)

        def sent() -> int:
            return sum(getattr(p.protocol, "nbytes_sent", 0) for p in mpc.parties)

        async def int_compare(n: int) -> None:
            mine = rng.integers(0, 30, n) if index == 0 else np.zeros(n, dtype=np.int64)
            await ops.reveal(ops.ge_public(ops.input_ints(mine.tolist(), 32)[0], 11))

        async def fxp_compare(n: int) -> None:
            x = ops.input_values(0, rng.uniform(-4, 4, n) if index == 0 else None, (n,))
            await ops.reveal(ops.ge_public(x, 0.5))

        async def fxp_product(n: int) -> None:
            x = ops.input_values(0, rng.uniform(-4, 4, n) if index == 0 else None, (n,))
            y = ops.input_values(1, rng.uniform(-4, 4, n) if index == 1 else None, (n,))
            await ops.reveal(x * y)

        async def selftest(n: int) -> None:
            program = SelftestAnalysis().flat_program([], {"seed": 7, "size": n}, 11)
            for secret in await program(ops):
                await ops.reveal(secret)

        steps = {
            "int compare": (int_compare, compare),
            "fxp compare": (fxp_compare, quarter),
            "fxp product": (fxp_product, quarter),
            "selftest": (selftest, size),
        }
        await int_compare(16)  # warm-up: types, fields, first rounds
        seconds, cpu, sent_bytes = {}, {}, {}
        for name, (step, n) in steps.items():
            await mpc.barrier()
            before, start, cpu_start = sent(), time.perf_counter(), time.process_time()
            await step(n)
            seconds[name], sent_bytes[name] = time.perf_counter() - start, sent() - before
            cpu[name] = time.process_time() - cpu_start
        fields = [t.field.order.bit_length() for t in (mpc.SecInt(32), ops._secfxp)]
        await mpc.shutdown()
        return {"seconds": seconds, "cpu": cpu, "bytes": sent_bytes, "field_bits": fields}

    result = mpc.run(main())
    print(json.dumps(result), flush=True)


# --- CrypTen --------------------------------------------------------------------------


PRZS_SIZE = 1_000_000


def crypten_figures(n: int, repeats: int) -> dict[str, Any]:
    from types import SimpleNamespace

    import torch

    from smpc_ehr.backends.crypten import backend, prng
    from smpc_ehr.backends.crypten.communicator import MeshCommunicator

    crypten = backend.crypten
    cpu = torch.device("cpu")
    channel = SimpleNamespace(parties=("solo",), my_index=0, me="solo")
    backend._ready = backend.MeshCommunicator(channel, 60.0)  # type: ignore[arg-type]
    assert isinstance(backend._ready, MeshCommunicator)
    crypten.cfg.mpc.provider = "TFP"  # one party in process: its "first party" is itself
    crypten.init()
    try:
        aes = {key: crypten.generators[key][cpu] for key in ("prev", "next")}

        def mersenne() -> dict[str, Any]:
            seed = int.from_bytes(os.urandom(8), "big") >> 1
            return {key: torch.Generator(device=cpu).manual_seed(seed) for key in aes}

        x = crypten.cryptensor(torch.linspace(-4, 4, n))
        primitives = crypten.mpc.primitives
        work = {
            f"PRZS of {PRZS_SIZE:,}": lambda: primitives.ArithmeticSharedTensor.PRZS((PRZS_SIZE,)),
            f"comparison of {n:,}": lambda: (x >= 0.5).get_plain_text(),
        }
        times: dict[str, dict[str, list[float]]] = {w: {"MT": [], "AES": []} for w in work}
        for _ in range(max(repeats, 5) + 1):  # the first round warms up
            for kind in ("MT", "AES"):
                for key, gen in (mersenne() if kind == "MT" else aes).items():
                    crypten.generators[key][cpu] = gen
                for name, fn in work.items():
                    start = time.process_time()  # CPU: this process, one torch thread
                    fn()
                    times[name][kind].append(time.process_time() - start)
        assert isinstance(crypten.generators["prev"][cpu], prng.StreamGenerator)
    finally:
        crypten.uninit()
    rows, out = [], {}
    for name, by_kind in times.items():
        mt, aes_s = (statistics.median(by_kind[k][1:]) for k in ("MT", "AES"))
        rows.append([name, mt * 1e3, aes_s * 1e3, aes_s / mt])
        out[name] = {"mt_s": round(mt, 5), "aes_s": round(aes_s, 5), "ratio": round(aes_s / mt, 3)}
    print(f"CrypTen PRZS generators, in process (one party), CPU, median of {max(repeats, 5)}")
    print(table(["work", "Mersenne CPU ms", "AES-CTR CPU ms", "x"], rows) + "\n")
    return out


def _party_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mpyc-party", type=int, required=True)
    p.add_argument("--k", type=int, required=True)
    p.add_argument("--ports", required=True)
    p.add_argument("--compare", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    a = p.parse_args(argv)
    mpyc_party(a.mpyc_party, a.k, [int(x) for x in a.ports.split(",")], a.compare, a.size)
    return 0


if __name__ == "__main__":
    sys.exit(_party_main(sys.argv[1:]))

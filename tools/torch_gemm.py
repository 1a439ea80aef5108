#!/usr/bin/python3
"""torch_gemm: PyTorch (CPU) peer of bench/wasm_gemm.ts, square fp32 products C = A @ B.

For each size and thread count (``torch.set_num_threads``), the same inputs as the benchmark
(uniform in [-0.5, 0.5) from the linear congruential generator of bench/wasm_gemm.ts, so that the
checksum ``C[0, 0] + C[n-1, n-1]`` can be compared), ``torch.matmul(a, b, out=c)`` is warmed up
and then timed in ``--rounds`` rounds of back-to-back products, each sized to take about
``--round-ms``; the best round counts (the machine may be shared).

Usage::

    /usr/bin/python3 tools/torch_gemm.py --sizes 256,512,1024 --threads 1,2 [--rounds 5]
        [--round-ms 250]

Prints one JSON object: ``{torch, rows: [{n, threads, gflops, ms, checksum}]}``.
"""

import argparse
import json
import time

import torch


def lcg(count, seed):
    """The generator of bench/wasm_gemm.ts: s = 1664525 s + 1013904223 mod 2^32, s / 2^32 - 0.5."""
    out = torch.empty(count, dtype=torch.float64)
    s = seed
    vals = []
    for _ in range(count):
        s = (1664525 * s + 1013904223) % 4294967296
        vals.append(s / 4294967296 - 0.5)
    out[:] = torch.tensor(vals, dtype=torch.float64)
    return out.to(torch.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--threads", default="1")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--round-ms", type=float, default=250.0)
    args = p.parse_args()
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        a = lcg(n * n, 1).reshape(n, n)
        b = lcg(n * n, 2).reshape(n, n)
        c = torch.empty(n, n)
        for threads in [int(x) for x in args.threads.split(",")]:
            torch.set_num_threads(threads)
            torch.matmul(a, b, out=c)
            t0 = time.perf_counter()
            torch.matmul(a, b, out=c)
            once = max(time.perf_counter() - t0, 1e-5)
            reps = max(1, min(1000, round(args.round_ms / 1000 / once)))
            best = float("inf")
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for _ in range(reps):
                    torch.matmul(a, b, out=c)
                best = min(best, (time.perf_counter() - t0) / reps)
            rows.append({
                "n": n,
                "threads": threads,
                "gflops": 2 * n**3 / best / 1e9,
                "ms": best * 1e3,
                "checksum": float(c[0, 0] + c[n - 1, n - 1]),
            })
    print(json.dumps({"torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()

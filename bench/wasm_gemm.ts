/**
 * GEMM throughput of regula's WebAssembly CPU backend (src/wasm/matmul.ts)
 * against PyTorch's CPU matmul at the same thread count, in one run: square
 * fp32 products C = A·B of 256, 512 and 1024, on one thread and on all
 * logical cores (`navigator.hardwareConcurrency`, `torch.set_num_threads`).
 *
 * Timing: warm-up first, then several rounds of back-to-back products, each
 * sized to take about `roundMs`; the best round counts (the machine may be
 * shared). PyTorch runs in a separate process (tools/torch_gemm.py, Debian's
 * /usr/bin/python3) on the same inputs (the same generator), after regula;
 * the checksum `C[0,0] + C[n-1,n-1]` of both is compared, and 32 entries of
 * regula's C are checked against float64 dot products. The target is
 * regula / PyTorch >= 0.5 at every size and thread count.
 *
 * NOTE: what "PyTorch CPU" means depends on its BLAS: Debian's python3-torch
 * (BLAS_INFO=generic) calls the system libblas.so.3, which is the netlib
 * reference BLAS unless libopenblas or MKL provides the alternative; the
 * table prints torch's BLAS so that a ratio is read against the right peer.
 *
 * Run: `deno run -A --config bench/deno.json bench/wasm_gemm.ts`
 * (`deno task bench --only wasm`).
 *
 * @module
 */

import { WasmRuntime } from "../src/wasm/runtime.ts";
import { matmul } from "../src/wasm/matmul.ts";

/** Options of {@linkcode benchWasmGemm}. */
export interface BenchWasmGemmOptions {
  /** Square sizes. Default [256, 512, 1024]. */
  sizes?: number[];
  /** Thread counts. Default [1, navigator.hardwareConcurrency] (one entry when that is 1). */
  threads?: number[];
  /** Timed rounds per implementation, size and thread count. Default 5. */
  rounds?: number;
  /** Target duration of one timed round in ms. Default 250. */
  roundMs?: number;
  /** Print the table. Default true. */
  print?: boolean;
}

/** The generator tools/torch_gemm.py reproduces: uniform in [-0.5, 0.5). */
function lcgData(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

interface TorchRow {
  n: number;
  threads: number;
  gflops: number;
  ms: number;
  checksum: number;
}

async function runTorch(
  sizes: number[],
  threads: number[],
  rounds: number,
  roundMs: number,
): Promise<{ torch: string; blas: string; rows: TorchRow[] }> {
  const script = decodeURIComponent(new URL("../tools/torch_gemm.py", import.meta.url).pathname);
  const python = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
  const out = await new Deno.Command(python, {
    args: [
      script,
      "--sizes",
      sizes.join(","),
      "--threads",
      threads.join(","),
      "--rounds",
      `${rounds}`,
      "--round-ms",
      `${roundMs}`,
    ],
    // OpenBLAS (where libblas.so.3 is OpenBLAS) has its own thread pool, which
    // torch.set_num_threads does not size here: pin it to the same count (one process per count).
    env: { OPENBLAS_NUM_THREADS: `${threads[0]}` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`tools/torch_gemm.py failed (exit ${out.code}): ${err}`);
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  const config = await new Deno.Command(python, {
    args: ["-c", "import torch; print(torch.__config__.show())"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const blas = /BLAS_INFO=([^,\s]+)/.exec(new TextDecoder().decode(config.stdout))?.[1] ?? "?";
  return { ...JSON.parse(text.split("\n").at(-1)!), blas };
}

/** Where the system's libblas.so.3 points (Debian's alternatives): "reference" or "OpenBLAS". */
export function libblas(): string {
  try {
    const target = Deno.realPathSync("/usr/lib/x86_64-linux-gnu/libblas.so.3");
    return /openblas/i.test(target) ? "OpenBLAS" : /blis/i.test(target) ? "BLIS" : "reference";
  } catch {
    return "?";
  }
}

/**
 * Runs the benchmark and returns one row per size and thread count.
 * @param options sizes, thread counts, rounds, printing
 * @returns rows `{ n, threads, regula, pytorch, "regula/pytorch", "max rel err" }` (GFLOP/s)
 */
export async function benchWasmGemm(
  options: BenchWasmGemmOptions = {},
): Promise<Record<string, unknown>[]> {
  const sizes = options.sizes ?? [256, 512, 1024];
  const cores = Math.max(1, navigator.hardwareConcurrency ?? 1);
  const threadCounts = options.threads ?? (cores > 1 ? [1, cores] : [1]);
  const rounds = options.rounds ?? 5;
  const roundMs = options.roundMs ?? 250;
  const print = options.print ?? true;
  const rows: Record<string, unknown>[] = [];
  const checksums = new Map<string, number>();
  for (const threads of threadCounts) {
    const rt = await WasmRuntime.create({ threads });
    if (print) console.log(`wasm: ${rt.description}`);
    try {
      for (const n of sizes) {
        const aData = lcgData(n * n, 1), bData = lcgData(n * n, 2);
        const a = rt.upload(aData, [n, n]), b = rt.upload(bData, [n, n]);
        const c = rt.empty([n, n]);
        matmul(rt, a, b, { out: c });
        const t0 = performance.now();
        matmul(rt, a, b, { out: c });
        const once = Math.max(performance.now() - t0, 0.01);
        const reps = Math.min(1000, Math.max(1, Math.round(roundMs / once)));
        let best = Infinity;
        for (let r = 0; r < rounds; r++) {
          const t1 = performance.now();
          for (let i = 0; i < reps; i++) matmul(rt, a, b, { out: c });
          best = Math.min(best, (performance.now() - t1) / reps);
        }
        const cData = c.toArray();
        let maxRel = 0;
        for (let s = 0; s < 32; s++) {
          const i = (s * 7919) % n, j = (s * 104729) % n;
          let want = 0, scale = 0;
          for (let p = 0; p < n; p++) {
            want += aData[i * n + p] * bData[p * n + j];
            scale += Math.abs(aData[i * n + p] * bData[p * n + j]);
          }
          maxRel = Math.max(maxRel, Math.abs(cData[i * n + j] - want) / scale);
        }
        checksums.set(`${n}/${threads}`, cData[0] + cData[n * n - 1]);
        rows.push({
          n,
          threads: rt.threads,
          regula: +(2 * n ** 3 / best / 1e6).toFixed(2),
          "regula ms": +best.toFixed(3),
          "max rel err": maxRel.toExponential(1),
        });
        for (const t of [a, b, c]) t.dispose();
      }
    } finally {
      rt.destroy();
    }
  }
  let torchNote = "";
  try {
    const runs = [];
    for (const th of threadCounts) runs.push(await runTorch(sizes, [th], rounds, roundMs));
    const torch = { ...runs[0], rows: runs.flatMap((r) => r.rows) };
    torchNote = `pytorch ${torch.torch} (BLAS_INFO=${torch.blas}, libblas.so.3 ${libblas()}) ` +
      `on the CPU`;
    for (const row of rows) {
      const t = torch.rows.find((r) => r.n === row.n && r.threads === row.threads);
      if (!t) continue;
      row.pytorch = +t.gflops.toFixed(2);
      row["regula/pytorch"] = +((row.regula as number) / t.gflops).toFixed(2);
      const mine = checksums.get(`${row.n}/${row.threads}`)!;
      row["checksum diff"] = Math.abs(mine - t.checksum).toExponential(1);
    }
  } catch (e) {
    torchNote = `pytorch unavailable: ${(e as Error).message}`;
  }
  if (print) {
    console.log(torchNote);
    console.log("GFLOP/s (best of rounds), C = A·B, square fp32, WebAssembly SIMD vs PyTorch CPU:");
    console.table(rows);
  }
  return rows;
}

if (import.meta.main) {
  await benchWasmGemm();
}

/**
 * General matrix multiply on the CPU (WebAssembly SIMD), the twin of
 * src/ops/matmul.ts with the same contract, options, shape rules and error
 * messages:
 *
 * `C = act(alpha · op(A) op(B) + bias + beta · C_old)`
 *
 * The kernel is `sgemm` of wasm/assembly/gemm.ts (packed panels, a 4 × 8
 * register tile of f32x4 accumulators; see its header for the blocking).
 *
 * Threading plan: one product is split across the runtime's threads by rows
 * of C (blocks of a multiple of 4 rows, the register tile's height), or by
 * columns (multiples of 8) when C has too few rows to give every thread a
 * block. Never along K, so each element is the same sum in the same order
 * whatever the split: results are bitwise equal for any thread count. Products
 * under {@linkcode PARALLEL_MIN_MACS} multiply-adds run on the calling thread
 * (waking workers costs more than they save). A batched product runs item by
 * item, each item split as above.
 *
 * @module
 */

import { type MatmulActivation, planMatmul } from "../ops/_matmul_plan.ts";
import type { WasmTensor } from "./tensor.ts";
import type { WasmRuntime } from "./runtime.ts";

export type { MatmulActivation };

/** Rows of the kernel's register tile: row blocks of a split are multiples of it. */
const MR = 6;
/** Columns of the kernel's register tile: column blocks of a split are multiples of it. */
const NR = 8;

/**
 * Products with fewer multiply-adds than this run on one thread: below it,
 * waking the workers (tens of microseconds) costs more than they save.
 */
export const PARALLEL_MIN_MACS: number = 1 << 17;

/** Options of {@linkcode matmul} (those of the WebGPU `matmul`, less `tiling`). */
export interface WasmMatmulOptions {
  /** Use Aᵀ: A is stored (K, M) (or (batch, K, M)). Default false. */
  transA?: boolean;
  /** Use Bᵀ: B is stored (N, K) (or (batch, N, K)). Default false. */
  transB?: boolean;
  /** Scale of the product. Default 1. */
  alpha?: number;
  /** Scale of the previous contents of `out`; nonzero requires `out`. Default 0. */
  beta?: number;
  /** (N,) f32, added to every row after the product. */
  bias?: WasmTensor;
  /** Applied last, to the whole sum. Default "none". */
  activation?: MatmulActivation;
  /** Negative slope of "leaky_relu". Default 0.01 (PyTorch's default). */
  slope?: number;
  /** (M, N) or (batch, M, N) f32 destination; must not overlap A, B or bias. */
  out?: WasmTensor;
  /** Most threads to split this product across. Default: all of the runtime's. */
  threads?: number;
}

function overlaps(x: WasmTensor, y: WasmTensor): boolean {
  const x0 = x.ptr, y0 = y.ptr;
  return x0 < y0 + Math.max(y.byteLength, 1) && y0 < x0 + Math.max(x.byteLength, 1);
}

/**
 * How {@linkcode matmul} splits an (m, n, k) product across `threads` threads.
 * @returns one `[i0, rows, j0, cols]` block of C per thread that gets work
 */
export function splitGemm(
  m: number,
  n: number,
  k: number,
  threads: number,
): [number, number, number, number][] {
  const t = m * n * Math.max(k, 1) < PARALLEL_MIN_MACS ? 1 : threads;
  const parts: [number, number, number, number][] = [];
  if (t > 1 && m >= MR * t) {
    const step = Math.ceil(m / t / MR) * MR;
    for (let i = 0; i < m; i += step) parts.push([i, Math.min(step, m - i), 0, n]);
  } else if (t > 1 && n >= NR * t) {
    const step = Math.ceil(n / t / NR) * NR;
    for (let j = 0; j < n; j += step) parts.push([0, m, j, Math.min(step, n - j)]);
  } else {
    parts.push([0, m, 0, n]);
  }
  return parts;
}

/**
 * `C = act(alpha · op(A) op(B) + bias + beta · C_old)`, with op(X) = X or Xᵀ,
 * on the CPU: the same contract as the WebGPU `matmul` (src/ops/matmul.ts).
 *
 * Shapes (f32): A (M, K), or (K, M) with `transA`; B (K, N), or (N, K) with
 * `transB`. Either may carry a leading batch dimension (batch, ·, ·); a 2-D
 * operand is then shared by every batch item, and C is (batch, M, N). Any
 * M, N, K ≥ 0 works; K = 0 gives `act(bias + beta · C_old)`. With beta = 0
 * the old contents of `out` are never read (NaN there is ignored).
 *
 * Synchronous: the result is in `out` when the call returns.
 *
 * @param rt runtime
 * @param a (M, K) | (K, M) | (batch, M, K) | (batch, K, M) f32
 * @param b (K, N) | (N, K) | (batch, K, N) | (batch, N, K) f32
 * @param opts transposes, alpha/beta, bias (N,), activation, out, threads
 * @returns `opts.out` if given, else a new (M, N) or (batch, M, N) tensor that
 *   the caller owns and must dispose
 * @throws Error naming both shapes when they disagree, or when a tensor is
 *   disposed, not f32, or overlaps another; naming the tensor and its size
 *   when the memory cannot hold the result
 * @example
 * ```ts
 * const rt = await WasmRuntime.create({ threads: 1 });
 * const x = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]); // (B, in)
 * const w = rt.upload(new Float32Array([1, 0, 0, 0, 1, 0]), [2, 3]); // (out, in)
 * const bias = rt.upload(new Float32Array([0.5, -0.5]), [2]);
 * const y = matmul(rt, x, w, { transB: true, bias, activation: "relu" }); // (2, 2)
 * console.log(y.toArray()); // [1.5, 1.5, 4.5, 4.5]
 * rt.destroy();
 * ```
 */
export function matmul(
  rt: WasmRuntime,
  a: WasmTensor,
  b: WasmTensor,
  opts: WasmMatmulOptions = {},
): WasmTensor {
  const { transA, transB, alpha, beta, slope, act, m, n, k, batchA, batchB, batch, outShape } =
    planMatmul(a, b, opts, { shares: overlaps, word: "memory" });
  const threads = Math.min(rt.threads, opts.threads ?? rt.threads);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`matmul: threads must be a positive integer, got ${opts.threads}`);
  }

  const bias = opts.bias;
  const out = opts.out ?? rt.empty(outShape, "f32", "matmul.out");
  if (m === 0 || n === 0 || batch === 0) return out;

  runSgemm(rt, {
    transA,
    transB,
    m,
    n,
    k,
    batch,
    alpha,
    beta,
    act,
    slope,
    a: a.ptr,
    sa: batchA ? m * k : 0,
    b: b.ptr,
    sb: batchB ? k * n : 0,
    c: out.ptr,
    sc: m * n,
    bias: bias ? bias.ptr : 0,
    threads,
  });
  return out;
}

/**
 * One (batched) `sgemm` call, in the terms of shaders/matmul.wgsl: pointers are byte offsets
 * into the runtime's memory, strides `sa`, `sb`, `sc` count elements between batch items (0
 * shares an operand), `act` is the epilogue's activation code.
 */
export interface GemmCall {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  batch: number;
  alpha: number;
  beta: number;
  act: number;
  slope: number;
  a: number;
  sa: number;
  b: number;
  sb: number;
  c: number;
  sc: number;
  /** 0: no bias. */
  bias: number;
  threads: number;
}

/**
 * Runs a checked product: each batch item split by {@linkcode splitGemm} across threads.
 * Shared by {@linkcode matmul} and the twin of the WGSL matmul kernel (src/wasm/kernels/).
 * @param rt runtime whose memory the pointers address
 * @param g the call, already validated
 */
export function runSgemm(rt: WasmRuntime, g: GemmCall): void {
  const { transA, transB, m, n, k } = g;
  if (m === 0 || n === 0 || g.batch === 0) return;
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const parts = splitGemm(m, n, k, Math.min(g.threads, rt.threads));
  const args: number[][] = parts.map(() => []);
  for (let z = 0; z < g.batch; z++) {
    const pa = g.a + 4 * z * g.sa;
    const pb = g.b + 4 * z * g.sb;
    const pc = g.c + 4 * z * g.sc;
    for (let p = 0; p < parts.length; p++) {
      const [i0, rows, j0, cols] = parts[p];
      args[p] = [
        transA ? 1 : 0,
        transB ? 1 : 0,
        rows,
        cols,
        k,
        g.alpha,
        pa + 4 * (transA ? i0 : i0 * lda),
        lda,
        pb + 4 * (transB ? j0 * ldb : j0),
        ldb,
        g.beta,
        pc + 4 * (i0 * n + j0),
        n,
        g.bias ? g.bias + 4 * j0 : 0,
        g.act,
        g.slope,
        rt.scratch(p),
      ];
    }
    rt.parallel("sgemm", args);
  }
}

/**
 * The backend-independent half of `matmul`: option defaults, the checks on
 * A, B, bias and out with their messages, and the product's sizes. The WebGPU
 * `matmul` (src/ops/matmul.ts) and its WebAssembly twin (src/wasm/matmul.ts)
 * both call {@linkcode planMatmul}, so the two accept and refuse the same
 * inputs with the same words; each then launches its own kernel.
 *
 * Imports only the shape formatter, so either backend may use it.
 *
 * @module
 */

import { fmtShape } from "../backend.ts";

/** Activations the epilogue can apply. */
export type MatmulActivation = "none" | "relu" | "tanh" | "sigmoid" | "leaky_relu";

/** The epilogue's activation codes (ACT in shaders/matmul.wgsl and wasm/assembly/gemm.ts). */
export const MATMUL_ACT_CODE: Readonly<Record<MatmulActivation, number>> = {
  none: 0,
  relu: 1,
  tanh: 2,
  sigmoid: 3,
  leaky_relu: 4,
};

/** What the checks read of a tensor, on either backend. */
export interface MatmulOperand {
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly disposed: boolean;
  describe(): string;
}

/** The options both backends share. */
export interface MatmulPlanOptions<T extends MatmulOperand> {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: T;
  activation?: MatmulActivation;
  slope?: number;
  out?: T;
}

/** How `out` may not alias an input on a backend: the test and the word for the message. */
export interface MatmulAliasing<T> {
  /** True when `t` and `out` share storage. */
  shares(t: T, out: T): boolean;
  /** "buffer" (WebGPU) or "memory" (Wasm), as in "out must not share its buffer with A". */
  word: string;
}

/** The checked options and the product's sizes. */
export interface MatmulPlan {
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  slope: number;
  /** {@linkcode MATMUL_ACT_CODE} of the activation. */
  act: number;
  m: number;
  n: number;
  k: number;
  /** Batch size of A and of B, 0 for a 2-D operand. */
  batchA: number;
  batchB: number;
  batch: number;
  /** (M, N), or (batch, M, N) when either operand is batched. */
  outShape: number[];
}

function describe(what: string, t: MatmulOperand): string {
  return `${what} ${fmtShape(t.shape)}`;
}

function checkUsable(what: string, t: MatmulOperand): void {
  if (t.disposed) throw new Error(`matmul: ${what} (${t.describe()}) was used after dispose()`);
  if (t.dtype !== "f32") {
    throw new Error(`matmul: ${what} ${fmtShape(t.shape)} must be f32, got ${t.dtype}`);
  }
  if (t.shape.length !== 2 && t.shape.length !== 3) {
    throw new Error(`matmul: ${what} ${fmtShape(t.shape)} must be 2-D or batched 3-D`);
  }
}

function sameShape(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/**
 * Checks a product `act(alpha · op(A) op(B) + bias + beta · C_old)` and sizes it.
 * @param a (M, K) | (K, M) | (batch, M, K) | (batch, K, M) f32
 * @param b (K, N) | (N, K) | (batch, K, N) | (batch, N, K) f32
 * @param opts the product's options
 * @param aliasing how this backend tells that `out` overlaps an input
 * @returns the options with their defaults and the sizes
 * @throws Error naming both shapes when they disagree, or when a tensor is disposed, not f32,
 *   or aliases `out`; for an unknown activation, a non-finite alpha/beta/slope, or beta ≠ 0
 *   without `out`
 */
export function planMatmul<T extends MatmulOperand>(
  a: T,
  b: T,
  opts: MatmulPlanOptions<T>,
  aliasing: MatmulAliasing<T>,
): MatmulPlan {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const alpha = opts.alpha ?? 1;
  const beta = opts.beta ?? 0;
  const activation = opts.activation ?? "none";
  const slope = opts.slope ?? 0.01;
  checkUsable("A", a);
  checkUsable("B", b);
  const act = MATMUL_ACT_CODE[activation];
  if (act === undefined) {
    throw new Error(
      `matmul: unknown activation '${activation}' (use ${Object.keys(MATMUL_ACT_CODE).join(", ")})`,
    );
  }
  for (const [name, v] of [["alpha", alpha], ["beta", beta], ["slope", slope]] as const) {
    if (!Number.isFinite(v)) throw new Error(`matmul: ${name} must be a finite number, got ${v}`);
  }

  const batchA = a.shape.length === 3 ? a.shape[0] : 0;
  const batchB = b.shape.length === 3 ? b.shape[0] : 0;
  const [a0, a1] = a.shape.slice(-2);
  const [b0, b1] = b.shape.slice(-2);
  const [m, ka] = transA ? [a1, a0] : [a0, a1];
  const [kb, n] = transB ? [b1, b0] : [b0, b1];
  const pair = `${describe("A", a)} (transA=${transA}) and ${describe("B", b)} (transB=${transB})`;
  if (ka !== kb) throw new Error(`matmul: ${pair} disagree on K (${ka} vs ${kb})`);
  if (batchA && batchB && batchA !== batchB) {
    throw new Error(`matmul: ${pair} disagree on the batch size (${batchA} vs ${batchB})`);
  }
  const batched = a.shape.length === 3 || b.shape.length === 3;
  const batch = Math.max(batchA, batchB, 1);
  const outShape = batched ? [batch, m, n] : [m, n];

  const bias = opts.bias;
  if (bias) {
    if (bias.disposed) {
      throw new Error(`matmul: bias (${bias.describe()}) was used after dispose()`);
    }
    if (bias.dtype !== "f32" || bias.shape.length !== 1 || bias.shape[0] !== n) {
      throw new Error(
        `matmul: bias ${fmtShape(bias.shape)} ${bias.dtype} must be f32[${n}] for ${pair}`,
      );
    }
  }
  const out = opts.out;
  if (out) {
    if (out.disposed) throw new Error(`matmul: out (${out.describe()}) was used after dispose()`);
    if (out.dtype !== "f32" || !sameShape(out.shape, outShape)) {
      throw new Error(
        `matmul: out ${fmtShape(out.shape)} ${out.dtype} does not match the result of ${pair}: ` +
          `f32${fmtShape(outShape)}`,
      );
    }
    for (const [name, t] of [["A", a], ["B", b], ["bias", bias]] as const) {
      if (t && aliasing.shares(t, out)) {
        throw new Error(
          `matmul: out must not share its ${aliasing.word} with ${name} (${t.describe()})`,
        );
      }
    }
  } else if (beta !== 0) {
    throw new Error(`matmul: beta = ${beta} accumulates into C_old, so opts.out must be given`);
  }
  return {
    transA,
    transB,
    alpha,
    beta,
    slope,
    act,
    m,
    n,
    k: ka,
    batchA,
    batchB,
    batch,
    outShape,
  };
}

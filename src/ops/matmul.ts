/**
 * General matrix multiply on the GPU with a fused epilogue (the BLAS `sgemm`
 * contract plus bias and activation):
 *
 * `C = act(alpha · op(A) op(B) + bias + beta · C_old)`
 *
 * This is the workhorse of Linear layers: forward `y = x Wᵀ + b`
 * (`transB`), input gradient `dx = dy W`, and weight gradient accumulation
 * `dW += dyᵀ x` (`transA`, `beta: 1`, `out: dW`).
 *
 * The kernel (shaders/matmul.wgsl) is specialised per call shape through WGSL
 * override constants: transposes, vec4 alignment, epilogue and tiling each
 * select their own cached pipeline.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import { type MatmulActivation, planMatmul } from "./_matmul_plan.ts";
import src from "../../shaders/matmul.wgsl" with { type: "text" };

const MATMUL: Kernel = { name: "matmul", code: src };

export type { MatmulActivation };

/**
 * How the kernel tiles the work (see the threading plan in shaders/matmul.wgsl).
 * A workgroup of `tx × ty` threads computes a `(4·rm·ty) × (4·rn·tx)` block of C.
 */
export interface MatmulTiling {
  /** Stage operand slabs in workgroup memory (GPUs) or read them directly (CPU adapters). */
  shared: boolean;
  /** Threads per workgroup along N. */
  tx: number;
  /** Threads per workgroup along M. */
  ty: number;
  /** 4×4 register blocks per thread along M (1..4). */
  rm: number;
  /** 4×4 register blocks per thread along N (1..4). */
  rn: number;
  /** Depth of a staged K slab (shared only; multiple of 4). */
  bk: number;
}

/** Options of {@linkcode matmul}. */
export interface MatmulOptions {
  /** Use Aᵀ: A is stored (K, M) (or (batch, K, M)). Default false. */
  transA?: boolean;
  /** Use Bᵀ: B is stored (N, K) (or (batch, N, K)). Default false. */
  transB?: boolean;
  /** Scale of the product. Default 1. */
  alpha?: number;
  /** Scale of the previous contents of `out`; nonzero requires `out`. Default 0. */
  beta?: number;
  /** (N,) f32, added to every row after the product. */
  bias?: Tensor;
  /** Applied last, to the whole sum. Default "none". */
  activation?: MatmulActivation;
  /** Negative slope of "leaky_relu". Default 0.01 (PyTorch's default). */
  slope?: number;
  /** (M, N) or (batch, M, N) f32 destination; must not share a buffer with A, B or bias. */
  out?: Tensor;
  /** Override the tiling chosen for this device (benchmarks, tuning). */
  tiling?: Partial<MatmulTiling>;
}

/**
 * The tiling {@linkcode matmul} uses for an output of `batch × m × n` on this device.
 *
 * CPU adapters (llvmpipe): no staging, 8 lanes along N, a 16×16 register tile.
 * GPUs: workgroup-memory slabs of 64 × 128 (32 × 8 threads, 8 × 4 outputs
 * each) once there are enough of them to fill a large GPU, else 64 × 64
 * (16 × 16 threads, 4 × 4 outputs each) for more, smaller workgroups. Both
 * choices are the fastest measured with bench/matmul.ts and a tiling sweep on
 * Mesa 22 llvmpipe and on an NVIDIA H100 (Vulkan, Deno 2.9).
 * @param rt runtime (its adapter decides)
 * @param m rows of C
 * @param n columns of C
 * @param batch batch size
 * @returns the tiling
 */
export function matmulTiling(rt: Backend, m: number, n: number, batch = 1): MatmulTiling {
  if (rt.isCpuAdapter) return { shared: false, tx: 8, ty: 2, rm: 4, rn: 4, bk: 4 };
  const wide = Math.ceil(m / 64) * Math.ceil(n / 128) * batch;
  if (wide >= 128) return { shared: true, tx: 32, ty: 8, rm: 2, rn: 1, bk: 16 };
  return { shared: true, tx: 16, ty: 16, rm: 1, rn: 1, bk: 16 };
}

/**
 * A view of `t` whose buffer length is a multiple of 16 bytes, so that the
 * kernel's vec4 bindings reach every element (pool buffers of 5-6 floats are
 * 24 bytes). Returns `t` itself when no copy is needed.
 */
function vec4Safe(rt: Backend, t: Tensor): Tensor {
  if (t.capacity % 16 === 0) return t;
  const padded = rt.empty([Math.ceil(t.size / 4) * 4], "f32", "matmul.pad");
  rt.copy(t, padded);
  return padded;
}

/**
 * `C = act(alpha · op(A) op(B) + bias + beta · C_old)`, with op(X) = X or Xᵀ.
 *
 * Shapes (f32): A (M, K), or (K, M) with `transA`; B (K, N), or (N, K) with
 * `transB`. Either may carry a leading batch dimension (batch, ·, ·); a 2-D
 * operand is then shared by every batch item, and C is (batch, M, N). Any
 * M, N, K ≥ 0 works; K = 0 gives `act(bias + beta · C_old)`.
 *
 * @param rt runtime
 * @param a (M, K) | (K, M) | (batch, M, K) | (batch, K, M) f32
 * @param b (K, N) | (N, K) | (batch, K, N) | (batch, N, K) f32
 * @param opts transposes, alpha/beta, bias (N,), activation, out
 * @returns `opts.out` if given, else a new (M, N) or (batch, M, N) tensor that
 *   the caller owns and must dispose
 * @throws Error naming both shapes when they disagree, or when a tensor is
 *   disposed, not f32, or aliases another
 * @example
 * ```ts
 * const rt = await Runtime.create();
 * const x = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]); // (B, in)
 * const w = rt.upload(new Float32Array([1, 0, 0, 0, 1, 0]), [2, 3]); // (out, in)
 * const bias = rt.upload(new Float32Array([0.5, -0.5]), [2]);
 * const y = matmul(rt, x, w, { transB: true, bias, activation: "relu" }); // (2, 2)
 * console.log(await y.read()); // [1.5, 1.5, 4.5, 4.5]
 * y.dispose();
 * ```
 */
export function matmul(rt: Backend, a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const { transA, transB, alpha, beta, slope, act, m, n, k, batchA, batchB, batch, outShape } =
    planMatmul(a, b, opts, { shares: (t, out) => t.storage === out.storage, word: "buffer" });
  const out = opts.out ?? rt.empty(outShape, "f32", "matmul.out");
  if (m === 0 || n === 0 || batch === 0) return out;

  const t = { ...matmulTiling(rt, m, n, batch), ...opts.tiling };
  checkTiling(t);
  const sa = batchA ? m * k : 0;
  const sb = batchB ? k * n : 0;
  const alignA = (transA ? m % 4 === 0 : k % 4 === 0) && sa % 4 === 0;
  const alignB = (transB ? k % 4 === 0 : n % 4 === 0) && sb % 4 === 0;
  const pa = vec4Safe(rt, a);
  const pb = vec4Safe(rt, b);
  rt.dispatch(MATMUL, {
    bindings: [pa, pb, out, opts.bias ?? pa],
    params: { m, n, k, sa, sb, sc: m * n, alpha, beta, slope },
    workgroups: [Math.ceil(n / (4 * t.rn * t.tx)), Math.ceil(m / (4 * t.rm * t.ty)), batch],
    constants: {
      TRANS_A: transA ? 1 : 0,
      TRANS_B: transB ? 1 : 0,
      ALIGN_A: alignA ? 1 : 0,
      ALIGN_B: alignB ? 1 : 0,
      SHARED: t.shared ? 1 : 0,
      TX: t.tx,
      TY: t.ty,
      RM: t.rm,
      RN: t.rn,
      BK: t.bk,
      ACT: act,
      HAS_BIAS: opts.bias ? 1 : 0,
    },
  });
  if (pa !== a) pa.dispose();
  if (pb !== b) pb.dispose();
  return out;
}

function checkTiling(t: MatmulTiling): void {
  const ok = [t.tx, t.ty, t.rm, t.rn, t.bk].every((v) => Number.isInteger(v) && v > 0) &&
    t.rm <= 4 && t.rn <= 4 && t.bk % 4 === 0;
  if (!ok) {
    throw new Error(
      `matmul: invalid tiling ${JSON.stringify(t)} (rm, rn in 1..4; bk a multiple of 4)`,
    );
  }
}

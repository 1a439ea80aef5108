/**
 * Singular value decomposition on the GPU by one-sided Jacobi (Hestenes), and the singular value
 * clipping of hard SVB built on it. See `shaders/svd.wgsl` for the math, the round-robin pair
 * ordering and the threading plan (one dispatch per round, one workgroup per pair).
 *
 * Why one-sided Jacobi: it needs only dot products and plane rotations of rows (no
 * bidiagonalisation), it parallelises over the disjoint pairs of a round, and it computes small
 * singular values to high relative accuracy (Demmel & Veselić 1992). It works on the smaller side
 * (p = min(m, n) rows of length max(m, n)), so a (512, 4608) conv weight costs 511 rounds of 256
 * pairs per sweep.
 *
 * Nothing is read back: a fixed number of sweeps is recorded and the rounds after convergence
 * return at once (a flag on the GPU).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import { matmul } from "../ops/matmul.ts";
import svdSrc from "../../shaders/svd.wgsl" with { type: "text" };

const k = (entry: string): Kernel => ({ name: `svd.${entry}`, code: svdSrc, entry });
const K = {
  transpose: k("transpose_main"),
  init: k("init_main"),
  rotate: k("rotate_main"),
  sweepEnd: k("sweep_end_main"),
  finish: k("finish_main"),
  sortRows: k("sort_rows_main"),
};

/** Options of {@linkcode svd} and {@linkcode clipSingularValues}. */
export interface JacobiOptions {
  /**
   * Sweeps recorded (each p_e − 1 rounds); the iteration stops earlier, on the GPU, after a sweep
   * that rotates nothing. Default 12 (f32 matrices up to 512 × 4608 converge in fewer; see
   * tests/svd_test.ts).
   */
  maxSweeps?: number;
  /**
   * A pair is left alone when `|a_i·a_j| ≤ tol · ||a_i|| ||a_j||`. Default 1e-6 (a few f32 ulps
   * times the rounding growth of a dot product).
   */
  tol?: number;
}

/** Result of {@linkcode svd}: `W = utᵀ · diag(s) · vt`. The caller disposes it. */
export interface SvdResult {
  /** (p,) f32 singular values, descending, p = min(m, n). */
  s: Tensor;
  /** (p, m) f32 left singular vectors as rows (Uᵀ). */
  ut: Tensor;
  /** (p, n) f32 right singular vectors as rows (Vᵀ, as torch.linalg.svd's `Vh`). */
  vt: Tensor;
  /** (4,) u32 [converged (0|1), -, sweeps run, -] for diagnostics. */
  info: Tensor;
  /** Frees the four tensors. */
  dispose(): void;
}

/** The storage bindings of shaders/svd.wgsl, in binding order. */
const SLOTS = ["src", "sv", "work", "rot", "sout", "flags"] as const;
type Slots = Partial<Record<typeof SLOTS[number], Tensor>>;

function launch(
  rt: Backend,
  kernel: Kernel,
  b: Slots,
  params: Partial<Record<keyof typeof PARAMS0, number>>,
  workgroups: readonly number[],
  constants?: Record<string, number>,
): void {
  rt.dispatch(kernel, {
    bindings: SLOTS.map((s, i) => b[s] ?? rt.placeholder(i)),
    params: { ...PARAMS0, ...params },
    workgroups,
    constants,
  });
}

const PARAMS0 = { p: 0, pe: 0, len: 0, round: 0, m: 0, n: 0, mode: 0, tol: 0, lo: 0, hi: 0 };

/** The (m, n) matrix view of a weight: (out, in) or (out, in, kh, kw) → (out, in·kh·kw). */
export function matrixView(op: string, w: Tensor): Tensor {
  if (w.dtype !== "f32") throw new Error(`${op}: ${w.describe()} must be f32`);
  if (w.disposed) throw new Error(`${op}: ${w.describe()} was used after dispose()`);
  if (w.shape.length < 2) {
    throw new Error(
      `${op}: ${w.describe()} is not a matrix; expected (out, in) or (out, in, kh, kw)`,
    );
  }
  const m = w.shape[0];
  const n = w.size / Math.max(m, 1);
  if (m === 0 || n === 0) throw new Error(`${op}: ${w.describe()} is empty`);
  return w.shape.length === 2 ? w : w.reshape([m, n]);
}

interface Jacobi {
  /** (p, len) rows after rotation. */
  work: Tensor;
  /** (p, p) accumulated rotations. */
  rot: Tensor;
  flags: Tensor;
  m: number;
  n: number;
  p: number;
  len: number;
  /** True when the rows of work are columns of W (m > n). */
  transposed: boolean;
}

function jacobi(rt: Backend, op: string, w2: Tensor, opts: JacobiOptions): Jacobi {
  const maxSweeps = opts.maxSweeps ?? 12;
  const tol = opts.tol ?? 1e-6;
  if (!(Number.isInteger(maxSweeps) && maxSweeps >= 1)) {
    throw new Error(`${op}: maxSweeps must be a positive integer, got ${maxSweeps}`);
  }
  if (!(tol > 0 && tol < 1)) throw new Error(`${op}: tol must be in (0, 1), got ${tol}`);
  const [m, n] = w2.shape;
  const transposed = m > n;
  const p = Math.min(m, n), len = Math.max(m, n);
  const work = rt.empty([p, len], "f32", `${op} work`);
  if (transposed) {
    launch(rt, K.transpose, { src: w2, work }, { m, n }, rt.grid(m * n, 256));
  } else {
    rt.copy(w2, work);
  }
  const rot = rt.empty([p, p], "f32", `${op} rotations`);
  const flags = rt.empty([4], "u32", `${op} flags`);
  launch(rt, K.init, { rot, flags }, { p }, rt.grid(p * p, 256));
  const pe = p + (p % 2);
  // Workgroup size of a pair: CPU adapters pay per barrier and per invocation (32 is fastest on
  // llvmpipe, measured); GPUs want wide workgroups on long rows.
  const rw = rt.isCpuAdapter ? 32 : len >= 1024 ? 256 : 64;
  if (p > 1) {
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      for (let r = 0; r < pe - 1; r++) {
        launch(rt, K.rotate, { work, rot, flags }, { p, pe, len, round: r, tol }, [pe / 2], {
          RW: rw,
        });
      }
      launch(rt, K.sweepEnd, { flags }, {}, [1]);
    }
  }
  return { work, rot, flags, m, n, p, len, transposed };
}

/**
 * Thin SVD `W = U diag(s) Vᵀ` of a matrix (a conv weight is read as (out, in·kh·kw)), by
 * one-sided Jacobi on the GPU in f32.
 * @param rt runtime
 * @param w (m, n) or (m, c, kh, kw) f32; not modified
 * @param opts maxSweeps (default 12), tol (default 1e-6)
 * @returns `s` (p,), `ut` (p, m), `vt` (p, n), `info` (4,) u32, p = min(m, n), singular values
 *   descending; new tensors the caller disposes (`result.dispose()`)
 * @throws Error for a non-matrix, empty or non-f32 input
 * @example
 * ```ts
 * const { s, ut, vt, dispose } = svd(rt, fc1.weight); // (120, 400): s (120,), ut (120, 120)
 * console.log(await s.read());
 * dispose();
 * ```
 */
export function svd(rt: Backend, w: Tensor, opts: JacobiOptions = {}): SvdResult {
  const w2 = matrixView("svd", w);
  const j = jacobi(rt, "svd", w2, opts);
  const { p, len } = j;
  const sRaw = rt.empty([p], "f32", "svd raw s");
  launch(
    rt,
    K.finish,
    { work: j.work, rot: j.rot, sout: sRaw },
    { p, len, mode: 0 },
    rt.grid(p, 1),
  );
  const s = rt.empty([p], "f32", "svd s");
  const uhat = rt.empty([p, len], "f32", "svd rows");
  const rsorted = rt.empty([p, p], "f32", "svd rotations");
  const sort = (src: Tensor, dst: Tensor, rowLen: number) =>
    launch(rt, K.sortRows, { src, sv: sRaw, work: dst }, { p, len: rowLen }, rt.grid(p, 1));
  sort(sRaw, s, 1);
  sort(j.work, uhat, len);
  sort(j.rot, rsorted, p);
  j.work.dispose();
  j.rot.dispose();
  sRaw.dispose();
  // m ≤ n: W = Rᵀ diag(s) Û, so Uᵀ = R, Vᵀ = Û. m > n: Wᵀ = Rᵀ diag(s) Û, so Uᵀ = Û, Vᵀ = R.
  const ut = j.transposed ? uhat : rsorted;
  const vt = j.transposed ? rsorted : uhat;
  const info = j.flags;
  return {
    s,
    ut,
    vt,
    info,
    dispose() {
      s.dispose();
      ut.dispose();
      vt.dispose();
      info.dispose();
    },
  };
}

/** Options of {@linkcode clipSingularValues}. */
export interface ClipOptions extends JacobiOptions {
  /** (p,) f32: receives the singular values before clipping (unsorted), for diagnostics. */
  sigmaOut?: Tensor;
}

/**
 * Clips the singular values of a weight into `[lo, hi]` in place: `W ← U clip(Σ) Vᵀ`, computed
 * as `W + Rᵀ diag(clip(σ)/σ − 1) A_final` (see shaders/svd.wgsl), so singular values already
 * inside the band leave `W` unchanged exactly (not just to rounding). A zero singular value stays
 * zero (there is no direction to grow it along).
 * @param rt runtime
 * @param w (m, n) or (m, c, kh, kw) f32, updated in place
 * @param lo lower bound, ≥ 0
 * @param hi upper bound, ≥ lo
 * @param opts maxSweeps, tol, sigmaOut
 * @throws Error for a non-matrix input or bad bounds
 */
export function clipSingularValues(
  rt: Backend,
  w: Tensor,
  lo: number,
  hi: number,
  opts: ClipOptions = {},
): void {
  const op = "clipSingularValues";
  if (!(lo >= 0 && hi >= lo && Number.isFinite(hi))) {
    throw new Error(`${op}: need 0 <= lo <= hi < Infinity, got [${lo}, ${hi}]`);
  }
  const w2 = matrixView(op, w);
  const j = jacobi(rt, op, w2, opts);
  const { p, len } = j;
  let sig = opts.sigmaOut;
  if (sig && (sig.size !== p || sig.dtype !== "f32")) {
    throw new Error(`${op}: sigmaOut must be f32[${p}], got ${sig.describe()}`);
  }
  const own = !sig;
  sig ??= rt.empty([p], "f32", `${op} sigma`);
  launch(
    rt,
    K.finish,
    { work: j.work, rot: j.rot, sout: sig },
    { p, len, mode: 1, lo, hi },
    rt.grid(p, 1),
  );
  // work now holds E = diag(clip(σ)/σ − 1) A_final; W += Rᵀ E (rows) or W += Eᵀ R (columns).
  if (j.transposed) {
    matmul(rt, j.work, j.rot, { transA: true, beta: 1, out: w2 });
  } else {
    matmul(rt, j.rot, j.work, { transA: true, beta: 1, out: w2 });
  }
  j.work.dispose();
  j.rot.dispose();
  j.flags.dispose();
  if (own) sig.dispose();
}

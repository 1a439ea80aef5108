/**
 * Reductions (sum, sum of squares, sum of absolute values, max, min, mean)
 * over a whole tensor or one axis, arg-reductions, and softmax / log-softmax,
 * all from `shaders/reduce.wgsl` (see its header for the threading plan and
 * the error bounds of the tree sums).
 *
 * PyTorch 1.13 semantics: `mean` of nothing is NaN, `sum` of nothing is 0,
 * `max`/`min`/`argmax` of nothing are errors; max/min propagate NaN;
 * `argmax`/`argmin` return the first index on ties (as documented for
 * `torch.argmax`) and the first NaN if any.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import reduceSrc from "../../shaders/reduce.wgsl" with { type: "text" };

const REDUCE: Kernel = { name: "reduce", code: reduceSrc, entry: "reduce_main" };
const ARG: Kernel = { name: "reduce.arg", code: reduceSrc, entry: "arg_main" };
const SOFTMAX: Kernel = { name: "reduce.softmax", code: reduceSrc, entry: "softmax_main" };

/** Reduction ops. */
export type ReduceOp = "sum" | "sumsq" | "sumabs" | "max" | "min" | "mean";

/** (combine OP, load MAP, identity) of each op in the shader's terms. */
const SPEC: Record<ReduceOp, { op: number; map: number; ident: number }> = {
  sum: { op: 0, map: 0, ident: 0 },
  sumsq: { op: 0, map: 1, ident: 0 },
  sumabs: { op: 0, map: 2, ident: 0 },
  mean: { op: 0, map: 0, ident: 0 },
  max: { op: 1, map: 0, ident: -Infinity },
  min: { op: 2, map: 0, ident: Infinity },
};

/** Elements one workgroup folds per pass of a whole-tensor reduction (256 invocations x 8). */
const CHUNK = 2048;

/** Options of {@linkcode reduce}. */
export interface ReduceOptions {
  /** Axis to reduce (negative counts from the end). Omitted: the whole tensor, to shape []. */
  axis?: number;
  /** Keep the reduced axis as a dimension of size 1. Default false. */
  keepDims?: boolean;
  /** Output tensor (f32, the output's number of elements). */
  out?: Tensor;
}

function checkInput(op: string, x: Tensor): void {
  if (x.disposed) throw new Error(`${op}: input ${x.describe()} was used after dispose()`);
  if (x.dtype !== "f32") throw new Error(`${op}: input must be f32, got ${x.describe()}`);
}

/** (outer, len, inner) of `shape` around `axis`, and the shape with that axis removed or kept. */
function split(
  op: string,
  shape: readonly number[],
  axis: number,
  keepDims: boolean,
): { outer: number; len: number; inner: number; axis: number; outShape: number[] } {
  const nd = shape.length;
  if (!Number.isInteger(axis) || axis < -nd || axis >= nd) {
    throw new Error(`${op}: axis ${axis} is out of range for shape ${fmtShape(shape)}`);
  }
  const a = axis < 0 ? axis + nd : axis;
  let outer = 1, inner = 1;
  for (let d = 0; d < a; d++) outer *= shape[d];
  for (let d = a + 1; d < nd; d++) inner *= shape[d];
  const outShape = keepDims
    ? shape.map((s, d) => (d === a ? 1 : s))
    : shape.filter((_, d) => d !== a);
  return { outer, len: shape[a], inner, axis: a, outShape };
}

/** Columns per workgroup for a reduced axis of `len`: about 8 elements per invocation. */
function colsFor(len: number): number {
  let r = 1;
  while (r < 256 && r * 8 < len) r *= 2;
  return 256 / r;
}

function outputFor(
  rt: Backend,
  op: string,
  shape: readonly number[],
  dtype: "f32" | "u32",
  out?: Tensor,
): Tensor {
  if (!out) return rt.empty(shape, dtype);
  if (out.disposed) throw new Error(`${op}: out ${out.describe()} was used after dispose()`);
  let n = 1;
  for (const d of shape) n *= d;
  if (out.size !== n || out.dtype !== dtype) {
    throw new Error(`${op}: out must be ${dtype}${fmtShape(shape)}, got ${out.describe()}`);
  }
  return out;
}

interface Pass {
  outer: number;
  len: number;
  inner: number;
  total: number;
  scale: number;
  map: number;
  cols: number;
}

function reducePass(rt: Backend, op: number, ident: number, x: Tensor, y: Tensor, s: Pass): void {
  const nq = s.outer * s.inner;
  if (nq === 0) return;
  // `out` may be `x` only when the reduced axis has length 1; x is then read from y (IO = 1).
  const inPlace = x.storage === y.storage;
  rt.dispatch(REDUCE, {
    bindings: [inPlace ? rt.placeholder(0) : x, y, rt.placeholder(1)],
    params: {
      outer: s.outer,
      len: s.len,
      inner: s.inner,
      total: s.total,
      scale: s.scale,
      ident,
    },
    workgroups: rt.grid(nq, s.cols),
    constants: { OP: op, MAP: s.map, C: s.cols, IO: inPlace ? 1 : 0 },
  });
}

/**
 * Reduces a tensor, whole or along one axis.
 * @param rt runtime
 * @param op "sum", "sumsq" (sum of squares), "sumabs" (sum of |x|), "max", "min" or "mean"
 * @param x (...) f32
 * @param opts `axis` (omit for the whole tensor), `keepDims`, `out`
 * @returns f32 of shape [] (whole tensor) or `x`'s shape without `axis` (with a 1 there if
 *   `keepDims`); `opts.out` if given, else a new tensor the caller must dispose
 * @throws Error for max/min over an empty axis or tensor, a bad axis, or a wrong `out`
 * @example
 * ```ts
 * const total = reduce(rt, "sum", x); // shape []
 * const colMax = reduce(rt, "max", x, { axis: 0 }); // (B, C) -> (C,)
 * ```
 */
export function reduce(
  rt: Backend,
  op: ReduceOp,
  x: Tensor,
  opts: ReduceOptions = {},
): Tensor {
  const spec = SPEC[op];
  if (!spec) throw new Error(`reduce: unknown op '${op}'`);
  const name = `reduce('${op}')`;
  checkInput(name, x);
  if (opts.axis === undefined) return reduceAll(rt, op, x, opts);
  const s = split(name, x.shape, opts.axis, opts.keepDims ?? false);
  if (s.len === 0 && spec.ident !== 0) {
    throw new Error(`${name}: cannot reduce the empty axis ${s.axis} of ${fmtShape(x.shape)}`);
  }
  const y = outputFor(rt, name, s.outShape, "f32", opts.out);
  reducePass(rt, spec.op, spec.ident, x, y, {
    outer: s.outer,
    len: s.len,
    inner: s.inner,
    total: x.size,
    scale: op === "mean" ? 1 / s.len : 1,
    map: spec.map,
    cols: colsFor(s.len),
  });
  return y;
}

function reduceAll(rt: Backend, op: ReduceOp, x: Tensor, opts: ReduceOptions): Tensor {
  const spec = SPEC[op];
  const name = `reduce('${op}')`;
  const n0 = x.size;
  if (n0 === 0 && spec.ident !== 0) {
    throw new Error(`${name}: cannot reduce the empty tensor ${x.describe()}`);
  }
  const outShape = opts.keepDims ? x.shape.map(() => 1) : [];
  const y = outputFor(rt, name, outShape, "f32", opts.out);
  let cur = x, n = n0, map = spec.map;
  while (n > CHUNK) {
    const groups = Math.ceil(n / CHUNK);
    const tmp = rt.empty([groups], "f32", `${name} partials`);
    reducePass(rt, spec.op, spec.ident, cur, tmp, {
      outer: groups,
      len: CHUNK,
      inner: 1,
      total: n,
      scale: 1,
      map,
      cols: 1,
    });
    // Safe to free at once: later uses are recorded after this one on the same queue.
    if (cur !== x) cur.dispose();
    cur = tmp;
    n = groups;
    map = 0;
  }
  reducePass(rt, spec.op, spec.ident, cur, y, {
    outer: 1,
    len: n,
    inner: 1,
    total: n,
    scale: op === "mean" ? 1 / n0 : 1, // 1/0 * 0 = NaN, torch's mean of nothing
    map,
    cols: colsFor(n),
  });
  if (cur !== x) cur.dispose();
  return y;
}

/** Options of {@linkcode argmax} and {@linkcode argmin}. */
export interface ArgOptions {
  /** Keep the reduced axis as a dimension of size 1. Default false. */
  keepDims?: boolean;
  /** Output tensor (u32, the output's number of elements). */
  out?: Tensor;
}

function argReduce(
  rt: Backend,
  which: "argmax" | "argmin",
  x: Tensor,
  axis: number,
  opts: ArgOptions,
): Tensor {
  checkInput(which, x);
  const s = split(which, x.shape, axis, opts.keepDims ?? false);
  if (s.len === 0) {
    throw new Error(`${which}: cannot reduce the empty axis ${s.axis} of ${fmtShape(x.shape)}`);
  }
  const y = outputFor(rt, which, s.outShape, "u32", opts.out);
  const nq = s.outer * s.inner;
  if (nq === 0) return y;
  const cols = colsFor(s.len);
  rt.dispatch(ARG, {
    bindings: [x, rt.placeholder(1), y],
    params: { outer: s.outer, len: s.len, inner: s.inner, total: x.size, scale: 1, ident: 0 },
    workgroups: rt.grid(nq, cols),
    constants: { C: cols, SIGN: which === "argmax" ? 1 : -1 },
  });
  return y;
}

/**
 * Index of the largest element along `axis` (the first one on ties, the first NaN if any,
 * as `torch.argmax`). For the flat index of a whole tensor use `x.reshape([x.size])`, axis 0.
 * @param rt runtime
 * @param x (...) f32
 * @param axis the axis (negative counts from the end)
 * @param opts `keepDims`, `out`
 * @returns u32 of `x`'s shape without `axis`; `opts.out` or a new tensor the caller must dispose
 * @example
 * ```ts
 * const pred = argmax(rt, logits, 1); // (B, K) -> (B,) u32
 * ```
 */
export function argmax(rt: Backend, x: Tensor, axis: number, opts: ArgOptions = {}): Tensor {
  return argReduce(rt, "argmax", x, axis, opts);
}

/**
 * Index of the smallest element along `axis` (first on ties, first NaN if any, as `torch.argmin`).
 * @param x (...) f32
 * @param axis the axis (negative counts from the end)
 * @returns u32 of `x`'s shape without `axis`; `opts.out` or a new tensor the caller must dispose
 */
export function argmin(rt: Backend, x: Tensor, axis: number, opts: ArgOptions = {}): Tensor {
  return argReduce(rt, "argmin", x, axis, opts);
}

/** Options of {@linkcode softmax} and {@linkcode logSoftmax}. */
export interface SoftmaxOptions {
  /** Axis along which the result sums to 1. Default -1 (the last). */
  axis?: number;
  /** Output tensor (f32, `x`'s number of elements); may be `x` itself. */
  out?: Tensor;
}

function softmaxImpl(rt: Backend, log: boolean, x: Tensor, opts: SoftmaxOptions): Tensor {
  const name = log ? "logSoftmax" : "softmax";
  checkInput(name, x);
  const s = split(name, x.shape, opts.axis ?? -1, true);
  const y = outputFor(rt, name, x.shape, "f32", opts.out);
  const nq = s.outer * s.inner;
  if (nq === 0 || s.len === 0) return y;
  const cols = colsFor(s.len);
  // In place, x is read from y (IO = 1): WebGPU forbids aliasing a writable binding.
  const inPlace = x.storage === y.storage;
  rt.dispatch(SOFTMAX, {
    bindings: [inPlace ? rt.placeholder(0) : x, y, rt.placeholder(1)],
    params: {
      outer: s.outer,
      len: s.len,
      inner: s.inner,
      total: x.size,
      scale: 1,
      ident: -Infinity,
    },
    workgroups: rt.grid(nq, cols),
    constants: { OP: 1, C: cols, LOG: log ? 1 : 0, IO: inPlace ? 1 : 0 },
  });
  return y;
}

/**
 * Softmax along an axis, `exp(x - max) / sum(exp(x - max))` (stable for any logits).
 * @param rt runtime
 * @param x (..., K) f32 logits
 * @param opts `axis` (default -1), `out` (may be `x`)
 * @returns f32 of `x`'s shape; `opts.out` or a new tensor the caller must dispose
 * @example
 * ```ts
 * const probs = softmax(rt, logits); // (B, K), rows sum to 1
 * ```
 */
export function softmax(rt: Backend, x: Tensor, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl(rt, false, x, opts);
}

/**
 * Log-softmax along an axis, `x - max - log(sum(exp(x - max)))` (stable for any logits).
 * @param rt runtime
 * @param x (..., K) f32 logits
 * @param opts `axis` (default -1), `out` (may be `x`)
 * @returns f32 of `x`'s shape; `opts.out` or a new tensor the caller must dispose
 */
export function logSoftmax(rt: Backend, x: Tensor, opts: SoftmaxOptions = {}): Tensor {
  return softmaxImpl(rt, true, x, opts);
}

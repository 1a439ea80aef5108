/**
 * Float64 CPU references of the elementwise ops in `src/ops/elementwise.ts`
 * (PyTorch 1.13 semantics). Plain TypeScript over arrays of numbers.
 *
 * @module
 */

import type { BinaryOp, UnaryOp } from "../ops/elementwise.ts";

/** Scalar parameters, with the same defaults as the GPU ops. */
export interface RefParams {
  alpha?: number;
  beta?: number;
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** `f(x)` for one value. */
export function unaryScalarRef(op: UnaryOp, x: number, p: RefParams = {}): number {
  switch (op) {
    case "copy":
      return x;
    case "neg":
      return -x;
    case "abs":
      return Math.abs(x);
    case "sign":
      return x > 0 ? 1 : x < 0 ? -1 : x; // sign(±0) = ±0, sign(NaN) = NaN
    case "relu":
      return x < 0 ? 0 : x;
    case "leaky_relu":
      return x > 0 ? x : (p.alpha ?? 0.01) * x;
    case "tanh":
      return Math.tanh(x);
    case "sigmoid":
      return sigmoid(x);
    case "softplus": {
      const beta = p.alpha ?? 1, threshold = p.beta ?? 20;
      return beta * x > threshold ? x : Math.log1p(Math.exp(beta * x)) / beta;
    }
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "sqrt":
      return Math.sqrt(x);
    case "square":
      return x * x;
    case "scale":
      return p.alpha! * x;
    case "add_scalar":
      return x + p.alpha!;
    case "affine":
      return p.alpha! * x + p.beta!;
    case "clamp":
      return Math.min(Math.max(x, p.alpha ?? -Infinity), p.beta ?? Infinity);
    case "fill":
      return p.alpha!;
    case "reciprocal":
      return 1 / x;
  }
}

/** `g(a, b)` for one pair. Backward ops take (x or y, dy). */
export function binaryScalarRef(op: BinaryOp, a: number, b: number, p: RefParams = {}): number {
  switch (op) {
    case "add":
      return a + b;
    case "sub":
      return a - b;
    case "mul":
      return a * b;
    case "div":
      return a / b;
    case "max":
      return Math.max(a, b);
    case "min":
      return Math.min(a, b);
    case "axpby":
      return (p.alpha ?? 1) * a + (p.beta ?? 1) * b;
    case "relu_backward":
      return a > 0 ? b : 0;
    case "leaky_relu_backward":
      return a > 0 ? b : (p.alpha ?? 0.01) * b;
    case "tanh_backward":
      return b * (1 - a * a);
    case "sigmoid_backward":
      return b * a * (1 - a);
    case "softplus_backward": {
      const beta = p.alpha ?? 1, threshold = p.beta ?? 20;
      return beta * a > threshold ? b : b * sigmoid(beta * a);
    }
  }
}

/**
 * `f(x)` elementwise in float64.
 * @param x values
 * @returns a new Float64Array
 */
export function unaryRef(op: UnaryOp, x: ArrayLike<number>, p: RefParams = {}): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = unaryScalarRef(op, x[i], p);
  return y;
}

/**
 * `g(a, b)` elementwise in float64 with `b` broadcast NumPy-style against `a`'s shape
 * (the output has `a`'s shape; `b`'s dims must be 1 or equal to `a`'s, right-aligned).
 * @param a values of shape `aShape`
 * @param b values of shape `bShape`
 * @returns a new Float64Array of `a`'s size
 */
export function binaryRef(
  op: BinaryOp,
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  p: RefParams = {},
): Float64Array {
  const nd = aShape.length;
  const bs = [...Array(Math.max(0, nd - bShape.length)).fill(1), ...bShape];
  if (bs.length !== nd) throw new Error("binaryRef: b has more dims than a");
  // Strides of b over a's index space, 0 where b broadcasts.
  const bStride = new Array(nd).fill(0);
  let s = 1;
  for (let d = nd - 1; d >= 0; d--) {
    if (bs[d] !== 1 && bs[d] !== aShape[d]) throw new Error("binaryRef: shapes do not broadcast");
    bStride[d] = bs[d] === 1 ? 0 : s;
    s *= bs[d];
  }
  const y = new Float64Array(a.length);
  const idx = new Array(nd).fill(0);
  for (let i = 0; i < a.length; i++) {
    let j = 0;
    for (let d = 0; d < nd; d++) j += idx[d] * bStride[d];
    y[i] = binaryScalarRef(op, a[i], b[j], p);
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < aShape[d]) break;
      idx[d] = 0;
    }
  }
  return y;
}

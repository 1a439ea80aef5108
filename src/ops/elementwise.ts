/**
 * Elementwise ops on f32 tensors: activations, their backward ops, arithmetic
 * with broadcasting, and in-place helpers (`axpy`, `fill`). All run one WGSL
 * file, `shaders/elementwise.wgsl`, specialised per op by override constants,
 * in a scalar and a vec4 instantiation (see that file's header).
 *
 * Semantics follow PyTorch 1.13 (`torch.sign(0) = 0`, softplus with
 * `beta`/`threshold`, leaky ReLU slope 0.01 by default, `clamp` with `hi`
 * winning when `lo > hi`).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import elementwiseSrc from "../../shaders/elementwise.wgsl" with { type: "text" };

/** Unary ops, `y = f(x)`. */
export type UnaryOp =
  | "copy"
  | "neg"
  | "abs"
  | "sign"
  | "relu"
  | "leaky_relu"
  | "tanh"
  | "sigmoid"
  | "softplus"
  | "exp"
  | "log"
  | "sqrt"
  | "square"
  | "scale"
  | "add_scalar"
  | "affine"
  | "clamp"
  | "fill"
  | "reciprocal";

/**
 * Binary ops, `y = g(a, b)`. The `*_backward` ops take the forward input `x`
 * (relu, leaky_relu, softplus) or output `y` (tanh, sigmoid) as `a` and the
 * output gradient `dy` as `b`, and return `dx`.
 */
export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "max"
  | "min"
  | "axpby"
  | "relu_backward"
  | "leaky_relu_backward"
  | "tanh_backward"
  | "sigmoid_backward"
  | "softplus_backward";

/** Op codes of `shaders/elementwise.wgsl` (the `OP` override constant). */
const UNARY: Record<UnaryOp, number> = {
  copy: 0,
  neg: 1,
  abs: 2,
  sign: 3,
  relu: 4,
  leaky_relu: 5,
  tanh: 6,
  sigmoid: 7,
  softplus: 8,
  exp: 9,
  log: 10,
  sqrt: 11,
  square: 12,
  scale: 13,
  add_scalar: 14,
  affine: 15,
  clamp: 16,
  fill: 17,
  reciprocal: 18,
};

const BINARY: Record<BinaryOp, number> = {
  add: 32,
  sub: 33,
  mul: 34,
  div: 35,
  max: 36,
  min: 37,
  axpby: 38,
  relu_backward: 39,
  leaky_relu_backward: 40,
  tanh_backward: 41,
  sigmoid_backward: 42,
  softplus_backward: 43,
};

const F32_MAX = 3.4028234663852886e38;

/** Default `alpha`, `beta` per op; `undefined` means the caller must give it. */
const DEFAULTS: Partial<Record<UnaryOp | BinaryOp, [number | undefined, number | undefined]>> = {
  leaky_relu: [0.01, 0],
  leaky_relu_backward: [0.01, 0],
  softplus: [1, 20],
  softplus_backward: [1, 20],
  scale: [undefined, 0],
  add_scalar: [undefined, 0],
  affine: [undefined, undefined],
  fill: [undefined, 0],
  clamp: [-F32_MAX, F32_MAX],
  axpby: [1, 1],
};

/** Options shared by {@linkcode unary} and {@linkcode binary}. */
export interface ElementwiseOptions {
  /** Output tensor (f32, same number of elements as the first input); may alias an input. */
  out?: Tensor;
  /**
   * First scalar parameter: `leaky_relu` slope (default 0.01), `softplus` beta (default 1),
   * `scale`/`affine` factor, `add_scalar` addend, `clamp` lower bound, `fill` value,
   * `axpby` weight of `a` (default 1).
   */
  alpha?: number;
  /**
   * Second scalar parameter: `softplus` threshold (default 20), `affine` offset, `clamp` upper
   * bound, `axpby` weight of `b` (default 1).
   */
  beta?: number;
}

const SCALAR: Kernel = { name: "elementwise", code: elementwiseSrc };
const VEC4: Kernel = { name: "elementwise.vec4", code: vec4Source(elementwiseSrc) };

/** The vec4 instantiation of the shader: swaps the lines marked `@lanes`. */
function vec4Source(src: string): string {
  const out = src
    .replace("alias T = f32; // @lanes", "alias T = vec4<f32>; // @lanes")
    .replace("alias U = u32; // @lanes", "alias U = vec4<u32>; // @lanes")
    .replace("alias bool_t = bool; // @lanes", "alias bool_t = vec4<bool>; // @lanes")
    .replace(
      "fn lane0(v: T) -> f32 { return v; } // @lanes",
      "fn lane0(v: T) -> f32 { return v.x; } // @lanes",
    );
  if (out.split("vec4<f32>; // @lanes").length !== 2 || !out.includes("return v.x; } // @lanes")) {
    throw new Error(
      "elementwise.wgsl: the '@lanes' lines were not found; cannot build vec4 kernel",
    );
  }
  return out;
}

function checkInput(op: string, t: Tensor, what: string): void {
  if (t.disposed) throw new Error(`${op}: ${what} ${t.describe()} was used after dispose()`);
  if (t.dtype !== "f32") throw new Error(`${op}: ${what} must be f32, got ${t.describe()}`);
}

function outputFor(rt: Backend, op: string, like: Tensor, out: Tensor | undefined): Tensor {
  if (!out) return rt.empty(like.shape, "f32");
  checkInput(op, out, "out");
  if (out.size !== like.size) {
    throw new Error(
      `${op}: out ${fmtShape(out.shape)} does not have the ${like.size} elements of ${
        fmtShape(like.shape)
      }`,
    );
  }
  return out;
}

function params(
  op: UnaryOp | BinaryOp,
  opts: ElementwiseOptions,
): { alpha: number; beta: number } {
  const [da, db] = DEFAULTS[op] ?? [0, 0];
  const alpha = opts.alpha ?? da;
  const beta = opts.beta ?? db;
  if (alpha === undefined || beta === undefined) {
    const missing = alpha === undefined ? "alpha" : "beta";
    throw new Error(`${op}: option '${missing}' is required`);
  }
  return { alpha, beta };
}

/** How `b` broadcasts against `a`: BMODE of the shader and its index parameters. */
interface Broadcast {
  mode: 1 | 2 | 3;
  nb: number;
  inner: number;
}

/**
 * Broadcast rule: `b` equals `a`'s shape, or has one element, or (after dropping leading 1s)
 * aligns with the right end of `a`'s shape as a block of matching dims followed by 1s
 * (`[C]` or `[1,C]` on `[B,C]`; `[C,1,1]` on `[B,C,H,W]`; `[H,W]` on `[B,C,H,W]`).
 */
function broadcastOf(op: string, a: Tensor, b: Tensor): Broadcast {
  if (b.size === a.size && fmtShape(a.shape) === fmtShape(b.shape)) {
    return { mode: 1, nb: a.size, inner: 1 };
  }
  if (b.size === 1) return { mode: 2, nb: 1, inner: 1 };
  const bs = [...b.shape];
  while (bs.length > 0 && bs[0] === 1) bs.shift();
  const as = a.shape;
  const fail = () =>
    new Error(
      `${op}: cannot broadcast b ${fmtShape(b.shape)} against a ${fmtShape(a.shape)}; b must ` +
        `have a's shape, one element, or a's trailing dims (optionally followed by 1s), ` +
        `e.g. [C] or [C,1,1] for a [B,C,H,W]`,
    );
  if (bs.length > as.length) throw fail();
  const off = as.length - bs.length;
  let k = bs.length;
  let inner = 1;
  while (k > 0 && bs[k - 1] === 1) {
    inner *= as[off + k - 1];
    k--;
  }
  for (let d = 0; d < k; d++) if (bs[d] !== as[off + d]) throw fail();
  if (b.size === a.size) return { mode: 1, nb: a.size, inner: 1 };
  return { mode: 3, nb: b.size, inner };
}

/**
 * Records one dispatch. `b` is null for unary ops. An output that aliases an operand (same
 * buffer, including a reshaped view) is bound once, as the writable `y`, and the shader's `IO`
 * constant reads that operand from it (WebGPU forbids aliasing a writable binding); bindings
 * left unused get a placeholder buffer.
 */
function launch(
  rt: Backend,
  code: number,
  a: Tensor,
  b: Tensor | null,
  y: Tensor,
  bc: Broadcast | null,
  alpha: number,
  beta: number,
): void {
  const n = a.size;
  if (n === 0) return;
  const mode = bc?.mode ?? 0;
  const vec = n % 4 === 0 && (mode !== 3 || (bc!.inner === 1 && bc!.nb % 4 === 0));
  const lanes = vec ? 4 : 1;
  const aIsY = a.storage === y.storage;
  const bIsY = b !== null && b.storage === y.storage;
  const io = (aIsY ? 1 : 0) | (bIsY ? 2 : 0);
  const unused = rt.placeholder(0);
  rt.dispatch(vec ? VEC4 : SCALAR, {
    bindings: [aIsY ? unused : a, b === null || bIsY ? unused : b, y],
    params: {
      n: n / lanes,
      nb: mode === 3 ? bc!.nb / lanes : 1,
      inner: bc?.inner ?? 1,
      alpha,
      beta,
    },
    workgroups: rt.grid(n / lanes, 256),
    constants: { OP: code, BMODE: mode, IO: io },
  });
}

/**
 * `y = f(x)` elementwise.
 * @param rt runtime
 * @param op the function (see {@linkcode UnaryOp}); `alpha`/`beta` as in {@linkcode ElementwiseOptions}
 * @param x (...) f32 input
 * @param opts `out` (may be `x` for in place), `alpha`, `beta`
 * @returns (...) f32, `opts.out` if given, else a new tensor the caller must dispose
 * @example
 * ```ts
 * const y = unary(rt, "leaky_relu", x, { alpha: 0.2 });
 * unary(rt, "clamp", y, { alpha: -1, beta: 1, out: y });
 * ```
 */
export function unary(
  rt: Backend,
  op: UnaryOp,
  x: Tensor,
  opts: ElementwiseOptions = {},
): Tensor {
  const code = UNARY[op];
  if (code === undefined) throw new Error(`unary: unknown op '${op}'`);
  const name = `unary('${op}')`;
  checkInput(name, x, "x");
  const { alpha, beta } = params(op, opts);
  const y = outputFor(rt, name, x, opts.out);
  launch(rt, code, x, null, y, null, alpha, beta);
  return y;
}

/**
 * `y = g(a, b)` elementwise, `b` broadcast against `a`: same shape, one element, or `a`'s
 * trailing dims optionally followed by 1s (`[C]` bias on `[B,C]`, `[C,1,1]` on `[B,C,H,W]`).
 * @param rt runtime
 * @param op the function (see {@linkcode BinaryOp}); backward ops take (x or y, dy)
 * @param a (...) f32 first operand; the output has its shape
 * @param b f32 second operand, broadcastable to `a`
 * @param opts `out` (may alias `a` or `b`), `alpha`, `beta`
 * @returns f32 with `a`'s shape, `opts.out` if given, else a new tensor the caller must dispose
 * @throws Error naming both shapes when `b` does not broadcast
 * @example
 * ```ts
 * const h = binary(rt, "add", xw, bias); // (B, C) + (C,)
 * const dx = binary(rt, "tanh_backward", h, dh); // dh * (1 - h^2)
 * ```
 */
export function binary(
  rt: Backend,
  op: BinaryOp,
  a: Tensor,
  b: Tensor,
  opts: ElementwiseOptions = {},
): Tensor {
  const code = BINARY[op];
  if (code === undefined) throw new Error(`binary: unknown op '${op}'`);
  const name = `binary('${op}')`;
  checkInput(name, a, "a");
  checkInput(name, b, "b");
  const bc = broadcastOf(name, a, b);
  const { alpha, beta } = params(op, opts);
  const y = outputFor(rt, name, a, opts.out);
  launch(rt, code, a, b, y, bc, alpha, beta);
  return y;
}

/**
 * `y += alpha * x` in place (BLAS axpy).
 * @param rt runtime
 * @param alpha scale of `x`
 * @param x (...) f32
 * @param y f32 with as many elements as `x` (or any size when `x` has one), updated in place
 * @returns `y`
 */
export function axpy(rt: Backend, alpha: number, x: Tensor, y: Tensor): Tensor {
  checkInput("axpy", y, "y");
  checkInput("axpy", x, "x");
  if (x.size !== y.size && x.size !== 1) {
    throw new Error(`axpy: x ${fmtShape(x.shape)} and y ${fmtShape(y.shape)} differ in size`);
  }
  // y = 1*y + alpha*x with y as the first operand so that a one-element x broadcasts.
  const xs = x.size === y.size ? x.reshape(y.shape) : x;
  return binary(rt, "axpby", y, xs, { alpha: 1, beta: alpha, out: y });
}

/**
 * `alpha * x`.
 * @param x (...) f32
 * @param alpha factor
 * @param opts `out` (may be `x`)
 * @returns (...) f32, `opts.out` or a new tensor the caller must dispose
 */
export function scale(
  rt: Backend,
  x: Tensor,
  alpha: number,
  opts: { out?: Tensor } = {},
): Tensor {
  return unary(rt, "scale", x, { alpha, out: opts.out });
}

/**
 * Sets every element of `t` to `value` (recorded in the current step).
 * @param t (...) f32, overwritten
 * @param value the value
 * @returns `t`
 */
export function fill(rt: Backend, t: Tensor, value: number): Tensor {
  return unary(rt, "fill", t, { alpha: value, out: t });
}

/**
 * `min(max(x, lo), hi)` (torch.clamp; `hi` wins when `lo > hi`).
 * @param x (...) f32
 * @param lo lower bound (-Infinity for none)
 * @param hi upper bound (Infinity for none)
 * @param opts `out` (may be `x`)
 * @returns (...) f32, `opts.out` or a new tensor the caller must dispose
 */
export function clamp(
  rt: Backend,
  x: Tensor,
  lo: number,
  hi: number,
  opts: { out?: Tensor } = {},
): Tensor {
  const f = (v: number) => Math.max(-F32_MAX, Math.min(F32_MAX, v));
  return unary(rt, "clamp", x, { alpha: f(lo), beta: f(hi), out: opts.out });
}

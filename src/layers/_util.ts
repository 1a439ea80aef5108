/**
 * Helpers shared by the layers (private to src/layers): output-buffer reuse, input checks that
 * name the layer, and the small kernels of shaders/layers.wgsl.
 *
 * @module
 */

export { cachedInput, checkBatch, checkGradShape, checkTensor, sameShape } from "./_check.ts";
import { sameShape } from "./_check.ts";
import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import layersSrc from "../../shaders/layers.wgsl" with { type: "text" };

const SUM_PARTS: Kernel = { name: "layers.sum_parts", code: layersSrc, entry: "sum_parts_main" };
const CHANNEL_SUM: Kernel = {
  name: "layers.channel_sum",
  code: layersSrc,
  entry: "channel_sum_main",
};
const CHANNEL_AFFINE: Kernel = {
  name: "layers.channel_affine",
  code: layersSrc,
  entry: "channel_affine_main",
};
const ACT2: Kernel = { name: "layers.act2", code: layersSrc, entry: "act2_main" };
const BN_GAMMA: Kernel = { name: "layers.bn_gamma", code: layersSrc, entry: "bn_gamma_main" };

/**
 * A layer-owned buffer of `shape`: `slot` itself when it still fits, else a new tensor
 * (the old one is disposed).
 */
export function reuse(
  rt: Backend,
  slot: Tensor | null,
  shape: readonly number[],
  name?: string,
): Tensor {
  if (slot && !slot.disposed && sameShape(slot.shape, shape)) return slot;
  slot?.dispose();
  return rt.empty(shape, "f32", name);
}

/** `out[i] = beta·out[i] + Σ_z parts[z·len + i]` (split-K epilogue). */
export function sumParts(
  rt: Backend,
  parts: Tensor,
  nparts: number,
  out: Tensor,
  beta: number,
): void {
  const len = out.size;
  rt.dispatch(SUM_PARTS, {
    bindings: [parts, parts, parts, out],
    params: { n: 0, len, parts: nparts, s: 1, c: 1, alpha: 0, beta },
    workgroups: rt.grid(len, 256),
  });
}

/**
 * `out[c] = beta·out[c] + Σ_{b, q} x[(b·C + c)·s + q]` — bias gradients.
 * @param x (n, C, s) f32
 * @param out (C,) f32
 */
export function channelSum(
  rt: Backend,
  x: Tensor,
  n: number,
  c: number,
  s: number,
  out: Tensor,
  beta: number,
): void {
  rt.dispatch(CHANNEL_SUM, {
    bindings: [x, x, x, out],
    params: { n, len: 0, parts: 0, s, c, alpha: 0, beta },
    workgroups: [c],
    constants: { CS_WG: rt.isCpuAdapter ? 8 : 256 },
  });
}

/**
 * `out[i] = x[i]·scale[c] + shift[c]`, c = (i / s) % C.
 * @param x (..., C, s) f32
 * @param scale (C,) f32
 * @param shift (C,) f32 or null
 * @param out like x
 */
export function channelAffine(
  rt: Backend,
  x: Tensor,
  c: number,
  s: number,
  scale: Tensor,
  shift: Tensor | null,
  out: Tensor,
): void {
  rt.dispatch(CHANNEL_AFFINE, {
    bindings: [x, scale, shift ?? scale, out],
    params: { n: x.size, len: 0, parts: 0, s, c, alpha: 0, beta: 0 },
    workgroups: rt.grid(x.size, 256),
    constants: { HAS_SHIFT: shift ? 1 : 0 },
  });
}

/**
 * `out = σ''(a) ⊙ f1 ⊙ f2` for tanh (1), sigmoid (2), softplus (3); see shaders/layers.wgsl.
 * @param cached tanh/sigmoid: the forward output; softplus: the forward input
 */
export function secondDerivative(
  rt: Backend,
  act: 1 | 2 | 3,
  cached: Tensor,
  factors: Tensor[],
  out: Tensor,
  alpha = 0,
  beta = 0,
): void {
  const [f1, f2] = factors;
  rt.dispatch(ACT2, {
    bindings: [cached, f1 ?? cached, f2 ?? cached, out],
    params: { n: cached.size, len: 0, parts: 0, s: 1, c: 1, alpha, beta },
    workgroups: rt.grid(cached.size, 256),
    constants: { ACT: act, FACTORS: factors.length },
  });
}

/**
 * `out[c] += Σ_{b, q} u[(b·C + c)·s + q] · v[...] / sqrt(variance[c] + eps)`: the `b ⊗ r` term
 * of an eval-mode BatchNorm in the Jacobian regularizer (see shaders/layers.wgsl).
 * @param u (n, C, s) f32 backward signal at the output
 * @param v (n, C, s) f32 tangent at the input
 * @param variance (C,) f32 running variance
 * @param out (C,) f32 gamma gradient, accumulated into
 */
export function batchnormGammaTerm(
  rt: Backend,
  u: Tensor,
  v: Tensor,
  variance: Tensor,
  eps: number,
  out: Tensor,
): void {
  const n = v.shape[0], c = variance.size;
  const s = v.size / (n * c);
  rt.dispatch(BN_GAMMA, {
    bindings: [u, v, variance, out],
    params: { n, len: 0, parts: 0, s, c, alpha: eps, beta: 0 },
    workgroups: [c],
  });
}

/** 32-bit FNV-1a hash of a string (per-layer random streams). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** `[a, b]` from a number or a pair (kernel sizes, strides, padding). */
export function pair(
  v: number | readonly [number, number],
  what: string,
  layer: string,
  min: number,
): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if (!p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(
      `${layer}: ${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`,
    );
  }
  return p;
}

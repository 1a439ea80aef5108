/**
 * Attribution maps: saliency (Simonyan, Vedaldi & Zisserman 2013, "Deep inside convolutional
 * networks", sec. 3.1: the gradient of the unnormalised class score with respect to the input,
 * `max_c |∂S_t/∂x_{c,h,w}|` over channels) and occlusion sensitivity (Zeiler & Fergus 2014, with
 * Captum's `Occlusion` semantics: a window of all channels slides with a stride, windows cut at
 * the border, each pixel's attribution is the mean over the windows covering it of the drop
 * `f_t(x) − f_t(x with the window set to the baseline)`).
 *
 * Differences from the seed study (SEED-NOTES.md): it took the mean over channels before the
 * absolute value, and occluded with 0 in normalised space; here the baseline is in pixel units
 * ([0, 1] inputs, normalisation inside the model), 0 = black by default.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { argmax } from "../ops/reduce.ts";
import { runMetricsKernel } from "./_kernels.ts";
import { inEval, type MetricModel } from "./_common.ts";

function imageDims(op: string, shape: readonly number[]): [number, number, number] {
  // (B, C, H, W) images; (B, D) vectors are one channel of D "pixels".
  if (shape.length === 4) return [shape[1], shape[2], shape[3]];
  if (shape.length === 2) return [1, 1, shape[1]];
  if (shape.length === 3) return [1, shape[1], shape[2]];
  throw new Error(`${op}: input must be (B, C, H, W), (B, H, W) or (B, D), got [${shape}]`);
}

/**
 * Gradient of the class score `z_t` with respect to the input (GPU), eval mode left to the
 * caller.
 * @param rt runtime
 * @param model classifier
 * @param x (B, ...) f32
 * @param target (B,) u32/i32 classes, or null for the predicted class
 * @returns `grad` (B, ...) f32 (a new tensor the caller disposes) and `target` (B,) u32 (new,
 *   the caller disposes)
 */
export function classScoreGradient(
  rt: Backend,
  model: MetricModel,
  x: Tensor,
  target: Tensor | null,
): { grad: Tensor; target: Tensor } {
  const b = x.shape[0];
  const logits = model.forward(x);
  const k = logits.shape[1];
  let t: Tensor;
  if (target) {
    if (target.dtype === "f32" || target.size !== b) {
      throw new Error(`saliency: target must be u32/i32 [${b}], got ${target.describe()}`);
    }
    t = rt.empty([b], "u32", "saliency target");
    rt.copy(target, t);
  } else t = argmax(rt, logits, 1);
  const dy = rt.empty([b, k], "f32", "saliency seed");
  runMetricsKernel(rt, "onehot", { xu: t, y: dy }, { n: b, k, flag: 1 }, b * k);
  const g = model.inputGrad(dy);
  const grad = rt.empty(x.shape, "f32", "class score gradient");
  rt.copy(g, grad);
  rt.submit();
  dy.dispose();
  return { grad, target: t };
}

/**
 * Saliency maps `max_c |∂z_t/∂x_c|` (eval mode during the call).
 * @param rt runtime
 * @param model classifier taking inputs in [0, 1]
 * @param x (B, C, H, W) or (B, D) f32
 * @param target (B,) u32/i32 classes, or null (default) for the predicted class
 * @returns `map` (B, H, W) (or (B, D)) f32 and `target` (B,) u32; new tensors the caller disposes
 * @example
 * ```ts
 * const { map, target } = await saliency(rt, model, x);
 * ```
 */
export function saliency(
  rt: Backend,
  model: MetricModel,
  x: Tensor,
  target: Tensor | null = null,
): Promise<{ map: Tensor; target: Tensor }> {
  return inEval(model, () => {
    const [c, h, w] = imageDims("saliency", x.shape);
    const b = x.shape[0];
    const { grad, target: t } = classScoreGradient(rt, model, x, target);
    const shape = x.shape.length === 2 ? [b, w] : [b, h, w];
    const map = rt.empty(shape, "f32", "saliency");
    runMetricsKernel(rt, "saliency_max", { xa: grad, y: map }, { n: b, k: c, d: h * w }, b * h * w);
    rt.submit();
    grad.dispose();
    return Promise.resolve({ map, target: t });
  });
}

/** Options of {@linkcode occlusion}. */
export interface OcclusionOptions {
  /** Square window side in pixels. Default 8. */
  window?: number;
  /** Stride in pixels. Default 4. */
  stride?: number;
  /** Value put in the window, pixel units. Default 0. */
  baseline?: number;
  /** Class whose output is watched; default the predicted class. */
  target?: number;
  /** "logit" (Captum on a logit model, the default) or "probability" (softmax). */
  output?: "logit" | "probability";
  /** Occluded copies per forward pass. Default 256. */
  chunk?: number;
}

/** An occlusion-sensitivity map. */
export interface OcclusionMap {
  /** (H·W,) mean drop of the watched output over the windows covering each pixel. */
  map: Float64Array;
  height: number;
  width: number;
  /** The watched class. */
  target: number;
  /** The watched output on the unoccluded input. */
  base: number;
  /** Number of windows. */
  windows: number;
}

/**
 * Occlusion sensitivity of one image (eval mode during the call). Windows start at multiples of
 * the stride, `ceil((H − window) / stride) + 1` of them per axis (Captum), cut at the border.
 * @param rt runtime
 * @param model classifier taking inputs in [0, 1]
 * @param x the image, (C·H·W,) f32
 * @param sampleShape [C, H, W] (or [H, W], or [D])
 * @param opts window, stride, baseline, target, output, chunk
 * @returns the map and what it watched (CPU)
 */
export function occlusion(
  rt: Backend,
  model: MetricModel,
  x: Float32Array,
  sampleShape: readonly number[],
  opts: OcclusionOptions = {},
): Promise<OcclusionMap> {
  return inEval(model, async () => {
    const [c, h, w] = imageDims("occlusion", [1, ...sampleShape]);
    const win = opts.window ?? 8, stride = opts.stride ?? 4;
    if (!(Number.isInteger(win) && win >= 1 && win <= Math.max(h, w))) {
      throw new Error(`occlusion: window ${win} must be an integer in [1, ${Math.max(h, w)}]`);
    }
    if (!(Number.isInteger(stride) && stride >= 1)) {
      throw new Error(`occlusion: stride must be a positive integer, got ${stride}`);
    }
    const winH = Math.min(win, h);
    const nwy = Math.ceil((h - winH) / stride) + 1;
    const nwx = Math.ceil((w - win) / stride) + 1;
    const total = nwy * nwx;
    const d = c * h * w;
    if (x.length !== d) throw new Error(`occlusion: ${x.length} values for shape [${sampleShape}]`);
    const xt = rt.upload(x, [1, ...sampleShape]);
    const toOut = (z: ArrayLike<number>, off: number, k: number, t: number): number => {
      if (opts.output !== "probability") return z[off + t];
      let m = -Infinity;
      for (let j = 0; j < k; j++) m = Math.max(m, z[off + j]);
      let s = 0;
      for (let j = 0; j < k; j++) s += Math.exp(z[off + j] - m);
      return Math.exp(z[off + t] - m) / s;
    };
    try {
      const z0 = (await model.forward(xt).read()) as Float32Array;
      const k = z0.length;
      let t = opts.target ?? 0;
      if (opts.target === undefined) { for (let j = 1; j < k; j++) if (z0[j] > z0[t]) t = j; }
      if (!(Number.isInteger(t) && t >= 0 && t < k)) {
        throw new Error(`occlusion: target ${t} is outside [0, ${k})`);
      }
      const base = toOut(z0, 0, k, t);
      const sum = new Float64Array(h * w), cnt = new Float64Array(h * w);
      const chunk = Math.max(1, Math.min(opts.chunk ?? 256, total));
      for (let s0 = 0; s0 < total; s0 += chunk) {
        const n = Math.min(chunk, total - s0);
        const batch = rt.empty([n, ...sampleShape], "f32", "occluded");
        runMetricsKernel(rt, "occlude", { xa: xt, y: batch }, {
          n,
          k: c,
          h,
          w,
          win,
          stride,
          nwx,
          start: s0,
          baseline: opts.baseline ?? 0,
        }, n * d);
        const z = await model.forward(batch).read();
        batch.dispose();
        for (let i = 0; i < n; i++) {
          const drop = base - toOut(z, i * k, k, t);
          const wi = s0 + i;
          const top = Math.floor(wi / nwx) * stride, left = (wi % nwx) * stride;
          for (let r = top; r < Math.min(h, top + win); r++) {
            for (let q = left; q < Math.min(w, left + win); q++) {
              sum[r * w + q] += drop;
              cnt[r * w + q]++;
            }
          }
        }
      }
      const map = sum.map((v, i) => (cnt[i] ? v / cnt[i] : 0));
      return { map, height: h, width: w, target: t, base, windows: total };
    } finally {
      xt.dispose();
    }
  });
}

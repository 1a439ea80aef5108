/**
 * Decision-boundary planes: the classes a model predicts on a 2-D slice of input space through
 * a sample `x`, `x + a u + b v` for `a, b ∈ [−range, range]` (pixel units) on an R × R grid,
 * with `u, v` orthonormal — random (Gram–Schmidt on seeded Gaussians) or given (toward an
 * adversarial example, along the gradient). The grid points are made by a shader
 * (shaders/metrics.wgsl `plane_points`), pushed through the model in chunks, and their arg max
 * written into one (R, R) u32 class map on the GPU.
 *
 * Unlike the seed study (SEED-NOTES.md), the directions depend only on `(seed, index)` and the
 * input size, so every model compared sees the same planes through the same images.
 *
 * Layout: row 0 of the map is `b = +range` (the top of the picture), column 0 is `a = −range`;
 * point (r, c) is `a = −range + 2 range c / (R − 1)`, `b = range − 2 range r / (R − 1)`.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { randomNormal } from "../init/philox.ts";
import { argmax } from "../ops/reduce.ts";
import { runMetricsKernel } from "./_kernels.ts";
import { inEval, type MetricModel } from "./_common.ts";

/** Two orthonormal directions of length D. */
export interface PlaneDirections {
  u: Float64Array;
  v: Float64Array;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/**
 * Gram–Schmidt: `u = a / ‖a‖`, `v = (b − (b·u) u) / ‖…‖`.
 * @param a (D,) first direction
 * @param b (D,) second direction (must not be parallel to `a`)
 * @returns orthonormal `u, v` (float64)
 * @throws Error when `a` is zero or `b` is parallel to it
 */
export function orthonormalize(a: ArrayLike<number>, b: ArrayLike<number>): PlaneDirections {
  const d = a.length;
  if (b.length !== d) throw new Error(`orthonormalize: lengths ${d} and ${b.length} differ`);
  const u = Float64Array.from(a);
  const na = norm(u);
  if (!(na > 0)) throw new Error("orthonormalize: the first direction is zero");
  for (let i = 0; i < d; i++) u[i] /= na;
  const v = Float64Array.from(b);
  // Two passes of classical Gram–Schmidt ("twice is enough", Giraud et al. 2005).
  for (let pass = 0; pass < 2; pass++) {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += v[i] * u[i];
    for (let i = 0; i < d; i++) v[i] -= dot * u[i];
  }
  const nb = norm(v);
  if (!(nb > 1e-12 * norm(b))) {
    throw new Error("orthonormalize: the second direction is parallel to the first");
  }
  for (let i = 0; i < d; i++) v[i] /= nb;
  return { u, v };
}

/**
 * Random orthonormal directions from seeded Gaussians (Philox, float64), the same for every
 * model given `(d, seed, index)`.
 * @param d input size D
 * @param opts `seed` (default 0), `index` of the plane (random stream; default 0)
 * @returns orthonormal `u, v`
 */
export function randomPlaneDirections(
  d: number,
  opts: { seed?: number; index?: number } = {},
): PlaneDirections {
  if (!(Number.isInteger(d) && d >= 2)) {
    throw new Error(`randomPlaneDirections: need an input size >= 2, got ${d}`);
  }
  const g = randomNormal(2 * d, { seed: opts.seed ?? 0, stream: opts.index ?? 0 });
  return orthonormalize(g.subarray(0, d), g.subarray(d));
}

/**
 * A plane through `x` containing the direction toward `target` (an adversarial example, or
 * `x + ∇` for the gradient direction): `u = (target − x) / ‖…‖`, `v` a seeded random direction
 * orthogonalised against `u`.
 * @param x (D,) the centre
 * @param target (D,) the point the first axis points to
 * @param opts `seed`, `index` of the random second direction
 * @returns orthonormal `u, v`
 * @throws Error when `target` equals `x`
 */
export function planeTowards(
  x: ArrayLike<number>,
  target: ArrayLike<number>,
  opts: { seed?: number; index?: number } = {},
): PlaneDirections {
  if (x.length !== target.length) {
    throw new Error(`planeTowards: lengths ${x.length} and ${target.length} differ`);
  }
  const a = Float64Array.from(x, (xi, i) => target[i] - xi);
  if (!a.some((v) => v !== 0)) throw new Error("planeTowards: target equals x");
  const g = randomNormal(x.length, { seed: opts.seed ?? 0, stream: opts.index ?? 0 });
  return orthonormalize(a, g);
}

/** Options of {@linkcode decisionPlane}. */
export interface PlaneOptions {
  /** Half-width of the square in pixel units. Default 1. */
  range?: number;
  /** Grid points per side R. Default 250. */
  resolution?: number;
  /** Grid points per forward pass. Default min(4096, 2^22 / D). */
  chunk?: number;
  /** Clamp grid points to [0, 1] (the valid image box). Default false. */
  clip?: boolean;
}

function checkPlane(op: string, d: number, dirs: PlaneDirections, o: PlaneOptions): void {
  const r = o.resolution ?? 250, range = o.range ?? 1;
  if (!(Number.isInteger(r) && r >= 2)) {
    throw new Error(`${op}: resolution must be an integer >= 2, got ${r}`);
  }
  if (!(range > 0 && Number.isFinite(range))) {
    throw new Error(`${op}: range must be a positive number, got ${range}`);
  }
  if (dirs.u.length !== d || dirs.v.length !== d) {
    throw new Error(
      `${op}: directions of length ${dirs.u.length}/${dirs.v.length} for inputs of size ${d}`,
    );
  }
}

/**
 * The class map of one plane, left on the GPU (for batched TV without read-back).
 * @param rt runtime
 * @param model classifier (the caller sets eval mode)
 * @param x (1, ...sampleShape) f32 the sample at the centre
 * @param dirs orthonormal directions (D,)
 * @param opts range, resolution, chunk, clip; `out` u32 to write the R·R classes into, at
 *   element `offset` (e.g. (P, R, R) maps of many planes)
 * @returns `out`, or a new (R, R) u32 class map the caller disposes
 */
export function planeClassesGpu(
  rt: Backend,
  model: MetricModel,
  x: Tensor,
  dirs: PlaneDirections,
  opts: PlaneOptions & { out?: Tensor; offset?: number } = {},
): Tensor {
  if (x.shape.length < 2 || x.shape[0] !== 1 || x.dtype !== "f32") {
    throw new Error(
      `decisionPlane: the centre must be one f32 sample (1, ...), got ${x.describe()}`,
    );
  }
  const sampleShape = x.shape.slice(1);
  const d = x.size;
  checkPlane("decisionPlane", d, dirs, opts);
  const res = opts.resolution ?? 250, half = opts.range ?? 1;
  const total = res * res;
  // Default chunk: ~16 MB of grid points (4096 MNIST images, 1365 CIFAR ones); the model's own
  // activations for a chunk are the larger cost, so deep models may want a smaller one.
  const chunk = Math.max(
    1,
    Math.min(opts.chunk ?? Math.max(64, Math.min(4096, 2 ** 22 / d | 0)), total),
  );
  // [x, u, v] packed in one buffer: the origin is copied on the GPU, the directions uploaded.
  const xuv = rt.empty([3 * d], "f32", "plane origin+dirs");
  const uv = new Float32Array(2 * d);
  uv.set(dirs.u);
  uv.set(dirs.v, d);
  const dirsT = rt.upload(uv, [2 * d]);
  rt.copy(x.reshape([d]), xuv, d);
  rt.copy(dirsT, xuv, 2 * d, 0, d);
  const map = opts.out ? opts.out : rt.empty([res, res], "u32", "plane classes");
  const base = opts.offset ?? 0;
  if (map.size < base + total) {
    throw new Error(`decisionPlane: out ${map.describe()} cannot hold ${total} at ${base}`);
  }
  const pts = rt.empty([chunk, ...sampleShape], "f32", "plane points");
  const pred = rt.empty([chunk], "u32", "plane chunk classes");
  // The last chunk is run at full size too (its extra points lie past the grid's last row and
  // are not copied out): one batch size for the whole plane keeps the layers' buffers reused.
  for (let start = 0; start < total; start += chunk) {
    const n = Math.min(chunk, total - start);
    runMetricsKernel(
      rt,
      "plane_points",
      { xa: xuv, y: pts },
      { n: chunk, d, res, start, half, flag: opts.clip ? 1 : 0 },
      chunk * d,
    );
    argmax(rt, model.forward(pts), 1, { out: pred });
    rt.copy(pred, map, n, 0, base + start);
    rt.submit();
  }
  pts.dispose();
  pred.dispose();
  xuv.dispose();
  dirsT.dispose();
  return map;
}

/** One decision-boundary plane, read back. */
export interface DecisionPlane {
  /** (R·R,) class per grid point, row 0 = top (`b = +range`). */
  classes: Uint32Array;
  /** R. */
  resolution: number;
  /** Half-width in pixel units. */
  range: number;
  /** Class the model predicts at the centre sample itself. */
  centreClass: number;
  /**
   * Radius (pixel units) of the largest disc around the centre inside its cell, measured to the
   * nearest grid point of another class; `range` when none lies in the square (`censored`).
   */
  radius: number;
  /** True when no grid point of another class lies in the square. */
  censored: boolean;
}

/**
 * Radius of the largest disc around the plane's centre containing only grid points of
 * `centreClass`: the distance to the nearest grid point of another class (an upper bound on the
 * true distance to the boundary by at most one grid step, `2 range / (R − 1)`).
 * @param classes (R·R,) class map
 * @param resolution R
 * @param range half-width
 * @param centreClass the class at the centre
 * @returns `radius`, and `censored` when no other class lies in the square (`radius = range`)
 */
export function largestDiscRadius(
  classes: ArrayLike<number>,
  resolution: number,
  range: number,
  centreClass: number,
): { radius: number; censored: boolean } {
  const step = (2 * range) / (resolution - 1);
  let best = Infinity;
  for (let r = 0; r < resolution; r++) {
    const b = range - r * step;
    for (let c = 0; c < resolution; c++) {
      if (classes[r * resolution + c] === centreClass) continue;
      const a = -range + c * step;
      const dist = Math.hypot(a, b);
      if (dist < best) best = dist;
    }
  }
  return best <= range ? { radius: best, censored: false } : { radius: range, censored: true };
}

/**
 * The decision-boundary plane through one sample (eval mode).
 * @param rt runtime
 * @param model classifier taking inputs in [0, 1]
 * @param x the sample (D values, its shape `sampleShape`)
 * @param sampleShape per-sample shape, e.g. [1, 28, 28]
 * @param dirs orthonormal directions (see {@linkcode randomPlaneDirections}, {@linkcode orthonormalize})
 * @param opts range (default 1), resolution (default 250), chunk, clip
 * @returns the class map and the radius of the centre's disc (CPU arrays)
 * @example
 * ```ts
 * const dirs = randomPlaneDirections(784, { seed: 0, index: 3 });
 * const plane = await decisionPlane(rt, model, img, [1, 28, 28], dirs, { range: 5 });
 * ```
 */
export function decisionPlane(
  rt: Backend,
  model: MetricModel,
  x: Float32Array,
  sampleShape: readonly number[],
  dirs: PlaneDirections,
  opts: PlaneOptions = {},
): Promise<DecisionPlane> {
  return inEval(model, async () => {
    const xt = rt.upload(x, [1, ...sampleShape]);
    try {
      const res = opts.resolution ?? 250, range = opts.range ?? 1;
      const centre = argmax(rt, model.forward(xt), 1);
      const centreClass = (await centre.read())[0];
      centre.dispose();
      const map = planeClassesGpu(rt, model, xt, dirs, opts);
      const classes = (await map.read()) as Uint32Array;
      map.dispose();
      return {
        classes,
        resolution: res,
        range,
        centreClass,
        ...largestDiscRadius(classes, res, range, centreClass),
      };
    } finally {
      xt.dispose();
    }
  });
}

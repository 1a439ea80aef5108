/**
 * Maps of a model on a 2-D input plane (the toy problem of the seed study: 4 classes, 2 inputs):
 * the predicted class at each grid point and the local area factor of the input→logit map.
 *
 * The Jacobian `J = ∂z/∂x` is C × 2. For C = 2 the area factor is `|det J|`; in general it is
 * `sqrt(det(JᵀJ))` (the Gram determinant: how much the map stretches a small input area, the
 * 2-D volume of the parallelogram spanned by J's columns), which equals `|det J|` when J is
 * square. The seed's "area preservation" penalty is `(det(JᵀJ) − 1)²`, the square of this factor
 * minus one. J's C rows come from C input-gradient passes over the whole grid.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { argmax } from "../ops/reduce.ts";
import { runMetricsKernel } from "./_kernels.ts";
import { inEval, type MetricModel } from "./_common.ts";

/** Options of {@linkcode toyMaps}. */
export interface ToyMapOptions {
  /** [xmin, xmax]. Default [-2, 2]. */
  xRange?: [number, number];
  /** [ymin, ymax]. Default [-2, 2]. */
  yRange?: [number, number];
  /** Grid points per side. Default 200. */
  resolution?: number;
}

/** Class map and area-factor map of a 2-input model. */
export interface ToyMaps {
  /** (R·R,) predicted class; row 0 = y max (top), column 0 = x min. */
  classes: Uint32Array;
  /** (R·R,) `sqrt(det(JᵀJ))` of the logits' Jacobian at each point. */
  areaFactor: Float64Array;
  resolution: number;
  xRange: [number, number];
  yRange: [number, number];
}

/**
 * Decision map and Jacobian area factor over a rectangle of the input plane (eval mode).
 * @param rt runtime
 * @param model classifier with inputs (B, 2)
 * @param opts ranges and resolution
 * @returns the two maps (CPU)
 */
export function toyMaps(
  rt: Backend,
  model: MetricModel,
  opts: ToyMapOptions = {},
): Promise<ToyMaps> {
  return inEval(model, async () => {
    const res = opts.resolution ?? 200;
    const [x0, x1] = opts.xRange ?? [-2, 2], [y0, y1] = opts.yRange ?? [-2, 2];
    if (!(Number.isInteger(res) && res >= 2)) {
      throw new Error(`toyMaps: resolution must be an integer >= 2, got ${res}`);
    }
    const n = res * res;
    const pts = new Float32Array(2 * n);
    for (let r = 0; r < res; r++) {
      for (let c = 0; c < res; c++) {
        pts[2 * (r * res + c)] = x0 + ((x1 - x0) * c) / (res - 1);
        pts[2 * (r * res + c) + 1] = y1 - ((y1 - y0) * r) / (res - 1);
      }
    }
    const x = rt.upload(pts, [n, 2]);
    try {
      const logits = model.forward(x);
      if (logits.shape.length !== 2 || x.shape[1] !== 2) {
        throw new Error(`toyMaps: the model must map (B, 2) to (B, C), got ${logits.describe()}`);
      }
      const k = logits.shape[1];
      const cls = argmax(rt, logits, 1);
      const classes = (await cls.read()) as Uint32Array;
      cls.dispose();
      // Gram matrix JᵀJ = Σ_c (∇z_c)(∇z_c)ᵀ, accumulated in float64.
      const g11 = new Float64Array(n), g12 = new Float64Array(n), g22 = new Float64Array(n);
      const dy = rt.empty([n, k], "f32", "toy seed");
      for (let c = 0; c < k; c++) {
        runMetricsKernel(rt, "onehot", { y: dy }, { n, k, cls: c }, n * k);
        const g = await model.inputGrad(dy).read();
        for (let i = 0; i < n; i++) {
          const a = g[2 * i], b = g[2 * i + 1];
          g11[i] += a * a;
          g12[i] += a * b;
          g22[i] += b * b;
        }
      }
      dy.dispose();
      const areaFactor = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        areaFactor[i] = Math.sqrt(Math.max(0, g11[i] * g22[i] - g12[i] * g12[i]));
      }
      return { classes, areaFactor, resolution: res, xRange: [x0, x1], yRange: [y0, y1] };
    } finally {
      x.dispose();
    }
  });
}

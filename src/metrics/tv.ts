/**
 * Total variation of decision-plane class maps. The seed study took TV of the class *index*
 * (a 0→9 jump counted nine times a 0→1 jump); here it is the TV of the class-change indicator,
 * `Dx(r, c) = [c(r, c+1) ≠ c(r, c)]`, `Dy(r, c) = [c(r+1, c) ≠ c(r, c)]`, forward differences
 * with a Neumann boundary (both 0 past the last column/row), normalised per pixel:
 *
 * - isotropic   `TV_iso   = (1 / R²) Σ sqrt(Dx² + Dy²)`
 * - anisotropic `TV_aniso = (1 / R²) Σ (|Dx| + |Dy|)`
 *
 * (the two discretisations of Rudin, Osher & Fatemi 1992 / Chambolle 2004). A straight
 * axis-aligned boundary across an R × R map gives `1/R` for both; a one-pixel checkerboard gives
 * `(2R(R−1))/R²` anisotropic. Averaged over many planes it is reported as mean ± standard error.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { runMetricsKernel } from "./_kernels.ts";
import { inEval, meanStd, type MetricModel, type Samples, sampleSizeOf } from "./_common.ts";
import { planeClassesGpu, type PlaneOptions, randomPlaneDirections } from "./planes.ts";

/** Isotropic and anisotropic total variation of a class map. */
export interface TotalVariation {
  iso: number;
  aniso: number;
}

/**
 * TV of one class map on the CPU (float64).
 * @param classes (H·W,) class labels, row-major
 * @param height H
 * @param width W (default H)
 * @returns `iso`, `aniso`, normalised by H·W
 */
export function classMapTv(
  classes: ArrayLike<number>,
  height: number,
  width: number = height,
): TotalVariation {
  if (classes.length !== height * width) {
    throw new Error(`classMapTv: ${classes.length} values for a ${height}x${width} map`);
  }
  let iso = 0, aniso = 0;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      const v = classes[r * width + c];
      const dx = c + 1 < width && classes[r * width + c + 1] !== v ? 1 : 0;
      const dy = r + 1 < height && classes[(r + 1) * width + c] !== v ? 1 : 0;
      iso += Math.sqrt(dx * dx + dy * dy);
      aniso += Math.abs(dx) + Math.abs(dy);
    }
  }
  const px = height * width;
  return { iso: iso / px, aniso: aniso / px };
}

/**
 * TV of P square class maps at once, on the GPU (per-row sums, finished in float64 on the CPU).
 * @param rt runtime
 * @param maps (P, R, R) u32 class maps
 * @returns per-plane `iso` and `aniso` (P,) normalised by R²
 */
export async function classMapTvGpu(
  rt: Backend,
  maps: Tensor,
): Promise<{ iso: Float64Array; aniso: Float64Array }> {
  if (maps.dtype === "f32" || maps.shape.length !== 3 || maps.shape[1] !== maps.shape[2]) {
    throw new Error(`classMapTv: maps must be u32/i32 (P, R, R), got ${maps.describe()}`);
  }
  const [planes, res] = maps.shape;
  const rows = rt.empty([planes * res, 2], "f32", "tv rows");
  runMetricsKernel(rt, "tv_rows", { xu: maps, y: rows }, { n: planes * res, res }, planes * res);
  const v = await rows.read();
  rows.dispose();
  const iso = new Float64Array(planes), aniso = new Float64Array(planes);
  for (let p = 0; p < planes; p++) {
    for (let r = 0; r < res; r++) {
      iso[p] += v[2 * (p * res + r)];
      aniso[p] += v[2 * (p * res + r) + 1];
    }
    iso[p] /= res * res;
    aniso[p] /= res * res;
  }
  return { iso, aniso };
}

/** Options of {@linkcode planeTv}. */
export interface PlaneTvOptions extends PlaneOptions {
  /** Samples used as plane centres: their indices in the data (default the first `images`). */
  indices?: number[];
  /** Number of centre images when `indices` is absent. Default 10. */
  images?: number;
  /** Random planes per image. Default 5 (so 50 planes by default). */
  planesPerImage?: number;
  /** Seed of the directions (plane j of image i uses stream i·planesPerImage + j). Default 0. */
  seed?: number;
}

/** TV statistics over many planes. */
export interface PlaneTvStats {
  /** Per-plane values (P,). */
  iso: Float64Array;
  aniso: Float64Array;
  /** Mean and standard error over the planes. */
  isoMean: number;
  isoSe: number;
  anisoMean: number;
  anisoSe: number;
  /** Number of planes P. */
  planes: number;
}

/**
 * Mean ± standard error of the class-map TV over random planes through data samples. The images
 * and directions depend only on `indices`/`images`, `planesPerImage` and `seed`, so every model
 * compared with the same options is measured on the same planes.
 * @param rt runtime
 * @param model classifier (eval mode during the call)
 * @param data samples (labels unused)
 * @param opts images, planes per image, seed, range (default 1), resolution (default 250)
 * @returns per-plane TV and its mean ± se
 * @example
 * ```ts
 * import { buildModel, modelSpecFromName, planeTv, Runtime, toy2d } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const test = toy2d({ split: "test" });
 * const opts = { images: 4, planesPerImage: 2, range: 5, resolution: 64 };
 * const tv = await planeTv(rt, model, test, opts);
 * console.log(`${tv.isoMean} ± ${tv.isoSe}`);
 * model.dispose();
 * ```
 */
export function planeTv(
  rt: Backend,
  model: MetricModel,
  data: Samples,
  opts: PlaneTvOptions = {},
): Promise<PlaneTvStats> {
  return inEval(model, async () => {
    const d = sampleSizeOf(data.sampleShape);
    const n = data.length ?? data.x.length / d;
    const indices = opts.indices ??
      Array.from({ length: Math.min(n, opts.images ?? 10) }, (_, i) => i);
    const per = opts.planesPerImage ?? 5;
    const res = opts.resolution ?? 250;
    const total = indices.length * per;
    if (total === 0) throw new Error("planeTv: no planes (no images or planesPerImage = 0)");
    for (const i of indices) {
      if (!(Number.isInteger(i) && i >= 0 && i < n)) {
        throw new Error(`planeTv: image index ${i} is outside [0, ${n})`);
      }
    }
    const maps = rt.empty([total, res, res], "u32", "tv class maps");
    try {
      let p = 0;
      for (const [ii, idx] of indices.entries()) {
        const xt = rt.upload(data.x.subarray(idx * d, (idx + 1) * d), [1, ...data.sampleShape]);
        for (let j = 0; j < per; j++) {
          const dirs = randomPlaneDirections(d, { seed: opts.seed ?? 0, index: ii * per + j });
          planeClassesGpu(rt, model, xt, dirs, { ...opts, out: maps, offset: p * res * res });
          p++;
        }
        xt.dispose();
      }
      const { iso, aniso } = await classMapTvGpu(rt, maps);
      const a = meanStd(iso), b = meanStd(aniso);
      return {
        iso,
        aniso,
        isoMean: a.mean,
        isoSe: a.se,
        anisoMean: b.mean,
        anisoSe: b.se,
        planes: total,
      };
    } finally {
      maps.dispose();
    }
  });
}

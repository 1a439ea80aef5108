/**
 * What a comparison report measures: every model on the same samples, the same plane centres
 * and the same directions (seeded), so that differences come from the models — clean accuracy,
 * loss, ECE/MCE, the Jacobian Frobenius norm, decision-plane TV (mean ± standard error), the
 * radius of the centre's cell, FGSM/PGD accuracy at chosen ε, the drawn planes (random and
 * toward an FGSM example), saliency and occlusion maps, PCA of layer activations, weight
 * statistics, and for 2-input models the decision map and Jacobian area factor of the input
 * plane. The result is plain data (numbers and typed arrays); src/plot/report.ts draws it.
 *
 * @example
 * ```ts
 * import { measureModels } from "./report.ts";
 * const m = await measureModels(rt, [{ name: "l2", model }], { name: "mnist", ...test });
 * console.log(m.models[0].row.tvIso);
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Sequential } from "../layers/sequential.ts";
import { fgsm } from "../attacks/fgsm.ts";
import { robustness, type RobustnessResult } from "../attacks/robustness.ts";
import { histogram } from "./_common.ts";
import { evaluateMetrics, type EvaluationReport } from "./calibration.ts";
import { jacobianFrobenius } from "./jacobian.ts";
import {
  type DecisionPlane,
  decisionPlane,
  type PlaneDirections,
  planeTowards,
  randomPlaneDirections,
} from "./planes.ts";
import { planeTv } from "./tv.ts";
import { occlusion, type OcclusionMap, saliency } from "./saliency.ts";
import { activationPca, type LayerPca } from "./pca.ts";
import { type WeightStats, weightStats } from "./weights.ts";
import { type ToyMaps, toyMaps } from "./toy.ts";

/** A model to put in the report. */
export interface ReportModel {
  /** Column/legend name (the checkpoint's file name). */
  name: string;
  model: Sequential;
  /** Checkpoint metadata (for the training history). */
  metadata?: Record<string, unknown>;
}

/** Labelled samples in [0, 1]. */
export interface ReportData {
  name: string;
  x: Float32Array;
  y: Int32Array;
  sampleShape: readonly number[];
  classes: number;
  classNames?: readonly string[];
}

/** What the report measures and draws. */
export interface ReportOptions {
  /** Samples for accuracy, calibration and attacks. Default 1000. */
  limit?: number;
  /** Samples for the Jacobian norm. Default 200. */
  jacobianSamples?: number;
  /** Random projections of the Jacobian norm (-1 exact). Default -1. */
  nproj?: number;
  /** Plane centres and planes per centre for TV. Defaults 10 and 5. */
  images?: number;
  planesPerImage?: number;
  /**
   * Plane half-width (L2 distance along each unit direction, pixel units) and grid resolution.
   * Defaults 10 (a random direction in 784-d moves each pixel by ~range/28) and 250.
   */
  range?: number;
  resolution?: number;
  /** Planes, saliency and occlusion pictures shown (first N centres). Default 3. */
  show?: number;
  /** Attacks and radii (pixel units). Defaults fgsm,pgd and 0.05,0.1,0.2,0.3; none: []. */
  attacks?: ("fgsm" | "pgd")[];
  eps?: number[];
  /** PGD iterations. Default 20. */
  pgdSteps?: number;
  /** PGD step in pixel units, the same at every ε. Default 2.5 ε / pgdSteps. */
  pgdAlpha?: number;
  /** PGD starts at a random point of the ball. Default true. */
  randomStart?: boolean;
  /** Samples for the PCA scatters (0 = none). Default 300. */
  pcaSamples?: number;
  /** Seed of planes, projections and attack starts. Default 0. */
  seed?: number;
  /** Progress messages. */
  progress?: (line: string) => void;
}

/** The numbers of the comparison table, per model (also returned as JSON). */
export interface ReportRow {
  name: string;
  accuracy: number;
  loss: number;
  ece: number;
  mce: number;
  jacobianMean: number;
  jacobianSe: number;
  tvIso: number;
  tvIsoSe: number;
  tvAniso: number;
  tvAnisoSe: number;
  /** Mean over the shown planes of the centre cell's disc radius. */
  discRadius: number;
  /** True when some shown plane had no other class in its square (radius counted as range). */
  discCensored: boolean;
  robustness?: RobustnessResult;
}

/** The settings a report ran with, after defaults and the limits of the data. */
export interface ReportSettings {
  /** Samples for accuracy, calibration and attacks. */
  samples: number;
  /** Samples for the Jacobian norm. */
  jacobianSamples: number;
  /** Random projections of the Jacobian norm (-1 exact). */
  nproj: number;
  /** Plane centres and planes per centre for TV. */
  images: number;
  planesPerImage: number;
  /** Plane half-width (pixel units) and grid resolution. */
  range: number;
  resolution: number;
  /** Centres whose planes, saliency and occlusion are drawn. */
  show: number;
  /** Attacks run (empty when skipped) and their radii. */
  attacks: ("fgsm" | "pgd")[];
  eps: number[];
  /** True when attacks were asked for but skipped: the inputs are not in [0, 1]. */
  attacksSkipped: boolean;
  /** PGD iterations. */
  pgdSteps: number;
  /** PGD step in pixel units (undefined: 2.5 ε / pgdSteps). */
  pgdAlpha?: number;
  /** Whether PGD started at a random point of the ball. */
  randomStart: boolean;
}

/** Everything measured of one model. */
export interface ModelMeasurement {
  name: string;
  /** The table's numbers. */
  row: ReportRow;
  /** Accuracy, calibration bins, confidence histogram, per-class accuracy. */
  evaluation: EvaluationReport;
  /** Histogram (30 bins) of the per-sample Jacobian norms. */
  jacobianHistogram: { edges: number[]; counts: number[] };
  /** The first random plane through each shown centre (the same directions as TV's plane 0). */
  planes: DecisionPlane[];
  /** Per shown centre, the plane toward the first model's FGSM example (null: none). */
  adversarialPlanes: (DecisionPlane | null)[];
  /** Image models: saliency maps `(show, H·W)` and occlusion maps of the shown centres. */
  attribution?: { saliency: Float32Array; occlusion: OcclusionMap[] };
  /** PCA of layer activations (absent with fewer than 3 PCA samples). */
  pca?: LayerPca[];
  /** Statistics of every parameter tensor. */
  weights: WeightStats[];
  /** 2-input models: the decision map and area factor over [-2, 2]² at 150×150. */
  toy?: ToyMaps;
  /** The checkpoint's per-epoch history (empty without one). */
  history: Record<string, number>[];
  /**
   * How it was trained, from the checkpoint's metadata: regularizers (`l2 lambda=0.0005`) and
   * adversarial training (`pgd ε 0.1, 10 steps of 0.025, random start`); null without metadata.
   */
  training: { regularizers: string; adversarial: string } | null;
}

/** What {@linkcode measureModels} returns: plain data, for src/plot's `renderReport`. */
export interface ReportMeasurements {
  /** Data set name, classes and class names (the index when unnamed). */
  dataName: string;
  classes: number;
  classNames: string[];
  sampleShape: readonly number[];
  /** `(show, ...sampleShape)` inputs and `(show,)` labels of the shown centres. */
  shownInputs: Float32Array;
  shownLabels: Int32Array;
  /** Per shown centre, the L2 distance to the first model's FGSM example (null: none). */
  adversarial: ({ distance: number } | null)[];
  /** Largest ε (of the FGSM example the adversarial planes point toward). */
  adversarialEps: number;
  settings: ReportSettings;
  /** One entry per model, in the given order. */
  models: ModelMeasurement[];
}

/** The regularizers and adversarial training a checkpoint's metadata records, in words. */
export function trainingOf(
  meta?: Record<string, unknown>,
): { regularizers: string; adversarial: string } | null {
  if (!meta || !("regularizers" in meta || "adversarial" in meta)) return null;
  const regs = Array.isArray(meta.regularizers)
    ? (meta.regularizers as { name?: unknown; options?: Record<string, unknown> }[])
    : [];
  const regularizers = regs.map((r) => {
    const opts = Object.entries(r.options ?? {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return `${String(r.name)}${opts ? ` ${opts}` : ""}`;
  }).join(" + ") || "none";
  const a = meta.adversarial as Record<string, unknown> | null | undefined;
  let adversarial = "none";
  if (a && typeof a === "object") {
    const share = typeof a.ratio === "number" && a.ratio < 1
      ? `, ${100 * a.ratio}% of each batch`
      : "";
    adversarial = a.attack === "pgd"
      ? `pgd ε ${a.eps}, ${a.steps} steps of ${Number(Number(a.alpha).toPrecision(4))}` +
        `${a.randomStart ? ", random start" : ""}${share}`
      : `${String(a.attack)} ε ${a.eps}${share}`;
  }
  return { regularizers, adversarial };
}

/** The per-epoch records in a checkpoint's metadata (`history` or `history.epochs`). */
function historyOf(meta?: Record<string, unknown>): Record<string, number>[] {
  const h = meta?.history as unknown;
  const list = Array.isArray(h) ? h : (h as { epochs?: unknown })?.epochs;
  return Array.isArray(list) ? (list as Record<string, number>[]) : [];
}

/**
 * Measures every model on the same data: the same samples, plane centres, directions and
 * attack starts (seeded).
 * @param rt runtime
 * @param models the models (eval mode is set during measurement and restored)
 * @param data labelled samples, `x` (N, ...sampleShape) f32 in [0, 1], `y` (N,) i32
 * @param opts what to measure
 * @returns the settings used and, per model, the table row and what the pictures show
 */
export async function measureModels(
  rt: Backend,
  models: readonly ReportModel[],
  data: ReportData,
  opts: ReportOptions = {},
): Promise<ReportMeasurements> {
  const log = opts.progress ?? (() => {});
  const d = data.sampleShape.reduce((a, b) => a * b, 1);
  const n = Math.min(opts.limit ?? 1000, data.y.length);
  const samples = {
    x: data.x.subarray(0, n * d),
    y: data.y.subarray(0, n),
    sampleShape: data.sampleShape,
  };
  const seed = opts.seed ?? 0;
  const range = opts.range ?? 10, res = opts.resolution ?? 250;
  const images = Math.min(opts.images ?? 10, n), per = opts.planesPerImage ?? 5;
  const show = Math.min(opts.show ?? 3, images);
  const jn = Math.min(n, opts.jacobianSamples ?? 200);
  const nproj = opts.nproj ?? -1;
  const pgdSteps = opts.pgdSteps ?? 20;
  const pgdAlpha = opts.pgdAlpha, randomStart = opts.randomStart ?? true;
  // The attacks clip to the [0, 1] pixel box (src/attacks); data outside it (the 2-D toy
  // problem) would be moved into the box by the clip alone, so they are skipped there.
  let inBox = true;
  for (let i = 0; i < samples.x.length && inBox; i++) {
    inBox = samples.x[i] >= 0 && samples.x[i] <= 1;
  }
  const asked = opts.attacks ?? ["fgsm", "pgd"];
  const attacks = inBox ? asked : [];
  const eps = opts.eps ?? [0.05, 0.1, 0.2, 0.3];
  const isImage = data.sampleShape.length === 3;
  const isToy = d === 2;

  // Planes toward an FGSM example of the first model (at the largest ε), the same planes for
  // every model: the first axis points at that adversarial example, the second is random.
  const advDirs: ({ dirs: PlaneDirections; dist: number } | null)[] = Array(show).fill(null);
  if (attacks.length && eps.length && show > 0 && models.length) {
    const xt = rt.upload(samples.x.subarray(0, show * d), [show, ...data.sampleShape]);
    const yt = rt.upload(samples.y.subarray(0, show), [show]);
    const adv = fgsm(rt, models[0].model, xt, yt, { eps: Math.max(...eps) });
    const xa = (await adv.read()) as Float32Array;
    for (const t of [xt, yt, adv]) t.dispose();
    for (let i = 0; i < show; i++) {
      const x0 = samples.x.subarray(i * d, (i + 1) * d), x1 = xa.subarray(i * d, (i + 1) * d);
      let dist = 0;
      for (let j = 0; j < d; j++) dist += (x1[j] - x0[j]) ** 2;
      if (dist > 0) {
        advDirs[i] = {
          dirs: planeTowards(x0, x1, { seed, index: 1_000_000 + i }),
          dist: Math.sqrt(dist),
        };
      }
    }
  }

  const measured: ModelMeasurement[] = [];
  for (const { name, model, metadata } of models) {
    log(`${name}: accuracy and calibration on ${n} samples`);
    const m = await evaluateMetrics(rt, model, samples);
    log(`${name}: Jacobian norm on ${jn} samples`);
    const jac = await jacobianFrobenius(rt, model, {
      x: samples.x.subarray(0, jn * d),
      sampleShape: data.sampleShape,
    }, { nproj, seed });
    log(`${name}: TV over ${images * per} planes at ${res}x${res}`);
    const tv = await planeTv(rt, model, samples, {
      images,
      planesPerImage: per,
      seed,
      range,
      resolution: res,
    });
    // The first plane through each shown centre (same directions as TV's plane 0).
    const planes: DecisionPlane[] = [];
    let radius = show ? 0 : NaN, censored = false;
    for (let i = 0; i < show; i++) {
      const dirs = randomPlaneDirections(d, { seed, index: i * per });
      const xi = samples.x.subarray(i * d, (i + 1) * d);
      const p = await decisionPlane(rt, model, xi, data.sampleShape, dirs, {
        range,
        resolution: res,
      });
      radius += p.radius / show;
      censored ||= p.censored;
      planes.push(p);
    }
    const adversarialPlanes: (DecisionPlane | null)[] = [];
    for (const [i, a] of advDirs.entries()) {
      if (!a) {
        adversarialPlanes.push(null);
        continue;
      }
      const xi = samples.x.subarray(i * d, (i + 1) * d);
      adversarialPlanes.push(
        await decisionPlane(rt, model, xi, data.sampleShape, a.dirs, { range, resolution: res }),
      );
    }
    let rob: RobustnessResult | undefined;
    if (attacks.length && eps.length) {
      log(`${name}: ${attacks.join(", ")} at ε = ${eps.join(", ")}`);
      rob = await robustness(rt, model, samples, {
        attacks,
        eps,
        steps: pgdSteps,
        alpha: pgdAlpha,
        randomStart,
        seed,
        sanityChecks: false,
      });
    }
    const row: ReportRow = {
      name,
      accuracy: m.accuracy,
      loss: m.loss,
      ece: m.ece,
      mce: m.mce,
      jacobianMean: jac.mean,
      jacobianSe: jac.se,
      tvIso: tv.isoMean,
      tvIsoSe: tv.isoSe,
      tvAniso: tv.anisoMean,
      tvAnisoSe: tv.anisoSe,
      discRadius: radius,
      discCensored: censored,
      robustness: rob,
    };
    // Saliency and occlusion of the shown centres.
    let attribution: ModelMeasurement["attribution"];
    if (isImage && show > 0) {
      log(`${name}: saliency and occlusion`);
      const xt = rt.upload(samples.x.subarray(0, show * d), [show, ...data.sampleShape]);
      const sal = await saliency(rt, model, xt);
      const maps = (await sal.map.read()) as Float32Array;
      sal.map.dispose();
      sal.target.dispose();
      xt.dispose();
      const w = data.sampleShape[2];
      const occ: OcclusionMap[] = [];
      for (let i = 0; i < show; i++) {
        const xi = samples.x.subarray(i * d, (i + 1) * d);
        occ.push(
          await occlusion(rt, model, xi, data.sampleShape, {
            window: Math.max(2, Math.round(w / 4)),
            stride: Math.max(1, Math.round(w / 8)),
          }),
        );
      }
      attribution = { saliency: maps, occlusion: occ };
    }
    const pn = Math.min(n, opts.pcaSamples ?? 300);
    let pcs: LayerPca[] | undefined;
    if (pn >= 3) {
      log(`${name}: PCA of activations`);
      pcs = await activationPca(rt, model, { ...samples, length: pn }, { maxSamples: pn });
    }
    const weights = await weightStats(model.params());
    const toy = isToy ? await toyMaps(rt, model, { resolution: 150 }) : undefined;
    measured.push({
      name,
      row,
      evaluation: m,
      jacobianHistogram: histogram(jac.norms, 30),
      planes,
      adversarialPlanes,
      attribution,
      pca: pcs,
      weights,
      toy,
      history: historyOf(metadata),
      training: trainingOf(metadata),
    });
  }

  return {
    dataName: data.name,
    classes: data.classes,
    classNames: Array.from(
      { length: data.classes },
      (_, i) => data.classNames?.[i] ?? String(i),
    ),
    sampleShape: data.sampleShape,
    shownInputs: samples.x.slice(0, show * d),
    shownLabels: samples.y.slice(0, show),
    adversarial: advDirs.map((a) => (a ? { distance: a.dist } : null)),
    adversarialEps: eps.length ? Math.max(...eps) : NaN,
    settings: {
      samples: n,
      jacobianSamples: jn,
      nproj,
      images,
      planesPerImage: per,
      range,
      resolution: res,
      show,
      attacks,
      eps,
      attacksSkipped: !inBox && asked.length > 0,
      pgdSteps,
      pgdAlpha,
      randomStart,
    },
    models: measured,
  };
}

/**
 * What a comparison report measures: every model on the same samples, the same plane centres
 * and the same directions (seeded), so that differences come from the models — clean accuracy,
 * loss, ECE/MCE, the Jacobian Frobenius norm, decision-plane TV (mean ± standard error), the
 * radius of the centre's cell, FGSM/PGD accuracy at chosen ε, the drawn planes (random and
 * toward an FGSM example), saliency and occlusion maps, feature maps of every convolution, PCA
 * and t-SNE of layer activations, weight
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
import { histogram, quantile } from "./_common.ts";
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
import { activationTsne, type LayerTsne } from "./tsne.ts";
import { featureMaps, type LayerFeatureMaps } from "./feature_maps.ts";
import { type WeightStats, weightStats } from "./weights.ts";
import { type ToyMaps, toyMaps } from "./toy.ts";
import { logitMargins } from "./margin.ts";
import { type PredictorAnalysis, predictorCorrelations } from "./rank_correlation.ts";

/** A model to put in the report. */
export interface ReportModel {
  /** Column/legend name (the checkpoint's file name). */
  name: string;
  model: Sequential;
  /** Checkpoint metadata (for the training history). */
  metadata?: Record<string, unknown>;
  /**
   * The model's own training samples (same sample shape as the data; the first `limit` are used)
   * for its training accuracy and generalization gap (train − test accuracy); none: no gap.
   */
  train?: { x: Float32Array; y: Int32Array | Uint32Array };
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
  /**
   * Samples for the t-SNE scatters of the last three PCA layers (0 = none; at most
   * `pcaSamples`). Default 300.
   */
  tsneSamples?: number;
  /** t-SNE perplexity (lowered to ⌊(N − 2) / 3⌋ for few samples). Default 30. */
  perplexity?: number;
  /** Image models: samples whose feature maps are drawn (the first shown ones; 0 = none). Default 2. */
  featureMaps?: number;
  /** Feature maps: the first channels drawn per layer (default 16; 0 = all). */
  featureMapChannels?: number;
  /** Seed of planes, projections and attack starts. Default 0. */
  seed?: number;
  /**
   * What predicts robustness (with at least 3 models): bootstrap resamples of the checkpoints
   * (default 2000), level (0.95), and the PGD ε of the scatter plots (default the middle of
   * `eps`, `eps[⌊(k−1)/2⌋]`). The seed is `seed`.
   */
  predictors?: { resamples?: number; level?: number; eps?: number };
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
  /** Mean and median over the samples of the logit margin `f_y − max_{j≠y} f_j`. */
  margin: number;
  marginMedian: number;
  /** ‖W‖_F over all weight tensors together (biases excluded), and Σ log σ_max(W) over them. */
  weightNorm: number;
  logSpectralProduct: number;
  /** Accuracy on the training samples, and train − test accuracy (absent without them). */
  trainAccuracy?: number;
  generalizationGap?: number;
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
  /** Most training samples any model's training accuracy used (0: none given). */
  trainSamples: number;
  /** Samples of the t-SNE scatters (0: none) and their perplexity. */
  tsneSamples: number;
  perplexity: number;
  /** Samples whose feature maps were taken (0: none, or not an image model). */
  featureMaps: number;
  /** The first channels of each feature map kept (0: all). */
  featureMapChannels: number;
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
  /** 2-D t-SNE of the last three PCA layers' activations (absent when not asked for). */
  tsne?: LayerTsne[];
  /** Image models: the feature maps of every convolution for the first samples. */
  featureMaps?: LayerFeatureMaps[];
  /** Statistics of every parameter tensor. */
  weights: WeightStats[];
  /** 2-input models: the decision map and area factor over [-2, 2]² at 150×150. */
  toy?: ToyMaps;
  /** The checkpoint's per-epoch history (empty without one). */
  history: Record<string, number>[];
  /** The checkpoint's label-noise record (`data.labelNoise`), when it was trained with one. */
  labelNoise?: { fraction?: number; corrupted?: number; samples?: number };
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
  /** `(featureMaps, ...sampleShape)` inputs and labels of the feature-map samples. */
  featureMapInputs: Float32Array;
  featureMapLabels: Int32Array;
  /** Per shown centre, the L2 distance to the first model's FGSM example (null: none). */
  adversarial: ({ distance: number } | null)[];
  /** Largest ε (of the FGSM example the adversarial planes point toward). */
  adversarialEps: number;
  settings: ReportSettings;
  /** One entry per model, in the given order. */
  models: ModelMeasurement[];
  /**
   * With 3 or more models: Spearman ρ (bootstrap CI over the models) of each measured quantity
   * against the generalization gap and PGD accuracy at each ε; `scatterTarget` is the target of
   * the scatter plots.
   */
  predictors?: PredictorAnalysis & { scatterTarget?: string };
}

/** Column titles of the predictor table, by `ReportRow` field. */
export const PREDICTOR_QUANTITIES: Record<string, string> = {
  accuracy: "clean accuracy",
  loss: "test loss",
  ece: "ECE",
  mce: "MCE",
  jacobianMean: "‖J‖_F",
  tvIso: "TV iso",
  tvAniso: "TV aniso",
  discRadius: "cell radius",
  margin: "mean logit margin",
  weightNorm: "‖W‖_F (all weights)",
  logSpectralProduct: "Σ log σ_max(W)",
};

/** The target name of PGD accuracy at `eps` in {@linkcode ReportMeasurements.predictors}. */
export function pgdTarget(eps: number): string {
  return `PGD accuracy ε=${eps}`;
}

/** The target name of the generalization gap. */
export const GAP_TARGET = "gap (train − test acc)";

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

/** `{ labelNoise }` from a checkpoint's `data.labelNoise`, or `{}`. */
function labelNoiseOf(meta?: Record<string, unknown>): Pick<ModelMeasurement, "labelNoise"> {
  const n = (meta?.data as { labelNoise?: unknown } | undefined)?.labelNoise;
  return n && typeof n === "object" ? { labelNoise: n as ModelMeasurement["labelNoise"] } : {};
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
  const pe = opts.predictors?.eps;
  if (pe !== undefined && !eps.includes(pe)) {
    throw new Error(`measureModels: predictors.eps ${pe} is not among the attack radii ${eps}`);
  }
  let trainMax = 0;
  const isToy = d === 2;
  const fmN = isImage ? Math.min(opts.featureMaps ?? 2, n) : 0;
  const fmC = opts.featureMapChannels ?? 16;
  const pn = Math.min(n, opts.pcaSamples ?? 300);
  const tn = pn >= 3 ? Math.min(pn, opts.tsneSamples ?? 300) : 0;
  const perplexity = opts.perplexity ?? 30;

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
  for (const { name, model, metadata, train } of models) {
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
    const margins = await logitMargins(rt, model, samples);
    const sortedMargins = Float64Array.from(margins).sort();
    let trainAccuracy: number | undefined;
    if (train && train.y.length > 0) {
      const k = Math.min(n, train.y.length);
      trainMax = Math.max(trainMax, k);
      log(`${name}: accuracy on ${k} training samples`);
      trainAccuracy = (await evaluateMetrics(rt, model, {
        x: train.x.subarray(0, k * d),
        y: train.y.subarray(0, k),
        sampleShape: data.sampleShape,
      })).accuracy;
    }
    const weights = await weightStats(model.params());
    let ww = 0, logSpec = 0;
    for (const w of weights) {
      ww += w.l2 * w.l2;
      logSpec += w.spectralNorm === undefined ? NaN : Math.log(w.spectralNorm);
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
      margin: margins.reduce((a, v) => a + v, 0) / margins.length,
      marginMedian: quantile(sortedMargins, 0.5),
      weightNorm: Math.sqrt(ww),
      logSpectralProduct: weights.length ? logSpec : NaN,
      trainAccuracy,
      generalizationGap: trainAccuracy === undefined ? undefined : trainAccuracy - m.accuracy,
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
    let pcs: LayerPca[] | undefined;
    if (pn >= 3) {
      log(`${name}: PCA of activations`);
      pcs = await activationPca(rt, model, { ...samples, length: pn }, { maxSamples: pn });
    }
    let tsnes: LayerTsne[] | undefined;
    if (pcs && tn >= 3) {
      log(`${name}: t-SNE of activations (${tn} samples, perplexity ${perplexity})`);
      tsnes = await activationTsne(rt, model, { ...samples, length: tn }, {
        maxSamples: tn,
        layers: pcs.slice(-3).map((p) => p.index),
        perplexity,
        seed,
      });
    }
    let maps: LayerFeatureMaps[] | undefined;
    if (fmN > 0) {
      log(`${name}: feature maps of ${fmN} samples`);
      maps = await featureMaps(rt, model, { ...samples, length: fmN }, {
        maxSamples: fmN,
        maxChannels: fmC || Infinity,
      });
    }
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
      tsne: tsnes,
      featureMaps: maps,
      weights,
      toy,
      history: historyOf(metadata),
      ...labelNoiseOf(metadata),
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
    featureMapInputs: samples.x.slice(0, fmN * d),
    featureMapLabels: samples.y.slice(0, fmN),
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
      trainSamples: trainMax,
      tsneSamples: tn,
      perplexity,
      featureMaps: fmN,
      featureMapChannels: fmC,
    },
    models: measured,
    predictors: measured.length >= 3
      ? predictorsOf(measured.map((m) => m.row), attacks.includes("pgd") ? eps : [], seed, opts)
      : undefined,
  };
}

/** ρ of every quantity in {@linkcode PREDICTOR_QUANTITIES} against the gap and PGD accuracy. */
function predictorsOf(
  rows: ReportRow[],
  eps: number[],
  seed: number,
  opts: ReportOptions,
): PredictorAnalysis & { scatterTarget?: string } {
  const points = rows.map((r) => {
    const quantities: Record<string, number> = {};
    for (const [k, label] of Object.entries(PREDICTOR_QUANTITIES)) {
      quantities[label] = r[k as keyof ReportRow] as number;
    }
    const targets: Record<string, number> = {};
    if (r.generalizationGap !== undefined) targets[GAP_TARGET] = r.generalizationGap;
    eps.forEach((e, i) => (targets[pgdTarget(e)] = r.robustness?.accuracy.pgd?.[i] ?? NaN));
    return { name: r.name, quantities, targets };
  });
  const p = opts.predictors ?? {};
  const scatterEps = p.eps ?? eps[Math.floor((eps.length - 1) / 2)];
  return {
    ...predictorCorrelations(points, { resamples: p.resamples, level: p.level, seed }),
    scatterTarget: scatterEps === undefined ? undefined : pgdTarget(scatterEps),
  };
}

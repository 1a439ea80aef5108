/**
 * Accuracy (overall and per class), cross-entropy loss, confusion matrix, and calibration:
 * expected and maximum calibration error over equal-width confidence bins, reliability-diagram
 * data and the histogram of max-softmax confidence (Guo, Pleiss, Sun & Weinberger 2017, "On
 * calibration of modern neural networks", sec. 2: bins `((m-1)/M, m/M]`, `ECE = Σ_m |B_m|/n
 * |acc(B_m) − conf(B_m)|`, `MCE = max_m |acc(B_m) − conf(B_m)|` over non-empty bins, M = 15).
 *
 * The per-sample numbers (softmax max, arg max, correctness, NLL) come from one GPU kernel per
 * batch; binning and sums are done in float64 on the CPU.
 *
 * @module
 */

import { fittingBatchSize } from "../layers/memory.ts";
import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { runMetricsKernel } from "./_kernels.ts";
import { forBatches, histogram, inEval, type MetricModel, type Samples } from "./_common.ts";

/**
 * Per-sample prediction statistics of a batch of logits, on the GPU.
 * @param rt runtime
 * @param logits (B, K) f32
 * @param labels (B,) u32/i32 or null (then `correct` and `nll` are 0)
 * @param out optional (B, 4) f32 output
 * @returns (B, 4) f32 rows `[max_j softmax_j, arg max, correct (0/1), −log softmax_label]`;
 *   `out` or a new tensor the caller disposes. An out-of-range label gives NaN NLL.
 */
export function predictionStatsGpu(
  rt: Backend,
  logits: Tensor,
  labels: Tensor | null,
  out?: Tensor,
): Tensor {
  if (logits.dtype !== "f32" || logits.shape.length !== 2 || logits.shape[1] < 1) {
    throw new Error(`predictionStats: logits must be f32 (B, K), got ${logits.describe()}`);
  }
  const [b, k] = logits.shape;
  if (labels && (labels.dtype === "f32" || labels.size !== b)) {
    throw new Error(`predictionStats: labels must be u32/i32 [${b}], got ${labels.describe()}`);
  }
  if (out && (out.size !== b * 4 || out.dtype !== "f32")) {
    throw new Error(`predictionStats: out must be f32 [${b},4], got ${out.describe()}`);
  }
  const y = out ?? rt.empty([b, 4], "f32", "prediction stats");
  runMetricsKernel(
    rt,
    "pred_stats",
    { xa: logits, xu: labels ?? undefined, y },
    { n: b, k, flag: labels ? 1 : 0 },
    b,
  );
  return y;
}

/** Per-sample predictions of a data set. */
export interface PredictionStats {
  /** (N,) max-softmax probability. */
  confidence: Float32Array;
  /** (N,) predicted class (arg max of the logits, first on ties). */
  pred: Int32Array;
  /** (N,) 1 when the prediction equals the label (0 without labels). */
  correct: Uint8Array;
  /** (N,) cross-entropy −log p_label (0 without labels). */
  nll: Float32Array;
  /** Number of classes K. */
  classes: number;
}

/** Options of {@linkcode predictionStats}. */
export interface PredictionOptions {
  /** Samples per forward pass. Default 500. */
  batchSize?: number;
}

/**
 * Runs the model (eval mode) over a data set and returns per-sample statistics.
 * @param rt runtime
 * @param model classifier taking inputs in [0, 1]
 * @param data samples (labels optional)
 * @param opts batch size
 * @returns CPU arrays (owned by the caller)
 * @example
 * ```ts
 * import {
 *   buildModel,
 *   calibration,
 *   modelSpecFromName,
 *   predictionStats,
 *   Runtime,
 *   toy2d,
 * } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const ds = toy2d({ split: "test" });
 * const s = await predictionStats(rt, model, { x: ds.x, y: ds.y, sampleShape: ds.sampleShape });
 * const { ece } = calibration(s.confidence, s.correct);
 * console.log(ece);
 * model.dispose();
 * ```
 */
export function predictionStats(
  rt: Backend,
  model: MetricModel,
  data: Samples,
  opts: PredictionOptions = {},
): Promise<PredictionStats> {
  return inEval(model, async () => {
    const parts: { start: number; v: Float32Array }[] = [];
    let classes = 0;
    await forBatches(
      rt,
      data,
      opts.batchSize ?? fittingBatchSize(rt, model, data.sampleShape, 500),
      async (x, y, start) => {
        const logits = model.forward(x);
        classes = logits.shape[1];
        const s = predictionStatsGpu(rt, logits, y);
        parts.push({ start, v: (await s.read()) as Float32Array });
        s.dispose();
      },
      "predictionStats",
    );
    const n = parts.reduce((a, p) => a + p.v.length / 4, 0);
    const r: PredictionStats = {
      confidence: new Float32Array(n),
      pred: new Int32Array(n),
      correct: new Uint8Array(n),
      nll: new Float32Array(n),
      classes,
    };
    for (const { start, v } of parts) {
      for (let i = 0; i < v.length / 4; i++) {
        r.confidence[start + i] = v[4 * i];
        r.pred[start + i] = v[4 * i + 1];
        r.correct[start + i] = v[4 * i + 2];
        r.nll[start + i] = v[4 * i + 3];
      }
    }
    if (data.y && r.nll.some((v) => Number.isNaN(v))) {
      const bad = Array.from(data.y.subarray(0, n)).find((l) => l < 0 || l >= classes);
      throw new Error(`predictionStats: label ${bad} is outside [0, ${classes})`);
    }
    return r;
  });
}

/** Accuracy, loss and confusion matrix. */
export interface ClassificationMetrics {
  /** Fraction of correct predictions. */
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  /** Accuracy of each true class (NaN for a class with no samples). */
  perClassAccuracy: number[];
  /** (K, K) counts, row = true class, column = predicted class. */
  confusion: number[][];
  /** Number of samples. */
  count: number;
}

/**
 * Accuracy (overall and per class), mean loss and the confusion matrix.
 * @param stats per-sample predictions (from {@linkcode predictionStats})
 * @param labels (N,) true classes
 * @returns metrics over the N samples
 */
export function classificationMetrics(
  stats: PredictionStats,
  labels: ArrayLike<number>,
): ClassificationMetrics {
  const n = stats.pred.length, k = stats.classes;
  if (labels.length < n) {
    throw new Error(`classificationMetrics: ${labels.length} labels for ${n} predictions`);
  }
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let hit = 0, loss = 0;
  for (let i = 0; i < n; i++) {
    const t = labels[i], p = stats.pred[i];
    if (!(t >= 0 && t < k)) throw new Error(`classificationMetrics: label ${t} outside [0, ${k})`);
    confusion[t][p]++;
    if (t === p) hit++;
    loss += stats.nll[i];
  }
  const perClassAccuracy = confusion.map((row, c) => {
    const tot = row.reduce((a, b) => a + b, 0);
    return tot ? row[c] / tot : NaN;
  });
  return {
    accuracy: n ? hit / n : NaN,
    loss: n ? loss / n : NaN,
    perClassAccuracy,
    confusion,
    count: n,
  };
}

/** One bin of a reliability diagram. */
export interface ReliabilityBin {
  /** Lower edge (exclusive, except 0 for the first bin). */
  lo: number;
  /** Upper edge (inclusive). */
  hi: number;
  /** Samples in the bin. */
  count: number;
  /** Fraction correct in the bin (NaN when empty). */
  accuracy: number;
  /** Mean confidence in the bin (NaN when empty). */
  confidence: number;
}

/** Calibration errors and reliability-diagram data. */
export interface Calibration {
  /** Expected calibration error. */
  ece: number;
  /** Maximum calibration error over non-empty bins. */
  mce: number;
  /** The bins, lowest confidence first. */
  bins: ReliabilityBin[];
}

/**
 * ECE, MCE and reliability bins (Guo et al. 2017, equal-width bins `((m−1)/M, m/M]`; a
 * confidence of exactly 0 goes to the first bin).
 * @param confidence (N,) max-softmax probabilities in [0, 1]
 * @param correct (N,) 1 for a correct prediction, else 0
 * @param opts `bins` M (default 15)
 * @returns ECE, MCE and the M bins
 * @example
 * ```ts
 * import { calibration } from "@regula/regula";
 *
 * // Four predictions: confidences and whether each was right.
 * const { ece, mce, bins } = calibration([0.9, 0.8, 0.6, 0.95], [1, 0, 1, 1], { bins: 10 });
 * console.log(ece, mce, bins.length); // bins.length === 10
 * ```
 */
export function calibration(
  confidence: ArrayLike<number>,
  correct: ArrayLike<number>,
  opts: { bins?: number } = {},
): Calibration {
  const m = opts.bins ?? 15;
  if (!(Number.isInteger(m) && m >= 1)) {
    throw new Error(`calibration: bins must be a positive integer, got ${m}`);
  }
  const n = confidence.length;
  if (correct.length !== n) {
    throw new Error(`calibration: ${n} confidences but ${correct.length} correctness flags`);
  }
  const cnt = new Float64Array(m), acc = new Float64Array(m), conf = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const c = confidence[i];
    if (!(c >= 0 && c <= 1)) throw new Error(`calibration: confidence ${c} is outside [0, 1]`);
    const b = Math.min(m - 1, Math.max(0, Math.ceil(c * m) - 1));
    cnt[b]++;
    acc[b] += correct[i];
    conf[b] += c;
  }
  let ece = 0, mce = 0;
  const bins: ReliabilityBin[] = [];
  for (let b = 0; b < m; b++) {
    const a = cnt[b] ? acc[b] / cnt[b] : NaN, c = cnt[b] ? conf[b] / cnt[b] : NaN;
    if (cnt[b]) {
      const gap = Math.abs(a - c);
      ece += (cnt[b] / n) * gap;
      mce = Math.max(mce, gap);
    }
    bins.push({ lo: b / m, hi: (b + 1) / m, count: cnt[b], accuracy: a, confidence: c });
  }
  return { ece: n ? ece : NaN, mce: n ? mce : NaN, bins };
}

/**
 * Histogram of max-softmax confidence over [0, 1].
 * @param confidence (N,) values in [0, 1]
 * @param bins number of equal-width bins (default 20)
 * @returns `edges` (bins + 1) and `counts` (bins)
 */
export function confidenceHistogram(
  confidence: ArrayLike<number>,
  bins = 20,
): { edges: number[]; counts: number[] } {
  return histogram(confidence, bins, 0, 1);
}

/** Everything {@linkcode evaluateMetrics} returns. */
export interface EvaluationReport extends ClassificationMetrics, Calibration {
  /** Histogram of max-softmax confidence (20 bins over [0, 1]). */
  confidenceHistogram: { edges: number[]; counts: number[] };
}

/**
 * Accuracy, loss, confusion, ECE/MCE and confidence histogram of a model on labelled data.
 * @param rt runtime
 * @param model classifier
 * @param data samples with labels
 * @param opts batch size, calibration bins (default 15)
 * @returns the metrics (CPU numbers)
 * @example
 * ```ts
 * import { buildModel, evaluateMetrics, modelSpecFromName, Runtime, toy2d } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const ds = toy2d({ split: "test" });
 * const m = await evaluateMetrics(rt, model, { x: ds.x, y: ds.y, sampleShape: ds.sampleShape });
 * console.log(m.accuracy, m.loss, m.ece, m.mce, m.confusion);
 * model.dispose();
 * ```
 */
export async function evaluateMetrics(
  rt: Backend,
  model: MetricModel,
  data: Samples,
  opts: PredictionOptions & { bins?: number } = {},
): Promise<EvaluationReport> {
  if (!data.y) throw new Error("evaluateMetrics: the data set has no labels");
  const s = await predictionStats(rt, model, data, opts);
  return {
    ...classificationMetrics(s, data.y),
    ...calibration(s.confidence, s.correct, { bins: opts.bins }),
    confidenceHistogram: confidenceHistogram(s.confidence),
  };
}

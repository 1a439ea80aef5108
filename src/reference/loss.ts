/**
 * Float64 CPU references of `src/losses/`: softmax cross-entropy (class
 * labels or soft targets, label smoothing), mean squared error, and the
 * argmax-accuracy count. Plain loops, written for clarity, not speed.
 *
 * @module
 */

/** Loss and gradient of a reduced loss. */
export interface RefLoss {
  /** The reduced loss. */
  loss: number;
  /** Gradient of the reduced loss with respect to the input. */
  grad: Float64Array;
  /** Per-sample losses (cross-entropy only). */
  perSample?: Float64Array;
}

/**
 * Softmax cross-entropy, PyTorch 1.13 semantics (target `(1-ε) onehot + ε/K`).
 * @param logits (B, K) row-major
 * @param b batch size B
 * @param k classes K
 * @param target (B,) labels (a label outside [0, K) gives a NaN loss and a 0 gradient
 *   row, like the GPU kernel) or (B, K) soft targets when `soft`
 * @param opts smoothing ε, reduction, soft targets
 */
export function refSoftmaxCrossEntropy(
  logits: ArrayLike<number>,
  b: number,
  k: number,
  target: ArrayLike<number>,
  opts: { labelSmoothing?: number; reduction?: "mean" | "sum"; soft?: boolean } = {},
): RefLoss {
  const eps = opts.labelSmoothing ?? 0;
  const scale = (opts.reduction ?? "mean") === "mean" ? 1 / b : 1;
  const grad = new Float64Array(b * k);
  const perSample = new Float64Array(b);
  let total = 0;
  for (let i = 0; i < b; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[i * k + j]);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[i * k + j] - m);
    const logs = Math.log(s);
    const t = new Float64Array(k);
    let bad = false;
    if (opts.soft) {
      for (let j = 0; j < k; j++) t[j] = (1 - eps) * target[i * k + j] + eps / k;
    } else {
      const y = target[i];
      bad = !(Number.isInteger(y) && y >= 0 && y < k);
      for (let j = 0; j < k; j++) t[j] = (j === y ? 1 - eps : 0) + eps / k;
    }
    let tmass = 0;
    for (let j = 0; j < k; j++) tmass += t[j];
    let l = 0;
    for (let j = 0; j < k; j++) {
      const logp = logits[i * k + j] - m - logs;
      if (t[j] !== 0) l -= t[j] * logp;
      grad[i * k + j] = bad ? 0 : (Math.exp(logp) * tmass - t[j]) * scale;
    }
    perSample[i] = bad ? NaN : l;
    total += perSample[i];
  }
  return { loss: total * scale, grad, perSample };
}

/**
 * Mean squared error `Σ (p - t)² / n` (or the sum) and its gradient.
 * @param pred values
 * @param target values, same length
 */
export function refMse(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  reduction: "mean" | "sum" = "mean",
): RefLoss {
  const n = pred.length;
  const scale = reduction === "mean" ? 1 / n : 1;
  const grad = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i] - target[i];
    s += d * d;
    grad[i] = 2 * d * scale;
  }
  return { loss: s * scale, grad };
}

/**
 * Number of rows whose first maximal logit (NaN counts as maximal) is at the label.
 * @param logits (B, K) row-major
 * @param labels (B,)
 */
export function refAccuracyCount(
  logits: ArrayLike<number>,
  b: number,
  k: number,
  labels: ArrayLike<number>,
): number {
  let count = 0;
  for (let i = 0; i < b; i++) {
    let best = -1;
    for (let j = 0; j < k; j++) {
      const v = logits[i * k + j];
      if (Number.isNaN(v)) {
        best = j;
        break;
      }
      if (best < 0 || v > logits[i * k + best]) best = j;
    }
    if (best === labels[i]) count++;
  }
  return count;
}

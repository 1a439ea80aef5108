/**
 * The output (logit) margin of each sample, `f_y(x) − max_{j≠y} f_j(x)`: positive when the
 * sample is classified correctly, and larger the farther the logits are from a tie. Its mean
 * over the test set is one of the candidate predictors of generalization in Jiang et al. 2019,
 * "Predicting the generalization gap in deep networks with margin distributions", and Bartlett,
 * Foster & Telgarsky 2017, "Spectrally-normalized margin bounds for neural networks" (there
 * normalised by the product of spectral norms; here raw, beside the weight norms).
 *
 * The logits are read back (B·K floats per batch) and the margin taken on the host in float64.
 *
 * @module
 */

import { fittingBatchSize } from "../layers/memory.ts";
import type { Backend } from "../backend.ts";
import { forBatches, inEval, type MetricModel, type Samples } from "./_common.ts";

/**
 * Per-sample logit margins `f_y(x) − max_{j≠y} f_j(x)` (eval mode).
 * @param rt runtime
 * @param model classifier with K ≥ 2 outputs
 * @param data samples with labels
 * @param opts batch size (default 500)
 * @returns (N,) float64 margins (the caller owns them)
 * @example
 * ```ts
 * const m = await logitMargins(rt, model, { x, y, sampleShape: [2] });
 * const mean = m.reduce((a, v) => a + v, 0) / m.length;
 * ```
 */
export function logitMargins(
  rt: Backend,
  model: MetricModel,
  data: Samples,
  opts: { batchSize?: number } = {},
): Promise<Float64Array> {
  const labels = data.y;
  if (!labels) throw new Error("logitMargins: the data set has no labels");
  return inEval(model, async () => {
    const parts: { start: number; v: Float64Array }[] = [];
    let total = 0;
    await forBatches(
      rt,
      { ...data, y: undefined },
      opts.batchSize ?? fittingBatchSize(rt, model, data.sampleShape, 500),
      async (x, _y, start) => {
        const out = model.forward(x);
        const [b, k] = out.shape;
        if (out.shape.length !== 2 || k < 2) {
          throw new Error(
            `logitMargins: the model must output (B, K ≥ 2) logits, got ${out.shape}`,
          );
        }
        const z = (await out.read()) as Float32Array;
        const v = new Float64Array(b);
        for (let i = 0; i < b; i++) {
          const t = labels[start + i];
          if (!(t >= 0 && t < k)) throw new Error(`logitMargins: label ${t} outside [0, ${k})`);
          let other = -Infinity;
          for (let j = 0; j < k; j++) if (j !== t) other = Math.max(other, z[i * k + j]);
          v[i] = z[i * k + t] - other;
        }
        parts.push({ start, v });
        total += b;
      },
      "logitMargins",
    );
    const r = new Float64Array(total);
    for (const { start, v } of parts) r.set(v, start);
    return r;
  });
}

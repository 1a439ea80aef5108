/**
 * The outputs of a chain's layers on a batch of samples, run layer by layer in eval mode: what
 * the PCA and t-SNE scatters of activations are drawn from.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { inEval, type MetricModel, type Samples, sampleSizeOf } from "./_common.ts";

/** One layer's output on the samples. */
export interface LayerOutput {
  /** Position in `model.layers`. */
  index: number;
  /** Layer name (module path) and class, e.g. "act1 (Activation)". */
  layer: string;
  /** (N, D) the output, one row per sample. */
  acts: Float32Array;
  n: number;
  d: number;
}

/**
 * Runs the model's layers one by one on up to `maxSamples` samples (one batch, eval mode) and
 * calls `visit` with the output of each chosen layer.
 * @param rt runtime
 * @param model a chain of layers (`Sequential` / `Model`)
 * @param data samples
 * @param opts `layers` (names or indices; default every layer whose output differs in size from
 *   its input or is not elementwise, and the last), `maxSamples` (default 500)
 * @param visit gets each chosen output (a CPU copy)
 */
export function forEachLayerOutput(
  rt: Backend,
  model: MetricModel & { layers: readonly Layer[] },
  data: Samples,
  opts: { layers?: (string | number)[]; maxSamples?: number },
  visit: (out: LayerOutput) => Promise<void> | void,
): Promise<void> {
  return inEval(model, async () => {
    const d0 = sampleSizeOf(data.sampleShape);
    const n = Math.min(opts.maxSamples ?? 500, data.length ?? data.x.length / d0);
    const x = rt.upload(data.x.subarray(0, n * d0), [n, ...data.sampleShape]);
    try {
      let h: Tensor = x;
      const layers = model.layers;
      for (const [i, l] of layers.entries()) {
        const y = l.forward(h);
        const want = opts.layers
          ? opts.layers.includes(i) || opts.layers.includes(l.name)
          : i === layers.length - 1 || y.size !== h.size || !isElementwise(l);
        h = y;
        if (!want) continue;
        const acts = (await y.read()) as Float32Array;
        await visit({
          index: i,
          layer: `${l.name || i} (${l.constructor.name})`,
          acts,
          n,
          d: y.size / n,
        });
      }
    } finally {
      x.dispose();
    }
  });
}

function isElementwise(l: Layer): boolean {
  // Activations, dropout and flatten keep the size; report their outputs only where the
  // representation changes (after each activation of a conv/linear layer).
  return /Dropout|Flatten|Normalize/.test(l.constructor.name);
}

/**
 * Feature maps: the per-channel activation images of every convolution of a model for a few
 * samples (the seed study's "Feature Map Visualizations"; Zeiler & Fergus 2014 look at the same
 * maps). Each map is taken after the convolution's activation: the chain's leaves are run one by
 * one (eval mode, containers such as ResNet's stages opened), and a Conv2d (or its weight-norm
 * wrapper) followed by normalization layers and an activation gives the activation's output;
 * one with no activation after it gives its last normalization's (or its own) output. A residual
 * block is one leaf; its output (after the block's final ReLU) is taken as a map too.
 *
 * @example
 * ```ts
 * import { featureMaps } from "./feature_maps.ts";
 * const maps = await featureMaps(rt, model, { x, sampleShape: [1, 28, 28], length: 2 });
 * for (const m of maps) console.log(m.layer, m.channels, m.height, m.width);
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { Sequential } from "../layers/sequential.ts";
import { Conv2d } from "../layers/conv2d.ts";
import { WeightNorm } from "../layers/weight_norm.ts";
import { Activation } from "../layers/activation.ts";
import { BatchNorm } from "../layers/batchnorm.ts";
import { GroupNorm, LayerNorm } from "../layers/layernorm.ts";
import { BasicBlock } from "../layers/residual.ts";
import { countSamples, inEval, type MetricModel, type Samples, sampleSizeOf } from "./_common.ts";

/** The maps of one convolution (or residual block) for the chosen samples. */
export interface LayerFeatureMaps {
  /** The layer whose output this is, e.g. "act1 (Activation)". */
  layer: string;
  /** The convolution (or block) it belongs to, e.g. "conv1". */
  source: string;
  /** "activation", "conv" (no activation after it) or "block" (a residual block's output). */
  kind: "activation" | "conv" | "block";
  /** (N, C, H, W) f32 the output. */
  values: Float32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  /** (C,) smallest and largest value of each channel over the N samples: its colour scale. */
  min: Float64Array;
  max: Float64Array;
}

/** The leaves of a chain, in forward order (nested `Sequential`s opened). */
function leaves(layers: readonly Layer[]): Layer[] {
  return layers.flatMap((l) => (l instanceof Sequential ? leaves(l.layers) : [l]));
}

const isConv = (l: Layer) =>
  l instanceof Conv2d || (l instanceof WeightNorm && l.inner instanceof Conv2d);
const isNorm = (l: Layer) =>
  l instanceof BatchNorm || l instanceof GroupNorm || l instanceof LayerNorm;

/**
 * The feature maps of every convolution (after its activation) and every residual block, for
 * the first `maxSamples` samples.
 * @param rt runtime
 * @param model a chain of layers (`Sequential` / `Model`), image input (B, C, H, W)
 * @param data samples `x` (N, C, H, W)
 * @param opts `maxSamples` (default 4)
 * @returns one entry per convolution or block, in forward order
 */
export async function featureMaps(
  rt: Backend,
  model: MetricModel & { layers: readonly Layer[] },
  data: Samples,
  opts: { maxSamples?: number } = {},
): Promise<LayerFeatureMaps[]> {
  const total = countSamples("featureMaps", data);
  if (data.sampleShape.length !== 3) {
    throw new Error(
      `featureMaps: needs image samples (C, H, W), got sample shape [${data.sampleShape}]`,
    );
  }
  const n = Math.min(opts.maxSamples ?? 4, total);
  if (n < 1) throw new Error("featureMaps: no samples");
  return await inEval(model, async () => {
    const d0 = sampleSizeOf(data.sampleShape);
    const x = rt.upload(data.x.subarray(0, n * d0), [n, ...data.sampleShape]);
    const out: LayerFeatureMaps[] = [];
    const take = async (t: Tensor, l: Layer, source: string, kind: LayerFeatureMaps["kind"]) => {
      const [, c, h, w] = t.shape;
      const values = (await t.read()) as Float32Array;
      const min = new Float64Array(c).fill(Infinity), max = new Float64Array(c).fill(-Infinity);
      for (let b = 0; b < n; b++) {
        for (let ch = 0; ch < c; ch++) {
          const o = (b * c + ch) * h * w;
          for (let i = 0; i < h * w; i++) {
            const v = values[o + i];
            if (v < min[ch]) min[ch] = v;
            if (v > max[ch]) max[ch] = v;
          }
        }
      }
      out.push({
        layer: `${l.name} (${l.constructor.name})`,
        source,
        kind,
        values,
        n,
        channels: c,
        height: h,
        width: w,
        min,
        max,
      });
    };
    try {
      let h: Tensor = x;
      // The convolution whose map is pending, and the last layer of its conv-norm-act run.
      let pending: { source: string; layer: Layer; out: Tensor } | null = null;
      for (const l of leaves(model.layers)) {
        const y = l.forward(h);
        if (isConv(l)) {
          if (pending) await take(pending.out, pending.layer, pending.source, "conv");
          pending = { source: l.name, layer: l, out: y };
        } else if (pending && (isNorm(l) || l instanceof Activation) && y.shape.length === 4) {
          if (l instanceof Activation) {
            await take(y, l, pending.source, "activation");
            pending = null;
          } else {
            pending.layer = l;
            pending.out = y;
          }
        } else {
          // A layer's output stays valid until that layer runs again: `pending.out` is still
          // the convolution's (or its norm's) output here.
          if (pending) await take(pending.out, pending.layer, pending.source, "conv");
          pending = null;
          if (l instanceof BasicBlock && y.shape.length === 4) await take(y, l, l.name, "block");
        }
        h = y;
      }
      if (pending) await take(pending.out, pending.layer, pending.source, "conv");
    } finally {
      x.dispose();
    }
    return out;
  });
}

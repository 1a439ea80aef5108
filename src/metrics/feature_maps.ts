/**
 * Feature maps: the per-channel activation images of every convolution of a model for a few
 * samples (the seed study's "Feature Map Visualizations"; Zeiler & Fergus 2014 look at the same
 * maps). Each map is taken after the convolution's activation. The model is walked through the
 * layer contract ({@linkcode JacobianRole}): a container's `children` run in order, a branch
 * point's `branches` each from the same input (then the branch point's own forward gives their
 * sum), and every other layer is a leaf run as is (eval mode). A Conv2d (or its weight-norm
 * wrapper) followed by normalization layers and an activation gives the activation's output;
 * one with no activation after it gives its last normalization's (or its own) output, and a run
 * ends at the end of its branch. So inside a ResNet BasicBlock, conv1 gives relu(bn1(conv1(x))),
 * conv2 gives bn2(conv2(·)) before the residual add, and the projection shortcut's 1x1 conv
 * gives its BatchNorm's output; the block's own output (after its final ReLU) is a map too.
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
import type { JacobianRole, Layer } from "../layers/layer.ts";
import { Conv2d } from "../layers/conv2d.ts";
import { WeightNorm } from "../layers/weight_norm.ts";
import { Activation } from "../layers/activation.ts";
import { BatchNorm } from "../layers/batchnorm.ts";
import { GroupNorm, LayerNorm } from "../layers/layernorm.ts";
import { countSamples, inEval, type MetricModel, type Samples, sampleSizeOf } from "./_common.ts";

/** The maps of one convolution (or residual block) for the chosen samples. */
export interface LayerFeatureMaps {
  /** The layer whose output this is, e.g. "act1 (Activation)", "layer1.0.bn2 (BatchNorm)". */
  layer: string;
  /** The convolution (or block) it belongs to, e.g. "conv1", "layer1.0.conv2". */
  source: string;
  /** "activation", "conv" (no activation after it) or "block" (a residual block's output). */
  kind: "activation" | "conv" | "block";
  /** The residual block this map is inside ("layer1.0"); absent outside blocks. */
  block?: string;
  /** (N, C, H, W) f32 the output, its first `channels` channels. */
  values: Float32Array;
  n: number;
  /** Channels kept (at most `maxChannels`). */
  channels: number;
  /** Channels of the layer's output. */
  totalChannels: number;
  height: number;
  width: number;
  /** (C,) smallest and largest value of each channel over the N samples: its colour scale. */
  min: Float64Array;
  max: Float64Array;
}

const isConv = (l: Layer) =>
  l instanceof Conv2d || (l instanceof WeightNorm && l.inner instanceof Conv2d);
const isNorm = (l: Layer) =>
  l instanceof BatchNorm || l instanceof GroupNorm || l instanceof LayerNorm;
/** A container whose chain holds a branch point: a residual block (BasicBlock: merge, ReLU). */
const isBlock = (role: JacobianRole | undefined) =>
  role?.children?.some((c) => c.jacobian?.branches) ?? false;

/**
 * The feature maps of every convolution (after its activation), inside residual blocks too, and
 * of every residual block, for the first `maxSamples` samples.
 * @param rt runtime
 * @param model a chain of layers (`Sequential` / `Model`), image input (B, C, H, W)
 * @param data samples `x` (N, C, H, W)
 * @param opts `maxSamples` (default 4); `maxChannels`, the first channels kept per map (default
 *   all)
 * @returns one entry per convolution or block, in forward order (a block's convolutions before
 *   its output: main path, then shortcut)
 */
export async function featureMaps(
  rt: Backend,
  model: MetricModel & { layers: readonly Layer[] },
  data: Samples,
  opts: { maxSamples?: number; maxChannels?: number } = {},
): Promise<LayerFeatureMaps[]> {
  const total = countSamples("featureMaps", data);
  if (data.sampleShape.length !== 3) {
    throw new Error(
      `featureMaps: needs image samples (C, H, W), got sample shape [${data.sampleShape}]`,
    );
  }
  const n = Math.min(opts.maxSamples ?? 4, total);
  if (n < 1) throw new Error("featureMaps: no samples");
  const maxChannels = opts.maxChannels ?? Infinity;
  if (!(maxChannels >= 1)) throw new Error(`featureMaps: maxChannels must be >= 1`);
  return await inEval(model, async () => {
    const d0 = sampleSizeOf(data.sampleShape);
    const x = rt.upload(data.x.subarray(0, n * d0), [n, ...data.sampleShape]);
    const out: LayerFeatureMaps[] = [];
    /** The residual block being walked, innermost. */
    let block: string | undefined;
    const take = async (t: Tensor, l: Layer, source: string, kind: LayerFeatureMaps["kind"]) => {
      const [, tc, h, w] = t.shape;
      const c = Math.min(tc, maxChannels);
      const all = (await t.read()) as Float32Array;
      const values = new Float32Array(n * c * h * w);
      for (let b = 0; b < n; b++) {
        values.set(all.subarray(b * tc * h * w, (b * tc + c) * h * w), b * c * h * w);
      }
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
        ...(block === undefined ? {} : { block }),
        values,
        n,
        channels: c,
        totalChannels: tc,
        height: h,
        width: w,
        min,
        max,
      });
    };
    // The convolution whose map is pending, and the last layer of its conv-norm-act run. A
    // layer's output stays valid until that layer runs again, so `out` is still the run's.
    type Pending = { source: string; layer: Layer; out: Tensor } | null;
    const flush = async (p: Pending) => {
      if (p) await take(p.out, p.layer, p.source, "conv");
    };
    /** Runs `l` on `h`, taking the maps on the way; `pending` carries a run across layers. */
    const walk = async (l: Layer, h: Tensor, st: { pending: Pending }): Promise<Tensor> => {
      const role = l.jacobian;
      if (role?.children) {
        const outer = block;
        if (isBlock(role)) block = l.name;
        try {
          for (const c of role.children) h = await walk(c, h, st);
          if (isBlock(role)) {
            await flush(st.pending);
            st.pending = null;
          }
        } finally {
          block = outer;
        }
        if (isBlock(role) && h.shape.length === 4) await take(h, l, l.name, "block");
        return h;
      }
      if (role?.branches) {
        await flush(st.pending);
        st.pending = null;
        for (const b of role.branches) {
          const inner = { pending: null as Pending };
          await walk(b, h, inner);
          await flush(inner.pending);
        }
        // Every branch's maps were read: the branch point's forward may run them again.
        return l.forward(h);
      }
      const y = l.forward(h);
      if (isConv(l)) {
        await flush(st.pending);
        st.pending = { source: l.name, layer: l, out: y };
      } else if (st.pending && (isNorm(l) || l instanceof Activation) && y.shape.length === 4) {
        if (l instanceof Activation) {
          await take(y, l, st.pending.source, "activation");
          st.pending = null;
        } else {
          st.pending.layer = l;
          st.pending.out = y;
        }
      } else {
        await flush(st.pending);
        st.pending = null;
      }
      return y;
    };
    try {
      const st = { pending: null as Pending };
      let h: Tensor = x;
      for (const l of model.layers) h = await walk(l, h, st);
      await flush(st.pending);
    } finally {
      x.dispose();
    }
    return out;
  });
}

/**
 * Seeded initialization of a model's parameters, by scheme. Values come from src/init (Philox
 * streams, PyTorch's formulas): they match PyTorch in distribution, not bit for bit, so tests
 * that compare with PyTorch upload our values to the twin.
 *
 * Schemes, for the weights of Linear and Conv2d layers (BatchNorm always starts at weight 1,
 * bias 0, running mean 0, running var 1, as in PyTorch):
 * - "default": what the PyTorch module's constructor does. `nn.Linear`/`nn.Conv2d`:
 *   kaiming_uniform(a = √5) weights and U(±1/√fan_in) biases; in ResNet-18 the convolutions
 *   instead get torchvision's kaiming_normal(mode = "fan_out", relu)
 *   (torchvision/models/resnet.py, `ResNet.__init__`), its fc the nn.Linear default.
 * - "xavier": xavier_uniform (gain 1; the seed study's LeNet), biases 0.
 * - "kaiming": kaiming_normal (fan_in, relu gain √2), biases 0.
 * - "orthogonal": orthogonal (gain 1; the starting point of hard SVB, Jia et al. 2019), biases 0.
 *
 * Parameter `i` of `model.params()` draws from Philox stream `i` of the seed, so changing one
 * layer's scheme does not shift another's values.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import {
  constant,
  defaultBias,
  defaultWeight,
  kaimingNormal,
  orthogonal,
  xavierUniform,
  zeros,
} from "../init/init.ts";

/** The initialization schemes of {@linkcode initializeParams}. */
export type InitScheme = "default" | "xavier" | "kaiming" | "orthogonal";

/** The names of {@linkcode InitScheme}. */
export const INIT_SCHEMES: readonly InitScheme[] = ["default", "xavier", "kaiming", "orthogonal"];

/** Options of {@linkcode initializeParams}. */
export interface InitializeOptions {
  /** Integer seed in [0, 2^53). */
  seed: number;
  /** Default "default". */
  scheme?: InitScheme;
  /** Use torchvision ResNet's fan-out Kaiming normal for the conv weights under "default". */
  resnetConvs?: boolean;
}

/**
 * Writes initial values into every parameter and buffer (through `rt.write`).
 * @param rt runtime
 * @param params the model's `params()`: conv/linear weights (2-D or more) and their biases,
 *   BatchNorm weight/bias (1-D) and buffers
 * @param opts seed, scheme
 * @throws Error for an unknown scheme
 */
export function initializeParams(
  rt: Backend,
  params: readonly Param[],
  opts: InitializeOptions,
): void {
  const scheme = opts.scheme ?? "default";
  if (!INIT_SCHEMES.includes(scheme)) {
    throw new Error(`Unknown init scheme '${scheme}'; schemes: ${INIT_SCHEMES.join(", ")}`);
  }
  const byName = new Map(params.map((p) => [p.name, p]));
  const written = new Map<string, Float32Array | Int32Array>();
  params.forEach((p, stream) => {
    if (p.scale) return; // after its weight_v, below
    const src = { seed: opts.seed, stream };
    const shape = p.value.shape;
    let data: Float32Array | Int32Array;
    if (p.kind === "buffer") {
      // BatchNorm: running_mean 0, running_var 1, num_batches_tracked 0.
      if (p.name.endsWith("running_var")) data = constant(shape, 1);
      else if (p.value.dtype === "f32") data = zeros(shape);
      else data = new Int32Array(p.value.size);
    } else if (p.kind === "weight" && (shape.length === 1 || p.elementwise)) {
      data = constant(shape, 1); // BatchNorm, GroupNorm, LayerNorm gamma
    } else if (p.kind === "weight") {
      if (scheme === "default") {
        data = opts.resnetConvs && shape.length === 4
          ? kaimingNormal(shape, { ...src, mode: "fan_out", nonlinearity: "relu" })
          : defaultWeight(shape, src);
      } else if (scheme === "xavier") data = xavierUniform(shape, src);
      else if (scheme === "kaiming") data = kaimingNormal(shape, { ...src, nonlinearity: "relu" });
      else data = orthogonal(shape, src);
    } else {
      const w = byName.get(p.name.replace(/bias$/, "weight")) ??
        byName.get(p.name.replace(/bias$/, "weight_v"));
      data = scheme === "default" && w && w.value.shape.length >= 2 && !w.elementwise
        ? defaultBias(w.value.shape, src)
        : zeros(shape);
    }
    rt.write(p.value, data);
    written.set(p.name, data);
  });
  // Weight normalization's g starts at ‖v‖ per output unit, so that w = v (PyTorch's
  // torch.nn.utils.weight_norm applied to an initialized layer).
  for (const p of params) {
    if (!p.scale) continue;
    const v = written.get(p.name.replace(/weight_g$/, "weight_v"));
    if (!v) throw new Error(`initializeParams: ${p.name} has no matching weight_v`);
    const rows = p.value.size, k = v.length / rows;
    const g = new Float32Array(rows);
    for (let o = 0; o < rows; o++) {
      let q = 0;
      for (let j = 0; j < k; j++) q += v[o * k + j] ** 2;
      g[o] = Math.sqrt(q);
    }
    rt.write(p.value, g);
  }
}

/**
 * How many samples a forward pass (or a forward and backward) can take on a backend with a fixed
 * memory cap: the WebAssembly backend's memory stops at `maxMemoryBytes` (2 GiB by default,
 * wasm32's 4 GiB at most), where a ResNet-18 on 32×32 images holds about 8 MB of activations per
 * sample, so the evaluation's usual 500 samples per batch would not fit. WebGPU reports no cap
 * (its adapters page or refuse per buffer), and the batch asked for is kept there.
 *
 * The estimate walks the model through the layer contract (`jacobian.children` in order, every
 * `jacobian.branches` from the same input, plus the sum they write), adding each leaf's output
 * size for one sample: the buffers a forward pass leaves behind, one per layer
 * (src/layers/layer.ts: "the tensors a layer returns belong to the layer"). It errs on the safe
 * side: a convolution fused with its activation (Sequential.forward) writes one buffer for the
 * two, and Flatten's output is a view (ResNet-18 on 32×32: what a forward takes, to 0.1 %, 8.1 MB
 * a sample; a small conv net of fused pairs: 2.4 times what it takes).
 *
 * @example
 * ```ts
 * import { WasmRuntime } from "@regula/regula/wasm";
 * import { fittingBatchSize, Linear, Sequential } from "@regula/regula/layers";
 *
 * const rt = await WasmRuntime.create();
 * const net = new Sequential(rt, "", [new Linear(rt, "0", 784, 10)]);
 * console.log(fittingBatchSize(rt, net, [784], 500)); // 500: a small model fits
 * net.dispose();
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Layer } from "./layer.ts";

/**
 * Bytes of the output buffers one forward pass of `layer` leaves for one sample of
 * `sampleShape` (f32 everywhere), and the output shape.
 */
function walk(layer: Layer, shape: number[]): { bytes: number; shape: number[] } {
  const role = layer.jacobian;
  if (role?.children) {
    let bytes = 0;
    for (const child of role.children) {
      const r = walk(child, shape);
      bytes += r.bytes;
      shape = r.shape;
    }
    return { bytes, shape };
  }
  if (role?.branches?.length) {
    let bytes = 0;
    for (const branch of role.branches) bytes += walk(branch, shape).bytes;
    const out = layer.outputShape(shape);
    return { bytes: bytes + 4 * out.reduce((a, b) => a * b, 1), shape: out };
  }
  const out = layer.outputShape(shape);
  return { bytes: 4 * out.reduce((a, b) => a * b, 1), shape: out };
}

function isLayer(m: object): m is Layer {
  return typeof (m as Layer).outputShape === "function" &&
    typeof (m as Layer).forward === "function";
}

/**
 * Bytes a forward pass of `model` keeps per sample (the layers' output buffers, f32).
 * @param model any layer (a `Sequential`, a `Model`)
 * @param sampleShape one sample's shape, without the batch dimension, e.g. [3, 32, 32]
 */
export function forwardBytesPerSample(model: Layer, sampleShape: readonly number[]): number {
  return walk(model, [1, ...sampleShape]).bytes;
}

/**
 * The batch size to use for passes of `model` over samples of `sampleShape`: `wanted`, or fewer
 * where the backend has a memory cap (`memory().limitBytes`, the WebAssembly backend) and `wanted`
 * samples would take more than half of what is left under it. Half: the estimate counts the
 * layers' outputs, not the temporaries of the kernels or the attacks' own tensors.
 * @param rt the model's backend
 * @param model the model; anything else than a {@linkcode Layer} (a metric's bare `forward`)
 *   keeps `wanted`
 * @param sampleShape one sample's shape, without the batch dimension
 * @param wanted the batch size asked for (a positive integer)
 * @param opts `backward`: the pass also runs the backward (an attack, a gradient), which keeps an
 *   input gradient per layer as well: twice the bytes
 * @returns an integer in [1, wanted]
 */
export function fittingBatchSize(
  rt: Backend,
  model: Layer | object,
  sampleShape: readonly number[],
  wanted: number,
  opts: { backward?: boolean } = {},
): number {
  const limit = rt.memory().limitBytes;
  if (limit === undefined || wanted <= 1 || !isLayer(model)) return wanted;
  const perSample = forwardBytesPerSample(model, sampleShape) * (opts.backward ? 2 : 1);
  if (perSample <= 0) return wanted;
  const free = Math.max(0, limit - rt.memory().inUseBytes);
  return Math.max(1, Math.min(wanted, Math.floor(free / 2 / perSample)));
}

/**
 * regula: train, regularize and attack small neural networks on the GPU
 * through WebGPU, with hand-written WGSL compute shaders, or on the CPU
 * through their WebAssembly twins. The same code runs in Deno and in browsers
 * (see `dist/regula.js` from `deno task bundle`).
 *
 * Everything works on {@linkcode Tensor}s owned by a {@linkcode Backend}: the
 * WebGPU {@linkcode Runtime} or the WebAssembly {@linkcode WasmRuntime}
 * (`Runtime.create({ backend: "auto" })` picks one). Whoever creates a tensor
 * disposes it. Ops are plain functions `op(rt, ...tensors, options)` that
 * record GPU work (or run it at once on Wasm); reading a result back
 * (`await t.read()`) submits it.
 *
 * @example
 * ```ts
 * import { Runtime, selfCheck } from "./mod.ts";
 *
 * const rt = await Runtime.create();
 * const x = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(rt.description, await x.read()); // Float32Array [1, 2, 3, 4]
 * x.dispose();
 * for (const r of await selfCheck(rt)) console.log(r.name, r.ok ? "ok" : r.detail);
 * ```
 *
 * @module
 */

// Each line is a sub-entry of deno.json's "exports" ("@regula/regula/attacks", ...): import one
// of those for a smaller surface. src/plot (PNG and Vega charts, npm packages a browser bundle
// does not carry) is the "./plot" entry only.

// The backend interface every op is written against (tensors, dispatch), and shape helpers.
export * from "./src/backend.ts";

// Runtime: device, tensors, kernels.
export * from "./src/gpu/mod.ts";

// The WebAssembly CPU backend (its runtime; the kernels are reached through dispatch).
export * from "./src/wasm/mod.ts";

// Ops: plain functions `op(rt, ...tensors, options)` over tensors.
export * from "./src/ops/mod.ts";

// Layers: the layer contract and its implementations.
export * from "./src/layers/mod.ts";

// Models from a plain JSON description, with PyTorch state_dict names.
export * from "./src/models/mod.ts";

// Data: datasets parsed from bytes, GPU-resident batches, augmentation.
export * from "./src/data/mod.ts";

// Losses: softmax cross-entropy, mean squared error, argmax-accuracy count, fused on the GPU.
export * from "./src/losses/mod.ts";

// Training: optimizers, schedules, the loop, early stopping.
export * from "./src/train/mod.ts";

// Checkpoints: safetensors with PyTorch state_dict names and JSON metadata.
export * from "./src/io/mod.ts";

// Regularizers: penalties, projections and transforms, pure functions over GPU buffers.
export * from "./src/regularizers/mod.ts";

// The GPU SVD behind hard SVB.
export * from "./src/linalg/mod.ts";

// Attacks and robustness evaluation.
export * from "./src/attacks/mod.ts";

// Metrics: calibration, Jacobian norms, decision planes and their total variation, saliency, PCA.
export * from "./src/metrics/mod.ts";

// Checks that run the same in Deno and in a browser.
export { checkNames, type CheckResult, selfCheck, type SelfCheckOptions } from "./src/selfcheck.ts";

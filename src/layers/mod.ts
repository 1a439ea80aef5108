/**
 * Layers: the {@linkcode Layer} contract (`forward`, `backward` accumulating
 * parameter gradients, and `jvp`, the input Jacobian applied to a tangent) and
 * its implementations, with PyTorch module names and parameter layouts.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { Linear, Sequential, Tanh } from "@regula/regula/layers";
 *
 * const rt = await Runtime.create();
 * const net = new Sequential(rt, "", [
 *   new Linear(rt, "0", 2, 8),
 *   new Tanh(rt, "1"),
 *   new Linear(rt, "2", 8, 3),
 * ]);
 * console.log(net.params().map((p) => p.name)); // ["0.weight", "0.bias", "2.weight", "2.bias"]
 * const x = rt.upload(new Float32Array([0.5, -1, 1, 2]), [2, 2]); // (B, in)
 * const logits = net.forward(x); // (2, 3), owned by the last layer
 * console.log(logits.shape);
 * x.dispose();
 * net.dispose();
 * ```
 *
 * @module
 */

export type { JacobianRole, Layer, Param } from "./layer.ts";
export { BatchNorm, type BatchNormOptions } from "./batchnorm.ts";
export * from "./linear.ts";
export * from "./conv2d.ts";
export * from "./pool.ts";
export * from "./activation.ts";
export * from "./dropout.ts";
export * from "./flatten.ts";
export * from "./normalize.ts";
export * from "./sequential.ts";
export * from "./residual.ts";
export * from "./branches.ts";
export * from "./layernorm.ts";
export * from "./weight_norm.ts";
export { fittingBatchSize, forwardBytesPerSample } from "./memory.ts";

/**
 * Ops: plain functions `op(rt, ...tensors, options)` that record GPU work over
 * `Tensor`s and return a new tensor (or write `out`): elementwise
 * maps and `axpy`, tiled matmul with a fused bias and activation, reductions,
 * softmax and arg max/min, and counter-based (Philox) random numbers.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { matmul, softmax } from "@regula/regula/ops";
 *
 * const rt = await Runtime.create();
 * const x = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]); // (B, in)
 * const w = rt.upload(new Float32Array([1, 0, -1, 0, 1, 2]), [2, 3]); // (out, in)
 * const z = matmul(rt, x, w, { transB: true }); // x wᵀ, (B, out)
 * const p = softmax(rt, z);
 * console.log(await p.read()); // each row sums to 1
 * for (const t of [x, w, z, p]) t.dispose();
 * ```
 *
 * @module
 */

export {
  axpy,
  binary,
  type BinaryOp,
  clamp,
  type ElementwiseOptions,
  fill,
  scale,
  unary,
  type UnaryOp,
} from "./elementwise.ts";
export { matmul, type MatmulActivation, type MatmulOptions, type MatmulTiling } from "./matmul.ts";
export {
  argmax,
  argmin,
  type ArgOptions,
  logSoftmax,
  reduce,
  type ReduceOp,
  type ReduceOptions,
  softmax,
  type SoftmaxOptions,
} from "./reduce.ts";
export {
  bernoulliMask,
  randomBits,
  randomNormal,
  type RandomOptions,
  randomUniform,
  type Seed,
} from "./random.ts";

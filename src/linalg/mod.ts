/**
 * Linear algebra on the GPU: the singular value decomposition by one-sided
 * Jacobi and the clipping of singular values that hard SVB is built on.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 * import { svd } from "@regula/regula/linalg";
 *
 * const rt = await Runtime.create();
 * const w = rt.upload(new Float32Array([3, 0, 0, 0, 2, 0]), [2, 3]);
 * const r = svd(rt, w);
 * console.log(await r.s.read()); // Float32Array [3, 2]
 * r.dispose();
 * w.dispose();
 * ```
 *
 * @module
 */

export * from "./svd.ts";

/**
 * Placeholder tensors for storage bindings a dispatch leaves unused.
 *
 * WebGPU forbids binding one buffer to two bindings of a dispatch when either
 * is writable (gpuweb PR #2441), so an op must not fill an unused binding with
 * one of its inputs or its output. These small tensors are never read or
 * written by the kernels that bind them; each runtime keeps two distinct ones,
 * so that two unused bindings, one of them writable, need not alias either.
 *
 * @module
 */

import type { Runtime } from "../gpu/runtime.ts";
import { Tensor } from "../gpu/tensor.ts";

/**
 * 16 bytes: the smallest buffer a `array<vec4<f32>>` binding accepts (WebGPU checks the
 * binding size against the shader's minimum binding size, one element).
 */
const ELEMENTS = 4;

const cache = new WeakMap<Runtime, [Tensor, Tensor]>();

/**
 * The `which`-th placeholder tensor of `rt` (f32[4], owned by the runtime: never dispose it).
 * It does not come from the buffer pool, so pool statistics do not see it.
 * @param rt runtime
 * @param which 0 or 1; the two are distinct buffers
 * @returns a tensor no op reads or writes
 */
export function unusedBinding(rt: Runtime, which: 0 | 1 = 0): Tensor {
  let pair = cache.get(rt);
  if (!pair) {
    const make = (i: number) =>
      new Tensor(
        rt,
        rt.device.createBuffer({
          label: `unused binding ${i}`,
          size: ELEMENTS * 4,
          usage: GPUBufferUsage.STORAGE,
        }),
        [ELEMENTS],
        "f32",
        `unused binding ${i}`,
      );
    pair = [make(0), make(1)];
    cache.set(rt, pair);
  }
  return pair[which];
}

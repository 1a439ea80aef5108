/**
 * How the twins of the elementwise, reduce, random and loss families split their independent
 * output items over the runtime's threads. Private to src/wasm/kernels.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";

/**
 * `[start, end)` ranges covering `[0, n)`: one per thread, each but the last a multiple of
 * `align` items long, and no more ranges than leave every one at least `minItems` items (so a
 * small call stays on the calling thread, where waking a worker would cost more than it saves).
 * Results never depend on the split: the kernels compute each item the same way in any range.
 * @param rt the runtime (its thread count)
 * @param n items
 * @param minItems smallest worthwhile range
 * @param align granularity of the range boundaries
 * @returns the ranges, none when n is 0
 */
export function splitRange(
  rt: WasmRuntime,
  n: number,
  minItems: number,
  align = 1,
): [number, number][] {
  if (n <= 0) return [];
  const parts = Math.max(1, Math.min(rt.threads, Math.floor(n / Math.max(1, minItems))));
  const step = Math.ceil(n / parts / align) * align;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += step) out.push([s, Math.min(n, s + step)]);
  return out;
}

/**
 * The number param `name` of a dispatch, checked.
 * @throws Error naming the kernel and the param when it is missing
 */
export function param(kernel: string, p: Readonly<Record<string, number>>, name: string): number {
  const v = p[name];
  if (typeof v !== "number") {
    throw new Error(`Kernel '${kernel}': param '${name}' is missing`);
  }
  return v;
}

/**
 * Small helpers shared by the twins of the layernorm, jacobian, regularizers and svd families:
 * splitting items across threads, reading params and override constants.
 *
 * Private to src/wasm/kernels.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";

/** Splits `n` items into at most `rt.threads` ranges of at least `minItems` (at least one). */
export function ranges(rt: WasmRuntime, n: number, minItems: number): [number, number][] {
  const parts = Math.max(1, Math.min(rt.threads, Math.floor(n / Math.max(1, minItems))));
  const out: [number, number][] = [];
  for (let t = 0; t < parts; t++) {
    out.push([Math.floor((n * t) / parts), Math.floor((n * (t + 1)) / parts)]);
  }
  return out;
}

/** Elements of work below which a kernel runs on one thread (a hand-off costs ~10 µs). */
export const MIN_WORK = 16384;

/** A param by name; throws naming the kernel when it is missing. */
export function param(kernel: string, p: Readonly<Record<string, number>>, name: string): number {
  const v = p[name];
  if (!Number.isFinite(v)) throw new Error(`Kernel '${kernel}': param '${name}' is missing`);
  return v;
}

/** An override constant as 0/1, with the WGSL's default when absent. */
export function flag(c: Readonly<Record<string, number>>, name: string, dflt: boolean): number {
  return (c[name] ?? (dflt ? 1 : 0)) !== 0 ? 1 : 0;
}

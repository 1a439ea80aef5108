/**
 * jax-js sizes the worker pool of its Wasm backend from `navigator.hardwareConcurrency` when its
 * module is first evaluated (one worker per logical core; the main thread only dispatches). To run
 * it at the thread count a benchmark asks for (`--threads N`, as regula and PyTorch are), this
 * module, imported by bench/_peers/jax.ts before `@jax-js/jax`, shows jax-js that count while its
 * module loads; jax.ts then calls {@linkcode restoreHardwareConcurrency} so that nothing else sees
 * it. Without `--threads` nothing is changed.
 *
 * @module
 */

function threadsFlag(): number | null {
  const i = Deno.args.indexOf("--threads");
  const n = i >= 0 ? Number(Deno.args[i + 1]) : NaN;
  return Number.isInteger(n) && n > 0 ? n : null;
}

const forced = threadsFlag();
if (forced !== null) {
  Object.defineProperty(navigator, "hardwareConcurrency", { value: forced, configurable: true });
}

/** jax-js's Wasm worker count: `--threads N` when given, else the logical cores. */
export const jaxWasmWorkers: number = navigator.hardwareConcurrency ?? 4;

/** Removes the override (called once `@jax-js/jax` has loaded). */
export function restoreHardwareConcurrency(): void {
  if (forced !== null) delete (navigator as unknown as Record<string, unknown>).hardwareConcurrency;
}

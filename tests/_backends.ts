/**
 * Runs the same code on both backends and compares what it returns: the op-level parity check
 * of the WebAssembly twins against the WebGPU kernels (and so against everything the WebGPU
 * tests check, PyTorch included).
 */
import { assert, assertClose, getRuntime, getWasmRuntime } from "./_util.ts";
import type { Backend } from "../src/backend.ts";

/** Named results of one run: typed arrays or plain numbers. */
export type Results = Record<string, ArrayLike<number> | number>;

/** Tolerances of {@linkcode onBothBackends}, per result name or for all. */
export interface ParityOptions {
  atol?: number;
  rtol?: number;
  /** Results compared bit for bit (integer outputs: argmax, counts, random bits). */
  exact?: readonly string[];
  /** Per-result tolerances that override `atol`/`rtol`. */
  per?: Record<string, { atol?: number; rtol?: number }>;
  /** A label for messages. */
  what?: string;
}

/**
 * Runs `fn` on the shared WebGPU runtime and on the shared WebAssembly runtime (2 threads), and
 * asserts that each named result agrees within float32 tolerance (`atol` 1e-5, `rtol` 1e-4 by
 * default), or exactly for the names in `exact`.
 * @param fn the code under test; it reads back and returns what it wants compared, and disposes
 *   what it allocated
 * @param opts tolerances
 * @returns both runs' results
 */
export async function onBothBackends<R extends Results>(
  fn: (rt: Backend) => Promise<R>,
  opts: ParityOptions = {},
): Promise<{ webgpu: R; wasm: R }> {
  const webgpu = await fn(await getRuntime());
  const wasm = await fn(await getWasmRuntime());
  const label = opts.what ? `${opts.what}: ` : "";
  assert.deepEqual(Object.keys(wasm).sort(), Object.keys(webgpu).sort(), `${label}result names`);
  for (const name of Object.keys(webgpu)) {
    const g = webgpu[name], w = wasm[name];
    const want = typeof g === "number" ? [g] : g;
    const got = typeof w === "number" ? [w] : w;
    if (opts.exact?.includes(name)) {
      assert.deepEqual(Array.from(got), Array.from(want), `${label}${name} (wasm vs webgpu)`);
      continue;
    }
    const tol = { atol: opts.atol ?? 1e-5, rtol: opts.rtol ?? 1e-4, ...opts.per?.[name] };
    assertClose(got, want, { ...tol, what: `${label}${name} (wasm vs webgpu)` });
  }
  return { webgpu, wasm };
}

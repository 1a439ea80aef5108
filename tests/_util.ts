/**
 * Shared test helpers. `assert*` come from `node:assert/strict` because JSR
 * (and so `jsr:@std/assert`) cannot be reached from our build machines.
 */
import assert from "node:assert/strict";
import { Runtime } from "../src/gpu/runtime.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import type { Backend } from "../src/backend.ts";

export { assert };

let shared: Promise<Runtime> | null = null;
let sharedWasm: Promise<WasmRuntime> | null = null;

/** One WebGPU runtime for the whole test process (device creation is slow on software adapters). */
export function getRuntime(): Promise<Runtime> {
  shared ??= Runtime.create();
  return shared;
}

/**
 * The kernel build the suite's Wasm runtimes load: `REGULA_WASM_RELAXED=0` the plain-SIMD one
 * (what Safari and Firefox get), else the default (relaxed SIMD where the engine has it).
 */
export function wasmRelaxedSimd(): boolean | undefined {
  return Deno.env.get("REGULA_WASM_RELAXED") === "0" ? false : undefined;
}

/**
 * One WebAssembly runtime for the whole test process, on 2 threads (the calling one and a
 * worker; `REGULA_WASM_THREADS` overrides), so that every Wasm test also exercises the split.
 */
export function getWasmRuntime(): Promise<WasmRuntime> {
  const threads = Number(Deno.env.get("REGULA_WASM_THREADS") ?? 2);
  sharedWasm ??= WasmRuntime.create({ threads, warn: false, relaxedSimd: wasmRelaxedSimd() });
  return sharedWasm;
}

/** The backend the suite runs on: `REGULA_BACKEND=webgpu` (default) or `wasm`. */
export function backendUnderTest(): "webgpu" | "wasm" {
  const b = Deno.env.get("REGULA_BACKEND") ?? "webgpu";
  if (b !== "webgpu" && b !== "wasm") {
    throw new Error(`REGULA_BACKEND must be "webgpu" or "wasm", got '${b}'`);
  }
  return b;
}

/** The shared runtime of {@linkcode backendUnderTest}: tests written against `Backend` use this. */
export function getBackend(): Promise<Backend> {
  return backendUnderTest() === "wasm" ? getWasmRuntime() : getRuntime();
}

/**
 * Asserts `|got - want| <= atol + rtol * |want|` elementwise, naming the first
 * index that fails and the worst error.
 */
export function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; what?: string } = {},
): void {
  const { atol = 1e-5, rtol = 1e-4, what = "values" } = opts;
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  let worst = 0, worstAt = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(g) !== Number.isNaN(w)) {
      throw new assert.AssertionError({ message: `${what}[${i}]: got ${g}, want ${w}` });
    }
    const err = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (err > worst) {
      worst = err;
      worstAt = i;
    }
  }
  if (worstAt >= 0) {
    throw new assert.AssertionError({
      message: `${what}[${worstAt}]: got ${got[worstAt]}, want ${want[worstAt]} ` +
        `(atol ${atol}, rtol ${rtol}, excess ${worst.toExponential(2)})`,
    });
  }
}

/** Deterministic pseudo-random floats in [lo, hi) for test inputs (mulberry32). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

/**
 * Loading regula's WebAssembly kernels: the embedded bytes (src/wasm/_binary.ts,
 * built by `deno task build:wasm`), the engine features they need (128-bit
 * SIMD; shared memory and Web Workers for threads), and the exports.
 *
 * Four embedded modules: with or without threads (a shared memory), each with
 * plain 128-bit SIMD or with relaxed SIMD (the GEMM's fused multiply-adds,
 * wasm/assembly/gemm.ts). The relaxed ones are used wherever the engine
 * validates relaxed SIMD, unless a runtime asks for the plain ones.
 *
 * Nothing here is Deno-only: it runs the same in browsers.
 *
 * @module
 */

import {
  KERNELS_RELAXED,
  KERNELS_RELAXED_THREADS,
  KERNELS_SIMD,
  KERNELS_SIMD_THREADS,
} from "./_binary.ts";

/**
 * The exports of wasm/assembly/index.ts. Pointers are byte offsets, strides count elements.
 * The GEMM's are typed here; every other kernel (wasm/assembly/<family>.ts, called by its twin
 * in src/wasm/kernels/<family>.ts) is reached by name through the index signature.
 */
export interface KernelExports {
  [name: string]: (...args: number[]) => number | void;
  /** Bytes of per-thread scratch `sgemm` needs (packed panels). */
  scratchBytes(): number;
  /** First byte not used by the module's static data. */
  heapBase(): number;
  /**
   * `C = act(alpha · op(A) op(B) + beta · C (+ bias))`, row-major; `bias` 0 = none; `act` 0 none,
   * 1 relu, 2 tanh, 3 sigmoid, 4 leaky_relu (negative slope `slope`).
   */
  sgemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: number,
    lda: number,
    b: number,
    ldb: number,
    beta: number,
    c: number,
    ldc: number,
    bias: number,
    act: number,
    slope: number,
    scratch: number,
  ): void;
  /** `out[i, j] = x[i, j] + bias[j]` over (rows, cols). */
  biasAdd(
    rows: number,
    cols: number,
    x: number,
    ldx: number,
    bias: number,
    out: number,
    ldo: number,
  ): void;
  /** `out[j] = alpha · Σ_i x[i, j] + beta · out[j]` over (rows, cols). */
  sumRows(
    rows: number,
    cols: number,
    x: number,
    ldx: number,
    alpha: number,
    beta: number,
    out: number,
  ): void;
}

/**
 * The function exports of a compiled kernel module, sorted: a worker runs kernel
 * `kernelNames(module)[op]` for op code `op`. Read from the module itself, so a kernel file
 * added under wasm/assembly/ needs no list kept by hand here.
 * @param module a compiled kernel module
 * @returns the names of its exported functions, sorted
 */
export function kernelNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module).filter((e) => e.kind === "function")
    .map((e) => e.name).sort();
}

/** A kernel a worker can run: any function export of the module. */
export type KernelName = string;

/**
 * The smallest module using a 128-bit SIMD instruction:
 * `(module (func (result v128) v128.const i32x4 0 0 0 0))`.
 */
const SIMD_PROBE = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // magic, version 1
  0x01,
  0x05,
  0x01,
  0x60,
  0x00,
  0x01,
  0x7b, // type section: () -> v128
  0x03,
  0x02,
  0x01,
  0x00, // function section: one function of type 0
  0x0a,
  0x16,
  0x01,
  0x14,
  0x00,
  0xfd,
  0x0c, // code: no locals, v128.const
  ...new Array(16).fill(0), // the constant's 16 bytes
  0x0b, // end
]);

/**
 * The smallest module using a relaxed-SIMD instruction:
 * `(module (func (result v128) v128.const 0 v128.const 0 v128.const 0 f32x4.relaxed_madd))`.
 */
const RELAXED_PROBE = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
  ...[0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b], // type section: () -> v128
  ...[0x03, 0x02, 0x01, 0x00], // function section: one function of type 0
  ...[0x0a, 0x3d, 0x01, 0x3b, 0x00], // code section (61 bytes), one body (59 bytes), no locals
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array(16).fill(0)]), // three v128.const
  ...[0xfd, 0x85, 0x02], // f32x4.relaxed_madd (0xfd 0x105)
  0x0b, // end
]);

/**
 * True when the engine validates WebAssembly relaxed SIMD (V8 since Chrome 114, so Deno and
 * Node 20+; not Safari, and Firefox only behind a flag at the time of writing).
 */
export function relaxedSimdSupported(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(RELAXED_PROBE);
}

/** True when the engine validates WebAssembly 128-bit SIMD. */
export function simdSupported(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
}

/**
 * Throws unless the engine has WebAssembly with 128-bit SIMD.
 * @throws Error saying what is missing and which engines have it
 */
export function requireSimd(): void {
  if (typeof WebAssembly !== "object") {
    throw new Error(
      "regula's CPU backend needs WebAssembly, which this JavaScript engine does not provide; " +
        "use a current browser, Deno or Node, or the WebGPU backend",
    );
  }
  if (!simdSupported()) {
    throw new Error(
      "regula's CPU backend needs WebAssembly 128-bit SIMD, which this engine does not support " +
        "(a SIMD test module fails WebAssembly.validate); use Chrome/Edge 91+, Firefox 89+, " +
        "Safari 16.4+, Deno 1.9+ or Node 16.4+, or the WebGPU backend",
    );
  }
}

/**
 * Why this context cannot run kernels on several threads, or null when it can:
 * it needs `SharedArrayBuffer` (in a page only when it is cross-origin
 * isolated), `Worker`, and a shared `WebAssembly.Memory`.
 * @returns a sentence naming what is missing and how to get it, or null
 */
export function threadsUnavailableReason(): string | null {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  if (typeof SharedArrayBuffer === "undefined" || g.crossOriginIsolated === false) {
    return "SharedArrayBuffer is unavailable (a page must be cross-origin isolated: serve it " +
      "with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: " +
      "require-corp)";
  }
  if (typeof g.Worker !== "function") return "Web Workers are unavailable in this context";
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (e) {
    return `this engine cannot create a shared WebAssembly.Memory (${(e as Error).message})`;
  }
  return null;
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}

/**
 * The embedded module bytes.
 * @param threads the variant that imports a shared memory (else a plain one)
 * @param relaxed the relaxed-SIMD variant (fused multiply-adds in the GEMM); default false
 * @returns a fresh copy of the .wasm bytes
 */
export function kernelBytes(threads: boolean, relaxed = false): Uint8Array {
  if (relaxed) return fromBase64(threads ? KERNELS_RELAXED_THREADS : KERNELS_RELAXED);
  return fromBase64(threads ? KERNELS_SIMD_THREADS : KERNELS_SIMD);
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Compiles a kernel module once per variant (the compiled module is shared by
 * every runtime and, for threads, posted to every worker).
 * @param threads the shared-memory variant
 * @param relaxed the relaxed-SIMD variant; default false
 * @returns the compiled module
 * @throws Error when the engine lacks SIMD, or relaxed SIMD when `relaxed` is asked for
 */
export function compileKernels(threads: boolean, relaxed = false): Promise<WebAssembly.Module> {
  requireSimd();
  if (relaxed && !relaxedSimdSupported()) {
    throw new Error(
      "regula's CPU backend: relaxed SIMD was asked for (relaxedSimd: true), but this engine does " +
        "not validate it (a relaxed-SIMD test module fails WebAssembly.validate); leave " +
        "relaxedSimd unset to use the plain-SIMD kernels",
    );
  }
  const key = `${threads}/${relaxed}`;
  let p = compiled.get(key);
  if (!p) {
    p = WebAssembly.compile(kernelBytes(threads, relaxed) as Uint8Array<ArrayBuffer>);
    compiled.set(key, p);
    p.catch(() => compiled.delete(key));
  }
  return p;
}

/**
 * WebAssembly twins of shaders/pool.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches), then entry point.
 *
 * The window geometry comes from the override constants (H, W, OH, OW, KH, KW, SH, SW, PH, PW,
 * INCLUDE_PAD), as in the WGSL; the plane count from the `planes` param. The kernels
 * (wasm/assembly/pool.ts) follow the WGSL's formulas and summation order.
 *
 * Threading plan: planes (B·C) split into contiguous ranges across threads; forward and jvp
 * write their planes' outputs, backward gathers its planes' input gradients (no atomics, no
 * reduction across threads), so results are bitwise equal for any thread count.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { Twin, TwinFamily } from "./twin.ts";
import { count, flag, splitRange } from "./_split.ts";

/** Below this many window loads a pooling runs on one thread. */
const PARALLEL_MIN_LOADS = 1 << 16;

const GEOMETRY = ["H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PH", "PW"] as const;

/** Runs `kernel(g, ...ptrs, p0, p1)` over the planes, the geometry block at `g`. */
function run(
  rt: WasmRuntime,
  name: string,
  entry:
    | "pool_maxForward"
    | "pool_maxBackward"
    | "pool_maxJvp"
    | "pool_avgForward"
    | "pool_avgBackward",
  ptrs: number[],
  p: Readonly<Record<string, number>>,
  c: Readonly<Record<string, number>>,
): void {
  // The kernels divide by the strides: at least 1.
  const words = GEOMETRY.map((key) => count(name, c, key, key === "SH" || key === "SW" ? 1 : 0));
  const [h, w, oh, ow, kh, kw] = words;
  words.push(flag(c, "INCLUDE_PAD", true));
  const planes = count(name, p, "planes");
  if (planes === 0) return;
  const perPlane = Math.max(h * w, oh * ow * kh * kw);
  const threads = planes * perPlane < PARALLEL_MIN_LOADS ? 1 : rt.threads;
  const g = rt.empty([words.length], "i32", "pool.geometry");
  try {
    new Int32Array(rt.wasmMemory.buffer, g.ptr, words.length).set(words);
    rt.parallel(
      entry,
      splitRange(planes, threads, 1).map(([p0, p1]) => [g.ptr, ...ptrs, p0, p1]),
    );
  } finally {
    g.dispose();
  }
}

const maxForward: Twin = (rt, [x, idx, y], p, c) =>
  run(rt, "pool.max_fwd", "pool_maxForward", [x.ptr, idx.ptr, y.ptr], p, c);
const maxBackward: Twin = (rt, [dy, idx, dx], p, c) =>
  run(rt, "pool.max_bwd", "pool_maxBackward", [dy.ptr, idx.ptr, dx.ptr], p, c);
const maxJvp: Twin = (rt, [tx, idx, ty], p, c) =>
  run(rt, "pool.max_jvp", "pool_maxJvp", [tx.ptr, idx.ptr, ty.ptr], p, c);
const avgForward: Twin = (rt, [x, , y], p, c) =>
  run(rt, "pool.avg_fwd", "pool_avgForward", [x.ptr, y.ptr], p, c);
const avgBackward: Twin = (rt, [dy, , dx], p, c) =>
  run(rt, "pool.avg_bwd", "pool_avgBackward", [dy.ptr, dx.ptr], p, c);

/** Twins by kernel name, then entry point. */
export const POOL_TWINS: TwinFamily = {
  "pool.max_fwd": { max_fwd_main: maxForward },
  "pool.max_bwd": { max_bwd_main: maxBackward },
  "pool.max_jvp": { max_jvp_main: maxJvp },
  "pool.avg_fwd": { avg_fwd_main: avgForward },
  "pool.avg_bwd": { avg_bwd_main: avgBackward },
};

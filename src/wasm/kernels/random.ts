/**
 * WebAssembly twin of shaders/random.wgsl (see src/wasm/README.md, "one backend interface"), the
 * kernel `random` of src/ops/random.ts: Philox4x32-10 words, bit-identical to the WGSL (and to
 * src/reference/random.ts), with its uniform, normal (Box-Muller) and Bernoulli transforms, run
 * by `random_philox` (wasm/assembly/random.ts: four blocks per i32x4) split over threads by
 * blocks of four elements.
 *
 * Bindings `[out]` ((n,) u32 or f32), params `n, k0, k1, ctr_lo, ctr_hi, a, b, thr`, constant
 * `DIST` (0 bits, 1 uniform, 2 normal, 3 Bernoulli).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitRange } from "./_split.ts";

/** Philox blocks per thread below which a call stays on one thread. */
const MIN_BLOCKS = 4096;

const randomMain: Twin = (rt, [out], p, constants) => {
  const k = "random";
  const n = param(k, p, "n");
  const dist = constants.DIST ?? 0;
  const u32 = (name: string) => param(k, p, name) | 0; // the u32 bits, as an i32 argument
  const args = [u32("k0"), u32("k1"), u32("ctr_lo"), u32("ctr_hi"), p.a ?? 0, p.b ?? 0];
  const thr = u32("thr");
  const ptr = out.ptr;
  rt.parallel(
    "random_philox",
    splitRange(Math.ceil(n / 4), rt.threads, MIN_BLOCKS, 4).map((
      [j0, j1],
    ) => [dist, ptr, n, ...args, thr, j0, j1]),
  );
};

/** Twins by kernel name, then entry point. */
export const RANDOM_TWINS: TwinFamily = {
  random: { main: randomMain },
};

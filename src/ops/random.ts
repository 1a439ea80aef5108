/**
 * Counter-based random tensors generated on the device with Philox4x32-10
 * (Salmon et al. 2011): raw u32 bits, uniform, normal (Box–Muller) and
 * Bernoulli keep-masks for inverted dropout.
 *
 * Element `i` of a call is a pure function of `(seed, counter, i)`: the same
 * run to run, for any launch shape, on every backend (the raw u32 words are
 * bit-identical to `src/reference/random.ts`; the float transforms agree to
 * rounding). There is no hidden state: a caller that wants fresh numbers
 * passes a new `counter` (e.g. the step number); each counter value selects
 * an independent substream of up to 2^34 elements.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { checkShape, fmtShape, sizeOf, type Tensor } from "../backend.ts";
import randomSrc from "../../shaders/random.wgsl" with { type: "text" };

const RANDOM: Kernel = { name: "random", code: randomSrc };

/** A seed: one integer in [0, 2^53), or the two 32-bit key words `[k0, k1]`. */
export type Seed = number | readonly [number, number];

/** Options shared by the generators. */
export interface RandomOptions {
  /** Philox key. */
  seed: Seed;
  /** Substream index, an integer in [0, 2^53). Default 0. */
  counter?: number;
  /** Output tensor with the shape's number of elements (u32 for bits, else f32). */
  out?: Tensor;
}

const TWO32 = 4294967296;

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < TWO32;
}

/**
 * The Philox key words `[k0, k1]` of a seed: `[seed mod 2^32, floor(seed / 2^32)]` for a number.
 * @throws Error unless the seed is an integer in [0, 2^53) or a pair of u32
 */
export function philoxKey(seed: Seed): [number, number] {
  if (typeof seed === "number") {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`random: seed must be an integer in [0, 2^53) or a u32 pair, got ${seed}`);
    }
    return [seed % TWO32, Math.floor(seed / TWO32)];
  }
  if (!Array.isArray(seed) || seed.length !== 2 || !seed.every(isU32)) {
    throw new Error(`random: seed pair must be two u32 values, got ${JSON.stringify(seed)}`);
  }
  return [seed[0], seed[1]];
}

/**
 * The Philox counter words `[c2, c3]` of a substream index: `[counter mod 2^32, counter / 2^32]`.
 * @throws Error unless the counter is an integer in [0, 2^53)
 */
export function philoxCounter(counter: number): [number, number] {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new Error(`random: counter must be an integer in [0, 2^53), got ${counter}`);
  }
  return [counter % TWO32, Math.floor(counter / TWO32)];
}

function generate(
  rt: Backend,
  name: string,
  shape: readonly number[],
  opts: RandomOptions,
  dist: number,
  dtype: "u32" | "f32",
  a: number,
  b: number,
  thr: number,
): Tensor {
  checkShape(shape);
  const [k0, k1] = philoxKey(opts.seed);
  const [ctrLo, ctrHi] = philoxCounter(opts.counter ?? 0);
  const n = sizeOf(shape);
  let y: Tensor;
  if (opts.out) {
    y = opts.out;
    if (y.disposed) throw new Error(`${name}: out ${y.describe()} was used after dispose()`);
    if (y.size !== n || y.dtype !== dtype) {
      throw new Error(`${name}: out must be ${dtype}${fmtShape(shape)}, got ${y.describe()}`);
    }
  } else {
    y = rt.empty(shape, dtype);
  }
  if (n === 0) return y;
  const blocks = Math.ceil(n / 4);
  rt.dispatch(RANDOM, {
    bindings: [y],
    params: { n, k0, k1, ctr_lo: ctrLo, ctr_hi: ctrHi, a, b, thr },
    workgroups: rt.grid(blocks, 256),
    constants: { DIST: dist },
  });
  return y;
}

/**
 * Raw Philox4x32-10 words: element `i` is word `i % 4` of
 * `philox4x32_10([floor(i / 4), 0, c_lo, c_hi], [k0, k1])`.
 * @param rt runtime
 * @param shape output shape
 * @param opts `seed`, `counter`, `out`
 * @returns u32 of `shape`; `opts.out` or a new tensor the caller must dispose
 */
export function randomBits(rt: Backend, shape: readonly number[], opts: RandomOptions): Tensor {
  return generate(rt, "randomBits", shape, opts, 0, "u32", 0, 0, 0);
}

/**
 * Uniform samples in `[low, high)`: `low + (high - low) * f`, `f = (u >> 8) * 2^-24`, so `f < 1`
 * always (the f32 sum can still round up to `high` when `|low|` is much larger than the span).
 * @param rt runtime
 * @param shape output shape
 * @param opts `seed`, `counter`, `low` (default 0), `high` (default 1), `out`
 * @returns f32 of `shape`; `opts.out` or a new tensor the caller must dispose
 * @example
 * ```ts
 * const u = randomUniform(rt, [64, 10], { seed: 42, counter: step, low: -1, high: 1 });
 * ```
 */
export function randomUniform(
  rt: Backend,
  shape: readonly number[],
  opts: RandomOptions & { low?: number; high?: number },
): Tensor {
  const low = opts.low ?? 0, high = opts.high ?? 1;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
    throw new Error(`randomUniform: need finite low <= high, got [${low}, ${high})`);
  }
  return generate(rt, "randomUniform", shape, opts, 1, "f32", low, high - low, 0);
}

/**
 * Normal samples `mean + std * z` by Box–Muller (|z| <= 5.77 by construction, see the shader).
 * @param rt runtime
 * @param shape output shape
 * @param opts `seed`, `counter`, `mean` (default 0), `std` (default 1), `out`
 * @returns f32 of `shape`; `opts.out` or a new tensor the caller must dispose
 * @example
 * ```ts
 * const noise = randomNormal(rt, x.shape, { seed: 7, counter: step, std: 0.1 });
 * ```
 */
export function randomNormal(
  rt: Backend,
  shape: readonly number[],
  opts: RandomOptions & { mean?: number; std?: number },
): Tensor {
  const mean = opts.mean ?? 0, std = opts.std ?? 1;
  if (!(Number.isFinite(mean) && Number.isFinite(std) && std >= 0)) {
    throw new Error(`randomNormal: need finite mean and std >= 0, got mean ${mean}, std ${std}`);
  }
  return generate(rt, "randomNormal", shape, opts, 2, "f32", mean, std, 0);
}

/**
 * The keep threshold on 24-bit uniforms for drop probability `p`: an element is kept iff
 * `(u >> 8) < ceil((1 - p) * 2^24)`, i.e. iff `(u >> 8) * 2^-24 < 1 - p` exactly.
 */
export function keepThreshold(p: number): number {
  return Math.min(16777216, Math.max(0, Math.ceil((1 - p) * 16777216)));
}

/**
 * Inverted-dropout mask: `scale` (default `1 / (1 - p)`, 0 when `p = 1`) where kept, 0 where
 * dropped; each element is dropped with probability `p` (to within 2^-24).
 * @param rt runtime
 * @param shape output shape
 * @param opts `seed`, `counter`, `p` in [0, 1], `scale`, `out`
 * @returns f32 of `shape`; `opts.out` or a new tensor the caller must dispose
 * @example
 * ```ts
 * const mask = bernoulliMask(rt, h.shape, { seed: 1, counter: step, p: 0.5 });
 * const hDrop = binary(rt, "mul", h, mask);
 * ```
 */
export function bernoulliMask(
  rt: Backend,
  shape: readonly number[],
  opts: RandomOptions & { p: number; scale?: number },
): Tensor {
  const p = opts.p;
  if (!(p >= 0 && p <= 1)) throw new Error(`bernoulliMask: p must be in [0, 1], got ${p}`);
  const scale = opts.scale ?? (p === 1 ? 0 : 1 / (1 - p));
  if (!Number.isFinite(scale)) throw new Error(`bernoulliMask: scale must be finite, got ${scale}`);
  return generate(rt, "bernoulliMask", shape, opts, 3, "f32", scale, 0, keepThreshold(p));
}

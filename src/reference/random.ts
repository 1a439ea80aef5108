/**
 * CPU reference of `src/ops/random.ts`: Philox4x32-10 (Salmon, Moraes, Dror &
 * Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3") in plain
 * TypeScript, bit-identical to the WGSL for the raw u32 words, and float64
 * versions of the uniform / normal / Bernoulli transforms.
 *
 * @module
 */

import { keepThreshold, philoxCounter, philoxKey, type Seed } from "../ops/random.ts";

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const INV24 = 2 ** -24;

/** `[hi, lo]` words of the 64-bit product of two u32, from 16-bit halves (as the WGSL does). */
export function mulhilo32(a: number, b: number): [number, number] {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  const mid = Math.floor((a0 * b0) / 65536) + (p01 & 0xffff) + (p10 & 0xffff);
  const hi =
    (a1 * b1 + Math.floor(p01 / 65536) + Math.floor(p10 / 65536) + Math.floor(mid / 65536)) >>>
    0;
  return [hi, Math.imul(a, b) >>> 0];
}

/**
 * One Philox4x32-10 block.
 * @param ctr four u32 counter words
 * @param key two u32 key words
 * @returns four u32 output words
 */
export function philox4x32_10(
  ctr: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const [hi0, lo0] = mulhilo32(M0, c0);
    const [hi1, lo1] = mulhilo32(M1, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** The raw words of `randomBits`: element i = word i % 4 of block i / 4. */
export function randomBitsRef(n: number, seed: Seed, counter = 0): Uint32Array {
  const key = philoxKey(seed);
  const [lo, hi] = philoxCounter(counter);
  const out = new Uint32Array(n);
  for (let j = 0; j * 4 < n; j++) {
    const w = philox4x32_10([j, 0, lo, hi], key);
    for (let l = 0; l < 4 && j * 4 + l < n; l++) out[j * 4 + l] = w[l];
  }
  return out;
}

/** Float64 `randomUniform`: `low + (high - low) * (u >> 8) * 2^-24`. */
export function randomUniformRef(
  n: number,
  seed: Seed,
  counter = 0,
  low = 0,
  high = 1,
): Float64Array {
  const bits = randomBitsRef(n, seed, counter);
  return Float64Array.from(bits, (u) => low + (high - low) * (u >>> 8) * INV24);
}

/**
 * Float64 `randomNormal`: Box–Muller on word pairs (0, 1) and (2, 3) of each block,
 * `r = sqrt(-2 ln u1)`, `u1 = ((w0 >> 8) + 1) 2^-24`, `theta = pi (2 (w1 >> 8) 2^-24 - 1)`,
 * outputs `mean + std r cos(theta)`, `mean + std r sin(theta)`.
 */
export function randomNormalRef(
  n: number,
  seed: Seed,
  counter = 0,
  mean = 0,
  std = 1,
): Float64Array {
  const bits = randomBitsRef(Math.ceil(n / 4) * 4, seed, counter);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = ((bits[i] >>> 8) + 1) * INV24;
    const t = Math.PI * (2 * (bits[i + 1] >>> 8) * INV24 - 1);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(t);
  }
  return out;
}

/** Float64 `bernoulliMask`: `scale` where `(u >> 8) < ceil((1 - p) 2^24)`, else 0. */
export function bernoulliMaskRef(
  n: number,
  seed: Seed,
  counter: number,
  p: number,
  scale = p === 1 ? 0 : 1 / (1 - p),
): Float64Array {
  const thr = keepThreshold(p);
  return Float64Array.from(randomBitsRef(n, seed, counter), (u) => ((u >>> 8) < thr ? scale : 0));
}

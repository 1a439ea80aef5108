/**
 * Philox4x32-10, a counter-based random number generator (Salmon, Moraes,
 * Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the
 * Random123 reference), on the host in plain TypeScript.
 *
 * Counter-based: the numbers for element `i` are a pure function of
 * `(seed, stream, i)`, so any slice can be generated independently (and a GPU
 * kernel can produce the same stream), and nothing is carried between calls.
 *
 * Element `i` of a stream uses block `floor(i / 2)`, i.e. the counter
 * `(block mod 2^32, floor(block / 2^32), stream, 0)` under the key
 * `(seed mod 2^32, floor(seed / 2^32))`; the block's four 32-bit words give
 * two 53-bit uniforms (words 0-1 for even `i`, 2-3 for odd `i`) or, by
 * Box–Muller, two normals (`r cos θ` for even `i`, `r sin θ` for odd `i`).
 *
 * @module
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32 (exact, via 16-bit halves). */
function mulhi(a: number, b: number): number {
  const aL = a & 0xffff, aH = a >>> 16, bL = b & 0xffff, bH = b >>> 16;
  const ll = aL * bL, lh = aL * bH, hl = aH * bL, hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/**
 * One Philox4x32-10 block.
 * @param ctr four u32 counter words
 * @param key two u32 key words
 * @param out destination of the four output words
 * @returns `out`
 */
export function philox4x32(
  ctr: readonly number[],
  key: readonly number[],
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** Where a random array comes from: a seed and, optionally, one of its streams. */
export interface RandomSource {
  /** Integer seed in [0, 2^53). */
  seed: number;
  /** Integer stream in [0, 2^32), e.g. one per parameter tensor. Default 0. */
  stream?: number;
}

function keyOf(src: RandomSource): [number, number, number] {
  const { seed, stream = 0 } = src;
  if (!(Number.isSafeInteger(seed) && seed >= 0)) {
    throw new Error(`Random seed ${seed} must be an integer in [0, 2^53)`);
  }
  if (!(Number.isInteger(stream) && stream >= 0 && stream < 2 ** 32)) {
    throw new Error(`Random stream ${stream} must be an integer in [0, 2^32)`);
  }
  return [seed % 2 ** 32, Math.floor(seed / 2 ** 32), stream];
}

/** A 53-bit uniform in [0, 1) from two u32 words. */
function u53(a: number, b: number): number {
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;
}

/**
 * `n` uniforms in [0, 1), float64 with 53 random bits.
 * @param n count
 * @param src seed and stream
 */
export function randomUniform(n: number, src: RandomSource): Float64Array {
  const [k0, k1, stream] = keyOf(src);
  const out = new Float64Array(n);
  const w = new Uint32Array(4);
  for (let i = 0; i < n; i += 2) {
    const block = i / 2;
    philox4x32([block % 2 ** 32, Math.floor(block / 2 ** 32), stream, 0], [k0, k1], w);
    out[i] = u53(w[0], w[1]);
    if (i + 1 < n) out[i + 1] = u53(w[2], w[3]);
  }
  return out;
}

/**
 * `n` standard normals (Box–Muller on two 53-bit uniforms per pair).
 * @param n count
 * @param src seed and stream
 */
export function randomNormal(n: number, src: RandomSource): Float64Array {
  const [k0, k1, stream] = keyOf(src);
  const out = new Float64Array(n);
  const w = new Uint32Array(4);
  for (let i = 0; i < n; i += 2) {
    const block = i / 2;
    philox4x32([block % 2 ** 32, Math.floor(block / 2 ** 32), stream, 0], [k0, k1], w);
    // 1 - u is in (0, 1]: the logarithm is finite.
    const r = Math.sqrt(-2 * Math.log(1 - u53(w[0], w[1])));
    const theta = 2 * Math.PI * u53(w[2], w[3]);
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

// regula WebAssembly kernels: the twins of the random WGSL family (src/wasm/kernels/random.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/random.wgsl: Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random
// numbers: as easy as 1, 2, 3", SC'11), block j = philox((j, 0, ctr_lo, ctr_hi), (k0, k1)) gives
// elements 4j .. 4j+3. Four blocks at a time, one per i32x4 lane: the 32x32 -> 64-bit products
// come from i64x2.extmul (exact, so the words are bit-identical to the WGSL's 16-bit-piece
// mulhi), then the four words of four blocks are transposed into element order. The uniform and
// Bernoulli transforms are the WGSL's exact f32 operations (bit-identical); the normal one is its
// Box-Muller with its own log_unit and cos_sin_pi series, written out lane by lane in the same
// order (agreeing to float32 rounding).

const M0: i32 = 0xD2511F53;
const M1: i32 = 0xCD9E8D57;
const W0: u32 = 0x9E3779B9;
const W1: u32 = 0xBB67AE85;
const INV24: f32 = 5.9604644775390625e-8;
const PI: f32 = 3.141592653589793;
const LN2_C1: f32 = 0.693359375;
const LN2_C2: f32 = -2.12194440e-4;
const SQRT2: f32 = 1.4142135623730951;

/** High 32 bits of the four unsigned 64-bit products a * b. */
@inline function mulhi(a: v128, b: v128): v128 {
  const lo = i64x2.extmul_low_i32x4_u(a, b);
  const hi = i64x2.extmul_high_i32x4_u(a, b);
  return i32x4.shuffle(lo, hi, 1, 3, 5, 7);
}

@inline function unit(w: v128): v128 {
  return f32x4.mul(f32x4.convert_i32x4_u(i32x4.shr_u(w, 8)), f32x4.splat(INV24));
}

/** log_unit of the WGSL for u in (0, 1]: m 2^e, m in [sqrt(1/2), sqrt(2)), series to s^13. */
@inline function logUnit(u: v128): v128 {
  let e = i32x4.sub(i32x4.shr_u(u, 23), i32x4.splat(127));
  let m = v128.or(v128.and(u, i32x4.splat(0x007fffff)), i32x4.splat(0x3f800000));
  const big = f32x4.gt(m, f32x4.splat(SQRT2));
  m = v128.bitselect(f32x4.mul(f32x4.splat(0.5), m), m, big);
  e = i32x4.sub(e, big);
  const one = f32x4.splat(1.0);
  const s = f32x4.div(f32x4.sub(m, one), f32x4.add(m, one));
  const q = f32x4.mul(s, s);
  let t = f32x4.add(f32x4.splat(<f32>(1.0 / 11.0)), f32x4.mul(q, f32x4.splat(<f32>(1.0 / 13.0))));
  t = f32x4.add(f32x4.splat(<f32>(1.0 / 9.0)), f32x4.mul(q, t));
  t = f32x4.add(f32x4.splat(<f32>(1.0 / 7.0)), f32x4.mul(q, t));
  t = f32x4.add(f32x4.splat(0.2), f32x4.mul(q, t));
  t = f32x4.add(f32x4.splat(<f32>(1.0 / 3.0)), f32x4.mul(q, t));
  t = f32x4.add(one, f32x4.mul(q, t));
  const lm = f32x4.mul(f32x4.mul(f32x4.splat(2.0), s), t);
  const fe = f32x4.convert_i32x4_s(e);
  return f32x4.add(f32x4.add(lm, f32x4.mul(fe, f32x4.splat(LN2_C2))), f32x4.mul(fe, f32x4.splat(LN2_C1)));
}

/** a + b r cos(pi x) and a + b r sin(pi x) of the WGSL's box_muller on words (w0, w1). */
@inline function boxMuller(w0: v128, w1: v128, a: v128, b: v128, cosOut: bool): v128 {
  const u1 = f32x4.mul(
    f32x4.add(f32x4.convert_i32x4_u(i32x4.shr_u(w0, 8)), f32x4.splat(1.0)), f32x4.splat(INV24),
  );
  const r = f32x4.sqrt(f32x4.mul(f32x4.splat(-2.0), logUnit(u1)));
  const x = f32x4.sub(f32x4.mul(f32x4.splat(2.0), unit(w1)), f32x4.splat(1.0));
  // cos_sin_pi(x): k = round(2x), y = pi (x - k/2), series, rotated by the quadrant k mod 4.
  const k = f32x4.nearest(f32x4.mul(f32x4.splat(2.0), x));
  const y = f32x4.mul(f32x4.splat(PI), f32x4.sub(x, f32x4.mul(f32x4.splat(0.5), k)));
  const q = f32x4.mul(y, y);
  let s = f32x4.add(f32x4.splat(<f32>(1.0 / 362880.0)), f32x4.mul(q, f32x4.splat(<f32>(-1.0 / 39916800.0))));
  s = f32x4.add(f32x4.splat(<f32>(-1.0 / 5040.0)), f32x4.mul(q, s));
  s = f32x4.add(f32x4.splat(<f32>(1.0 / 120.0)), f32x4.mul(q, s));
  s = f32x4.add(f32x4.splat(<f32>(-1.0 / 6.0)), f32x4.mul(q, s));
  s = f32x4.mul(y, f32x4.add(f32x4.splat(1.0), f32x4.mul(q, s)));
  let c = f32x4.add(f32x4.splat(<f32>(-1.0 / 3628800.0)), f32x4.mul(q, f32x4.splat(<f32>(1.0 / 479001600.0))));
  c = f32x4.add(f32x4.splat(<f32>(1.0 / 40320.0)), f32x4.mul(q, c));
  c = f32x4.add(f32x4.splat(<f32>(-1.0 / 720.0)), f32x4.mul(q, c));
  c = f32x4.add(f32x4.splat(<f32>(1.0 / 24.0)), f32x4.mul(q, c));
  c = f32x4.add(f32x4.splat(-0.5), f32x4.mul(q, c));
  c = f32x4.add(f32x4.splat(1.0), f32x4.mul(q, c));
  const quad = v128.and(i32x4.trunc_sat_f32x4_s(k), i32x4.splat(3));
  // (cos, sin) by quadrant: 0 (c, s), 1 (-s, c), 2 (-c, -s), 3 (s, -c).
  const odd = i32x4.eq(v128.and(quad, i32x4.splat(1)), i32x4.splat(1));
  let v: v128;
  let negate: v128;
  if (cosOut) {
    v = v128.bitselect(s, c, odd);
    negate = v128.or(i32x4.eq(quad, i32x4.splat(1)), i32x4.eq(quad, i32x4.splat(2)));
  } else {
    v = v128.bitselect(c, s, odd);
    negate = v128.or(i32x4.eq(quad, i32x4.splat(2)), i32x4.eq(quad, i32x4.splat(3)));
  }
  v = v128.bitselect(f32x4.neg(v), v, negate);
  return f32x4.add(a, f32x4.mul(f32x4.mul(b, r), v));
}

/**
 * The WGSL `main` for blocks j in [j0, j1): out[4j + l] = word l of philox4x32_10((j, 0, clo, chi),
 * (k0, k1)) under DIST (0 bits, 1 uniform a + b f, 2 normal a + b z, 3 keep ? a : 0 with keep iff
 * (u >> 8) < thr), for the elements below n. j0 is a multiple of 4.
 * @param out (n,) u32 or f32 byte offset
 */
export function random_philox(
  dist: i32, out: usize, n: i32, k0: i32, k1: i32, clo: i32, chi: i32, a: f32, b: f32, thr: i32,
  j0: i32, j1: i32,
): void {
  const m0 = i32x4.splat(M0);
  const m1 = i32x4.splat(M1);
  const va = f32x4.splat(a);
  const vb = f32x4.splat(b);
  const vthr = i32x4.splat(thr);
  for (let j = j0; j < j1; j += 4) {
    let c0 = i32x4.add(i32x4.splat(j), i32x4(0, 1, 2, 3));
    let c1 = i32x4.splat(0);
    let c2 = i32x4.splat(clo);
    let c3 = i32x4.splat(chi);
    let ka: u32 = <u32>k0;
    let kb: u32 = <u32>k1;
    for (let r = 0; r < 10; r++) {
      if (r > 0) {
        ka += W0;
        kb += W1;
      }
      const hi0 = mulhi(m0, c0);
      const lo0 = i32x4.mul(m0, c0);
      const hi1 = mulhi(m1, c2);
      const lo1 = i32x4.mul(m1, c2);
      const n0 = v128.xor(v128.xor(hi1, c1), i32x4.splat(<i32>ka));
      const n2 = v128.xor(v128.xor(hi0, c3), i32x4.splat(<i32>kb));
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
    }
    // c0..c3: word 0..3 of blocks j..j+3 (one block per lane).
    if (dist == 1) {
      c0 = f32x4.add(va, f32x4.mul(vb, unit(c0)));
      c1 = f32x4.add(va, f32x4.mul(vb, unit(c1)));
      c2 = f32x4.add(va, f32x4.mul(vb, unit(c2)));
      c3 = f32x4.add(va, f32x4.mul(vb, unit(c3)));
    } else if (dist == 2) {
      const z0 = boxMuller(c0, c1, va, vb, true);
      const z1 = boxMuller(c0, c1, va, vb, false);
      const z2 = boxMuller(c2, c3, va, vb, true);
      const z3 = boxMuller(c2, c3, va, vb, false);
      c0 = z0;
      c1 = z1;
      c2 = z2;
      c3 = z3;
    } else if (dist == 3) {
      c0 = v128.and(i32x4.lt_u(i32x4.shr_u(c0, 8), vthr), va);
      c1 = v128.and(i32x4.lt_u(i32x4.shr_u(c1, 8), vthr), va);
      c2 = v128.and(i32x4.lt_u(i32x4.shr_u(c2, 8), vthr), va);
      c3 = v128.and(i32x4.lt_u(i32x4.shr_u(c3, 8), vthr), va);
    }
    // Transpose: block b's four words become elements 4(j + b) .. 4(j + b) + 3.
    const t0 = i32x4.shuffle(c0, c1, 0, 4, 1, 5);
    const t1 = i32x4.shuffle(c0, c1, 2, 6, 3, 7);
    const t2 = i32x4.shuffle(c2, c3, 0, 4, 1, 5);
    const t3 = i32x4.shuffle(c2, c3, 2, 6, 3, 7);
    const b0 = i32x4.shuffle(t0, t2, 0, 1, 4, 5);
    const b1 = i32x4.shuffle(t0, t2, 2, 3, 6, 7);
    const b2 = i32x4.shuffle(t1, t3, 0, 1, 4, 5);
    const b3 = i32x4.shuffle(t1, t3, 2, 3, 6, 7);
    const e = j << 2;
    const p = out + (<usize>e << 2);
    if (j + 4 <= j1 && e + 16 <= n) {
      v128.store(p, b0);
      v128.store(p, b1, 16);
      v128.store(p, b2, 32);
      v128.store(p, b3, 48);
    } else {
      const lim = min<i32>(n, j1 << 2) - e;
      storeWords(p, b0, lim);
      storeWords(p + 16, b1, lim - 4);
      storeWords(p + 32, b2, lim - 8);
      storeWords(p + 48, b3, lim - 12);
    }
  }
}

/** Stores the first min(cnt, 4) lanes of v at p (none when cnt <= 0). */
@inline function storeWords(p: usize, v: v128, cnt: i32): void {
  if (cnt > 0) store<i32>(p, i32x4.extract_lane(v, 0));
  if (cnt > 1) store<i32>(p, i32x4.extract_lane(v, 1), 4);
  if (cnt > 2) store<i32>(p, i32x4.extract_lane(v, 2), 8);
  if (cnt > 3) store<i32>(p, i32x4.extract_lane(v, 3), 12);
}

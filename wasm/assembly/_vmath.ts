// Lane-wise f32x4 math shared by the elementwise, reduce and loss kernels (not a module export:
// index.ts does not re-export this file).
//
// Every function here works lane by lane with plain (unfused, correctly rounded) WebAssembly SIMD
// operations, so a value's result does not depend on which lane it sits in or on its neighbours:
// a kernel may push a partial vector (the tail of a range) through the same code and get bits
// equal to those of a full vector, which is what makes results independent of the thread split.

// ---- exp ----------------------------------------------------------------------------------------
// exp(x) = 2^n exp(r), n = round(x log2 e), r = x - n ln 2 with ln 2 = C1 + C2 (C1 = 355/512 so
// that n C1 is exact for |n| < 2^15), |r| <= ln 2 / 2, and exp(r) = 1 + r + r^2 P(r) with the
// degree-5 minimax P of Cephes' expf (S. L. Moshier, Cephes Math Library, expf.c; relative error
// about 1e-7 on that interval). 2^n is applied as 2^h 2^(n - h), h = n >> 1, so that both factors
// are normal numbers for every n in [-150, 128]: results overflow to +inf, and underflow through
// the subnormals to 0, with one rounding. x is clamped to [-104, 89] first (exp is 0 below and
// +inf above in f32); NaN passes the clamp (f32x4.min/max propagate it) and comes out NaN.

const EXP_LO: f32 = -104.0;
const EXP_HI: f32 = 89.0;
const LOG2E: f32 = 1.44269504088896341;
const LN2_C1: f32 = 0.693359375;
const LN2_C2: f32 = -2.12194440e-4;
const EXP_P0: f32 = 1.9875691500e-4;
const EXP_P1: f32 = 1.3981999507e-3;
const EXP_P2: f32 = 8.3334519073e-3;
const EXP_P3: f32 = 4.1665795894e-2;
const EXP_P4: f32 = 1.6666665459e-1;
const EXP_P5: f32 = 5.0000001201e-1;

/** exp of each lane (see the note above; about 1 ulp, +-inf and NaN as IEEE). */
@inline export function vexp(x: v128): v128 {
  const xc = f32x4.min(f32x4.max(x, f32x4.splat(EXP_LO)), f32x4.splat(EXP_HI));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(LOG2E)));
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(LN2_C1)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_C2)));
  let p = f32x4.add(f32x4.mul(f32x4.splat(EXP_P0), r), f32x4.splat(EXP_P1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P4));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(EXP_P5));
  p = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), f32x4.splat(1.0));
  const ni = i32x4.trunc_sat_f32x4_s(n); // NaN lanes give 0: the NaN stays in p
  const h = i32x4.shr_s(ni, 1);
  const s1 = i32x4.shl(i32x4.add(h, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(i32x4.sub(ni, h), i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(p, s1), s2);
}

// ---- log ----------------------------------------------------------------------------------------
// The log of shaders/elementwise.wgsl's log_s: on [0.5, 2] log x = 2 atanh(s), s = (x - 1) /
// (x + 1), by the odd series to s^15 exactly as written there; elsewhere x = m 2^e with m in
// [sqrt(1/2), sqrt(2)) read from the bits (subnormals scaled by 2^23 first), the same series on m
// (|s| <= 0.172, remainder far below 1 ulp), plus e ln 2 split as in exp (Cephes logf's split).
// log 0 = -inf, log of a negative number or NaN = NaN, log +inf = +inf.

const SQRT2: f32 = 1.4142135623730951;
const F32_MIN_NORMAL: f32 = 1.17549435e-38;
const C3: f32 = <f32>(1.0 / 3.0);
const C5: f32 = 0.2;
const C7: f32 = <f32>(1.0 / 7.0);
const C9: f32 = <f32>(1.0 / 9.0);
const C11: f32 = <f32>(1.0 / 11.0);
const C13: f32 = <f32>(1.0 / 13.0);
const C15: f32 = <f32>(1.0 / 15.0);

/** log of each lane (see the note above; a few ulp). */
@inline export function vlog(x: v128): v128 {
  const one = f32x4.splat(1.0);
  const tiny = f32x4.lt(x, f32x4.splat(F32_MIN_NORMAL));
  const xs = v128.bitselect(f32x4.mul(x, f32x4.splat(8388608.0)), x, tiny);
  const bits = xs;
  let e = i32x4.sub(i32x4.shr_u(bits, 23), i32x4.splat(127));
  e = i32x4.sub(e, v128.and(tiny, i32x4.splat(23)));
  let m = v128.or(v128.and(bits, i32x4.splat(0x007fffff)), i32x4.splat(0x3f800000));
  const big = f32x4.gt(m, f32x4.splat(SQRT2));
  m = v128.bitselect(f32x4.mul(m, f32x4.splat(0.5)), m, big);
  e = i32x4.sub(e, big); // big lanes are -1: e + 1
  const inRange = v128.and(f32x4.ge(x, f32x4.splat(0.5)), f32x4.le(x, f32x4.splat(2.0)));
  const t = v128.bitselect(x, m, inRange);
  const fe = v128.andnot(f32x4.convert_i32x4_s(e), inRange);
  const s = f32x4.div(f32x4.sub(t, one), f32x4.add(t, one));
  const q = f32x4.mul(s, s);
  let poly = f32x4.add(f32x4.splat(C13), f32x4.mul(q, f32x4.splat(C15)));
  poly = f32x4.add(f32x4.splat(C11), f32x4.mul(q, poly));
  poly = f32x4.add(f32x4.splat(C9), f32x4.mul(q, poly));
  poly = f32x4.add(f32x4.splat(C7), f32x4.mul(q, poly));
  poly = f32x4.add(f32x4.splat(C5), f32x4.mul(q, poly));
  poly = f32x4.add(f32x4.splat(C3), f32x4.mul(q, poly));
  poly = f32x4.add(one, f32x4.mul(q, poly));
  const series = f32x4.mul(f32x4.mul(f32x4.splat(2.0), s), poly);
  let r = f32x4.add(
    f32x4.add(series, f32x4.mul(fe, f32x4.splat(LN2_C2))),
    f32x4.mul(fe, f32x4.splat(LN2_C1)),
  );
  const zero = f32x4.splat(0.0);
  const inf = f32x4.splat(Infinity);
  r = v128.bitselect(f32x4.splat(-Infinity), r, f32x4.eq(x, zero));
  r = v128.bitselect(inf, r, f32x4.eq(x, inf));
  // x < 0 or NaN: NaN (the NaN lanes of x itself, or a fresh one for negatives).
  const bad = v128.not(f32x4.ge(x, zero));
  return v128.bitselect(f32x4.splat(NaN), r, bad);
}

// ---- partial vectors --------------------------------------------------------------------------

/** Lanes 0 .. cnt-1 set (all ones), the others clear; cnt in [0, 4]. */
@inline export function laneMask(cnt: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(cnt));
}

/** The cnt (1 .. 3) f32 at p in lanes 0 .. cnt-1, `fill` in the others. */
@inline export function loadPartial(p: usize, cnt: i32, fill: f32): v128 {
  let v = f32x4.splat(fill);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (cnt > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (cnt > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Stores lanes 0 .. cnt-1 (cnt 1 .. 3) of v at p. */
@inline export function storePartial(p: usize, v: v128, cnt: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (cnt > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (cnt > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

/** Sum of the four lanes, ((l0 + l1) + (l2 + l3)). */
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 2);
}

/** Largest lane, NaN if any lane is NaN. */
@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, f32x4.shuffle(v, v, 1, 0, 3, 2));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 2));
}

/** Smallest lane, NaN if any lane is NaN. */
@inline export function hmin(v: v128): f32 {
  const s = f32x4.min(v, f32x4.shuffle(v, v, 1, 0, 3, 2));
  return min<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 2));
}

const THIRD: f32 = <f32>(-1.0 / 3.0);
const T5: f32 = <f32>(2.0 / 15.0);
const T7: f32 = <f32>(-17.0 / 315.0);

/**
 * tanh_s of shaders/elementwise.wgsl, and activate() of conv2d.wgsl, which must give the same
 * bits (a fused Conv2d + Tanh equals the two kernels): odd series for |x| < 0.125, else
 * sign(x) (1 - e) / (1 + e), e = exp(-2|x|).
 */
@inline export function vtanh(x: v128): v128 {
  const one = f32x4.splat(1.0);
  const ax = f32x4.abs(x);
  const x2 = f32x4.mul(x, x);
  let s = f32x4.add(f32x4.splat(T5), f32x4.mul(x2, f32x4.splat(T7)));
  s = f32x4.add(f32x4.splat(THIRD), f32x4.mul(x2, s));
  s = f32x4.mul(x, f32x4.add(one, f32x4.mul(x2, s)));
  const e = vexp(f32x4.mul(f32x4.splat(-2.0), ax));
  const sg = v128.or(v128.and(x, i32x4.splat(0x80000000)), one);
  const big = f32x4.div(f32x4.mul(sg, f32x4.sub(one, e)), f32x4.add(one, e));
  return v128.bitselect(s, big, f32x4.lt(ax, f32x4.splat(0.125)));
}

/** sigmoid_s of shaders/elementwise.wgsl (and conv2d.wgsl's activate()): 1 / (1 + e) for x >= 0, else e / (1 + e), e = exp(-|x|). */
@inline export function vsigmoid(x: v128): v128 {
  const e = vexp(f32x4.neg(f32x4.abs(x)));
  const r = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), e));
  return v128.bitselect(r, f32x4.mul(e, r), f32x4.ge(x, f32x4.splat(0.0)));
}

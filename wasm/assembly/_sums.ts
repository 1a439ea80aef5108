// Sums along contiguous floats for the per-channel and per-row reductions of layers.ts,
// batchnorm.ts and weightnorm.ts, and their per-channel sums over the rows of (rows, C, S) data
// (not a module export: index.ts does not re-export this file).
//
// Order: blocks of SPAN floats, each summed in eight running sums (two f32x4), the block's
// sums added into eight outer ones, those added in a fixed tree, then the tail of fewer than
// eight floats one by one. Blocking keeps the error near (SPAN + n / SPAN) ulps instead of n
// ulps of a plain running sum; the order depends only on n, so the same data give the same bits
// whichever thread sums them. ROWS is the block of rows of the sums over rows: each block's sum
// is added to the total.
//
// Every sum here is one of five kinds of term: SUM p, SQ_DEV (p - mean)², DOT p·q, CENTERED
// p·(q - mean)·invstd (batchnorm's Σdy·x̂, the WGSL's operation order) and DEV p - mean
// (batchnorm's shifted mean). The kind is a constant at every call, so the inlined code keeps
// only its own branch.

import { hsum } from "./_vmath";

const SPAN: i32 = 256;

/** Rows per block in the sums over rows (the kernels' S = 1 paths). */
export const ROWS: i32 = 32;

/** Kinds of term (see above). */
export const SUM: i32 = 0;
export const SQ_DEV: i32 = 1;
export const DOT: i32 = 2;
export const CENTERED: i32 = 3;
export const DEV: i32 = 4;

/** The term of `kind` of the four floats at p (and q). */
@inline function term4(kind: i32, p: usize, q: usize, mean: v128, invstd: v128): v128 {
  if (kind == SUM) return v128.load(p);
  if (kind == SQ_DEV) {
    const d = f32x4.sub(v128.load(p), mean);
    return f32x4.mul(d, d);
  }
  if (kind == DOT) return f32x4.mul(v128.load(p), v128.load(q));
  if (kind == DEV) return f32x4.sub(v128.load(p), mean);
  return f32x4.mul(f32x4.mul(v128.load(p), f32x4.sub(v128.load(q), mean)), invstd);
}

/** The term of `kind` of the float at p (and q). */
@inline function term(kind: i32, p: usize, q: usize, mean: f32, invstd: f32): f32 {
  if (kind == SUM) return load<f32>(p);
  if (kind == SQ_DEV) {
    const d = load<f32>(p) - mean;
    return d * d;
  }
  if (kind == DOT) return load<f32>(p) * load<f32>(q);
  if (kind == DEV) return load<f32>(p) - mean;
  return load<f32>(p) * (load<f32>(q) - mean) * invstd;
}

/** Σ_{j < n} of the terms of `kind` of p[j] (and q[j]), in the blocked order above. */
@inline function along(kind: i32, p: usize, q: usize, n: i32, mean: f32, invstd: f32): f32 {
  const vm = f32x4.splat(mean);
  const vi = f32x4.splat(invstd);
  let oa = f32x4.splat(0);
  let ob = f32x4.splat(0);
  const n8 = n & ~7;
  let j = 0;
  while (j < n8) {
    const stop = min<i32>(n8, j + SPAN);
    let a = f32x4.splat(0);
    let b = f32x4.splat(0);
    for (; j < stop; j += 8) {
      const o = <usize>j << 2;
      a = f32x4.add(a, term4(kind, p + o, q + o, vm, vi));
      b = f32x4.add(b, term4(kind, p + o + 16, q + o + 16, vm, vi));
    }
    oa = f32x4.add(oa, a);
    ob = f32x4.add(ob, b);
  }
  let s = hsum(f32x4.add(oa, ob));
  for (; j < n; j++) {
    const o = <usize>j << 2;
    s += term(kind, p + o, q + o, mean, invstd);
  }
  return s;
}

/** Σ p[j], j < n. */
@inline export function sum(p: usize, n: i32): f32 {
  return along(SUM, p, 0, n, 0, 0);
}

/** Σ (p[j] - mean)², j < n. */
@inline export function sumSqDev(p: usize, n: i32, mean: f32): f32 {
  return along(SQ_DEV, p, 0, n, mean, 0);
}

/** Σ p[j]·q[j], j < n. */
@inline export function dot(p: usize, q: usize, n: i32): f32 {
  return along(DOT, p, q, n, 0, 0);
}

/** Σ dy[j]·(x[j] - mean)·invstd, j < n (batchnorm's Σdy·x̂, the WGSL's operation order). */
@inline export function dotCentered(dy: usize, x: usize, n: i32, mean: f32, invstd: f32): f32 {
  return along(CENTERED, dy, x, n, mean, invstd);
}

/**
 * Four adjacent channels of (rows, C, 1) data at once, one per lane: Σ over rows i < n of the
 * terms of `kind` of the f32x4 at p + i·step (and q + i·step); `step` is a row's bytes (C·4).
 */
@inline export function channels4(
  kind: i32, p: usize, q: usize, n: i32, step: usize, mean: v128, invstd: v128,
): v128 {
  let acc = f32x4.splat(0);
  for (let b0 = 0; b0 < n; b0 += ROWS) {
    const b1 = min<i32>(n, b0 + ROWS);
    let blk = f32x4.splat(0);
    for (let i = b0; i < b1; i++) {
      blk = f32x4.add(blk, term4(kind, p, q, mean, invstd));
      p += step;
      q += step;
    }
    acc = f32x4.add(acc, blk);
  }
  return acc;
}

/**
 * One channel of (rows, C, S) data: Σ over rows i < n of the sum of `kind` along the S
 * contiguous floats at p + i·step (and q + i·step); `step` is a row's bytes (C·S·4).
 */
@inline export function channel(
  kind: i32, p: usize, q: usize, n: i32, step: usize, s: i32, mean: f32, invstd: f32,
): f32 {
  let acc: f32 = 0;
  for (let b0 = 0; b0 < n; b0 += ROWS) {
    const b1 = min<i32>(n, b0 + ROWS);
    let blk: f32 = 0;
    for (let i = b0; i < b1; i++) {
      blk += along(kind, p, q, s, mean, invstd);
      p += step;
      q += step;
    }
    acc += blk;
  }
  return acc;
}

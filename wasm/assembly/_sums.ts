// Sums along contiguous floats for the per-channel and per-row reductions of layers.ts,
// batchnorm.ts and weightnorm.ts (not a module export: index.ts does not re-export this file).
//
// Order: blocks of SPAN floats, each summed in eight running sums (two f32x4), the block's
// sums added into eight outer ones, those added in a fixed tree, then the tail of fewer than
// eight floats one by one. Blocking keeps the error near (SPAN + n / SPAN) ulps instead of n
// ulps of a plain running sum; the order depends only on n, so the same data give the same bits
// whichever thread sums them. ROWS is the block of rows of the strided (one float per row) sums.

const SPAN: i32 = 256;

/** Rows per block in the sums over rows (the kernels' S = 1 paths). */
export const ROWS: i32 = 32;

@inline export function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) +
    (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}

/** Σ p[j], j < n. */
@inline export function sum(p: usize, n: i32): f32 {
  let oa = f32x4.splat(0);
  let ob = f32x4.splat(0);
  const n8 = n & ~7;
  let j = 0;
  while (j < n8) {
    const stop = min<i32>(n8, j + SPAN);
    let a = f32x4.splat(0);
    let b = f32x4.splat(0);
    for (; j < stop; j += 8) {
      const o = p + (<usize>j << 2);
      a = f32x4.add(a, v128.load(o));
      b = f32x4.add(b, v128.load(o, 16));
    }
    oa = f32x4.add(oa, a);
    ob = f32x4.add(ob, b);
  }
  let s = hsum(f32x4.add(oa, ob));
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2));
  return s;
}

/** Σ (p[j] - mean)², j < n. */
@inline export function sumSqDev(p: usize, n: i32, mean: f32): f32 {
  const vm = f32x4.splat(mean);
  let oa = f32x4.splat(0);
  let ob = f32x4.splat(0);
  const n8 = n & ~7;
  let j = 0;
  while (j < n8) {
    const stop = min<i32>(n8, j + SPAN);
    let a = f32x4.splat(0);
    let b = f32x4.splat(0);
    for (; j < stop; j += 8) {
      const o = p + (<usize>j << 2);
      const d0 = f32x4.sub(v128.load(o), vm);
      const d1 = f32x4.sub(v128.load(o, 16), vm);
      a = f32x4.add(a, f32x4.mul(d0, d0));
      b = f32x4.add(b, f32x4.mul(d1, d1));
    }
    oa = f32x4.add(oa, a);
    ob = f32x4.add(ob, b);
  }
  let s = hsum(f32x4.add(oa, ob));
  for (; j < n; j++) {
    const d = load<f32>(p + (<usize>j << 2)) - mean;
    s += d * d;
  }
  return s;
}

/** Σ p[j]·q[j], j < n. */
@inline export function dot(p: usize, q: usize, n: i32): f32 {
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
      a = f32x4.add(a, f32x4.mul(v128.load(p + o), v128.load(q + o)));
      b = f32x4.add(b, f32x4.mul(v128.load(p + o, 16), v128.load(q + o, 16)));
    }
    oa = f32x4.add(oa, a);
    ob = f32x4.add(ob, b);
  }
  let s = hsum(f32x4.add(oa, ob));
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2)) * load<f32>(q + (<usize>j << 2));
  return s;
}

/** Σ dy[j]·(x[j] - mean)·invstd, j < n (batchnorm's Σdy·x̂, the WGSL's operation order). */
@inline export function dotCentered(dy: usize, x: usize, n: i32, mean: f32, invstd: f32): f32 {
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
      a = f32x4.add(a, f32x4.mul(f32x4.mul(v128.load(dy + o), f32x4.sub(v128.load(x + o), vm)), vi));
      b = f32x4.add(
        b,
        f32x4.mul(f32x4.mul(v128.load(dy + o, 16), f32x4.sub(v128.load(x + o, 16), vm)), vi),
      );
    }
    oa = f32x4.add(oa, a);
    ob = f32x4.add(ob, b);
  }
  let s = hsum(f32x4.add(oa, ob));
  for (; j < n; j++) {
    const o = <usize>j << 2;
    s += load<f32>(dy + o) * (load<f32>(x + o) - mean) * invstd;
  }
  return s;
}

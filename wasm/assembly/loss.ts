// regula WebAssembly kernels: the twins of the loss WGSL family (src/wasm/kernels/loss.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/loss.wgsl with its formulas (see that file's header): softmax cross-entropy rows
// (ce_rows_main), the single sum with the invalid-label count (sum_main), the fused MSE pass
// (mse_main) and the argmax hit count (argmax_count_main). Per row (or per 2048-element group)
// the work is f32x4 lanes in an order fixed by the row alone, so a split over threads by rows
// (groups) never changes a bit. The row's log-sum-exp is two passes (the max, then the sum of
// exp(z - m)) instead of the WGSL's online merge: equal up to rounding, and NaN in, NaN out.

import { hmax, hsum, laneMask, loadPartial, storePartial, vexp } from "./_vmath";

// Lowest finite f32, the WGSL's starting maximum.
const LOWEST: f32 = -3.4028234663852886e38;
const BLOCK: i32 = 32;

/**
 * ce_rows_main for rows [r0, r1): per-row loss y[row] = -sum_k t_k log p_k (NaN for a label
 * outside [0, k)), and with grad = 1 dx = gscale (p_k sum(t) - t_k) (0 rows for a bad label).
 * Hard targets (soft = 0): t = (1 - eps) onehot(label) + eps / k; soft: t = (1 - eps) tgt + eps / k.
 * @param x (b, k) f32 logits byte offset; labels (b,) u32 (hard only); tgt (b, k) f32 (soft only);
 *   dx (b, k) f32 (grad only); y (b,) f32
 */
export function loss_ceRows(
  soft: i32, grad: i32, x: usize, labels: usize, tgt: usize, dx: usize, y: usize, k: i32,
  eps: f32, gscale: f32, r0: i32, r1: i32,
): void {
  const off: f32 = eps / <f32>k;
  const hit: f32 = 1.0 - eps + off;
  const keep: f32 = 1.0 - eps;
  const voff = f32x4.splat(off);
  const vhit = f32x4.splat(hit);
  const vkeep = f32x4.splat(keep);
  const vg = f32x4.splat(gscale);
  const zero = f32x4.splat(0.0);
  const full = k & ~3;
  const rem = k - full;
  for (let row = r0; row < r1; row++) {
    const base = (<usize>row * <usize>k) << 2;
    const xr = x + base;
    const tr = tgt + base;
    // Pass 1: max, then sum of exp(z - m); the soft target mass.
    let mv = f32x4.splat(LOWEST);
    let tv = zero;
    for (let c = 0; c < full; c += 4) {
      mv = f32x4.max(mv, v128.load(xr + (<usize>c << 2)));
      if (soft) tv = f32x4.add(tv, v128.load(tr + (<usize>c << 2)));
    }
    if (rem > 0) {
      mv = f32x4.max(mv, loadPartial(xr + (<usize>full << 2), rem, LOWEST));
      if (soft) tv = f32x4.add(tv, loadPartial(tr + (<usize>full << 2), rem, 0.0));
    }
    const m = hmax(mv);
    const vm = f32x4.splat(m);
    let acc = zero;
    let blk = zero;
    let inBlock = 0;
    for (let c = 0; c < full; c += 4) {
      blk = f32x4.add(blk, vexp(f32x4.sub(v128.load(xr + (<usize>c << 2)), vm)));
      if (++inBlock == BLOCK) {
        acc = f32x4.add(acc, blk);
        blk = zero;
        inBlock = 0;
      }
    }
    if (rem > 0) {
      const e = vexp(f32x4.sub(loadPartial(xr + (<usize>full << 2), rem, 0.0), vm));
      blk = f32x4.add(blk, v128.and(e, laneMask(rem)));
    }
    const logs = Mathf.log(hsum(f32x4.add(acc, blk)));
    const vlogs = f32x4.splat(logs);
    let label: u32 = 0;
    let bad = false;
    let tmass: f32 = 1.0;
    if (soft) {
      tmass = keep * hsum(tv) + eps;
    } else {
      label = load<u32>(labels + (<usize>row << 2));
      bad = label >= <u32>k;
    }
    const vmass = f32x4.splat(tmass);
    const vlabel = i32x4.splat(<i32>label);
    // Pass 2: loss and gradient.
    let lacc = zero;
    for (let c = 0; c < k; c += 4) {
      const o = <usize>c << 2;
      const left = k - c;
      const z = left >= 4 ? v128.load(xr + o) : loadPartial(xr + o, left, 0.0);
      const logp = f32x4.sub(f32x4.sub(z, vm), vlogs);
      let t: v128;
      if (soft) {
        const q = left >= 4 ? v128.load(tr + o) : loadPartial(tr + o, left, 0.0);
        t = f32x4.add(f32x4.mul(vkeep, q), voff);
      } else {
        const idx = i32x4.add(i32x4.splat(c), i32x4(0, 1, 2, 3));
        t = v128.bitselect(vhit, voff, i32x4.eq(idx, vlabel));
      }
      // t == 0 contributes nothing (the WGSL skips it: 0 * -inf would be NaN).
      const use = v128.and(f32x4.ne(t, zero), laneMask(left));
      lacc = f32x4.add(lacc, v128.and(f32x4.mul(t, logp), use));
      if (grad) {
        let g = f32x4.mul(f32x4.sub(f32x4.mul(vexp(logp), vmass), t), vg);
        if (bad) g = zero;
        if (left >= 4) v128.store(dx + base + o, g);
        else storePartial(dx + base + o, g, left);
      }
    }
    store<f32>(y + (<usize>row << 2), bad ? NaN : -hsum(lacc));
  }
}

/**
 * sum_main: y[0] = lscale * sum of the n values x, and cnt[0] = the number of labels >= k among
 * the n labels (0 when k is 0; labels is then not read).
 * @param x (n,) f32 byte offset; labels (n,) u32; y (1,) f32; cnt (1,) u32
 */
export function loss_sum(x: usize, labels: usize, y: usize, cnt: usize, n: i32, k: i32, lscale: f32): void {
  let acc = f32x4.splat(0.0);
  let blk = acc;
  let inBlock = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    blk = f32x4.add(blk, v128.load(x + (<usize>i << 2)));
    if (++inBlock == BLOCK) {
      acc = f32x4.add(acc, blk);
      blk = f32x4.splat(0.0);
      inBlock = 0;
    }
  }
  if (i < n) blk = f32x4.add(blk, loadPartial(x + (<usize>i << 2), n - i, 0.0));
  store<f32>(y, hsum(f32x4.add(acc, blk)) * lscale);
  let bad: u32 = 0;
  if (k > 0) {
    for (let j = 0; j < n; j++) {
      if (load<u32>(labels + (<usize>j << 2)) >= <u32>k) bad++;
    }
  }
  store<u32>(cnt, bad);
}

/**
 * mse_main for groups [g0, g1) of 2048 elements: d = x - tgt, with grad = 1 dx = 2 d gscale, and
 * y[g] = the group's sum of d^2.
 * @param x (n,) f32 byte offset; tgt (n,) f32; dx (n,) f32 (grad only); y (groups,) f32
 */
export function loss_mse(
  grad: i32, x: usize, tgt: usize, dx: usize, y: usize, n: i32, gscale: f32, g0: i32, g1: i32,
): void {
  const two = f32x4.splat(2.0);
  const vg = f32x4.splat(gscale);
  for (let g = g0; g < g1; g++) {
    const start = g * 2048;
    const end = min<i32>(n, start + 2048);
    let acc0 = f32x4.splat(0.0);
    let acc1 = acc0;
    let i = start;
    for (; i + 8 <= end; i += 8) {
      const o = <usize>i << 2;
      const d0 = f32x4.sub(v128.load(x + o), v128.load(tgt + o));
      const d1 = f32x4.sub(v128.load(x + o, 16), v128.load(tgt + o, 16));
      acc0 = f32x4.add(acc0, f32x4.mul(d0, d0));
      acc1 = f32x4.add(acc1, f32x4.mul(d1, d1));
      if (grad) {
        v128.store(dx + o, f32x4.mul(f32x4.mul(two, d0), vg));
        v128.store(dx + o, f32x4.mul(f32x4.mul(two, d1), vg), 16);
      }
    }
    for (; i < end; i += 4) {
      const o = <usize>i << 2;
      const left = end - i;
      const d = left >= 4
        ? f32x4.sub(v128.load(x + o), v128.load(tgt + o))
        : f32x4.sub(loadPartial(x + o, left, 0.0), loadPartial(tgt + o, left, 0.0));
      acc0 = f32x4.add(acc0, f32x4.mul(d, d));
      if (grad) {
        const gv = f32x4.mul(f32x4.mul(two, d), vg);
        if (left >= 4) v128.store(dx + o, gv);
        else storePartial(dx + o, gv, left);
      }
    }
    store<f32>(y + (<usize>g << 2), hsum(f32x4.add(acc0, acc1)));
  }
}

/**
 * argmax_count_main: adds to cnt[0] the number of rows whose first maximal logit (NaN counts as
 * maximal, the first NaN wins) sits at the row's label.
 * @param x (b, k) f32 byte offset; labels (b,) u32; cnt (1,) u32, added to
 */
export function loss_argmaxCount(x: usize, labels: usize, cnt: usize, b: i32, k: i32): void {
  let hits: u32 = 0;
  for (let row = 0; row < b; row++) {
    const p = x + ((<usize>row * <usize>k) << 2);
    let bi: i32 = 0;
    let bv = load<f32>(p);
    if (bv == bv) {
      for (let c = 1; c < k; c++) {
        const v = load<f32>(p + (<usize>c << 2));
        if (v != v) {
          bi = c;
          break;
        }
        if (v > bv) {
          bi = c;
          bv = v;
        }
      }
    }
    if (k > 0 && <u32>bi == load<u32>(labels + (<usize>row << 2))) hits++;
  }
  store<u32>(cnt, load<u32>(cnt) + hits);
}

// regula WebAssembly kernels: the twins of the batchnorm WGSL family (src/wasm/kernels/batchnorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/batchnorm.wgsl and batchnorm_state.wgsl (see there for the math; Ioffe & Szegedy 2015,
// PyTorch 1.13 semantics). Data are (B, C, S), stats is (5, C): mean, invstd, unbiased batch
// variance, Σdy, Σdy·x̂.
//
// The per-channel reductions (stats, bwd_reduce) take a range of channels and sum each channel
// whole, in a fixed order: _sums.ts along the S contiguous entries of each row, then the rows in
// blocks of ROWS; with S = 1 (BatchNorm1d) four adjacent channels per f32x4, each lane summing its
// channel's rows in the same blocks as the scalar tail. A channel's bits so never depend on the
// thread split;
// the WGSL sums with a tree in workgroup memory, so the two agree to float32 rounding only. The
// mean is the WGSL's shifted one (k + Σ(x - k)/m, k the channel's first value) and the
// variance the WGSL's second pass around it. The elementwise passes (affine, bwd_dx)
// take a range of elements, four per f32x4 within each run of one channel (S > 1) or four adjacent
// channels per f32x4 (S = 1).
// Pointers are byte offsets of element 0 of each buffer.

import { at } from "./_common";
import { BN_DX, CENTER, channelMap, SCALE } from "./_channels";
import { CENTERED, channel, channels4, DEV, DOT, SQ_DEV, SUM } from "./_sums";

@inline function putStats(stats: usize, channels: usize, c: usize, mean: f32, q: f32, m: u32, eps: f32): void {
  const fm = <f32>m;
  const varb = q / fm;
  store<f32>(at(stats, c), mean);
  store<f32>(at(stats, channels + c), <f32>1 / Mathf.sqrt(varb + eps));
  store<f32>(at(stats, 2 * channels + c), m > 1 ? varb * fm / <f32>(m - 1) : varb);
}

/**
 * stats_main on channels [c0, c0 + count): mean, 1/sqrt(biased var + eps) and the unbiased
 * variance of each channel's B·S entries, into rows 0, 1, 2 of stats.
 * @param x (B, C, S) f32
 * @param stats (5, C) f32
 */
export function batchnorm_stats(
  c0: i32,
  count: i32,
  b: i32,
  channels: i32,
  s: i32,
  x: usize,
  stats: usize,
  eps: f32,
): void {
  const m = <u32>b * <u32>s;
  const fm = <f32>m;
  const end = c0 + count;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    const vfm = f32x4.splat(fm);
    const none = f32x4.splat(0);
    for (; c + 4 <= end; c += 4) {
      const p = at(x, c);
      // The WGSL's shifted mean: k + Σ(x - k)/m with k each channel's first value.
      const k = v128.load(p);
      const mean = f32x4.add(k, f32x4.div(channels4(DEV, p, 0, b, step, k, none), vfm));
      const q = channels4(SQ_DEV, p, 0, b, step, mean, none);
      putStats(stats, channels, c, f32x4.extract_lane(mean, 0), f32x4.extract_lane(q, 0), m, eps);
      putStats(stats, channels, c + 1, f32x4.extract_lane(mean, 1), f32x4.extract_lane(q, 1), m, eps);
      putStats(stats, channels, c + 2, f32x4.extract_lane(mean, 2), f32x4.extract_lane(q, 2), m, eps);
      putStats(stats, channels, c + 3, f32x4.extract_lane(mean, 3), f32x4.extract_lane(q, 3), m, eps);
    }
  }
  const rowBytes = (<usize>channels * s) << 2;
  for (; c < end; c++) {
    const p = at(x, <usize>c * s);
    const k = load<f32>(p);
    const mean = k + channel(DEV, p, 0, b, rowBytes, s, k, 0) / fm;
    const q = channel(SQ_DEV, p, 0, b, rowBytes, s, mean, 0);
    putStats(stats, channels, c, mean, q, m, eps);
  }
}

/**
 * bwd_reduce_main on channels [c0, c0 + count): Σdy and Σdy·x̂ (x̂ = (x - mean)·invstd from rows
 * 0 and 1 of stats) into rows 3 and 4 of stats.
 * @param dy (B, C, S) f32
 * @param x (B, C, S) f32 the cached input
 * @param stats (5, C) f32
 */
export function batchnorm_bwdReduce(
  c0: i32,
  count: i32,
  b: i32,
  channels: i32,
  s: i32,
  dy: usize,
  x: usize,
  stats: usize,
): void {
  const end = c0 + count;
  const row3 = 3 * <usize>channels;
  const row4 = 4 * <usize>channels;
  let c = c0;
  if (s == 1) {
    const step = <usize>channels << 2;
    for (; c + 4 <= end; c += 4) {
      const mean = v128.load(at(stats, c));
      const invstd = v128.load(at(stats, <usize>channels + c));
      const pd = at(dy, c), px = at(x, c);
      v128.store(at(stats, row3 + c), channels4(SUM, pd, 0, b, step, mean, invstd));
      v128.store(at(stats, row4 + c), channels4(CENTERED, pd, px, b, step, mean, invstd));
    }
  }
  const rowBytes = (<usize>channels * s) << 2;
  for (; c < end; c++) {
    const mean = load<f32>(at(stats, c));
    const invstd = load<f32>(at(stats, <usize>channels + c));
    const pd = at(dy, <usize>c * s), px = at(x, <usize>c * s);
    store<f32>(at(stats, row3 + c), channel(SUM, pd, 0, b, rowBytes, s, 0, 0));
    store<f32>(at(stats, row4 + c), channel(CENTERED, pd, px, b, rowBytes, s, mean, invstd));
  }
}

/**
 * affine_main on elements [i0, i0 + count): mode 0 y = (x - mean)·gamma·invstd + beta;
 * mode 1 (jvp) y = x·gamma·invstd, c = (i / S) % C.
 * @param x (B, C, S) f32
 * @param y (B, C, S) f32
 * @param gamma (C,) f32
 * @param beta (C,) f32 (mode 0)
 * @param stats (5, C) f32 (rows 0 and 1)
 */
export function batchnorm_affine(
  i0: u32,
  count: u32,
  channels: u32,
  s: u32,
  x: usize,
  y: usize,
  gamma: usize,
  beta: usize,
  stats: usize,
  mode: u32,
): void {
  const invstd = stats + (<usize>channels << 2);
  if (mode == 0) {
    channelMap(CENTER, i0, count, channels, s, x, 0, y, gamma, invstd, beta, stats, 0, 0, 0);
  } else {
    channelMap(SCALE, i0, count, channels, s, x, 0, y, gamma, invstd, 0, 0, 0, 0, 0);
  }
}

/**
 * bwd_dx_main on elements [i0, i0 + count): mode 0 (train) dx = gamma·invstd·(dy - Σdy/M -
 * x̂·Σdy·x̂/M), M = B·S; mode 1 (eval) dx = gamma·invstd·dy.
 * @param dy (B, C, S) f32
 * @param x (B, C, S) f32 the cached input (mode 0)
 * @param dx (B, C, S) f32
 * @param gamma (C,) f32
 * @param stats (5, C) f32
 */
export function batchnorm_bwdDx(
  i0: u32,
  count: u32,
  b: u32,
  channels: u32,
  s: u32,
  dy: usize,
  x: usize,
  dx: usize,
  gamma: usize,
  stats: usize,
  mode: u32,
): void {
  const invstd = stats + (<usize>channels << 2);
  if (mode == 1) {
    channelMap(SCALE, i0, count, channels, s, dy, 0, dx, gamma, invstd, 0, 0, 0, 0, 0);
  } else {
    const sd = stats + (3 * <usize>channels << 2), sdx = stats + (4 * <usize>channels << 2);
    channelMap(BN_DX, i0, count, channels, s, x, dy, dx, gamma, invstd, 0, stats, sd, sdx, <f32>(b * s));
  }
}

/**
 * update_running_main: running = (1 - momentum)·running + momentum·batch (mean from stats row 0,
 * unbiased variance from row 2) for the first `channels` channels; tracked[0] += 1 if any.
 * @param stats (5, C) f32 (C = `stride`)
 * @param runningMean (C,) f32
 * @param runningVar (C,) f32
 * @param tracked (1,) i32
 */
export function batchnorm_updateRunning(
  channels: u32,
  stride: u32,
  stats: usize,
  runningMean: usize,
  runningVar: usize,
  tracked: usize,
  momentum: f32,
): void {
  const keep = <f32>1 - momentum;
  for (let c: u32 = 0; c < channels; c++) {
    const pm = at(runningMean, c);
    const pv = at(runningVar, c);
    store<f32>(pm, keep * load<f32>(pm) + momentum * load<f32>(at(stats, c)));
    store<f32>(pv, keep * load<f32>(pv) + momentum * load<f32>(at(stats, 2 * <usize>stride + c)));
  }
  if (channels > 0) store<i32>(tracked, load<i32>(tracked) + 1);
}

/**
 * eval_stats_main: stats row 0 = running mean, row 1 = 1/sqrt(running var + eps), for the first
 * `channels` channels.
 * @param stats (5, C) f32 (C = `stride`)
 */
export function batchnorm_evalStats(
  channels: u32,
  stride: u32,
  stats: usize,
  runningMean: usize,
  runningVar: usize,
  eps: f32,
): void {
  for (let c: u32 = 0; c < channels; c++) {
    store<f32>(at(stats, c), load<f32>(at(runningMean, c)));
    store<f32>(at(stats, <usize>stride + c), <f32>1 / Mathf.sqrt(load<f32>(at(runningVar, c)) + eps));
  }
}

/**
 * accum_grads_main: dgamma += Σdy·x̂ (stats row 4), dbeta += Σdy (row 3), first `channels`.
 * @param stats (5, C) f32 (C = `stride`)
 */
export function batchnorm_accumGrads(
  channels: u32,
  stride: u32,
  stats: usize,
  dgamma: usize,
  dbeta: usize,
): void {
  for (let c: u32 = 0; c < channels; c++) {
    const pg = at(dgamma, c);
    const pb = at(dbeta, c);
    store<f32>(pg, load<f32>(pg) + load<f32>(at(stats, 4 * <usize>stride + c)));
    store<f32>(pb, load<f32>(pb) + load<f32>(at(stats, 3 * <usize>stride + c)));
  }
}

// shaders/batchnorm_jr.wgsl: training-mode BatchNorm in the exact gradient of the Jacobian
// penalties (see there for the math). sums is (5, C): B0 = Σb, B1 = Σb·x̂, R0 = Σr, R1 = Σr·x̂,
// BR = Σb·r per channel.

@inline function putJrSums(
  sums: usize, dgamma: usize, channels: usize, c: usize, s: f32, fm: f32,
  b0: f32, b1: f32, r0: f32, r1: f32, br: f32,
): void {
  store<f32>(at(sums, c), b0);
  store<f32>(at(sums, channels + c), b1);
  store<f32>(at(sums, 2 * channels + c), r0);
  store<f32>(at(sums, 3 * channels + c), r1);
  store<f32>(at(sums, 4 * channels + c), br);
  const pg = at(dgamma, c);
  store<f32>(pg, load<f32>(pg) + s * (br - b0 * r0 / fm - b1 * r1 / fm));
}

/**
 * sums_main on channels [c0, c0 + count): the five sums of b and r into sums, and
 * dgamma[c] += s·(BR - B0·R0/M - B1·R1/M), M = B·S (x̂ = (x - mean)·s from stats rows 0, 1).
 * @param x (B, C, S) f32 the cached input
 * @param bs (B, C, S) f32 the backward signal at the output
 * @param r (B, C, S) f32 the tangent at the input
 * @param stats (5, C) f32 (rows 0 and 1)
 * @param sums (5, C) f32
 * @param dgamma (C,) f32
 */
export function batchnorm_jrSums(
  c0: i32,
  count: i32,
  b: i32,
  channels: i32,
  s: i32,
  x: usize,
  bs: usize,
  r: usize,
  stats: usize,
  sums: usize,
  dgamma: usize,
): void {
  const end = c0 + count;
  const fm = <f32>(b * s);
  const ch = <usize>channels;
  let c = c0;
  if (s == 1) {
    const step = ch << 2;
    const zero = f32x4.splat(0);
    for (; c + 4 <= end; c += 4) {
      const mean = v128.load(at(stats, c));
      const inv = v128.load(at(stats, ch + c));
      const pb = at(bs, c), pr = at(r, c), px = at(x, c);
      const b0 = channels4(SUM, pb, 0, b, step, zero, zero);
      const b1 = channels4(CENTERED, pb, px, b, step, mean, inv);
      const r0 = channels4(SUM, pr, 0, b, step, zero, zero);
      const r1 = channels4(CENTERED, pr, px, b, step, mean, inv);
      const br = channels4(DOT, pb, pr, b, step, zero, zero);
      putJrSums(sums, dgamma, ch, c, f32x4.extract_lane(inv, 0), fm, f32x4.extract_lane(b0, 0),
        f32x4.extract_lane(b1, 0), f32x4.extract_lane(r0, 0), f32x4.extract_lane(r1, 0),
        f32x4.extract_lane(br, 0));
      putJrSums(sums, dgamma, ch, c + 1, f32x4.extract_lane(inv, 1), fm, f32x4.extract_lane(b0, 1),
        f32x4.extract_lane(b1, 1), f32x4.extract_lane(r0, 1), f32x4.extract_lane(r1, 1),
        f32x4.extract_lane(br, 1));
      putJrSums(sums, dgamma, ch, c + 2, f32x4.extract_lane(inv, 2), fm, f32x4.extract_lane(b0, 2),
        f32x4.extract_lane(b1, 2), f32x4.extract_lane(r0, 2), f32x4.extract_lane(r1, 2),
        f32x4.extract_lane(br, 2));
      putJrSums(sums, dgamma, ch, c + 3, f32x4.extract_lane(inv, 3), fm, f32x4.extract_lane(b0, 3),
        f32x4.extract_lane(b1, 3), f32x4.extract_lane(r0, 3), f32x4.extract_lane(r1, 3),
        f32x4.extract_lane(br, 3));
    }
  }
  const rowBytes = (ch * s) << 2;
  for (; c < end; c++) {
    const mean = load<f32>(at(stats, c));
    const inv = load<f32>(at(stats, ch + c));
    const off = <usize>c * s;
    const pb = at(bs, off), pr = at(r, off), px = at(x, off);
    putJrSums(sums, dgamma, ch, c, inv, fm,
      channel(SUM, pb, 0, b, rowBytes, s, 0, 0),
      channel(CENTERED, pb, px, b, rowBytes, s, mean, inv),
      channel(SUM, pr, 0, b, rowBytes, s, 0, 0),
      channel(CENTERED, pr, px, b, rowBytes, s, mean, inv),
      channel(DOT, pb, pr, b, rowBytes, s, 0, 0));
  }
}

/**
 * inject_main on elements [i0, i0 + count): with per-channel γ, s = invstd, x̂ = (x - mean)·s
 * and the sums, out = -(s/M)·(f·x̂ + R1·γ·Pb + γ·B1·Pr), Pb = s·(b - B0/M - x̂·B1/M),
 * Pr = s·(r - R0/M - x̂·R1/M), f = γ·s·(BR - B0·R0/M - B1·R1/M); c = (i / S) % C.
 * @param x (B, C, S) f32 the cached input
 * @param bs (B, C, S) f32
 * @param r (B, C, S) f32
 * @param gamma (C,) f32
 * @param stats (5, C) f32 (rows 0 and 1)
 * @param sums (5, C) f32 from batchnorm_jrSums
 * @param out (B, C, S) f32
 */
export function batchnorm_jrInject(
  i0: u32,
  count: u32,
  b: u32,
  channels: u32,
  s: u32,
  x: usize,
  bs: usize,
  r: usize,
  gamma: usize,
  stats: usize,
  sums: usize,
  out: usize,
): void {
  const fm = <f32>(b * s);
  const ch = <usize>channels;
  const end = i0 + count;
  let i = i0;
  while (i < end) {
    // One run of equal c: the rest of the current row of s elements.
    const row = i / s;
    const c = <usize>(row % channels);
    const stop = min<u32>(end, (row + 1) * s);
    const sc = load<f32>(at(stats, ch + c));
    const mean = load<f32>(at(stats, c));
    const gm = load<f32>(at(gamma, c));
    const b0 = load<f32>(at(sums, c)), b1 = load<f32>(at(sums, ch + c));
    const r0 = load<f32>(at(sums, 2 * ch + c)), r1 = load<f32>(at(sums, 3 * ch + c));
    const br = load<f32>(at(sums, 4 * ch + c));
    const f = gm * sc * (br - b0 * r0 / fm - b1 * r1 / fm);
    const k = -(sc / fm);
    const cb = r1 * gm, cr = gm * b1;
    const tb0 = b0 / fm, tb1 = b1 / fm, tr0 = r0 / fm, tr1 = r1 / fm;
    const vs = f32x4.splat(sc), vmean = f32x4.splat(mean), vf = f32x4.splat(f), vk = f32x4.splat(k);
    const vcb = f32x4.splat(cb), vcr = f32x4.splat(cr);
    const vtb0 = f32x4.splat(tb0), vtb1 = f32x4.splat(tb1);
    const vtr0 = f32x4.splat(tr0), vtr1 = f32x4.splat(tr1);
    for (; i + 4 <= stop; i += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(x, i)), vmean), vs);
      const pb = f32x4.mul(vs, f32x4.sub(f32x4.sub(v128.load(at(bs, i)), vtb0), f32x4.mul(xh, vtb1)));
      const pr = f32x4.mul(vs, f32x4.sub(f32x4.sub(v128.load(at(r, i)), vtr0), f32x4.mul(xh, vtr1)));
      const t = f32x4.add(f32x4.add(f32x4.mul(vf, xh), f32x4.mul(vcb, pb)), f32x4.mul(vcr, pr));
      v128.store(at(out, i), f32x4.mul(vk, t));
    }
    for (; i < stop; i++) {
      const xh = (load<f32>(at(x, i)) - mean) * sc;
      const pb = sc * (load<f32>(at(bs, i)) - tb0 - xh * tb1);
      const pr = sc * (load<f32>(at(r, i)) - tr0 - xh * tr1);
      store<f32>(at(out, i), k * (f * xh + cb * pb + cr * pr));
    }
  }
}

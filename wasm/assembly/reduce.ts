// regula WebAssembly kernels: the twins of the reduce WGSL family (src/wasm/kernels/reduce.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/reduce.wgsl over x viewed as (outer, len, inner), output q = o * inner + k. Each output
// is computed by one call, in an order fixed by (len, inner) alone, so a split of the outputs
// over threads never changes a bit:
// - inner == 1 (rows): two f32x4 accumulators over the row, eight interleaved partial results,
//   each summing blocks of 32 before adding them to its total (as the WGSL's blocks of 32), the
//   tail through the same vector code in a partial vector;
// - inner > 1 (columns): lanes are four adjacent outputs k, walking l serially, blocks of 32
//   likewise; sixteen columns per pass when they fit (one cache line of x per l), then four, then
//   one in lane 0 of a vector (the same operations, so the same bits).
// max/min propagate NaN (f32x4.max/min do, as the WGSL's combine).

import { hmax, hmin, hsum, laneMask, loadPartial, storePartial, vexp } from "./_vmath";

const BLOCK: i32 = 32;

@inline function comb(op: i32, a: v128, b: v128): v128 {
  if (op == 1) return f32x4.max(a, b);
  if (op == 2) return f32x4.min(a, b);
  return f32x4.add(a, b);
}

@inline function hcomb(op: i32, v: v128): f32 {
  if (op == 1) return hmax(v);
  if (op == 2) return hmin(v);
  return hsum(v);
}

@inline function mapped(map: i32, v: v128): v128 {
  if (map == 1) return f32x4.mul(v, v);
  if (map == 2) return f32x4.abs(v);
  return v;
}

/** OP-reduction of the `cnt` f32 at p (MAP applied), from `ident`. */
function reduceRow(op: i32, map: i32, p: usize, cnt: i32, ident: f32): f32 {
  const id = f32x4.splat(ident);
  let acc0 = id, acc1 = id, blk0 = id, blk1 = id;
  let l = 0;
  let inBlock = 0;
  for (; l + 8 <= cnt; l += 8) {
    const o = p + (<usize>l << 2);
    blk0 = comb(op, blk0, mapped(map, v128.load(o)));
    blk1 = comb(op, blk1, mapped(map, v128.load(o, 16)));
    if (++inBlock == BLOCK) {
      acc0 = comb(op, acc0, blk0);
      acc1 = comb(op, acc1, blk1);
      blk0 = id;
      blk1 = id;
      inBlock = 0;
    }
  }
  for (; l < cnt; l += 4) {
    const left = cnt - l;
    const o = p + (<usize>l << 2);
    const v = left >= 4 ? v128.load(o) : loadPartial(o, left, 0.0);
    // Lanes past the end hold the identity.
    blk0 = comb(op, blk0, v128.bitselect(mapped(map, v), id, laneMask(left)));
  }
  acc0 = comb(op, acc0, blk0);
  acc1 = comb(op, acc1, blk1);
  return hcomb(op, comb(op, acc0, acc1));
}

/** OP-reduction over l of `w` (1, 4 or 16) adjacent columns starting at p, stride `rowBytes`. */
@inline function reduceCols(
  op: i32, map: i32, p: usize, len: i32, rowBytes: usize, w: i32, ident: f32, y: usize, scale: f32,
): void {
  const id = f32x4.splat(ident);
  let a0 = id, a1 = id, a2 = id, a3 = id;
  let b0 = id, b1 = id, b2 = id, b3 = id;
  let inBlock = 0;
  for (let l = 0; l < len; l++) {
    const o = p + <usize>l * rowBytes;
    if (w == 16) {
      b0 = comb(op, b0, mapped(map, v128.load(o)));
      b1 = comb(op, b1, mapped(map, v128.load(o, 16)));
      b2 = comb(op, b2, mapped(map, v128.load(o, 32)));
      b3 = comb(op, b3, mapped(map, v128.load(o, 48)));
    } else if (w == 4) {
      b0 = comb(op, b0, mapped(map, v128.load(o)));
    } else {
      b0 = comb(op, b0, mapped(map, f32x4.splat(load<f32>(o))));
    }
    if (++inBlock == BLOCK) {
      a0 = comb(op, a0, b0);
      a1 = comb(op, a1, b1);
      a2 = comb(op, a2, b2);
      a3 = comb(op, a3, b3);
      b0 = id;
      b1 = id;
      b2 = id;
      b3 = id;
      inBlock = 0;
    }
  }
  const s = f32x4.splat(scale);
  const r0 = f32x4.mul(comb(op, a0, b0), s);
  if (w == 1) {
    store<f32>(y, f32x4.extract_lane(r0, 0));
    return;
  }
  v128.store(y, r0);
  if (w == 16) {
    v128.store(y, f32x4.mul(comb(op, a1, b1), s), 16);
    v128.store(y, f32x4.mul(comb(op, a2, b2), s), 32);
    v128.store(y, f32x4.mul(comb(op, a3, b3), s), 48);
  }
}

/**
 * reduce_main for outputs q in [q0, q1): y[q] = scale * OP_l MAP(x[(o * len + l) * inner + k]),
 * from `ident`; for inner == 1 the elements at flat index >= total are left out (the last chunk of
 * a whole-tensor pass). OP 0 sum, 1 max, 2 min; MAP 0 x, 1 x^2, 2 |x|.
 * @param x (outer, len, inner) f32 byte offset; y (outer * inner,) f32
 */
export function reduce_run(
  op: i32, map: i32, x: usize, y: usize, outer: i32, len: i32, inner: i32, total: i32,
  scale: f32, ident: f32, q0: i32, q1: i32,
): void {
  if (inner == 1) {
    for (let q = q0; q < q1; q++) {
      const first = <i64>q * len;
      const cnt = <i32>max<i64>(0, min<i64>(<i64>len, <i64>total - first));
      const r = reduceRow(op, map, x + (<usize>first << 2), cnt, ident);
      store<f32>(y + (<usize>q << 2), r * scale);
    }
    return;
  }
  const rowBytes = <usize>inner << 2;
  let q = q0;
  while (q < q1) {
    const o = q / inner;
    const k = q % inner;
    const kEnd = min<i32>(inner, k + (q1 - q));
    const base = x + ((<usize>o * <usize>len * <usize>inner) << 2);
    let kk = k;
    for (; kk + 16 <= kEnd; kk += 16) {
      reduceCols(op, map, base + (<usize>kk << 2), len, rowBytes, 16, ident, y + (<usize>(q + kk - k) << 2), scale);
    }
    for (; kk + 4 <= kEnd; kk += 4) {
      reduceCols(op, map, base + (<usize>kk << 2), len, rowBytes, 4, ident, y + (<usize>(q + kk - k) << 2), scale);
    }
    for (; kk < kEnd; kk++) {
      reduceCols(op, map, base + (<usize>kk << 2), len, rowBytes, 1, ident, y + (<usize>(q + kk - k) << 2), scale);
    }
    q += kEnd - k;
  }
}

@inline function isNan(v: f32): bool {
  return (reinterpret<u32>(v) & 0x7fffffff) > 0x7f800000;
}

/**
 * arg_main for outputs q in [q0, q1): yi[q] = the l of the largest (sign 1) or smallest (sign -1)
 * x[(o * len + l) * inner + k], the first one on ties, the first NaN if any (0xffffffff when len
 * is 0).
 * @param x (outer, len, inner) f32 byte offset; yi (outer * inner,) u32
 */
export function reduce_arg(
  sign: i32, x: usize, yi: usize, len: i32, inner: i32, q0: i32, q1: i32,
): void {
  const step = <usize>inner << 2;
  for (let q = q0; q < q1; q++) {
    const o = q / inner;
    const k = q % inner;
    let p = x + ((<usize>o * <usize>len * <usize>inner + <usize>k) << 2);
    let bi: u32 = 0xffffffff;
    let bv: f32 = 0;
    for (let l = 0; l < len; l++, p += step) {
      const v = load<f32>(p);
      if (bi == 0xffffffff) {
        bi = l;
        bv = v;
        if (isNan(v)) break;
        continue;
      }
      if (isNan(v)) {
        bi = l;
        break;
      }
      if (sign > 0 ? v > bv : v < bv) {
        bi = l;
        bv = v;
      }
    }
    store<u32>(yi + (<usize>q << 2), bi);
  }
}

/**
 * softmax_main for outputs q in [q0, q1) (each a line along l): m = max_l x (NaN propagates),
 * s = sum_l exp(x - m), y = exp(x - m) / s, or with log = 1 y = x - m - log(s). y may be x.
 * @param x (outer, len, inner) f32 byte offset; y the same shape
 */
export function reduce_softmax(
  log: i32, x: usize, y: usize, len: i32, inner: i32, q0: i32, q1: i32,
): void {
  if (inner == 1) {
    for (let q = q0; q < q1; q++) {
      const off = (<usize>q * <usize>len) << 2;
      softmaxRow(log, x + off, y + off, len);
    }
    return;
  }
  const rowBytes = <usize>inner << 2;
  let q = q0;
  while (q < q1) {
    const o = q / inner;
    const k = q % inner;
    const kEnd = min<i32>(inner, k + (q1 - q));
    const off = (<usize>o * <usize>len * <usize>inner) << 2;
    let kk = k;
    for (; kk + 4 <= kEnd; kk += 4) {
      softmaxCols(log, x + off + (<usize>kk << 2), y + off + (<usize>kk << 2), len, rowBytes, 4);
    }
    for (; kk < kEnd; kk++) {
      softmaxCols(log, x + off + (<usize>kk << 2), y + off + (<usize>kk << 2), len, rowBytes, 1);
    }
    q += kEnd - k;
  }
}

function softmaxRow(log: i32, x: usize, y: usize, len: i32): void {
  const ninf = f32x4.splat(-Infinity);
  let mv = ninf;
  let l = 0;
  for (; l + 4 <= len; l += 4) mv = f32x4.max(mv, v128.load(x + (<usize>l << 2)));
  if (l < len) mv = f32x4.max(mv, loadPartial(x + (<usize>l << 2), len - l, -Infinity));
  const m = f32x4.splat(hmax(mv));
  let acc = f32x4.splat(0.0);
  let blk = acc;
  let inBlock = 0;
  l = 0;
  for (; l + 4 <= len; l += 4) {
    blk = f32x4.add(blk, vexp(f32x4.sub(v128.load(x + (<usize>l << 2)), m)));
    if (++inBlock == BLOCK) {
      acc = f32x4.add(acc, blk);
      blk = f32x4.splat(0.0);
      inBlock = 0;
    }
  }
  if (l < len) {
    const e = vexp(f32x4.sub(loadPartial(x + (<usize>l << 2), len - l, 0.0), m));
    blk = f32x4.add(blk, v128.and(e, laneMask(len - l)));
  }
  const total = hsum(f32x4.add(acc, blk));
  const lt = f32x4.splat(Mathf.log(total));
  const inv = f32x4.splat(1.0 / total);
  l = 0;
  for (; l + 4 <= len; l += 4) {
    const o = <usize>l << 2;
    const d = f32x4.sub(v128.load(x + o), m);
    v128.store(y + o, log ? f32x4.sub(d, lt) : f32x4.mul(vexp(d), inv));
  }
  if (l < len) {
    const o = <usize>l << 2;
    const d = f32x4.sub(loadPartial(x + o, len - l, 0.0), m);
    storePartial(y + o, log ? f32x4.sub(d, lt) : f32x4.mul(vexp(d), inv), len - l);
  }
}

/** softmax along l of `w` (1 or 4) adjacent columns; lanes are columns. */
function softmaxCols(log: i32, x: usize, y: usize, len: i32, rowBytes: usize, w: i32): void {
  let m = f32x4.splat(-Infinity);
  for (let l = 0; l < len; l++) {
    const p = x + <usize>l * rowBytes;
    m = f32x4.max(m, w == 4 ? v128.load(p) : f32x4.splat(load<f32>(p)));
  }
  let acc = f32x4.splat(0.0);
  let blk = acc;
  let inBlock = 0;
  for (let l = 0; l < len; l++) {
    const p = x + <usize>l * rowBytes;
    const v = w == 4 ? v128.load(p) : f32x4.splat(load<f32>(p));
    blk = f32x4.add(blk, vexp(f32x4.sub(v, m)));
    if (++inBlock == BLOCK) {
      acc = f32x4.add(acc, blk);
      blk = f32x4.splat(0.0);
      inBlock = 0;
    }
  }
  const total = f32x4.add(acc, blk);
  let lt = f32x4.splat(Mathf.log(f32x4.extract_lane(total, 0)));
  if (w == 4) {
    lt = f32x4.replace_lane(lt, 1, Mathf.log(f32x4.extract_lane(total, 1)));
    lt = f32x4.replace_lane(lt, 2, Mathf.log(f32x4.extract_lane(total, 2)));
    lt = f32x4.replace_lane(lt, 3, Mathf.log(f32x4.extract_lane(total, 3)));
  }
  const inv = f32x4.div(f32x4.splat(1.0), total);
  for (let l = 0; l < len; l++) {
    const o = <usize>l * rowBytes;
    const v = w == 4 ? v128.load(x + o) : f32x4.splat(load<f32>(x + o));
    const d = f32x4.sub(v, m);
    const r = log ? f32x4.sub(d, lt) : f32x4.mul(vexp(d), inv);
    if (w == 4) v128.store(y + o, r);
    else store<f32>(y + o, f32x4.extract_lane(r, 0));
  }
}

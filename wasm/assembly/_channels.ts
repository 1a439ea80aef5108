// Elementwise maps over (rows, C, S) data with per-channel coefficients, shared by layers.ts
// (channel_affine) and batchnorm.ts (affine, bwd_dx); not a module export (index.ts does not
// re-export this file).
//
// Element i belongs to channel c = (i / S) % C. With S = 1 four adjacent channels go per f32x4
// (their coefficients loaded as vectors); with S > 1 each run of one channel goes four elements
// per f32x4 (its coefficients splatted). Both paths and their scalar tails apply the same
// operations in the same order, so an element's bits never depend on where a range starts.
//
// The map of each kind (a = A[c], times A2[c] when A2 is given; the other coefficients are
// per channel too, t1 = T[c] / fm):
//   SCALE        y = x·a
//   SCALE_SHIFT  y = x·a + b
//   CENTER       y = (x - m)·a + b
//   BN_DX        y = a·((x2 - t1) - ((x - m)·inv)·sdx / fm), inv = A2[c] (batchnorm's dx)
// The kind is a constant at every call: the inlined code keeps only its own branch and loads.

import { at } from "./_common";

export const SCALE: i32 = 0;
export const SCALE_SHIFT: i32 = 1;
export const CENTER: i32 = 2;
export const BN_DX: i32 = 3;

@inline function map4(
  kind: i32, x: v128, x2: v128, a: v128, b: v128, m: v128, inv: v128, t1: v128, sdx: v128,
  fm: v128,
): v128 {
  if (kind == SCALE) return f32x4.mul(x, a);
  if (kind == SCALE_SHIFT) return f32x4.add(f32x4.mul(x, a), b);
  if (kind == CENTER) return f32x4.add(f32x4.mul(f32x4.sub(x, m), a), b);
  const xh = f32x4.mul(f32x4.sub(x, m), inv);
  return f32x4.mul(a, f32x4.sub(f32x4.sub(x2, t1), f32x4.div(f32x4.mul(xh, sdx), fm)));
}

@inline function map1(
  kind: i32, x: f32, x2: f32, a: f32, b: f32, m: f32, inv: f32, t1: f32, sdx: f32, fm: f32,
): f32 {
  if (kind == SCALE) return x * a;
  if (kind == SCALE_SHIFT) return x * a + b;
  if (kind == CENTER) return (x - m) * a + b;
  const xh = (x - m) * inv;
  return a * (x2 - t1 - xh * sdx / fm);
}

@inline function reads(kind: i32, what: i32): bool {
  // what: 0 A2, 1 b, 2 m, 3 t and sdx, 4 x2
  if (what == 1) return kind == SCALE_SHIFT || kind == CENTER;
  if (what == 2) return kind == CENTER || kind == BN_DX;
  if (what == 3 || what == 4) return kind == BN_DX;
  return true;
}

/**
 * y[i] = the map of `kind` of x[i] (and x2[i]) with channel c's coefficients, for elements
 * [i0, i0 + count) of (rows, C, S) data. Coefficient pointers a, a2, b, m, t, sdx (A, A2, B, M,
 * T, SDX above; 0 where the kind reads none, a2 0 for no A2); `fm` is BN_DX's divisor.
 */
@inline export function channelMap(
  kind: i32, i0: u32, count: u32, channels: u32, s: u32, x: usize, x2: usize, y: usize,
  pa: usize, pa2: usize, pb: usize, pm: usize, pt: usize, psdx: usize, fm: f32,
): void {
  const vfm = f32x4.splat(fm);
  const zero = f32x4.splat(0);
  const end = i0 + count;
  let i = i0;
  if (s == 1) {
    let c = i0 % channels;
    while (i < end) {
      if (c + 4 <= channels && i + 4 <= end) {
        const a1 = v128.load(at(pa, c));
        const a2 = pa2 != 0 ? v128.load(at(pa2, c)) : zero;
        const a = pa2 != 0 ? f32x4.mul(a1, a2) : a1;
        const b = reads(kind, 1) ? v128.load(at(pb, c)) : zero;
        const m = reads(kind, 2) ? v128.load(at(pm, c)) : zero;
        const t1 = reads(kind, 3) ? f32x4.div(v128.load(at(pt, c)), vfm) : zero;
        const sdx = reads(kind, 3) ? v128.load(at(psdx, c)) : zero;
        const xv = v128.load(at(x, i));
        const x2v = reads(kind, 4) ? v128.load(at(x2, i)) : zero;
        v128.store(at(y, i), map4(kind, xv, x2v, a, b, m, a2, t1, sdx, vfm));
        i += 4;
        c += 4;
      } else {
        const a1 = load<f32>(at(pa, c));
        const a2: f32 = pa2 != 0 ? load<f32>(at(pa2, c)) : 0;
        const a = pa2 != 0 ? a1 * a2 : a1;
        const b: f32 = reads(kind, 1) ? load<f32>(at(pb, c)) : 0;
        const m: f32 = reads(kind, 2) ? load<f32>(at(pm, c)) : 0;
        const t1: f32 = reads(kind, 3) ? load<f32>(at(pt, c)) / fm : 0;
        const sdx: f32 = reads(kind, 3) ? load<f32>(at(psdx, c)) : 0;
        const x2v: f32 = reads(kind, 4) ? load<f32>(at(x2, i)) : 0;
        store<f32>(at(y, i), map1(kind, load<f32>(at(x, i)), x2v, a, b, m, a2, t1, sdx, fm));
        i++;
        c++;
      }
      if (c == channels) c = 0;
    }
    return;
  }
  while (i < end) {
    // One run of equal c: the rest of the current row of s elements.
    const row = i / s;
    const c = row % channels;
    const stop = min<u32>(end, (row + 1) * s);
    const a1 = load<f32>(at(pa, c));
    const a2: f32 = pa2 != 0 ? load<f32>(at(pa2, c)) : 0;
    const a = pa2 != 0 ? a1 * a2 : a1;
    const b: f32 = reads(kind, 1) ? load<f32>(at(pb, c)) : 0;
    const m: f32 = reads(kind, 2) ? load<f32>(at(pm, c)) : 0;
    const t1: f32 = reads(kind, 3) ? load<f32>(at(pt, c)) / fm : 0;
    const sdx: f32 = reads(kind, 3) ? load<f32>(at(psdx, c)) : 0;
    const va = f32x4.splat(a), va2 = f32x4.splat(a2), vb = f32x4.splat(b), vm = f32x4.splat(m);
    const vt1 = f32x4.splat(t1), vsdx = f32x4.splat(sdx);
    for (; i + 4 <= stop; i += 4) {
      const x2v = reads(kind, 4) ? v128.load(at(x2, i)) : zero;
      v128.store(at(y, i), map4(kind, v128.load(at(x, i)), x2v, va, vb, vm, va2, vt1, vsdx, vfm));
    }
    for (; i < stop; i++) {
      const x2v: f32 = reads(kind, 4) ? load<f32>(at(x2, i)) : 0;
      store<f32>(at(y, i), map1(kind, load<f32>(at(x, i)), x2v, a, b, m, a2, t1, sdx, fm));
    }
  }
}

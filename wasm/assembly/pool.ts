// regula WebAssembly kernels: the twins of the pool WGSL family (src/wasm/kernels/pool.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// 2-D max and average pooling over NCHW planes, the formulas of shaders/pool.wgsl (PyTorch 1.13
// MaxPool2d / AvgPool2d, dilation 1, ceil_mode false), in the WGSL's summation order, so results
// are bitwise those of the WGSL up to its compiler's rounding. Every export covers the planes
// [p0, p1): the host splits planes across threads (independent outputs).
//
// Geometry (the WGSL's override constants) comes in a block of 11 i32 words at `g`:
// H, W, OH, OW, KH, KW, SH, SW, PH, PW, INCLUDE_PAD.

import { at, word } from "./_common";

/** divisor() of shaders/pool.wgsl for window (oy, ox). */
@inline function divisor(g: usize, oy: i32, ox: i32): f32 {
  const kh = word(g, 4), kw = word(g, 5);
  if (word(g, 10) != 0) return <f32>(kh * kw);
  const y0 = oy * word(g, 6) - word(g, 8);
  const x0 = ox * word(g, 7) - word(g, 9);
  const ny = min<i32>(y0 + kh, word(g, 0)) - max<i32>(y0, 0);
  const nx = min<i32>(x0 + kw, word(g, 1)) - max<i32>(x0, 0);
  return <f32>(ny * nx);
}

/**
 * max_fwd_main: y = max over the in-image window (replace when v > best or v is NaN; ties keep
 * the first), idx = its flat index iy·W + ix within the plane.
 * x (planes, H, W) f32, idx (planes, OH, OW) u32, y (planes, OH, OW) f32.
 */
export function pool_maxForward(g: usize, x: usize, idx: usize, y: usize, p0: i32, p1: i32): void {
  const h = word(g, 0), w = word(g, 1), oh = word(g, 2), ow = word(g, 3);
  const kh = word(g, 4), kw = word(g, 5), sh = word(g, 6), sw = word(g, 7), ph = word(g, 8), pw = word(g, 9);
  // 2×2 windows with stride 2 and no padding (LeNet, DDNet): four outputs at a time, the
  // window's four values deinterleaved from two rows, compared in the loop's order.
  const pairs = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0;
  const lanes = i32x4(0, 2, 4, 6);
  for (let pl = p0; pl < p1; pl++) {
    const base = at(x, pl * h * w);
    let o = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph;
      const ys = max<i32>(y0, 0), ye = min<i32>(y0 + kh, h);
      let ox = 0;
      if (pairs) {
        const r0 = at(base, 2 * oy * w), r1 = at(r0, w);
        for (; ox + 4 <= ow; ox += 4) {
          const off = <usize>(2 * ox) << 2;
          const u0 = v128.load(r0 + off), u1 = v128.load(r0 + off, 16);
          const v0 = v128.load(r1 + off), v1 = v128.load(r1 + off, 16);
          let best = f32x4.shuffle(u0, u1, 0, 2, 4, 6);
          let arg = i32x4.add(i32x4.splat(2 * oy * w + 2 * ox), lanes);
          const one = i32x4.splat(1), row = i32x4.splat(w);
          let v = f32x4.shuffle(u0, u1, 1, 3, 5, 7);
          let take = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, take);
          arg = v128.bitselect(i32x4.add(arg, one), arg, take);
          const argc = i32x4.add(i32x4.splat(2 * oy * w + 2 * ox), i32x4.add(lanes, row));
          v = f32x4.shuffle(v0, v1, 0, 2, 4, 6);
          take = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, take);
          arg = v128.bitselect(argc, arg, take);
          v = f32x4.shuffle(v0, v1, 1, 3, 5, 7);
          take = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, take);
          arg = v128.bitselect(i32x4.add(argc, one), arg, take);
          v128.store(at(y, o), best);
          v128.store(at(idx, o), arg);
          o += 4;
        }
      }
      for (; ox < ow; ox++) {
        const x0 = ox * sw - pw;
        const xs = max<i32>(x0, 0), xe = min<i32>(x0 + kw, w);
        let best: f32 = -Infinity;
        let arg = ys * w + xs;
        for (let iy = ys; iy < ye; iy++) {
          for (let ix = xs; ix < xe; ix++) {
            const v = load<f32>(at(base, iy * w + ix));
            if (v > best || v != v) {
              best = v;
              arg = iy * w + ix;
            }
          }
        }
        store<f32>(at(y, o), best);
        store<u32>(at(idx, o), <u32>arg);
        o++;
      }
    }
  }
}

/**
 * max_bwd_main: dx[iy, ix] = Σ over the windows (oy, ox) covering it, in (oy, ox) order, of
 * dy[oy, ox] where idx[oy, ox] = iy·W + ix.
 * dy (planes, OH, OW) f32, idx (planes, OH, OW) u32, dx (planes, H, W) f32.
 */
export function pool_maxBackward(g: usize, dy: usize, idx: usize, dx: usize, p0: i32, p1: i32): void {
  const h = word(g, 0), w = word(g, 1), oh = word(g, 2), ow = word(g, 3);
  const kh = word(g, 4), kw = word(g, 5), sh = word(g, 6), sw = word(g, 7), ph = word(g, 8), pw = word(g, 9);
  const tiles = sh == kh && sw == kw && ph == 0 && pw == 0;
  const pairs = tiles && kh == 2 && kw == 2;
  const lanes = i32x4(0, 2, 4, 6);
  for (let pl = p0; pl < p1; pl++) {
    const ob = pl * oh * ow;
    let i = pl * h * w;
    for (let iy = 0; iy < h; iy++) {
      if (pairs && iy / 2 < oh) {
        // 2×2 / 2 windows: input pairs (2·ox, 2·ox + 1) of this row against four argmaxes.
        const orow = ob + (iy / 2) * ow;
        let ox = 0;
        for (; ox + 4 <= ow; ox += 4) {
          const a = v128.load(at(idx, orow + ox));
          const d = v128.load(at(dy, orow + ox));
          const qe = i32x4.add(i32x4.splat(iy * w + 2 * ox), lanes);
          const ve = v128.and(d, i32x4.eq(a, qe));
          const vo = v128.and(d, i32x4.eq(a, i32x4.add(qe, i32x4.splat(1))));
          v128.store(at(dx, i + 2 * ox), f32x4.shuffle(ve, vo, 0, 4, 1, 5));
          v128.store(at(dx, i + 2 * ox), f32x4.shuffle(ve, vo, 2, 6, 3, 7), 16);
        }
        for (let ix = 2 * ox; ix < w; ix++) {
          const q = iy * w + ix;
          let s: f32 = 0;
          if (ix / 2 < ow) {
            const o = orow + ix / 2;
            if (load<u32>(at(idx, o)) == <u32>q) s = load<f32>(at(dy, o));
          }
          store<f32>(at(dx, i + ix), s);
        }
        i += w;
        continue;
      }
      // Covering windows along y: oy in [lo, hi) (covering() of the WGSL).
      const ty = iy + ph;
      const ylo = ty + 1 > kh ? (ty + 1 - kh + sh - 1) / sh : 0;
      const yhi = max<i32>(min<i32>(ty / sh + 1, oh), ylo);
      for (let ix = 0; ix < w; ix++) {
        const q = iy * w + ix;
        let s: f32 = 0;
        if (tiles) {
          const oy = iy / sh, ox = ix / sw;
          if (oy < oh && ox < ow) {
            const o = ob + oy * ow + ox;
            if (load<u32>(at(idx, o)) == <u32>q) s = load<f32>(at(dy, o));
          }
        } else {
          const tx = ix + pw;
          const xlo = tx + 1 > kw ? (tx + 1 - kw + sw - 1) / sw : 0;
          const xhi = max<i32>(min<i32>(tx / sw + 1, ow), xlo);
          for (let oy = ylo; oy < yhi; oy++) {
            for (let ox = xlo; ox < xhi; ox++) {
              const o = ob + oy * ow + ox;
              if (load<u32>(at(idx, o)) == <u32>q) s += load<f32>(at(dy, o));
            }
          }
        }
        store<f32>(at(dx, i), s);
        i++;
      }
    }
  }
}

/**
 * max_jvp_main: ty[o] = tx[plane, idx[o]].
 * tx (planes, H, W) f32, idx (planes, OH, OW) u32, ty (planes, OH, OW) f32.
 */
export function pool_maxJvp(g: usize, tx: usize, idx: usize, ty: usize, p0: i32, p1: i32): void {
  const hw = word(g, 0) * word(g, 1), ohw = word(g, 2) * word(g, 3);
  for (let pl = p0; pl < p1; pl++) {
    const base = at(tx, pl * hw);
    for (let o = pl * ohw; o < (pl + 1) * ohw; o++) {
      store<f32>(at(ty, o), load<f32>(base + (<usize>load<u32>(at(idx, o)) << 2)));
    }
  }
}

/**
 * avg_fwd_main: y = (Σ over the in-image window, rows then columns) / divisor.
 * x (planes, H, W) f32, y (planes, OH, OW) f32.
 */
export function pool_avgForward(g: usize, x: usize, y: usize, p0: i32, p1: i32): void {
  const h = word(g, 0), w = word(g, 1), oh = word(g, 2), ow = word(g, 3);
  const kh = word(g, 4), kw = word(g, 5), sh = word(g, 6), sw = word(g, 7), ph = word(g, 8), pw = word(g, 9);
  for (let pl = p0; pl < p1; pl++) {
    const base = at(x, pl * h * w);
    let o = pl * oh * ow;
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - ph;
      const ys = max<i32>(y0, 0), ye = min<i32>(y0 + kh, h);
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - pw;
        const xs = max<i32>(x0, 0), xe = min<i32>(x0 + kw, w);
        let s: f32 = 0;
        for (let iy = ys; iy < ye; iy++) {
          const row = at(base, iy * w);
          for (let ix = xs; ix < xe; ix++) s += load<f32>(at(row, ix));
        }
        store<f32>(at(y, o), s / divisor(g, oy, ox));
        o++;
      }
    }
  }
}

/**
 * avg_bwd_main: dx[iy, ix] = Σ over the covering windows, in (oy, ox) order, of
 * dy[oy, ox] / divisor(oy, ox).
 * dy (planes, OH, OW) f32, dx (planes, H, W) f32.
 */
export function pool_avgBackward(g: usize, dy: usize, dx: usize, p0: i32, p1: i32): void {
  const h = word(g, 0), w = word(g, 1), oh = word(g, 2), ow = word(g, 3);
  const kh = word(g, 4), kw = word(g, 5), sh = word(g, 6), sw = word(g, 7), ph = word(g, 8), pw = word(g, 9);
  for (let pl = p0; pl < p1; pl++) {
    const ob = pl * oh * ow;
    let i = pl * h * w;
    for (let iy = 0; iy < h; iy++) {
      const ty = iy + ph;
      const ylo = ty + 1 > kh ? (ty + 1 - kh + sh - 1) / sh : 0;
      const yhi = max<i32>(min<i32>(ty / sh + 1, oh), ylo);
      for (let ix = 0; ix < w; ix++) {
        const tx = ix + pw;
        const xlo = tx + 1 > kw ? (tx + 1 - kw + sw - 1) / sw : 0;
        const xhi = max<i32>(min<i32>(tx / sw + 1, ow), xlo);
        let s: f32 = 0;
        for (let oy = ylo; oy < yhi; oy++) {
          for (let ox = xlo; ox < xhi; ox++) {
            s += load<f32>(at(dy, ob + oy * ow + ox)) / divisor(g, oy, ox);
          }
        }
        store<f32>(at(dx, i), s);
        i++;
      }
    }
  }
}

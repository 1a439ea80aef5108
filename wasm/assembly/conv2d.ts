// regula WebAssembly kernels: the twins of the conv2d WGSL family (src/wasm/kernels/conv2d.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// 2-D convolution (NCHW, OIHW, groups 1, dilation 1) as im2col + the packed SGEMM of gemm.ts
// (Chellapilla et al., "High Performance Convolutional Neural Networks for Document Processing",
// 2006: unfold the input windows into a matrix, then one GEMM). The three GEMMs of
// shaders/conv2d.wgsl, one image at a time and in chunks of positions small enough that the
// unfolded block stays in L2:
//
//   mode 0, forward:         y[b] (O, OH·OW) = W (O, C·kh·kw) · col(x[b]) (C·kh·kw, OH·OW)
//   mode 1, input gradient:  dx[b] (C, H·W) = W' (C, O·kh·kw) · colT(dy[b]) (O·kh·kw, H·W),
//                            W'[c, (o, ky, kx)] = W[o, c, ky, kx] (conv2d_w1), and colT the
//                            transposed-convolution gather: entry ((o, ky, kx), (iy, ix)) is
//                            dy[o, (iy + ph - ky) / sh, (ix + pw - kx) / sw] where both divisions
//                            are exact and in range, else 0
//   mode 2, weight gradient: dW (O, C·kh·kw) += Σ_{b, chunks} dy[b][:, chunk] · col(x[b])[:, chunk]ᵀ
//                            over the depth range of one split-K slab of the WGSL.
//
// The unfolded block is written row by row ((ch, ky, kx) rows, positions along the row), runs
// of consecutive in-image x positions copied with v128 loads and stores. sgemm then packs it
// into its panels. Every output element is the same sequence of operations whichever images,
// positions or columns a call covers, so splitting across threads (by images or positions,
// by slabs or columns of dW) gives bitwise equal results.

import { sgemm } from "./gemm";

@inline function at(base: usize, index: i32): usize {
  return base + (<usize>index << 2);
}

// Field indices of the geometry block (u32 / i32 / f32 words) the host writes for one call.
const G_M: i32 = 0; // GEMM rows (O in modes 0, 2; C in mode 1)
const G_K: i32 = 1; // GEMM depth of modes 0, 1 (rows of the unfolded matrix)
const G_PH: i32 = 2; // source plane height
const G_PW: i32 = 3; // source plane width
const G_GH: i32 = 4; // position grid height (OH, or H in mode 1)
const G_GW: i32 = 5; // position grid width
const G_KH: i32 = 6;
const G_KW: i32 = 7;
const G_SY: i32 = 8; // grid step along y (sh in mode 0, 1 in mode 1)
const G_SX: i32 = 9;
const G_FY: i32 = 10; // sign of ky (1 or -1)
const G_FX: i32 = 11;
const G_OY: i32 = 12; // offset along y (-ph, or ph in mode 1)
const G_OX: i32 = 13;
const G_DY: i32 = 14; // exact divisor along y (sh in mode 1, else 1)
const G_DX: i32 = 15;
const G_A: i32 = 16; // A: W (mode 0), W' (mode 1), dy (mode 2)
const G_SRC: i32 = 17; // unfolded source: x (modes 0, 2), dy (mode 1)
const G_OUT: i32 = 18;
const G_BIAS: i32 = 19; // (O,) or 0
const G_ACT: i32 = 20; // activation code of shaders/conv2d.wgsl
const G_BETA: i32 = 21; // f32
const G_CHUNK: i32 = 22; // positions per GEMM call
const G_SRC_IMG: i32 = 23; // floats per source image
const G_OUT_IMG: i32 = 24; // floats per output image (modes 0, 1)
const G_N: i32 = 25; // mode 2: columns of dW (C·kh·kw)
const G_KTOT: i32 = 26; // mode 2: B·OH·OW
const G_KCHUNK: i32 = 27; // mode 2: depth of one slab

@inline function gi(g: usize, f: i32): i32 {
  return load<i32>(g + (<usize>f << 2));
}

/**
 * Unfolds rows [r0, r1) and positions [q0, q1) of one image into dst (row stride ld). Row
 * r = (ch, ky, kx); position q = (py, px) on the grid; source row t = py·sy + fy·ky + oy, taken
 * when t >= 0, t % dy = 0 and t / dy < plane height (likewise x); else 0.
 */
function unfold(g: usize, src: usize, r0: i32, r1: i32, q0: i32, q1: i32, dst: usize, ld: i32): void {
  const ph = gi(g, G_PH), pw = gi(g, G_PW), gw = gi(g, G_GW);
  const kh = gi(g, G_KH), kw = gi(g, G_KW), kk = kh * kw;
  const sy = gi(g, G_SY), sx = gi(g, G_SX), fy = gi(g, G_FY), fx = gi(g, G_FX);
  const oy = gi(g, G_OY), ox = gi(g, G_OX), dvy = gi(g, G_DY), dvx = gi(g, G_DX);
  const zero = f32x4.splat(0);
  for (let r = r0; r < r1; r++) {
    const ch = r / kk, rr = r % kk;
    const ky = rr / kw, kx = rr % kw;
    const plane = at(src, ch * ph * pw);
    const row = at(dst, (r - r0) * ld);
    const bx = fx * kx + ox;
    let q = q0;
    while (q < q1) {
      const py = q / gw;
      const px0 = q % gw;
      const px1 = min<i32>(gw, px0 + (q1 - q));
      let o = at(row, q - q0);
      const t = py * sy + fy * ky + oy;
      let y = t;
      let ok = t >= 0;
      if (dvy > 1) {
        ok = ok && t % dvy == 0;
        y = t / dvy;
      }
      ok = ok && y < ph;
      if (!ok) {
        let px = px0;
        for (; px + 4 <= px1; px += 4) {
          v128.store(o, zero);
          o += 16;
        }
        for (; px < px1; px++) {
          store<f32>(o, 0);
          o += 4;
        }
      } else if (sx == 1 && dvx == 1) {
        // In-image x = px + bx for px in [-bx, pw - bx).
        const a = min<i32>(max<i32>(-bx, px0), px1);
        const b = max<i32>(min<i32>(pw - bx, px1), a);
        for (let px = px0; px < a; px++) {
          store<f32>(o, 0);
          o += 4;
        }
        let s = at(plane, y * pw + a + bx);
        let px = a;
        for (; px + 4 <= b; px += 4) {
          v128.store(o, v128.load(s));
          o += 16;
          s += 16;
        }
        for (; px < b; px++) {
          store<f32>(o, load<f32>(s));
          o += 4;
          s += 4;
        }
        for (px = b; px < px1; px++) {
          store<f32>(o, 0);
          o += 4;
        }
      } else {
        const srow = at(plane, y * pw);
        for (let px = px0; px < px1; px++) {
          const u = px * sx + bx;
          let xx = u;
          let okx = u >= 0;
          if (dvx > 1) {
            okx = okx && u % dvx == 0;
            xx = u / dvx;
          }
          store<f32>(o, okx && xx < pw ? load<f32>(at(srow, xx)) : 0);
          o += 4;
        }
      }
      q += px1 - px0;
    }
  }
}

/** activate() of shaders/conv2d.wgsl (relu keeps NaN; tanh's series near 0; stable sigmoid). */
@inline function activate(act: i32, x: f32): f32 {
  if (act == 1) return x < 0 ? 0 : x;
  if (act == 2) {
    const ax = Mathf.abs(x);
    if (ax < 0.125) {
      const x2 = x * x;
      return x * (1.0 + x2 * (<f32>(-1.0 / 3.0) + x2 * (<f32>(2.0 / 15.0) + x2 * <f32>(-17.0 / 315.0))));
    }
    const e = Mathf.exp(-2.0 * ax);
    const s: f32 = x > 0 ? 1 : x < 0 ? -1 : 0;
    return s * (1.0 - e) / (1.0 + e);
  }
  if (act == 3) {
    const e = Mathf.exp(-Mathf.abs(x));
    const r: f32 = 1.0 / (1.0 + e);
    return x >= 0 ? r : e * r;
  }
  return x;
}

/** c[i, j] = act(c[i, j] + bias[i]) over an (m, n) block with row stride ldc; bias 0: none. */
function epilogue(m: i32, n: i32, c: usize, ldc: i32, bias: usize, act: i32): void {
  if (bias == 0 && act == 0) return;
  const zero = f32x4.splat(0);
  for (let i = 0; i < m; i++) {
    const row = at(c, i * ldc);
    const bv: f32 = bias != 0 ? load<f32>(at(bias, i)) : 0;
    let j = 0;
    if (act == 0 || act == 1) {
      const vb = f32x4.splat(bv);
      for (; j + 4 <= n; j += 4) {
        const p = at(row, j);
        let v = v128.load(p);
        if (bias != 0) v = f32x4.add(v, vb);
        if (act == 1) v = v128.andnot(v, f32x4.lt(v, zero));
        v128.store(p, v);
      }
    }
    for (; j < n; j++) {
      const p = at(row, j);
      let v = load<f32>(p);
      if (bias != 0) v += bv;
      store<f32>(p, activate(act, v));
    }
  }
}

/**
 * Modes 0 and 1: images [b0, b1), grid positions [q0, q1) of each. `g` is the geometry block
 * (see G_*), `col` this thread's unfold buffer (K × chunk f32), `scratch` its sgemm scratch.
 * Output (M, grid) per image: act(A · unfold + bias[m] + beta · out).
 */
export function conv2d_gemm(g: usize, b0: i32, b1: i32, q0: i32, q1: i32, col: usize, scratch: usize): void {
  const m = gi(g, G_M), k = gi(g, G_K);
  const a = <usize>load<u32>(g + (<usize>G_A << 2));
  const src = <usize>load<u32>(g + (<usize>G_SRC << 2));
  const out = <usize>load<u32>(g + (<usize>G_OUT << 2));
  const bias = <usize>load<u32>(g + (<usize>G_BIAS << 2));
  const act = gi(g, G_ACT);
  const beta = load<f32>(g + (<usize>G_BETA << 2));
  const chunk = gi(g, G_CHUNK);
  const srcImg = gi(g, G_SRC_IMG), outImg = gi(g, G_OUT_IMG);
  const npos = gi(g, G_GH) * gi(g, G_GW);
  for (let b = b0; b < b1; b++) {
    const s = at(src, b * srcImg);
    const o = at(out, b * outImg);
    for (let q = q0; q < q1; q += chunk) {
      const nq = min<i32>(chunk, q1 - q);
      unfold(g, s, 0, k, q, q + nq, col, nq);
      sgemm(0, 0, m, nq, k, 1, a, k, col, nq, beta, at(o, q), npos, 0, 0, 0, scratch);
      epilogue(m, nq, at(o, q), npos, bias, act);
    }
  }
}

/**
 * Mode 2: slabs [z0, z1) of `out` ((splits, O, N); one slab is dW itself), columns [n0, n1) of
 * each: slab z = beta · slab + Σ over depths [z·kchunk, min(ktot, (z+1)·kchunk)) of
 * dy[b, :, p] ⊗ unfold(x[b])[:, p], in chunks of at most `chunk` positions within an image.
 */
export function conv2d_wgrad(g: usize, z0: i32, z1: i32, n0: i32, n1: i32, col: usize, scratch: usize): void {
  const m = gi(g, G_M), n = gi(g, G_N);
  const dy = <usize>load<u32>(g + (<usize>G_A << 2));
  const x = <usize>load<u32>(g + (<usize>G_SRC << 2));
  const out = <usize>load<u32>(g + (<usize>G_OUT << 2));
  const beta = load<f32>(g + (<usize>G_BETA << 2));
  const chunk = gi(g, G_CHUNK);
  const srcImg = gi(g, G_SRC_IMG);
  const ktot = gi(g, G_KTOT), kchunk = gi(g, G_KCHUNK);
  const npos = gi(g, G_GH) * gi(g, G_GW);
  const nn = n1 - n0;
  if (nn <= 0) return;
  for (let z = z0; z < z1; z++) {
    const c = at(out, z * m * n + n0);
    const kend = min<i32>(ktot, (z + 1) * kchunk);
    let first = true;
    let kq = z * kchunk;
    while (kq < kend) {
      const b = kq / npos;
      const p = kq % npos;
      const nq = min<i32>(min<i32>(chunk, npos - p), kend - kq);
      unfold(g, at(x, b * srcImg), n0, n1, p, p + nq, col, nq);
      sgemm(0, 1, m, nn, nq, 1, at(dy, (b * m) * npos + p), npos, col, nq, first ? beta : 1, c, n, 0, 0, 0, scratch);
      first = false;
      kq += nq;
    }
    if (first) {
      // An empty depth range: the WGSL stores 0 + beta · out.
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < nn; j++) {
          const p = at(c, i * n + j);
          store<f32>(p, beta != 0 ? beta * load<f32>(p) : 0);
        }
      }
    }
  }
}

/**
 * W' (C, O·kk) from W (O, C, kk): the A operand of the input gradient.
 * dst[c·O·kk + o·kk + r] = w[(o·C + c)·kk + r].
 */
export function conv2d_w1(w: usize, cout: i32, cin: i32, kk: i32, dst: usize): void {
  for (let c = 0; c < cin; c++) {
    for (let o = 0; o < cout; o++) {
      const s = at(w, (o * cin + c) * kk);
      const d = at(dst, (c * cout + o) * kk);
      for (let r = 0; r < kk; r++) store<f32>(at(d, r), load<f32>(at(s, r)));
    }
  }
}

/**
 * shaders/conv2d_pack.wgsl over items t in [t0, t1) and columns j in [j0, j1):
 * dst[(t·cols + j)·rowsPad + i] = src[(t·rows + i)·cols + j] for i < rows, 0 for rows <= i < rowsPad.
 */
export function conv2d_pack(
  src: usize,
  dst: usize,
  rows: i32,
  cols: i32,
  rowsPad: i32,
  t0: i32,
  t1: i32,
  j0: i32,
  j1: i32,
): void {
  for (let t = t0; t < t1; t++) {
    for (let i = 0; i < rowsPad; i += 4) {
      const base = at(src, t * rows * cols);
      const s0 = at(base, min<i32>(i, rows - 1) * cols);
      const s1 = at(base, min<i32>(i + 1, rows - 1) * cols);
      const s2 = at(base, min<i32>(i + 2, rows - 1) * cols);
      const s3 = at(base, min<i32>(i + 3, rows - 1) * cols);
      const full = i + 4 <= rows;
      for (let j = j0; j < j1; j++) {
        const d = at(dst, (t * cols + j) * rowsPad + i);
        const off = <usize>j << 2;
        if (full) {
          v128.store(d, f32x4(load<f32>(s0 + off), load<f32>(s1 + off), load<f32>(s2 + off), load<f32>(s3 + off)));
        } else {
          store<f32>(d, i < rows ? load<f32>(s0 + off) : 0);
          store<f32>(d, i + 1 < rows ? load<f32>(s1 + off) : 0, 4);
          store<f32>(d, i + 2 < rows ? load<f32>(s2 + off) : 0, 8);
          store<f32>(d, i + 3 < rows ? load<f32>(s3 + off) : 0, 12);
        }
      }
    }
  }
}

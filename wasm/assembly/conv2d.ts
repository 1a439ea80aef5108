// regula WebAssembly kernels: the twins of the conv2d WGSL family (src/wasm/kernels/conv2d.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// 2-D convolution (NCHW, OIHW, groups 1, dilation 1). Three ways, picked by the host
// (src/wasm/kernels/conv2d.ts) per call:
//   - 3 × 3, stride 1, 57+ input channels: Winograd F(2×2, 3×3) for the forward and the input
//     gradient, F(3×3, 2×2) for the weight gradient when it has one split-K slab (end of this
//     file);
//   - other stride-1 forwards and input gradients of depth C·kh·kw <= 512: a direct convolution
//     in gemm.ts's 6 × 8 register tile (`conv2d_direct`);
//   - everything else:
// im2col + the packed SGEMM of gemm.ts
// (Chellapilla et al., "High Performance Convolutional Neural Networks for Document Processing",
// 2006: unfold the input windows into a matrix, then one GEMM). The three GEMMs of
// shaders/conv2d.wgsl, one image at a time and in chunks of positions small enough that the
// unfolded block stays in L2:
//
//   mode 0, forward:         y[b] (O, OH·OW) = W (O, C·kh·kw) · col(x[b]) (C·kh·kw, OH·OW)
//   mode 1, input gradient:  dcol (C·kh·kw, OH·OW) = Wᵀ · dy[b] (O, OH·OW), then dx[b] = the
//                            fold (col2im) of dcol: each row (c, ky, kx) added at the positions
//                            its window taps, in a fixed order (no zero taps for stride > 1)
//   mode 2, weight gradient: dW (O, C·kh·kw) += Σ_{b, chunks} dy[b][:, chunk] · col(x[b])[:, chunk]ᵀ
//                            over the depth range of one split-K slab of the WGSL.
//
// The unfolded block (and the fold) goes row by row ((ch, ky, kx) rows, positions along it), runs
// of consecutive in-image x positions copied with v128 loads and stores. sgemm then packs it
// into its panels. Every output element is the same sequence of operations whichever images,
// positions, channels or columns a call covers (the chunk grid is fixed by the geometry), so
// splitting across threads (mode 0 by images or positions, mode 1 by images or input channels,
// mode 2 by slabs or columns of dW) gives bitwise equal results.

import { madd, sgemm } from "./gemm";
import { at, word } from "./_common";
import { loadPartial, storePartial, vsigmoid, vtanh } from "./_vmath";

// Field indices of the geometry block (u32 / i32 / f32 words) the host writes for one call.
const G_M: i32 = 0; // O (all modes)
const G_K: i32 = 1; // mode 0: GEMM depth C·kh·kw
const G_PH: i32 = 2; // image plane height H (of x, or of dx in mode 1)
const G_PW: i32 = 3; // image plane width W
const G_GH: i32 = 4; // output grid height OH
const G_GW: i32 = 5; // output grid width OW
const G_KH: i32 = 6;
const G_KW: i32 = 7;
const G_SY: i32 = 8; // stride along y
const G_SX: i32 = 9;
const G_OY: i32 = 12; // -ph
const G_OX: i32 = 13;
const G_A: i32 = 16; // W (modes 0, 1), dy (mode 2)
const G_SRC: i32 = 17; // x (modes 0, 2), dy (mode 1)
const G_OUT: i32 = 18; // y, dx, or dW slabs
const G_BIAS: i32 = 19; // (O,) or 0
const G_ACT: i32 = 20; // activation code of shaders/conv2d.wgsl
const G_BETA: i32 = 21; // f32
const G_CHUNK: i32 = 22; // positions per GEMM call
const G_SRC_IMG: i32 = 23; // floats per image of x (modes 0, 2) or dx (mode 1)
const G_OUT_IMG: i32 = 24; // mode 0: floats per image of y
const G_N: i32 = 25; // C·kh·kw (columns of dW, rows of dcol)
const G_KTOT: i32 = 26; // mode 2: B·OH·OW
const G_KCHUNK: i32 = 27; // mode 2: depth of one slab (conv2d_winoWgrad: row stride of U and V)

/** The address held in word `f` of the geometry block. */
@inline function addr(g: usize, f: i32): usize {
  return <usize>load<u32>(at(g, f));
}

/** The first grid column px whose tap x = px·sx + bx lies in the image (x >= 0), at most gw. */
@inline function firstIn(bx: i32, sx: i32, gw: i32): i32 {
  return min<i32>(max<i32>((-bx + sx - 1) / sx, 0), gw);
}

/** The end of the grid columns whose tap x = px·sx + bx lies in the image (x < pw), at least xa. */
@inline function endIn(bx: i32, sx: i32, pw: i32, gw: i32, xa: i32): i32 {
  return max<i32>(min<i32>(bx >= pw ? 0 : (pw - bx + sx - 1) / sx, gw), xa);
}

/**
 * Unfolds rows [r0, r1) and positions [q0, q1) of one image into dst (row stride ld): row
 * r = (ch, ky, kx), position q = (py, px) of the output grid, the value
 * src[ch, py·sy + ky - ph, px·sx + kx - pw], 0 outside the image. Grid rows are walked with
 * counters (no division per segment); the in-image x range of a row depends only on kx.
 */
function unfold(g: usize, src: usize, r0: i32, r1: i32, q0: i32, q1: i32, dst: usize, ld: i32): void {
  const ph = word(g, G_PH), pw = word(g, G_PW), gw = word(g, G_GW);
  const kh = word(g, G_KH), kw = word(g, G_KW), kk = kh * kw;
  const sy = word(g, G_SY), sx = word(g, G_SX);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const zero = f32x4.splat(0);
  const py0 = q0 / gw, pxs = q0 % gw;
  for (let r = r0; r < r1; r++) {
    const ch = r / kk, rr = r % kk;
    const ky = rr / kw, kx = rr % kw;
    const plane = at(src, ch * ph * pw);
    const bx = kx + ox;
    // px with an in-image x = px·sx + bx: [xa, xe) of the grid row.
    const xa = firstIn(bx, sx, gw), xe = endIn(bx, sx, pw, gw, xa);
    let o = at(dst, (r - r0) * ld);
    let py = py0, px0 = pxs, q = q0;
    while (q < q1) {
      const px1 = min<i32>(gw, px0 + (q1 - q));
      const y = py * sy + ky + oy;
      const a = min<i32>(max<i32>(xa, px0), px1);
      const e = max<i32>(min<i32>(xe, px1), a);
      if (y < 0 || y >= ph) {
        let px = px0;
        for (; px + 4 <= px1; px += 4) {
          v128.store(o, zero);
          o += 16;
        }
        for (; px < px1; px++) {
          store<f32>(o, 0);
          o += 4;
        }
      } else {
        for (let px = px0; px < a; px++) {
          store<f32>(o, 0);
          o += 4;
        }
        if (sx == 1) {
          let s = at(plane, y * pw + a + bx);
          let px = a;
          for (; px + 4 <= e; px += 4) {
            v128.store(o, v128.load(s));
            o += 16;
            s += 16;
          }
          for (; px < e; px++) {
            store<f32>(o, load<f32>(s));
            o += 4;
            s += 4;
          }
        } else {
          const srow = at(plane, y * pw + bx);
          for (let px = a; px < e; px++) {
            store<f32>(o, load<f32>(at(srow, px * sx)));
            o += 4;
          }
        }
        for (let px = e; px < px1; px++) {
          store<f32>(o, 0);
          o += 4;
        }
      }
      q += px1 - px0;
      py++;
      px0 = 0;
    }
  }
}

/**
 * activate() of shaders/conv2d.wgsl on four lanes: 1 relu (NaN kept), 2 tanh (its odd series
 * below 0.125, else sign(x)·(1 - e)/(1 + e) with e = exp(-2|x|)), 3 sigmoid (r = 1/(1 + e),
 * e = exp(-|x|); r for x >= 0, else e·r).
 */
@inline function activate4(act: i32, x: v128): v128 {
  if (act == 1) return v128.andnot(x, f32x4.lt(x, f32x4.splat(0)));
  if (act == 2) return vtanh(x);
  if (act == 3) return vsigmoid(x);
  return x;
}

/** c[i, j] = act(c[i, j] + bias[i]) over an (m, n) block with row stride ldc; bias 0: none. */
function epilogue(m: i32, n: i32, c: usize, ldc: i32, bias: usize, act: i32): void {
  if (bias == 0 && act == 0) return;
  for (let i = 0; i < m; i++) {
    const row = at(c, i * ldc);
    const vb = f32x4.splat(bias != 0 ? load<f32>(at(bias, i)) : 0);
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const p = at(row, j);
      let v = v128.load(p);
      if (bias != 0) v = f32x4.add(v, vb);
      v128.store(p, activate4(act, v));
    }
    // The tail through the same lanes, so that a value never depends on where a block ends.
    if (j < n) {
      const p = at(row, j);
      let v = loadPartial(p, n - j, 0);
      if (bias != 0) v = f32x4.add(v, vb);
      storePartial(p, activate4(act, v), n - j);
    }
  }
}

/**
 * Mode 0: images [b0, b1), output positions [q0, q1) of each. `g` is the geometry block
 * (see G_*), `col` this thread's unfold buffer (K × chunk f32), `scratch` its sgemm scratch.
 * Output (O, OH·OW) per image: act(W · unfold + bias[o] + beta · out).
 */
export function conv2d_gemm(g: usize, b0: i32, b1: i32, q0: i32, q1: i32, col: usize, scratch: usize): void {
  const m = word(g, G_M), k = word(g, G_K);
  const a = addr(g, G_A);
  const src = addr(g, G_SRC);
  const out = addr(g, G_OUT);
  const bias = addr(g, G_BIAS);
  const act = word(g, G_ACT);
  const beta = load<f32>(at(g, G_BETA));
  const chunk = word(g, G_CHUNK);
  const srcImg = word(g, G_SRC_IMG), outImg = word(g, G_OUT_IMG);
  const npos = word(g, G_GH) * word(g, G_GW);
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
  const m = word(g, G_M), n = word(g, G_N);
  const dy = addr(g, G_A);
  const x = addr(g, G_SRC);
  const out = addr(g, G_OUT);
  const beta = load<f32>(at(g, G_BETA));
  const chunk = word(g, G_CHUNK);
  const srcImg = word(g, G_SRC_IMG);
  const ktot = word(g, G_KTOT), kchunk = word(g, G_KCHUNK);
  const npos = word(g, G_GH) * word(g, G_GW);
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
 * Adds rows [r0, r1) of a folded block into one image of dx: row r = (c, ky, kx) and position
 * q = (oy, ox) in [q0, q1) of the OH × OW grid add src[(r - r0)·ld + q - q0] into
 * dx[c, oy·sy + ky - ph, ox·sx + kx - pw] when that lies in the image (col2im).
 */
function fold(g: usize, dst: usize, r0: i32, r1: i32, q0: i32, q1: i32, src: usize, ld: i32): void {
  const ph = word(g, G_PH), pw = word(g, G_PW), gw = word(g, G_GW);
  const kh = word(g, G_KH), kw = word(g, G_KW), kk = kh * kw;
  const sy = word(g, G_SY), sx = word(g, G_SX);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const py0 = q0 / gw, pxs = q0 % gw;
  for (let r = r0; r < r1; r++) {
    const ch = r / kk, rr = r % kk;
    const ky = rr / kw, kx = rr % kw;
    const plane = at(dst, ch * ph * pw);
    const bx = kx + ox;
    const xa = firstIn(bx, sx, gw), xe = endIn(bx, sx, pw, gw, xa);
    const row = at(src, (r - r0) * ld);
    let py = py0, px0 = pxs, q = q0;
    while (q < q1) {
      const px1 = min<i32>(gw, px0 + (q1 - q));
      const y = py * sy + ky + oy;
      if (y >= 0 && y < ph) {
        const a = min<i32>(max<i32>(xa, px0), px1);
        const e = max<i32>(min<i32>(xe, px1), a);
        let s = at(row, q - q0 + a - px0);
        if (sx == 1) {
          let d = at(plane, y * pw + a + bx);
          let px = a;
          for (; px + 4 <= e; px += 4) {
            v128.store(d, f32x4.add(v128.load(d), v128.load(s)));
            d += 16;
            s += 16;
          }
          for (; px < e; px++) {
            store<f32>(d, load<f32>(d) + load<f32>(s));
            d += 4;
            s += 4;
          }
        } else {
          const drow = at(plane, y * pw + bx);
          for (let px = a; px < e; px++) {
            const d = at(drow, px * sx);
            store<f32>(d, load<f32>(d) + load<f32>(s));
            s += 4;
          }
        }
      }
      q += px1 - px0;
      py++;
      px0 = 0;
    }
  }
}

/**
 * Mode 1: images [b0, b1), input channels [c0, c1) of each. Per chunk of dy positions:
 * dcol (rows (c, ky, kx) of [c0, c1), chunk) = Wᵀ · dy[b][:, chunk] (sgemm with A = W read as
 * (O, C·kh·kw) transposed), then folded into dx[b, c0:c1] (first scaled by beta, or zeroed),
 * chunks in order.
 */
export function conv2d_dgrad(g: usize, b0: i32, b1: i32, c0: i32, c1: i32, col: usize, scratch: usize): void {
  const cout = word(g, G_M), kcols = word(g, G_N);
  const w = addr(g, G_A);
  const dy = addr(g, G_SRC);
  const dx = addr(g, G_OUT);
  const beta = load<f32>(at(g, G_BETA));
  const chunk = word(g, G_CHUNK);
  const dxImg = word(g, G_SRC_IMG);
  const npos = word(g, G_GH) * word(g, G_GW);
  const kk = word(g, G_KH) * word(g, G_KW);
  const r0 = c0 * kk, r1 = c1 * kk;
  for (let b = b0; b < b1; b++) {
    const img = at(dx, b * dxImg);
    const plane = word(g, G_PH) * word(g, G_PW);
    const d0 = at(img, c0 * plane), len = (c1 - c0) * plane;
    if (beta == 0) memory.fill(d0, 0, <usize>len << 2);
    else for (let i = 0; i < len; i++) store<f32>(at(d0, i), beta * load<f32>(at(d0, i)));
    for (let q = 0; q < npos; q += chunk) {
      const nq = min<i32>(chunk, npos - q);
      sgemm(1, 0, r1 - r0, nq, cout, 1, at(w, r0), kcols, at(dy, b * cout * npos + q), npos, 0, col, nq, 0, 0, 0, scratch);
      fold(g, img, r0, r1, q, q + nq, col, nq);
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
      let j = j0;
      if (full) {
        // 4 × 4 blocks: four rows of four columns in, transposed with shuffles, four vec4s out.
        const step = <usize>rowsPad << 2;
        for (; j + 4 <= j1; j += 4) {
          const off = <usize>j << 2;
          const x0 = v128.load(s0 + off), x1 = v128.load(s1 + off);
          const x2 = v128.load(s2 + off), x3 = v128.load(s3 + off);
          const u0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5), u1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
          const u2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5), u3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
          const d = at(dst, (t * cols + j) * rowsPad + i);
          v128.store(d, f32x4.shuffle(u0, u2, 0, 1, 4, 5));
          v128.store(d + step, f32x4.shuffle(u0, u2, 2, 3, 6, 7));
          v128.store(d + 2 * step, f32x4.shuffle(u1, u3, 0, 1, 4, 5));
          v128.store(d + 3 * step, f32x4.shuffle(u1, u3, 2, 3, 6, 7));
        }
      }
      for (; j < j1; j++) {
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

// ---- direct convolution, stride 1 -------------------------------------------------------------
// For a small depth K = C·kh·kw (LeNet's layers, the 3-channel first layer of DDNet) unfolding
// costs about as much as the product: every unfolded value is used by only O multiply-adds. Here
// the taps are read straight from a zero-padded copy of the image instead, in the register tile
// of gemm.ts: 6 output channels × 8 neighbouring x positions in twelve f32x4 accumulators, per
// tap (c, ky, kx) two loads of x, six splatted weights and twelve multiply-adds (`madd`). Each
// output is one chain over the taps in (c, ky, kx) order, whatever tile, lane, image or row range
// it falls in, so the thread split cannot change a bit. The host packs the weights (per block of
// 6 output channels, K taps of 6 floats, zeros past O) and, for the input gradient, gives the
// flipped, transposed weights and dy as the image (src/wasm/kernels/conv2d.ts).

/** Floats per row of the padded copy: the grid width rounded up to 8, plus kw - 1, to a multiple of 4. */
@inline function padWidth(gw: i32, kw: i32): i32 {
  return (((gw + 7) & ~7) + kw - 1 + 3) & ~3;
}

/**
 * Copies rows [r0, r1) of the padded planes of one image into pad (C planes of hp × wpad):
 * pad[c, r, x] = src[c, r + oy, x + ox], 0 outside the image.
 */
function fillPadded(
  src: usize, cin: i32, ph: i32, pw: i32, oy: i32, ox: i32,
  r0: i32, r1: i32, hp: i32, wpad: i32, pad: usize,
): void {
  const zero = f32x4.splat(0);
  const xa = min<i32>(max<i32>(-ox, 0), wpad); // first padded column inside the image
  const xe = max<i32>(min<i32>(pw - ox, wpad), xa); // end of them
  for (let c = 0; c < cin; c++) {
    for (let r = r0; r < r1; r++) {
      const d = at(pad, (c * hp + r) * wpad);
      const y = r + oy;
      if (y < 0 || y >= ph) {
        for (let x = 0; x < wpad; x += 4) v128.store(at(d, x), zero);
        continue;
      }
      for (let x = 0; x < xa; x++) store<f32>(at(d, x), 0);
      const s = at(src, (c * ph + y) * pw + ox);
      let x = xa;
      for (; x + 4 <= xe; x += 4) v128.store(at(d, x), v128.load(at(s, x)));
      for (; x < xe; x++) store<f32>(at(d, x), load<f32>(at(s, x)));
      for (x = xe; x < wpad; x++) store<f32>(at(d, x), 0);
    }
  }
}

/** out = act(acc (+ out or + beta·out) + bias) on the first n (1 .. 4) lanes of one vector. */
@inline function storeDirect(p: usize, n: i32, acc: v128, beta: f32, vb: v128, hasBias: bool, act: i32): void {
  if (n <= 0) return;
  let v = acc;
  if (beta != 0) {
    const old = n >= 4 ? v128.load(p) : loadPartial(p, n, 0);
    v = f32x4.add(v, beta == 1 ? old : f32x4.mul(f32x4.splat(beta), old));
  }
  if (hasBias) v = f32x4.add(v, vb);
  v = activate4(act, v);
  if (n >= 4) v128.store(p, v);
  else storePartial(p, v, n);
}

/** One output channel's row of the tile: 8 positions from two accumulators. */
@inline function storeDirectRow(
  p: usize, n: i32, lo: v128, hi: v128, beta: f32, bias: usize, oc: i32, act: i32,
): void {
  const vb = f32x4.splat(bias != 0 ? load<f32>(at(bias, oc)) : 0);
  storeDirect(p, min<i32>(n, 4), lo, beta, vb, bias != 0, act);
  storeDirect(p + 16, n - 4, hi, beta, vb, bias != 0, act);
}

/**
 * Mode 0 with stride 1 and packed weights: images [b0, b1), output rows [y0, y1) of each.
 * `wp` the packed weights, `pad` this thread's C × (OH + kh - 1) × padWidth floats.
 * Output (O, OH·OW) per image: act(Σ_taps w · x + beta · out + bias[o]).
 */
export function conv2d_direct(g: usize, b0: i32, b1: i32, y0: i32, y1: i32, wp: usize, pad: usize): void {
  const m = word(g, G_M), k = word(g, G_K);
  const ph = word(g, G_PH), pw = word(g, G_PW), gh = word(g, G_GH), gw = word(g, G_GW);
  const kh = word(g, G_KH), kw = word(g, G_KW), cin = k / (kh * kw);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const src = addr(g, G_SRC), out = addr(g, G_OUT), bias = addr(g, G_BIAS);
  const act = word(g, G_ACT);
  const beta = load<f32>(at(g, G_BETA));
  const srcImg = word(g, G_SRC_IMG), outImg = word(g, G_OUT_IMG);
  const hp = gh + kh - 1, wpad = padWidth(gw, kw), npos = gh * gw;
  const rowStep = <usize>wpad << 2, chanStep = <usize>(hp * wpad) << 2;
  for (let b = b0; b < b1; b++) {
    fillPadded(at(src, b * srcImg), cin, ph, pw, oy, ox, y0, y1 + kh - 1, hp, wpad, pad);
    const o = at(out, b * outImg);
    for (let ob = 0; ob < m; ob += 6) {
      const mr = min<i32>(6, m - ob);
      const wblk = at(wp, ob * k);
      for (let y = y0; y < y1; y++) {
        for (let x0 = 0; x0 < gw; x0 += 8) {
          let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
          let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
          let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
          let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
          let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
          let c50 = f32x4.splat(0), c51 = f32x4.splat(0);
          let wt = wblk;
          let xc = at(pad, y * wpad + x0);
          for (let c = 0; c < cin; c++) {
            let xr = xc;
            for (let ky = 0; ky < kh; ky++) {
              let xp = xr;
              for (let kx = 0; kx < kw; kx++) {
                const xa = v128.load(xp);
                const xb = v128.load(xp, 16);
                let s = v128.load32_splat(wt);
                c00 = madd(s, xa, c00);
                c01 = madd(s, xb, c01);
                s = v128.load32_splat(wt, 4);
                c10 = madd(s, xa, c10);
                c11 = madd(s, xb, c11);
                s = v128.load32_splat(wt, 8);
                c20 = madd(s, xa, c20);
                c21 = madd(s, xb, c21);
                s = v128.load32_splat(wt, 12);
                c30 = madd(s, xa, c30);
                c31 = madd(s, xb, c31);
                s = v128.load32_splat(wt, 16);
                c40 = madd(s, xa, c40);
                c41 = madd(s, xb, c41);
                s = v128.load32_splat(wt, 20);
                c50 = madd(s, xa, c50);
                c51 = madd(s, xb, c51);
                wt += 24;
                xp += 4;
              }
              xr += rowStep;
            }
            xc += chanStep;
          }
          const n = min<i32>(8, gw - x0);
          const p = at(o, ob * npos + y * gw + x0);
          const step = <usize>npos << 2;
          storeDirectRow(p, n, c00, c01, beta, bias, ob, act);
          if (mr > 1) storeDirectRow(p + step, n, c10, c11, beta, bias, ob + 1, act);
          if (mr > 2) storeDirectRow(p + 2 * step, n, c20, c21, beta, bias, ob + 2, act);
          if (mr > 3) storeDirectRow(p + 3 * step, n, c30, c31, beta, bias, ob + 3, act);
          if (mr > 4) storeDirectRow(p + 4 * step, n, c40, c41, beta, bias, ob + 4, act);
          if (mr > 5) storeDirectRow(p + 5 * step, n, c50, c51, beta, bias, ob + 5, act);
        }
      }
    }
  }
}

// ---- Winograd F(2×2, 3×3), stride 1 --------------------------------------------------------------
// Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016: each 2 × 2 block
// of outputs of a 3 × 3 correlation is Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A over the 4 × 4 input patch d,
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
//   Aᵀ = [1 1 1 0; 0 1 -1 -1],
// so that the sum over input channels becomes 16 GEMMs M[ξ] (O × tiles) = U[ξ] (O × C) · V[ξ]
// (C × tiles), ξ = the 16 positions of the 4 × 4 transformed tile: 16 multiply-adds per 2 × 2
// outputs and channel pair instead of 36. The input gradient of a stride-1 convolution is the
// same correlation of dy with the flipped, transposed weights (`transposed` below).

/**
 * U[ξ][o][c] = (G g Gᵀ)[ξ] for output channels [o0, o1): g = w[o, c] (w: O × C × 3 × 3), or with
 * `transposed` g = w[c, o] flipped (w: C × O × 3 × 3, the layer's weights seen from its input).
 */
export function conv2d_winoWeights(w: usize, u: usize, o0: i32, o1: i32, m: i32, cin: i32, transposed: i32): void {
  const plane = <usize>(m * cin) << 2;
  for (let o = o0; o < o1; o++) {
    for (let c = 0; c < cin; c++) {
      const g = transposed ? at(w, (c * m + o) * 9) : at(w, (o * cin + c) * 9);
      // q[r][j] = g[r][j] (flipped: g[2 - r][2 - j]); t = G q (4 × 3), then U = t Gᵀ (4 × 4).
      const dst = at(u, o * cin + c);
      for (let j = 0; j < 3; j++) {
        // Column j of q, then of t = G q.
        const q0 = transposed ? load<f32>(at(g, 8 - j)) : load<f32>(at(g, j));
        const q1 = transposed ? load<f32>(at(g, 5 - j)) : load<f32>(at(g, 3 + j));
        const q2 = transposed ? load<f32>(at(g, 2 - j)) : load<f32>(at(g, 6 + j));
        // Stash t[r][j] in U's slots (r, j) for now: U[4r + j] = t[r][j], j < 3.
        store<f32>(dst + <usize>j * plane, q0);
        store<f32>(dst + <usize>(4 + j) * plane, (q0 + q1 + q2) * 0.5);
        store<f32>(dst + <usize>(8 + j) * plane, (q0 - q1 + q2) * 0.5);
        store<f32>(dst + <usize>(12 + j) * plane, q2);
      }
      for (let r = 0; r < 4; r++) {
        const base = dst + <usize>(4 * r) * plane;
        const t0 = load<f32>(base), t1 = load<f32>(base + plane), t2 = load<f32>(base + 2 * plane);
        store<f32>(base, t0);
        store<f32>(base + plane, (t0 + t1 + t2) * 0.5);
        store<f32>(base + 2 * plane, (t0 - t1 + t2) * 0.5);
        store<f32>(base + 3 * plane, t2);
      }
    }
  }
}

/** Floats per row of the Winograd padded copy: 2 · (tiles across rounded up to 4) + 4. */
@inline function winoPadWidth(tw: i32): i32 {
  return 2 * ((tw + 3) & ~3) + 4;
}

/**
 * Bᵀ d B of four neighbouring tiles (lanes) of one channel (`neg3`: the Bᵀ of F(3×3, 2×2),
 * whose last row is [0 -1 0 1] instead of [0 1 0 -1]): `p` points at the patch rows' first
 * column in the padded copy (row stride `rs` bytes), the 16 results go to v + ξ · vs (bytes).
 */
@inline function winoInput(p: usize, rs: usize, v: usize, vs: usize, neg3: bool = false): void {
  // Columns 0..3 of each patch row, for tiles at x = 0, 2, 4, 6 (lanes): deinterleave.
  let c0 = f32x4.splat(0), c1 = c0, c2 = c0, c3 = c0;
  let d00 = c0, d01 = c0, d02 = c0, d03 = c0;
  let d10 = c0, d11 = c0, d12 = c0, d13 = c0;
  for (let r = 0; r < 4; r++) {
    const q = p + <usize>r * rs;
    const l0 = v128.load(q), l1 = v128.load(q, 16), l2 = v128.load(q, 32);
    const e0 = v128.shuffle<f32>(l0, l1, 0, 2, 4, 6);
    const o0 = v128.shuffle<f32>(l0, l1, 1, 3, 5, 7);
    const e1 = v128.shuffle<f32>(l1, l2, 0, 2, 4, 6);
    const o1 = v128.shuffle<f32>(l1, l2, 1, 3, 5, 7);
    c0 = e0;
    c1 = o0;
    c2 = v128.shuffle<f32>(e0, e1, 1, 2, 3, 6);
    c3 = v128.shuffle<f32>(o0, o1, 1, 2, 3, 6);
    // Row r of d B: [c0 - c2, c1 + c2, c2 - c1, c1 - c3].
    const t0 = f32x4.sub(c0, c2), t1 = f32x4.add(c1, c2), t2 = f32x4.sub(c2, c1);
    const t3 = neg3 ? f32x4.sub(c3, c1) : f32x4.sub(c1, c3);
    if (r == 0) { d00 = t0; d01 = t1; d02 = t2; d03 = t3; }
    else if (r == 1) { d10 = t0; d11 = t1; d12 = t2; d13 = t3; }
    else if (r == 2) {
      // Bᵀ rows 0 and 2 need rows 0, 1, 2: out row 0 = row0 - row2, row 1 = row1 + row2,
      // row 2 = row2 - row1; keep row 2 in the d0* slots once rows 0 and 1 are used.
      v128.store(v, f32x4.sub(d00, t0));
      v128.store(v + vs, f32x4.sub(d01, t1));
      v128.store(v + 2 * vs, f32x4.sub(d02, t2));
      v128.store(v + 3 * vs, f32x4.sub(d03, t3));
      v128.store(v + 4 * vs, f32x4.add(d10, t0));
      v128.store(v + 5 * vs, f32x4.add(d11, t1));
      v128.store(v + 6 * vs, f32x4.add(d12, t2));
      v128.store(v + 7 * vs, f32x4.add(d13, t3));
      v128.store(v + 8 * vs, f32x4.sub(t0, d10));
      v128.store(v + 9 * vs, f32x4.sub(t1, d11));
      v128.store(v + 10 * vs, f32x4.sub(t2, d12));
      v128.store(v + 11 * vs, f32x4.sub(t3, d13));
    } else {
      // out row 3 = row1 - row3 (F(3×3, 2×2): row3 - row1).
      v128.store(v + 12 * vs, neg3 ? f32x4.sub(t0, d10) : f32x4.sub(d10, t0));
      v128.store(v + 13 * vs, neg3 ? f32x4.sub(t1, d11) : f32x4.sub(d11, t1));
      v128.store(v + 14 * vs, neg3 ? f32x4.sub(t2, d12) : f32x4.sub(d12, t2));
      v128.store(v + 15 * vs, neg3 ? f32x4.sub(t3, d13) : f32x4.sub(d13, t3));
    }
  }
}

/**
 * Mode 0 (or the input gradient as a correlation), 3 × 3, stride 1, by Winograd F(2×2, 3×3):
 * images [b0, b1) in groups of `G_CHUNK` images. `u` (G_A) the transformed weights (16 × O × C),
 * `buf` this thread's buffers: the padded copy of one image (C planes of (2·th + 4) rows ×
 * winoPadWidth), then V (16 × C × ld) and M (16 × O × ld), ld = word G_N.
 */
export function conv2d_wino(g: usize, b0: i32, b1: i32, buf: usize, scratch: usize): void {
  const m = word(g, G_M), k = word(g, G_K), cin = k / 9;
  const ph = word(g, G_PH), pw = word(g, G_PW), gh = word(g, G_GH), gw = word(g, G_GW);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const u = addr(g, G_A), src = addr(g, G_SRC), out = addr(g, G_OUT), bias = addr(g, G_BIAS);
  const act = word(g, G_ACT);
  const beta = load<f32>(at(g, G_BETA));
  const group = word(g, G_CHUNK), ld = word(g, G_N);
  const srcImg = word(g, G_SRC_IMG), outImg = word(g, G_OUT_IMG);
  const th = (gh + 1) >> 1, tw = (gw + 1) >> 1, tiles = th * tw;
  const twr = (tw + 3) & ~3; // tiles across, rounded up to the 4 lanes
  const hp = 2 * th + 2, wpad = winoPadWidth(tw);
  const padBytes = <usize>(cin * hp * wpad) << 2;
  const v = buf + padBytes;
  const mm = v + (<usize>(16 * cin * ld) << 2);
  const vs = <usize>(cin * ld) << 2, ms = <usize>(m * ld) << 2;
  const rs = <usize>wpad << 2;
  const npos = gh * gw;
  for (let ga = b0; ga < b1; ga += group) {
    const gb = min<i32>(ga + group, b1);
    // Input transform: V[ξ][c][(b - ga) · tiles + ty · tw + tx]. A group of four lanes may run
    // past the row's last tile into the next row's first (overwritten next) or past the end
    // (ld leaves room).
    for (let b = ga; b < gb; b++) {
      fillPadded(at(src, b * srcImg), cin, ph, pw, oy, ox, 0, hp, hp, wpad, buf);
      const t0 = (b - ga) * tiles;
      for (let c = 0; c < cin; c++) {
        const plane = buf + <usize>(c * hp * wpad) * 4;
        for (let ty = 0; ty < th; ty++) {
          for (let tx = 0; tx < twr; tx += 4) {
            if (tx >= tw) break;
            winoInput(plane + <usize>(2 * ty) * rs + (<usize>(2 * tx) << 2), rs,
              at(v, c * ld + t0 + ty * tw + tx), vs);
          }
        }
      }
    }
    const n = (gb - ga) * tiles;
    for (let xi = 0; xi < 16; xi++) {
      sgemm(0, 0, m, n, cin, 1, u + <usize>xi * (<usize>(m * cin) << 2), cin,
        v + <usize>xi * vs, ld, 0, mm + <usize>xi * ms, ld, 0, 0, 0, scratch);
    }
    // Output transform: Y = Aᵀ M A per tile, four tiles (lanes) at a time, then the epilogue.
    for (let o = 0; o < m; o++) {
      const vb = f32x4.splat(bias != 0 ? load<f32>(at(bias, o)) : 0);
      for (let b = ga; b < gb; b++) {
        const yo = at(out, b * outImg + o * npos);
        const mrow = at(mm, o * ld + (b - ga) * tiles);
        for (let ty = 0; ty < th; ty++) {
          for (let tx = 0; tx < tw; tx += 4) {
            const q = at(mrow, ty * tw + tx);
            // s[r] = (M A)[r] = [m_r0 + m_r1 + m_r2, m_r1 - m_r2 - m_r3], r = 0..3.
            let a0 = f32x4.splat(0), a1 = a0, b0v = a0, b1v = a0;
            for (let r = 0; r < 4; r++) {
              const p = q + <usize>(4 * r) * ms;
              const x0 = v128.load(p), x1 = v128.load(p + ms), x2 = v128.load(p + 2 * ms), x3 = v128.load(p + 3 * ms);
              const s0 = f32x4.add(f32x4.add(x0, x1), x2);
              const s1 = f32x4.sub(f32x4.sub(x1, x2), x3);
              // Aᵀ: out row 0 = s_0 + s_1 + s_2, row 1 = s_1 - s_2 - s_3.
              if (r == 0) { a0 = s0; a1 = s1; }
              else if (r == 1) { a0 = f32x4.add(a0, s0); a1 = f32x4.add(a1, s1); b0v = s0; b1v = s1; }
              else if (r == 2) { a0 = f32x4.add(a0, s0); a1 = f32x4.add(a1, s1); b0v = f32x4.sub(b0v, s0); b1v = f32x4.sub(b1v, s1); }
              else { b0v = f32x4.sub(b0v, s0); b1v = f32x4.sub(b1v, s1); }
            }
            // Lanes are tiles tx..tx+3: output row 2ty holds a0[i], a1[i] at x = 2(tx + i), +1.
            const cnt = min<i32>(8, gw - 2 * tx);
            const y0 = 2 * ty;
            const r0 = at(yo, y0 * gw + 2 * tx);
            storeDirect(r0, min<i32>(cnt, 4), v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), beta, vb, bias != 0, act);
            storeDirect(r0 + 16, cnt - 4, v128.shuffle<f32>(a0, a1, 2, 6, 3, 7), beta, vb, bias != 0, act);
            if (y0 + 1 < gh) {
              const r1 = r0 + (<usize>gw << 2);
              storeDirect(r1, min<i32>(cnt, 4), v128.shuffle<f32>(b0v, b1v, 0, 4, 1, 5), beta, vb, bias != 0, act);
              storeDirect(r1 + 16, cnt - 4, v128.shuffle<f32>(b0v, b1v, 2, 6, 3, 7), beta, vb, bias != 0, act);
            }
          }
        }
      }
    }
  }
}

// ---- Winograd F(3×3, 2×2) for the weight gradient ---------------------------------------------
// dW[o, c, ky, kx] = Σ_{b, y, x} dy[b, o, y, x] · x[b, c, y + ky - ph, x + kx - pw]: over each
// 2 × 2 block of dy positions, a 3 × 3 correlation of the 4 × 4 input patch with the 2 × 2 dy
// block, which F(3×3, 2×2) computes as Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A with (points 0, 1, -1, ∞)
//   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 -1 0 1],  G = [1 0; ½ ½; ½ -½; 0 1],
//   Aᵀ = [1 1 1 0; 0 1 -1 0; 0 1 1 1].
// Aᵀ (·) A is linear, so the sum over blocks moves inside: S[ξ] (O × C) = Σ_blocks Udy[ξ] Vxᵀ,
// 16 GEMMs of depth = the blocks, then one output transform per (o, c).

/**
 * Mode 2 (one split-K slab), 3 × 3, stride 1, by Winograd F(3×3, 2×2): output channels
 * [o0, o1), all images in groups of `G_CHUNK`. `buf`: the padded copy of one image of x
 * (C × (2·th + 2) × winoPadWidth), of dy (O' × 2·th × 2·tw4), then V (16 × C × ld),
 * U (16 × O' × ld) and S (16 × O' × C), O' = o1 - o0. Geometry words: G_A dy, G_SRC x,
 * G_OUT dW, G_N = C·9, G_KTOT = the batch, G_CHUNK = images per group, G_KCHUNK = ld (tiles
 * per group rounded up to 4, plus 4).
 */
export function conv2d_winoWgrad(g: usize, o0: i32, o1: i32, buf: usize, scratch: usize): void {
  const m = word(g, G_M), n = word(g, G_N), cin = n / 9;
  const ph = word(g, G_PH), pw = word(g, G_PW), gh = word(g, G_GH), gw = word(g, G_GW);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const dy = addr(g, G_A), x = addr(g, G_SRC), out = addr(g, G_OUT);
  const beta = load<f32>(at(g, G_BETA));
  const group = word(g, G_CHUNK), ld = word(g, G_KCHUNK), batch = word(g, G_KTOT);
  const srcImg = word(g, G_SRC_IMG);
  const mo = o1 - o0;
  const th = (gh + 1) >> 1, tw = (gw + 1) >> 1, tiles = th * tw;
  const twr = (tw + 3) & ~3;
  const hp = 2 * th + 2, wpad = winoPadWidth(tw);
  const dh = 2 * th, dwp = 2 * twr;
  const xpad = buf;
  const dpad = xpad + (<usize>(cin * hp * wpad) << 2);
  const v = dpad + (<usize>(mo * dh * dwp) << 2);
  const u = v + (<usize>(16 * cin * ld) << 2);
  const sm = u + (<usize>(16 * mo * ld) << 2);
  const vs = <usize>(cin * ld) << 2, us = <usize>(mo * ld) << 2, ss = <usize>(mo * cin) << 2;
  const rs = <usize>wpad << 2, drs = <usize>dwp << 2;
  const half = f32x4.splat(0.5);
  const dyImg = m * gh * gw;
  let first = true;
  for (let ga = 0; ga < batch; ga += group) {
    const gb = min<i32>(ga + group, batch);
    for (let b = ga; b < gb; b++) {
      const t0 = (b - ga) * tiles;
      fillPadded(at(x, b * srcImg), cin, ph, pw, oy, ox, 0, hp, hp, wpad, xpad);
      for (let c = 0; c < cin; c++) {
        const plane = xpad + (<usize>(c * hp * wpad) << 2);
        for (let ty = 0; ty < th; ty++) {
          for (let tx = 0; tx < tw; tx += 4) {
            winoInput(plane + <usize>(2 * ty) * rs + (<usize>(2 * tx) << 2), rs,
              at(v, c * ld + t0 + ty * tw + tx), vs, true);
          }
        }
      }
      // dy of channels [o0, o1), zero past the grid (odd sizes).
      fillPadded(at(dy, b * dyImg + o0 * gh * gw), mo, gh, gw, 0, 0, 0, dh, dh, dwp, dpad);
      for (let o = 0; o < mo; o++) {
        const plane = dpad + (<usize>(o * dh * dwp) << 2);
        for (let ty = 0; ty < th; ty++) {
          for (let tx = 0; tx < tw; tx += 4) {
            const p = plane + <usize>(2 * ty) * drs + (<usize>(2 * tx) << 2);
            const l0 = v128.load(p), l1 = v128.load(p, 16);
            const l2 = v128.load(p + drs), l3 = v128.load(p + drs, 16);
            // g[r][j] of four blocks: rows 2ty, 2ty + 1, columns even / odd.
            const g00 = v128.shuffle<f32>(l0, l1, 0, 2, 4, 6), g01 = v128.shuffle<f32>(l0, l1, 1, 3, 5, 7);
            const g10 = v128.shuffle<f32>(l2, l3, 0, 2, 4, 6), g11 = v128.shuffle<f32>(l2, l3, 1, 3, 5, 7);
            // G g: rows [g0, (g0 + g1)/2, (g0 - g1)/2, g1]; then each row [a, b] -> [a, (a+b)/2, (a-b)/2, b].
            const q = at(u, o * ld + t0 + ty * tw + tx);
            for (let h = 0; h < 4; h++) {
              let a = g00, bb = g01;
              if (h == 1) {
                a = f32x4.mul(f32x4.add(g00, g10), half);
                bb = f32x4.mul(f32x4.add(g01, g11), half);
              } else if (h == 2) {
                a = f32x4.mul(f32x4.sub(g00, g10), half);
                bb = f32x4.mul(f32x4.sub(g01, g11), half);
              } else if (h == 3) {
                a = g10;
                bb = g11;
              }
              const r = q + <usize>(4 * h) * us;
              v128.store(r, a);
              v128.store(r + us, f32x4.mul(f32x4.add(a, bb), half));
              v128.store(r + 2 * us, f32x4.mul(f32x4.sub(a, bb), half));
              v128.store(r + 3 * us, bb);
            }
          }
        }
      }
    }
    const k = (gb - ga) * tiles;
    for (let xi = 0; xi < 16; xi++) {
      sgemm(0, 1, mo, cin, k, 1, u + <usize>xi * us, ld, v + <usize>xi * vs, ld,
        first ? 0 : 1, sm + <usize>xi * ss, cin, 0, 0, 0, scratch);
    }
    first = false;
  }
  // dW[o, c, ky, kx] = beta · dW + (Aᵀ S A)[ky][kx].
  for (let o = 0; o < mo; o++) {
    for (let c = 0; c < cin; c++) {
      const sp = at(sm, o * cin + c);
      const dst = at(out, (o0 + o) * n + c * 9);
      // t[i][k] = (S A)[i][k]: [s_i0 + s_i1 + s_i2, s_i1 - s_i2, s_i1 + s_i2 + s_i3].
      for (let kx = 0; kx < 3; kx++) {
        let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
        for (let i = 0; i < 4; i++) {
          const r = sp + <usize>(4 * i) * ss;
          const s0 = load<f32>(r), s1 = load<f32>(r + ss), s2 = load<f32>(r + 2 * ss), s3 = load<f32>(r + 3 * ss);
          const t: f32 = kx == 0 ? s0 + s1 + s2 : kx == 1 ? s1 - s2 : s1 + s2 + s3;
          if (i == 0) t0 = t;
          else if (i == 1) t1 = t;
          else if (i == 2) t2 = t;
          else t3 = t;
        }
        const y0: f32 = t0 + t1 + t2, y1: f32 = t1 - t2, y2: f32 = t1 + t2 + t3;
        const p0 = at(dst, kx), p1 = at(dst, 3 + kx), p2 = at(dst, 6 + kx);
        if (beta == 0) {
          store<f32>(p0, y0);
          store<f32>(p1, y1);
          store<f32>(p2, y2);
        } else {
          store<f32>(p0, beta * load<f32>(p0) + y0);
          store<f32>(p1, beta * load<f32>(p1) + y1);
          store<f32>(p2, beta * load<f32>(p2) + y2);
        }
      }
    }
  }
}

/** Floats per row of conv2d_direct1's padded copy: the grid width rounded up to 32, plus kw - 1, to a multiple of 4. */
@inline function padWidth1(gw: i32, kw: i32): i32 {
  return (((gw + 31) & ~31) + kw - 1 + 3) & ~3;
}

/**
 * `conv2d_direct` for 1 to 3 output channels (a 1-channel input gradient: LeNet's first layer
 * seen from its output), one channel at a time in a 1 × 32 tile: eight f32x4 accumulators, per
 * tap eight loads of x, one splatted weight and eight multiply-adds. `wp`: the weights of channel
 * o at wp[o · K + tap], taps in (c, ky, kx) order; `pad`: C × (OH + kh - 1) × padWidth1 floats.
 */
export function conv2d_direct1(g: usize, b0: i32, b1: i32, y0: i32, y1: i32, wp: usize, pad: usize): void {
  const m = word(g, G_M), k = word(g, G_K);
  const ph = word(g, G_PH), pw = word(g, G_PW), gh = word(g, G_GH), gw = word(g, G_GW);
  const kh = word(g, G_KH), kw = word(g, G_KW), cin = k / (kh * kw);
  const oy = word(g, G_OY), ox = word(g, G_OX);
  const src = addr(g, G_SRC), out = addr(g, G_OUT), bias = addr(g, G_BIAS);
  const act = word(g, G_ACT);
  const beta = load<f32>(at(g, G_BETA));
  const srcImg = word(g, G_SRC_IMG), outImg = word(g, G_OUT_IMG);
  const hp = gh + kh - 1, wpad = padWidth1(gw, kw), npos = gh * gw;
  const rowStep = <usize>wpad << 2, chanStep = <usize>(hp * wpad) << 2;
  for (let b = b0; b < b1; b++) {
    fillPadded(at(src, b * srcImg), cin, ph, pw, oy, ox, y0, y1 + kh - 1, hp, wpad, pad);
    const o = at(out, b * outImg);
    for (let oc = 0; oc < m; oc++) {
      const wrow = at(wp, oc * k);
      const vb = f32x4.splat(bias != 0 ? load<f32>(at(bias, oc)) : 0);
      for (let y = y0; y < y1; y++) {
        for (let x0 = 0; x0 < gw; x0 += 32) {
          let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
          let wt = wrow;
          let xc = at(pad, y * wpad + x0);
          for (let c = 0; c < cin; c++) {
            let xr = xc;
            for (let ky = 0; ky < kh; ky++) {
              let xp = xr;
              for (let kx = 0; kx < kw; kx++) {
                const s = v128.load32_splat(wt);
                a0 = madd(s, v128.load(xp), a0);
                a1 = madd(s, v128.load(xp, 16), a1);
                a2 = madd(s, v128.load(xp, 32), a2);
                a3 = madd(s, v128.load(xp, 48), a3);
                a4 = madd(s, v128.load(xp, 64), a4);
                a5 = madd(s, v128.load(xp, 80), a5);
                a6 = madd(s, v128.load(xp, 96), a6);
                a7 = madd(s, v128.load(xp, 112), a7);
                wt += 4;
                xp += 4;
              }
              xr += rowStep;
            }
            xc += chanStep;
          }
          const n = min<i32>(32, gw - x0);
          const p = at(o, oc * npos + y * gw + x0);
          const hb = bias != 0;
          storeDirect(p, min<i32>(n, 4), a0, beta, vb, hb, act);
          storeDirect(p + 16, min<i32>(n - 4, 4), a1, beta, vb, hb, act);
          storeDirect(p + 32, min<i32>(n - 8, 4), a2, beta, vb, hb, act);
          storeDirect(p + 48, min<i32>(n - 12, 4), a3, beta, vb, hb, act);
          storeDirect(p + 64, min<i32>(n - 16, 4), a4, beta, vb, hb, act);
          storeDirect(p + 80, min<i32>(n - 20, 4), a5, beta, vb, hb, act);
          storeDirect(p + 96, min<i32>(n - 24, 4), a6, beta, vb, hb, act);
          storeDirect(p + 112, min<i32>(n - 28, 4), a7, beta, vb, hb, act);
        }
      }
    }
  }
}

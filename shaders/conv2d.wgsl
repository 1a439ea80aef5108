// 2-D convolution (NCHW activations, OIHW weights; PyTorch's torch.nn.Conv2d with groups = 1 and
// dilation = 1) as an implicit GEMM: the im2col matrix is never materialised, its entries are
// gathered from the activation tensor while the GEMM tiles are filled (Chetlur et al., "cuDNN:
// Efficient Primitives for Deep Learning", 2014, sec. 3). One kernel, three GEMMs (override MODE):
//
//   MODE 0, forward:          y[b,o,oy,ox]  = bias[o] + Σ_{c,ky,kx} W[o,c,ky,kx] x[b,c,iy,ix],
//                             iy = oy·sh - ph + ky, ix = ox·sw - pw + kx (0 outside the image).
//                             GEMM rows m = o, columns n = (b,oy,ox), depth k = (c,ky,kx).
//   MODE 1, input gradient:   dx[b,c,iy,ix] = Σ_{o,ky,kx} W[o,c,ky,kx] dy[b,o,oy,ox] over the
//                             (ky,kx) with oy = (iy + ph - ky) / sh an integer in [0, OH) (likewise
//                             ox): the transposed convolution. m = c, n = (b,iy,ix), k = (o,ky,kx).
//   MODE 2, weight gradient:  dW[o,c,ky,kx] = Σ_{b,oy,ox} dy[b,o,oy,ox] x[b,c,iy,ix].
//                             m = o, n = (c,ky,kx), k = (b,oy,ox). K = B·OH·OW is long and M·N
//                             small, so K is split over workgroup z ("split-K"): split z sums its
//                             slice [z·kchunk, (z+1)·kchunk) into its own slab of `out`, and
//                             sum_parts_main (shaders/layers.wgsl) adds the slabs into dW in a fixed
//                             order (deterministic, no atomics). With one split the kernel
//                             accumulates into dW directly (beta = 1).
//
// In every mode op(A) is a strided read of W or dy and op(B) is a gather:
//   A(m, k) = a[m·a_ms + (k / a_kg)·a_ks + k % a_kg]   (mode 0: W[m·K + k], a_kg = K)
//   B(k, n) = src[col.base + row.base + (col.y ⊕ row.y)·w + (col.x ⊕ row.x)] with bounds checks,
// where col = decode of n (once per thread per kernel) and row = decode of k (once per k).
//
// Threading plan: a workgroup of TX × TY threads computes a BM × BN tile of the GEMM output,
// BM = RM·TY rows and BN = 4·CN·TX columns; thread (tx, ty) owns rows ty + i·TY (i < RM) and
// columns tx + j·TX (j < 4·CN), so neighbouring threads write neighbouring columns (n is the
// contiguous spatial index of y / dx). Two ways to feed the registers (override SHARED), as in
// shaders/matmul.wgsl:
// - SHARED (GPUs; RM <= 8, CN = 1): K advances BK at a time; the BM × BK slab of A and the
//   BK × BN slab of B are staged in workgroup memory (k-major), each thread loading fixed columns
//   (BN divides TX·TY, so a thread's B column and its decode never change) and fixed k offsets
//   within a slab (BK divides TX·TY); two barriers per slab; the inner loop reads As broadcast
//   and Bs consecutively.
// - !SHARED (CPU adapters: Mesa llvmpipe runs the x threads as SIMD lanes and makes barriers
//   coroutine switches, so staging only adds copies; RM <= 16, CN <= 4): for each k, each thread
//   reads its RM A values and 4·CN gathered B values straight from the storage buffers and does
//   RM·4·CN FMAs. Loads (gathers on a CPU) dominate there, so the register tile is as large as
//   helps: up to 16 × 16, one A load per 16 columns and one B load per 16 rows. k is decoded
//   once and then stepped with counters (row_steps): an integer division by a runtime value is
//   a scalar loop over the SIMD lanes.
//   Mesa llvmpipe (22.x) compiles every storage-buffer load, even one whose address is the same in
//   every lane, into a loop over the lanes with a bounds test per component, so what counts is
//   the number of load instructions and components per FMA. Two refinements cut them:
//   - APACK (TY = 1, RM % 4 = 0): the A operand (W, or dy in mode 2) is first repacked by
//     shaders/conv2d_pack.wgsl as ap[k][m] with rows padded to 4, so the RM values of a depth
//     are RM / 4 aligned vec4 loads instead of RM gathers;
//   - RUN3 (kw = 3, or 5 in modes 0 and 1 (RUNW), unit stride along x): in modes 0 and 1 a
//     column group is a run of four neighbouring x positions, and the kw kx steps of one
//     (c, ky) share 4 + kw - 1 B loads (run_main); in mode 2 it is a (c, ky) triple of kx columns whose inputs slide by one
//     position per depth step, one B load per step (tri_main).
//   - ROWS (mode 0 on the run path, 3×3, unit stride, CN = 4): a thread's four runs are the same
//     x positions in four neighbouring output rows, which read six input rows per channel
//     instead of twelve (run_rows_main); DDNet's forward 1.1-1.2x faster where OH is a multiple
//     of 4.
//   - TRIO (mode 2 on the run path, APACK, RM = 16, CN = 4): the vec4 lanes run over four rows o
//     instead of the three kx columns (no lane multiplies a zero), which frees enough
//     accumulators for a fifth triple per thread (tri4_main); DDNet's 3×3 weight gradients
//     5-11 % faster.
//   Measured on llvmpipe (2 cores, interleaved, per dispatch incl. the packing): DDNet's 64- and
//   128-channel 3×3 layers, batch 64, forward 1.2-1.5x, input gradient 1.35-1.5x, weight
//   gradient 1.35-1.6x faster than the plain gathers.
// Out-of-range rows/columns/depths read 0 (both operands, so no 0·NaN reaches a stored output).
// Measured (bench loop of 20 dispatches, one submit): H100 through Vulkan, SHARED, forward of
// x (128, 64, 32, 32), W (64, 64, 3, 3), pad 1: 1.6 ms, 6.1 TFLOP/s, ahead of src/ops/matmul.ts on
// the same GEMM shape (2.0 ms); llvmpipe (2 cores), !SHARED: within 1.5-3x of that matmul
// (see conv2dTiling in src/layers/conv2d.ts for the CPU tile measurements).

struct Params {
  batch: u32, cin: u32, h: u32, w: u32,
  cout: u32, oh: u32, ow: u32,
  kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32,
  m: u32, n: u32, k: u32, kchunk: u32, beta: f32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>; // W (modes 0, 1) or dy (mode 2)
@group(0) @binding(1) var<storage, read> src: array<f32>; // x (modes 0, 2) or dy (mode 1)
@group(0) @binding(2) var<storage, read_write> out: array<f32>; // y, dx, or dW / split slabs
@group(0) @binding(3) var<storage, read> bias: array<f32>; // (O,) when HAS_BIAS (mode 0)
@group(0) @binding(4) var<uniform> p: Params;
// APACK: A packed by shaders/conv2d_pack.wgsl, ap[k·m_pad/4 + m/4][m % 4] = A(m, k).
@group(0) @binding(5) var<storage, read> ap: array<vec4f>;

override MODE: u32 = 0u;
override SHARED: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override RM: u32 = 4u; // rows per thread, 1..16 (1..8 when SHARED)
override BK: u32 = 16u; // depth of a staged slab (SHARED); divides TX·TY
override HAS_BIAS: bool = false;
override UNIT_STRIDE: bool = false; // sh = sw = 1: mode 1 skips its divisibility tests
override NO_PAD: bool = false; // ph = pw = 0: modes 0, 2 (!SHARED) skip their bounds tests
override CN: u32 = 1u; // groups of four columns per thread, 1..4 (!SHARED only)
override RUN3: bool = false; // runs of 4 columns along x, kw = 3 (modes 0, 1: kw = RUNW; !SHARED)
override RUNW: u32 = 3u; // modes 0, 1 with RUN3: the kernel width kw, 3 or 5
override APACK: bool = false; // !SHARED, TY = 1, RM % 4 = 0: A rows as vec4s from `ap`
// With RUN3 in mode 0, a 3×3 kernel, unit stride and CN = 4: the four column groups of a thread
// are one run of x positions in four neighbouring rows, which share their input rows.
override ROWS: bool = false;
// RUN3 in mode 2 with APACK, TY = 1, RM = 16: the vec4 lanes run over four rows o instead of the
// three kx columns (tri4_main).
override TRIO: bool = false;
// Mode 0: the activation of the next layer applied in the epilogue, y = σ(conv + bias): 0 none,
// 1 ReLU, 2 Tanh, 3 Sigmoid, by the formulas of shaders/elementwise.wgsl (relu, tanh_s,
// sigmoid_s), so a fused forward gives what the two kernels give (src/layers/conv2d.ts fuses
// only activations whose derivatives come from the output, so no pre-activation is kept).
override ACT: u32 = 0u;

override BM: u32 = RM * TY;
override BN: u32 = 4u * CN * TX; // 4·CN columns per thread
override NT: u32 = TX * TY;
var<workgroup> As: array<f32, BK * BM>; // [k][m]
var<workgroup> Bs: array<f32, BK * BN>; // [k][n]

// A column (n) or row (k) of the implicit im2col matrix: base offset and 2-D coordinates.
struct Loc { base: i32, y: i32, x: i32, ok: bool }

fn col_loc(n: u32) -> Loc {
  if (n >= p.n) { return Loc(0, 0, 0, false); }
  switch MODE {
    case 1u: { // n = (b, iy, ix)
      let hw = p.h * p.w;
      let b = n / hw;
      let q = n % hw;
      return Loc(i32(b * p.cout * p.oh * p.ow), i32(q / p.w + p.ph), i32(q % p.w + p.pw), true);
    }
    case 2u: { // n = (c, ky, kx)
      let kk = p.kh * p.kw;
      let c = n / kk;
      let r = n % kk;
      return Loc(i32(c * p.h * p.w), i32(r / p.kw) - i32(p.ph), i32(r % p.kw) - i32(p.pw), true);
    }
    default: { // n = (b, oy, ox)
      let ohw = p.oh * p.ow;
      let b = n / ohw;
      let q = n % ohw;
      let y = i32((q / p.ow) * p.sh) - i32(p.ph);
      let x = i32((q % p.ow) * p.sw) - i32(p.pw);
      return Loc(i32(b * p.cin * p.h * p.w), y, x, true);
    }
  }
}

fn row_loc(k: u32, kend: u32) -> Loc {
  if (k >= kend) { return Loc(0, 0, 0, false); }
  switch MODE {
    case 1u: { // k = (o, ky, kx)
      let kk = p.kh * p.kw;
      let r = k % kk;
      return Loc(i32((k / kk) * p.oh * p.ow), i32(r / p.kw), i32(r % p.kw), true);
    }
    case 2u: { // k = (b, oy, ox)
      let ohw = p.oh * p.ow;
      let q = k % ohw;
      return Loc(i32((k / ohw) * p.cin * p.h * p.w), i32((q / p.ow) * p.sh), i32((q % p.ow) * p.sw), true);
    }
    default: { // k = (c, ky, kx)
      let kk = p.kh * p.kw;
      let r = k % kk;
      return Loc(i32((k / kk) * p.h * p.w), i32(r / p.kw), i32(r % p.kw), true);
    }
  }
}

fn gather(col: Loc, row: Loc) -> f32 {
  if (NO_PAD && !SHARED && MODE != 1u) {
    // Without padding every window of a real column lies inside the image, and the !SHARED loop
    // only visits real depths; a column past N reads some in-bounds element that is never
    // stored (its accumulator is dropped), so no test is needed.
    return src[col.base + row.base + (col.y + row.y) * i32(p.w) + col.x + row.x];
  }
  if (!(col.ok && row.ok)) { return 0.0; }
  if (MODE == 1u) {
    let ty = col.y - row.y;
    let tx = col.x - row.x;
    if (ty < 0 || tx < 0) { return 0.0; }
    var oy = ty;
    var ox = tx;
    if (!UNIT_STRIDE) {
      let sh = i32(p.sh);
      let sw = i32(p.sw);
      if (ty % sh != 0 || tx % sw != 0) { return 0.0; }
      oy = ty / sh;
      ox = tx / sw;
    }
    if (oy >= i32(p.oh) || ox >= i32(p.ow)) { return 0.0; }
    return src[col.base + row.base + oy * i32(p.ow) + ox];
  }
  let iy = col.y + row.y;
  let ix = col.x + row.x;
  if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) { return 0.0; }
  return src[col.base + row.base + iy * i32(p.w) + ix];
}

// The k-dependent part of A's address, and the stride between rows m.
fn a_koff(k: u32) -> u32 {
  switch MODE {
    case 1u: {
      let kk = p.kh * p.kw;
      return (k / kk) * p.cin * kk + k % kk;
    }
    case 2u: {
      let ohw = p.oh * p.ow;
      return (k / ohw) * p.cout * ohw + k % ohw;
    }
    default: { return k; }
  }
}

// The depth index k as a triple (q0, q1, q2) with q1 < l1, q2 < l2, and what row_loc and a_koff
// make of it, for the counter loop of the !SHARED path:
//   row_loc(k) = Loc(q0·bs0, q1·sy, q2·sx),  a_koff(k) = q0·as0 + q1·a1 + q2.
// Modes 0, 1: k = (c or o, ky, kx); mode 2: k = (b, oy, ox).
struct Steps { l1: u32, l2: u32, bs0: u32, sy: u32, sx: u32, as0: u32, a1: u32 }

fn row_steps() -> Steps {
  let kk = p.kh * p.kw;
  switch MODE {
    case 1u: { return Steps(p.kh, p.kw, p.oh * p.ow, 1u, 1u, p.cin * kk, p.kw); }
    case 2u: {
      let ohw = p.oh * p.ow;
      return Steps(p.oh, p.ow, p.cin * p.h * p.w, p.sh, p.sw, p.cout * ohw, p.ow);
    }
    default: { return Steps(p.kh, p.kw, p.h * p.w, 1u, 1u, kk, p.kw); }
  }
}

fn a_mstride() -> u32 {
  switch MODE {
    case 1u: { return p.kh * p.kw; }
    case 2u: { return p.oh * p.ow; }
    default: { return p.k; }
  }
}

fn out_index(m: u32, n: u32, z: u32) -> u32 {
  switch MODE {
    case 1u: {
      let hw = p.h * p.w;
      return ((n / hw) * p.cin + m) * hw + n % hw;
    }
    case 2u: { return (z * p.m + m) * p.n + n; }
    default: {
      let ohw = p.oh * p.ow;
      return ((n / ohw) * p.cout + m) * ohw + n % ohw;
    }
  }
}

// Accumulators: c{g}{i}... named per column group g (c, d, e, f: columns tx + (4g + j)·TX, j < 4,
// as a vec4) and row block i < RM (rows ty + i·TY). Named variables rather than an array:
// llvmpipe keeps a dynamically indexed private array in memory, turning every FMA into a load
// and a store. The SHARED path uses group c, rows < 8.
var<private> c0: vec4f;
var<private> c1: vec4f;
var<private> c2: vec4f;
var<private> c3: vec4f;
var<private> c4: vec4f;
var<private> c5: vec4f;
var<private> c6: vec4f;
var<private> c7: vec4f;
var<private> c8: vec4f;
var<private> c9: vec4f;
var<private> c10: vec4f;
var<private> c11: vec4f;
var<private> c12: vec4f;
var<private> c13: vec4f;
var<private> c14: vec4f;
var<private> c15: vec4f;
var<private> d0: vec4f;
var<private> d1: vec4f;
var<private> d2: vec4f;
var<private> d3: vec4f;
var<private> d4: vec4f;
var<private> d5: vec4f;
var<private> d6: vec4f;
var<private> d7: vec4f;
var<private> d8: vec4f;
var<private> d9: vec4f;
var<private> d10: vec4f;
var<private> d11: vec4f;
var<private> d12: vec4f;
var<private> d13: vec4f;
var<private> d14: vec4f;
var<private> d15: vec4f;
var<private> e0: vec4f;
var<private> e1: vec4f;
var<private> e2: vec4f;
var<private> e3: vec4f;
var<private> e4: vec4f;
var<private> e5: vec4f;
var<private> e6: vec4f;
var<private> e7: vec4f;
var<private> e8: vec4f;
var<private> e9: vec4f;
var<private> e10: vec4f;
var<private> e11: vec4f;
var<private> e12: vec4f;
var<private> e13: vec4f;
var<private> e14: vec4f;
var<private> e15: vec4f;
var<private> f0: vec4f;
var<private> f1: vec4f;
var<private> f2: vec4f;
var<private> f3: vec4f;
var<private> f4: vec4f;
var<private> f5: vec4f;
var<private> f6: vec4f;
var<private> f7: vec4f;
var<private> f8: vec4f;
var<private> f9: vec4f;
var<private> f10: vec4f;
var<private> f11: vec4f;
var<private> f12: vec4f;
var<private> f13: vec4f;
var<private> f14: vec4f;
var<private> f15: vec4f;

// Rank-1 update of the row blocks i < RM of column group g with the A values av (the guards
// fold away).
fn update(b: vec4f, av0: f32, av1: f32, av2: f32, av3: f32, av4: f32, av5: f32, av6: f32, av7: f32,
          av8: f32, av9: f32, av10: f32, av11: f32, av12: f32, av13: f32, av14: f32, av15: f32) {
  c0 = fma(vec4f(av0), b, c0);
  if (RM > 1u) { c1 = fma(vec4f(av1), b, c1); }
  if (RM > 2u) { c2 = fma(vec4f(av2), b, c2); }
  if (RM > 3u) { c3 = fma(vec4f(av3), b, c3); }
  if (RM > 4u) { c4 = fma(vec4f(av4), b, c4); }
  if (RM > 5u) { c5 = fma(vec4f(av5), b, c5); }
  if (RM > 6u) { c6 = fma(vec4f(av6), b, c6); }
  if (RM > 7u) { c7 = fma(vec4f(av7), b, c7); }
  if (RM > 8u) { c8 = fma(vec4f(av8), b, c8); }
  if (RM > 9u) { c9 = fma(vec4f(av9), b, c9); }
  if (RM > 10u) { c10 = fma(vec4f(av10), b, c10); }
  if (RM > 11u) { c11 = fma(vec4f(av11), b, c11); }
  if (RM > 12u) { c12 = fma(vec4f(av12), b, c12); }
  if (RM > 13u) { c13 = fma(vec4f(av13), b, c13); }
  if (RM > 14u) { c14 = fma(vec4f(av14), b, c14); }
  if (RM > 15u) { c15 = fma(vec4f(av15), b, c15); }
}

fn update_d(b: vec4f, av0: f32, av1: f32, av2: f32, av3: f32, av4: f32, av5: f32, av6: f32,
            av7: f32, av8: f32, av9: f32, av10: f32, av11: f32, av12: f32, av13: f32, av14: f32,
            av15: f32) {
  d0 = fma(vec4f(av0), b, d0);
  if (RM > 1u) { d1 = fma(vec4f(av1), b, d1); }
  if (RM > 2u) { d2 = fma(vec4f(av2), b, d2); }
  if (RM > 3u) { d3 = fma(vec4f(av3), b, d3); }
  if (RM > 4u) { d4 = fma(vec4f(av4), b, d4); }
  if (RM > 5u) { d5 = fma(vec4f(av5), b, d5); }
  if (RM > 6u) { d6 = fma(vec4f(av6), b, d6); }
  if (RM > 7u) { d7 = fma(vec4f(av7), b, d7); }
  if (RM > 8u) { d8 = fma(vec4f(av8), b, d8); }
  if (RM > 9u) { d9 = fma(vec4f(av9), b, d9); }
  if (RM > 10u) { d10 = fma(vec4f(av10), b, d10); }
  if (RM > 11u) { d11 = fma(vec4f(av11), b, d11); }
  if (RM > 12u) { d12 = fma(vec4f(av12), b, d12); }
  if (RM > 13u) { d13 = fma(vec4f(av13), b, d13); }
  if (RM > 14u) { d14 = fma(vec4f(av14), b, d14); }
  if (RM > 15u) { d15 = fma(vec4f(av15), b, d15); }
}

fn update_e(b: vec4f, av0: f32, av1: f32, av2: f32, av3: f32, av4: f32, av5: f32, av6: f32,
            av7: f32, av8: f32, av9: f32, av10: f32, av11: f32, av12: f32, av13: f32, av14: f32,
            av15: f32) {
  e0 = fma(vec4f(av0), b, e0);
  if (RM > 1u) { e1 = fma(vec4f(av1), b, e1); }
  if (RM > 2u) { e2 = fma(vec4f(av2), b, e2); }
  if (RM > 3u) { e3 = fma(vec4f(av3), b, e3); }
  if (RM > 4u) { e4 = fma(vec4f(av4), b, e4); }
  if (RM > 5u) { e5 = fma(vec4f(av5), b, e5); }
  if (RM > 6u) { e6 = fma(vec4f(av6), b, e6); }
  if (RM > 7u) { e7 = fma(vec4f(av7), b, e7); }
  if (RM > 8u) { e8 = fma(vec4f(av8), b, e8); }
  if (RM > 9u) { e9 = fma(vec4f(av9), b, e9); }
  if (RM > 10u) { e10 = fma(vec4f(av10), b, e10); }
  if (RM > 11u) { e11 = fma(vec4f(av11), b, e11); }
  if (RM > 12u) { e12 = fma(vec4f(av12), b, e12); }
  if (RM > 13u) { e13 = fma(vec4f(av13), b, e13); }
  if (RM > 14u) { e14 = fma(vec4f(av14), b, e14); }
  if (RM > 15u) { e15 = fma(vec4f(av15), b, e15); }
}

fn update_f(b: vec4f, av0: f32, av1: f32, av2: f32, av3: f32, av4: f32, av5: f32, av6: f32,
            av7: f32, av8: f32, av9: f32, av10: f32, av11: f32, av12: f32, av13: f32, av14: f32,
            av15: f32) {
  f0 = fma(vec4f(av0), b, f0);
  if (RM > 1u) { f1 = fma(vec4f(av1), b, f1); }
  if (RM > 2u) { f2 = fma(vec4f(av2), b, f2); }
  if (RM > 3u) { f3 = fma(vec4f(av3), b, f3); }
  if (RM > 4u) { f4 = fma(vec4f(av4), b, f4); }
  if (RM > 5u) { f5 = fma(vec4f(av5), b, f5); }
  if (RM > 6u) { f6 = fma(vec4f(av6), b, f6); }
  if (RM > 7u) { f7 = fma(vec4f(av7), b, f7); }
  if (RM > 8u) { f8 = fma(vec4f(av8), b, f8); }
  if (RM > 9u) { f9 = fma(vec4f(av9), b, f9); }
  if (RM > 10u) { f10 = fma(vec4f(av10), b, f10); }
  if (RM > 11u) { f11 = fma(vec4f(av11), b, f11); }
  if (RM > 12u) { f12 = fma(vec4f(av12), b, f12); }
  if (RM > 13u) { f13 = fma(vec4f(av13), b, f13); }
  if (RM > 14u) { f14 = fma(vec4f(av14), b, f14); }
  if (RM > 15u) { f15 = fma(vec4f(av15), b, f15); }
}

// A value of row block i from the staged slab (SHARED) at slab depth kk.
fn sa(i: u32, kk: u32, ty: u32) -> f32 {
  if (i >= RM) { return 0.0; }
  return As[kk * BM + ty + i * TY];
}

// A value of row block i straight from memory (!SHARED); rows past M are clamped (never stored).
fn ga(i: u32, row: u32, ms: u32, koff: u32) -> f32 {
  if (i >= RM) { return 0.0; }
  return a[min(row + i * TY, p.m - 1u) * ms + koff];
}

fn activate(x: f32) -> f32 {
  switch ACT {
    case 1u: {
      // NaN tested on the bits, as shaders/elementwise.wgsl does (PyTorch's relu keeps NaN).
      return select(x, 0.0, x < 0.0 && (bitcast<u32>(x) & 0x7fffffffu) <= 0x7f800000u);
    }
    case 2u: {
      let ax = abs(x);
      let x2 = x * x;
      let series = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
      let e = exp(-2.0 * ax);
      let big = sign(x) * (1.0 - e) / (1.0 + e);
      return select(big, series, ax < 0.125);
    }
    case 3u: {
      let e = exp(-abs(x));
      let r = 1.0 / (1.0 + e);
      return select(e * r, r, x >= 0.0);
    }
    default: { return x; }
  }
}

fn store_row(v: vec4f, m: u32, col: u32, z: u32) {
  if (m >= p.m) { return; }
  var add = 0.0;
  if (HAS_BIAS) { add = bias[m]; }
  for (var j = 0u; j < 4u; j++) {
    let n = col + j * TX;
    if (n < p.n) {
      let at = out_index(m, n, z);
      var r = v[j] + add;
      if (p.beta != 0.0) { r += p.beta * out[at]; }
      out[at] = activate(r);
    }
  }
}

// The RM row blocks of column group g (columns col + (4g + j)·TX, j < 4).
fn store_group(g: u32, m0: u32, col: u32, z: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f,
               v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f, v8: vec4f, v9: vec4f, v10: vec4f,
               v11: vec4f, v12: vec4f, v13: vec4f, v14: vec4f, v15: vec4f) {
  let cg = col + 4u * g * TX;
  store_row(v0, m0, cg, z);
  if (RM > 1u) { store_row(v1, m0 + 1u * TY, cg, z); }
  if (RM > 2u) { store_row(v2, m0 + 2u * TY, cg, z); }
  if (RM > 3u) { store_row(v3, m0 + 3u * TY, cg, z); }
  if (RM > 4u) { store_row(v4, m0 + 4u * TY, cg, z); }
  if (RM > 5u) { store_row(v5, m0 + 5u * TY, cg, z); }
  if (RM > 6u) { store_row(v6, m0 + 6u * TY, cg, z); }
  if (RM > 7u) { store_row(v7, m0 + 7u * TY, cg, z); }
  if (RM > 8u) { store_row(v8, m0 + 8u * TY, cg, z); }
  if (RM > 9u) { store_row(v9, m0 + 9u * TY, cg, z); }
  if (RM > 10u) { store_row(v10, m0 + 10u * TY, cg, z); }
  if (RM > 11u) { store_row(v11, m0 + 11u * TY, cg, z); }
  if (RM > 12u) { store_row(v12, m0 + 12u * TY, cg, z); }
  if (RM > 13u) { store_row(v13, m0 + 13u * TY, cg, z); }
  if (RM > 14u) { store_row(v14, m0 + 14u * TY, cg, z); }
  if (RM > 15u) { store_row(v15, m0 + 15u * TY, cg, z); }
}


// RUN3 (CPU adapters, modes 0 and 1, kw = RUNW = 3 or 5 and unit stride along x): each column
// group of a thread is a run of four neighbouring x positions of one output row (dx row in
// mode 1), and the depth loop walks (c or o, ky) with the kw kx steps unrolled. For a fixed
// (c, ky) the run needs the 4 + kw - 1 neighbouring input values x0 .. x0 + kw + 2 (mode 1:
// ox0 - kw + 1 .. ox0 + 3), and kx selects a window of four of them: 6 loads per 12 rank-1
// columns instead of 12 gathers for kw = 3, 8 per 20 for kw = 5 (LeNet's 5×5 layers).
// Loads, not FMAs, bound the !SHARED path on llvmpipe (each is a scalar loop over the lanes),
// so this removes half (kw = 3) or 60 % (kw = 5) of the B loads. Columns are (b, y, xr) with xr < XR = ceil(W' / 4);
// positions past W' are computed from in-bounds or zero reads and never stored.
struct Run { src: i32, y: i32, x: i32, ok: bool, out: u32, xlim: u32 }

fn run_loc(rn: u32) -> Run {
  if (MODE == 1u) {
    let xr = (p.w + 3u) / 4u;
    let per = p.h * xr;
    let b = min(rn, p.n - 1u) / per;
    let q = min(rn, p.n - 1u) % per;
    let iy = q / xr;
    let ix = 4u * (q % xr);
    // ox = ix + pw - kx, first needed ox (kx = kw - 1): ix + pw - kw + 1.
    return Run(i32(b * p.cout * p.oh * p.ow), i32(iy + p.ph), i32(ix + p.pw) - i32(RUNW - 1u),
               rn < p.n,
               (b * p.cin * p.h + iy) * p.w + ix, p.w - ix);
  }
  let xr = (p.ow + 3u) / 4u;
  let per = p.oh * xr;
  let b = min(rn, p.n - 1u) / per;
  let q = min(rn, p.n - 1u) % per;
  let oy = q / xr;
  let ox = 4u * (q % xr);
  return Run(i32(b * p.cin * p.h * p.w), i32(oy * p.sh) - i32(p.ph), i32(ox) - i32(p.pw), rn < p.n,
             (b * p.cout * p.oh + oy) * p.ow + ox, p.ow - ox);
}

// Input value t (0..kw + 2) of run `r` at depth row base `rb` and row offset `ry` (ky, mode 0; -ky,
// mode 1, already folded into the caller's y); 0 outside the image.
fn run_ld(r: Run, rb: i32, y: i32, t: i32) -> f32 {
  let x = r.x + t;
  if (MODE == 1u) {
    let ok = y >= 0 && y < i32(p.oh) && x >= 0 && x < i32(p.ow);
    return select(0.0, src[max(r.src + rb + y * i32(p.ow) + x, 0)], ok);
  }
  if (NO_PAD) { return src[r.src + rb + y * i32(p.w) + x]; }
  let ok = y >= 0 && y < i32(p.h) && x >= 0 && x < i32(p.w);
  return select(0.0, src[max(r.src + rb + y * i32(p.w) + x, 0)], ok);
}

fn store_run(v: vec4f, m: u32, r: Run) {
  if (m >= p.m || !r.ok) { return; }
  var add = 0.0;
  if (HAS_BIAS) { add = bias[m]; }
  var plane = p.oh * p.ow;
  if (MODE == 1u) { plane = p.h * p.w; }
  let at = r.out + m * plane;
  for (var j = 0u; j < min(4u, r.xlim); j++) {
    var o = v[j] + add;
    if (p.beta != 0.0) { o += p.beta * out[at + j]; }
    out[at + j] = activate(o);
  }
}

fn store_run_group(r: Run, m0: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f, v4: vec4f,
                   v5: vec4f, v6: vec4f, v7: vec4f, v8: vec4f, v9: vec4f, v10: vec4f, v11: vec4f,
                   v12: vec4f, v13: vec4f, v14: vec4f, v15: vec4f) {
  store_run(v0, m0, r);
  if (RM > 1u) { store_run(v1, m0 + 1u * TY, r); }
  if (RM > 2u) { store_run(v2, m0 + 2u * TY, r); }
  if (RM > 3u) { store_run(v3, m0 + 3u * TY, r); }
  if (RM > 4u) { store_run(v4, m0 + 4u * TY, r); }
  if (RM > 5u) { store_run(v5, m0 + 5u * TY, r); }
  if (RM > 6u) { store_run(v6, m0 + 6u * TY, r); }
  if (RM > 7u) { store_run(v7, m0 + 7u * TY, r); }
  if (RM > 8u) { store_run(v8, m0 + 8u * TY, r); }
  if (RM > 9u) { store_run(v9, m0 + 9u * TY, r); }
  if (RM > 10u) { store_run(v10, m0 + 10u * TY, r); }
  if (RM > 11u) { store_run(v11, m0 + 11u * TY, r); }
  if (RM > 12u) { store_run(v12, m0 + 12u * TY, r); }
  if (RM > 13u) { store_run(v13, m0 + 13u * TY, r); }
  if (RM > 14u) { store_run(v14, m0 + 14u * TY, r); }
  if (RM > 15u) { store_run(v15, m0 + 15u * TY, r); }
}

// The 4 + kw - 1 input values of a run at one (c or o, ky) (v6, v7: kw = 5 only).
struct Six { v0: f32, v1: f32, v2: f32, v3: f32, v4: f32, v5: f32, v6: f32, v7: f32 }

fn run_six(r: Run, rb: i32, y: i32) -> Six {
  var s = Six(run_ld(r, rb, y, 0), run_ld(r, rb, y, 1), run_ld(r, rb, y, 2), run_ld(r, rb, y, 3),
              run_ld(r, rb, y, 4), run_ld(r, rb, y, 5), 0.0, 0.0);
  if (RUNW > 3u) {
    s.v6 = run_ld(r, rb, y, 6);
    s.v7 = run_ld(r, rb, y, 7);
  }
  return s;
}

// The window of four of `s` that kx selects.
fn win(s: Six, kx: u32) -> vec4f {
  var o = kx;
  if (MODE == 1u) { o = RUNW - 1u - kx; }
  switch o {
    case 1u: { return vec4f(s.v1, s.v2, s.v3, s.v4); }
    case 2u: { return vec4f(s.v2, s.v3, s.v4, s.v5); }
    case 3u: { return vec4f(s.v3, s.v4, s.v5, s.v6); }
    case 4u: { return vec4f(s.v4, s.v5, s.v6, s.v7); }
    default: { return vec4f(s.v0, s.v1, s.v2, s.v3); }
  }
}

// One kx step of the RUN3 loop: RM A loads and the rank-1 updates of every group.
// The RM A values of rows r + i·TY at depth k: ko = the k part of A's address (a_koff), kp = k.
struct A16 {
  a0: f32, a1: f32, a2: f32, a3: f32, a4: f32, a5: f32, a6: f32, a7: f32,
  a8: f32, a9: f32, a10: f32, a11: f32, a12: f32, a13: f32, a14: f32, a15: f32,
}

fn a_vals(r: u32, ms: u32, ko: u32, kp: u32) -> A16 {
  if (APACK) {
    // Rows r .. r+RM-1 (TY = 1, r a multiple of 4); rows past M read padding or other depths'
    // values, which only reach accumulators that are never stored.
    var o: A16;
    let q = (kp * ((p.m + 3u) / 4u * 4u) + r) / 4u;
    let v0 = ap[q];
    o.a0 = v0.x; o.a1 = v0.y; o.a2 = v0.z; o.a3 = v0.w;
    if (RM > 4u) { let v = ap[q + 1u]; o.a4 = v.x; o.a5 = v.y; o.a6 = v.z; o.a7 = v.w; }
    if (RM > 8u) { let v = ap[q + 2u]; o.a8 = v.x; o.a9 = v.y; o.a10 = v.z; o.a11 = v.w; }
    if (RM > 12u) { let v = ap[q + 3u]; o.a12 = v.x; o.a13 = v.y; o.a14 = v.z; o.a15 = v.w; }
    return o;
  }
  return A16(ga(0u, r, ms, ko), ga(1u, r, ms, ko), ga(2u, r, ms, ko), ga(3u, r, ms, ko),
             ga(4u, r, ms, ko), ga(5u, r, ms, ko), ga(6u, r, ms, ko), ga(7u, r, ms, ko),
             ga(8u, r, ms, ko), ga(9u, r, ms, ko), ga(10u, r, ms, ko), ga(11u, r, ms, ko),
             ga(12u, r, ms, ko), ga(13u, r, ms, ko), ga(14u, r, ms, ko), ga(15u, r, ms, ko));
}

// One kx step of the RUN3 loop: RM A values and the rank-1 updates of every group.
fn run_step(r: u32, ms: u32, ko: u32, kp: u32, s0: Six, s1: Six, s2: Six, s3: Six, kx: u32) {
  let av = a_vals(r, ms, ko, kp);
  let a0 = av.a0; let a1 = av.a1; let a2 = av.a2; let a3 = av.a3;
  let a4 = av.a4; let a5 = av.a5; let a6 = av.a6; let a7 = av.a7;
  let a8 = av.a8; let a9 = av.a9; let a10 = av.a10; let a11 = av.a11;
  let a12 = av.a12; let a13 = av.a13; let a14 = av.a14; let a15 = av.a15;
  update(win(s0, kx), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  if (CN > 1u) {
    update_d(win(s1, kx), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  }
  if (CN > 2u) {
    update_e(win(s2, kx), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  }
  if (CN > 3u) {
    update_f(win(s3, kx), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
  }
}

fn run_main(wid: vec3u, lid: vec3u) {
  let rn0 = wid.x * CN * TX + lid.x;
  let r0 = run_loc(rn0);
  let r1 = run_loc(rn0 + TX);
  let r2 = run_loc(rn0 + 2u * TX);
  let r3 = run_loc(rn0 + 3u * TX);
  let ms = a_mstride();
  let row = wid.y * BM + lid.y;
  let st = row_steps();
  let z = Six(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  // Depth (q0, ky): q0 = c (mode 0, row base c·H·W) or o (mode 1, row base o·OH·OW).
  let nq0 = p.k / (p.kh * RUNW);
  for (var q0 = 0u; q0 < nq0; q0++) {
    let rb = i32(q0 * st.bs0);
    for (var ky = 0u; ky < p.kh; ky++) {
      var dy = i32(ky);
      if (MODE == 1u) { dy = -i32(ky); }
      let s0 = run_six(r0, rb, r0.y + dy);
      var s1 = z;
      var s2 = z;
      var s3 = z;
      if (CN > 1u) { s1 = run_six(r1, rb, r1.y + dy); }
      if (CN > 2u) { s2 = run_six(r2, rb, r2.y + dy); }
      if (CN > 3u) { s3 = run_six(r3, rb, r3.y + dy); }
      let ko = q0 * st.as0 + ky * st.a1;
      let kp = (q0 * p.kh + ky) * RUNW;
      run_step(row, ms, ko, kp, s0, s1, s2, s3, 0u);
      run_step(row, ms, ko + 1u, kp + 1u, s0, s1, s2, s3, 1u);
      run_step(row, ms, ko + 2u, kp + 2u, s0, s1, s2, s3, 2u);
      if (RUNW > 3u) {
        run_step(row, ms, ko + 3u, kp + 3u, s0, s1, s2, s3, 3u);
        run_step(row, ms, ko + 4u, kp + 4u, s0, s1, s2, s3, 4u);
      }
    }
  }
  let m0 = wid.y * BM + lid.y;
  store_run_group(r0, m0, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
  if (CN > 1u) { store_run_group(r1, m0, d0, d1, d2, d3, d4, d5, d6, d7,
                 d8, d9, d10, d11, d12, d13, d14, d15); }
  if (CN > 2u) { store_run_group(r2, m0, e0, e1, e2, e3, e4, e5, e6, e7,
                 e8, e9, e10, e11, e12, e13, e14, e15); }
  if (CN > 3u) { store_run_group(r3, m0, f0, f1, f2, f3, f4, f5, f6, f7,
                 f8, f9, f10, f11, f12, f13, f14, f15); }
}

// RUN3 in mode 2 (kw = 3, sw = 1): a column group is the triple (c, ky, kx = 0..2) (the fourth
// lane of its vec4 is unused), and the depth loop walks the rows (b, oy) of dy and, inside a
// row, ox. Column kx at ox reads x[.., ox + kx - pw], so from one ox to the next the window of
// three slides by one: one B load per group and depth instead of three gathers. Splits of K
// cover whole rows (the host makes kchunk a multiple of OW).
fn tri_ld(base: i32, y: i32, x: i32) -> f32 {
  if (NO_PAD) { return src[base + y * i32(p.w) + x]; }
  let ok = y >= 0 && y < i32(p.h) && x >= 0 && x < i32(p.w);
  return select(0.0, src[max(base + y * i32(p.w) + x, 0)], ok);
}

// Image-plane offset of triple t = (c, ky) (clamped past the end; never stored) and its ky.
fn tri_loc(t: u32) -> vec2i {
  let tt = min(t, p.cin * p.kh - 1u);
  return vec2i(i32((tt / p.kh) * p.h * p.w), i32(tt % p.kh));
}

fn tri_store(v: vec4f, m: u32, t: u32, z: u32) {
  if (m >= p.m || t >= p.cin * p.kh) { return; }
  let at = (z * p.m + m) * p.n + 3u * t;
  for (var j = 0u; j < 3u; j++) {
    var o = v[j];
    if (p.beta != 0.0) { o += p.beta * out[at + j]; }
    out[at + j] = o;
  }
}

fn tri_store_group(t: u32, m0: u32, z: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f,
                   v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f, v8: vec4f, v9: vec4f, v10: vec4f,
                   v11: vec4f, v12: vec4f, v13: vec4f, v14: vec4f, v15: vec4f) {
  tri_store(v0, m0, t, z);
  if (RM > 1u) { tri_store(v1, m0 + 1u * TY, t, z); }
  if (RM > 2u) { tri_store(v2, m0 + 2u * TY, t, z); }
  if (RM > 3u) { tri_store(v3, m0 + 3u * TY, t, z); }
  if (RM > 4u) { tri_store(v4, m0 + 4u * TY, t, z); }
  if (RM > 5u) { tri_store(v5, m0 + 5u * TY, t, z); }
  if (RM > 6u) { tri_store(v6, m0 + 6u * TY, t, z); }
  if (RM > 7u) { tri_store(v7, m0 + 7u * TY, t, z); }
  if (RM > 8u) { tri_store(v8, m0 + 8u * TY, t, z); }
  if (RM > 9u) { tri_store(v9, m0 + 9u * TY, t, z); }
  if (RM > 10u) { tri_store(v10, m0 + 10u * TY, t, z); }
  if (RM > 11u) { tri_store(v11, m0 + 11u * TY, t, z); }
  if (RM > 12u) { tri_store(v12, m0 + 12u * TY, t, z); }
  if (RM > 13u) { tri_store(v13, m0 + 13u * TY, t, z); }
  if (RM > 14u) { tri_store(v14, m0 + 14u * TY, t, z); }
  if (RM > 15u) { tri_store(v15, m0 + 15u * TY, t, z); }
}

fn tri_main(wid: vec3u, lid: vec3u) {
  let t0 = wid.x * CN * TX + lid.x;
  let l0 = tri_loc(t0);
  let l1 = tri_loc(t0 + TX);
  let l2 = tri_loc(t0 + 2u * TX);
  let l3 = tri_loc(t0 + 3u * TX);
  let row = wid.y * BM + lid.y;
  let ms = a_mstride();
  let ohw = p.oh * p.ow;
  let kbeg = wid.z * p.kchunk;
  let kend = min(p.k, kbeg + p.kchunk);
  for (var kr = kbeg; kr < kend; kr += p.ow) {
    let b = kr / ohw;
    let oy = (kr % ohw) / p.ow;
    let base = i32(b * p.cin * p.h * p.w);
    let y0 = i32(oy * p.sh) - i32(p.ph) + l0.y;
    let y1 = i32(oy * p.sh) - i32(p.ph) + l1.y;
    let y2 = i32(oy * p.sh) - i32(p.ph) + l2.y;
    let y3 = i32(oy * p.sh) - i32(p.ph) + l3.y;
    let x0 = -i32(p.pw);
    var w00 = tri_ld(base + l0.x, y0, x0);
    var w01 = tri_ld(base + l0.x, y0, x0 + 1);
    var w10 = 0.0; var w11 = 0.0; var w20 = 0.0; var w21 = 0.0; var w30 = 0.0; var w31 = 0.0;
    if (CN > 1u) { w10 = tri_ld(base + l1.x, y1, x0); w11 = tri_ld(base + l1.x, y1, x0 + 1); }
    if (CN > 2u) { w20 = tri_ld(base + l2.x, y2, x0); w21 = tri_ld(base + l2.x, y2, x0 + 1); }
    if (CN > 3u) { w30 = tri_ld(base + l3.x, y3, x0); w31 = tri_ld(base + l3.x, y3, x0 + 1); }
    // a_koff(k) = b·O·OH·OW + oy·OW + ox for dy rows.
    let kob = b * p.cout * ohw + oy * p.ow;
    for (var ox = 0u; ox < p.ow; ox++) {
      let xn = x0 + i32(ox) + 2;
      let av = a_vals(row, ms, kob + ox, kr + ox);
      let a0 = av.a0; let a1 = av.a1; let a2 = av.a2; let a3 = av.a3;
      let a4 = av.a4; let a5 = av.a5; let a6 = av.a6; let a7 = av.a7;
      let a8 = av.a8; let a9 = av.a9; let a10 = av.a10; let a11 = av.a11;
      let a12 = av.a12; let a13 = av.a13; let a14 = av.a14; let a15 = av.a15;
      let w02 = tri_ld(base + l0.x, y0, xn);
      update(vec4f(w00, w01, w02, 0.0), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12,
             a13, a14, a15);
      w00 = w01;
      w01 = w02;
      if (CN > 1u) {
        let w12 = tri_ld(base + l1.x, y1, xn);
        update_d(vec4f(w10, w11, w12, 0.0), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11,
                 a12, a13, a14, a15);
        w10 = w11;
        w11 = w12;
      }
      if (CN > 2u) {
        let w22 = tri_ld(base + l2.x, y2, xn);
        update_e(vec4f(w20, w21, w22, 0.0), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11,
                 a12, a13, a14, a15);
        w20 = w21;
        w21 = w22;
      }
      if (CN > 3u) {
        let w32 = tri_ld(base + l3.x, y3, xn);
        update_f(vec4f(w30, w31, w32, 0.0), a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11,
                 a12, a13, a14, a15);
        w30 = w31;
        w31 = w32;
      }
    }
  }
  let m0 = wid.y * BM + lid.y;
  tri_store_group(t0, m0, wid.z, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14,
                  c15);
  if (CN > 1u) { tri_store_group(t0 + TX, m0, wid.z, d0, d1, d2, d3, d4, d5, d6, d7,
                 d8, d9, d10, d11, d12, d13, d14, d15); }
  if (CN > 2u) { tri_store_group(t0 + 2u * TX, m0, wid.z, e0, e1, e2, e3, e4, e5, e6, e7,
                 e8, e9, e10, e11, e12, e13, e14, e15); }
  if (CN > 3u) { tri_store_group(t0 + 3u * TX, m0, wid.z, f0, f1, f2, f3, f4, f5, f6, f7,
                 f8, f9, f10, f11, f12, f13, f14, f15); }
}

// ROWS (RUN3, mode 0, kh = kw = 3, sh = sw = 1, CN = 4): the four column groups of a thread are
// the same run of four x positions in four neighbouring output rows y0 .. y0 + 3. Group j at tap
// row ky reads input row y0 + j + ky, so for one c the 4 × 3 (group, ky) pairs need only six
// distinct rows: six run_six loads instead of twelve, the A values of each (ky, kx) still shared
// by the four groups. The sums run over (c, ky, kx) in the same order as run_main, so the
// results are the same. Columns are (b, yb, xr) with yb < ceil(OH / 4), xr < ceil(OW / 4); rows
// past OH are computed from clamped or zero reads and never stored. (The input gradient's
// bounds-tested loads gained too little from it to pay for the rows computed for nothing; see
// rowsPath in src/layers/conv2d.ts.)
fn rows_loc(rn: u32, j: u32) -> Run {
  let xr = (p.ow + 3u) / 4u;
  let per = ((p.oh + 3u) / 4u) * xr;
  let q = min(rn, p.n - 1u);
  let b = q / per;
  let y = 4u * ((q % per) / xr) + j;
  let x = 4u * ((q % per) % xr);
  return Run(i32(b * p.cin * p.h * p.w), i32(y) - i32(p.ph), i32(x) - i32(p.pw),
             rn < p.n && y < p.oh, (b * p.cout * p.oh + y) * p.ow + x, p.ow - x);
}

// The three kx steps of tap row ky, groups reading the rows sa .. sd.
fn rows_ky(row: u32, ms: u32, ko: u32, kp: u32, sa: Six, sb: Six, sc: Six, sd: Six) {
  run_step(row, ms, ko, kp, sa, sb, sc, sd, 0u);
  run_step(row, ms, ko + 1u, kp + 1u, sa, sb, sc, sd, 1u);
  run_step(row, ms, ko + 2u, kp + 2u, sa, sb, sc, sd, 2u);
}

fn run_rows_main(wid: vec3u, lid: vec3u) {
  let rn = wid.x * TX + lid.x;
  let r0 = rows_loc(rn, 0u);
  let ms = a_mstride();
  let row = wid.y * BM + lid.y;
  let st = row_steps();
  // Input rows y0 + t, t = j + ky. Without padding run_ld reads unchecked: rows past the image
  // (only unstored rows get them) are clamped into it; otherwise run_ld tests every row.
  let y0 = r0.y;
  var ylim = 0x7fffffff;
  if (NO_PAD) { ylim = i32(p.h) - 1; }
  let nq0 = p.k / (3u * RUNW);
  for (var q0 = 0u; q0 < nq0; q0++) {
    let rb = i32(q0 * st.bs0);
    let t0 = run_six(r0, rb, min(y0, ylim));
    let t1 = run_six(r0, rb, min(y0 + 1, ylim));
    let t2 = run_six(r0, rb, min(y0 + 2, ylim));
    let t3 = run_six(r0, rb, min(y0 + 3, ylim));
    let t4 = run_six(r0, rb, min(y0 + 4, ylim));
    let t5 = run_six(r0, rb, min(y0 + 5, ylim));
    let ko = q0 * st.as0;
    let kp = q0 * 3u * RUNW;
    rows_ky(row, ms, ko, kp, t0, t1, t2, t3);
    rows_ky(row, ms, ko + st.a1, kp + RUNW, t1, t2, t3, t4);
    rows_ky(row, ms, ko + 2u * st.a1, kp + 2u * RUNW, t2, t3, t4, t5);
  }
  let m0 = wid.y * BM + lid.y;
  store_run_group(r0, m0, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15);
  store_run_group(rows_loc(rn, 1u), m0, d0, d1, d2, d3, d4, d5, d6, d7,
                  d8, d9, d10, d11, d12, d13, d14, d15);
  store_run_group(rows_loc(rn, 2u), m0, e0, e1, e2, e3, e4, e5, e6, e7,
                  e8, e9, e10, e11, e12, e13, e14, e15);
  store_run_group(rows_loc(rn, 3u), m0, f0, f1, f2, f3, f4, f5, f6, f7,
                  f8, f9, f10, f11, f12, f13, f14, f15);
}

// TRIO (RUN3 in mode 2, APACK, TY = 1, RM = 16): the same columns, depths and loads as
// tri_main, with the outer product turned around: the packed dy values of a depth are four vec4s
// over rows o (q = 0..3: o = r + 4q .. r + 4q + 3), each multiplied by the three input values of
// a triple (kx = 0..2). 12 vec4 multiply-adds per triple and depth, every lane used, instead of
// 16 with a fourth lane of zeros. Group g's accumulator kx·4 + q holds dW[r + 4q + i][t, kx]
// (letters c, d, e, f for the four triples). Same sums in the same order as tri_main.
fn tri4_c(w0: f32, w1: f32, w2: f32, q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f) {
  c0 = fma(q0, vec4f(w0), c0); c1 = fma(q1, vec4f(w0), c1);
  c2 = fma(q2, vec4f(w0), c2); c3 = fma(q3, vec4f(w0), c3);
  c4 = fma(q0, vec4f(w1), c4); c5 = fma(q1, vec4f(w1), c5);
  c6 = fma(q2, vec4f(w1), c6); c7 = fma(q3, vec4f(w1), c7);
  c8 = fma(q0, vec4f(w2), c8); c9 = fma(q1, vec4f(w2), c9);
  c10 = fma(q2, vec4f(w2), c10); c11 = fma(q3, vec4f(w2), c11);
}

fn tri4_d(w0: f32, w1: f32, w2: f32, q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f) {
  d0 = fma(q0, vec4f(w0), d0); d1 = fma(q1, vec4f(w0), d1);
  d2 = fma(q2, vec4f(w0), d2); d3 = fma(q3, vec4f(w0), d3);
  d4 = fma(q0, vec4f(w1), d4); d5 = fma(q1, vec4f(w1), d5);
  d6 = fma(q2, vec4f(w1), d6); d7 = fma(q3, vec4f(w1), d7);
  d8 = fma(q0, vec4f(w2), d8); d9 = fma(q1, vec4f(w2), d9);
  d10 = fma(q2, vec4f(w2), d10); d11 = fma(q3, vec4f(w2), d11);
}

fn tri4_e(w0: f32, w1: f32, w2: f32, q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f) {
  e0 = fma(q0, vec4f(w0), e0); e1 = fma(q1, vec4f(w0), e1);
  e2 = fma(q2, vec4f(w0), e2); e3 = fma(q3, vec4f(w0), e3);
  e4 = fma(q0, vec4f(w1), e4); e5 = fma(q1, vec4f(w1), e5);
  e6 = fma(q2, vec4f(w1), e6); e7 = fma(q3, vec4f(w1), e7);
  e8 = fma(q0, vec4f(w2), e8); e9 = fma(q1, vec4f(w2), e9);
  e10 = fma(q2, vec4f(w2), e10); e11 = fma(q3, vec4f(w2), e11);
}

fn tri4_f(w0: f32, w1: f32, w2: f32, q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f) {
  f0 = fma(q0, vec4f(w0), f0); f1 = fma(q1, vec4f(w0), f1);
  f2 = fma(q2, vec4f(w0), f2); f3 = fma(q3, vec4f(w0), f3);
  f4 = fma(q0, vec4f(w1), f4); f5 = fma(q1, vec4f(w1), f5);
  f6 = fma(q2, vec4f(w1), f6); f7 = fma(q3, vec4f(w1), f7);
  f8 = fma(q0, vec4f(w2), f8); f9 = fma(q1, vec4f(w2), f9);
  f10 = fma(q2, vec4f(w2), f10); f11 = fma(q3, vec4f(w2), f11);
}

// The fifth triple of a thread (columns t0 + 4·TX): accumulators c12..c15 (kx = 0), d12..d15
// (kx = 1), e12..e15 (kx = 2), the slots the four-row groups leave free.
fn tri4_g(w0: f32, w1: f32, w2: f32, q0: vec4f, q1: vec4f, q2: vec4f, q3: vec4f) {
  c12 = fma(q0, vec4f(w0), c12); c13 = fma(q1, vec4f(w0), c13);
  c14 = fma(q2, vec4f(w0), c14); c15 = fma(q3, vec4f(w0), c15);
  d12 = fma(q0, vec4f(w1), d12); d13 = fma(q1, vec4f(w1), d13);
  d14 = fma(q2, vec4f(w1), d14); d15 = fma(q3, vec4f(w1), d15);
  e12 = fma(q0, vec4f(w2), e12); e13 = fma(q1, vec4f(w2), e13);
  e14 = fma(q2, vec4f(w2), e14); e15 = fma(q3, vec4f(w2), e15);
}

// dW rows m .. m + 3 (one o-quad) at column (t, kx).
fn tri4_store(v: vec4f, m: u32, t: u32, kx: u32, z: u32) {
  if (t >= p.cin * p.kh) { return; }
  for (var i = 0u; i < 4u; i++) {
    if (m + i < p.m) {
      let at = (z * p.m + m + i) * p.n + 3u * t + kx;
      var o = v[i];
      if (p.beta != 0.0) { o += p.beta * out[at]; }
      out[at] = o;
    }
  }
}

fn tri4_store_group(t: u32, r: u32, z: u32, v0: vec4f, v1: vec4f, v2: vec4f, v3: vec4f,
                    v4: vec4f, v5: vec4f, v6: vec4f, v7: vec4f, v8: vec4f, v9: vec4f, v10: vec4f,
                    v11: vec4f) {
  tri4_store(v0, r, t, 0u, z); tri4_store(v1, r + 4u, t, 0u, z);
  tri4_store(v2, r + 8u, t, 0u, z); tri4_store(v3, r + 12u, t, 0u, z);
  tri4_store(v4, r, t, 1u, z); tri4_store(v5, r + 4u, t, 1u, z);
  tri4_store(v6, r + 8u, t, 1u, z); tri4_store(v7, r + 12u, t, 1u, z);
  tri4_store(v8, r, t, 2u, z); tri4_store(v9, r + 4u, t, 2u, z);
  tri4_store(v10, r + 8u, t, 2u, z); tri4_store(v11, r + 12u, t, 2u, z);
}

fn tri4_main(wid: vec3u, lid: vec3u) {
  // CN = 4: five triples per thread, t0 + j·TX (j < 5).
  let t0 = wid.x * 5u * TX + lid.x;
  let l0 = tri_loc(t0);
  let l1 = tri_loc(t0 + TX);
  let l2 = tri_loc(t0 + 2u * TX);
  let l3 = tri_loc(t0 + 3u * TX);
  let l4 = tri_loc(t0 + 4u * TX);
  let row = wid.y * BM;
  let mpad4 = (p.m + 3u) / 4u;
  let ohw = p.oh * p.ow;
  let kbeg = wid.z * p.kchunk;
  let kend = min(p.k, kbeg + p.kchunk);
  for (var kr = kbeg; kr < kend; kr += p.ow) {
    let b = kr / ohw;
    let oy = (kr % ohw) / p.ow;
    let base = i32(b * p.cin * p.h * p.w);
    let y0 = i32(oy * p.sh) - i32(p.ph) + l0.y;
    let y1 = i32(oy * p.sh) - i32(p.ph) + l1.y;
    let y2 = i32(oy * p.sh) - i32(p.ph) + l2.y;
    let y3 = i32(oy * p.sh) - i32(p.ph) + l3.y;
    let y4 = i32(oy * p.sh) - i32(p.ph) + l4.y;
    let x0 = -i32(p.pw);
    var w00 = tri_ld(base + l0.x, y0, x0);
    var w01 = tri_ld(base + l0.x, y0, x0 + 1);
    var w10 = tri_ld(base + l1.x, y1, x0);
    var w11 = tri_ld(base + l1.x, y1, x0 + 1);
    var w20 = tri_ld(base + l2.x, y2, x0);
    var w21 = tri_ld(base + l2.x, y2, x0 + 1);
    var w30 = tri_ld(base + l3.x, y3, x0);
    var w31 = tri_ld(base + l3.x, y3, x0 + 1);
    var w40 = tri_ld(base + l4.x, y4, x0);
    var w41 = tri_ld(base + l4.x, y4, x0 + 1);
    for (var ox = 0u; ox < p.ow; ox++) {
      let xn = x0 + i32(ox) + 2;
      let qa = ((kr + ox) * mpad4 * 4u + row) / 4u;
      let q0 = ap[qa];
      let q1 = ap[qa + 1u];
      let q2 = ap[qa + 2u];
      let q3 = ap[qa + 3u];
      let w02 = tri_ld(base + l0.x, y0, xn);
      tri4_c(w00, w01, w02, q0, q1, q2, q3);
      w00 = w01;
      w01 = w02;
      let w12 = tri_ld(base + l1.x, y1, xn);
      tri4_d(w10, w11, w12, q0, q1, q2, q3);
      w10 = w11;
      w11 = w12;
      let w22 = tri_ld(base + l2.x, y2, xn);
      tri4_e(w20, w21, w22, q0, q1, q2, q3);
      w20 = w21;
      w21 = w22;
      let w32 = tri_ld(base + l3.x, y3, xn);
      tri4_f(w30, w31, w32, q0, q1, q2, q3);
      w30 = w31;
      w31 = w32;
      let w42 = tri_ld(base + l4.x, y4, xn);
      tri4_g(w40, w41, w42, q0, q1, q2, q3);
      w40 = w41;
      w41 = w42;
    }
  }
  tri4_store_group(t0, row, wid.z, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11);
  tri4_store_group(t0 + TX, row, wid.z, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11);
  tri4_store_group(t0 + 2u * TX, row, wid.z, e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11);
  tri4_store_group(t0 + 3u * TX, row, wid.z, f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11);
  tri4_store_group(t0 + 4u * TX, row, wid.z, c12, c13, c14, c15, d12, d13, d14, d15, e12, e13,
                   e14, e15);
}

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  if (RUN3 && TRIO && APACK && !SHARED && MODE == 2u && TY == 1u && RM == 16u && CN == 4u) {
    tri4_main(wid, lid);
    return;
  }
  if (RUN3 && !SHARED && MODE == 2u) {
    tri_main(wid, lid);
    return;
  }
  if (RUN3 && ROWS && !SHARED && MODE == 0u && CN == 4u) {
    run_rows_main(wid, lid);
    return;
  }
  if (RUN3 && !SHARED && MODE != 2u) {
    run_main(wid, lid);
    return;
  }
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  var kbeg = 0u;
  var kend = p.k;
  if (MODE == 2u) {
    kbeg = wid.z * p.kchunk;
    kend = min(p.k, kbeg + p.kchunk);
  }
  if (SHARED) {
    let lin = lid.y * TX + lid.x;
    // This thread's fixed B column and its fixed k offset in the A slab.
    let bcol = lin % BN;
    let cl = col_loc(col0 + bcol);
    let akk = lin % BK;
    let ms = a_mstride();
    for (var k0 = kbeg; k0 < kend; k0 += BK) {
      let koff = a_koff(k0 + akk);
      let kin = k0 + akk < kend;
      for (var e = lin; e < BK * BM; e += NT) {
        let mm = e / BK;
        let m = row0 + mm;
        var v = 0.0;
        if (kin && m < p.m) { v = a[m * ms + koff]; }
        As[akk * BM + mm] = v;
      }
      for (var e = lin; e < BK * BN; e += NT) {
        let kk = e / BN;
        Bs[kk * BN + bcol] = gather(cl, row_loc(k0 + kk, kend));
      }
      workgroupBarrier();
      for (var kk = 0u; kk < BK; kk++) {
        let bi = kk * BN + lid.x;
        let b = vec4f(Bs[bi], Bs[bi + TX], Bs[bi + 2u * TX], Bs[bi + 3u * TX]);
        let t = lid.y;
        update(b, sa(0u, kk, t), sa(1u, kk, t), sa(2u, kk, t), sa(3u, kk, t), sa(4u, kk, t),
               sa(5u, kk, t), sa(6u, kk, t), sa(7u, kk, t), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
      }
      workgroupBarrier();
    }
  } else {
    let cl0 = col_loc(col0 + lid.x);
    let cl1 = col_loc(col0 + lid.x + 1u * TX);
    let cl2 = col_loc(col0 + lid.x + 2u * TX);
    let cl3 = col_loc(col0 + lid.x + 3u * TX);
    let cl4 = col_loc(col0 + lid.x + 4u * TX);
    let cl5 = col_loc(col0 + lid.x + 5u * TX);
    let cl6 = col_loc(col0 + lid.x + 6u * TX);
    let cl7 = col_loc(col0 + lid.x + 7u * TX);
    let cl8 = col_loc(col0 + lid.x + 8u * TX);
    let cl9 = col_loc(col0 + lid.x + 9u * TX);
    let cl10 = col_loc(col0 + lid.x + 10u * TX);
    let cl11 = col_loc(col0 + lid.x + 11u * TX);
    let cl12 = col_loc(col0 + lid.x + 12u * TX);
    let cl13 = col_loc(col0 + lid.x + 13u * TX);
    let cl14 = col_loc(col0 + lid.x + 14u * TX);
    let cl15 = col_loc(col0 + lid.x + 15u * TX);
    let ms = a_mstride();
    let r = row0 + lid.y;
    // k = (q0, q1, q2) is decoded once and then stepped with counters: integer division by a
    // runtime value is a scalar loop over the SIMD lanes on CPU adapters, and row_loc/a_koff
    // would cost six of them per k.
    let st = row_steps();
    var q0 = kbeg / (st.l1 * st.l2);
    var q1 = (kbeg % (st.l1 * st.l2)) / st.l2;
    var q2 = kbeg % st.l2;
    for (var k = kbeg; k < kend; k++) {
      let rl = Loc(i32(q0 * st.bs0), i32(q1 * st.sy), i32(q2 * st.sx), true);
      let ko = q0 * st.as0 + q1 * st.a1 + q2;
      let av = a_vals(r, ms, ko, k);
      let a0 = av.a0; let a1 = av.a1; let a2 = av.a2; let a3 = av.a3;
      let a4 = av.a4; let a5 = av.a5; let a6 = av.a6; let a7 = av.a7;
      let a8 = av.a8; let a9 = av.a9; let a10 = av.a10; let a11 = av.a11;
      let a12 = av.a12; let a13 = av.a13; let a14 = av.a14; let a15 = av.a15;
      let b0 = vec4f(gather(cl0, rl), gather(cl1, rl), gather(cl2, rl), gather(cl3, rl));
      update(b0, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
      if (CN > 1u) {
        let b1 = vec4f(gather(cl4, rl), gather(cl5, rl), gather(cl6, rl), gather(cl7, rl));
        update_d(b1, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
      }
      if (CN > 2u) {
        let b2 = vec4f(gather(cl8, rl), gather(cl9, rl), gather(cl10, rl), gather(cl11, rl));
        update_e(b2, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
      }
      if (CN > 3u) {
        let b3 = vec4f(gather(cl12, rl), gather(cl13, rl), gather(cl14, rl), gather(cl15, rl));
        update_f(b3, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15);
      }
      q2++;
      if (q2 == st.l2) {
        q2 = 0u;
        q1++;
        if (q1 == st.l1) {
          q1 = 0u;
          q0++;
        }
      }
    }
  }
  let m0 = row0 + lid.y;
  let col = col0 + lid.x;
  store_group(0u, m0, col, wid.z, c0, c1, c2, c3, c4, c5, c6, c7,
              c8, c9, c10, c11, c12, c13, c14, c15);
  if (CN > 1u) { store_group(1u, m0, col, wid.z, d0, d1, d2, d3, d4, d5, d6, d7,
                 d8, d9, d10, d11, d12, d13, d14, d15); }
  if (CN > 2u) { store_group(2u, m0, col, wid.z, e0, e1, e2, e3, e4, e5, e6, e7,
                 e8, e9, e10, e11, e12, e13, e14, e15); }
  if (CN > 3u) { store_group(3u, m0, col, wid.z, f0, f1, f2, f3, f4, f5, f6, f7,
                 f8, f9, f10, f11, f12, f13, f14, f15); }
}

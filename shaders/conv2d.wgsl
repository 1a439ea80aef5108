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
// BM = RM·TY rows and BN = 4·TX columns; thread (tx, ty) owns rows ty + i·TY (i < RM <= 8) and
// columns tx + j·TX (j < 4), so neighbouring threads write neighbouring columns (n is the
// contiguous spatial index of y / dx). K advances BK at a time. Two ways to feed the registers
// (override SHARED), as in shaders/matmul.wgsl:
// - SHARED (GPUs): the BM × BK slab of A and the BK × BN slab of B are staged in workgroup memory
//   (k-major), each thread loading fixed columns (BN divides TX·TY, so a thread's B column and its
//   decode never change) and fixed k offsets within a slab (BK divides TX·TY); two barriers per
//   slab; the inner loop reads As broadcast and Bs consecutively.
// - !SHARED (CPU adapters: Mesa llvmpipe runs the x threads as SIMD lanes and makes barriers
//   coroutine switches, so staging only adds copies): each thread reads its RM A values and 4
//   gathered B values for each k straight from the storage buffers, decoding k once for all 4.
// Out-of-range rows/columns/depths read 0 (both operands, so no 0·NaN reaches a stored output).
// Measured (bench loop of 20 dispatches, one submit): H100 through Vulkan, SHARED, forward of
// x (128, 64, 32, 32), W (64, 64, 3, 3), pad 1: 1.6 ms, 6.1 TFLOP/s, ahead of src/ops/matmul.ts on
// the same GEMM shape (2.0 ms); llvmpipe (2 cores), !SHARED: within 1.5-3x of that matmul.

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

override MODE: u32 = 0u;
override SHARED: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override RM: u32 = 4u; // rows per thread, 1..8
override BK: u32 = 16u; // depth of a staged slab (SHARED); divides TX·TY
override HAS_BIAS: bool = false;
override UNIT_STRIDE: bool = false; // sh = sw = 1: mode 1 skips its divisibility tests

override BM: u32 = RM * TY;
override BN: u32 = 4u * TX; // four columns per thread
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

// Accumulators: ci holds row i's four columns (tx + j·TX, j < 4) as a vec4. Named variables
// rather than an array: llvmpipe keeps a dynamically indexed private array in memory, turning
// every FMA into a load and a store.
var<private> c0: vec4f;
var<private> c1: vec4f;
var<private> c2: vec4f;
var<private> c3: vec4f;
var<private> c4: vec4f;
var<private> c5: vec4f;
var<private> c6: vec4f;
var<private> c7: vec4f;

// Rank-1 update of every row block with the A values av (rows i < RM; the guards fold away).
fn update(av0: f32, av1: f32, av2: f32, av3: f32, av4: f32, av5: f32, av6: f32, av7: f32, b: vec4f) {
  c0 = fma(vec4f(av0), b, c0);
  if (RM > 1u) { c1 = fma(vec4f(av1), b, c1); }
  if (RM > 2u) { c2 = fma(vec4f(av2), b, c2); }
  if (RM > 3u) { c3 = fma(vec4f(av3), b, c3); }
  if (RM > 4u) { c4 = fma(vec4f(av4), b, c4); }
  if (RM > 5u) { c5 = fma(vec4f(av5), b, c5); }
  if (RM > 6u) { c6 = fma(vec4f(av6), b, c6); }
  if (RM > 7u) { c7 = fma(vec4f(av7), b, c7); }
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
      out[at] = r;
    }
  }
}

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
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
        update(sa(0u, kk, t), sa(1u, kk, t), sa(2u, kk, t), sa(3u, kk, t), sa(4u, kk, t),
               sa(5u, kk, t), sa(6u, kk, t), sa(7u, kk, t), b);
      }
      workgroupBarrier();
    }
  } else {
    let cl0 = col_loc(col0 + lid.x);
    let cl1 = col_loc(col0 + lid.x + TX);
    let cl2 = col_loc(col0 + lid.x + 2u * TX);
    let cl3 = col_loc(col0 + lid.x + 3u * TX);
    let ms = a_mstride();
    let r = row0 + lid.y;
    for (var k = kbeg; k < kend; k++) {
      let rl = row_loc(k, kend);
      let ko = a_koff(k);
      let b = vec4f(gather(cl0, rl), gather(cl1, rl), gather(cl2, rl), gather(cl3, rl));
      update(ga(0u, r, ms, ko), ga(1u, r, ms, ko), ga(2u, r, ms, ko), ga(3u, r, ms, ko),
             ga(4u, r, ms, ko), ga(5u, r, ms, ko), ga(6u, r, ms, ko), ga(7u, r, ms, ko), b);
    }
  }
  let m0 = row0 + lid.y;
  let col = col0 + lid.x;
  store_row(c0, m0, col, wid.z);
  if (RM > 1u) { store_row(c1, m0 + TY, col, wid.z); }
  if (RM > 2u) { store_row(c2, m0 + 2u * TY, col, wid.z); }
  if (RM > 3u) { store_row(c3, m0 + 3u * TY, col, wid.z); }
  if (RM > 4u) { store_row(c4, m0 + 4u * TY, col, wid.z); }
  if (RM > 5u) { store_row(c5, m0 + 5u * TY, col, wid.z); }
  if (RM > 6u) { store_row(c6, m0 + 6u * TY, col, wid.z); }
  if (RM > 7u) { store_row(c7, m0 + 7u * TY, col, wid.z); }
}

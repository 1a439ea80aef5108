// Tiled matrix multiply with a fused epilogue:
//
//   C = act(alpha · op(A) op(B) + bias + beta · C_old)
//
// op(A) is A stored (M, K), or Aᵀ with A stored (K, M) when TRANS_A; op(B) is B stored (K, N),
// or Bᵀ with B stored (N, K) when TRANS_B. bias is (N,), broadcast over rows. An optional
// leading batch dimension runs on workgroup z, with element strides sa, sb, sc between batch
// items (sb = 0 shares one B across the batch). act: 0 none, 1 relu, 2 tanh, 3 sigmoid,
// 4 leaky relu (slope · v for v < 0).
//
// Threading plan. A workgroup of TX × TY threads computes a BM × BN block of C, with
// BM = 4·RM·TY and BN = 4·RN·TX. Each thread keeps RM × RN register blocks of 4 × 4 outputs as
// mat4x4f accumulators (register blocking). Row block i of thread (tx, ty) starts at row
// row0 + 4·(ty + i·TY), column block j at column col0 + 4·(tx + j·TX): blocks interleave so
// that neighbouring threads touch neighbouring memory. K advances four values ("a k-quad") at
// a time: a 4 × 4 block of op(A) and one of op(B) are four vec4 loads each, and the rank-4
// update C_ij += A_i · B_j is 64 FMAs; per k-quad a thread makes 4·(RM + RN) vec4 loads for
// 64·RM·RN FMAs.
//
// Two ways to feed the registers, chosen per device with the SHARED override:
// - SHARED (GPUs): the classic workgroup-memory tiling (Volkov & Demmel, "Benchmarking GPUs
//   to tune dense linear algebra", SC 2008; the CUTLASS "Efficient GEMM in CUDA" notes). A
//   BM × BK slab of op(A) and a BK × BN slab of op(B) are staged in workgroup memory with
//   coalesced vec4 copies (layouts at fillSlab), so that in the inner loop the threads of a
//   warp read few distinct As addresses (broadcast) and consecutive Bs vec4s; two barriers
//   per slab. Used with 32 × 8 threads of 8 × 4 outputs (64 × 128 slabs), or 16 × 16 threads
//   of 4 × 4 for small products: ~12 TFLOP/s fp32 on an H100 through Vulkan at n ≥ 2048,
//   where 8 × 8 outputs per thread ran at half that (register pressure, lower occupancy).
// - !SHARED (CPU adapters, e.g. Mesa llvmpipe/lavapipe): operands are read straight from the
//   storage buffers through the CPU caches. llvmpipe runs 8 invocations in the lanes of one
//   256-bit register and turns every load whose address differs between lanes into a scalar
//   loop over the lanes, and every barrier into a coroutine switch; its workgroup memory is
//   ordinary memory, so staging would only add loads, stores and switches. The x threads are
//   the lanes: they share A rows and differ in B columns. Loads, not FMAs, bound this path,
//   hence the large 16 × 16 register tile (RM = RN = 4) it is used with.
//
// Bounds. Row and column indices past M, N are clamped (or read harmlessly past the end of a
// row) and their outputs are never stored. Values of the last, partial k-quad or slab with
// k >= K are zeroed in both operands, so nothing read past K reaches a stored output, not even
// as 0 · NaN. ALIGN_A / ALIGN_B promise that every vec4 read of that operand starts on a
// 16-byte boundary (row-major A: K % 4 == 0; Aᵀ: M % 4 == 0; likewise B; batch strides too);
// otherwise each vec4 is assembled from the two aligned vec4s that cover it.

struct Params { m: u32, n: u32, k: u32, sa: u32, sb: u32, sc: u32, alpha: f32, beta: f32, slope: f32 }

@group(0) @binding(0) var<storage, read> a: array<vec4f>; // (batch, M, K) or (batch, K, M)
@group(0) @binding(1) var<storage, read> b: array<vec4f>; // (batch?, K, N) or (batch?, N, K)
@group(0) @binding(2) var<storage, read_write> c: array<f32>; // (batch, M, N)
@group(0) @binding(3) var<storage, read> bias: array<f32>; // (N,); any buffer if !HAS_BIAS
@group(0) @binding(4) var<uniform> p: Params;

// NOTE: every override is declared here, before any function: naga 29 (Deno 2.9) panics
// (handlevec.rs assertion) on an override declared after a function that uses it.
override TRANS_A: bool = false;
override TRANS_B: bool = false;
override ALIGN_A: bool = true;
override ALIGN_B: bool = true;
override SHARED: bool = true;
override TX: u32 = 16u;
override TY: u32 = 16u;
override RM: u32 = 2u; // 4-row blocks per thread, 1..4
override RN: u32 = 2u; // 4-column blocks per thread, 1..4
override BK: u32 = 16u; // K slab staged per barrier (SHARED), multiple of 4
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;

override BM: u32 = 4u * RM * TY;
override BN: u32 = 4u * RN * TX;
override BMQ: u32 = RM * TY; // vec4s across one k-row of the A slab
override BNQ: u32 = RN * TX;
override KQS: u32 = BK / 4u; // vec4s across one row of a row-major A slab
var<workgroup> As: array<vec4f, BK * RM * TY>; // A slab, BM × BK floats (layout below)
var<workgroup> Bs: array<vec4f, BK * RN * TX>; // B slab, BK × BN floats

// Accumulators: block (i, j) is cij; column q of the matrix is output column 4(tx + j·TX) + q.
var<private> c00: mat4x4f;
var<private> c01: mat4x4f;
var<private> c02: mat4x4f;
var<private> c03: mat4x4f;
var<private> c10: mat4x4f;
var<private> c11: mat4x4f;
var<private> c12: mat4x4f;
var<private> c13: mat4x4f;
var<private> c20: mat4x4f;
var<private> c21: mat4x4f;
var<private> c22: mat4x4f;
var<private> c23: mat4x4f;
var<private> c30: mat4x4f;
var<private> c31: mat4x4f;
var<private> c32: mat4x4f;
var<private> c33: mat4x4f;

// The vec4 starting at element s of [lo, hi] (s in 0..3).
fn unaligned(lo: vec4f, hi: vec4f, s: u32) -> vec4f {
  let v1 = vec4f(lo.yzw, hi.x);
  let v2 = vec4f(lo.zw, hi.xy);
  let v3 = vec4f(lo.w, hi.xyz);
  return select(select(select(v3, v2, s == 2u), v1, s == 1u), lo, s == 0u);
}

// Elements i .. i+3 of a / b.
fn lda(i: u32) -> vec4f {
  let q = i >> 2u;
  if (ALIGN_A) {
    return a[q];
  }
  return unaligned(a[q], a[q + 1u], i & 3u);
}

fn ldb(i: u32) -> vec4f {
  let q = i >> 2u;
  if (ALIGN_B) {
    return b[q];
  }
  return unaligned(b[q], b[q + 1u], i & 3u);
}

// op(A)[r0 .. r0+3, k0 .. k0+3] from global memory; column q holds k = k0 + q.
fn globalA(r0: u32, k0: u32, off: u32) -> mat4x4f {
  if (TRANS_A) {
    let i = off + k0 * p.m + r0;
    return mat4x4f(lda(i), lda(i + p.m), lda(i + 2u * p.m), lda(i + 3u * p.m));
  }
  let last = p.m - 1u;
  let i = off + k0;
  return transpose(mat4x4f(
    lda(i + min(r0, last) * p.k),
    lda(i + min(r0 + 1u, last) * p.k),
    lda(i + min(r0 + 2u, last) * p.k),
    lda(i + min(r0 + 3u, last) * p.k),
  ));
}

// op(B)[k0 .. k0+3, c0 .. c0+3] from global memory; column q holds output column c0 + q.
fn globalB(k0: u32, c0: u32, off: u32) -> mat4x4f {
  if (TRANS_B) {
    let last = p.n - 1u;
    let i = off + k0;
    return mat4x4f(
      ldb(i + min(c0, last) * p.k),
      ldb(i + min(c0 + 1u, last) * p.k),
      ldb(i + min(c0 + 2u, last) * p.k),
      ldb(i + min(c0 + 3u, last) * p.k),
    );
  }
  let i = off + k0 * p.n + c0;
  return transpose(mat4x4f(ldb(i), ldb(i + p.n), ldb(i + 2u * p.n), ldb(i + 3u * p.n)));
}

// Zero the k >= K part of an A block (columns) and of a B block (components).
fn maskA(x: mat4x4f, k0: u32) -> mat4x4f {
  let z = vec4f(0.0);
  return mat4x4f(
    select(x[0], z, k0 >= p.k),
    select(x[1], z, k0 + 1u >= p.k),
    select(x[2], z, k0 + 2u >= p.k),
    select(x[3], z, k0 + 3u >= p.k),
  );
}

fn maskB(x: mat4x4f, k0: u32) -> mat4x4f {
  let keep = vec4<bool>(k0 < p.k, k0 + 1u < p.k, k0 + 2u < p.k, k0 + 3u < p.k);
  let z = vec4f(0.0);
  return mat4x4f(select(z, x[0], keep), select(z, x[1], keep), select(z, x[2], keep), select(z, x[3], keep));
}

// acc + x·y, column by column as FMAs (x: 4 rows × 4 k, y: 4 k × 4 columns).
fn mmaCol(acc: vec4f, x: mat4x4f, y: vec4f) -> vec4f {
  return fma(x[3], vec4f(y.w), fma(x[2], vec4f(y.z), fma(x[1], vec4f(y.y), fma(x[0], vec4f(y.x), acc))));
}

fn mma(acc: mat4x4f, x: mat4x4f, y: mat4x4f) -> mat4x4f {
  return mat4x4f(mmaCol(acc[0], x, y[0]), mmaCol(acc[1], x, y[1]), mmaCol(acc[2], x, y[2]), mmaCol(acc[3], x, y[3]));
}

// One k-quad of rank-4 updates for every register block (blocks beyond RM, RN fold away).
fn update(x0: mat4x4f, x1: mat4x4f, x2: mat4x4f, x3: mat4x4f, y0: mat4x4f, y1: mat4x4f, y2: mat4x4f, y3: mat4x4f) {
  c00 = mma(c00, x0, y0);
  if (RN > 1u) { c01 = mma(c01, x0, y1); }
  if (RN > 2u) { c02 = mma(c02, x0, y2); }
  if (RN > 3u) { c03 = mma(c03, x0, y3); }
  if (RM > 1u) {
    c10 = mma(c10, x1, y0);
    if (RN > 1u) { c11 = mma(c11, x1, y1); }
    if (RN > 2u) { c12 = mma(c12, x1, y2); }
    if (RN > 3u) { c13 = mma(c13, x1, y3); }
  }
  if (RM > 2u) {
    c20 = mma(c20, x2, y0);
    if (RN > 1u) { c21 = mma(c21, x2, y1); }
    if (RN > 2u) { c22 = mma(c22, x2, y2); }
    if (RN > 3u) { c23 = mma(c23, x2, y3); }
  }
  if (RM > 3u) {
    c30 = mma(c30, x3, y0);
    if (RN > 1u) { c31 = mma(c31, x3, y1); }
    if (RN > 2u) { c32 = mma(c32, x3, y2); }
    if (RN > 3u) { c33 = mma(c33, x3, y3); }
  }
}

// !SHARED: one k-quad straight from global memory. rb, cb: first row / column of block 0.
fn stepGlobal(k0: u32, rb: u32, cb: u32, oa: u32, ob: u32) {
  var x0 = globalA(rb, k0, oa);
  var x1 = mat4x4f();
  var x2 = mat4x4f();
  var x3 = mat4x4f();
  if (RM > 1u) { x1 = globalA(rb + 4u * TY, k0, oa); }
  if (RM > 2u) { x2 = globalA(rb + 8u * TY, k0, oa); }
  if (RM > 3u) { x3 = globalA(rb + 12u * TY, k0, oa); }
  var y0 = globalB(k0, cb, ob);
  var y1 = mat4x4f();
  var y2 = mat4x4f();
  var y3 = mat4x4f();
  if (RN > 1u) { y1 = globalB(k0, cb + 4u * TX, ob); }
  if (RN > 2u) { y2 = globalB(k0, cb + 8u * TX, ob); }
  if (RN > 3u) { y3 = globalB(k0, cb + 12u * TX, ob); }
  // Branch-free masking of the last k-quad: a branch would get the loop unswitched, i.e.
  // duplicated, which doubles compile time on CPU adapters for ~3% of selects saved.
  update(maskA(x0, k0), maskA(x1, k0), maskA(x2, k0), maskA(x3, k0),
    maskB(y0, k0), maskB(y1, k0), maskB(y2, k0), maskB(y3, k0));
}

// SHARED slab layouts (vec4 units). As keeps A's own orientation, so that filling it is a
// straight, coalesced vec4 copy: row-major A as [BM rows][BK/4] (vec4 over k), Aᵀ as
// [BK][BM/4] (vec4 over rows). Bs is always [BK][BN/4] (vec4 over columns): a copy for B, a
// transposing scatter for Bᵀ (whose columns would otherwise be read with a stride that puts
// a quarter-warp on one bank).
// op(A) block at row group g (rows 4g .. 4g+3 of the slab) and local k-quad kq.
fn sharedA(kq: u32, g: u32) -> mat4x4f {
  if (TRANS_A) {
    let i = 4u * kq * BMQ + g;
    return mat4x4f(As[i], As[i + BMQ], As[i + 2u * BMQ], As[i + 3u * BMQ]);
  }
  let i = 4u * g * KQS + kq;
  return transpose(mat4x4f(As[i], As[i + KQS], As[i + 2u * KQS], As[i + 3u * KQS]));
}

// op(B) block at column group g and local k-quad kq.
fn sharedB(kq: u32, g: u32) -> mat4x4f {
  let i = 4u * kq * BNQ + g;
  return transpose(mat4x4f(Bs[i], Bs[i + BNQ], Bs[i + 2u * BNQ], Bs[i + 3u * BNQ]));
}

// Zero the components of a vec4 over k = k0 .. k0+3 that lie at or past K.
fn maskK(v: vec4f, k0: u32) -> vec4f {
  return select(vec4f(0.0), v, vec4<bool>(k0 < p.k, k0 + 1u < p.k, k0 + 2u < p.k, k0 + 3u < p.k));
}

// SHARED: stage the BK-deep slab starting at k = t0, one global vec4 per step, consecutive
// threads on consecutive vec4s of the operand's contiguous dimension.
fn fillSlab(t0: u32, row0: u32, col0: u32, oa: u32, ob: u32, lin: u32) {
  for (var e = lin; e < BMQ * BK; e += TX * TY) {
    if (TRANS_A) {
      let kk = e / BMQ;
      let v = lda(oa + (t0 + kk) * p.m + row0 + 4u * (e % BMQ));
      As[e] = select(vec4f(0.0), v, t0 + kk < p.k);
    } else {
      let r = min(row0 + e / KQS, p.m - 1u);
      let k0 = t0 + 4u * (e % KQS);
      As[e] = maskK(lda(oa + r * p.k + k0), k0);
    }
  }
  for (var e = lin; e < BNQ * BK; e += TX * TY) {
    if (TRANS_B) {
      let col = e / KQS;
      let kq = e % KQS;
      let k0 = t0 + 4u * kq;
      let v = maskK(ldb(ob + min(col0 + col, p.n - 1u) * p.k + k0), k0);
      let i = 4u * kq * BNQ + col / 4u;
      let q = col % 4u;
      Bs[i][q] = v.x;
      Bs[i + BNQ][q] = v.y;
      Bs[i + 2u * BNQ][q] = v.z;
      Bs[i + 3u * BNQ][q] = v.w;
    } else {
      let kk = e / BNQ;
      let v = ldb(ob + (t0 + kk) * p.n + col0 + 4u * (e % BNQ));
      Bs[e] = select(vec4f(0.0), v, t0 + kk < p.k);
    }
  }
}

fn activate(v: f32) -> f32 {
  switch ACT {
    case 1u: { return max(v, 0.0); }
    case 2u: {
      // tanh without overflow: e = exp(-2|v|) is in (0, 1].
      let e = exp(-2.0 * abs(v));
      return sign(v) * (1.0 - e) / (1.0 + e);
    }
    case 3u: { return 1.0 / (1.0 + exp(-v)); }
    case 4u: { return select(p.slope * v, v, v >= 0.0); }
    default: { return v; }
  }
}

fn storeBlock(x: mat4x4f, r0: u32, c0: u32, oc: u32) {
  // Runtime trip counts keep this loop rolled: 16 copies of a 16-fold unrolled epilogue
  // would dominate compile time on CPU adapters and run once per thread anyway.
  let cols = min(4u, p.n - min(c0, p.n));
  let rows = min(4u, p.m - min(r0, p.m));
  for (var q = 0u; q < cols; q++) {
    let col = c0 + q;
    var add = 0.0;
    if (HAS_BIAS) { add = bias[col]; }
    for (var i = 0u; i < rows; i++) {
      let at = oc + (r0 + i) * p.n + col;
      var v = p.alpha * x[q][i] + add;
      if (p.beta != 0.0) { v += p.beta * c[at]; }
      c[at] = activate(v);
    }
  }
}

@compute @workgroup_size(TX, TY)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let oa = wid.z * p.sa;
  let ob = wid.z * p.sb;
  let oc = wid.z * p.sc;
  let rb = row0 + 4u * lid.y;
  let cb = col0 + 4u * lid.x;
  if (SHARED) {
    let lin = lid.y * TX + lid.x;
    for (var t0 = 0u; t0 < p.k; t0 += BK) {
      fillSlab(t0, row0, col0, oa, ob, lin);
      workgroupBarrier();
      for (var kq = 0u; kq < BK / 4u; kq++) {
        let x0 = sharedA(kq, lid.y);
        var x1 = mat4x4f();
        var x2 = mat4x4f();
        var x3 = mat4x4f();
        if (RM > 1u) { x1 = sharedA(kq, lid.y + TY); }
        if (RM > 2u) { x2 = sharedA(kq, lid.y + 2u * TY); }
        if (RM > 3u) { x3 = sharedA(kq, lid.y + 3u * TY); }
        let y0 = sharedB(kq, lid.x);
        var y1 = mat4x4f();
        var y2 = mat4x4f();
        var y3 = mat4x4f();
        if (RN > 1u) { y1 = sharedB(kq, lid.x + TX); }
        if (RN > 2u) { y2 = sharedB(kq, lid.x + 2u * TX); }
        if (RN > 3u) { y3 = sharedB(kq, lid.x + 3u * TX); }
        update(x0, x1, x2, x3, y0, y1, y2, y3);
      }
      workgroupBarrier();
    }
  } else {
    for (var k0 = 0u; k0 < p.k; k0 += 4u) {
      stepGlobal(k0, rb, cb, oa, ob);
    }
  }
  let dr = 4u * TY;
  let dc = 4u * TX;
  storeBlock(c00, rb, cb, oc);
  if (RN > 1u) { storeBlock(c01, rb, cb + dc, oc); }
  if (RN > 2u) { storeBlock(c02, rb, cb + 2u * dc, oc); }
  if (RN > 3u) { storeBlock(c03, rb, cb + 3u * dc, oc); }
  if (RM > 1u) {
    storeBlock(c10, rb + dr, cb, oc);
    if (RN > 1u) { storeBlock(c11, rb + dr, cb + dc, oc); }
    if (RN > 2u) { storeBlock(c12, rb + dr, cb + 2u * dc, oc); }
    if (RN > 3u) { storeBlock(c13, rb + dr, cb + 3u * dc, oc); }
  }
  if (RM > 2u) {
    storeBlock(c20, rb + 2u * dr, cb, oc);
    if (RN > 1u) { storeBlock(c21, rb + 2u * dr, cb + dc, oc); }
    if (RN > 2u) { storeBlock(c22, rb + 2u * dr, cb + 2u * dc, oc); }
    if (RN > 3u) { storeBlock(c23, rb + 2u * dr, cb + 3u * dc, oc); }
  }
  if (RM > 3u) {
    storeBlock(c30, rb + 3u * dr, cb, oc);
    if (RN > 1u) { storeBlock(c31, rb + 3u * dr, cb + dc, oc); }
    if (RN > 2u) { storeBlock(c32, rb + 3u * dr, cb + 2u * dc, oc); }
    if (RN > 3u) { storeBlock(c33, rb + 3u * dr, cb + 3u * dc, oc); }
  }
}

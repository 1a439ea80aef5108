import { at } from "./_common";

/**
 * regula's WebAssembly CPU kernels (AssemblyScript, 128-bit SIMD).
 *
 * Row-major single-precision GEMM, `C = alpha · op(A) op(B) + beta · C (+ bias)`
 * with op = N or T for each operand, plus the bias add and the sum over rows
 * (the bias gradient) a Linear layer needs.
 *
 * Plan (the GotoBLAS/BLIS layering: Goto & van de Geijn, "Anatomy of
 * high-performance matrix multiplication", ACM TOMS 34(3), 2008; Van Zee & van
 * de Geijn, "BLIS", ACM TOMS 41(3), 2015):
 *
 *   for jc in N by NC:              B block of NC columns
 *     for pc in K by KC:            pack op(B)[pc:pc+KC, jc:jc+NC] into NR-wide panels
 *       for ic in M by MC:          pack op(A)[ic:ic+MC, pc:pc+KC] into MR-tall panels
 *         for jr in NC by NR:       one B panel (KC x NR, 8 KiB) stays in L1
 *           for ir in MC by MR:     the A block (MC x KC, 96 KiB) stays in L2
 *             micro-kernel: an MR x NR = 6 x 8 tile of C in twelve f32x4
 *             accumulators, one rank-1 update per k (two B vectors, six
 *             splatted A scalars, twelve multiply-adds)
 *
 * The tile is as large as x64 allows: V8 allocates fifteen vector registers
 * (xmm0-14), and 6 x 8 takes twelve accumulators, two B vectors and one splat.
 * With fused multiply-adds (`madd`, the relaxed-SIMD build) no product
 * temporary is needed; the plain-SIMD build needs one and may spill. On this
 * project's Zen 4 machine the 6 x 8 relaxed kernel runs 256-1024 products at
 * about 50 GFLOP/s on one thread, 1.4x the 4 x 8 unfused kernel it replaced
 * (bench/wasm_gemm.ts; 128-bit SIMD peaks at 16 flops per cycle).
 *
 * Packing pads partial panels with zeros, so the micro-kernel always runs the
 * full 6 x 8 tile; edge tiles go through a small buffer and only their valid
 * part is written. beta is applied with the first K block (later blocks add to
 * C), beta = 0 never reads C (BLAS semantics: NaN in C is ignored), and the
 * bias, when given, is added with the first K block too.
 *
 * Every element of C is computed by the same sequence of operations whatever
 * rows or columns a call covers, so splitting a product across threads by rows
 * or by columns gives results bitwise equal to one call.
 *
 * Memory: the host owns all memory (no allocator here). Pointers are byte
 * offsets, strides count elements, `scratch` is `scratchBytes()` bytes private
 * to the calling thread, 16-byte aligned.
 */

// Register tile and cache blocks (KC x NR x 4 B = 8 KiB; MC x KC x 4 B = 96 KiB; MC a multiple of MR).
const MR: i32 = 6;
const NR: i32 = 8;
const KC: i32 = 256;
const MC: i32 = 96;
const NC: i32 = 2048;

const PACK_A_BYTES: usize = <usize>(MC * KC) << 2;
const PACK_B_BYTES: usize = <usize>(KC * NC) << 2;
const TILE_BYTES: usize = <usize>(MR * NR) << 2;

/** Bytes of per-thread scratch `sgemm` needs: packed A block, packed B block, edge tile. */
export function scratchBytes(): usize {
  return PACK_A_BYTES + PACK_B_BYTES + TILE_BYTES;
}

/** First byte the host may use (everything below is the module's static data). */
export function heapBase(): usize {
  return __heap_base;
}

/**
 * Packs op(A)[0:mc, 0:kc] (a points at its first element) into MR-row panels,
 * each laid out k-major: panel[p * MR + r] = op(A)[ir + r, p]. Rows past mc are zero.
 */
function packA(transA: bool, mc: i32, kc: i32, a: usize, lda: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min<i32>(MR, mc - ir);
    if (mr < MR) {
      // A partial panel: rows past mc are zero.
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          const v: f32 = r < mr ? load<f32>(transA ? at(a, p * lda + ir + r) : at(a, (ir + r) * lda + p)) : 0;
          store<f32>(dst + (<usize>r << 2), v);
        }
        dst += MR << 2;
      }
    } else if (transA) {
      // op(A)[i, p] = A[p, i]: the MR = 6 values of one k are adjacent.
      let src = at(a, ir);
      const step = <usize>lda << 2;
      for (let p = 0; p < kc; p++) {
        v128.store(dst, v128.load(src));
        store<u64>(dst, load<u64>(src, 16), 16);
        dst += 24;
        src += step;
      }
    } else {
      // op(A)[i, p] = A[i, p]: rows are contiguous; transpose 4 x 4 blocks of rows 0-3 and
      // interleave rows 4-5 in pairs.
      const r0 = at(a, ir * lda);
      const r1 = at(r0, lda);
      const r2 = at(r1, lda);
      const r3 = at(r2, lda);
      const r4 = at(r3, lda);
      const r5 = at(r4, lda);
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const off = <usize>p << 2;
        const x0 = v128.load(r0 + off);
        const x1 = v128.load(r1 + off);
        const x2 = v128.load(r2 + off);
        const x3 = v128.load(r3 + off);
        const x4 = v128.load(r4 + off);
        const x5 = v128.load(r5 + off);
        const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
        const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
        const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
        const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
        const u0 = f32x4.shuffle(x4, x5, 0, 4, 1, 5);
        const u1 = f32x4.shuffle(x4, x5, 2, 6, 3, 7);
        v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
        v128.store64_lane(dst, u0, 0, 16);
        v128.store(dst, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 24);
        v128.store64_lane(dst, u0, 1, 40);
        v128.store(dst, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 48);
        v128.store64_lane(dst, u1, 0, 64);
        v128.store(dst, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 72);
        v128.store64_lane(dst, u1, 1, 88);
        dst += 96;
      }
      for (; p < kc; p++) {
        const off = <usize>p << 2;
        store<f32>(dst, load<f32>(r0 + off));
        store<f32>(dst, load<f32>(r1 + off), 4);
        store<f32>(dst, load<f32>(r2 + off), 8);
        store<f32>(dst, load<f32>(r3 + off), 12);
        store<f32>(dst, load<f32>(r4 + off), 16);
        store<f32>(dst, load<f32>(r5 + off), 20);
        dst += 24;
      }
    }
  }
}

/**
 * Packs op(B)[0:kc, 0:nc] (b points at its first element) into NR-column
 * panels, each laid out k-major: panel[p * NR + c] = op(B)[p, jr + c].
 * Columns past nc are zero.
 */
function packB(transB: bool, kc: i32, nc: i32, b: usize, ldb: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min<i32>(NR, nc - jr);
    if (!transB) {
      // op(B)[p, j] = B[p, j]: the NR values of one k are adjacent.
      let src = at(b, jr);
      const step = <usize>ldb << 2;
      if (nr == NR) {
        for (let p = 0; p < kc; p++) {
          v128.store(dst, v128.load(src));
          v128.store(dst, v128.load(src, 16), 16);
          dst += 32;
          src += step;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let c = 0; c < NR; c++) {
            store<f32>(dst + (<usize>c << 2), c < nr ? load<f32>(src + (<usize>c << 2)) : 0);
          }
          dst += 32;
          src += step;
        }
      }
    } else {
      // op(B)[p, j] = B[j, p]: rows of B are contiguous in k; transpose 4 x 4 blocks.
      const r0 = at(b, jr * ldb);
      if (nr == NR) {
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const off = <usize>p << 2;
          for (let h = 0; h < 2; h++) {
            const q = at(r0, 4 * h * ldb) + off;
            const x0 = v128.load(q);
            const x1 = v128.load(at(q, ldb));
            const x2 = v128.load(at(q, 2 * ldb));
            const x3 = v128.load(at(q, 3 * ldb));
            const t0 = f32x4.shuffle(x0, x1, 0, 4, 1, 5);
            const t1 = f32x4.shuffle(x0, x1, 2, 6, 3, 7);
            const t2 = f32x4.shuffle(x2, x3, 0, 4, 1, 5);
            const t3 = f32x4.shuffle(x2, x3, 2, 6, 3, 7);
            const d = dst + (<usize>h << 4);
            v128.store(d, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
            v128.store(d, f32x4.shuffle(t0, t2, 2, 3, 6, 7), 32);
            v128.store(d, f32x4.shuffle(t1, t3, 0, 1, 4, 5), 64);
            v128.store(d, f32x4.shuffle(t1, t3, 2, 3, 6, 7), 96);
          }
          dst += 128;
        }
        for (; p < kc; p++) {
          for (let c = 0; c < NR; c++) {
            store<f32>(dst + (<usize>c << 2), load<f32>(at(r0, c * ldb + p)));
          }
          dst += 32;
        }
      } else {
        for (let p = 0; p < kc; p++) {
          for (let c = 0; c < NR; c++) {
            store<f32>(dst + (<usize>c << 2), c < nr ? load<f32>(at(r0, c * ldb + p)) : 0);
          }
          dst += 32;
        }
      }
    }
  }
}

/**
 * acc + a * b lane by lane: one fused multiply-add (`f32x4.relaxed_madd`, one rounding) in the
 * relaxed-SIMD build, a multiply then an add (two roundings) in the plain-SIMD one. The choice is
 * made at compile time (`ASC_FEATURE_RELAXED_SIMD`), so one module always does the same.
 * relaxed_madd may be fused or not, at the engine's choice (V8 fuses on x64 CPUs with FMA3 and on
 * ARM64); either way every C element gets the same sequence of operations in any tile position.
 */
@inline export function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Writes one row of 8 results: c = alpha * acc + beta * c (+ bias); beta = 0 never reads c. */
@inline function storeRow(
  c: usize,
  lo: v128,
  hi: v128,
  va: v128,
  beta: f32,
  blo: v128,
  bhi: v128,
): void {
  let ylo = f32x4.mul(va, lo);
  let yhi = f32x4.mul(va, hi);
  if (beta == 1) {
    ylo = f32x4.add(ylo, v128.load(c));
    yhi = f32x4.add(yhi, v128.load(c, 16));
  } else if (beta != 0) {
    const vb = f32x4.splat(beta);
    ylo = f32x4.add(ylo, f32x4.mul(vb, v128.load(c)));
    yhi = f32x4.add(yhi, f32x4.mul(vb, v128.load(c, 16)));
  }
  v128.store(c, f32x4.add(ylo, blo));
  v128.store(c, f32x4.add(yhi, bhi), 16);
}

/**
 * The 4 x 8 micro-kernel: acc = sum_p pa[p, 0:4]^T pb[p, 0:8] over kc packed
 * steps, then C[0:mr, 0:nr] = alpha * acc + beta * C (+ bias[0:nr]).
 * `bias` = 0: none.
 */
function kernel(
  kc: i32,
  pa: usize,
  pb: usize,
  c: usize,
  ldc: i32,
  mr: i32,
  nr: i32,
  alpha: f32,
  beta: f32,
  bias: usize,
  tile: usize,
): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  let c50 = f32x4.splat(0), c51 = f32x4.splat(0);
  const pbEnd = pb + (<usize>kc << 5);
  while (pb < pbEnd) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let a = v128.load32_splat(pa);
    c00 = madd(a, b0, c00);
    c01 = madd(a, b1, c01);
    a = v128.load32_splat(pa, 4);
    c10 = madd(a, b0, c10);
    c11 = madd(a, b1, c11);
    a = v128.load32_splat(pa, 8);
    c20 = madd(a, b0, c20);
    c21 = madd(a, b1, c21);
    a = v128.load32_splat(pa, 12);
    c30 = madd(a, b0, c30);
    c31 = madd(a, b1, c31);
    a = v128.load32_splat(pa, 16);
    c40 = madd(a, b0, c40);
    c41 = madd(a, b1, c41);
    a = v128.load32_splat(pa, 20);
    c50 = madd(a, b0, c50);
    c51 = madd(a, b1, c51);
    pa += 24;
    pb += 32;
  }
  const va = f32x4.splat(alpha);
  if (mr == MR && nr == NR) {
    let blo = f32x4.splat(0), bhi = f32x4.splat(0);
    if (bias != 0) {
      blo = v128.load(bias);
      bhi = v128.load(bias, 16);
    }
    const step = <usize>ldc << 2;
    storeRow(c, c00, c01, va, beta, blo, bhi);
    storeRow(c + step, c10, c11, va, beta, blo, bhi);
    storeRow(c + 2 * step, c20, c21, va, beta, blo, bhi);
    storeRow(c + 3 * step, c30, c31, va, beta, blo, bhi);
    storeRow(c + 4 * step, c40, c41, va, beta, blo, bhi);
    storeRow(c + 5 * step, c50, c51, va, beta, blo, bhi);
    return;
  }
  // Edge tile: the same arithmetic, lane by lane, on the valid part only.
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c10, 32);
  v128.store(tile, c11, 48);
  v128.store(tile, c20, 64);
  v128.store(tile, c21, 80);
  v128.store(tile, c30, 96);
  v128.store(tile, c31, 112);
  v128.store(tile, c40, 128);
  v128.store(tile, c41, 144);
  v128.store(tile, c50, 160);
  v128.store(tile, c51, 176);
  for (let r = 0; r < mr; r++) {
    const row = at(c, r * ldc);
    for (let j = 0; j < nr; j++) {
      let y: f32 = alpha * load<f32>(at(tile, r * NR + j));
      if (beta == 1) y += load<f32>(at(row, j));
      else if (beta != 0) y += beta * load<f32>(at(row, j));
      store<f32>(at(row, j), y + (bias != 0 ? load<f32>(at(bias, j)) : 0));
    }
  }
}

/** C[0:m, 0:n] = beta * C (+ bias): the K = 0 product. */
function scaleC(m: i32, n: i32, beta: f32, c: usize, ldc: i32, bias: usize): void {
  for (let i = 0; i < m; i++) {
    const row = at(c, i * ldc);
    for (let j = 0; j < n; j++) {
      const y: f32 = beta == 0 ? 0 : beta * load<f32>(at(row, j));
      store<f32>(at(row, j), y + (bias != 0 ? load<f32>(at(bias, j)) : 0));
    }
  }
}

/**
 * `C = act(alpha · op(A) op(B) + beta · C (+ bias))`, row-major.
 *
 * @param transA 0: A is (m, k) with row stride lda; 1: A is (k, m)
 * @param transB 0: B is (k, n) with row stride ldb; 1: B is (n, k)
 * @param bias byte offset of n floats added to every row, or 0 for none
 * @param act epilogue activation applied last (see `activate`), 0 for none
 * @param slope negative slope of leaky_relu
 * @param scratch `scratchBytes()` bytes private to this call, 16-byte aligned
 */
export function sgemm(
  transA: i32,
  transB: i32,
  m: i32,
  n: i32,
  k: i32,
  alpha: f32,
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  beta: f32,
  c: usize,
  ldc: i32,
  bias: usize,
  act: i32,
  slope: f32,
  scratch: usize,
): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    scaleC(m, n, beta, c, ldc, bias);
    activate(act, slope, m, n, c, ldc);
    return;
  }
  const packedA = scratch;
  const packedB = scratch + PACK_A_BYTES;
  const tile = packedB + PACK_B_BYTES;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min<i32>(NC, n - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min<i32>(KC, k - pc);
      packB(transB != 0, kc, nc, transB ? at(b, jc * ldb + pc) : at(b, pc * ldb + jc), ldb, packedB);
      const first = pc == 0;
      const betaK: f32 = first ? beta : 1;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min<i32>(MC, m - ic);
        packA(transA != 0, mc, kc, transA ? at(a, pc * lda + ic) : at(a, ic * lda + pc), lda, packedA);
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min<i32>(NR, nc - jr);
          const pb = at(packedB, jr * kc);
          const biasJ = first && bias != 0 ? at(bias, jc + jr) : 0;
          for (let ir = 0; ir < mc; ir += MR) {
            kernel(
              kc,
              at(packedA, ir * kc),
              pb,
              at(c, (ic + ir) * ldc + jc + jr),
              ldc,
              min<i32>(MR, mc - ir),
              nr,
              alpha,
              betaK,
              biasJ,
              tile,
            );
          }
        }
      }
    }
  }
  activate(act, slope, m, n, c, ldc);
}

/**
 * The epilogue's activation over C[0:m, 0:n], in place, with the formulas of
 * shaders/matmul.wgsl `activate` (tanh via exp(-2|v|), which cannot overflow).
 * act: 0 none, 1 relu, 2 tanh, 3 sigmoid, 4 leaky_relu (negative slope `slope`).
 */
function activate(act: i32, slope: f32, m: i32, n: i32, c: usize, ldc: i32): void {
  if (act == 0) return;
  for (let i = 0; i < m; i++) {
    const row = at(c, i * ldc);
    let j = 0;
    if (act == 1) {
      const zero = f32x4.splat(0);
      for (; j + 4 <= n; j += 4) v128.store(at(row, j), f32x4.max(v128.load(at(row, j)), zero));
    }
    for (; j < n; j++) {
      const v = load<f32>(at(row, j));
      let y: f32 = v;
      if (act == 1) y = max<f32>(v, 0);
      else if (act == 2) {
        const e = Mathf.exp(-2 * Mathf.abs(v));
        y = copysign<f32>((1 - e) / (1 + e), v);
      } else if (act == 3) y = 1 / (1 + Mathf.exp(-v));
      else if (act == 4) y = v >= 0 ? v : slope * v;
      store<f32>(at(row, j), y);
    }
  }
}

/** out[i, j] = x[i, j] + bias[j] for a (rows, cols) block with row strides ldx, ldo. */
export function biasAdd(
  rows: i32,
  cols: i32,
  x: usize,
  ldx: i32,
  bias: usize,
  out: usize,
  ldo: i32,
): void {
  for (let i = 0; i < rows; i++) {
    const xr = at(x, i * ldx);
    const or = at(out, i * ldo);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      v128.store(at(or, j), f32x4.add(v128.load(at(xr, j)), v128.load(at(bias, j))));
    }
    for (; j < cols; j++) store<f32>(at(or, j), load<f32>(at(xr, j)) + load<f32>(at(bias, j)));
  }
}

/**
 * out[j] = alpha * sum_i x[i, j] + beta * out[j] over a (rows, cols) block
 * (the bias gradient: db = sum over the batch of dy). Each column is summed in
 * row order, 16 columns at a time; beta = 0 never reads out.
 */
export function sumRows(
  rows: i32,
  cols: i32,
  x: usize,
  ldx: i32,
  alpha: f32,
  beta: f32,
  out: usize,
): void {
  const va = f32x4.splat(alpha);
  const vb = f32x4.splat(beta);
  const step = <usize>ldx << 2;
  let j = 0;
  for (; j + 16 <= cols; j += 16) {
    let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
    let p = at(x, j);
    for (let i = 0; i < rows; i++) {
      s0 = f32x4.add(s0, v128.load(p));
      s1 = f32x4.add(s1, v128.load(p, 16));
      s2 = f32x4.add(s2, v128.load(p, 32));
      s3 = f32x4.add(s3, v128.load(p, 48));
      p += step;
    }
    const o = at(out, j);
    s0 = f32x4.mul(va, s0);
    s1 = f32x4.mul(va, s1);
    s2 = f32x4.mul(va, s2);
    s3 = f32x4.mul(va, s3);
    if (beta != 0) {
      s0 = f32x4.add(s0, f32x4.mul(vb, v128.load(o)));
      s1 = f32x4.add(s1, f32x4.mul(vb, v128.load(o, 16)));
      s2 = f32x4.add(s2, f32x4.mul(vb, v128.load(o, 32)));
      s3 = f32x4.add(s3, f32x4.mul(vb, v128.load(o, 48)));
    }
    v128.store(o, s0);
    v128.store(o, s1, 16);
    v128.store(o, s2, 32);
    v128.store(o, s3, 48);
  }
  for (; j < cols; j++) {
    let s: f32 = 0;
    let p = at(x, j);
    for (let i = 0; i < rows; i++) {
      s += load<f32>(p);
      p += step;
    }
    const o = at(out, j);
    store<f32>(o, beta != 0 ? alpha * s + beta * load<f32>(o) : alpha * s);
  }
}

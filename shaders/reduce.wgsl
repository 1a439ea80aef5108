// Reductions, arg-reductions and softmax over the middle axis of x viewed as (outer, len, inner):
// element (o, l, k) is x[(o * len + l) * inner + k], output q = o * inner + k (outer * inner).
//
// Threading plan: a workgroup of 256 invocations is a grid of R rows by C columns (C an override
// constant, R = 256 / C, both powers of two). Column c owns output q = group * C + c; row r walks
// l = r, r + R, r + 2R, ... of that output's reduced axis, then the R partial results meet in a
// tree in workgroup memory (log2 R levels). The host picks R ~ len / 8 (capped at 256): short axes
// get one invocation per output (C = 256), long ones a whole workgroup (C = 1). Groups are indexed
// over x and y (rt.grid) when more than 65535 are needed.
// Whole-tensor reductions are repeated passes of reduce_main over (ceil(n / 2048), 2048, 1) with
// `total = n` bounding the last, partial chunk, until one value is left: a fixed-order tree, so
// the result is deterministic and the rounding error of a sum grows like (log2 n + 8 per pass)
// eps instead of the n eps of one serial loop (Higham, "Accuracy and Stability of Numerical
// Algorithms", 2nd ed., sec. 4.2, pairwise summation). Inside an invocation long runs are summed
// in blocks of 32 before they are added to the running total, which keeps axis sums over millions
// of elements accurate.
//
// In place (IO = 1; softmax with out = x, or a reduction over an axis of length 1 with out = x)
// x is read from y and binding 0 gets a placeholder: WebGPU forbids binding one buffer to two
// bindings of a dispatch when either is writable (gpuweb PR #2441; Chromium rejects it, wgpu does
// not check). Every entry point leaves some bindings unused (reduce_main and softmax_main yi,
// arg_main y); the host binds placeholder buffers there, never an operand.
//
// Entry points (overrides OP: 0 sum, 1 max, 2 min; MAP: 0 x, 1 x^2, 2 |x|, applied on load):
// - reduce_main: y[q] = scale * reduce_l MAP(x[o, l, k]). max/min propagate NaN as torch.max does.
//   `ident` is the identity of OP (0, -inf, +inf; passed as a uniform since WGSL constant
//   expressions cannot be infinite).
// - arg_main: yi[q] = the l of the largest (SIGN = 1) or smallest (SIGN = -1) x[o, l, k]; on ties
//   the first such l (torch.argmax/argmin documentation: "the indices of the first maximal value"),
//   and the first NaN if there is one (NaN counts as the extreme, as in torch).
// - softmax_main: numerically stable softmax along l: m = max_l x, s = sum_l exp(x - m),
//   y = exp(x - m) / s, or with LOG = 1 the log-softmax y = x - m - log(s). In place is safe:
//   each invocation rewrites only elements it alone reads after the last barrier.

override OP: u32 = 0u;
override MAP: u32 = 0u;
override C: u32 = 1u;
override SIGN: i32 = 1;
override LOG: u32 = 0u;
override IO: u32 = 0u;

struct Params { outer: u32, len: u32, inner: u32, total: u32, scale: f32, ident: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;        // (outer, len, inner)
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // (outer, inner); softmax: as x
@group(0) @binding(2) var<storage, read_write> yi: array<u32>; // (outer, inner) arg indices
@group(0) @binding(3) var<uniform> p: Params;

const WG: u32 = 256u;
const BLOCK: u32 = 32u;
const NONE: u32 = 0xffffffffu;
var<workgroup> sv: array<f32, 256>;
var<workgroup> si: array<u32, 256>;

// x[f], or y[f] for in-place softmax (IO = 1).
fn load(f: u32) -> f32 {
  if (IO == 1u) { return y[f]; }
  return x[f];
}

fn mapped(v: f32) -> f32 {
  switch MAP {
    case 1u: { return v * v; }
    case 2u: { return abs(v); }
    default: { return v; }
  }
}

// NaN test on the bits: WGSL lets compilers assume NaN never occurs, and `v != v` does fold to
// false on llvmpipe.
fn is_nan(v: f32) -> bool {
  return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn combine(a: f32, b: f32) -> f32 {
  let nan = is_nan(a) || is_nan(b);
  switch OP {
    case 1u: { return select(max(a, b), a + b, nan); }
    case 2u: { return select(min(a, b), a + b, nan); }
    default: { return a + b; }
  }
}

struct Slot { q: u32, o: u32, k: u32, valid: bool, r: u32, c: u32 }

fn slot(wid: vec3u, nwg: vec3u, lid: u32) -> Slot {
  let c = lid % C;
  let q = (wid.y * nwg.x + wid.x) * C + c;
  let inner = max(p.inner, 1u);
  return Slot(q, q / inner, q % inner, q < p.outer * p.inner, lid / C, c);
}

fn at(s: Slot, l: u32) -> u32 {
  return (s.o * p.len + l) * p.inner + s.k;
}

// Partial reduction of an invocation's share of the axis, blocked (see header).
fn partial(s: Slot, m: u32) -> f32 {
  let R = WG / C;
  var acc = p.ident;
  var blk = p.ident;
  var cnt = 0u;
  if (s.valid) {
    for (var l = s.r; l < p.len; l += R) {
      let f = at(s, l);
      if (f >= p.total) { break; }
      var v = load(f);
      if (m == 1u) { v = mapped(v); }
      blk = combine(blk, v);
      cnt += 1u;
      if (cnt == BLOCK) {
        acc = combine(acc, blk);
        blk = p.ident;
        cnt = 0u;
      }
    }
  }
  return combine(acc, blk);
}

// Tree over the R rows of each column; the result is in sv[c] afterwards.
fn tree(lid: u32, r: u32) {
  let R = WG / C;
  for (var h = R / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (r < h) { sv[lid] = combine(sv[lid], sv[lid + h * C]); }
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn reduce_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let s = slot(wid, nwg, lid);
  sv[lid] = partial(s, 1u);
  tree(lid, s.r);
  if (s.valid && s.r == 0u) { y[s.q] = sv[s.c] * p.scale; }
}

// Is (v2, i2) a better arg-extreme than (v1, i1)? NONE marks an empty candidate.
fn arg_better(v2: f32, i2: u32, v1: f32, i1: u32) -> bool {
  if (i2 == NONE) { return false; }
  if (i1 == NONE) { return true; }
  let n1 = is_nan(v1);
  let n2 = is_nan(v2);
  if (n1 || n2) { return n2 && (!n1 || i2 < i1); }
  let a = f32(SIGN) * v2;
  let b = f32(SIGN) * v1;
  return a > b || (a == b && i2 < i1);
}

@compute @workgroup_size(256)
fn arg_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let s = slot(wid, nwg, lid);
  let R = WG / C;
  var bv = 0.0;
  var bi = NONE;
  if (s.valid) {
    for (var l = s.r; l < p.len; l += R) {
      let v = x[at(s, l)];
      if (arg_better(v, l, bv, bi)) {
        bv = v;
        bi = l;
      }
    }
  }
  sv[lid] = bv;
  si[lid] = bi;
  for (var h = R / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (s.r < h) {
      let o = lid + h * C;
      if (arg_better(sv[o], si[o], sv[lid], si[lid])) {
        sv[lid] = sv[o];
        si[lid] = si[o];
      }
    }
  }
  workgroupBarrier();
  if (s.valid && s.r == 0u) { yi[s.q] = si[s.c]; }
}

@compute @workgroup_size(256)
fn softmax_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let s = slot(wid, nwg, lid);
  let R = WG / C;
  // Row maximum (OP is 1 for this entry point: combine = NaN-propagating max).
  sv[lid] = partial(s, 0u);
  tree(lid, s.r);
  let m = sv[s.c];
  workgroupBarrier();
  var acc = 0.0;
  var blk = 0.0;
  var cnt = 0u;
  if (s.valid) {
    for (var l = s.r; l < p.len; l += R) {
      blk += exp(load(at(s, l)) - m);
      cnt += 1u;
      if (cnt == BLOCK) {
        acc += blk;
        blk = 0.0;
        cnt = 0u;
      }
    }
  }
  // The tree below sums (OP would say max): do it by hand.
  sv[lid] = acc + blk;
  for (var h = R / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (s.r < h) { sv[lid] += sv[lid + h * C]; }
  }
  workgroupBarrier();
  let total = sv[s.c];
  let lt = log(total);
  let inv = 1.0 / total;
  if (s.valid) {
    for (var l = s.r; l < p.len; l += R) {
      let f = at(s, l);
      let d = load(f) - m;
      y[f] = select(exp(d) * inv, d - lt, LOG == 1u);
    }
  }
}

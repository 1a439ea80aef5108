// Kernels of src/metrics: grid points of decision-boundary planes, per-sample prediction
// statistics (max-softmax confidence, arg max, correctness, NLL), squared-norm accumulation of
// input-gradient rows (Jacobian Frobenius norms), one-hot row seeds, saliency (max |g| over
// channels), occluded copies of an image, and per-row sums of the total variation of class maps.
//
// Threading plan: every entry point is one invocation per output element (or per output row),
// 256 invocations per workgroup, groups spread over x and y by the host (rt.grid) and the flat
// index recovered as (wid.y * nwg.x + wid.x) * 256 + lid.x. None needs workgroup memory: the
// row loops are short (K classes, D inputs, C channels, R pixels) and their results are read back
// and reduced in float64 on the CPU, where the numbers are small (N samples, P*R rows).
//
// Bindings shared by every entry point (the host binds placeholders where one is unused):
// xa (read) f32 input, xu (read) u32 input, y (read_write) f32 output.
//
// Entry points and their math:
// - plane_points: xa = [x (D), u (D), v (D)]; point p = start + i of a res x res grid, row
//   r = p / res, column c = p % res, a = -half + 2 half c / (res - 1), b = half - 2 half r /
//   (res - 1) (row 0 at the top, as in an image); y[i, k] = x[k] + a u[k] + b v[k], clamped to
//   [0, 1] when flag = 1. n points, d = D.
// - pred_stats: xa = logits (n, k), xu = labels (n,) when flag = 1. y[i] = (max_j p_j, arg max_j
//   z_j (first on ties, as torch.argmax), [arg max = label], -log p_label) with p = softmax(z)
//   computed stably (z - max z); Guo et al. 2017, "On calibration of modern neural networks",
//   define confidence as max_j p_j.
// - sumsq_rows: y[i] += scale * sum_k xa[i, k]^2 (n rows of d). Summing the C one-hot rows
//   e_c^T J gives ||J||_F^2; with unit random v, (C / nproj) sum ||v^T J||^2 estimates it
//   (Hoffman, Roberts & Yaida 2019, "Robust learning with Jacobian regularization", eq. 6).
// - onehot: y[i, j] = [j == cls] (flag = 0) or [j == xu[i]] (flag = 1), n rows of k.
// - saliency_max: xa = g (n, k channels, d pixels); y[i, q] = max_c |g[i, c, q]| (Simonyan,
//   Vedaldi & Zisserman 2013, "Deep inside convolutional networks", sec. 3.1).
// - occlude: xa = one image (k channels, h, w); window i = start + (local index) has top-left
//   ((i / nwx) stride, (i % nwx) stride); y[i, c, r, q] = baseline inside the window (all
//   channels; the window is cut at the image border, as Captum's Occlusion pads with negative
//   widths) and x elsewhere. n windows.
// - tv_rows: xu = class maps (planes, res, res) u32, n = planes * res rows; for row r of a plane,
//   Dx = [c(r, q + 1) != c(r, q)], Dy = [c(r + 1, q) != c(r, q)], both 0 on the last column/row
//   (forward differences, Neumann boundary); y[2 i] = sum_q sqrt(Dx^2 + Dy^2), y[2 i + 1] =
//   sum_q (|Dx| + |Dy|) (isotropic and anisotropic TV of the class-change indicator; Rudin,
//   Osher & Fatemi 1992 for the two discretisations).

struct Params {
  n: u32,
  d: u32,
  k: u32,
  res: u32,
  start: u32,
  half: f32,
  flag: u32,
  cls: u32,
  h: u32,
  w: u32,
  win: u32,
  stride: u32,
  nwx: u32,
  baseline: f32,
  scale: f32,
}

@group(0) @binding(0) var<storage, read> xa: array<f32>;
@group(0) @binding(1) var<storage, read> xu: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn flat(wid: vec3<u32>, lid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid.x;
}

@compute @workgroup_size(256)
fn plane_points(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = flat(wid, lid, nwg);
  if (idx >= p.n * p.d) { return; }
  let i = idx / p.d;
  let k = idx % p.d;
  let pt = p.start + i;
  let r = pt / p.res;
  let c = pt % p.res;
  let den = f32(max(p.res, 2u) - 1u);
  let a = -p.half + 2.0 * p.half * f32(c) / den;
  let b = p.half - 2.0 * p.half * f32(r) / den;
  var v = xa[k] + a * xa[p.d + k] + b * xa[2u * p.d + k];
  if (p.flag == 1u) { v = clamp(v, 0.0, 1.0); }
  y[idx] = v;
}

@compute @workgroup_size(256)
fn pred_stats(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = flat(wid, lid, nwg);
  if (i >= p.n) { return; }
  let base = i * p.k;
  var m = xa[base];
  var am = 0u;
  for (var j = 1u; j < p.k; j++) {
    let z = xa[base + j];
    if (z > m) { m = z; am = j; }
  }
  var s = 0.0;
  for (var j = 0u; j < p.k; j++) { s += exp(xa[base + j] - m); }
  var correct = 0.0;
  var nll = 0.0;
  if (p.flag == 1u) {
    let lab = xu[i];
    if (lab < p.k) {
      correct = select(0.0, 1.0, lab == am);
      nll = log(s) - (xa[base + lab] - m);
    } else {
      // An out-of-range label: NaN marks it for the host to report.
      // (From a run-time value: Tint, in Chromium, refuses a constant NaN.)
      var nan_bits = 0x7fc00000u;
      nll = bitcast<f32>(nan_bits);
    }
  }
  y[4u * i] = 1.0 / s;
  y[4u * i + 1u] = f32(am);
  y[4u * i + 2u] = correct;
  y[4u * i + 3u] = nll;
}

@compute @workgroup_size(256)
fn sumsq_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = flat(wid, lid, nwg);
  if (i >= p.n) { return; }
  var s = 0.0;
  var blk = 0.0;
  for (var k = 0u; k < p.d; k++) {
    let g = xa[i * p.d + k];
    blk += g * g;
    // Blocks of 64 keep a long row's sum accurate (pairwise-style summation).
    if ((k & 63u) == 63u) { s += blk; blk = 0.0; }
  }
  y[i] += p.scale * (s + blk);
}

@compute @workgroup_size(256)
fn onehot(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = flat(wid, lid, nwg);
  if (idx >= p.n * p.k) { return; }
  let i = idx / p.k;
  let j = idx % p.k;
  var c = p.cls;
  if (p.flag == 1u) { c = xu[i]; }
  y[idx] = select(0.0, 1.0, j == c);
}

@compute @workgroup_size(256)
fn saliency_max(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = flat(wid, lid, nwg);
  if (idx >= p.n * p.d) { return; }
  let i = idx / p.d;
  let q = idx % p.d;
  var m = 0.0;
  for (var c = 0u; c < p.k; c++) { m = max(m, abs(xa[(i * p.k + c) * p.d + q])); }
  y[idx] = m;
}

@compute @workgroup_size(256)
fn occlude(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let idx = flat(wid, lid, nwg);
  let per = p.k * p.h * p.w;
  if (idx >= p.n * per) { return; }
  let i = idx / per;
  let e = idx % per;
  let q = e % p.w;
  let r = (e / p.w) % p.h;
  let win = p.start + i;
  let top = (win / p.nwx) * p.stride;
  let left = (win % p.nwx) * p.stride;
  let inside = r >= top && r < top + p.win && q >= left && q < left + p.win;
  y[idx] = select(xa[e], p.baseline, inside);
}

@compute @workgroup_size(256)
fn tv_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let i = flat(wid, lid, nwg);
  if (i >= p.n) { return; }
  let r = i % p.res;
  let base = i * p.res;
  var iso = 0.0;
  var aniso = 0.0;
  for (var q = 0u; q < p.res; q++) {
    let c = xu[base + q];
    var dx = 0.0;
    var dy = 0.0;
    if (q + 1u < p.res && xu[base + q + 1u] != c) { dx = 1.0; }
    if (r + 1u < p.res && xu[base + p.res + q] != c) { dy = 1.0; }
    iso += sqrt(dx + dy);
    aniso += dx + dy;
  }
  y[2u * i] = iso;
  y[2u * i + 1u] = aniso;
}

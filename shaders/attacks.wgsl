// Elementwise and per-sample steps of the adversarial attacks in src/attacks/ (FGSM, PGD L∞/L2,
// APGD, Carlini–Wagner L2, DeepFool): sign step + projection + box clamp fused, per-sample L2
// normalisation and projection, per-row attack losses with their logit gradients, best-so-far
// bookkeeping, and Adam in tanh space. float64 references: src/reference/attacks.ts.
//
// Math (x0 the clean input in [0,1]^D, x the current point, g a gradient, per sample b):
// - linf_step:  x <- clip_[0,1](x0 + clip_[-eps,eps]((x + alpha sign(g)) - x0)), torch.sign(0) = 0
//   (Madry et al. 2018, "Towards deep learning models resistant to adversarial attacks"; the
//   delta-then-add order of torchattacks' PGD, so float32 results agree bit for bit in practice).
// - add_clamp:  x <- clip_[0,1](x0 + g) (random start, g ~ U[-eps, eps]).
// - l2_step:    x' = x + alpha g / max(||g||, 1e-12); delta = x' - x0;
//               x <- clip_[0,1](x0 + delta min(1, eps / ||delta||)) (projection onto the L2 ball).
// - l2_init:    x <- clip_[0,1](x0 + eps u^(1/D) n / max(||n||, 1e-12)), n ~ N(0, I), u ~ U[0,1):
//               a point uniform in the L2 ball (direction uniform on the sphere, radius eps u^(1/D)).
// - loss_rows (one invocation per row of logits z, label or target t, sign s = +-1):
//   LOSS 0 cross-entropy: l = s (lse(z) - z_t), dl/dz = s (softmax(z) - e_t)
//   LOSS 1 DLR (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble
//          of diverse parameter-free attacks", eq. 4): l = -(z_t - max_{i!=t} z_i) / (z_p1 - z_p3
//          + 1e-12) with z_p1 >= z_p2 >= z_p3 the three largest logits; its gradient accumulates
//          -1/den at t, +1/den at the best other class, +num/den^2 at p1 and -num/den^2 at p3.
//   LOSS 2 Carlini–Wagner margin (Carlini & Wagner 2017, "Towards evaluating the robustness of
//          neural networks", f_6): other = max_i (z_i - 1e4 [i = t]); untargeted
//          l = c_b max(z_t - other, -kappa), targeted l = c_b max(other - z_t, -kappa), gradient
//          +-c_b at t and at the arg max of other while the max is not clipped; c_b = state[b*S].
//   It also writes `hit` = 1 when the attack succeeds on the row: argmax(z) != t untargeted,
//   argmax(z) == t targeted (first maximal class on ties, as torch.argmax).
// - select: keeps the worst case per sample over restarts: a candidate replaces the best if it
//   succeeds and the best does not, or both agree and its loss is higher.
// - APGD (Croce & Hein 2020, Alg. 1, following the step and checkpoint logic of the authors'
//   autopgd_base.py): apgd_step is the momentum step
//   z = P(x + eta_b sign(g)); x <- P(x + a (z - x) + (1 - a)(x - x_old)), a = 0.75 (1 on the first
//   step), P = projection onto the eps-box then clip to [0,1]; apgd_track keeps the best-loss
//   point and gradient, the latest successful point and the count of loss increases;
//   apgd_check, at each checkpoint, halves eta_b and restarts from the best point when the
//   increases since the last checkpoint are <= rho k (rho = 0.75) or when the step size was not
//   reduced at the last checkpoint and the best loss did not improve since.
// - CW: w = atanh((2 x0 - 1)(1 - 1e-6)); x' = (tanh w + 1) / 2; the gradient in w of
//   ||x' - x0||^2 + c f(x') is (2 (x' - x0) + J^T df) (1 - tanh^2 w) / 2; Adam (Kingma & Ba 2015)
//   with beta1 0.9, beta2 0.999, eps 1e-8 and bias corrections passed in; cw_track keeps the
//   smallest successful ||x' - x0||^2; cw_search is Carlini–Wagner's binary search over c.
// - DeepFool (Moosavi-Dezfooli et al. 2016, Alg. 2): for each class k != t,
//   w_k = grad(z_k - z_t), f_k = z_k - z_t; l = argmin_k |f_k| / ||w_k||;
//   r_tot += (|f_l| + 1e-4) / ||w_l||^2 w_l; x = clip_[0,1](x0 + (1 + overshoot) r_tot),
//   only for samples still classified as t at the start of the iteration.
//
// Threading plan:
// - elementwise entry points (linf_step, add_clamp, apgd_step, cw_step, tanh_map, atanh_init,
//   deepfool_step, onehot_diff, mask_label): 256 invocations per workgroup, one element each,
//   flat index (wid.y * nwg.x + wid.x) * 256 + lid.x (rt.grid).
// - per-sample entry points (l2_step, l2_init, linf_init, select, apgd_track, apgd_check, cw_track,
//   deepfool_cand): one workgroup of 256 invocations per sample b = wid.y * nwg.x + wid.x; each
//   invocation walks elements lid, lid + 256, ... of the sample's D; sums meet in a fixed-order
//   tree in workgroup memory (wg_reduce; deterministic); every per-sample norm is row_sumsq or
//   row_max_abs. Per-sample decisions are made after the barrier by every invocation from the
//   same workgroup-shared value, so control flow around barriers is uniform.
// - row entry points (loss_rows, cw_search, deepfool_begin): one invocation per sample row; the
//   arg maxes over a row of logits are logit_argmax.
//
// Every entry point binds the file's eight storage buffers (unused ones get placeholders); the
// role of each binding per entry point is listed at the entry point.

override LOSS: u32 = 0u;
override TARGETED: u32 = 0u;

struct Params { n: u32, d: u32, b: u32, k: u32, s: u32, c0: u32, c1: u32, eps: f32, alpha: f32, beta: f32, f0: f32, f1: f32 }

@group(0) @binding(0) var<storage, read> src0: array<f32>;
@group(0) @binding(1) var<storage, read> src1: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst0: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst1: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst2: array<f32>;
@group(0) @binding(5) var<storage, read_write> state: array<f32>;
@group(0) @binding(6) var<storage, read> rows: array<f32>;
@group(0) @binding(7) var<storage, read> labels: array<u32>;
@group(0) @binding(8) var<uniform> p: Params;

const WG: u32 = 256u;
// -FLT_MAX and FLT_MAX written out exactly: Tint (Chromium) rejects a literal such as 3.40282347e38
// that lies above FLT_MAX before rounding.
const LOWEST: f32 = -3.40282346638528859812e38;
const HIGHEST: f32 = 3.40282346638528859812e38;
// A quiet NaN's bits, in a private variable rather than a constant: constant evaluation (Tint)
// rejects a NaN, so it is made at run time.
var<private> NAN_BITS: u32 = 0x7fc00000u;

var<workgroup> red: array<f32, 256>;

// The workgroup's builtins, uniform over the workgroup. local_invocation_index stays a parameter
// of its own: uniformity analysis (Tint) takes a struct as a whole, and the per-sample entry
// points need the workgroup id uniform around their barriers.
struct Workgroup {
  @builtin(workgroup_id) id: vec3u,
  @builtin(num_workgroups) count: vec3u,
}

// The element of an elementwise entry point.
fn flat(wg: Workgroup, lid: u32) -> u32 {
  return (wg.id.y * wg.count.x + wg.id.x) * WG + lid;
}

// The sample (workgroup) of a per-sample entry point.
fn sample(wg: Workgroup) -> u32 {
  return wg.id.y * wg.count.x + wg.id.x;
}

// torch.sign: -1, 0 or 1 (0 for 0).
fn sgn(v: f32) -> f32 {
  return select(select(0.0, -1.0, v < 0.0), 1.0, v > 0.0);
}

// Sum (or, with take_max, the largest) of `v` over the workgroup in a fixed-order tree; every
// invocation gets the result. Must be reached uniformly.
fn wg_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    if (lid < h) {
      let a = red[lid];
      let o = red[lid + h];
      red[lid] = select(a + o, max(a, o), take_max);
    }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// What the per-sample norms below read at flat index i:
const ROW_SRC1: u32 = 0u; // src1 (a gradient, noise, a direction)
const ROW_OFFSET: u32 = 1u; // src1 - src0 (a point's offset from x0)
const ROW_STEPPED: u32 = 2u; // (dst0 + f src1) - src0 (dst0's offset after a step f along src1)

fn row_elem(what: u32, i: u32, f: f32) -> f32 {
  switch what {
    case ROW_OFFSET: {
      return src1[i] - src0[i];
    }
    case ROW_STEPPED: {
      return (dst0[i] + f * src1[i]) - src0[i];
    }
    default: {
      return src1[i];
    }
  }
}

// ||r||_2^2 of sample b's row r = row_elem(what, base + j, f), j < D, for the per-sample entry
// points (live = b < B; dead workgroups add nothing). Must be reached uniformly.
fn row_sumsq(what: u32, live: bool, base: u32, lid: u32, f: f32) -> f32 {
  var acc = 0.0;
  if (live) {
    for (var j = lid; j < p.d; j += WG) {
      let v = row_elem(what, base + j, f);
      acc += v * v;
    }
  }
  return wg_reduce(acc, lid, false);
}

// ||r||_inf of sample b's row, as row_sumsq.
fn row_max_abs(what: u32, live: bool, base: u32, lid: u32, f: f32) -> f32 {
  var acc = 0.0;
  if (live) {
    for (var j = lid; j < p.d; j += WG) {
      acc = max(acc, abs(row_elem(what, base + j, f)));
    }
  }
  return wg_reduce(acc, lid, true);
}

// dst0 = clip_[0,1](src0 + r src1) over sample b's row (the random starts).
fn start_at(base: u32, lid: u32, r: f32) {
  for (var j = lid; j < p.d; j += WG) {
    dst0[base + j] = clamp(src0[base + j] + r * src1[base + j], 0.0, 1.0);
  }
}

// No class: a skip index no class j < K equals.
const NONE: u32 = 0xffffffffu;

struct Arg {
  i: u32,
  v: f32,
}

// The first largest of the K logits in src1 from `base`, skipping classes s1 and s2 (NONE for
// none): index 0 and value LOWEST when no logit is above LOWEST (as torch.argmax on ties).
fn logit_argmax(base: u32, s1: u32, s2: u32) -> Arg {
  var r = Arg(0u, LOWEST);
  for (var j = 0u; j < p.k; j++) {
    let z = src1[base + j];
    if (j != s1 && j != s2 && z > r.v) {
      r = Arg(j, z);
    }
  }
  return r;
}

// linf_step: src0 x0, src1 g, dst0 x (in/out). alpha signed (negative descends), eps the radius.
@compute @workgroup_size(256)
fn linf_step(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let x0 = src0[i];
  let a = dst0[i] + p.alpha * sgn(src1[i]);
  let delta = clamp(a - x0, -p.eps, p.eps);
  dst0[i] = clamp(x0 + delta, 0.0, 1.0);
}

// add_clamp: src0 x0, src1 offset, dst0 x (out).
@compute @workgroup_size(256)
fn add_clamp(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  dst0[i] = clamp(src0[i] + src1[i], 0.0, 1.0);
}

// l2_step: src0 x0, src1 g, dst0 x (in/out); per sample of d elements. alpha signed.
@compute @workgroup_size(256)
fn l2_step(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  let live = b < p.b;
  let base = b * p.d;
  let gn = max(sqrt(row_sumsq(ROW_SRC1, live, base, lid, 0.0)), 1e-12);
  let step = p.alpha / gn;
  let dn = sqrt(row_sumsq(ROW_STEPPED, live, base, lid, step));
  let f = select(1.0, p.eps / dn, dn > p.eps);
  if (live) {
    for (var j = lid; j < p.d; j += WG) {
      let delta = row_elem(ROW_STEPPED, base + j, step);
      dst0[base + j] = clamp(src0[base + j] + delta * f, 0.0, 1.0);
    }
  }
}

// l2_init: src0 x0, src1 n ~ N(0, I) (B*D), rows u ~ U[0,1) (B), dst0 x (out).
@compute @workgroup_size(256)
fn l2_init(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  let live = b < p.b;
  let base = b * p.d;
  let nn = max(sqrt(row_sumsq(ROW_SRC1, live, base, lid, 0.0)), 1e-12);
  if (live) {
    start_at(base, lid, p.eps * pow(rows[b], 1.0 / f32(p.d)) / nn);
  }
}

// linf_init: src0 x0, src1 t ~ U(-1, 1) (B*D), dst0 x (out):
// x = clip_[0,1](x0 + eps t / (max_j |t_j| + 1e-12)) per sample (autopgd_base.py's start).
@compute @workgroup_size(256)
fn linf_init(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  let live = b < p.b;
  let base = b * p.d;
  let m = row_max_abs(ROW_SRC1, live, base, lid, 0.0);
  if (live) {
    start_at(base, lid, p.eps / (m + 1e-12));
  }
}

// loss_rows: src1 logits (B, K), labels t (B,), state (B, S) with c_b at column 0 (LOSS 2);
// dst0 dLogits (B, K) (out), dst1 (B, 2) [loss, hit] (out). alpha = sign s (+1 or -1).
@compute @workgroup_size(256)
fn loss_rows(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = flat(wg, lid);
  if (b >= p.b) {
    return;
  }
  let k = p.k;
  let base = b * k;
  let t = labels[b];
  let tv = t < k;
  // argmax (first maximal) and the largest logit
  let top = logit_argmax(base, NONE, NONE);
  let am = top.i;
  let m1 = top.v;
  var hit = 0.0;
  if (tv) {
    let correct = am == t;
    hit = select(select(0.0, 1.0, !correct), select(0.0, 1.0, correct), TARGETED == 1u);
  }
  for (var j = 0u; j < k; j++) {
    dst0[base + j] = 0.0;
  }
  var loss = 0.0;
  if (!tv) {
    dst1[b * 2u] = bitcast<f32>(NAN_BITS);
    dst1[b * 2u + 1u] = 0.0;
    return;
  }
  let s = p.alpha;
  let zt = src1[base + t];
  if (LOSS == 0u) {
    var sum = 0.0;
    for (var j = 0u; j < k; j++) {
      sum += exp(src1[base + j] - m1);
    }
    loss = s * (m1 + log(sum) - zt);
    for (var j = 0u; j < k; j++) {
      let pj = exp(src1[base + j] - m1) / sum;
      dst0[base + j] = s * (pj - select(0.0, 1.0, j == t));
    }
  } else if (LOSS == 1u) {
    // the best other class, and the three largest logits (first occurrence on ties)
    let other = logit_argmax(base, t, NONE);
    let a2 = logit_argmax(base, am, NONE).i;
    let third = logit_argmax(base, am, a2);
    let den = m1 - third.v + 1e-12;
    let num = zt - other.v;
    loss = s * (-num / den);
    // num / den^2 as (num / den) / den, the order of torch's division backward: when t is the
    // third logit (num = -den, the loss is 1 for any logits) the four terms cancel exactly, and
    // the gradient of the saturated loss is 0 as in PyTorch (num / (den * den) left a rounding
    // residue of an ulp of 1 / den, whose sign then steered sign-gradient attacks).
    let q = (num / den) / den;
    dst0[base + t] += s * (-1.0 / den);
    dst0[base + other.i] += s * (1.0 / den);
    dst0[base + am] += s * q;
    dst0[base + third.i] -= s * q;
  } else {
    // the best other class: max of z_i - 1e4 [i = t]
    var ov = LOWEST;
    var oi = 0u;
    for (var j = 0u; j < k; j++) {
      let z = src1[base + j] - select(0.0, 1e4, j == t);
      if (z > ov) {
        ov = z;
        oi = j;
      }
    }
    let c = state[b * p.s];
    let kappa = p.eps;
    var margin = zt - ov;
    var dsign = 1.0;
    if (TARGETED == 1u) {
      margin = ov - zt;
      dsign = -1.0;
    }
    loss = c * max(margin, -kappa);
    if (margin > -kappa) {
      dst0[base + t] += c * dsign;
      dst0[base + oi] -= c * dsign;
    }
  }
  dst1[b * 2u] = loss;
  dst1[b * 2u + 1u] = hit;
}

// select: dst0 candidate x (read), dst1 best x (in/out), state best [loss, hit] (B, 2) (in/out),
// rows candidate scores with row stride s: loss at column c0, hit at column c1.
@compute @workgroup_size(256)
fn select_best(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  if (b >= p.b) {
    return;
  }
  let l = rows[b * p.s + p.c0];
  let h = rows[b * p.s + p.c1];
  let bl = state[b * 2u];
  let bh = state[b * 2u + 1u];
  let better = (h > bh) || (h == bh && l > bl);
  // every invocation reads the old best before any writes it
  workgroupBarrier();
  if (!better) {
    return;
  }
  let base = b * p.d;
  for (var j = lid; j < p.d; j += WG) {
    dst1[base + j] = dst0[base + j];
  }
  if (lid == 0u) {
    state[b * 2u] = l;
    state[b * 2u + 1u] = h;
  }
}

// apgd_step: src0 x0, src1 g, dst0 x (in/out), dst1 x_old (in/out), state (B, S): eta at column
// 0. alpha = momentum a.
@compute @workgroup_size(256)
fn apgd_step(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let x0 = src0[i];
  let x = dst0[i];
  let xo = dst1[i];
  let eta = state[(i / p.d) * p.s];
  let lo = x0 - p.eps;
  let hi = x0 + p.eps;
  let z = clamp(min(max(x + eta * sgn(src1[i]), lo), hi), 0.0, 1.0);
  let a = p.alpha;
  let xn = clamp(min(max(x + (z - x) * a + (x - xo) * (1.0 - a), lo), hi), 0.0, 1.0);
  dst1[i] = x;
  dst0[i] = xn;
}

// APGD state columns.
const A_ETA: u32 = 0u;
const A_BEST: u32 = 1u;
const A_PREV: u32 = 2u;
const A_INCR: u32 = 3u;
const A_LAST: u32 = 4u;
const A_REDUCED: u32 = 5u;
const A_HIT: u32 = 6u;

// apgd_track: src0 x, src1 g, dst0 x_best, dst1 g_best, dst2 x_best_adv (all in/out), state,
// rows (B, 2) [loss, hit] at x.
@compute @workgroup_size(256)
fn apgd_track(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  if (b >= p.b) {
    return;
  }
  let sb = b * p.s;
  let l = rows[b * 2u];
  let h = rows[b * 2u + 1u];
  let improved = l > state[sb + A_BEST];
  let increased = l > state[sb + A_PREV];
  workgroupBarrier();
  let base = b * p.d;
  for (var j = lid; j < p.d; j += WG) {
    if (h > 0.5) {
      dst2[base + j] = src0[base + j];
    }
    if (improved) {
      dst0[base + j] = src0[base + j];
      dst1[base + j] = src1[base + j];
    }
  }
  if (lid == 0u) {
    if (h > 0.5) {
      state[sb + A_HIT] = 1.0;
    }
    if (increased) {
      state[sb + A_INCR] += 1.0;
    }
    state[sb + A_PREV] = l;
    if (improved) {
      state[sb + A_BEST] = l;
    }
  }
}

// apgd_check: src0 x_best, src1 g_best, dst0 x (in/out), dst1 g (in/out), state. f0 = rho k.
@compute @workgroup_size(256)
fn apgd_check(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  if (b >= p.b) {
    return;
  }
  let sb = b * p.s;
  let osc = state[sb + A_INCR] <= p.f0;
  let noimpr = state[sb + A_REDUCED] < 0.5 && state[sb + A_LAST] >= state[sb + A_BEST];
  let fl = osc || noimpr;
  workgroupBarrier();
  if (lid == 0u) {
    state[sb + A_REDUCED] = select(0.0, 1.0, fl);
    state[sb + A_LAST] = state[sb + A_BEST];
    state[sb + A_INCR] = 0.0;
    if (fl) {
      state[sb + A_ETA] = state[sb + A_ETA] * 0.5;
    }
  }
  if (!fl) {
    return;
  }
  let base = b * p.d;
  for (var j = lid; j < p.d; j += WG) {
    dst0[base + j] = src0[base + j];
    dst1[base + j] = src1[base + j];
  }
}

// tanh_map: src1 w, dst0 x' = (tanh w + 1) / 2.
@compute @workgroup_size(256)
fn tanh_map(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  dst0[i] = (tanh(src1[i]) + 1.0) * 0.5;
}

// atanh_init: src0 x0, dst0 w = atanh((2 x0 - 1)(1 - 1e-6)), dst1 m = 0, dst2 v = 0.
@compute @workgroup_size(256)
fn atanh_init(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let y = (2.0 * src0[i] - 1.0) * (1.0 - 1e-6);
  dst0[i] = 0.5 * log((1.0 + y) / (1.0 - y));
  dst1[i] = 0.0;
  dst2[i] = 0.0;
}

// cw_step: src0 x0, src1 J^T df (d(c f)/dx'), dst0 w, dst1 m, dst2 v (in/out).
// alpha lr, f0 = 1 - beta1^t, f1 = 1 - beta2^t.
@compute @workgroup_size(256)
fn cw_step(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let w = dst0[i];
  let th = tanh(w);
  let xp = (th + 1.0) * 0.5;
  let gx = 2.0 * (xp - src0[i]) + src1[i];
  let gw = gx * (1.0 - th * th) * 0.5;
  let m = 0.9 * dst1[i] + 0.1 * gw;
  let v = 0.999 * dst2[i] + 0.001 * gw * gw;
  dst1[i] = m;
  dst2[i] = v;
  dst0[i] = w - p.alpha * (m / p.f0) / (sqrt(v / p.f1) + 1e-8);
}

// CW state columns.
const C_C: u32 = 0u;
const C_LO: u32 = 1u;
const C_HI: u32 = 2u;
const C_BEST: u32 = 3u;
const C_HIT: u32 = 4u;

// cw_track: src0 x0, src1 x', dst0 best x (in/out), state, rows (B, 2) [loss, hit] at x'.
@compute @workgroup_size(256)
fn cw_track(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  let live = b < p.b;
  let base = b * p.d;
  let l2 = row_sumsq(ROW_OFFSET, live, base, lid, 0.0);
  if (!live) {
    return;
  }
  let sb = b * p.s;
  let hit = rows[b * 2u + 1u] > 0.5;
  let better = hit && l2 < state[sb + C_BEST];
  workgroupBarrier();
  if (!hit) {
    return;
  }
  if (lid == 0u) {
    state[sb + C_HIT] = 1.0;
    if (better) {
      state[sb + C_BEST] = l2;
    }
  }
  if (better) {
    for (var j = lid; j < p.d; j += WG) {
      dst0[base + j] = src1[base + j];
    }
  }
}

// cw_search: state (in/out), one invocation per sample.
@compute @workgroup_size(256)
fn cw_search(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = flat(wg, lid);
  if (b >= p.b) {
    return;
  }
  let sb = b * p.s;
  let c = state[sb + C_C];
  if (state[sb + C_HIT] > 0.5) {
    let hi = min(state[sb + C_HI], c);
    state[sb + C_HI] = hi;
    state[sb + C_C] = (state[sb + C_LO] + hi) * 0.5;
  } else {
    let lo = max(state[sb + C_LO], c);
    state[sb + C_LO] = lo;
    let hi = state[sb + C_HI];
    state[sb + C_C] = select(c * 10.0, (lo + hi) * 0.5, hi < 1e9);
  }
  state[sb + C_HIT] = 0.0;
}

// DeepFool state columns.
const D_RATIO: u32 = 0u;
const D_COEF: u32 = 1u;
const D_ACTIVE: u32 = 2u;

// deepfool_begin: src1 logits (B, K), labels, state (out): ratio = +max, active = argmax == t.
@compute @workgroup_size(256)
fn deepfool_begin(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = flat(wg, lid);
  if (b >= p.b) {
    return;
  }
  let am = logit_argmax(b * p.k, NONE, NONE).i;
  let sb = b * p.s;
  state[sb + D_RATIO] = HIGHEST;
  state[sb + D_COEF] = 0.0;
  state[sb + D_ACTIVE] = select(0.0, 1.0, am == labels[b] && state[sb + D_ACTIVE] > 0.5);
}

// onehot_diff: dst0 (B, K) = e_c0 - e_t per row (0 where c0 = t or the sample is inactive);
// state active flags.
@compute @workgroup_size(256)
fn onehot_diff(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let b = i / p.k;
  let j = i % p.k;
  let t = labels[b];
  let on = state[b * p.s + D_ACTIVE] > 0.5 && p.c0 != t;
  dst0[i] = select(0.0, select(0.0, 1.0, j == p.c0) - select(0.0, 1.0, j == t), on);
}

// deepfool_cand: src1 w = grad(z_c0 - z_t) (B, D), rows logits (B, K), labels, dst0 best w
// (in/out), state.
@compute @workgroup_size(256)
fn deepfool_cand(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = sample(wg);
  let live = b < p.b;
  let base = b * p.d;
  let n2 = row_sumsq(ROW_SRC1, live, base, lid, 0.0);
  if (!live) {
    return;
  }
  let sb = b * p.s;
  let t = labels[b];
  let on = state[sb + D_ACTIVE] > 0.5 && p.c0 != t && t < p.k;
  let f = abs(rows[b * p.k + min(p.c0, p.k - 1u)] - rows[b * p.k + min(t, p.k - 1u)]);
  let nrm = max(sqrt(n2), 1e-12);
  let ratio = f / nrm;
  let better = on && ratio < state[sb + D_RATIO];
  workgroupBarrier();
  if (!better) {
    return;
  }
  if (lid == 0u) {
    state[sb + D_RATIO] = ratio;
    state[sb + D_COEF] = (f + 1e-4) / (nrm * nrm);
  }
  for (var j = lid; j < p.d; j += WG) {
    dst0[base + j] = src1[base + j];
  }
}

// deepfool_step: src0 x0, dst0 x (out), dst1 best w (read), dst2 r_tot (in/out), state.
// alpha = 1 + overshoot.
@compute @workgroup_size(256)
fn deepfool_step(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wg, lid);
  if (i >= p.n) {
    return;
  }
  let sb = (i / p.d) * p.s;
  if (state[sb + D_ACTIVE] < 0.5) {
    return;
  }
  let r = dst2[i] + state[sb + D_COEF] * dst1[i];
  dst2[i] = r;
  dst0[i] = clamp(src0[i] + p.alpha * r, 0.0, 1.0);
}

// mask_label: dst0 (B, K) scores; sets column t of each row to -1 (random targets: argmax of
// U[0,1) scores over the other classes is a uniform choice among them).
@compute @workgroup_size(256)
fn mask_label(wg: Workgroup, @builtin(local_invocation_index) lid: u32) {
  let b = flat(wg, lid);
  if (b >= p.b) {
    return;
  }
  let t = labels[b];
  if (t < p.k) {
    dst0[b * p.k + t] = -1.0;
  }
}

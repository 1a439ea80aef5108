// Optimizer steps, one fused kernel per parameter tensor: read the gradient, update the state,
// write the parameter (and optionally zero the gradient), in one pass over memory.
//
// Formulas: PyTorch 1.13 torch/optim/{sgd,adam,adamw}.py, _single_tensor_* (the default,
// foreach=False), operation by operation so that f32 results agree to rounding:
//
// sgd_main (torch.optim.SGD):
//   d = maximize ? -g : g
//   d = d + wd * p                                  (if wd != 0)
//   buf = first ? d : momentum * buf + (1 - dampening) * d     (if momentum != 0)
//   d = nesterov ? d + momentum * buf : buf                    (if momentum != 0)
//   p = p - lr * d
// adam_main (torch.optim.Adam, and AdamW with decoupled = 1):
//   g = maximize ? -g : g
//   Adam:  g = g + wd * p                           (L2 penalty in the gradient)
//   AdamW: p = p * (1 - lr * wd)                    (decoupled decay, Loshchilov & Hutter 2019)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v)                             (amsgrad only; the denominator uses vmax)
//   denom = sqrt(v) / sqrt(bias_correction2) + eps  (eps added after the bias correction)
//   p = p - (lr / bias_correction1) * (m / denom)
// where bias_correction_i = 1 - beta_i^step. Scalars that torch computes in Python double
// (1 - dampening, 1 - beta_i, 1 - lr * wd, lr / bias_correction1, sqrt(bias_correction2)) are
// computed in float64 on the host and passed as f32 uniforms, as torch passes them to its f32
// kernels. The learning rate is a uniform, so a schedule changes it without recompiling.
//
// Threading plan: one invocation per element, 256 per workgroup, workgroups over x and y
// (rt.grid). Purely elementwise: no workgroup memory, no barriers.

struct Params {
  n: u32,
  lr: f32,
  wd: f32,
  momentum: f32,
  one_minus_dampening: f32,
  nesterov: u32,
  first: u32,
  maximize: u32,
  zero_grad: u32,
  beta1: f32,
  one_minus_beta1: f32,
  beta2: f32,
  one_minus_beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
  decay: f32,
  decoupled: u32,
  amsgrad: u32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;  // (n,) updated in place
@group(0) @binding(1) var<storage, read_write> grad: array<f32>;   // (n,) zeroed if zero_grad
@group(0) @binding(2) var<storage, read_write> s1: array<f32>;     // (n,) momentum_buffer | exp_avg
@group(0) @binding(3) var<storage, read_write> s2: array<f32>;     // (n,) exp_avg_sq
@group(0) @binding(4) var<storage, read_write> s3: array<f32>;     // (n,) max_exp_avg_sq
@group(0) @binding(5) var<uniform> p: Params;

fn index(wid: vec3u, nwg: vec3u, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn sgd_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let w = param[i];
  var d = grad[i];
  if (p.zero_grad == 1u) { grad[i] = 0.0; }
  if (p.maximize == 1u) { d = -d; }
  if (p.wd != 0.0) { d = d + p.wd * w; }
  if (p.momentum != 0.0) {
    var buf: f32;
    if (p.first == 1u) {
      buf = d;
    } else {
      buf = s1[i] * p.momentum + p.one_minus_dampening * d;
    }
    s1[i] = buf;
    if (p.nesterov == 1u) {
      d = d + p.momentum * buf;
    } else {
      d = buf;
    }
  }
  param[i] = w - p.lr * d;
}

@compute @workgroup_size(256)
fn adam_main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) { return; }
  var w = param[i];
  var g = grad[i];
  if (p.zero_grad == 1u) { grad[i] = 0.0; }
  if (p.maximize == 1u) { g = -g; }
  if (p.decoupled == 1u) {
    w = w * p.decay;
  } else if (p.wd != 0.0) {
    g = g + p.wd * w;
  }
  let m = s1[i] * p.beta1 + p.one_minus_beta1 * g;
  var v = s2[i] * p.beta2 + p.one_minus_beta2 * g * g;
  s1[i] = m;
  s2[i] = v;
  if (p.amsgrad == 1u) {
    v = max(s3[i], v);
    s3[i] = v;
  }
  let denom = sqrt(v) / p.bc2_sqrt + p.eps;
  param[i] = w - p.step_size * (m / denom);
}

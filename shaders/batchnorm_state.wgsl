// Per-channel state of batch normalization (see batchnorm.wgsl for the math):
// running statistics, eval-mode statistics, and accumulation of dgamma/dbeta.
// PyTorch 1.13: running = (1 - momentum) * running + momentum * batch, with the
// unbiased batch variance; num_batches_tracked += 1 per training forward.
//
// Threading plan: one thread per channel (workgroups of 64); thread 0 also
// bumps num_batches_tracked.

struct Params { c: u32, eps: f32, momentum: f32 }

@group(0) @binding(0) var<storage, read_write> stats: array<f32>;        // (5, C)
@group(0) @binding(1) var<storage, read_write> running_mean: array<f32>; // (C,)
@group(0) @binding(2) var<storage, read_write> running_var: array<f32>;  // (C,)
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;       // (C,)
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;        // (C,)
@group(0) @binding(5) var<storage, read_write> tracked: array<i32>;      // (1,)
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(64)
fn update_running_main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= p.c) { return; }
  running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * stats[c];
  running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * stats[2u * p.c + c];
  if (c == 0u) { tracked[0] += 1; }
}

@compute @workgroup_size(64)
fn eval_stats_main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= p.c) { return; }
  stats[c] = running_mean[c];
  stats[p.c + c] = 1.0 / sqrt(running_var[c] + p.eps);
}

@compute @workgroup_size(64)
fn accum_grads_main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= p.c) { return; }
  dgamma[c] += stats[4u * p.c + c];
  dbeta[c] += stats[3u * p.c + c];
}

// Naive matrix multiply, the baseline of bench/matmul.ts: C (M, N) = A (M, K) · B (K, N),
// all row-major.
//
// Threading plan: one invocation per output element, 16 × 16 workgroups over (column, row);
// each invocation walks K reading one row of A and one column of B straight from the storage
// buffers. No reuse through workgroup memory or registers: every FMA costs two loads.

struct Params { m: u32, n: u32, k: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>; // (M, K)
@group(0) @binding(1) var<storage, read> b: array<f32>; // (K, N)
@group(0) @binding(2) var<storage, read_write> c: array<f32>; // (M, N)
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  let row = gid.y;
  if (row >= p.m || col >= p.n) {
    return;
  }
  var acc = 0.0;
  for (var k = 0u; k < p.k; k++) {
    acc = fma(a[row * p.k + k], b[k * p.n + col], acc);
  }
  c[row * p.n + col] = acc;
}

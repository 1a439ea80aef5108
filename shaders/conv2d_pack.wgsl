// Batched transpose with the rows padded to a multiple of four: the weight operand of the
// CPU-adapter convolution path (shaders/conv2d.wgsl, APACK), packed so that the four A values of
// rows m .. m+3 at one depth k are one aligned vec4 load instead of four scalar gathers.
//
//   out[(t·cols + j)·rows_pad + i] = in[(t·rows + i)·cols + j]   (i < rows; 0 for i >= rows)
//
// Forward: in = W (O, C·kh·kw) as batch 1 of (rows O, cols K), so out[k][o] = W[o][k]. Input
// gradient: in = W (O, C, kh·kw) as batch O of (rows C, cols kh·kw), so out[(o, ky, kx)][c].
// Weight gradient: in = dy (B, O, OH·OW) as batch B of (rows O, cols OH·OW).
//
// Threading plan: one thread per output vec4 (four rows i at one (t, j)), 64 per workgroup, a
// 2-D grid (rt.grid); consecutive threads take consecutive vec4s of `out`. On CPU adapters
// every storage access is a loop over the SIMD lanes, so one vec4 store beats four scalar ones.

struct Params { batch: u32, rows: u32, cols: u32, rows_pad: u32 }

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(2) var<uniform> p: Params;

fn at(t: u32, i: u32, j: u32) -> f32 {
  if (i >= p.rows) { return 0.0; }
  return src[(t * p.rows + i) * p.cols + j];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid.x;
  let quads = p.rows_pad / 4u;
  if (idx >= p.batch * p.cols * quads) { return; }
  let i = 4u * (idx % quads);
  let tj = idx / quads;
  let j = tj % p.cols;
  let t = tj / p.cols;
  out[idx] = vec4f(at(t, i, j), at(t, i + 1u, j), at(t, i + 2u, j), at(t, i + 3u, j));
}

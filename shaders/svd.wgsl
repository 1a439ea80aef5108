// Singular value decomposition of one f32 matrix by one-sided Jacobi (Hestenes 1958, "Inversion of
// matrices by biorthogonalization and related results"; Demmel & Veselić 1992, "Jacobi's method is
// more accurate than QR", sec. 4) — used by src/linalg/svd.ts for hard SVB.
//
// Math. The host stores the matrix so that its p = min(m, n) short vectors are the rows of a
// (p, len) work matrix A (len = max(m, n)): W itself when m ≤ n, Wᵀ otherwise. Rotations of pairs
// of rows (i, j) make all rows mutually orthogonal: with α = ||a_i||², β = ||a_j||², γ = a_i·a_j,
//   ζ = (β − α) / (2γ),  t = sign(ζ) / (|ζ| + sqrt(1 + ζ²)),  c = 1 / sqrt(1 + t²),  s = c t,
//   a_i ← c a_i − s a_j,  a_j ← s a_i + c a_j    (Golub & Van Loan, "Matrix Computations", 4th ed.,
// sec. 8.5.2, the symmetric Schur rotation of the 2×2 Gram block; t is the smaller root, so
// |θ| ≤ π/4 and the rotation converges). The same rotations are applied to the rows of R (p, p),
// started at I, so that A_final = R A_0 with R orthogonal: A_0 = Rᵀ diag(σ) Û, σ_k = ||a_k||,
// Û = rows of A_final / σ. A pair is skipped when |γ| ≤ tol · sqrt(αβ) (already orthogonal to
// working precision); a sweep (p_e − 1 rounds) that rotates nothing ends the iteration.
//
// Order: the round-robin ("chess tournament") ordering of Brent & Luk 1985 ("The solution of
// singular-value and symmetric eigenvalue problems on multiprocessor arrays"): p_e = p rounded up
// to even; in round r < p_e − 1, pair k < p_e / 2 is (r, p_e − 1) for k = 0 and
// ((r + k) mod (p_e − 1), (r − k) mod (p_e − 1)) otherwise, so each round's pairs are disjoint
// and every pair meets once per sweep. Index p (odd p) is a phantom: its pair is skipped.
//
// Threading plan. One dispatch per round, one workgroup of 256 invocations per pair: the three
// dot products of length len are strided over the invocations (coalesced) and tree-summed in
// workgroup memory; then every invocation rotates its strided share of the two rows of A and of
// R. Pairs of a round touch disjoint rows, so the round's workgroups never race. flags (u32):
// [0] converged, [1] "something rotated this sweep", [2] sweeps run; every rotate_main returns
// at once when flags[0] is set, so the host can record a fixed number of sweeps without reading
// anything back.
//
// Entry points (bindings: src read, sv read, work read_write, rot read_write, sout read_write,
// flags read_write atomic; an entry point binds placeholders where it uses nothing):
// - transpose_main, one invocation per element: work[j·m + i] = src[i·n + j]  ((m, n) → (n, m)).
// - init_main, one invocation per element of rot (p, p): rot = I; invocation 0 clears flags.
// - rotate_main: one round (see above) on work (p, len) and rot (p, p).
// - sweep_end_main, one invocation: flags[2] += 1 unless converged; converged if nothing rotated.
// - finish_main, one workgroup per row k < p of work: σ = ||a_k|| / ||r_k|| (the row of R
//   divides out the rounding drift both rows share), sout[k] = σ, then
//   mode 0: a_k ← a_k / ||a_k|| (rows of Û; a zero row stays zero), r_k ← r_k / ||r_k||;
//   mode 1: a_k ← (clip(σ, lo, hi) / σ − 1) / ||r_k||² · a_k, so that W' = W + Rᵀ·work is the
//   matrix with its singular values clipped to [lo, hi] (rows already in the band contribute
//   exactly 0; a σ = 0 has no direction to grow along and is left at 0).
// - sort_rows_main, one workgroup per row k < p of src (p, len): dst row rank(k) = src row k,
//   rank(k) = #{j : sv[j] > sv[k] or (sv[j] = sv[k] and j < k)} (descending order, stable),
//   dst = work.

struct Params {
  p: u32, pe: u32, len: u32, round: u32, m: u32, n: u32, mode: u32, tol: f32, lo: f32, hi: f32
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> sv: array<f32>;
@group(0) @binding(2) var<storage, read_write> work: array<f32>;
@group(0) @binding(3) var<storage, read_write> rot: array<f32>;
@group(0) @binding(4) var<storage, read_write> sout: array<f32>;
@group(0) @binding(5) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(6) var<uniform> q: Params;

// Invocations per workgroup of rotate_main (the host picks 64 for short rows, 256 for long ones).
override RW: u32 = 256u;
const WG: u32 = 256u;

var<workgroup> red3: array<vec3<f32>, 256>;
var<workgroup> stop: u32;

@compute @workgroup_size(256)
fn transpose_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e >= q.m * q.n) { return; }
  let j = e / q.m;
  let i = e - j * q.m;
  work[e] = src[i * q.n + j];
}

@compute @workgroup_size(256)
fn init_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
             @builtin(local_invocation_id) lid: vec3u) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid.x;
  if (e == 0u) {
    atomicStore(&flags[0], select(0u, 1u, q.p <= 1u)); // one row: nothing to rotate
    atomicStore(&flags[1], 0u);
    atomicStore(&flags[2], 0u);
    atomicStore(&flags[3], 0u);
  }
  if (e >= q.p * q.p) { return; }
  let i = e / q.p;
  rot[e] = select(0.0, 1.0, e == i * q.p + i);
}

@compute @workgroup_size(RW)
fn rotate_main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let l = lid.x;
  if (l == 0u) { stop = atomicLoad(&flags[0]); }
  if (workgroupUniformLoad(&stop) != 0u) { return; }
  let k = wid.x;
  let h = q.pe - 1u;
  var i = q.round;
  var j = h;
  if (k > 0u) {
    i = (q.round + k) % h;
    j = (q.round + h - k) % h;
  }
  if (i >= q.p || j >= q.p) { return; }
  var acc = vec3<f32>(0.0);
  for (var t = l; t < q.len; t += RW) {
    let x = work[i * q.len + t];
    let y = work[j * q.len + t];
    acc += vec3<f32>(x * x, y * y, x * y);
  }
  red3[l] = acc;
  for (var s = RW / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (l < s) { red3[l] += red3[l + s]; }
  }
  workgroupBarrier();
  let al = red3[0].x;
  let be = red3[0].y;
  let ga = red3[0].z;
  if (!(abs(ga) > q.tol * sqrt(al * be))) { return; }
  let zeta = (be - al) / (2.0 * ga);
  let tn = select(-1.0, 1.0, zeta >= 0.0) / (abs(zeta) + sqrt(1.0 + zeta * zeta));
  let c = 1.0 / sqrt(1.0 + tn * tn);
  let s = c * tn;
  for (var t = l; t < q.len; t += RW) {
    let x = work[i * q.len + t];
    let y = work[j * q.len + t];
    work[i * q.len + t] = c * x - s * y;
    work[j * q.len + t] = s * x + c * y;
  }
  for (var t = l; t < q.p; t += RW) {
    let x = rot[i * q.p + t];
    let y = rot[j * q.p + t];
    rot[i * q.p + t] = c * x - s * y;
    rot[j * q.p + t] = s * x + c * y;
  }
  if (l == 0u) { atomicStore(&flags[1], 1u); }
}

@compute @workgroup_size(1)
fn sweep_end_main() {
  if (atomicLoad(&flags[0]) != 0u) { return; }
  atomicAdd(&flags[2], 1u);
  if (atomicLoad(&flags[1]) == 0u) { atomicStore(&flags[0], 1u); }
  atomicStore(&flags[1], 0u);
}

@compute @workgroup_size(256)
fn finish_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  let k = wid.y * nwg.x + wid.x;
  let l = lid.x;
  var ss = vec3<f32>(0.0);
  if (k < q.p) {
    for (var t = l; t < q.len; t += WG) { let x = work[k * q.len + t]; ss.x += x * x; }
    for (var t = l; t < q.p; t += WG) { let x = rot[k * q.p + t]; ss.y += x * x; }
  }
  red3[l] = ss;
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (l < s) { red3[l] += red3[l + s]; }
  }
  workgroupBarrier();
  if (k >= q.p) { return; }
  // Row k of A and of R went through the same rotations, so any drift of |c|² + |s|² from 1 in
  // f32 scales both alike: σ_k = ||a_k|| / ||r_k|| cancels it. NOTE: without this, σ of a
  // 512 × 4608 matrix was off by 6e-5 σ_max after 11 sweeps (a bias that grows with the number
  // of rotations); with it, 256 × 3200 is within 6e-7 σ_max of float64 (llvmpipe).
  let an = sqrt(red3[0].x);
  let rn = sqrt(red3[0].y);
  let sigma = an / rn;
  if (l == 0u) { sout[k] = sigma; }
  var f = 0.0;
  if (an > 0.0) {
    if (q.mode == 0u) {
      f = 1.0 / an;
    } else {
      // W' = W + R̃ᵀ diag((clip(σ)/σ − 1) / ||r_k||²) A_final, R̃ = diag(||r||) Q, Q orthogonal.
      f = (clamp(sigma, q.lo, q.hi) / sigma - 1.0) / (rn * rn);
    }
  }
  for (var t = l; t < q.len; t += WG) { work[k * q.len + t] *= f; }
  if (q.mode == 0u) {
    for (var t = l; t < q.p; t += WG) { rot[k * q.p + t] /= rn; }
  }
}

@compute @workgroup_size(256)
fn sort_rows_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  let k = wid.y * nwg.x + wid.x;
  if (k >= q.p) { return; }
  let sk = sv[k];
  var rank = 0u;
  for (var j = 0u; j < q.p; j++) {
    let sj = sv[j];
    if (sj > sk || (sj == sk && j < k)) { rank++; }
  }
  for (var t = lid.x; t < q.len; t += WG) { work[rank * q.len + t] = src[k * q.len + t]; }
}

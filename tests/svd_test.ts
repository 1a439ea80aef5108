import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { svd } from "../src/linalg/svd.ts";
import { singularValuesRef, symmetricEigenRef } from "../src/reference/linalg.ts";

const rt = await getBackend();

/** utᵀ diag(s) vt, (m, n). */
function reconstruct(
  s: ArrayLike<number>,
  ut: ArrayLike<number>,
  vt: ArrayLike<number>,
  m: number,
  n: number,
) {
  const p = s.length;
  const w = new Float64Array(m * n);
  for (let k = 0; k < p; k++) {
    for (let i = 0; i < m; i++) {
      const a = ut[k * m + i] * s[k];
      for (let j = 0; j < n; j++) w[i * n + j] += a * vt[k * n + j];
    }
  }
  return w;
}

/** Max |rows · rowsᵀ − I| of a (p, len) matrix. */
function orthoError(rows: ArrayLike<number>, p: number, len: number): number {
  let worst = 0;
  for (let a = 0; a < p; a++) {
    for (let b = a; b < p; b++) {
      let d = 0;
      for (let t = 0; t < len; t++) d += rows[a * len + t] * rows[b * len + t];
      worst = Math.max(worst, Math.abs(d - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

async function check(m: number, n: number, seed: number, w?: Float32Array) {
  w ??= randomArray(m * n, seed);
  const t = rt.upload(w, [m, n]);
  const r = svd(rt, t);
  const [s, ut, vt, info] = await Promise.all([
    r.s.read(),
    r.ut.read(),
    r.vt.read(),
    r.info.read(),
  ]);
  const p = Math.min(m, n);
  assert.deepEqual([r.s.shape, r.ut.shape, r.vt.shape], [[p], [p, m], [p, n]]);
  const ref = singularValuesRef(w, m, n);
  const what = `${m}x${n}`;
  assertClose(s, ref, { rtol: 0, atol: 2e-6 * ref[0], what: `${what} singular values` });
  for (let k = 1; k < p; k++) assert.ok(s[k] <= s[k - 1], `${what}: s not descending at ${k}`);
  const back = reconstruct(s, ut, vt, m, n);
  const scale = w.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  assertClose(back, w, { rtol: 0, atol: 2e-5 * scale * Math.sqrt(p), what: `${what} U S Vt` });
  const ou = orthoError(ut, p, m), ov = orthoError(vt, p, n);
  assert.ok(ou < 1e-4 && ov < 1e-4, `${what}: orthogonality errors ${ou}, ${ov}`);
  assert.equal(info[0], 1, `${what}: did not converge in 12 sweeps`);
  r.dispose();
  t.dispose();
  return info[2];
}

Deno.test("svd() matches a float64 eigen-decomposition on odd shapes", async () => {
  const shapes = [[1, 1], [1, 5], [5, 1], [2, 2], [3, 17], [17, 3], [6, 25], [25, 6], [33, 7]];
  for (const [i, [m, n]] of shapes.entries()) await check(m, n, 10 + i);
});

Deno.test("svd() on LeNet's fc1 (120 x 400) and conv2 (16 x 150)", async () => {
  const sweeps = await check(120, 400, 3);
  assert.ok(sweeps <= 12);
  await check(16, 150, 4);
});

Deno.test("svd() on a DDNet conv4 weight reshaped (128 x 1152)", async () => {
  await check(128, 1152, 5);
});

Deno.test("svd() of a rank-deficient matrix gives zeros, not NaN", async () => {
  const m = 6, n = 10;
  const w = randomArray(m * n, 7);
  w.copyWithin(3 * n, 0, 3 * n); // rows 3..5 = rows 0..2: rank 3
  const t = rt.upload(w, [m, n]);
  const r = svd(rt, t);
  const s = await r.s.read();
  assert.ok(s.every(Number.isFinite));
  const ref = singularValuesRef(w, m, n);
  assertClose(s, ref, { rtol: 0, atol: 1e-5 * ref[0] });
  assert.ok(s[5] < 1e-5 * s[0]);
  r.dispose();
  t.dispose();
});

Deno.test("symmetricEigenRef() diagonalises a symmetric matrix", () => {
  const n = 5;
  const a = randomArray(n * n, 9);
  const sym = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) sym[i * n + j] = a[i * n + j] + a[j * n + i];
  }
  const { values, vectors: q } = symmetricEigenRef(sym, n);
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += sym[i * n + j] * q[j * n + k];
      assert.ok(Math.abs(av - values[k] * q[i * n + k]) < 1e-12);
    }
  }
});

Deno.test("svd() rejects non-matrices", () => {
  const t = rt.zeros([4]);
  assert.throws(() => svd(rt, t), /svd: .* is not a matrix/);
  t.dispose();
});

// DDNet's fc1 and ResNet-18's widest conv take 25 s and 4 min on llvmpipe (2 shared cores): they
// run on GPU adapters, or anywhere with REGULA_SLOW_TESTS=1. Measured on llvmpipe: 256 x 3200 in
// 11 sweeps, 512 x 4608 in 11 sweeps, both within 6e-7 σ_max of float64.
const slow = !/llvmpipe|lavapipe|swiftshader|software/i.test(rt.description) ||
  Deno.env.get("REGULA_SLOW_TESTS") === "1";

Deno.test({
  name: "svd() on DDNet's fc1 (256 x 3200)",
  ignore: !slow,
  fn: async () => {
    await check(256, 3200, 6);
  },
});

Deno.test({
  name: "svd() on ResNet-18's layer4 conv (512 x 4608)",
  ignore: !slow,
  fn: async () => {
    await check(512, 4608, 7);
  },
});

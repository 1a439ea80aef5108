import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { activationPca, pca, weightStats } from "../src/metrics/mod.ts";
import { singularValuesRef, symmetricEigenRef } from "../src/reference/linalg.ts";
import { mlpModel } from "./_metrics_models.ts";

/** Correlated data: N samples of D = latent (3 strong directions) + small noise. */
function data(n: number, d: number, seed: number): Float32Array {
  const z = randomArray(n * 3, seed, -1, 1);
  const a = randomArray(3 * d, seed + 1, -1, 1);
  const e = randomArray(n * d, seed + 2, -0.05, 0.05);
  const x = new Float32Array(n * d);
  const scale = [3, 1.5, 0.7];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      let s = e[i * d + j] + 0.3;
      for (let l = 0; l < 3; l++) s += scale[l] * z[i * 3 + l] * a[l * d + j];
      x[i * d + j] = s;
    }
  }
  return x;
}

function covRef(x: Float32Array, n: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const c = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < d; q++) {
        c[p * d + q] += ((x[i * d + p] - mean[p]) * (x[i * d + q] - mean[q])) / (n - 1);
      }
    }
  }
  return c;
}

Deno.test("pca() matches the float64 eigendecomposition (covariance, Gram and iterative paths)", async () => {
  const rt = await getBackend();
  // [N, D]: D <= 48 exact Jacobi; D > N the Gram path; D = 60 < N subspace iteration.
  for (const [n, d] of [[40, 7], [12, 30], [200, 60], [3, 1]]) {
    const x = data(n, d, n + d);
    const k = Math.min(2, d);
    const r = await pca(rt, x, n, d, { components: k });
    const ref = symmetricEigenRef(covRef(x, n, d), d);
    const vals = Array.from(ref.values).reverse();
    assertClose(r.variances, vals.slice(0, k), { rtol: 1e-4, atol: 1e-6, what: `λ ${n}x${d}` });
    for (let c = 0; c < k; c++) {
      const v = Float64Array.from({ length: d }, (_, j) => ref.vectors[j * d + (d - 1 - c)]);
      const dot = v.reduce((s, vj, j) => s + vj * r.components[c * d + j], 0);
      assertClose([Math.abs(dot)], [1], { atol: 1e-4, what: `component ${c} of ${n}x${d}` });
    }
    const total = vals.reduce((a, b) => a + b, 0);
    assertClose(r.explained, vals.slice(0, k).map((v) => v / total), { rtol: 1e-4, atol: 1e-6 });
    // Projections are the centred data on the components.
    let p0 = 0;
    for (let j = 0; j < d; j++) p0 += (x[j] - r.mean[j]) * r.components[j];
    assertClose([r.projections[0]], [p0], { atol: 1e-9 });
  }
  await assert.rejects(() => pca(rt, new Float32Array(4), 1, 4), /at least 2 samples/);
});

Deno.test("activationPca() gives two components for every chosen layer", async () => {
  const rt = await getBackend();
  const net = mlpModel(rt, 5, 6, 3, 1);
  const n = 30;
  const y = Int32Array.from({ length: n }, (_, i) => i % 3);
  const res = await activationPca(rt, net.model, {
    x: randomArray(n * 5, 2, 0, 1),
    y,
    sampleShape: [5],
  });
  assert.equal(res.length, 3);
  for (const r of res) {
    assert.equal(r.projections.length, n * 2);
    assert.ok(r.explained[0] >= r.explained[1]);
    assert.deepEqual(r.labels, y);
  }
  assert.match(res[0].layer, /fc1 \(Linear\)/);
  net.model.dispose();
});

Deno.test("weightStats() norms, sparsity and singular values match float64", async () => {
  const rt = await getBackend();
  const net = mlpModel(rt, 5, 6, 3, 4);
  const stats = await weightStats(net.model.params(), { threshold: 0.1 });
  assert.deepEqual(stats.map((s) => s.name), ["fc1.weight", "fc2.weight"]);
  for (const s of stats) {
    const p = net.model.params().find((q) => q.name === s.name)!;
    const w = (await p.value.read()) as Float32Array;
    const [m, nn] = p.value.shape;
    assertClose(s.singularValues!, Array.from(singularValuesRef(w, m, nn)).sort((a, b) => b - a), {
      rtol: 1e-9,
      atol: 1e-12,
    });
    assertClose([s.l2], [Math.sqrt(w.reduce((a, v) => a + v * v, 0))], { rtol: 1e-9 });
    assert.equal(s.sparsity, w.filter((v) => Math.abs(v) <= 0.1).length / w.length);
    assert.equal(s.histogram.counts.reduce((a, b) => a + b, 0), w.length);
  }
  const withBias = await weightStats(net.model.params(), { biases: true });
  assert.equal(withBias.length, 4);
  net.model.dispose();
});

import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  classMapTv,
  classMapTvGpu,
  decisionPlane,
  largestDiscRadius,
  orthonormalize,
  planeTowards,
  planeTv,
  randomPlaneDirections,
} from "../src/metrics/mod.ts";
import { linearRef, planePointRef } from "../src/reference/metrics.ts";
import { linearModel } from "./_metrics_models.ts";

function straight(r: number, col: number): Uint32Array {
  return Uint32Array.from({ length: r * r }, (_, i) => (i % r < col ? 0 : 3));
}

function checker(r: number): Uint32Array {
  return Uint32Array.from({ length: r * r }, (_, i) => (Math.floor(i / r) + (i % r)) % 2);
}

Deno.test("classMapTv() straight boundary and checkerboard have the known values", () => {
  const r = 10;
  // One vertical boundary: R pixels with Dx = 1, Dy = 0.
  assertClose(Object.values(classMapTv(straight(r, 4), r)), [1 / r, 1 / r], { atol: 1e-15 });
  // Diagonal staircase boundary (class = [c >= r]): R−1 corner pixels have Dx = Dy = 1.
  const diag = Uint32Array.from({ length: r * r }, (_, i) => (i % r >= Math.floor(i / r) ? 1 : 0));
  const t = classMapTv(diag, r);
  // Rows 0..R−2 each: one Dx jump at c = r−1 and a Dy jump at c = r.
  assertClose([t.aniso], [(2 * (r - 1)) / (r * r)], { atol: 1e-15 });
  // One-pixel checkerboard: Dx = 1 off the last column, Dy = 1 off the last row.
  const c = classMapTv(checker(r), r);
  const interior = (r - 1) * (r - 1);
  assertClose(
    [c.iso, c.aniso],
    [(interior * Math.SQRT2 + 2 * (r - 1)) / (r * r), (2 * r * (r - 1)) / (r * r)],
    { atol: 1e-14 },
  );
  // The class index does not matter, only the change: 0→9 counts like 0→1.
  const nine = straight(r, 4).map((v) => (v ? 9 : 0));
  assert.deepEqual(classMapTv(nine, r), classMapTv(straight(r, 4).map((v) => (v ? 1 : 0)), r));
  assert.deepEqual(classMapTv(new Uint32Array(r * r), r), { iso: 0, aniso: 0 });
  assert.throws(() => classMapTv(new Uint32Array(5), 2), /5 values for a 2x2 map/);
});

Deno.test("classMapTvGpu() matches classMapTv() on random maps (odd sizes)", async () => {
  const rt = await getBackend();
  for (const [p, r] of [[1, 2], [3, 17], [2, 64]]) {
    const maps = Uint32Array.from(randomArray(p * r * r, p * r, 0, 3), (v) => Math.floor(v));
    maps.set(checker(r), 0);
    const t = rt.upload(maps, [p, r, r]);
    const got = await classMapTvGpu(rt, t);
    t.dispose();
    for (let i = 0; i < p; i++) {
      const want = classMapTv(maps.subarray(i * r * r, (i + 1) * r * r), r);
      assertClose([got.iso[i], got.aniso[i]], [want.iso, want.aniso], { atol: 1e-6, rtol: 1e-6 });
    }
  }
});

Deno.test("randomPlaneDirections() is orthonormal and the same for the same seed and index", () => {
  const a = randomPlaneDirections(784, { seed: 3, index: 7 });
  const b = randomPlaneDirections(784, { seed: 3, index: 7 });
  const c = randomPlaneDirections(784, { seed: 3, index: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.u, c.u);
  const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i], 0);
  assertClose([dot(a.u, a.u), dot(a.v, a.v), dot(a.u, a.v)], [1, 1, 0], { atol: 1e-12 });
  const g = orthonormalize([2, 0, 0], [1, 1, 0]);
  assertClose([...g.u, ...g.v], [1, 0, 0, 0, 1, 0], { atol: 1e-15 });
  assert.throws(() => orthonormalize([1, 2], [2, 4]), /parallel/);
  const t = planeTowards([0, 0, 1], [0, 3, 1], { seed: 2 });
  assertClose([...t.u], [0, 1, 0], { atol: 1e-15 });
  assertClose([dot(t.u, t.v), dot(t.v, t.v)], [0, 1], { atol: 1e-12 });
  assert.throws(() => planeTowards([1, 2], [1, 2]), /target equals x/);
});

Deno.test("decisionPlane() grid classes match a float64 CPU evaluation (tail chunk)", async () => {
  const rt = await getBackend();
  const d = 5, k = 4, res = 17, range = 2.5;
  const { model, w, b } = linearModel(rt, d, k, 21);
  const x = randomArray(d, 4, 0, 1);
  const dirs = randomPlaneDirections(d, { seed: 1 });
  const plane = await decisionPlane(rt, model, x, [d], dirs, { resolution: res, range, chunk: 50 });
  assert.equal(plane.classes.length, res * res);
  let checked = 0;
  for (let r = 0; r < res; r++) {
    for (let c = 0; c < res; c++) {
      const z = linearRef(w, b, planePointRef(x, dirs.u, dirs.v, r, c, res, range), k, d);
      const sorted = [...z].sort((p, q) => q - p);
      if (sorted[0] - sorted[1] < 1e-4) continue; // a near tie may round either way in f32
      assert.equal(plane.classes[r * res + c], z.indexOf(sorted[0]), `point (${r}, ${c})`);
      checked++;
    }
  }
  assert.ok(checked > res * res - 5);
  const z0 = linearRef(w, b, x, k, d);
  assert.equal(plane.centreClass, z0.indexOf(Math.max(...z0)));
  assert.ok(plane.radius > 0 && plane.radius <= range);
  // Deterministic: the same plane twice.
  const again = await decisionPlane(rt, model, x, [d], dirs, { resolution: res, range, chunk: 64 });
  assert.deepEqual(again.classes, plane.classes);
  model.dispose();
});

Deno.test("largestDiscRadius() distance to the nearest grid point of another class", () => {
  // 5x5 grid over [-2, 2]: step 1; centre (0, 0) at (2, 2); another class at (0, 2) = (a 0, b 2).
  const m = new Uint32Array(25);
  m[0 * 5 + 2] = 1;
  assert.deepEqual(largestDiscRadius(m, 5, 2, 0), { radius: 2, censored: false });
  m[1 * 5 + 3] = 2; // (a 1, b 1)
  assertClose([largestDiscRadius(m, 5, 2, 0).radius], [Math.SQRT2], { atol: 1e-15 });
  assert.deepEqual(largestDiscRadius(new Uint32Array(25), 5, 2, 0), {
    radius: 2,
    censored: true,
  });
});

Deno.test("planeTv() mean ± se over planes, identical across calls", async () => {
  const rt = await getBackend();
  const d = 6, k = 3;
  const { model } = linearModel(rt, d, k, 2);
  const data = { x: randomArray(4 * d, 1, 0, 1), sampleShape: [d] };
  const opts = { images: 2, planesPerImage: 3, resolution: 24, range: 3, seed: 5 };
  const a = await planeTv(rt, model, data, opts);
  const b = await planeTv(rt, model, data, opts);
  assert.equal(a.planes, 6);
  assert.deepEqual(a.iso, b.iso);
  const mean = a.aniso.reduce((s, v) => s + v, 0) / 6;
  assertClose([a.anisoMean], [mean], { atol: 1e-12 });
  assert.ok(a.isoMean > 0 && a.isoMean <= a.anisoMean && a.isoSe >= 0);
  model.dispose();
});

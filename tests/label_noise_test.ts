/**
 * Randomized labels (Zhang et al. 2017): randomizeLabels() relabels exactly round(p·N) samples,
 * each to a uniformly drawn other class, reproducibly by seed (chi-square checks of the draws);
 * train() with `labelNoise` trains on the noisy labels only, leaves validation and test data
 * alone, and records a memorisation curve that matches a host recount from the predictions.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { tinyMlp } from "./_train_util.ts";
import { LABEL_NOISE_RULE, randomizeLabels } from "../src/data/label_noise.ts";
import { classCounts, type Dataset } from "../src/data/dataset.ts";
import { evaluate, train } from "../src/train/train.ts";

/** N samples of dimension d whose class is the argmax of K fixed linear scores. */
function linearClasses(n: number, d: number, k: number, seed: number): Dataset {
  const x = randomArray(n * d, seed);
  const w = randomArray(d * k, seed + 100);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = -Infinity;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += x[i * d + j] * w[j * k + c];
      if (s > best) [best, y[i]] = [s, c];
    }
  }
  return { name: "linear", x, y, sampleShape: [d], classes: k, length: n };
}

/** Pearson's χ² of observed counts against expected ones. */
function chiSquare(observed: number[], expected: number[]): number {
  return observed.reduce((a, o, i) => a + (o - expected[i]) ** 2 / expected[i], 0);
}

Deno.test("randomizeLabels() replaces exactly round(p·N) labels by other classes", () => {
  const ds = linearClasses(1001, 3, 5, 1);
  for (const p of [0, 0.1, 0.37, 1]) {
    const r = randomizeLabels(ds, { fraction: p, seed: 4 });
    const m = Math.round(p * ds.length);
    assert.equal(r.corrupted.length, m);
    assert.deepEqual(r.cleanLabels, ds.y);
    assert.equal(r.rule, LABEL_NOISE_RULE);
    const isCorrupted = new Set(r.corrupted);
    let changed = 0;
    for (let i = 0; i < ds.length; i++) {
      if (r.dataset.y[i] !== ds.y[i]) changed++;
      assert.equal(r.dataset.y[i] !== ds.y[i], isCorrupted.has(i), `sample ${i}`);
      assert.ok(r.dataset.y[i] >= 0 && r.dataset.y[i] < 5);
    }
    assert.equal(changed, m, `p = ${p}`);
    assert.ok(r.corrupted.every((v, i) => i === 0 || v > r.corrupted[i - 1]), "ascending");
    assert.equal(r.dataset.x, ds.x, "samples shared, not copied");
  }
  assert.throws(() => randomizeLabels(ds, { fraction: 1.5 }), /fraction must be in \[0, 1\]/);
  assert.throws(() => randomizeLabels(ds, { fraction: NaN }), /fraction must be in \[0, 1\]/);
  assert.throws(() => randomizeLabels(ds, { fraction: 0.1, seed: -1 }), /seed must be/);
  const one = { ...ds, classes: 1, y: new Int32Array(ds.length) };
  assert.throws(() => randomizeLabels(one, { fraction: 0.1 }), /at least 2 classes/);
  assert.equal(randomizeLabels(one, { fraction: 0 }).corrupted.length, 0);
});

Deno.test("randomizeLabels() is a pure function of the seed", () => {
  const ds = linearClasses(500, 2, 10, 2);
  const a = randomizeLabels(ds, { fraction: 0.3, seed: 7 });
  const b = randomizeLabels(ds, { fraction: 0.3, seed: 7 });
  const c = randomizeLabels(ds, { fraction: 0.3, seed: 8 });
  assert.deepEqual(a.dataset.y, b.dataset.y);
  assert.deepEqual(a.corrupted, b.corrupted);
  assert.notDeepEqual(a.corrupted, c.corrupted);
  assert.deepEqual(
    randomizeLabels(ds, { fraction: 0.3 }).dataset.y,
    randomizeLabels(ds, {
      fraction: 0.3,
      seed: 0,
    }).dataset.y,
  );
  // The source is untouched.
  assert.deepEqual(ds.y, linearClasses(500, 2, 10, 2).y);
});

Deno.test("randomizeLabels() draws uniformly: χ² of new labels, offsets and positions", () => {
  const K = 10, n = 40000, p = 0.4;
  const ds = linearClasses(n, 12, K, 3);
  assert.ok(classCounts(ds).every((c) => c > 1000), `${classCounts(ds)}`);
  const r = randomizeLabels(ds, { fraction: p, seed: 11 });
  const m = r.corrupted.length;
  // χ² critical values at significance 0.001 (Pearson 1900; any table: 8 dof 26.12,
  // 9 dof 27.88, 1 dof 10.83).
  // 1. The replacement is uniform over the K-1 other classes: offset (new - old) mod K in 1..K-1.
  const offsets = new Array(K - 1).fill(0);
  for (const i of r.corrupted) offsets[(r.dataset.y[i] - ds.y[i] + K) % K - 1]++;
  const x1 = chiSquare(offsets, offsets.map(() => m / (K - 1)));
  assert.ok(x1 < 26.12, `offsets χ² ${x1} (${offsets})`);
  // 2. Which samples are relabelled does not depend on their class.
  const byClass = new Array(K).fill(0);
  for (const i of r.corrupted) byClass[ds.y[i]]++;
  const counts = classCounts(ds);
  const x2 = chiSquare(byClass, counts.map((c) => (c * m) / n));
  assert.ok(x2 < 27.88, `classes χ² ${x2}`);
  // 3. Nor on their position: as many in the first half as in the second.
  const first = r.corrupted.filter((i) => i < n / 2).length;
  const x3 = chiSquare([first, m - first], [m / 2, m / 2]);
  assert.ok(x3 < 10.83, `halves χ² ${x3}`);
  // 4. The new label is uniform given the old one (K·(K-2) = 80 dof; critical 0.001: 124.8).
  const table = new Array(K * K).fill(0);
  for (const i of r.corrupted) table[ds.y[i] * K + r.dataset.y[i]]++;
  let x4 = 0;
  for (let a = 0; a < K; a++) {
    for (let b = 0; b < K; b++) {
      if (a !== b) x4 += (table[a * K + b] - byClass[a] / (K - 1)) ** 2 / (byClass[a] / (K - 1));
      else assert.equal(table[a * K + b], 0);
    }
  }
  assert.ok(x4 < 124.8, `conditional χ² ${x4}`);
});

Deno.test("train() with labelNoise records the memorisation curve and keeps val/test clean", async () => {
  const rt = await getBackend();
  const all = linearClasses(240, 8, 4, 5);
  const trainSet = { ...all, length: 160, x: all.x.slice(0, 160 * 8), y: all.y.slice(0, 160) };
  const val = { ...all, length: 40, x: all.x.slice(160 * 8, 200 * 8), y: all.y.slice(160, 200) };
  const test = { ...all, length: 40, x: all.x.slice(200 * 8), y: all.y.slice(200) };
  const yTrain = trainSet.y.slice(), yVal = val.y.slice(), yTest = test.y.slice();
  const model = tinyMlp(rt, 8, 64, 4, 2);
  const r = await train(model, { train: trainSet, val, test }, {
    epochs: 150,
    batchSize: 32,
    lr: 0.01,
    optimizer: { algorithm: "adam" },
    labelNoise: { fraction: 0.5, seed: 3 },
    trajectoryEvery: 0,
    seed: 1,
  });
  assert.deepEqual(trainSet.y, yTrain, "the caller's training labels are untouched");
  assert.deepEqual(val.y, yVal);
  assert.deepEqual(test.y, yTest);
  assert.deepEqual(r.labelNoise, {
    fraction: 0.5,
    seed: 3,
    corrupted: 80,
    samples: 160,
    rule: LABEL_NOISE_RULE,
  });
  const noisy = randomizeLabels(trainSet, { fraction: 0.5, seed: 3 });
  // The last epoch's point, recounted on the host from the final model's predictions.
  const last = r.history.at(-1)!;
  const ev = await evaluate(model, noisy.dataset, { perClass: true });
  const pred = ev.predictions!;
  let clean = 0, memorized = 0;
  for (let i = 0; i < 160; i++) if (pred[i] === yTrain[i]) clean++;
  for (const i of noisy.corrupted) if (pred[i] === noisy.dataset.y[i]) memorized++;
  const mem = last.memorization!;
  assert.ok(Math.abs(mem.noisyAccuracy - ev.accuracy) < 1e-12);
  assert.ok(Math.abs(mem.noisyLoss - ev.loss) < 1e-5);
  assert.ok(Math.abs(mem.cleanAccuracy - clean / 160) < 1e-12);
  assert.ok(Math.abs(mem.memorized - memorized / 80) < 1e-12);
  const t = await evaluate(model, test);
  assert.ok(Math.abs(last.testAccuracy! - t.accuracy) < 1e-12);
  assert.ok(Math.abs(last.testLoss! - t.loss) < 1e-5);
  // Zhang et al.'s finding at this scale: the network fits the random labels (memorises) while
  // the clean-label accuracy of the relabelled samples falls; early on it predicts the truth.
  assert.ok(mem.noisyAccuracy > 0.95, `fits the noisy labels: ${mem.noisyAccuracy}`);
  assert.ok(mem.memorized > 0.9, `memorised ${mem.memorized}`);
  const early = r.history.map((h) => h.memorization!.cleanAccuracy);
  assert.ok(Math.max(...early) > mem.cleanAccuracy + 0.2, `clean accuracy ${early}`);
  for (const h of r.history) {
    const m = h.memorization!;
    // Against the noisy labels, a prediction can match the clean or the noisy label of a
    // relabelled sample, never both: noisy = clean - corrupted·(corruptedClean - memorized)/N.
    const want = m.cleanAccuracy - 0.5 * (m.corruptedClean - m.memorized);
    assert.ok(Math.abs(m.noisyAccuracy - want) < 1e-9, `epoch ${h.epoch}`);
  }
  await assert.rejects(
    () => train(model, { train: trainSet }, { epochs: 1, labelNoise: { fraction: 2 } }),
    /labelNoise.fraction must be in \[0, 1\]/,
  );
  model.dispose();
});

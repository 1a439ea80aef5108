import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  calibration,
  classificationMetrics,
  confidenceHistogram,
  evaluateMetrics,
  predictionStatsGpu,
} from "../src/metrics/mod.ts";
import { linearRef, predStatsRef } from "../src/reference/metrics.ts";
import { linearModel } from "./_metrics_models.ts";

Deno.test("calibration() constructed predictions give the known ECE and MCE", () => {
  // 10 samples at confidence 0.95 with 8 correct (gap 0.15), 10 at 0.5 with 5 correct (gap 0).
  const conf = [...new Array(10).fill(0.95), ...new Array(10).fill(0.5)];
  const correct = [...[1, 1, 1, 1, 1, 1, 1, 1, 0, 0], ...[1, 0, 1, 0, 1, 0, 1, 0, 1, 0]];
  const c = calibration(conf, correct);
  assertClose([c.ece, c.mce], [0.075, 0.15], { atol: 1e-12, rtol: 0 });
  assert.equal(c.bins.length, 15);
  assert.equal(c.bins[14].count, 10);
  assert.equal(c.bins[7].count, 10);
  assertClose([c.bins[14].accuracy, c.bins[14].confidence], [0.8, 0.95], { atol: 1e-12 });
  assert.ok(Number.isNaN(c.bins[0].accuracy));
});

Deno.test("calibration() bin edges are (m-1)/M < c <= m/M and 0 goes to the first bin", () => {
  const c = calibration([0, 1 / 15, 1 / 15 + 1e-9, 1], [1, 1, 1, 1]);
  assert.deepEqual(c.bins.map((b) => b.count).slice(0, 2), [2, 1]);
  assert.equal(c.bins[14].count, 1);
  // Perfectly calibrated: everything at confidence 1 and correct.
  assert.equal(calibration([1, 1, 1], [1, 1, 1]).ece, 0);
  assert.throws(() => calibration([1.5], [1]), /outside \[0, 1\]/);
  assert.throws(() => calibration([0.5], [1, 0]), /1 confidences but 2/);
});

Deno.test("confidenceHistogram() counts every sample once", () => {
  const h = confidenceHistogram([0, 0.05, 0.5, 0.999, 1], 10);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 5);
  assert.equal(h.counts[0], 2);
  assert.equal(h.counts[9], 2);
});

Deno.test("predictionStatsGpu() matches the float64 reference (odd sizes, ties, no labels)", async () => {
  const rt = await getBackend();
  for (const [b, k] of [[1, 3], [17, 10], [255, 7]]) {
    const z = randomArray(b * k, b + k, -4, 4);
    if (b > 1) z[k + 2] = z[k + 1] = 10; // a tie: the first index wins
    const y = Int32Array.from({ length: b }, (_, i) => (i * 7) % k);
    const zt = rt.upload(z, [b, k]), yt = rt.upload(y, [b]);
    const s = predictionStatsGpu(rt, zt, yt);
    const got = await s.read();
    assertClose(got, predStatsRef(z, b, k, y), { atol: 2e-6, rtol: 2e-5, what: `stats ${b}x${k}` });
    const s2 = predictionStatsGpu(rt, zt, null);
    const ref = predStatsRef(z, b, k);
    const got2 = await s2.read();
    assertClose(got2, ref, { atol: 2e-6, rtol: 2e-5 });
    for (const t of [zt, yt, s, s2]) t.dispose();
  }
  const bad = rt.upload(new Float32Array(6), [6]);
  assert.throws(() => predictionStatsGpu(rt, bad, null), /logits must be f32 \(B, K\)/);
  bad.dispose();
});

Deno.test("evaluateMetrics() accuracy, confusion and loss match a CPU evaluation", async () => {
  const rt = await getBackend();
  const d = 6, k = 4, n = 37;
  const { model, w, b } = linearModel(rt, d, k, 5);
  const x = randomArray(n * d, 9, 0, 1);
  const y = Int32Array.from({ length: n }, (_, i) => (i * 3) % k);
  const m = await evaluateMetrics(rt, model, { x, y, sampleShape: [d] }, { batchSize: 10 });
  let hit = 0, loss = 0;
  const conf: number[] = [], correct: number[] = [];
  const confusion = Array.from({ length: k }, () => new Array(k).fill(0));
  for (let i = 0; i < n; i++) {
    const z = linearRef(w, b, x.subarray(i * d, (i + 1) * d), k, d);
    const s = predStatsRef(z, 1, k, [y[i]]);
    hit += s[2];
    loss += s[3];
    conf.push(s[0]);
    correct.push(s[2]);
    confusion[y[i]][s[1]]++;
  }
  assertClose([m.accuracy, m.loss], [hit / n, loss / n], { atol: 1e-5 });
  assert.deepEqual(m.confusion, confusion);
  assertClose([m.ece], [calibration(conf, correct).ece], { atol: 1e-5 });
  assert.equal(m.count, n);
  const pc = classificationMetrics(
    {
      pred: new Int32Array([0, 1]),
      nll: new Float32Array(2),
      confidence: new Float32Array(2),
      correct: new Uint8Array(2),
      classes: 3,
    },
    [0, 0],
  );
  assert.deepEqual(pc.perClassAccuracy.slice(0, 1), [0.5]);
  assert.ok(Number.isNaN(pc.perClassAccuracy[2]));
  await assert.rejects(
    () => evaluateMetrics(rt, model, { x, y: y.map((v) => v + 3), sampleShape: [d] }),
    /label \d+ is outside \[0, 4\)/,
  );
  model.dispose();
});

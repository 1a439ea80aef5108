import { torch } from "./_torch.ts";
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { accuracyCount } from "../src/losses/accuracy.ts";
import { mse } from "../src/losses/mse.ts";
import { readLoss, softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { refAccuracyCount, refMse, refSoftmaxCrossEntropy } from "../src/reference/loss.ts";

function labelsFor(b: number, k: number, seed: number): Uint32Array {
  return Uint32Array.from(randomArray(b, seed, 0, k), Math.floor);
}

Deno.test("softmaxCrossEntropy() matches the float64 reference for labels at odd sizes", async () => {
  const rt = await getBackend();
  const sizes = [[1, 1], [3, 10], [17, 3], [5, 255], [2, 1000], [300, 10], [4, 17]];
  for (const [b, k] of sizes) {
    const z = randomArray(b * k, b * 31 + k, -6, 6);
    const y = labelsFor(b, k, k);
    const logits = rt.upload(z, [b, k]);
    const labels = rt.upload(y, [b]);
    for (const labelSmoothing of [0, 0.1]) {
      for (const reduction of ["mean", "sum"] as const) {
        const ce = softmaxCrossEntropy(rt, logits, labels, { labelSmoothing, reduction });
        const ref = refSoftmaxCrossEntropy(z, b, k, y, { labelSmoothing, reduction });
        const what = `(${b},${k}) eps=${labelSmoothing} ${reduction}`;
        assertClose([await readLoss(ce)], [ref.loss], {
          atol: 1e-6,
          rtol: 2e-6,
          what: `loss ${what}`,
        });
        assertClose(await ce.perSample.read(), ref.perSample!, { atol: 1e-6, rtol: 2e-6, what });
        assertClose(await ce.dLogits!.read(), ref.grad, {
          atol: 1e-7,
          rtol: 1e-5,
          what: `grad ${what}`,
        });
        assert.deepEqual(Array.from(await ce.invalid.read()), [0]);
        ce.dispose();
      }
    }
    logits.dispose();
    labels.dispose();
  }
});

Deno.test("softmaxCrossEntropy() matches the float64 reference for soft targets", async () => {
  const rt = await getBackend();
  for (const [b, k] of [[1, 1], [7, 5], [3, 300]]) {
    const z = randomArray(b * k, 5 + k, -4, 4);
    const q = randomArray(b * k, 6 + k, 0, 1);
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += q[i * k + j];
      for (let j = 0; j < k; j++) q[i * k + j] /= s;
    }
    q[0] *= 0.5; // one row that does not sum to 1: used as given, like torch
    const logits = rt.upload(z, [b, k]);
    const soft = rt.upload(q, [b, k]);
    for (const labelSmoothing of [0, 0.25]) {
      const ce = softmaxCrossEntropy(rt, logits, soft, { labelSmoothing });
      const ref = refSoftmaxCrossEntropy(z, b, k, q, { labelSmoothing, soft: true });
      const what = `soft (${b},${k}) eps=${labelSmoothing}`;
      assertClose([await readLoss(ce)], [ref.loss], { atol: 1e-6, rtol: 2e-6, what });
      assertClose(await ce.dLogits!.read(), ref.grad, { atol: 1e-7, rtol: 1e-5, what });
      ce.dispose();
    }
    logits.dispose();
    soft.dispose();
  }
});

Deno.test("softmaxCrossEntropy() matches PyTorch 1.13 with label smoothing and soft targets", async () => {
  const rt = await getBackend();
  const [b, k] = [9, 7];
  const z = randomArray(b * k, 11, -5, 5);
  const y = labelsFor(b, k, 12);
  const q = randomArray(b * k, 13, 0, 1);
  const jobs = [
    { op: "cross_entropy", shape: [b, k], logits: [...z], labels: [...y], label_smoothing: 0 },
    { op: "cross_entropy", shape: [b, k], logits: [...z], labels: [...y], label_smoothing: 0.1 },
    {
      op: "cross_entropy",
      shape: [b, k],
      logits: [...z],
      labels: [...y],
      label_smoothing: 0.3,
      reduction: "sum",
    },
    { op: "cross_entropy", shape: [b, k], logits: [...z], soft: [...q], label_smoothing: 0.2 },
  ];
  const want = await torch(jobs);
  const logits = rt.upload(z, [b, k]);
  const labels = rt.upload(y, [b]);
  const soft = rt.upload(q, [b, k]);
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i] as { label_smoothing: number; reduction?: "sum"; soft?: number[] };
    const ce = softmaxCrossEntropy(rt, logits, j.soft ? soft : labels, {
      labelSmoothing: j.label_smoothing,
      reduction: j.reduction,
    });
    const w = want[i] as { loss: number; grad: number[] };
    assertClose([await readLoss(ce)], [w.loss], { atol: 0, rtol: 1e-5, what: `torch loss ${i}` });
    assertClose(await ce.dLogits!.read(), w.grad, {
      atol: 1e-7,
      rtol: 1e-5,
      what: `torch grad ${i}`,
    });
    ce.dispose();
  }
  logits.dispose();
  labels.dispose();
  soft.dispose();
});

Deno.test("softmaxCrossEntropy() stays finite for logits of +-1e4", async () => {
  const rt = await getBackend();
  const [b, k] = [4, 6];
  const z = new Float32Array(b * k);
  for (let i = 0; i < z.length; i++) z[i] = (i * 7919) % 3 === 0 ? 1e4 : (i % 2 ? -1e4 : 0);
  z.fill(-1e4, 6, 12); // a row of equal extreme logits
  z[12] = 1e4; // a row with a single huge winner
  const y = Uint32Array.from([1, 2, 0, 5]);
  const logits = rt.upload(z, [b, k]);
  const labels = rt.upload(y, [b]);
  const [want] = await torch([
    { op: "cross_entropy", shape: [b, k], logits: [...z], labels: [...y], label_smoothing: 0.1 },
  ]);
  for (const labelSmoothing of [0, 0.1]) {
    const ce = softmaxCrossEntropy(rt, logits, labels, { labelSmoothing });
    const loss = await readLoss(ce);
    const g = await ce.dLogits!.read();
    assert.ok(Number.isFinite(loss), `loss ${loss}`);
    assert.ok(g.every(Number.isFinite), `gradient ${g}`);
    const ref = refSoftmaxCrossEntropy(z, b, k, y, { labelSmoothing });
    assertClose([loss], [ref.loss], { rtol: 1e-6, what: `loss eps=${labelSmoothing}` });
    assertClose(g, ref.grad, { atol: 1e-7, rtol: 1e-5, what: `grad eps=${labelSmoothing}` });
    if (labelSmoothing === 0.1) {
      const w = want as { loss: number; grad: number[] };
      assertClose([loss], [w.loss], { atol: 0, rtol: 1e-5, what: "torch loss" });
      assertClose(g, w.grad, { atol: 1e-7, rtol: 1e-5, what: "torch grad" });
    }
    ce.dispose();
  }
  logits.dispose();
  labels.dispose();
});

Deno.test("softmaxCrossEntropy() flags out-of-range labels without touching other rows", async () => {
  const rt = await getBackend();
  const [b, k] = [5, 4];
  const z = randomArray(b * k, 21, -2, 2);
  const good = Uint32Array.from([0, 3, 1, 2, 2]);
  for (const bad of [Uint32Array.from([0, 4, 1, 1000000, 2]), Int32Array.from([0, -1, 1, 9, 2])]) {
    const logits = rt.upload(z, [b, k]);
    const labels = rt.upload(bad, [b]);
    const ce = softmaxCrossEntropy(rt, logits, labels);
    assert.deepEqual(Array.from(await ce.invalid.read()), [2]);
    assert.ok(Number.isNaN((await ce.loss.read())[0]), "mean loss is NaN");
    await assert.rejects(() => readLoss(ce), /2 of 5 labels are outside \[0, 4\)/);
    const g = await ce.dLogits!.read();
    const ref = refSoftmaxCrossEntropy(z, b, k, good);
    for (const row of [0, 2, 4]) {
      assertClose(g.slice(row * k, row * k + k), ref.grad.slice(row * k, row * k + k), {
        atol: 1e-7,
        what: `row ${row}`,
      });
    }
    assert.deepEqual(Array.from(g.slice(k, 2 * k)), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(g.slice(3 * k, 4 * k)), [0, 0, 0, 0]);
    const per = await ce.perSample.read();
    assert.ok(Number.isNaN(per[1]) && Number.isNaN(per[3]) && Number.isFinite(per[0]));
    ce.dispose();
    logits.dispose();
    labels.dispose();
  }
});

Deno.test("softmaxCrossEntropy() reuses out tensors and skips the gradient when asked", async () => {
  const rt = await getBackend();
  const [b, k] = [6, 3];
  const z = randomArray(b * k, 31, -1, 1);
  const y = labelsFor(b, k, 32);
  const logits = rt.upload(z, [b, k]);
  const labels = rt.upload(y, [b]);
  const first = softmaxCrossEntropy(rt, logits, labels);
  await rt.sync();
  const created = rt.memory().created;
  const second = softmaxCrossEntropy(rt, logits, labels, { out: first });
  assert.equal(second.dLogits, first.dLogits);
  assert.equal(rt.memory().created, created);
  const ref = refSoftmaxCrossEntropy(z, b, k, y);
  assertClose([await readLoss(second)], [ref.loss], { rtol: 1e-6 });
  second.dispose();
  const evalOnly = softmaxCrossEntropy(rt, logits, labels, { grad: false });
  assert.equal(evalOnly.dLogits, null);
  assertClose([await readLoss(evalOnly)], [ref.loss], { rtol: 1e-6 });
  evalOnly.dispose();
  logits.dispose();
  labels.dispose();
});

Deno.test("softmaxCrossEntropy() rejects bad shapes, dtypes and smoothing", async () => {
  const rt = await getBackend();
  const logits = rt.zeros([3, 4]);
  const labels = rt.zeros([2], "u32");
  const soft = rt.zeros([3, 5]);
  const flat = rt.zeros([12]);
  assert.throws(() => softmaxCrossEntropy(rt, logits, labels), /labels must be u32 or i32 \[3\]/);
  assert.throws(() => softmaxCrossEntropy(rt, logits, soft), /soft targets must be f32\[3,4\]/);
  assert.throws(() => softmaxCrossEntropy(rt, flat, labels), /logits must be f32 \(B, K\)/);
  const ok = rt.zeros([3], "u32");
  assert.throws(
    () => softmaxCrossEntropy(rt, logits, ok, { labelSmoothing: 1.5 }),
    /labelSmoothing must be in \[0, 1\]/,
  );
  const wrong = rt.zeros([4, 4]);
  assert.throws(
    () => softmaxCrossEntropy(rt, logits, ok, { out: { dLogits: wrong } }),
    /out.dLogits must be f32\[3,4\]/,
  );
  for (const t of [logits, labels, soft, flat, ok, wrong]) t.dispose();
});

Deno.test("mse() matches the float64 reference and PyTorch at odd sizes", async () => {
  const rt = await getBackend();
  const sizes = [[1], [3], [17, 3], [2049], [5, 1001]];
  const jobs = sizes.map((shape, i) => {
    const n = shape.reduce((a, c) => a * c, 1);
    return {
      op: "mse",
      shape,
      pred: [...randomArray(n, 40 + i, -3, 3)],
      target: [...randomArray(n, 50 + i, -3, 3)],
      reduction: i % 2 ? "sum" : "mean",
    };
  });
  const want = await torch(jobs);
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i];
    const reduction = j.reduction as "mean" | "sum";
    const pred = rt.upload(j.pred, j.shape), target = rt.upload(j.target, j.shape);
    const r = mse(rt, pred, target, { reduction });
    const ref = refMse(new Float32Array(j.pred), new Float32Array(j.target), reduction);
    const loss = (await r.loss.read())[0];
    const g = await r.dPred!.read();
    assertClose([loss], [ref.loss], { atol: 0, rtol: 2e-6, what: `loss ${j.shape}` });
    assertClose(g, ref.grad, { atol: 0, rtol: 1e-6, what: `grad ${j.shape}` });
    const w = want[i] as { loss: number; grad: number[] };
    assertClose([loss], [w.loss], { atol: 0, rtol: 1e-5, what: `torch loss ${j.shape}` });
    assertClose(g, w.grad, { atol: 0, rtol: 1e-5, what: `torch grad ${j.shape}` });
    r.dispose();
    pred.dispose();
    target.dispose();
  }
  const a = rt.zeros([2, 3]), b = rt.zeros([3, 2]);
  assert.throws(() => mse(rt, a, b), /pred \[2,3\] and target \[3,2\] differ in shape/);
  a.dispose();
  b.dispose();
});

Deno.test("accuracyCount() counts first-argmax hits, including ties, and accumulates", async () => {
  const rt = await getBackend();
  const counter = rt.zeros([], "u32");
  let total = 0;
  for (const [b, k] of [[1, 1], [37, 10], [5, 700], [300, 3]]) {
    const z = Float32Array.from(randomArray(b * k, b + k, -2, 2), (v) => Math.round(v * 2) / 2);
    const y = labelsFor(b, k, 3 * b + k);
    const logits = rt.upload(z, [b, k]);
    const labels = rt.upload(y, [b]);
    const want = refAccuracyCount(z, b, k, y);
    const c = accuracyCount(rt, logits, labels);
    assert.equal((await c.read())[0], want, `(${b},${k})`);
    accuracyCount(rt, logits, labels, { out: counter, accumulate: true });
    total += want;
    c.dispose();
    logits.dispose();
    labels.dispose();
  }
  assert.equal((await counter.read())[0], total);
  const tie = rt.upload(new Float32Array([1, 3, 3, 0, 0, 0]), [2, 3]);
  const lab = rt.upload(new Uint32Array([1, 0]), [2]);
  const c = accuracyCount(rt, tie, lab);
  assert.equal((await c.read())[0], 2);
  for (const t of [tie, lab, c, counter]) t.dispose();
});

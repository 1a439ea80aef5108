import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  classScoreGradient,
  jacobianFrobenius,
  occlusion,
  saliency,
  toyMaps,
} from "../src/metrics/mod.ts";
import { linearRef, occlusionLinearRef } from "../src/reference/metrics.ts";
import { linearModel, mlpModel } from "./_metrics_models.ts";

Deno.test("saliency() of a linear model is max over channels of |W[target]|", async () => {
  const rt = await getBackend();
  const [c, h, w, k] = [2, 3, 5, 4];
  const d = c * h * w;
  const { model, w: W } = linearModel(rt, d, k, 8);
  const b = 3;
  const x = rt.upload(randomArray(b * d, 3, 0, 1), [b, c, h, w]);
  const target = rt.upload(new Int32Array([0, 3, 1]), [b]);
  const { map, target: t } = await saliency(rt, model, x, target);
  assert.deepEqual(map.shape, [b, h, w]);
  const got = await map.read();
  const want = new Float64Array(b * h * w);
  const tg = [0, 3, 1];
  for (let i = 0; i < b; i++) {
    for (let q = 0; q < h * w; q++) {
      want[i * h * w + q] = Math.max(
        ...[0, 1].map((ch) => Math.abs(W[tg[i] * d + ch * h * w + q])),
      );
    }
  }
  assertClose(got, want, { atol: 1e-6 });
  assert.deepEqual([...(await t.read())], tg);
  for (const z of [x, target, map, t]) z.dispose();
  model.dispose();
});

Deno.test("classScoreGradient() equals the float64 input gradient of the predicted class", async () => {
  const rt = await getBackend();
  const d = 7, k = 5, b = 17;
  const net = mlpModel(rt, d, 9, k, 30);
  const xs = randomArray(b * d, 6, -1, 1);
  const x = rt.upload(xs, [b, d]);
  const { grad, target } = classScoreGradient(rt, net.model, x, null);
  const g = await grad.read(), t = await target.read();
  for (let i = 0; i < b; i++) {
    const xi = xs.subarray(i * d, (i + 1) * d);
    const z = net.logits(xi);
    assert.equal(t[i], z.indexOf(Math.max(...z)));
    const jac = net.jacobian(xi);
    assertClose(g.subarray(i * d, (i + 1) * d), jac.subarray(t[i] * d, (t[i] + 1) * d), {
      atol: 1e-5,
      rtol: 1e-4,
      what: `sample ${i}`,
    });
  }
  for (const z of [x, grad, target]) z.dispose();
  net.model.dispose();
});

Deno.test("occlusion() of a linear model matches the analytic mean drop (border windows)", async () => {
  const rt = await getBackend();
  const [c, h, w, k] = [2, 7, 9, 3];
  const d = c * h * w;
  const { model, w: W, b } = linearModel(rt, d, k, 12);
  const x = randomArray(d, 2, 0, 1);
  for (const [win, stride, base] of [[3, 2, 0], [4, 3, 0.5], [1, 1, 0]]) {
    const r = await occlusion(rt, model, x, [c, h, w], {
      window: win,
      stride,
      baseline: base,
      target: 1,
      chunk: 5,
    });
    const want = occlusionLinearRef(W, x, 1, c, h, w, win, stride, base);
    assertClose(r.map, want, { atol: 2e-5, rtol: 1e-4, what: `win ${win} stride ${stride}` });
    assertClose([r.base], [linearRef(W, b, x, k, d)[1]], { atol: 1e-5 });
  }
  const p = await occlusion(rt, model, x, [c, h, w], { output: "probability" });
  const z = linearRef(W, b, x, k, d);
  assert.equal(p.target, z.indexOf(Math.max(...z)));
  assert.ok(p.base > 0 && p.base <= 1);
  await assert.rejects(() => occlusion(rt, model, x, [c, h, w], { window: 0 }), /window 0/);
  model.dispose();
});

Deno.test("jacobianFrobenius() exact equals ||J||_F in float64; the estimate is close", async () => {
  const rt = await getBackend();
  const d = 6, k = 4, n = 11;
  const net = mlpModel(rt, d, 8, k, 40);
  const x = randomArray(n * d, 13, -1, 1);
  const r = await jacobianFrobenius(rt, net.model, { x, sampleShape: [d] }, { batchSize: 4 });
  const want = Array.from({ length: n }, (_, i) => {
    const j = net.jacobian(x.subarray(i * d, (i + 1) * d));
    return Math.sqrt(j.reduce((s, v) => s + v * v, 0));
  });
  assertClose(r.norms, want, { atol: 1e-5, rtol: 1e-4 });
  assert.ok(r.exact);
  assertClose([r.mean], [want.reduce((a, v) => a + v, 0) / n], { rtol: 1e-5 });
  const est = await jacobianFrobenius(rt, net.model, { x, sampleShape: [d] }, {
    nproj: 64,
    seed: 3,
  });
  assert.ok(!est.exact);
  // (C / nproj) Σ ||vᵀJ||² is unbiased; with 64 projections the mean is within ~15 %.
  assert.ok(Math.abs(est.rms / r.rms - 1) < 0.15, `estimate ${est.rms} vs ${r.rms}`);
  const again = await jacobianFrobenius(rt, net.model, { x, sampleShape: [d] }, {
    nproj: 64,
    seed: 3,
  });
  assert.deepEqual(again.norms, est.norms);
  net.model.dispose();
});

Deno.test("toyMaps() of Linear(2→4) has constant area factor sqrt(det WᵀW)", async () => {
  const rt = await getBackend();
  const { model, w, b } = linearModel(rt, 2, 4, 77);
  const res = 9;
  const m = await toyMaps(rt, model, { resolution: res, xRange: [-2, 2], yRange: [-1, 1] });
  let a = 0, bb = 0, ab = 0;
  for (let c = 0; c < 4; c++) {
    a += w[2 * c] ** 2;
    bb += w[2 * c + 1] ** 2;
    ab += w[2 * c] * w[2 * c + 1];
  }
  const want = Math.sqrt(a * bb - ab * ab);
  assertClose(m.areaFactor, new Float64Array(res * res).fill(want), { rtol: 1e-5 });
  // Top-left corner is (x min, y max).
  const z = linearRef(w, b, [-2, 1], 4, 2);
  assert.equal(m.classes[0], z.indexOf(Math.max(...z)));
  model.dispose();
});

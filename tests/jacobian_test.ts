/**
 * Jacobian regularization (src/regularizers/jacobian.ts): value and every parameter gradient
 * against PyTorch 1.13 double backprop (tools/torch_jacobian.py) on MLP-tanh, LeNet-tanh,
 * LeNet-relu, DDNet and a model with every supported layer kind; against central differences
 * of the float64 reference; unbiasedness of the random projections; the regularizer hook; errors.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  assertFiniteDifferenceGrads,
  buildModel,
  ddnet,
  f64,
  initParams,
  type LayerDesc,
  lenet,
  maskInputs,
  minPoolGap,
  MLP_TANH,
  readGrads,
  refLayers,
  relErr,
  stateInputs,
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import {
  jacobianNorm,
  jacobianPenalty,
  jacobianRegularizer,
} from "../src/regularizers/jacobian.ts";
import { jacobianPenaltyRef } from "../src/reference/jacobian.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { randomUnitRows } from "../src/regularizers/_chain.ts";
import { createOptimizer } from "../src/train/optim.ts";
import type { Layer } from "../src/layers/layer.ts";
import type { StepContext } from "../src/hooks/step.ts";

/** A model with every layer kind the chain supports, part of it nested. */
const ZOO: LayerDesc[] = [
  { type: "normalize", mean: [0.5, 0.4], std: [0.3, 0.2] },
  { type: "conv2d", name: "features.conv1", in: 2, out: 4, kernel: 3, padding: 1 },
  { type: "batchnorm2d", name: "features.bn1", channels: 4 },
  { type: "softplus" },
  { type: "maxpool2d", kernel: 3, stride: 2 },
  { type: "conv2d", name: "conv2", in: 4, out: 5, kernel: 2 },
  { type: "sigmoid" },
  { type: "avgpool2d", kernel: 2 },
  { type: "flatten" },
  { type: "linear", name: "fc1", in: 5, out: 7 },
  { type: "batchnorm1d", name: "bn2", channels: 7 },
  { type: "leaky_relu" },
  { type: "linear", name: "fc2", in: 7, out: 6 },
  { type: "tanh" },
  { type: "linear", name: "fc3", in: 6, out: 3 },
];

interface Case {
  name: string;
  desc: LayerDesc[];
  x: number[];
  train: boolean;
  nproj: number; // -1 exact
  nest?: number; // wrap the first `nest` layers in a child Sequential
  seed?: number; // of the inputs (default 200 + case index); chosen to avoid max-pool near-ties
}

const CASES: Case[] = [
  { name: "MLP-tanh", desc: MLP_TANH, x: [5, 2], train: false, nproj: 3 },
  { name: "MLP-tanh exact", desc: MLP_TANH, x: [4, 2], train: false, nproj: -1 },
  {
    name: "LeNet-tanh (dropout)",
    desc: lenet("tanh", 0.5),
    x: [3, 1, 28, 28],
    train: true,
    nproj: -1,
  },
  { name: "LeNet-relu", desc: lenet("relu", null), x: [2, 1, 28, 28], train: false, nproj: 2 },
  {
    name: "DDNet (dropout)",
    desc: ddnet(0.5),
    x: [2, 3, 32, 32],
    train: true,
    nproj: 1,
    seed: 1000,
  },
  {
    name: "zoo (BatchNorm eval, nested)",
    desc: ZOO,
    x: [3, 2, 9, 9],
    train: false,
    nproj: 2,
    nest: 4,
  },
];

Deno.test("jacobianPenalty() matches PyTorch double backprop on MLP, LeNet, DDNet and a layer zoo", async () => {
  const rt = await getBackend();
  const jobs: TorchJob[] = [];
  const got: { value: number; perSample: Float32Array; grads: Map<string, Float32Array> }[] = [];
  for (const [ci, c] of CASES.entries()) {
    let model = buildModel(rt, c.desc);
    if (c.nest) {
      model = new Sequential(rt, "", [
        new Sequential(rt, "features", model.layers.slice(0, c.nest)),
        ...model.layers.slice(c.nest),
      ]);
    }
    initParams(rt, model, 100 + ci);
    if (c.train) model.train();
    else model.eval();
    model.setCounter(ci);
    const b = c.x[0];
    const xd = randomArray(c.x.reduce((p, q) => p * q, 1), c.seed ?? 200 + ci, 0, 1);
    const x = upload(rt, xd, c.x);
    const gap = await minPoolGap(model, x);
    assert.ok(gap > 1e-6, `${c.name}: max-pool near-tie ${gap} (pick other inputs)`);
    const classes = model.outputShape(c.x)[1];
    const n = c.nproj === -1 ? classes : c.nproj;
    const vd = randomArray(n * b * classes, 300 + ci);
    const v = c.nproj === -1 ? undefined : upload(rt, vd, [n, b, classes]);
    model.zeroGrad();
    const lambda = 0.7;
    const r = jacobianPenalty(rt, model, x, { v, nproj: c.nproj, lambda });
    got.push({
      value: (await r.value.read())[0],
      perSample: (await r.perSample.read()) as Float32Array,
      grads: await readGrads(model),
    });
    jobs.push({
      spec: {
        op: "jacobian",
        model: { layers: c.desc },
        lambda,
        mode: c.train ? "train" : "eval",
        ...(c.nproj === -1 ? { nproj: -1 } : {}),
      },
      inputs: {
        ...(await stateInputs(model)),
        ...(await maskInputs(model)),
        x: f64(c.x, xd),
        ...(v ? { v: f64([n, b, classes], vd) } : {}),
      },
    });
    r.dispose();
    x.dispose();
    v?.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, c] of CASES.entries()) {
    const g = got[i], w = want[i];
    let worst = relErr([g.value], w.value.data);
    worst = Math.max(worst, relErr(g.perSample, w.per_sample.data));
    let worstName = "value";
    for (const [name, grad] of g.grads) {
      const e = relErr(grad, w[`grad.${name}`].data);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < 1e-4, `${c.name}: ${name} relative error ${e.toExponential(2)}`);
    }
    console.log(`${c.name}: max rel err ${worst.toExponential(2)} (${worstName})`);
    assert.ok(relErr([g.value], w.value.data) < 1e-5, `${c.name}: value ${g.value}`);
  }
});

/** The reference twin of a GPU MLP with Linear and activation layers. */
Deno.test("jacobianPenalty() gradient matches central differences of the float64 reference", async () => {
  const rt = await getBackend();
  const desc: LayerDesc[] = [
    { type: "linear", name: "fc1", in: 3, out: 5 },
    { type: "tanh" },
    { type: "linear", name: "fc2", in: 5, out: 4 },
    { type: "softplus" },
    { type: "linear", name: "fc3", in: 4, out: 4 },
    { type: "sigmoid" },
    { type: "linear", name: "fc4", in: 4, out: 3 },
  ];
  const model = buildModel(rt, desc);
  initParams(rt, model, 7, 1.5);
  const b = 4, c = 3, n = 2, lambda = 0.5;
  const xd = randomArray(b * 3, 8);
  const vd = randomArray(n * b * c, 9);
  const x = upload(rt, xd, [b, 3]), v = upload(rt, vd, [n, b, c]);
  model.zeroGrad();
  const r = jacobianPenalty(rt, model, x, { v, lambda });
  const value = (await r.value.read())[0];
  const grads = await readGrads(model);
  const ref = await refLayers(model, desc);
  const f = () => jacobianPenaltyRef(ref, xd, b, vd, n, lambda).value;
  assert.ok(relErr([value], [f()]) < 1e-5, `value ${value} vs ${f()}`);
  assertFiniteDifferenceGrads(ref, desc, grads, f);
  r.dispose();
  x.dispose();
  v.dispose();
  model.dispose();
});

Deno.test("jacobianNorm() with one random projection is unbiased over 2000 draws", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, MLP_TANH);
  initParams(rt, model, 21, 1.5);
  model.eval();
  const draws = 2000;
  const one = randomArray(2, 22);
  const x = upload(rt, Array.from({ length: draws * 2 }, (_, i) => one[i % 2]), [draws, 2]);
  // Every row of the batch is the same sample with its own projection: 2000 draws in one pass.
  const est = await jacobianNorm(rt, model, x, { nproj: 1, seed: 5, step: 3 }).read();
  const x1 = upload(rt, one, [1, 2]);
  const exactT = jacobianNorm(rt, model, x1, { nproj: -1 });
  const exact = (await exactT.read())[0];
  let m = 0;
  for (const q of est) m += q;
  m /= draws;
  let s2 = 0;
  for (const q of est) s2 += (q - m) ** 2;
  const se = Math.sqrt(s2 / (draws - 1) / draws);
  assert.ok(
    Math.abs(m - exact) < 3 * se,
    `mean ${m} of ${draws} draws vs exact ${exact} (standard error ${se})`,
  );
  assert.ok(se > 0, "the projections must differ between rows");
  // Fresh directions at another step; the same ones at the same (seed, step).
  const again = await jacobianNorm(rt, model, x, { nproj: 1, seed: 5, step: 3 }).read();
  const next = await jacobianNorm(rt, model, x, { nproj: 1, seed: 5, step: 4 }).read();
  assert.deepEqual(again, est);
  assert.notDeepEqual(next, est);
  exactT.dispose();
  x.dispose();
  x1.dispose();
  model.dispose();
});

Deno.test("jacobianRegularizer() afterBackward adds the penalty of the cached forward", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, lenet("tanh", 0.5));
  initParams(rt, model, 31);
  model.train();
  model.setCounter(4);
  const x = upload(rt, randomArray(2 * 784, 32, 0, 1), [2, 1, 28, 28]);
  const y = rt.upload(new Int32Array([3, 7]), [2], "i32");
  model.zeroGrad();
  const want = jacobianPenalty(rt, model, x, { nproj: 2, seed: 9, step: 12, lambda: 0.05 });
  const wantValue = (await want.value.read())[0];
  const wantGrads = await readGrads(model);
  const reg = jacobianRegularizer({ lambda: 0.05, nproj: 2 });
  assert.equal(reg.name, "jacobian");
  model.zeroGrad();
  model.forward(x);
  const ctx: StepContext = {
    rt,
    model,
    params: model.params(),
    x,
    y,
    step: 12,
    epoch: 0,
    stepsPerEpoch: 10,
    seed: 9,
  };
  const value = (await reg.afterBackward!(ctx)!.read())[0];
  assert.ok(relErr([value], [wantValue]) < 1e-6, `${value} vs ${wantValue}`);
  for (const [k, g] of await readGrads(model)) {
    assert.ok(relErr(g, wantGrads.get(k)!) < 1e-5, k);
  }
  reg.dispose!();
  want.dispose();
  x.dispose();
  y.dispose();
  model.dispose();
});

Deno.test("jacobianRegularizer() backward = the model's backward of dLogits + afterBackward", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, lenet("tanh", 0.5));
  initParams(rt, model, 33);
  model.train();
  model.setCounter(5);
  const x = upload(rt, randomArray(3 * 784, 34, 0, 1), [3, 1, 28, 28]);
  const y = rt.upload(new Int32Array([1, 4, 9]), [3], "i32");
  const dLogits = upload(rt, randomArray(3 * 10, 35, -1, 1), [3, 10]);
  const ctx: StepContext = {
    rt,
    model,
    params: model.params(),
    x,
    y,
    step: 7,
    epoch: 0,
    stepsPerEpoch: 10,
    seed: 3,
  };
  // Apart: the model's backward of dLogits, then the penalty's own passes.
  const apart = jacobianRegularizer({ lambda: 0.05, nproj: 1 });
  model.zeroGrad();
  model.forward(x);
  model.backwardParams(dLogits);
  const wantValue = (await apart.afterBackward!(ctx)!.read())[0];
  const want = await readGrads(model);
  // Shared: one backward serves both.
  const shared = jacobianRegularizer({ lambda: 0.05, nproj: 1 });
  model.zeroGrad();
  model.forward(x);
  const value = (await shared.backward!(ctx, dLogits)!.read())[0];
  assert.ok(relErr([value], [wantValue]) < 1e-6, `${value} vs ${wantValue}`);
  for (const [k, g] of await readGrads(model)) {
    assert.ok(relErr(g, want.get(k)!) < 1e-5, `${k}: ${relErr(g, want.get(k)!)}`);
  }
  assert.deepEqual([...await dLogits.read()], [...randomArray(3 * 10, 35, -1, 1)]);
  for (const r of [apart, shared]) r.dispose!();
  for (const t of [x, y, dLogits]) t.dispose();
  model.dispose();
});

Deno.test("jacobianPenalty() refuses unknown layers and bad v", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, ZOO);
  initParams(rt, model, 41);
  model.eval();
  const x = upload(rt, randomArray(2 * 2 * 81, 42, 0, 1), [2, 2, 9, 9]);
  assert.throws(
    () => jacobianPenalty(rt, model, x, { v: rt.zeros([1, 2, 4]) }),
    /v must be \(nproj, 2, 3\)/,
  );
  assert.throws(() => jacobianPenalty(rt, model, x, { nproj: 0 }), /nproj must be/);
  const residual: Layer = {
    name: "layer1.0",
    training: false,
    outputShape: (s) => [...s],
    forward: (t) => t,
    backward: (t) => t,
    jvp: (t) => t,
    params: () => [],
    dispose: () => {},
  };
  const res = new Sequential(rt, "", [residual, ...model.layers]);
  assert.throws(() => jacobianPenalty(rt, res, x), /cannot differentiate through layer1.0/);
  x.dispose();
  model.dispose();
});

Deno.test("randomUnitRows() draws unit vectors, reproducibly by (seed, step)", async () => {
  const rt = await getBackend();
  const c = 7, rows = 3000;
  const a = rt.empty([rows, c]), b = rt.empty([rows, c]), d = rt.empty([rows, c]);
  randomUnitRows(rt, a, c, { seed: 3, step: 1, stream: "jacobian" });
  randomUnitRows(rt, b, c, { seed: 3, step: 1, stream: "jacobian" });
  randomUnitRows(rt, d, c, { seed: 3, step: 2, stream: "jacobian" });
  const va = await a.read();
  assert.deepEqual(await b.read(), va);
  assert.notDeepEqual(await d.read(), va);
  // Unit norms, and E[v vᵀ] = I / C (within a few standard errors of 3000 draws).
  const m = new Float64Array(c * c);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < c; i++) s += va[r * c + i] ** 2;
    assert.ok(Math.abs(s - 1) < 1e-5, `row ${r} has squared norm ${s}`);
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) m[i * c + j] += (va[r * c + i] * va[r * c + j]) / rows;
    }
  }
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      const want = i === j ? 1 / c : 0;
      assert.ok(Math.abs(m[i * c + j] - want) < 0.015, `E[v v^T][${i},${j}] = ${m[i * c + j]}`);
    }
  }
  for (const t of [a, b, d]) t.dispose();
});

Deno.test("jacobianPenalty() with grad: false leaves the gradients alone", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, MLP_TANH);
  initParams(rt, model, 61);
  const x = upload(rt, randomArray(6, 62), [3, 2]);
  model.zeroGrad();
  const r = jacobianPenalty(rt, model, x, { nproj: -1, grad: false, lambda: 2 });
  const norms = await jacobianNorm(rt, model, x, { nproj: -1 }).read();
  const mean = Array.from(norms).reduce((p, q) => p + q, 0) / 3;
  assert.ok(relErr(await r.value.read(), [mean]) < 1e-6, "value = (λ/2) mean R with λ = 2");
  for (const [k, g] of await readGrads(model)) assert.ok(g.every((q) => q === 0), k);
  r.dispose();
  x.dispose();
  model.dispose();
});

Deno.test("jacobianPenalty() gradient steps shrink the Jacobian (nproj 1 and exact)", async () => {
  const rt = await getBackend();
  for (const nproj of [1, -1]) {
    const model = buildModel(rt, MLP_TANH);
    initParams(rt, model, 81, 2);
    const x = upload(rt, randomArray(32, 82), [16, 2]);
    const opt = createOptimizer(rt, { algorithm: "sgd" });
    const norm = async () => {
      const t = jacobianNorm(rt, model, x, { nproj: -1 });
      const v = Array.from(await t.read()).reduce((p, q) => p + q, 0) / 16;
      t.dispose();
      return v;
    };
    const before = await norm();
    for (let step = 0; step < 30; step++) {
      model.zeroGrad();
      jacobianPenalty(rt, model, x, { nproj, seed: 1, step, lambda: 1 }).dispose();
      opt.step(model.params(), 0.02);
      rt.submit();
    }
    const after = await norm();
    assert.ok(after < 0.6 * before, `nproj ${nproj}: mean ||J||² ${before} -> ${after}`);
    opt.dispose();
    x.dispose();
    model.dispose();
  }
});

/**
 * Input-gradient norm (src/regularizers/gradient_norm.ts): value and parameter gradients against
 * PyTorch 1.13 double backprop (tools/torch_jacobian.py) on MLP-tanh, LeNet-tanh with dropout,
 * LeNet-relu and a layer zoo; against central differences of the float64 reference; the
 * regularizer hooks.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  assertFiniteDifferenceGrads,
  buildModel,
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
import { gradientNormPenalty, gradientNormRegularizer } from "../src/regularizers/gradient_norm.ts";
import { gradientNormRef } from "../src/reference/jacobian.ts";
import type { StepContext } from "../src/hooks/step.ts";

const ZOO: LayerDesc[] = [
  { type: "conv2d", name: "conv1", in: 2, out: 3, kernel: 3, padding: 1 },
  { type: "batchnorm2d", name: "bn1", channels: 3 },
  { type: "softplus" },
  { type: "maxpool2d", kernel: 3, stride: 2 },
  { type: "flatten" },
  { type: "linear", name: "fc1", in: 48, out: 6 },
  { type: "sigmoid" },
  { type: "linear", name: "fc2", in: 6, out: 4 },
];

interface Case {
  name: string;
  desc: LayerDesc[];
  x: number[];
  train: boolean;
  smoothing?: number;
}

const CASES: Case[] = [
  { name: "MLP-tanh", desc: MLP_TANH, x: [5, 2], train: false },
  { name: "MLP-tanh (label smoothing)", desc: MLP_TANH, x: [3, 2], train: false, smoothing: 0.1 },
  { name: "LeNet-tanh (dropout)", desc: lenet("tanh", 0.5), x: [3, 1, 28, 28], train: true },
  { name: "LeNet-relu", desc: lenet("relu", null), x: [2, 1, 28, 28], train: false },
  { name: "zoo (BatchNorm eval)", desc: ZOO, x: [3, 2, 9, 9], train: false },
];

Deno.test("gradientNormPenalty() matches PyTorch double backprop", async () => {
  const rt = await getBackend();
  const jobs: TorchJob[] = [];
  const got: { value: number; perSample: Float32Array; grads: Map<string, Float32Array> }[] = [];
  const lambda = 0.4;
  for (const [ci, c] of CASES.entries()) {
    const model = buildModel(rt, c.desc);
    initParams(rt, model, 700 + ci, 1.5);
    if (c.train) model.train();
    else model.eval();
    model.setCounter(ci);
    const b = c.x[0];
    const xd = randomArray(c.x.reduce((p, q) => p * q, 1), 800 + ci, 0, 1);
    const x = upload(rt, xd, c.x);
    assert.ok((await minPoolGap(model, x)) > 1e-6, `${c.name}: max-pool near-tie`);
    const classes = model.outputShape(c.x)[1];
    const yd = Array.from({ length: b }, (_, i) => (3 * i + ci) % classes);
    const y = rt.upload(new Int32Array(yd), [b], "i32");
    model.zeroGrad();
    const r = gradientNormPenalty(rt, model, x, y, { lambda, labelSmoothing: c.smoothing });
    got.push({
      value: (await r.value.read())[0],
      perSample: (await r.perSample.read()) as Float32Array,
      grads: await readGrads(model),
    });
    jobs.push({
      spec: {
        op: "gradient_norm",
        model: { layers: c.desc },
        lambda,
        label_smoothing: c.smoothing ?? 0,
        mode: c.train ? "train" : "eval",
      },
      inputs: {
        ...(await stateInputs(model)),
        ...(await maskInputs(model)),
        x: f64(c.x, xd),
        y: { dtype: "I32", shape: [b], data: Int32Array.from(yd) },
      },
    });
    r.dispose();
    x.dispose();
    y.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, c] of CASES.entries()) {
    const g = got[i], w = want[i];
    let worst = relErr([g.value], w.value.data), worstName = "value";
    assert.ok(worst < 1e-5, `${c.name}: value ${g.value} vs ${w.value.data[0]}`);
    assert.ok(relErr(g.perSample, w.per_sample.data) < 1e-5, `${c.name}: per sample`);
    for (const [name, grad] of g.grads) {
      const e = relErr(grad, w[`grad.${name}`].data);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < 1e-4, `${c.name}: ${name} relative error ${e.toExponential(2)}`);
    }
    console.log(`${c.name}: max rel err ${worst.toExponential(2)} (${worstName})`);
  }
});

Deno.test("gradientNormPenalty() gradient matches central differences (float64)", async () => {
  const rt = await getBackend();
  const desc: LayerDesc[] = [
    { type: "linear", name: "fc1", in: 3, out: 5 },
    { type: "tanh" },
    { type: "linear", name: "fc2", in: 5, out: 4 },
    { type: "sigmoid" },
    { type: "linear", name: "fc3", in: 4, out: 3 },
  ];
  const model = buildModel(rt, desc);
  initParams(rt, model, 17, 2);
  const b = 4, lambda = 0.5;
  const xd = randomArray(b * 3, 18);
  const yd = [0, 2, 1, 2];
  const x = upload(rt, xd, [b, 3]);
  const y = rt.upload(new Int32Array(yd), [b], "i32");
  model.zeroGrad();
  const r = gradientNormPenalty(rt, model, x, y, { lambda });
  const value = (await r.value.read())[0];
  const grads = await readGrads(model);
  const ref = await refLayers(model, desc);
  const f = () => gradientNormRef(ref, xd, yd, lambda).value;
  assert.ok(relErr([value], [f()]) < 1e-5, `value ${value} vs ${f()}`);
  assertFiniteDifferenceGrads(ref, desc, grads, f);
  r.dispose();
  x.dispose();
  y.dispose();
  model.dispose();
});

Deno.test("gradientNormRegularizer() hooks match the pure function on the cached forward", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, lenet("tanh", 0.5));
  initParams(rt, model, 91);
  model.train();
  model.setCounter(2);
  const x = upload(rt, randomArray(2 * 784, 92, 0, 1), [2, 1, 28, 28]);
  const y = rt.upload(new Int32Array([4, 9]), [2], "i32");
  model.zeroGrad();
  const want = gradientNormPenalty(rt, model, x, y, { lambda: 0.3 });
  const wantValue = (await want.value.read())[0];
  const wantGrads = await readGrads(model);
  const reg = gradientNormRegularizer({ lambda: 0.3 });
  assert.equal(reg.name, "gradient-norm");
  const ctx: StepContext = {
    rt,
    model,
    params: model.params(),
    x,
    y,
    step: 0,
    epoch: 0,
    stepsPerEpoch: 1,
    seed: 0,
  };
  assert.throws(() => reg.afterBackward!(ctx), /before logitsGrad/);
  model.zeroGrad();
  const logits = model.forward(x);
  const dLogits = rt.zeros(logits.shape);
  assert.equal(reg.logitsGrad!(ctx, logits, dLogits), null);
  const value = (await reg.afterBackward!(ctx)!.read())[0];
  assert.equal(value, wantValue);
  for (const [k, g] of await readGrads(model)) assert.deepEqual(g, wantGrads.get(k), k);
  reg.dispose!();
  want.dispose();
  dLogits.dispose();
  x.dispose();
  y.dispose();
  model.dispose();
});

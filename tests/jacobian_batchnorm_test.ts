/**
 * The penalties on the function through BatchNorm in training mode, against PyTorch 1.13 double
 * backprop on a train-mode model (tools/torch_jacobian.py `mode: "train"`, float64): the batch
 * statistics couple the samples, so `u = ∂(Σ_i v_i·z_i)/∂x` of the whole batch has cross-sample
 * terms, as plain autograd computes it. For a conv net with BatchNorm2d, a small ResNet (BasicBlocks
 * with BatchNorm, one with the projection shortcut) and an MLP with BatchNorm1d: the Jacobian
 * penalty (given projections and exact), the determinant and the input-gradient norm — value,
 * per-sample values, every parameter gradient, and the running statistics after the one forward
 * (one update, as PyTorch's). Then a training run with the Jacobian regularizer in training mode
 * against PyTorch's SGD (tools/torch_bridge.py `train_sgd` with `jr_lambda`), weights and
 * running statistics after two steps.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  buildModel,
  f64,
  initParams,
  type LayerDesc,
  readGrads,
  relErr,
  stateInputs,
  TINY_RESNET,
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import { torchBridge } from "./_model_bridge.ts";
import { jacobianPenalty, jacobianRegularizer } from "../src/regularizers/jacobian.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import type { PenaltyResult } from "../src/regularizers/_engine.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import { Batches } from "../src/data/batches.ts";
import { train } from "../src/train/train.ts";

/** Conv → BatchNorm2d → tanh (an injection below a BatchNorm) → conv → BatchNorm2d → ReLU → fc. */
const CONV_BN: LayerDesc[] = [
  { type: "conv2d", name: "conv1", in: 2, out: 4, kernel: 3, padding: 1 },
  { type: "batchnorm2d", name: "bn1", channels: 4 },
  { type: "tanh" },
  { type: "conv2d", name: "conv2", in: 4, out: 3, kernel: 3 },
  { type: "batchnorm2d", name: "bn2", channels: 3 },
  { type: "relu" },
  { type: "avgpool2d", kernel: 2 },
  { type: "flatten" },
  { type: "linear", name: "fc", in: 12, out: 3 },
];

/** Linear → BatchNorm1d → tanh → Linear → BatchNorm1d → softplus → Linear. */
const MLP_BN: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 5, out: 8 },
  { type: "batchnorm1d", name: "bn1", channels: 8 },
  { type: "tanh" },
  { type: "linear", name: "fc2", in: 8, out: 7 },
  { type: "batchnorm1d", name: "bn2", channels: 7 },
  { type: "softplus" },
  { type: "linear", name: "fc3", in: 7, out: 3 },
];

const MODELS: { name: string; desc: LayerDesc[]; shape: number[] }[] = [
  { name: "conv + BatchNorm2d", desc: CONV_BN, shape: [4, 2, 6, 6] },
  { name: "ResNet (BasicBlocks)", desc: TINY_RESNET, shape: [3, 2, 6, 6] },
  { name: "MLP + BatchNorm1d", desc: MLP_BN, shape: [6, 5] },
];

type Op = "jacobian" | "jacobian exact" | "determinant" | "gradient_norm";
const OPS: Op[] = ["jacobian", "jacobian exact", "determinant", "gradient_norm"];

/** The BatchNorm buffers (running statistics, batches tracked) read back, by name. */
async function buffers(model: Sequential): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const p of model.params()) {
    if (p.kind === "buffer") out.set(p.name, Array.from(await p.value.read(), Number));
  }
  return out;
}

Deno.test("Jacobian, determinant and gradient-norm penalties through training-mode BatchNorm match PyTorch double backprop", async () => {
  const rt = await getBackend();
  const classes = 3, nproj = 2, lambda = 0.6;
  const jobs: TorchJob[] = [];
  const got: {
    what: string;
    value: number;
    perSample: Float32Array;
    grads: Map<string, Float32Array>;
    state: Map<string, number[]>;
  }[] = [];
  let seed = 1000;
  for (const { name, desc, shape } of MODELS) {
    const b = shape[0];
    for (const op of OPS) {
      seed += 10;
      const model = buildModel(rt, desc);
      initParams(rt, model, seed, 1.5);
      model.train();
      // The state before the penalty's forward, which updates the running statistics.
      const state = await stateInputs(model);
      const xd = randomArray(shape.reduce((p, q) => p * q, 1), seed + 1, -1, 1);
      const x = upload(rt, xd, shape);
      const vd = randomArray(nproj * b * classes, seed + 2);
      const v = upload(rt, vd, [nproj, b, classes]);
      const yd = Array.from({ length: b }, (_, k) => (2 * k + seed) % classes);
      const y = rt.upload(new Int32Array(yd), [b], "i32");
      model.zeroGrad();
      let r: PenaltyResult;
      const extra: Record<string, ReturnType<typeof f64>> = {};
      const spec: Record<string, unknown> = { op, model: { layers: desc }, lambda, mode: "train" };
      if (op === "jacobian") {
        r = jacobianPenalty(rt, model, x, { v, lambda });
        extra.v = f64([nproj, b, classes], vd);
      } else if (op === "jacobian exact") {
        r = jacobianPenalty(rt, model, x, { nproj: -1, lambda });
        Object.assign(spec, { op: "jacobian", nproj: -1 });
      } else if (op === "determinant") {
        r = jacobianDeterminantPenalty(rt, model, x, { lambda });
      } else {
        r = gradientNormPenalty(rt, model, x, y, { lambda });
        extra.y = { dtype: "I64", shape: [b], data: BigInt64Array.from(yd.map(BigInt)) };
      }
      got.push({
        what: `${name}, ${op}`,
        value: (await r.value.read())[0],
        perSample: (await r.perSample.read()) as Float32Array,
        grads: await readGrads(model),
        state: await buffers(model),
      });
      jobs.push({ spec, inputs: { ...state, x: f64(shape, xd), ...extra } });
      r.dispose();
      for (const t of [x, v, y]) t.dispose();
      model.dispose();
    }
  }
  const want = await torchJacobian(jobs);
  for (const [i, g] of got.entries()) {
    const w = want[i], what = g.what;
    const ev = relErr([g.value], w.value.data);
    assert.ok(ev < 1e-5, `${what}: value ${g.value} vs ${w.value.data}`);
    const ep = relErr(g.perSample, w.per_sample.data);
    assert.ok(ep < 1e-4, `${what}: per-sample values, relative error ${ep}`);
    let worst = 0, worstName = "";
    let scale = 0;
    for (const [name] of g.grads) {
      for (const q of w[`grad.${name}`].data) scale = Math.max(scale, Math.abs(q));
    }
    for (const [name, grad] of g.grads) {
      const want = w[`grad.${name}`].data;
      const wantMax = Math.max(...Array.from(want, Math.abs));
      const gotMax = Math.max(...Array.from(grad, Math.abs));
      if (wantMax < 1e-9 * scale) {
        // A gradient that vanishes identically: the biases right before a training-mode
        // BatchNorm (the batch mean removes them), a BatchNorm β under a ReLU for the Jacobian
        // (the masks are locally constant). Ours must vanish up to rounding.
        assert.ok(gotMax < 1e-5 * scale, `${what}: ${name} is ${gotMax / scale} of the scale`);
        continue;
      }
      const e = relErr(grad, want);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < 1e-4, `${what}: ${name} relative error ${e.toExponential(2)}`);
    }
    // Every BatchNorm γ takes part (a zero gradient would hide a skipped term).
    for (const [name, grad] of g.grads) {
      if (/bn\d\.weight$|downsample\.1\.weight$/.test(name)) {
        assert.ok(grad.some((q) => q !== 0), `${what}: ${name} gradient is zero`);
      }
    }
    let worstState = 0;
    for (const [name, val] of g.state) {
      const e = relErr(val, w[`state.${name}`].data);
      worstState = Math.max(worstState, e);
      assert.ok(e < 1e-5, `${what}: ${name} after the step, relative error ${e}`);
    }
    console.log(
      `${what}: value ${ev.toExponential(1)}, per sample ${ep.toExponential(1)}, grads ${
        worst.toExponential(1)
      } (${worstName}), running stats ${worstState.toExponential(1)}`,
    );
  }
});

Deno.test("train() with the Jacobian regularizer through training-mode BatchNorm follows PyTorch's SGD", async () => {
  const rt = await getBackend();
  const shape = [3, 2, 6, 6];
  const bsz = 4, steps = 2, lr = 0.05, momentum = 0.9, lambda = 0.5;
  const n = bsz * steps, d = shape.slice(1).reduce((p, q) => p * q, 1);
  const data = {
    name: "random",
    x: randomArray(n * d, 77, -1, 1),
    y: Int32Array.from({ length: n }, (_, i) => (5 * i + 1) % 3),
    sampleShape: shape.slice(1),
    classes: 3,
    length: n,
  };
  const model = buildModel(rt, TINY_RESNET);
  initParams(rt, model, 78, 1.5);
  const init = await stateInputs(model);
  const seed = 4;
  const reg = jacobianRegularizer({ lambda, nproj: -1 });
  await train(model, { train: data }, {
    epochs: 1,
    batchSize: bsz,
    lr,
    seed,
    optimizer: { algorithm: "sgd", momentum, weightDecay: 0 },
    regularizers: [reg],
  });
  reg.dispose?.();
  // The batches train() saw, replayed for PyTorch.
  const loader = new Batches(rt, data, { batchSize: bsz, seed });
  const xs: number[] = [], ys: number[] = [];
  for (const i of loader.order(0)) {
    xs.push(...data.x.subarray(i * d, (i + 1) * d));
    ys.push(data.y[i]);
  }
  loader.dispose();
  const [t] = await torchBridge([{
    spec: {
      op: "train_sgd",
      model: { layers: TINY_RESNET },
      dtype: "float64",
      lr,
      momentum,
      jr_lambda: lambda,
      nproj: -1,
    },
    inputs: {
      ...init,
      x: f64([steps, bsz, ...shape.slice(1)], xs),
      y: { dtype: "I64", shape: [steps, bsz], data: BigInt64Array.from(ys.map(BigInt)) },
    },
  }]);
  let worst = 0, worstName = "";
  for (const p of model.params()) {
    const e = relErr(Array.from(await p.value.read(), Number), t[`state.${p.name}`].data);
    if (e > worst) [worst, worstName] = [e, p.name];
    assert.ok(e < 1e-4, `${p.name}: relative error ${e} after ${steps} steps`);
  }
  console.log(`after ${steps} steps: max rel err ${worst.toExponential(1)} (${worstName})`);
  model.dispose();
});

/**
 * The penalties on the function through the normalization layers of the course notes —
 * LayerNorm, GroupNorm (nonlinear in the input: their role injects the second-order term
 * derived in shaders/layernorm.wgsl) and weight-normalized Linear and Conv2d — value and every
 * parameter gradient against PyTorch 1.13 double backprop (tools/torch_jacobian.py).
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
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import { jacobianPenalty } from "../src/regularizers/jacobian.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import type { PenaltyResult } from "../src/regularizers/_engine.ts";

type Op = "jacobian" | "determinant" | "gradient_norm";

interface Case {
  name: string;
  desc: LayerDesc[];
  x: number[];
  op: Op;
  /** Parameters whose gradient must not be zero (a skipped term would leave it zero). */
  live: string[];
}

const MLP_LN: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 3, out: 6 },
  { type: "layernorm", name: "ln1", shape: [6] },
  { type: "tanh" },
  { type: "linear", name: "fc2", in: 6, out: 5 },
  { type: "layernorm", name: "ln2", shape: [5] },
  { type: "linear", name: "fc3", in: 5, out: 4 },
];

/** 4 -> 3 (Gram J Jᵀ 3x3) with a LayerNorm of 8 (rank 6 Jacobian: well conditioned in f32). */
const MLP_LN_WIDE: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 4, out: 8 },
  { type: "layernorm", name: "ln1", shape: [8] },
  { type: "tanh" },
  { type: "linear", name: "fc2", in: 8, out: 3 },
];

const CNN_GN: LayerDesc[] = [
  { type: "conv2d", name: "conv1", in: 2, out: 4, kernel: 3, padding: 1 },
  { type: "groupnorm", name: "gn1", groups: 2, channels: 4 },
  { type: "softplus" },
  { type: "conv2d", name: "conv2", in: 4, out: 6, kernel: 3 },
  { type: "groupnorm", name: "gn2", groups: 3, channels: 6, affine: false },
  { type: "relu" },
  { type: "layernorm", name: "ln", shape: [6, 3, 3] },
  { type: "flatten" },
  { type: "linear", name: "fc", in: 54, out: 3 },
];

/** Weight-normalized Linear and Conv2d (torch.nn.utils.weight_norm), with curvature between. */
const WN_CNN: LayerDesc[] = [
  { type: "conv2d", name: "conv1", in: 2, out: 3, kernel: 3, weight_norm: true },
  { type: "tanh" },
  { type: "flatten" },
  { type: "linear", name: "fc1", in: 27, out: 6, weight_norm: true },
  { type: "sigmoid" },
  { type: "linear", name: "fc2", in: 6, out: 4, weight_norm: true, bias: false },
];

const CASES: Case[] = [
  {
    name: "MLP + LayerNorm",
    desc: MLP_LN,
    x: [4, 3],
    op: "jacobian",
    live: ["fc1.weight", "ln1.weight", "ln2.weight"],
  },
  {
    name: "CNN + GroupNorm",
    desc: CNN_GN,
    x: [3, 2, 5, 5],
    op: "jacobian",
    live: ["conv1.weight", "gn1.weight", "ln.weight"],
  },
  {
    name: "MLP + LayerNorm (determinant)",
    desc: MLP_LN_WIDE,
    x: [3, 4],
    op: "determinant",
    live: ["fc1.weight", "ln1.weight"],
  },
  {
    name: "CNN + GroupNorm (gradient norm)",
    desc: CNN_GN,
    x: [2, 2, 5, 5],
    op: "gradient_norm",
    live: ["conv1.weight", "gn1.weight"],
  },
  {
    name: "weight-normalized CNN",
    desc: WN_CNN,
    x: [3, 2, 5, 5],
    op: "jacobian",
    live: ["conv1.weight_g", "conv1.weight_v", "fc2.weight_g", "fc1.bias"],
  },
  {
    name: "weight-normalized CNN (gradient norm)",
    desc: WN_CNN,
    x: [2, 2, 5, 5],
    op: "gradient_norm",
    live: ["conv1.weight_g", "conv1.weight_v", "fc2.weight_v"],
  },
];

Deno.test("penalties through LayerNorm, GroupNorm and weight normalization match PyTorch double backprop", async () => {
  const rt = await getBackend();
  const jobs: TorchJob[] = [];
  const got: { value: number; perSample: Float32Array; grads: Map<string, Float32Array> }[] = [];
  const lambda = 0.8, nproj = 2;
  for (const [ci, c] of CASES.entries()) {
    const model = buildModel(rt, c.desc);
    initParams(rt, model, 1100 + ci, 1.5);
    model.eval();
    const b = c.x[0];
    const xd = randomArray(c.x.reduce((p, q) => p * q, 1), 1200 + ci, 0, 1);
    const x = upload(rt, xd, c.x);
    const classes = model.outputShape(c.x)[1];
    const vd = randomArray(nproj * b * classes, 1300 + ci);
    const v = upload(rt, vd, [nproj, b, classes]);
    const yd = Array.from({ length: b }, (_, k) => (2 * k + ci) % classes);
    const y = rt.upload(new Int32Array(yd), [b], "i32");
    model.zeroGrad();
    let r: PenaltyResult;
    const extra: Record<string, ReturnType<typeof f64>> = {};
    if (c.op === "jacobian") {
      r = jacobianPenalty(rt, model, x, { v, lambda });
      extra.v = f64([nproj, b, classes], vd);
    } else if (c.op === "determinant") {
      r = jacobianDeterminantPenalty(rt, model, x, { lambda });
    } else {
      r = gradientNormPenalty(rt, model, x, y, { lambda });
      extra.y = { dtype: "I64", shape: [b], data: BigInt64Array.from(yd.map(BigInt)) };
    }
    got.push({
      value: (await r.value.read())[0],
      perSample: (await r.perSample.read()) as Float32Array,
      grads: await readGrads(model),
    });
    jobs.push({
      spec: { op: c.op, model: { layers: c.desc }, lambda, mode: "eval" },
      inputs: { ...(await stateInputs(model)), x: f64(c.x, xd), ...extra },
    });
    r.dispose();
    for (const t of [x, v, y]) t.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, c] of CASES.entries()) {
    const g = got[i], w = want[i];
    assert.ok(
      relErr([g.value], w.value.data) < 1e-5,
      `${c.name}: value ${g.value} vs ${w.value.data}`,
    );
    assert.ok(relErr(g.perSample, w.per_sample.data) < 1e-4, `${c.name}: per-sample values`);
    let worst = 0, worstName = "";
    for (const [name, grad] of g.grads) {
      const e = relErr(grad, w[`grad.${name}`].data);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < 1e-4, `${c.name}: ${name} relative error ${e.toExponential(2)}`);
    }
    for (const name of c.live) {
      assert.ok(g.grads.get(name)!.some((q) => q !== 0), `${c.name}: ${name} gradient is zero`);
    }
    console.log(`${c.name}: max rel err ${worst.toExponential(2)} (${worstName})`);
  }
});

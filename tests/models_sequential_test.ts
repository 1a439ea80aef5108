/**
 * The `"sequential"` model spec (src/models/layer_spec.ts): defaults and names filled in, errors
 * that name the layer and field, and a model with weight-normalized Conv2d and Linear, GroupNorm,
 * LayerNorm and a BasicBlock built from JSON against its PyTorch twin (tools/torch_models.py):
 * state_dict names, logits and cross-entropy gradients, and the Jacobian penalty by double
 * backprop.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { f64, paramInputs, relErr, torchBridge, upload } from "./_model_bridge.ts";
import { torchJacobian } from "./_jacobian_util.ts";
import { buildModel } from "../src/models/model.ts";
import { parseModelSpec } from "../src/models/spec.ts";
import { jacobianPenalty } from "../src/regularizers/jacobian.ts";
import { softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";

const SPEC = {
  kind: "sequential",
  inputShape: [2, 6, 6],
  classes: 3,
  normalize: { mean: [0.5, 0.4], std: [0.3, 0.2] },
  layers: [
    { type: "conv2d", name: "conv1", in: 2, out: 4, kernel: 3, padding: 1, weight_norm: true },
    { type: "groupnorm", name: "gn1", groups: 2, channels: 4 },
    { type: "tanh" },
    { type: "basic_block", name: "block", in: 4, out: 4 },
    { type: "maxpool2d", kernel: 2 },
    { type: "flatten" },
    { type: "linear", name: "fc1", in: 36, out: 8, weight_norm: true },
    { type: "layernorm", name: "ln1", shape: [8] },
    { type: "softplus" },
    { type: "linear", in: 8, out: 3 },
  ],
};

Deno.test("parseModelSpec() completes a sequential spec and names bad layers", () => {
  const s = parseModelSpec(SPEC);
  assert.equal(s.kind, "sequential");
  if (s.kind !== "sequential") return;
  assert.deepEqual(s.layers[4], { type: "maxpool2d", name: "4", kernel: 2, stride: 2, padding: 0 });
  assert.deepEqual(s.layers[9], {
    type: "linear",
    name: "9",
    in: 8,
    out: 3,
    bias: true,
    weight_norm: false,
  });
  assert.deepEqual(s.layers[7], {
    type: "layernorm",
    name: "ln1",
    shape: [8],
    eps: 1e-5,
    affine: true,
  });
  assert.deepEqual(parseModelSpec(s), s, "a parsed spec parses to itself");
  const bad = (layers: unknown[], re: RegExp) =>
    assert.throws(() => parseModelSpec({ ...SPEC, layers }), re);
  bad([{ type: "lstm" }], /layer 0: unknown "type" "lstm"; types: linear, conv2d/);
  bad([{ type: "groupnorm", groups: 3, channels: 4 }], /"channels" \(4\) must be a multiple/);
  bad([{ type: "layernorm", shape: [] }], /layer 0 \(layernorm\): "shape" must be a non-empty/);
  bad([{ type: "linear", in: 2 }], /layer 0 \(linear\): missing "out"/);
  bad([{ type: "linear", in: 2, out: 3, weightNorm: true }], /unknown field\(s\) "weightNorm"/);
  bad([{ type: "relu", name: "a" }, { type: "tanh", name: "a" }], /name "a" is used twice/);
});

Deno.test("buildModel() of a sequential spec matches its PyTorch twin (names, logits, gradients, JR)", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, SPEC, { seed: 4 });
  assert.deepEqual(
    model.params().filter((p) => p.kind !== "buffer").map((p) => p.name),
    [
      "conv1.bias",
      "conv1.weight_g",
      "conv1.weight_v",
      "gn1.weight",
      "gn1.bias",
      "block.conv1.weight",
      "block.bn1.weight",
      "block.bn1.bias",
      "block.conv2.weight",
      "block.bn2.weight",
      "block.bn2.bias",
      "fc1.bias",
      "fc1.weight_g",
      "fc1.weight_v",
      "ln1.weight",
      "ln1.bias",
      "9.weight",
      "9.bias",
    ],
  );
  model.eval();
  const b = 3;
  const xd = randomArray(b * 72, 7, 0, 1);
  const x = upload(rt, xd, [b, 2, 6, 6]);
  const yd = [0, 2, 1];
  const inputs = await paramInputs(model.params());
  const logits = await model.forward(x).read();
  const y = rt.upload(Int32Array.from(yd), [b], "i32");
  const ce = softmaxCrossEntropy(rt, model.forward(x), y);
  model.zeroGrad();
  model.backward(ce.dLogits!);
  const ceGrads = new Map<string, Float32Array>();
  for (const p of model.params()) {
    if (p.grad) ceGrads.set(p.name, (await p.grad.read()) as Float32Array);
  }
  ce.dispose();
  y.dispose();
  const vd = randomArray(b * 3, 8);
  const v = upload(rt, vd, [1, b, 3]);
  model.zeroGrad();
  const jr = jacobianPenalty(rt, model, x, { v, lambda: 2 });
  const value = (await jr.value.read())[0];
  const grads = new Map<string, Float32Array>();
  for (const p of model.params()) {
    if (p.grad) grads.set(p.name, (await p.grad.read()) as Float32Array);
  }
  const [fw] = await torchBridge([{
    spec: { op: "forward", model: SPEC },
    inputs: {
      ...inputs,
      x: f64([b, 2, 6, 6], xd),
      y: { dtype: "I64", shape: [b], data: BigInt64Array.from(yd.map(BigInt)) },
    },
  }]);
  assert.ok(relErr(logits, fw.logits.data) < 1e-5, "logits");
  for (const [name, g] of ceGrads) {
    const e = relErr(g, fw[`grad.${name}`].data);
    assert.ok(e < 1e-4, `${name}: cross-entropy gradient relative error ${e.toExponential(2)}`);
  }
  const [want] = await torchJacobian([{
    spec: { op: "jacobian", model: SPEC, lambda: 2, mode: "eval" },
    inputs: { ...inputs, x: f64([b, 2, 6, 6], xd), v: f64([1, b, 3], vd) },
  }]);
  assert.ok(relErr([value], want.value.data) < 1e-5, `JR ${value} vs ${want.value.data}`);
  for (const [name, g] of grads) {
    const e = relErr(g, want[`grad.${name}`].data);
    assert.ok(e < 1e-4, `${name}: JR gradient relative error ${e.toExponential(2)}`);
  }
  jr.dispose();
  x.dispose();
  v.dispose();
  model.dispose();
});

/**
 * Feature maps (src/metrics/feature_maps.ts): LeNet's maps after act1 and act2 against a float64
 * forward computed layer by layer here and against PyTorch's forward hooks on the twin
 * (tools/torch_bridge.py "hooks"); which layer a conv-norm-act run, a bare conv and a residual
 * block give, against the layers' own outputs; the per-channel ranges; the errors.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { f64, paramInputs, randomizeParams, relErr, torchBridge } from "./_model_bridge.ts";
import { featureMaps } from "../src/metrics/feature_maps.ts";
import { buildModel, modelSpecFromName } from "../src/models/mod.ts";
import type { ModelSpec } from "../src/models/mod.ts";
import {
  activationRef,
  conv2dRef,
  maxPool2dRef,
  normalizeRef,
  type Window2d,
} from "../src/reference/layers.ts";
import type { Layer } from "../src/layers/layer.ts";
import type { Tensor } from "../src/backend.ts";
import { BasicBlock } from "../src/layers/residual.ts";

const win = (k: number, s: number, p: number): Window2d => ({
  kernel: [k, k],
  stride: [s, s],
  padding: [p, p],
});

Deno.test("featureMaps() of LeNet equal a float64 forward layer by layer and PyTorch's forward hooks", async () => {
  const rt = await getBackend();
  const spec = modelSpecFromName("lenet");
  const model = buildModel(rt, spec, { seed: 2 });
  const n = 3;
  const x = randomArray(n * 784, 7, 0, 1);
  try {
    const maps = await featureMaps(rt, model, { x, sampleShape: [1, 28, 28] }, { maxSamples: n });
    assert.deepEqual(
      maps.map((m) => [m.layer, m.source, m.kind, m.n, m.channels, m.height, m.width]),
      [
        ["act1 (Activation)", "conv1", "activation", 3, 6, 28, 28],
        ["act2 (Activation)", "conv2", "activation", 3, 16, 10, 10],
      ],
    );
    // float64: normalize, conv1 (pad 2), tanh, max-pool 2, conv2, tanh.
    const p = new Map<string, ArrayLike<number>>();
    for (const q of model.params()) p.set(q.name, await q.value.read());
    const norm = spec.normalize!;
    let h: ArrayLike<number> = normalizeRef(x, 1, 784, norm.mean, norm.std);
    const c1 = conv2dRef(
      h,
      [n, 1, 28, 28],
      p.get("conv1.weight")!,
      6,
      p.get("conv1.bias")!,
      win(5, 1, 2),
    );
    const a1 = activationRef("tanh", c1.y).y;
    const p1 = maxPool2dRef(a1, c1.shape, win(2, 2, 0));
    h = p1.y;
    const c2 = conv2dRef(
      h,
      p1.shape,
      p.get("conv2.weight")!,
      16,
      p.get("conv2.bias")!,
      win(5, 1, 0),
    );
    const a2 = activationRef("tanh", c2.y).y;
    assertClose(maps[0].values, a1, { atol: 2e-6, rtol: 1e-5, what: "act1" });
    assertClose(maps[1].values, a2, { atol: 2e-6, rtol: 1e-5, what: "act2" });
    // The colour scale: each channel's range over the three samples.
    for (const m of maps) {
      for (let c = 0; c < m.channels; c++) {
        let lo = Infinity, hi = -Infinity;
        for (let b = 0; b < n; b++) {
          const o = (b * m.channels + c) * m.height * m.width;
          for (let i = 0; i < m.height * m.width; i++) {
            lo = Math.min(lo, m.values[o + i]);
            hi = Math.max(hi, m.values[o + i]);
          }
        }
        assert.equal(m.min[c], lo);
        assert.equal(m.max[c], hi);
      }
    }
    // PyTorch 1.13 (float64), the twin's act1 and act2 caught by register_forward_hook.
    const [out] = await torchBridge([{
      spec: { op: "forward", model: spec, hooks: ["act1", "act2"], param_grads: false },
      inputs: { ...(await paramInputs(model.params())), x: f64([n, 1, 28, 28], x) },
    }]);
    assert.deepEqual(out["hook.act1"].shape, [n, 6, 28, 28]);
    assert.deepEqual(out["hook.act2"].shape, [n, 16, 10, 10]);
    assert.ok(relErr(maps[0].values, out["hook.act1"].data) < 1e-5, "act1 vs torch");
    assert.ok(relErr(maps[1].values, out["hook.act2"].data) < 1e-5, "act2 vs torch");
    // And the logits of the fused Sequential forward agree with the twin: same weights.
    const xt = rt.upload(x, [n, 1, 28, 28]);
    const logits = await model.forward(xt).read();
    xt.dispose();
    assert.ok(relErr(logits, out.logits.data) < 1e-5, "logits vs torch");
  } finally {
    model.dispose();
  }
});

Deno.test("featureMaps() takes a conv-norm-act run after the activation, a bare conv as is, and residual blocks", async () => {
  const rt = await getBackend();
  const spec: ModelSpec = {
    kind: "sequential",
    inputShape: [2, 6, 6],
    classes: 3,
    layers: [
      { type: "conv2d", name: "conv1", in: 2, out: 4, kernel: 3, padding: 1, weight_norm: true },
      { type: "groupnorm", name: "gn1", groups: 2, channels: 4 },
      { type: "tanh", name: "act1" },
      { type: "basic_block", name: "block", in: 4, out: 4 },
      { type: "conv2d", name: "conv2", in: 4, out: 5, kernel: 3, padding: 1 },
      { type: "maxpool2d", kernel: 2 },
      { type: "flatten" },
      { type: "linear", name: "fc1", in: 45, out: 3 },
    ],
  } as ModelSpec;
  const model = buildModel(rt, spec, { seed: 1 });
  const n = 2;
  const x = randomArray(n * 72, 3, 0, 1);
  try {
    const maps = await featureMaps(rt, model, { x, sampleShape: [2, 6, 6] });
    assert.deepEqual(maps.map((m) => [m.layer, m.source, m.kind, m.n, m.channels]), [
      ["act1 (Activation)", "conv1", "activation", 2, 4],
      ["block.relu (Activation)", "block.conv1", "activation", 2, 4],
      ["block.bn2 (BatchNorm)", "block.conv2", "conv", 2, 4],
      ["block (BasicBlock)", "block", "block", 2, 4],
      ["conv2 (Conv2d)", "conv2", "conv", 2, 5],
    ]);
    assert.deepEqual(maps.map((m) => m.block), [undefined, "block", "block", undefined, undefined]);
    // The same values as each layer's own output, run one by one (eval mode); inside the block,
    // its sub-layers run by hand.
    model.training = false;
    const want: ArrayLike<number>[] = [];
    let h: Tensor = rt.upload(x, [n, 2, 6, 6]);
    const first = h;
    for (const [i, l] of (model.layers as readonly Layer[]).entries()) {
      if (l instanceof BasicBlock) {
        const r1 = await l.bn1.forward(l.conv1.forward(h)).read();
        want.push(r1.map((v) => Math.max(v, 0)));
        const hidden = rt.upload(want.at(-1) as Float32Array, [n, 4, 6, 6]);
        want.push(await l.bn2.forward(l.conv2.forward(hidden)).read());
        hidden.dispose();
      }
      h = l.forward(h);
      if (["act1", "block", "conv2"].includes(l.name)) want.push(await h.read());
      if (i === 0 && l.name !== "conv1") throw new Error("unexpected first layer");
    }
    first.dispose();
    maps.forEach((m, i) => assertClose(m.values, want[i], { atol: 0, rtol: 0, what: m.layer }));
    // At most `maxChannels` channels: the first ones, their ranges with them.
    const capped = await featureMaps(rt, model, { x, sampleShape: [2, 6, 6] }, { maxChannels: 3 });
    assert.deepEqual(capped.map((m) => [m.channels, m.totalChannels]), [
      [3, 4],
      [3, 4],
      [3, 4],
      [3, 4],
      [3, 5],
    ]);
    for (const [i, m] of capped.entries()) {
      const hw = m.height * m.width;
      for (let b = 0; b < n; b++) {
        assertClose(
          m.values.subarray(b * 3 * hw, (b + 1) * 3 * hw),
          maps[i].values.subarray(b * maps[i].channels * hw, (b * maps[i].channels + 3) * hw),
          { atol: 0, rtol: 0, what: `${m.layer} capped` },
        );
      }
      assert.deepEqual([...m.min], [...maps[i].min.subarray(0, 3)]);
      assert.deepEqual([...m.max], [...maps[i].max.subarray(0, 3)]);
    }
    await assert.rejects(
      () => featureMaps(rt, model, { x: x.subarray(0, 72), sampleShape: [72] }),
      /needs image samples \(C, H, W\)/,
    );
  } finally {
    model.dispose();
  }
});

Deno.test("featureMaps() inside a residual block with a projection shortcut equal PyTorch's forward hooks on torchvision's BasicBlock", async () => {
  const rt = await getBackend();
  const spec: ModelSpec = {
    kind: "sequential",
    inputShape: [3, 8, 8],
    classes: 3,
    layers: [
      { type: "conv2d", name: "conv1", in: 3, out: 4, kernel: 3, padding: 1, bias: false },
      { type: "batchnorm2d", name: "bn1", channels: 4 },
      { type: "relu", name: "relu" },
      { type: "basic_block", name: "layer1.0", in: 4, out: 6, stride: 2 },
      { type: "flatten" },
      { type: "linear", name: "fc", in: 96, out: 3 },
    ],
  } as ModelSpec;
  const model = buildModel(rt, spec, { seed: 4 });
  const n = 2;
  const x = randomArray(n * 192, 5, 0, 1);
  try {
    // BatchNorms with running statistics and affine parameters away from the identity.
    randomizeParams(rt, model.params(), 11, randomArray);
    const maps = await featureMaps(rt, model, { x, sampleShape: [3, 8, 8] });
    assert.deepEqual(maps.map((m) => [m.layer, m.source, m.kind, m.block, m.channels, m.height]), [
      ["relu (Activation)", "conv1", "activation", undefined, 4, 8],
      ["layer1.0.relu (Activation)", "layer1.0.conv1", "activation", "layer1.0", 6, 4],
      ["layer1.0.bn2 (BatchNorm)", "layer1.0.conv2", "conv", "layer1.0", 6, 4],
      ["layer1.0.downsample.1 (BatchNorm)", "layer1.0.downsample.0", "conv", "layer1.0", 6, 4],
      ["layer1.0 (BasicBlock)", "layer1.0", "block", undefined, 6, 4],
    ]);
    // PyTorch 1.13 (float64), torchvision's BasicBlock: bn1 (then ReLU here: the twin's
    // activations have no module names, and torchvision's block calls its ReLU twice), bn2
    // before the add, the downsample Sequential, the block.
    const hooks = ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer1.0.downsample", "layer1.0"];
    const [out] = await torchBridge([{
      spec: { op: "forward", model: spec, hooks, param_grads: false },
      inputs: { ...(await paramInputs(model.params())), x: f64([n, 3, 8, 8], x) },
    }]);
    const want = hooks.map((k) => out[`hook.${k}`].data);
    for (const i of [0, 1]) want[i] = want[i].map((v) => Math.max(v, 0));
    for (const [i, m] of maps.entries()) {
      assert.deepEqual(out[`hook.${hooks[i]}`].shape, [n, m.channels, m.height, m.width]);
      const e = relErr(m.values, want[i]);
      assert.ok(e < 1e-5, `${m.layer} vs torch: ${e}`);
    }
  } finally {
    model.dispose();
  }
});

/**
 * Feature maps (src/metrics/feature_maps.ts): LeNet's maps after act1 and act2 against a float64
 * forward computed layer by layer here and against PyTorch's forward hooks on the twin
 * (tools/torch_bridge.py "hooks"); which layer a conv-norm-act run, a bare conv and a residual
 * block give, against the layers' own outputs; the per-channel ranges; the errors.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { f64, paramInputs, relErr, torchBridge } from "./_model_bridge.ts";
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
      ["block (BasicBlock)", "block", "block", 2, 4],
      ["conv2 (Conv2d)", "conv2", "conv", 2, 5],
    ]);
    // The same values as each layer's own output, run one by one (eval mode).
    model.training = false;
    const want: ArrayLike<number>[] = [];
    let h: Tensor = rt.upload(x, [n, 2, 6, 6]);
    const first = h;
    for (const [i, l] of (model.layers as readonly Layer[]).entries()) {
      h = l.forward(h);
      if (["act1", "block", "conv2"].includes(l.name)) want.push(await h.read());
      if (i === 0 && l.name !== "conv1") throw new Error("unexpected first layer");
    }
    first.dispose();
    maps.forEach((m, i) => assertClose(m.values, want[i], { atol: 0, rtol: 0, what: m.layer }));
    await assert.rejects(
      () => featureMaps(rt, model, { x: x.subarray(0, 72), sampleShape: [72] }),
      /needs image samples \(C, H, W\)/,
    );
  } finally {
    model.dispose();
  }
});

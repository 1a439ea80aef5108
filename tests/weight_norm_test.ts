/**
 * Weight normalization (src/layers/weight_norm.ts) against PyTorch 1.13's
 * torch.nn.utils.weight_norm (tools/torch_bridge.py, float64): state_dict names and shapes,
 * forward, input gradient, weight_g / weight_v / bias gradients and jvp, for Linear and Conv2d;
 * resetGain() and the default initialization (g = ‖v‖, so w = v).
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { numel } from "./_layer_check.ts";
import { assertLayerPass, f64, paramInputs, torchBridge, upload } from "./_model_bridge.ts";
import { WeightNorm } from "../src/layers/weight_norm.ts";
import { Linear } from "../src/layers/linear.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { initializeParams } from "../src/models/initialize.ts";
import { selectParams } from "../src/regularizers/_params.ts";
import type { Backend } from "../src/backend.ts";

const CASES: {
  what: string;
  desc: Record<string, unknown>;
  x: number[];
  make: (rt: Backend) => WeightNorm;
  names: [string, number[]][];
}[] = [
  {
    what: "Linear 5->4",
    desc: { type: "linear", name: "fc", in: 5, out: 4, weight_norm: true },
    x: [3, 5],
    make: (rt) => new WeightNorm(rt, new Linear(rt, "fc", 5, 4)),
    names: [["fc.bias", [4]], ["fc.weight_g", [4, 1]], ["fc.weight_v", [4, 5]]],
  },
  {
    what: "Conv2d 2->3 k3 s2 p1, no bias",
    desc: {
      type: "conv2d",
      name: "conv",
      in: 2,
      out: 3,
      kernel: 3,
      stride: 2,
      padding: 1,
      bias: false,
      weight_norm: true,
    },
    x: [2, 2, 6, 6],
    make: (rt) =>
      new WeightNorm(rt, new Conv2d(rt, "conv", 2, 3, 3, { stride: 2, padding: 1, bias: false })),
    names: [["conv.weight_g", [3, 1, 1, 1]], ["conv.weight_v", [3, 2, 3, 3]]],
  },
];

Deno.test("WeightNorm matches torch.nn.utils.weight_norm: names, forward, gradients, jvp", async () => {
  const rt = await getBackend();
  const ours = [], jobs = [];
  for (const [ci, c] of CASES.entries()) {
    const layer = c.make(rt);
    assert.deepEqual(layer.params().map((p) => [p.name, p.value.shape]), c.names);
    for (const [pi, p] of layer.params().entries()) {
      rt.write(p.value, randomArray(p.value.size, 10 * ci + pi, -1, 1));
    }
    const out = layer.outputShape(c.x);
    const n = numel(c.x);
    const xd = randomArray(n, 30 + ci), txd = randomArray(n, 40 + ci);
    const dyd = randomArray(numel(out), 50 + ci);
    const inputs = await paramInputs(layer.params());
    const x = upload(rt, xd, c.x), tx = upload(rt, txd, c.x), dy = upload(rt, dyd, out);
    // Twice: the second backward must add the same again (accumulation, dW cleared between).
    const y = await layer.forward(x).read();
    layer.backward(dy);
    const dx = await layer.backward(dy).read();
    const jvp = await layer.jvp(tx).read();
    const grads = new Map<string, Float64Array>();
    for (const p of layer.params()) {
      grads.set(p.name, Float64Array.from(await p.grad!.read(), (g) => g / 2));
    }
    ours.push({ y, dx, jvp, grads });
    jobs.push({
      spec: { op: "forward", model: { layers: [c.desc] } },
      inputs: { ...inputs, x: f64(c.x, xd), dy: f64(out, dyd), tx: f64(c.x, txd) },
    });
    for (const t of [x, tx, dy]) t.dispose();
    layer.dispose();
  }
  const want = await torchBridge(jobs);
  for (const [i, c] of CASES.entries()) {
    assertLayerPass(c.what, ours[i], want[i], 1e-5);
  }
});

Deno.test("WeightNorm starts at w = v: resetGain() and initializeParams() set g = ‖v‖", async () => {
  const rt = await getBackend();
  const inner = new Linear(rt, "fc", 3, 2);
  const vd = Float32Array.from([3, 4, 0, 1, 2, 2]);
  rt.write(inner.weight, vd);
  const layer = new WeightNorm(rt, inner);
  assert.deepEqual(Array.from(await layer.weightG.read()), [5, 3]);
  const x = upload(rt, [1, 0, 0, 0, 1, 0], [2, 3]);
  layer.forward(x);
  const w = await inner.weight.read();
  assert.ok(w.every((q, i) => Math.abs(q - vd[i]) < 1e-6), `w ${w} = v ${vd}`);
  initializeParams(rt, layer.params(), { seed: 1 });
  const v = await layer.weightV.read(), g = await layer.weightG.read();
  for (let o = 0; o < 2; o++) {
    const norm = Math.hypot(v[3 * o], v[3 * o + 1], v[3 * o + 2]);
    assert.ok(Math.abs(g[o] - norm) < 1e-5, `g[${o}] ${g[o]} vs ‖v‖ ${norm}`);
  }
  // weight_g is a per-unit scale: not one of the matrices the regularizers act on.
  assert.deepEqual(selectParams(layer.params()).map((p) => p.name), ["fc.weight_v"]);
  x.dispose();
  layer.dispose();
});

import type { Tensor } from "../src/backend.ts";
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, dot, jvpFD, numel } from "./_layer_check.ts";
import type { Backend } from "../src/backend.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import { Linear } from "../src/layers/linear.ts";
import { ReLU, Sigmoid, Softplus, Tanh } from "../src/layers/activation.ts";
import { Dropout } from "../src/layers/dropout.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Normalize } from "../src/layers/normalize.ts";
import {
  activationRef,
  avgPool2dRef,
  conv2dRef,
  linearRef,
  maxPool2dRef,
  normalizeRef,
} from "../src/reference/layers.ts";
import { bernoulliMaskRef } from "../src/reference/random.ts";
import { fill } from "../src/ops/elementwise.ts";

const XS = [3, 3, 13, 11];
const MEAN = [0.5, 0.4, 0.3], STD = [0.25, 0.5, 0.2];

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A small CNN touching every layer kind, with random parameters. */
function model(rt: Backend) {
  const net = new Sequential(rt, "", [
    new Normalize(rt, "0", MEAN, STD),
    new Conv2d(rt, "1", 3, 4, 3, { padding: 1 }),
    new Tanh(rt, "2"),
    new MaxPool2d(rt, "3", 3, { stride: 2 }),
    new Conv2d(rt, "4", 4, 5, 3, { padding: 1 }),
    new Softplus(rt, "5"),
    new AvgPool2d(rt, "6", 2),
    new Flatten("7"),
    new Dropout(rt, "8", 0.2, { seed: 3 }),
    new Linear(rt, "9", 30, 7),
    new Sigmoid(rt, "10"),
    new Linear(rt, "11", 7, 4),
  ]);
  const values: Record<string, Float32Array> = {};
  net.params().forEach((p, i) => {
    values[p.name] = randomArray(p.value.size, 100 + i, -0.6, 0.6);
    rt.write(p.value, values[p.name]);
  });
  return { net, values };
}

/** The same network in float64 on the CPU; `mask` is dropout's (or null in eval mode). */
function refForward(
  x: ArrayLike<number>,
  v: Record<string, ArrayLike<number>>,
  mask: ArrayLike<number> | null,
) {
  let h: ArrayLike<number> = normalizeRef(x, 3, 13 * 11, MEAN, STD);
  const c1 = conv2dRef(h, XS, v["1.weight"], 4, v["1.bias"], {
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
  });
  h = activationRef("tanh", c1.y).y;
  const p1 = maxPool2dRef(h, c1.shape, { kernel: [3, 3], stride: [2, 2], padding: [0, 0] });
  const c2 = conv2dRef(p1.y, p1.shape, v["4.weight"], 5, v["4.bias"], {
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
  });
  h = activationRef("softplus", c2.y).y;
  h = avgPool2dRef(h, c2.shape, { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }).y;
  if (mask) h = Float64Array.from(h, (t, i) => t * mask[i]);
  h = linearRef(h, 3, 30, v["9.weight"], 7, v["9.bias"]);
  h = activationRef("sigmoid", h).y;
  return linearRef(h, 3, 7, v["11.weight"], 4, v["11.bias"]);
}

Deno.test("Sequential forward, backward, jvp and parameter gradients match the float64 chain", async () => {
  const rt = await getBackend();
  const { net, values } = model(rt);
  for (const training of [false, true]) {
    net.training = training;
    net.setCounter(9);
    net.zeroGrad();
    const xa = randomArray(numel(XS), 1, 0, 1);
    const x = rt.upload(xa, XS);
    const y = net.forward(x);
    assert.deepEqual(y.shape, [3, 4]);
    assert.deepEqual(net.outputShape(XS), [3, 4]);
    const mask = training ? bernoulliMaskRef(90, [3, fnv1a("8")], 9, 0.2) : null;
    const f = (xx: ArrayLike<number>) => refForward(xx, values, mask);
    assertClose(await y.read(), f(xa), {
      atol: 1e-5,
      rtol: 1e-4,
      what: `y (training=${training})`,
    });
    const u = randomArray(12, 2), v = randomArray(x.size, 3);
    const dy = rt.upload(u, [3, 4]);
    const dxOnly = await net.inputGrad(dy).read();
    for (const p of net.params()) {
      assert.ok((await p.grad!.read()).every((g) => g === 0), `${p.name} untouched`);
    }
    const dx = await net.backward(dy).read();
    assertDotProduct(`dx (training=${training})`, f, xa, v, u, dx);
    assertClose(dxOnly, dx, { atol: 0, rtol: 0, what: "inputGrad = backward's dx" });
    const tx = rt.upload(v, XS);
    assertClose(await net.jvp(tx).read(), jvpFD(f, xa, v), { atol: 1e-5, rtol: 1e-3, what: "jvp" });
    for (const p of net.params()) {
      const dir = randomArray(p.value.size, 7);
      const fd = dot(
        u,
        jvpFD((pp) => refForward(xa, { ...values, [p.name]: pp }, mask), values[p.name], dir),
      );
      const got = dot(await p.grad!.read(), dir);
      assertClose([got], [fd], {
        atol: 1e-5,
        rtol: 1e-3,
        what: `grad ${p.name} (training=${training})`,
      });
    }
    for (const t of [x, dy, tx]) t.dispose();
  }
  net.dispose();
});

Deno.test("Sequential.params() lists state_dict names in order; zeroGrad() clears every grad", async () => {
  const rt = await getBackend();
  const { net } = model(rt);
  assert.deepEqual(net.params().map((p) => p.name), [
    "1.weight",
    "1.bias",
    "4.weight",
    "4.bias",
    "9.weight",
    "9.bias",
    "11.weight",
    "11.bias",
  ]);
  const x = rt.upload(randomArray(numel(XS), 4), XS);
  net.forward(x);
  const dy = rt.upload(randomArray(12, 5), [3, 4]);
  net.backward(dy);
  assert.ok((await net.params()[0].grad!.read()).some((g) => g !== 0));
  net.zeroGrad();
  for (const p of net.params()) assert.ok((await p.grad!.read()).every((g) => g === 0), p.name);
  x.dispose();
  dy.dispose();
  net.dispose();
});

Deno.test("Sequential train()/eval() reach every layer; setCounter() reaches dropout", async () => {
  const rt = await getBackend();
  const { net } = model(rt);
  net.eval();
  assert.ok(net.layers.every((l) => !l.training));
  net.train();
  assert.ok(net.layers.every((l) => l.training));
  net.setCounter(17);
  assert.equal((net.layers[8] as Dropout).counter, 17);
  net.dispose();
});

Deno.test("Sequential refuses mismatched inputs naming the layer, empty batches and disposed inputs", async () => {
  const rt = await getBackend();
  const net = new Sequential(rt, "", [
    new Conv2d(rt, "conv1", 3, 6, 5),
    new MaxPool2d(rt, "pool1", 2),
    new Conv2d(rt, "conv2", 6, 16, 5),
  ]);
  const x = rt.zeros([64, 1, 32, 32]);
  assert.throws(() => net.forward(x), {
    message: "conv1 (Conv2d 3->6, k5): expected input [B,3,H,W], got [64,1,32,32]",
  });
  const wrong = new Sequential(rt, "", [
    new Conv2d(rt, "conv1", 3, 3, 5),
    new Conv2d(rt, "conv2", 6, 16, 5),
  ]);
  const x3 = rt.zeros([64, 3, 32, 32]);
  assert.throws(() => wrong.forward(x3), {
    message: "conv2 (Conv2d 6->16, k5): expected input [B,6,H,W], got [64,3,28,28]",
  });
  const empty = rt.zeros([0, 3, 32, 32]);
  assert.throws(
    () => net.forward(empty),
    /model \(Sequential of 3\): got input \[0,3,32,32\]; expected a batch/,
  );
  x3.dispose();
  assert.throws(
    () => net.forward(x3),
    /model \(Sequential of 3\): input .* was used after dispose\(\)/,
  );
  assert.throws(() => net.backward(x), /backward\(\) before forward\(\)/);
  assert.throws(
    () => new Sequential(rt, "", [new Linear(rt, "fc", 2, 2), new Linear(rt, "fc", 2, 2)]),
    /two parameters are named 'fc.weight'/,
  );
  x.dispose();
  empty.dispose();
  net.dispose();
  wrong.dispose();
});

Deno.test("Sequential.forward() fuses Conv2d + ReLU/Tanh/Sigmoid with the results of layer by layer", async () => {
  const rt = await getBackend();
  const layers = [
    new Conv2d(rt, "0", 3, 4, 3, { padding: 1 }),
    new Tanh(rt, "1"),
    new Conv2d(rt, "2", 4, 5, 3, { stride: 2 }),
    new ReLU(rt, "3"),
    new Conv2d(rt, "4", 5, 4, 1),
    new Sigmoid(rt, "5"),
    new Conv2d(rt, "6", 4, 3, 3),
    new Softplus(rt, "7"), // needs its pre-activation: not fused
    new Flatten("8"),
  ];
  const net = new Sequential(rt, "", layers);
  net.params().forEach((p, i) => rt.write(p.value, randomArray(p.value.size, 40 + i, -0.6, 0.6)));
  const x = rt.upload(randomArray(numel(XS), 9, -1, 1), XS);
  // Layer by layer.
  let h: Tensor = x;
  let dispatches = rt.dispatches;
  for (const l of layers) h = l.forward(h);
  const apart = rt.dispatches - dispatches;
  const wantY = await h.read();
  const dy = rt.upload(randomArray(wantY.length, 10, -1, 1), [XS[0], wantY.length / XS[0]]);
  net.zeroGrad();
  let g: Tensor = dy;
  for (let i = layers.length - 1; i >= 0; i--) g = layers[i].backward(g);
  const wantDx = await g.read();
  const wantGrads = await Promise.all(net.params().map((p) => p.grad!.read()));
  const tx = rt.upload(randomArray(numel(XS), 11, -1, 1), XS);
  let t: Tensor = tx;
  for (const l of layers) t = l.jvp(t);
  const wantJvp = await t.read();
  // Fused: three of the four pairs, one dispatch less each; the same bits forward, backward
  // (from both layers' caches) and jvp.
  dispatches = rt.dispatches;
  const y = net.forward(x);
  assert.equal(rt.dispatches - dispatches, apart - 3);
  assertClose(await y.read(), wantY, { atol: 0, rtol: 0, what: "output" });
  net.zeroGrad();
  assertClose(await net.backward(dy).read(), wantDx, { atol: 0, rtol: 0, what: "dx" });
  const grads = await Promise.all(net.params().map((p) => p.grad!.read()));
  net.params().forEach((p, i) =>
    assertClose(grads[i], wantGrads[i], { atol: 0, rtol: 0, what: p.name })
  );
  assertClose(await net.jvp(tx).read(), wantJvp, { atol: 0, rtol: 0, what: "jvp" });
  for (const t of [x, dy, tx]) t.dispose();
  net.dispose();
});

Deno.test("Sequential.backwardParams() gives backward()'s parameter gradients and skips the unused input gradient", async () => {
  const rt = await getBackend();
  const { net } = model(rt);
  const x = rt.upload(randomArray(numel(XS), 7, 0, 1), XS);
  const dy = rt.upload(randomArray(3 * 4, 8, -1, 1), [3, 4]);
  net.setCounter(5);
  net.forward(x);
  net.zeroGrad();
  net.backward(dy);
  const full = await Promise.all(net.params().map((p) => p.grad!.read()));
  net.zeroGrad();
  // Poison the input-gradient buffer the first layers own: backwardParams must not write it.
  const dx = net.inputGrad(dy);
  const before = await dx.read();
  net.zeroGrad();
  fill(rt, dx, 12345);
  net.backwardParams(dy);
  const only = await Promise.all(net.params().map((p) => p.grad!.read()));
  net.params().forEach((p, i) => assertClose(only[i], full[i], { atol: 0, rtol: 0, what: p.name }));
  assert(before.length > 0);
  const after = await dx.read();
  assert(after.every((v) => v === 12345), "the first layers' input gradient was computed");
  x.dispose();
  dy.dispose();
  net.dispose();
});

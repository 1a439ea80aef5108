/**
 * BasicBlock (src/layers/residual.ts): backward and jvp against central differences of a float64
 * reference forward (dot-product tests, in training and eval mode), and forward, input and
 * parameter gradients and BatchNorm running statistics against PyTorch (torchvision's
 * BasicBlock, built by tools/torch_models.py) with identical weights, for both shortcut kinds.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, dot, jvpFD, numel } from "./_layer_check.ts";
import {
  type BridgeJob,
  f64,
  paramInputs,
  randomizeParams,
  relErr,
  torchBridge,
  upload,
} from "./_model_bridge.ts";
import { conv2dRef } from "../src/reference/layers.ts";
import { BasicBlock } from "../src/layers/residual.ts";
import type { Backend } from "../src/backend.ts";

/** A block configuration: the identity shortcut (4->4, s1) and the projection (3->4, s2). */
interface Case {
  what: string;
  inC: number;
  outC: number;
  stride: number;
  xs: number[];
}

const CASES: Case[] = [
  { what: "identity shortcut", inC: 4, outC: 4, stride: 1, xs: [2, 4, 5, 5] },
  { what: "projection shortcut", inC: 3, outC: 4, stride: 2, xs: [2, 3, 5, 5] },
];

/** BatchNorm2d forward in float64 (training: biased batch variance; eval: running stats). */
function bnRef(
  h: Float64Array,
  shape: readonly number[],
  p: Map<string, ArrayLike<number>>,
  prefix: string,
  train: boolean,
): Float64Array {
  const [B, C, H, W] = shape;
  const s = H * W;
  const g = p.get(`${prefix}.weight`)!, b = p.get(`${prefix}.bias`)!;
  const out = new Float64Array(h.length);
  for (let c = 0; c < C; c++) {
    let mean = p.get(`${prefix}.running_mean`)![c], v = p.get(`${prefix}.running_var`)![c];
    if (train) {
      mean = 0;
      for (let n = 0; n < B; n++) for (let q = 0; q < s; q++) mean += h[(n * C + c) * s + q];
      mean /= B * s;
      v = 0;
      for (let n = 0; n < B; n++) {
        for (let q = 0; q < s; q++) v += (h[(n * C + c) * s + q] - mean) ** 2;
      }
      v /= B * s;
    }
    const inv = 1 / Math.sqrt(v + 1e-5);
    for (let n = 0; n < B; n++) {
      for (let q = 0; q < s; q++) {
        const i = (n * C + c) * s + q;
        out[i] = (h[i] - mean) * inv * g[c] + b[c];
      }
    }
  }
  return out;
}

const relu = (a: Float64Array) => a.map((v) => Math.max(v, 0));

/** The block's forward in float64, parameters by name ("blk.conv1.weight", ...). */
function blockRef(
  x: ArrayLike<number>,
  k: Case,
  p: Map<string, ArrayLike<number>>,
  train: boolean,
): Float64Array {
  const s = k.stride;
  const c1 = conv2dRef(x, k.xs, p.get("blk.conv1.weight")!, k.outC, null, {
    kernel: [3, 3],
    stride: [s, s],
    padding: [1, 1],
  });
  const h1 = relu(bnRef(c1.y, c1.shape, p, "blk.bn1", train));
  const c2 = conv2dRef(h1, c1.shape, p.get("blk.conv2.weight")!, k.outC, null, {
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
  });
  const h2 = bnRef(c2.y, c2.shape, p, "blk.bn2", train);
  let sc: ArrayLike<number> = x;
  if (p.has("blk.downsample.0.weight")) {
    const d = conv2dRef(x, k.xs, p.get("blk.downsample.0.weight")!, k.outC, null, {
      kernel: [1, 1],
      stride: [s, s],
      padding: [0, 0],
    });
    sc = bnRef(d.y, d.shape, p, "blk.downsample.1", train);
  }
  return relu(h2.map((v, i) => v + sc[i]));
}

async function readParams(block: BasicBlock): Promise<Map<string, Float64Array>> {
  const m = new Map<string, Float64Array>();
  for (const p of block.params()) {
    if (p.value.dtype === "f32") m.set(p.name, Float64Array.from(await p.value.read()));
  }
  return m;
}

function makeBlock(rt: Backend, k: Case, seed: number): BasicBlock {
  const block = new BasicBlock(rt, "blk", k.inC, k.outC, { stride: k.stride });
  randomizeParams(rt, block.params(), seed, randomArray);
  return block;
}

Deno.test("BasicBlock has torchvision's parameter names and output shapes", async () => {
  const rt = await getBackend();
  const a = new BasicBlock(rt, "layer1.0", 64, 64);
  const b = new BasicBlock(rt, "layer2.0", 64, 128, { stride: 2 });
  try {
    const bn = (p: string) =>
      ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].map((s) =>
        `${p}.${s}`
      );
    assert.deepEqual(a.params().map((p) => p.name), [
      "layer1.0.conv1.weight",
      ...bn("layer1.0.bn1"),
      "layer1.0.conv2.weight",
      ...bn("layer1.0.bn2"),
    ]);
    assert.equal(a.downsample, null);
    assert.deepEqual(b.params().map((p) => p.name).slice(-6), [
      "layer2.0.downsample.0.weight",
      ...bn("layer2.0.downsample.1"),
    ]);
    assert.deepEqual(b.outputShape([2, 64, 32, 32]), [2, 128, 16, 16]);
    assert.deepEqual(b.outputShape([1, 64, 7, 7]), [1, 128, 4, 4]);
    assert.deepEqual(a.outputShape([3, 64, 8, 8]), [3, 64, 8, 8]);
  } finally {
    a.dispose();
    b.dispose();
  }
});

for (const k of CASES) {
  for (const train of [false, true]) {
    const mode = train ? "training" : "eval";
    Deno.test(`BasicBlock.backward() passes the dot-product test (${k.what}, ${mode} mode)`, async () => {
      const rt = await getBackend();
      const block = makeBlock(rt, k, 11);
      block.training = train;
      const xd = randomArray(numel(k.xs), 3);
      const x = upload(rt, xd, k.xs);
      try {
        const y = block.forward(x);
        const ys = [...y.shape];
        const u = randomArray(numel(ys), 5);
        const dy = upload(rt, u, ys);
        const dx = await block.backward(dy).read();
        const grads = new Map<string, ArrayLike<number>>();
        for (const p of block.params()) if (p.grad) grads.set(p.name, await p.grad.read());
        const P = await readParams(block);
        dy.dispose();
        // Input: <u, J v> by finite differences vs <Jᵀu, v>.
        const v = randomArray(xd.length, 7);
        assertDotProduct(`dx (${k.what}, ${mode})`, (z) => blockRef(z, k, P, train), xd, v, u, dx);
        // Parameters: the same test with the forward as a function of one parameter.
        for (
          const name of ["blk.conv1.weight", "blk.bn1.weight", "blk.bn2.bias", "blk.conv2.weight"]
        ) {
          const theta = P.get(name)!;
          const vt = randomArray(theta.length, 9);
          const f = (t: Float64Array) => blockRef(xd, k, new Map(P).set(name, t), train);
          assertDotProduct(`${name} grad (${k.what}, ${mode})`, f, theta, vt, u, grads.get(name)!);
        }
        if (k.stride !== 1) {
          const name = "blk.downsample.0.weight";
          const theta = P.get(name)!;
          const vt = randomArray(theta.length, 13);
          const f = (t: Float64Array) => blockRef(xd, k, new Map(P).set(name, t), train);
          assertDotProduct(`${name} grad (${k.what}, ${mode})`, f, theta, vt, u, grads.get(name)!);
        }
      } finally {
        x.dispose();
        block.dispose();
      }
    });
  }

  Deno.test(`BasicBlock.jvp() matches finite differences in eval mode (${k.what})`, async () => {
    const rt = await getBackend();
    const block = makeBlock(rt, k, 17);
    block.training = false;
    const xd = randomArray(numel(k.xs), 19);
    const v = randomArray(xd.length, 23);
    const x = upload(rt, xd, k.xs);
    const tx = upload(rt, v, k.xs);
    try {
      block.forward(x);
      const ty = await block.jvp(tx).read();
      const P = await readParams(block);
      const want = jvpFD((z) => blockRef(z, k, P, false), xd, v);
      assertClose(ty, want, { atol: 1e-4, rtol: 1e-3, what: `jvp (${k.what})` });
      // And the adjoint pair: <u, J v> = <Jᵀ u, v> with both from the GPU.
      const u = randomArray(ty.length, 29);
      const dy = upload(rt, u, block.outputShape(k.xs));
      const dx = await block.inputGrad(dy).read();
      dy.dispose();
      const lhs = dot(u, ty), rhs = dot(dx, v);
      assert.ok(
        Math.abs(lhs - rhs) <= 1e-4 * (Math.abs(lhs) + 1),
        `<u,Jv> ${lhs} vs <Jᵀu,v> ${rhs}`,
      );
    } finally {
      x.dispose();
      tx.dispose();
      block.dispose();
    }
  });
}

Deno.test("BasicBlock.inputGrad() leaves the convolution gradients alone", async () => {
  const rt = await getBackend();
  const k = CASES[1];
  const block = makeBlock(rt, k, 31);
  const x = upload(rt, randomArray(numel(k.xs), 37), k.xs);
  try {
    const y = block.forward(x);
    const dy = upload(rt, randomArray(y.size, 41), y.shape);
    const viaBackward = await block.backward(dy).read();
    for (const p of block.params()) if (p.grad) rt.fill0(p.grad);
    const viaInputGrad = await block.inputGrad(dy).read();
    dy.dispose();
    assertClose(viaInputGrad, viaBackward, { atol: 1e-6, rtol: 1e-5, what: "dx" });
    for (const name of ["blk.conv1.weight", "blk.conv2.weight", "blk.downsample.0.weight"]) {
      const g = await block.params().find((p) => p.name === name)!.grad!.read();
      assert.ok(g.every((v) => v === 0), `${name}.grad was touched by inputGrad()`);
    }
  } finally {
    x.dispose();
    block.dispose();
  }
});

Deno.test("BasicBlock refuses bad input and passes out of order", async () => {
  const rt = await getBackend();
  const block = new BasicBlock(rt, "layer2.0", 3, 4, { stride: 2 });
  const wrong = rt.zeros([2, 5, 6, 6]);
  const empty = rt.zeros([0, 3, 6, 6]);
  const x = upload(rt, randomArray(2 * 3 * 6 * 6, 43), [2, 3, 6, 6]);
  try {
    assert.throws(
      () => block.backward(x),
      /layer2\.0 \(BasicBlock 3->4, s2\): backward\(\) before forward\(\)/,
    );
    assert.throws(
      () => block.forward(wrong),
      /layer2\.0 \(BasicBlock 3->4, s2\): expected input \[B,3,H,W\], got \[2,5,6,6\]/,
    );
    assert.throws(
      () => block.forward(empty),
      /layer2\.0 \(BasicBlock 3->4, s2\).*empty batch \[0,3,6,6\]/,
    );
    assert.throws(
      () => new BasicBlock(rt, "b", 3, 4, { stride: 0 }),
      /stride must be a positive integer/,
    );
    // (In training mode its jvp is the batch-coupled one: tests/fuzz_torch_test.ts.)
    block.training = false;
    block.forward(x);
    assert.throws(
      () => block.jvp(wrong),
      /tangent \[2,5,6,6\] does not match the input \[2,3,6,6\]/,
    );
  } finally {
    for (const t of [wrong, empty, x]) t.dispose();
    block.dispose();
  }
});

Deno.test("BasicBlock matches PyTorch (torchvision BasicBlock) in training and eval mode", async () => {
  const rt = await getBackend();
  const jobs: BridgeJob[] = [];
  const ours: {
    what: string;
    y: ArrayLike<number>;
    dx: ArrayLike<number>;
    state: Map<string, ArrayLike<number>>;
  }[] = [];
  for (const k of CASES) {
    for (const train of [false, true]) {
      const block = makeBlock(rt, k, 47);
      const inputs = await paramInputs(block.params());
      block.training = train;
      const xd = randomArray(numel(k.xs), 53);
      const x = upload(rt, xd, k.xs);
      const y = block.forward(x);
      const yv = await y.read();
      const u = randomArray(y.size, 59);
      const dy = upload(rt, u, y.shape);
      const dx = await block.backward(dy).read();
      const state = new Map<string, ArrayLike<number>>();
      for (const p of block.params()) {
        if (p.grad) state.set(`grad.${p.name}`, await p.grad.read());
        if (p.value.dtype === "f32") state.set(`state.${p.name}`, await p.value.read());
      }
      ours.push({ what: `${k.what}, ${train ? "train" : "eval"}`, y: yv, dx, state });
      jobs.push({
        spec: {
          op: "forward",
          mode: train ? "train" : "eval",
          return_state: true,
          model: {
            layers: [{
              type: "basic_block",
              name: "blk",
              in: k.inC,
              out: k.outC,
              stride: k.stride,
            }],
          },
        },
        inputs: { ...inputs, x: f64(k.xs, xd), dy: f64(y.shape, u) },
      });
      for (const t of [x, dy]) t.dispose();
      block.dispose();
    }
  }
  const results = await torchBridge(jobs);
  let worst = 0;
  results.forEach((r, i) => {
    const o = ours[i];
    const check = (name: string, got: ArrayLike<number>, want: ArrayLike<number>) => {
      const e = relErr(got, want);
      worst = Math.max(worst, e);
      assert.ok(e < 1e-4, `${o.what}: ${name} relative error ${e.toExponential(2)}`);
    };
    check("logits", o.y, r.logits.data);
    check("grad.x", o.dx, r["grad.x"].data);
    for (const [name, got] of o.state) check(name, got, r[name].data);
  });
  console.log(`BasicBlock vs PyTorch: max relative error ${worst.toExponential(2)}`);
});

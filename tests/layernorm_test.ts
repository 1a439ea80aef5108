/**
 * LayerNorm and GroupNorm (src/layers/layernorm.ts): forward, input and parameter gradients and
 * jvp against PyTorch 1.13 (tools/torch_bridge.py, float64), the dot-product test of backward
 * and the finite-difference check of jvp against a float64 reference, and input errors.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, jvpFD, numel } from "./_layer_check.ts";
import { assertLayerPass, f64, paramInputs, torchBridge, upload } from "./_model_bridge.ts";
import { GroupNorm, LayerNorm } from "../src/layers/layernorm.ts";
import type { Backend } from "../src/backend.ts";
import { buildModel } from "../src/models/mod.ts";
import { selectParams } from "../src/regularizers/_params.ts";
import { weightStats } from "../src/metrics/weights.ts";

interface Case {
  what: string;
  desc: Record<string, unknown>;
  x: number[];
  make: (rt: Backend) => LayerNorm | GroupNorm;
  /** Rows of contiguous values and the affine index of element i, for the reference. */
  m: number;
  aff: ((i: number) => number) | null;
}

const CASES: Case[] = [
  {
    what: "LayerNorm [6] on (4, 6)",
    desc: { type: "layernorm", name: "norm", shape: [6] },
    x: [4, 6],
    make: (rt) => new LayerNorm(rt, "norm", [6]),
    m: 6,
    aff: (i) => i % 6,
  },
  {
    what: "LayerNorm [3, 4] on (2, 5, 3, 4)",
    desc: { type: "layernorm", name: "norm", shape: [3, 4] },
    x: [2, 5, 3, 4],
    make: (rt) => new LayerNorm(rt, "norm", [3, 4]),
    m: 12,
    aff: (i) => i % 12,
  },
  {
    what: "LayerNorm [7] without affine",
    desc: { type: "layernorm", name: "norm", shape: [7], affine: false },
    x: [3, 7],
    make: (rt) => new LayerNorm(rt, "norm", 7, { elementwiseAffine: false }),
    m: 7,
    aff: null,
  },
  {
    what: "GroupNorm 2 groups on (3, 4, 5, 5)",
    desc: { type: "groupnorm", name: "norm", groups: 2, channels: 4 },
    x: [3, 4, 5, 5],
    make: (rt) => new GroupNorm(rt, "norm", 2, 4),
    m: 50,
    aff: (i) => Math.floor(i / 25) % 4,
  },
  {
    what: "GroupNorm 1 group on (2, 3, 4)",
    desc: { type: "groupnorm", name: "norm", groups: 1, channels: 3, eps: 1e-3 },
    x: [2, 3, 4],
    make: (rt) => new GroupNorm(rt, "norm", 1, 3, { eps: 1e-3 }),
    m: 12,
    aff: (i) => Math.floor(i / 4) % 3,
  },
  {
    what: "GroupNorm 3 groups of 3 channels without affine (instance norm)",
    desc: { type: "groupnorm", name: "norm", groups: 3, channels: 3, affine: false },
    x: [2, 3, 2, 3],
    make: (rt) => new GroupNorm(rt, "norm", 3, 3, { affine: false }),
    m: 6,
    aff: null,
  },
];

/** Float64 reference forward: rows of m values, biased variance, then γ[a] x̂ + β[a]. */
function refForward(
  x: ArrayLike<number>,
  m: number,
  eps: number,
  aff: ((i: number) => number) | null,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / m; r++) {
    let mu = 0, q = 0;
    for (let j = 0; j < m; j++) mu += x[r * m + j] / m;
    for (let j = 0; j < m; j++) q += (x[r * m + j] - mu) ** 2 / m;
    const s = 1 / Math.sqrt(q + eps);
    for (let j = 0; j < m; j++) {
      const i = r * m + j, xh = (x[i] - mu) * s;
      y[i] = aff ? gamma[aff(i)] * xh + beta[aff(i)] : xh;
    }
  }
  return y;
}

Deno.test("LayerNorm and GroupNorm match PyTorch: forward, gradients and jvp", async () => {
  const rt = await getBackend();
  const ours = [];
  const jobs = [];
  for (const [ci, c] of CASES.entries()) {
    const layer = c.make(rt);
    for (const [pi, p] of layer.params().entries()) {
      const lo = p.kind === "weight" ? 0.5 : -0.3, hi = p.kind === "weight" ? 1.5 : 0.3;
      rt.write(p.value, randomArray(p.value.size, 40 + 10 * ci + pi, lo, hi));
    }
    const n = numel(c.x);
    const xd = randomArray(n, 50 + ci, -2, 3), dyd = randomArray(n, 60 + ci);
    const txd = randomArray(n, 70 + ci);
    const inputs = await paramInputs(layer.params());
    const x = upload(rt, xd, c.x), dy = upload(rt, dyd, c.x), tx = upload(rt, txd, c.x);
    const y = await layer.forward(x).read();
    const dx = await layer.backward(dy).read();
    const jvp = await layer.jvp(tx).read();
    const grads = new Map<string, Float32Array>();
    for (const p of layer.params()) grads.set(p.name, (await p.grad!.read()) as Float32Array);
    ours.push({ y, dx, jvp, grads });
    jobs.push({
      spec: { op: "forward", model: { layers: [c.desc] } },
      inputs: { ...inputs, x: f64(c.x, xd), dy: f64(c.x, dyd), tx: f64(c.x, txd) },
    });
    for (const t of [x, dy, tx]) t.dispose();
    layer.dispose();
  }
  const want = await torchBridge(jobs);
  for (const [i, c] of CASES.entries()) {
    assertLayerPass(c.what, ours[i], want[i], 1e-5);
  }
});

Deno.test("LayerNorm and GroupNorm backward pass the dot-product test, jvp finite differences", async () => {
  const rt = await getBackend();
  for (const [ci, c] of CASES.entries()) {
    const layer = c.make(rt);
    const ps = layer.params();
    const gamma = randomArray(ps[0]?.value.size ?? 0, 80 + ci, 0.5, 1.5);
    const beta = randomArray(ps[1]?.value.size ?? 0, 90 + ci, -0.3, 0.3);
    if (ps.length) {
      rt.write(ps[0].value, gamma);
      rt.write(ps[1].value, beta);
    }
    const n = numel(c.x);
    const xd = randomArray(n, 100 + ci, -1, 2);
    const u = randomArray(n, 110 + ci), v = randomArray(n, 120 + ci);
    const f = (xx: Float64Array) => refForward(xx, c.m, layer.eps, c.aff, gamma, beta);
    const x = upload(rt, xd, c.x), du = upload(rt, u, c.x), tv = upload(rt, v, c.x);
    layer.forward(x);
    assertDotProduct(c.what, f, xd, v, u, await layer.backward(du).read());
    assertClose(await layer.jvp(tv).read(), jvpFD(f, xd, v), {
      atol: 1e-4,
      rtol: 1e-4,
      what: `${c.what} jvp`,
    });
    for (const t of [x, du, tv]) t.dispose();
    layer.dispose();
  }
});

Deno.test("LayerNorm and GroupNorm inputGrad() is backward's dx and leaves dγ, dβ alone", async () => {
  const rt = await getBackend();
  for (const [ci, c] of CASES.entries()) {
    const layer = c.make(rt);
    const n = numel(c.x);
    const x = upload(rt, randomArray(n, 130 + ci, -1, 2), c.x);
    const dy = upload(rt, randomArray(n, 140 + ci), c.x);
    try {
      layer.forward(x);
      const dx = Float32Array.from(await layer.backward(dy).read());
      const grads = await Promise.all(layer.params().map((p) => p.grad!.read()));
      assert.deepStrictEqual(Array.from(await layer.inputGrad(dy).read()), Array.from(dx));
      for (const [i, p] of layer.params().entries()) {
        assert.deepStrictEqual(
          Array.from(await p.grad!.read()),
          Array.from(grads[i]),
          `${c.what}: ${p.name} changed by inputGrad()`,
        );
      }
    } finally {
      for (const t of [x, dy]) t.dispose();
      layer.dispose();
    }
  }
});

Deno.test("LayerNorm and GroupNorm refuse bad shapes and passes out of order", async () => {
  const rt = await getBackend();
  const ln = new LayerNorm(rt, "ln1", [4]);
  const gn = new GroupNorm(rt, "gn1", 2, 4);
  const x = rt.zeros([2, 5]);
  try {
    assert.throws(
      () => ln.forward(x),
      /ln1 \(LayerNorm \[4\]\): expected input \[B,\.\.\.,4\], got \[2,5\]/,
    );
    assert.throws(
      () => gn.forward(x),
      /gn1 \(GroupNorm 2 groups, 4 channels\): expected input \[B,4,\.\.\.\]/,
    );
    assert.throws(() => ln.backward(x), /ln1 \(LayerNorm \[4\]\): backward\(\) before forward\(\)/);
    assert.throws(
      () => new GroupNorm(rt, "g", 3, 4),
      /channels \(4\) must be a positive multiple of groups \(3\)/,
    );
    assert.throws(() => new LayerNorm(rt, "l", []), /normalizedShape must be positive integers/);
  } finally {
    x.dispose();
    ln.dispose();
    gn.dispose();
  }
});

Deno.test("LayerNorm over (C, H, W) in a model spec starts at γ = 1, β = 0 as PyTorch's, and counts as a norm scale, not a matrix", async () => {
  const rt = await getBackend();
  const spec = {
    kind: "sequential",
    inputShape: [1, 6, 6],
    classes: 2,
    layers: [
      { type: "conv2d", name: "conv1", in: 1, out: 3, kernel: 3 },
      { type: "layernorm", name: "ln1", shape: [3, 4, 4] },
      { type: "flatten" },
      { type: "linear", name: "fc", in: 48, out: 2 },
    ],
  };
  const model = buildModel(rt, spec, { seed: 1 });
  try {
    const ps = model.params();
    const g = ps.find((p) => p.name === "ln1.weight")!, b = ps.find((p) => p.name === "ln1.bias")!;
    assert.deepEqual(g.value.shape, [3, 4, 4]);
    assert.ok((await g.value.read()).every((v) => v === 1));
    assert.ok((await b.value.read()).every((v) => v === 0));
    // torch.nn.LayerNorm([3, 4, 4]) initialises the same (reset_parameters: ones_, zeros_).
    assert.deepEqual(
      selectParams(ps).map((p) => p.name),
      ["conv1.weight", "fc.weight"],
    );
    assert.deepEqual(
      selectParams(ps, { norms: true }).map((p) => p.name),
      ["conv1.weight", "ln1.weight", "fc.weight"],
    );
    assert.deepEqual(selectParams(ps, { norms: true }, true).map((p) => p.name), [
      "conv1.weight",
      "fc.weight",
    ]);
    const stats = await weightStats(ps);
    assert.equal(stats.find((s) => s.name === "ln1.weight")!.spectralNorm, undefined);
  } finally {
    model.dispose();
  }
});

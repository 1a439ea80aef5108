import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, dot, jvpFD, numel } from "./_layer_check.ts";
import {
  Conv2d,
  conv2dForward,
  conv2dInputGrad,
  type Conv2dTiling,
  conv2dWeightGrad,
} from "../src/layers/conv2d.ts";
import { conv2dBackwardRef, conv2dRef, type Window2d } from "../src/reference/layers.ts";
import { unary } from "../src/ops/elementwise.ts";

/** [input shape, out channels, kernel, stride, padding]: odd sizes, batch 1 and 3, non-square. */
const CASES: [number[], number, [number, number], [number, number], [number, number]][] = [
  [[1, 3, 7, 13], 5, [3, 3], [1, 1], [1, 1]],
  [[3, 2, 13, 7], 4, [5, 5], [2, 2], [2, 2]],
  [[3, 4, 9, 11], 6, [1, 1], [1, 1], [0, 0]],
  [[2, 3, 8, 9], 7, [3, 5], [2, 1], [1, 2]],
  [[1, 1, 5, 5], 17, [5, 5], [1, 1], [0, 0]],
  [[3, 5, 7, 13], 3, [3, 3], [2, 2], [1, 1]],
];

function label(c: (typeof CASES)[number]): string {
  return `x ${c[0]} o${c[1]} k${c[2]} s${c[3]} p${c[4]}`;
}

/** A Conv2d with random weights and bias, and the float64 reference data. */
async function setup(c: (typeof CASES)[number], seed: number) {
  const rt = await getBackend();
  const [xs, o, k, s, p] = c;
  const conv = new Conv2d(rt, "conv", xs[1], o, k, { stride: s, padding: p });
  const w = randomArray(numel(conv.weight.shape), seed, -0.5, 0.5);
  const b = randomArray(o, seed + 1);
  rt.write(conv.weight, w);
  rt.write(conv.bias!, b);
  const xa = randomArray(numel(xs), seed + 2);
  const g: Window2d = { kernel: k, stride: s, padding: p };
  return { rt, conv, w, b, xa, g, xs, o };
}

Deno.test("Conv2d.forward() matches the float64 reference on odd shapes", async () => {
  for (const [i, c] of CASES.entries()) {
    const { rt, conv, w, b, xa, g, xs, o } = await setup(c, 10 * i);
    const x = rt.upload(xa, xs);
    const y = conv.forward(x);
    const ref = conv2dRef(xa, xs, w, o, b, g);
    assert.deepEqual(y.shape, ref.shape, label(c));
    assertClose(await y.read(), ref.y, { atol: 1e-5, rtol: 1e-4, what: `y ${label(c)}` });
    x.dispose();
    conv.dispose();
  }
});

Deno.test("Conv2d.backward() passes the dot-product test and accumulates weight/bias gradients", async () => {
  for (const [i, c] of CASES.entries()) {
    const { rt, conv, w, xa, g, xs, o } = await setup(c, 100 + 10 * i);
    const x = rt.upload(xa, xs);
    const y = conv.forward(x);
    const u = randomArray(y.size, 7 + i);
    const v = randomArray(x.size, 8 + i);
    const dy = rt.upload(u, y.shape);
    const dx = await conv.backward(dy).read();
    const f = (xx: Float64Array) => conv2dRef(xx, xs, w, o, null, g).y;
    assertDotProduct(`dx ${label(c)}`, f, xa, v, u, dx);
    const ref = conv2dBackwardRef(xa, xs, w, o, u, g);
    assertClose(dx, ref.dx, { atol: 1e-5, rtol: 1e-4, what: `dx ${label(c)}` });
    assertClose(await conv.dWeight.read(), ref.dw, {
      atol: 1e-4,
      rtol: 1e-4,
      what: `dW ${label(c)}`,
    });
    assertClose(await conv.dBias!.read(), ref.db, {
      atol: 1e-4,
      rtol: 1e-4,
      what: `db ${label(c)}`,
    });
    conv.backward(dy);
    const twice = (a: Float64Array) => a.map((t) => 2 * t);
    assertClose(await conv.dWeight.read(), twice(ref.dw), {
      atol: 2e-4,
      rtol: 1e-4,
      what: "dW accumulated",
    });
    assertClose(await conv.dBias!.read(), twice(ref.db), {
      atol: 2e-4,
      rtol: 1e-4,
      what: "db accumulated",
    });
    x.dispose();
    dy.dispose();
    conv.dispose();
  }
});

Deno.test("Conv2d.jvp() matches central differences of the forward", async () => {
  for (const [i, c] of CASES.entries()) {
    const { rt, conv, w, b, xa, g, xs, o } = await setup(c, 200 + 10 * i);
    const x = rt.upload(xa, xs);
    conv.forward(x);
    const v = randomArray(x.size, 9 + i);
    const tx = rt.upload(v, xs);
    const ty = await conv.jvp(tx).read();
    const want = jvpFD((xx) => conv2dRef(xx, xs, w, o, b, g).y, xa, v);
    assertClose(ty, want, { atol: 1e-4, rtol: 1e-4, what: `jvp ${label(c)}` });
    x.dispose();
    tx.dispose();
    conv.dispose();
  }
});

Deno.test("conv2dBackwardRef() weight and bias gradients match finite differences", () => {
  const [xs, o, k, s, p] = CASES[3];
  const g: Window2d = { kernel: k, stride: s, padding: p };
  const x = randomArray(numel(xs), 1), w = randomArray(o * xs[1] * k[0] * k[1], 2);
  const b = randomArray(o, 3);
  const u = randomArray(conv2dRef(x, xs, w, o, b, g).y.length, 4);
  const ref = conv2dBackwardRef(x, xs, w, o, u, g);
  const vw = randomArray(w.length, 5), vb = randomArray(o, 6);
  const fdW = dot(u, jvpFD((ww) => conv2dRef(x, xs, ww, o, b, g).y, w, vw));
  const fdB = dot(u, jvpFD((bb) => conv2dRef(x, xs, w, o, bb, g).y, b, vb));
  assertClose([dot(ref.dw, vw), dot(ref.db, vb)], [fdW, fdB], { atol: 1e-6, rtol: 1e-6 });
});

Deno.test("conv2dForward() / InputGrad / WeightGrad agree across tilings (GPU and CPU paths)", async () => {
  const rt = await getBackend();
  const tilings: Partial<Conv2dTiling>[] = [
    { shared: true, tx: 16, ty: 16, rm: 4, bk: 16 },
    { shared: true, tx: 32, ty: 8, rm: 1, bk: 16 },
    { shared: true, tx: 8, ty: 4, rm: 5, bk: 8 },
    { shared: false, tx: 8, ty: 2, rm: 3, bk: 16 },
  ];
  for (const c of [CASES[1], CASES[3], CASES[4]]) {
    const [xs, o, k, stride, padding] = c;
    const g: Window2d = { kernel: k, stride, padding };
    const xa = randomArray(numel(xs), 11), wa = randomArray(o * xs[1] * k[0] * k[1], 12);
    const ba = randomArray(o, 13);
    const x = rt.upload(xa, xs), w = rt.upload(wa, [o, xs[1], ...k]), b = rt.upload(ba, [o]);
    const ref = conv2dRef(xa, xs, wa, o, ba, g);
    const u = randomArray(ref.y.length, 14);
    const dy = rt.upload(u, ref.shape);
    const bref = conv2dBackwardRef(xa, xs, wa, o, u, g);
    for (const tiling of tilings) {
      const what = `${label(c)} ${JSON.stringify(tiling)}`;
      const y = conv2dForward(rt, x, w, { bias: b, stride, padding, tiling });
      assertClose(await y.read(), ref.y, { what: `y ${what}` });
      const dx = conv2dInputGrad(rt, dy, w, { inputShape: xs, stride, padding, tiling });
      assertClose(await dx.read(), bref.dx, { what: `dx ${what}` });
      for (const splits of [1, 4]) {
        const dw = rt.upload(new Float32Array(wa.length).fill(0.5), w.shape);
        const db = rt.upload(new Float32Array(o).fill(-1), [o]);
        conv2dWeightGrad(rt, dy, x, { dWeight: dw, dBias: db, stride, padding, tiling, splits });
        assertClose(await dw.read(), bref.dw.map((t) => t + 0.5), {
          atol: 1e-4,
          what: `dW ${what} splits ${splits}`,
        });
        assertClose(await db.read(), bref.db.map((t) => t - 1), { atol: 1e-4, what: `db ${what}` });
        dw.dispose();
        db.dispose();
      }
      y.dispose();
      dx.dispose();
    }
    for (const t of [x, w, b, dy]) t.dispose();
  }
});

Deno.test("conv2dForward() / InputGrad / WeightGrad direct-load runs and packed weights match the reference", async () => {
  const rt = await getBackend();
  // 3-wide kernels with unit x stride take the run path (modes 0, 1; mode 2 with tx 2, cn 1,
  // where C·kh >= 8), with and without packed A; rm 4 and 16 with ty 1 take the packed-A path
  // (all modes), with M not a multiple of 4 or 16. 5-wide kernels with unit stride take it in
  // mode 1, and in mode 0 where padded (LeNet's conv1 and both input gradients).
  const cases: typeof CASES = [
    [[2, 5, 6, 13], 17, [3, 3], [1, 1], [0, 0]],
    [[3, 3, 9, 10], 6, [3, 3], [1, 1], [1, 1]],
    [[2, 4, 11, 7], 3, [3, 3], [2, 1], [1, 1]],
    [[1, 2, 5, 9], 9, [5, 3], [1, 1], [2, 0]],
    [[2, 1, 9, 11], 6, [5, 5], [1, 1], [2, 2]],
    [[3, 6, 10, 13], 5, [3, 5], [1, 1], [0, 1]],
    [[1, 3, 8, 7], 17, [5, 5], [1, 1], [0, 0]],
  ];
  const tilings: Partial<Conv2dTiling>[] = [
    { shared: false, tx: 8, ty: 1, rm: 16, cn: 4 },
    { shared: false, tx: 2, ty: 1, rm: 4, cn: 1 },
    { shared: false, tx: 8, ty: 1, rm: 4, cn: 1, pack: false },
  ];
  for (const c of cases) {
    const [xs, o, k, stride, padding] = c;
    const g: Window2d = { kernel: k, stride, padding };
    const xa = randomArray(numel(xs), 21), wa = randomArray(o * xs[1] * k[0] * k[1], 22);
    const ba = randomArray(o, 23);
    const x = rt.upload(xa, xs), w = rt.upload(wa, [o, xs[1], ...k]), b = rt.upload(ba, [o]);
    const ref = conv2dRef(xa, xs, wa, o, ba, g);
    const dy = rt.upload(randomArray(ref.y.length, 24), ref.shape);
    const bref = conv2dBackwardRef(xa, xs, wa, o, await dy.read() as Float32Array, g);
    for (const tiling of tilings) {
      const what = `${label(c)} ${JSON.stringify(tiling)}`;
      const y = conv2dForward(rt, x, w, { bias: b, stride, padding, tiling });
      assertClose(await y.read(), ref.y, { what: `y ${what}` });
      const dx = conv2dInputGrad(rt, dy, w, { inputShape: xs, stride, padding, tiling });
      assertClose(await dx.read(), bref.dx, { what: `dx ${what}` });
      const dw = rt.upload(new Float32Array(wa.length).fill(0.5), w.shape);
      conv2dWeightGrad(rt, dy, x, { dWeight: dw, stride, padding, tiling, splits: 3 });
      assertClose(await dw.read(), bref.dw.map((t) => t + 0.5), { atol: 1e-4, what: `dW ${what}` });
      for (const t of [y, dx, dw]) t.dispose();
    }
    for (const t of [x, w, b, dy]) t.dispose();
  }
});

Deno.test("conv2dForward() four-row runs give the bits of one-row runs and match the reference", async () => {
  const rt = await getBackend();
  // 3×3, unit stride, cn 4 takes ROWS (shaders/conv2d.wgsl) when asked: output heights a multiple of 4 and
  // not (rows past OH clamped without padding, zero-padded with), one block, odd widths, M not a
  // multiple of 16; a row stride of 2 stays on one-row runs.
  const cases: typeof CASES = [
    [[2, 5, 6, 13], 17, [3, 3], [1, 1], [0, 0]],
    [[2, 3, 11, 9], 5, [3, 3], [1, 1], [0, 0]],
    [[3, 4, 9, 10], 6, [3, 3], [1, 1], [1, 1]],
    [[1, 2, 7, 5], 20, [3, 3], [1, 1], [0, 1]],
    [[2, 4, 11, 7], 3, [3, 3], [2, 1], [1, 1]],
  ];
  for (const c of cases) {
    const [xs, o, k, stride, padding] = c;
    const xa = randomArray(numel(xs), 31), wa = randomArray(o * xs[1] * k[0] * k[1], 32);
    const ba = randomArray(o, 33);
    const x = rt.upload(xa, xs), w = rt.upload(wa, [o, xs[1], ...k]), b = rt.upload(ba, [o]);
    const ref = conv2dRef(xa, xs, wa, o, ba, { kernel: k, stride, padding });
    const tiling = { shared: false, tx: 8, ty: 1, rm: 16, cn: 4, rows: true };
    const four = conv2dForward(rt, x, w, { bias: b, stride, padding, tiling });
    const one = conv2dForward(rt, x, w, {
      bias: b,
      stride,
      padding,
      tiling: { ...tiling, rows: false },
    });
    const got = await four.read();
    assertClose(got, ref.y, { what: `y ${label(c)}` });
    assert.deepStrictEqual(got, await one.read(), `${label(c)}: four-row and one-row runs differ`);
    for (const t of [x, w, b, four, one]) t.dispose();
  }
});

Deno.test("conv2dWeightGrad() five triples per thread over four-channel lanes give the bits of the triple path", async () => {
  const rt = await getBackend();
  // The run path of the weight gradient (3-wide, sw 1, C·kh >= 4·tx·cn) with packed dy, rm 16
  // and cn 4 takes TRIO (shaders/conv2d.wgsl): five (c, ky) triples per thread, the last block
  // of triples and rows part empty (33 and 39 triples, 17 and 5 channels), padding, a row
  // stride of 2, one and three K splits.
  const cases: typeof CASES = [
    [[2, 11, 7, 9], 17, [3, 3], [1, 1], [0, 0]],
    [[3, 13, 6, 5], 5, [3, 3], [2, 1], [1, 1]],
    [[1, 11, 5, 8], 20, [3, 3], [1, 1], [1, 0]],
  ];
  const tiling = { shared: false, tx: 2, ty: 1, rm: 16, cn: 4 };
  for (const c of cases) {
    const [xs, o, k, stride, padding] = c;
    const xa = randomArray(numel(xs), 41), wa = randomArray(o * xs[1] * k[0] * k[1], 42);
    const x = rt.upload(xa, xs);
    const ref = conv2dRef(xa, xs, wa, o, new Float32Array(o), { kernel: k, stride, padding });
    const dy = rt.upload(randomArray(ref.y.length, 43), ref.shape);
    const bref = conv2dBackwardRef(xa, xs, wa, o, await dy.read() as Float32Array, {
      kernel: k,
      stride,
      padding,
    });
    for (const splits of [1, 3]) {
      const got = [];
      for (const trio of [true, false]) {
        const dw = rt.upload(new Float32Array(wa.length).fill(0.5), [o, xs[1], ...k]);
        conv2dWeightGrad(rt, dy, x, {
          dWeight: dw,
          stride,
          padding,
          tiling: { ...tiling, trio },
          splits,
        });
        got.push(await dw.read());
        dw.dispose();
      }
      const what = `${label(c)} splits ${splits}`;
      assertClose(got[0], bref.dw.map((t) => t + 0.5), { atol: 1e-4, what: `dW ${what}` });
      assert.deepStrictEqual(got[0], got[1], `${what}: five-triple and triple paths differ`);
    }
    for (const t of [x, dy]) t.dispose();
  }
});

Deno.test("conv2dForward() with an activation gives the bits of the convolution then the activation kernel", async () => {
  const rt = await getBackend();
  for (const [ci, c] of CASES.entries()) {
    const { conv, xa, xs } = await setup(c, 90 + 5 * ci);
    const x = rt.upload(xa.map((v) => 4 * v), xs); // past tanh's series range and saturation
    const geo = { stride: c[3], padding: c[4] };
    const plain = conv2dForward(rt, x, conv.weight, { ...geo, bias: conv.bias });
    // NaN and -0 in the pre-activation: relu keeps NaN as PyTorch does.
    const pre = await plain.read() as Float32Array;
    pre[0] = NaN;
    pre[1] = -0;
    rt.write(plain, pre);
    for (const act of ["relu", "tanh", "sigmoid"] as const) {
      // The device's tiling; for tanh on two cases also packed direct loads and workgroup
      // memory (each variant is a pipeline to compile: a few, not all).
      const shared = { shared: true, tx: 32, ty: 8, rm: 2, bk: 16 };
      const tilings = act === "tanh" && ci < 2 ? [undefined, { shared: false, rm: 8 }, shared] : [
        undefined,
      ];
      for (const tiling of tilings) {
        const fused = conv2dForward(rt, x, conv.weight, {
          ...geo,
          bias: conv.bias,
          activation: act,
          tiling,
        });
        const ref = conv2dForward(rt, x, conv.weight, { ...geo, bias: conv.bias, tiling });
        const want = unary(rt, act, ref);
        const got = await fused.read(), w = await want.read();
        for (let i = 0; i < got.length; i++) {
          if (!Object.is(got[i], w[i])) {
            assert.fail(
              `${label(c)} ${act} ${JSON.stringify(tiling)}: [${i}] ${got[i]} vs ${w[i]}`,
            );
          }
        }
        for (const t of [fused, ref, want]) t.dispose();
      }
    }
    const nanIn = unary(rt, "relu", plain);
    assert.ok(Number.isNaN((await nanIn.read())[0]));
    for (const t of [nanIn, plain, x]) t.dispose();
    conv.dispose();
  }
  const { conv, xa, xs } = await setup(CASES[0], 3);
  const x = rt.upload(xa, xs);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => conv2dForward(rt, x, conv.weight, { padding: 1, activation: "gelu" as any }),
    /unknown activation 'gelu' \(use relu, tanh, sigmoid\)/,
  );
  x.dispose();
  conv.dispose();
});

Deno.test("Conv2d.weightGrad() accumulates dy ⊗ tangent without touching the bias on request", async () => {
  const { rt, conv, w, xa, g, xs, o } = await setup(CASES[0], 300);
  const x = rt.upload(xa, xs);
  const y = conv.forward(x);
  const u = randomArray(y.size, 1), r = randomArray(x.size, 2);
  const dy = rt.upload(u, y.shape), tx = rt.upload(r, xs);
  conv.weightGrad(dy, tx, { bias: false });
  const ref = conv2dBackwardRef(r, xs, w, o, u, g);
  assertClose(await conv.dWeight.read(), ref.dw, { atol: 1e-4, what: "dW from tangent" });
  assert.deepEqual(Array.from(await conv.dBias!.read()), new Array(o).fill(0));
  const dx = await conv.inputGrad(dy).read();
  assertClose(dx, ref.dx, { what: "inputGrad" });
  for (const t of [x, dy, tx]) t.dispose();
  conv.dispose();
});

Deno.test("Conv2d.params() uses PyTorch names and OIHW layouts; bias: false has none", async () => {
  const rt = await getBackend();
  const conv = new Conv2d(rt, "features.0", 3, 6, [5, 3]);
  assert.deepEqual(
    conv.params().map((p) => [p.name, p.value.shape, p.grad?.shape, p.kind]),
    [["features.0.weight", [6, 3, 5, 3], [6, 3, 5, 3], "weight"], [
      "features.0.bias",
      [6],
      [6],
      "bias",
    ]],
  );
  assert.deepEqual(Array.from(await conv.weight.read()), new Array(6 * 3 * 15).fill(0));
  const nb = new Conv2d(rt, "c", 2, 2, 1, { bias: false });
  assert.deepEqual(nb.params().map((p) => p.name), ["c.weight"]);
  conv.dispose();
  nb.dispose();
});

Deno.test("Conv2d.forward() rejects wrong channels, empty batches, small inputs and disposed tensors", async () => {
  const rt = await getBackend();
  const conv = new Conv2d(rt, "conv2", 6, 16, 5);
  const x = rt.zeros([64, 3, 32, 32]);
  assert.throws(() => conv.forward(x), {
    message: "conv2 (Conv2d 6->16, k5): expected input [B,6,H,W], got [64,3,32,32]",
  });
  const empty = rt.zeros([0, 6, 8, 8]);
  assert.throws(
    () => conv.forward(empty),
    /conv2 \(Conv2d 6->16, k5\): got an empty batch \[0,6,8,8\]/,
  );
  const small = rt.zeros([1, 6, 4, 9]);
  assert.throws(() => conv.forward(small), /smaller than the 5x5 kernel/);
  const gone = rt.zeros([1, 6, 8, 8]);
  gone.dispose();
  assert.throws(
    () => conv.forward(gone),
    /conv2 \(Conv2d 6->16, k5\): input .* was used after dispose\(\)/,
  );
  assert.throws(() => conv.backward(rt.zeros([1, 16, 4, 4])), /backward\(\) before forward\(\)/);
  const ok = rt.zeros([2, 6, 8, 8]);
  conv.forward(ok);
  const badDy = rt.zeros([2, 16, 5, 4]);
  assert.throws(
    () => conv.backward(badDy),
    /gradient shape \[2,16,5,4\] does not match .* \[2,16,4,4\]/,
  );
  ok.dispose();
  assert.throws(() => conv.backward(rt.zeros([2, 16, 4, 4])), /was disposed before backward\(\)/);
  assert.throws(
    () => new Conv2d(rt, "c", 3, 4, 3, { stride: 0 }),
    /stride must be an integer >= 1/,
  );
  for (const t of [x, empty, small, badDy]) t.dispose();
  conv.dispose();
});

import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, dot, jvpFD } from "./_layer_check.ts";
import { Linear } from "../src/layers/linear.ts";
import { linearBackwardRef, linearRef } from "../src/reference/layers.ts";

/** [batch, in, out]: batch 1 and 3, odd widths, one wider than a matmul tile. */
const CASES: [number, number, number][] = [[1, 7, 5], [3, 13, 1], [3, 17, 33], [5, 130, 3]];

async function setup([b, inF, outF]: [number, number, number], seed: number, bias = true) {
  const rt = await getBackend();
  const fc = new Linear(rt, "fc", inF, outF, { bias });
  const w = randomArray(outF * inF, seed, -0.5, 0.5);
  const bb = randomArray(outF, seed + 1);
  rt.write(fc.weight, w);
  if (bias) rt.write(fc.bias!, bb);
  const xa = randomArray(b * inF, seed + 2);
  return { rt, fc, w, bb: bias ? bb : null, xa };
}

Deno.test("Linear forward, backward and jvp match the float64 reference", async () => {
  for (const [i, c] of CASES.entries()) {
    const [b, inF, outF] = c;
    const { rt, fc, w, bb, xa } = await setup(c, 10 * i);
    const x = rt.upload(xa, [b, inF]);
    const y = fc.forward(x);
    assert.deepEqual(y.shape, [b, outF]);
    assertClose(await y.read(), linearRef(xa, b, inF, w, outF, bb), { what: `y ${c}` });
    const u = randomArray(b * outF, 3 + i), v = randomArray(b * inF, 4 + i);
    const dy = rt.upload(u, [b, outF]);
    const dx = await fc.backward(dy).read();
    assertDotProduct(`dx ${c}`, (xx) => linearRef(xx, b, inF, w, outF, bb), xa, v, u, dx);
    const ref = linearBackwardRef(xa, b, inF, w, outF, u);
    assertClose(dx, ref.dx, { what: `dx ${c}` });
    assertClose(await fc.dWeight.read(), ref.dw, { what: `dW ${c}` });
    assertClose(await fc.dBias!.read(), ref.db, { what: `db ${c}` });
    fc.backward(dy);
    assertClose(await fc.dWeight.read(), ref.dw.map((t) => 2 * t), { what: `dW accumulated ${c}` });
    assertClose(await fc.dBias!.read(), ref.db.map((t) => 2 * t), { what: `db accumulated ${c}` });
    const tx = rt.upload(v, [b, inF]);
    const ty = await fc.jvp(tx).read();
    assertClose(ty, jvpFD((xx) => linearRef(xx, b, inF, w, outF, bb), xa, v), {
      atol: 1e-4,
      what: `jvp ${c}`,
    });
    for (const t of [x, dy, tx]) t.dispose();
    fc.dispose();
  }
});

Deno.test("linearBackwardRef() parameter gradients match finite differences", () => {
  const [b, inF, outF] = [3, 5, 4];
  const x = randomArray(b * inF, 1), w = randomArray(outF * inF, 2), bias = randomArray(outF, 3);
  const u = randomArray(b * outF, 4), vw = randomArray(w.length, 5), vb = randomArray(outF, 6);
  const ref = linearBackwardRef(x, b, inF, w, outF, u);
  const fdW = dot(u, jvpFD((ww) => linearRef(x, b, inF, ww, outF, bias), w, vw));
  const fdB = dot(u, jvpFD((bb) => linearRef(x, b, inF, w, outF, bb), bias, vb));
  assertClose([dot(ref.dw, vw), dot(ref.db, vb)], [fdW, fdB], { atol: 1e-7, rtol: 1e-7 });
});

Deno.test("Linear without bias; leading dims act as batch; weightGrad() takes a tangent", async () => {
  const { rt, fc, w, xa } = await setup([6, 7, 3], 50, false);
  assert.deepEqual(fc.params().map((p) => p.name), ["fc.weight"]);
  const x = rt.upload(xa, [2, 3, 7]);
  const y = fc.forward(x);
  assert.deepEqual(y.shape, [2, 3, 3]);
  assertClose(await y.read(), linearRef(xa, 6, 7, w, 3, null), { what: "y (2,3,7)" });
  const u = randomArray(18, 1), r = randomArray(42, 2);
  const dy = rt.upload(u, [2, 3, 3]), tx = rt.upload(r, [2, 3, 7]);
  fc.weightGrad(dy, tx);
  assertClose(await fc.dWeight.read(), linearBackwardRef(r, 6, 7, w, 3, u).dw, {
    what: "dW from tangent",
  });
  for (const t of [x, dy, tx]) t.dispose();
  fc.dispose();
});

Deno.test("Linear.params() uses PyTorch names and [out, in] layout, zero-filled with grads", async () => {
  const rt = await getBackend();
  const fc = new Linear(rt, "classifier.2", 400, 120);
  assert.deepEqual(
    fc.params().map((p) => [p.name, p.value.shape, p.grad?.shape, p.kind]),
    [["classifier.2.weight", [120, 400], [120, 400], "weight"], [
      "classifier.2.bias",
      [120],
      [120],
      "bias",
    ]],
  );
  assert.ok((await fc.weight.read()).every((v) => v === 0));
  fc.dispose();
});

Deno.test("Linear.forward() rejects wrong widths, empty batches and disposed inputs", async () => {
  const rt = await getBackend();
  const fc = new Linear(rt, "fc1", 400, 120);
  const x = rt.zeros([8, 256]);
  assert.throws(() => fc.forward(x), {
    message: "fc1 (Linear 400->120): expected input [B,400], got [8,256]",
  });
  const empty = rt.zeros([0, 400]);
  assert.throws(() => fc.forward(empty), /fc1 \(Linear 400->120\): got an empty batch \[0,400\]/);
  const gone = rt.zeros([2, 400]);
  gone.dispose();
  assert.throws(
    () => fc.forward(gone),
    /fc1 \(Linear 400->120\): input .* was used after dispose\(\)/,
  );
  assert.throws(() => fc.backward(x), /backward\(\) before forward\(\)/);
  x.dispose();
  empty.dispose();
  fc.dispose();
});

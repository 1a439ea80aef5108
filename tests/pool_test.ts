import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { assertDotProduct, jvpFD, numel } from "./_layer_check.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import {
  avgPool2dBackwardRef,
  avgPool2dRef,
  maxPool2dBackwardRef,
  maxPool2dJvpRef,
  maxPool2dRef,
  type Window2d,
} from "../src/reference/layers.ts";

/** [input shape, kernel, stride, padding]; kernel > stride makes windows overlap. */
const CASES: [number[], [number, number], [number, number], [number, number]][] = [
  [[3, 2, 13, 7], [2, 2], [2, 2], [0, 0]],
  [[1, 3, 13, 13], [3, 3], [2, 2], [0, 0]],
  [[3, 2, 7, 13], [3, 3], [2, 2], [1, 1]],
  [[2, 1, 9, 11], [3, 3], [1, 1], [1, 1]],
  [[1, 2, 8, 9], [3, 5], [1, 2], [1, 2]],
  [[2, 3, 5, 5], [5, 5], [1, 1], [2, 2]],
];

function label(c: (typeof CASES)[number]): string {
  return `x ${c[0]} k${c[1]} s${c[2]} p${c[3]}`;
}

Deno.test("MaxPool2d.forward() matches values and argmax indices of the float64 reference", async () => {
  const rt = await getBackend();
  for (const [i, c] of CASES.entries()) {
    const [xs, k, s, p] = c;
    const pool = new MaxPool2d(rt, "pool", k, { stride: s, padding: p });
    const xa = randomArray(numel(xs), i + 1);
    const x = rt.upload(xa, xs);
    const y = pool.forward(x);
    const ref = maxPool2dRef(xa, xs, { kernel: k, stride: s, padding: p });
    assert.deepEqual(y.shape, ref.shape, label(c));
    assertClose(await y.read(), ref.y, { atol: 0, rtol: 0, what: `y ${label(c)}` });
    assert.deepEqual(
      Array.from(await pool.indices!.read()),
      Array.from(ref.idx),
      `argmax ${label(c)}`,
    );
    x.dispose();
    pool.dispose();
  }
});

Deno.test("MaxPool2d.backward() scatter-adds over overlapping windows and passes the dot-product test", async () => {
  const rt = await getBackend();
  for (const [i, c] of CASES.entries()) {
    const [xs, k, s, p] = c;
    const g: Window2d = { kernel: k, stride: s, padding: p };
    const pool = new MaxPool2d(rt, "pool", k, { stride: s, padding: p });
    const xa = randomArray(numel(xs), 10 + i);
    const x = rt.upload(xa, xs);
    const y = pool.forward(x);
    const u = randomArray(y.size, 20 + i), v = randomArray(x.size, 30 + i);
    const dy = rt.upload(u, y.shape);
    const dx = await pool.backward(dy).read();
    const ref = maxPool2dRef(xa, xs, g);
    const ohw = ref.shape[2] * ref.shape[3];
    assertClose(dx, maxPool2dBackwardRef(ref.idx, u, xs, ohw), { what: `dx ${label(c)}` });
    assertDotProduct(`dx ${label(c)}`, (xx) => maxPool2dRef(xx, xs, g).y, xa, v, u, dx);
    const tx = rt.upload(v, xs);
    const ty = await pool.jvp(tx).read();
    assertClose(ty, maxPool2dJvpRef(ref.idx, v, xs, ohw), {
      atol: 0,
      rtol: 0,
      what: `jvp ${label(c)}`,
    });
    assertClose(ty, jvpFD((xx) => maxPool2dRef(xx, xs, g).y, xa, v), {
      atol: 1e-6,
      what: `jvp FD ${label(c)}`,
    });
    for (const t of [x, dy, tx]) t.dispose();
    pool.dispose();
  }
});

Deno.test("MaxPool2d.backward() sums the gradients of windows that share a maximum", async () => {
  const rt = await getBackend();
  // 1x5 row, kernel 3 stride 1 (as [1,3]): the 9 at index 2 is the max of all three windows.
  const pool = new MaxPool2d(rt, "p", [1, 3], { stride: 1 });
  const x = rt.upload([1, 2, 9, 3, 4], [1, 1, 1, 5]);
  pool.forward(x);
  const dy = rt.upload([1, 10, 100], [1, 1, 1, 3]);
  assert.deepEqual(Array.from(await pool.backward(dy).read()), [0, 0, 111, 0, 0]);
  x.dispose();
  dy.dispose();
  pool.dispose();
});

Deno.test("MaxPool2d.forward() propagates NaN and never picks padding", async () => {
  const rt = await getBackend();
  const pool = new MaxPool2d(rt, "p", 2, { stride: 2, padding: 1 });
  const x = rt.upload([-5, -6, NaN, -7], [1, 1, 2, 2]);
  const y = await pool.forward(x).read();
  assert.deepEqual(Array.from(y.slice(0, 2)), [-5, -6]);
  assert.ok(Number.isNaN(y[2]));
  assert.deepEqual(Array.from(await pool.indices!.read()), [0, 1, 2, 3]);
  x.dispose();
  pool.dispose();
});

Deno.test("AvgPool2d forward/backward/jvp match the reference (count_include_pad true and false)", async () => {
  const rt = await getBackend();
  for (const includePad of [true, false]) {
    for (const [i, c] of CASES.entries()) {
      const [xs, k, s, p] = c;
      const g: Window2d = { kernel: k, stride: s, padding: p };
      const what = `${label(c)} includePad=${includePad}`;
      const pool = new AvgPool2d(rt, "avg", k, {
        stride: s,
        padding: p,
        countIncludePad: includePad,
      });
      const xa = randomArray(numel(xs), 40 + i);
      const x = rt.upload(xa, xs);
      const y = pool.forward(x);
      const ref = avgPool2dRef(xa, xs, g, includePad);
      assert.deepEqual(y.shape, ref.shape);
      assertClose(await y.read(), ref.y, { what: `y ${what}` });
      const u = randomArray(y.size, 50 + i), v = randomArray(x.size, 60 + i);
      const dy = rt.upload(u, y.shape), tx = rt.upload(v, xs);
      const dx = await pool.backward(dy).read();
      assertClose(dx, avgPool2dBackwardRef(u, xs, g, includePad), { what: `dx ${what}` });
      assertDotProduct(`dx ${what}`, (xx) => avgPool2dRef(xx, xs, g, includePad).y, xa, v, u, dx);
      assertClose(await pool.jvp(tx).read(), avgPool2dRef(v, xs, g, includePad).y, {
        what: `jvp ${what}`,
      });
      for (const t of [x, dy, tx]) t.dispose();
      pool.dispose();
    }
  }
});

Deno.test("MaxPool2d / AvgPool2d reject bad inputs, padding over half the kernel and empty batches", async () => {
  const rt = await getBackend();
  const pool = new MaxPool2d(rt, "pool1", 2);
  const flat = rt.zeros([4, 10]);
  assert.throws(() => pool.forward(flat), {
    message: "pool1 (MaxPool2d k2, s2): expected input [B,C,H,W], got [4,10]",
  });
  const empty = rt.zeros([0, 3, 4, 4]);
  assert.throws(() => pool.forward(empty), /got an empty batch/);
  const tiny = rt.zeros([1, 1, 1, 1]);
  assert.throws(() => pool.forward(tiny), /smaller than the window 2x2/);
  assert.throws(
    () => new AvgPool2d(rt, "a", 3, { padding: 2 }),
    /padding 2,2 must be at most half the kernel 3x3/,
  );
  const gone = rt.zeros([1, 1, 4, 4]);
  gone.dispose();
  assert.throws(() => pool.forward(gone), /used after dispose\(\)/);
  assert.throws(() => pool.backward(flat), /backward\(\) before forward\(\)/);
  for (const t of [flat, empty, tiny]) t.dispose();
  pool.dispose();
});

import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { argmax, argmin, logSoftmax, reduce, type ReduceOp, softmax } from "../src/ops/reduce.ts";
import { argRef, reduceRef, softmaxRef } from "../src/reference/reduce.ts";

const OPS: ReduceOp[] = ["sum", "sumsq", "sumabs", "max", "min", "mean"];

/** Tolerance for a reduction of `vals`: a few eps per tree level times the sum of magnitudes. */
function tolFor(op: ReduceOp, vals: ArrayLike<number>, count: number): number {
  if (op === "max" || op === "min") return 0;
  let mag = 0;
  for (let i = 0; i < vals.length; i++) mag += op === "sumsq" ? vals[i] ** 2 : Math.abs(vals[i]);
  const levels = 8 + Math.log2(Math.max(2, count));
  return 1.2e-7 * levels * mag / (op === "mean" ? count : 1) + 1e-30;
}

Deno.test("reduce() over the whole tensor matches float64 for every op and size", async () => {
  const rt = await getBackend();
  for (const n of [1, 3, 17, 255, 1000, 2048, 2049, 70001, 1_000_003]) {
    const xs = randomArray(n, n, -1, 1);
    const x = rt.upload(xs, [n]);
    for (const op of OPS) {
      const y = reduce(rt, op, x);
      assert.deepEqual(y.shape, []);
      const want = reduceRef(op, xs, [n]);
      assertClose(await y.read(), want, { atol: tolFor(op, xs, n), rtol: 0, what: `${op} n=${n}` });
      y.dispose();
    }
    x.dispose();
  }
});

Deno.test("reduce() of an empty tensor: sum 0, mean NaN, max/min throw", async () => {
  const rt = await getBackend();
  const x = rt.zeros([0, 4]);
  for (const op of ["sum", "sumsq", "sumabs"] as const) {
    assert.deepEqual(Array.from(await reduce(rt, op, x).read()), [0]);
  }
  assert.ok(Number.isNaN((await reduce(rt, "mean", x).read())[0]));
  assert.throws(() => reduce(rt, "max", x), /reduce\('max'\): cannot reduce the empty tensor/);
  // Along an axis: an empty reduced axis gives sum 0 / mean NaN per output.
  assert.deepEqual(Array.from(await reduce(rt, "sum", x, { axis: 0 }).read()), [0, 0, 0, 0]);
  assert.ok((await reduce(rt, "mean", x, { axis: 0 }).read()).every(Number.isNaN));
  assert.throws(
    () => reduce(rt, "min", x, { axis: 0 }),
    /cannot reduce the empty axis 0 of \[0,4\]/,
  );
  assert.deepEqual((await reduce(rt, "max", x, { axis: 1 }).read()).length, 0);
  x.dispose();
});

Deno.test("reduce() sums millions of values far better than one serial f32 loop", async () => {
  const rt = await getBackend();
  const n = 4_194_305;
  const xs = randomArray(n, 99, 0, 1);
  let exact = 0, serial = 0;
  for (let i = 0; i < n; i++) {
    exact += xs[i];
    serial = Math.fround(serial + xs[i]);
  }
  const x = rt.upload(xs, [n]);
  const before = rt.memory().inUseBytes;
  const ySum = reduce(rt, "sum", x), yMean = reduce(rt, "mean", x);
  const got = (await ySum.read())[0];
  const mean = (await yMean.read())[0];
  ySum.dispose();
  yMean.dispose();
  assert.equal(rt.memory().inUseBytes, before, "partial-sum buffers must be released");
  x.dispose();
  const errTree = Math.abs(got - exact) / exact, errSerial = Math.abs(serial - exact) / exact;
  assert.ok(errTree < 1e-6, `tree sum relative error ${errTree}`);
  assert.ok(errSerial > 100 * errTree, `serial ${errSerial} vs tree ${errTree}: test not sharp`);
  assert.ok(Math.abs(mean - exact / n) / (exact / n) < 1e-6);
});

Deno.test("reduce() along every axis matches float64, with keepDims", async () => {
  const rt = await getBackend();
  const shapes: number[][] = [
    [5, 7, 3],
    [1, 1],
    [1000, 3],
    [3, 70001],
    [70001, 3],
    [2, 5003, 2],
    [17, 255],
    [4, 1, 6],
  ];
  for (const shape of shapes) {
    const n = shape.reduce((s, d) => s * d, 1);
    const xs = randomArray(n, n + 3, -2, 2);
    const x = rt.upload(xs, shape);
    for (let axis = -shape.length; axis < shape.length; axis++) {
      const a = axis < 0 ? axis + shape.length : axis;
      for (const op of OPS) {
        const y = reduce(rt, op, x, { axis });
        assert.deepEqual(y.shape, shape.filter((_, d) => d !== a));
        const want = reduceRef(op, xs, shape, axis);
        // Each output sums shape[a] values of magnitude <= 2.
        const count = shape[a];
        const tol = op === "max" || op === "min"
          ? 0
          : 1.2e-7 * (8 + Math.log2(count + 1)) * (op === "sumsq" ? 4 : 2) *
            (op === "mean" ? 1 : count);
        assertClose(await y.read(), want, {
          atol: tol,
          rtol: 0,
          what: `${op} ${shape} axis ${axis}`,
        });
        y.dispose();
      }
    }
    const k = reduce(rt, "sum", x, { axis: 0, keepDims: true });
    assert.deepEqual(k.shape, [1, ...shape.slice(1)]);
    k.dispose();
    x.dispose();
  }
  const x = rt.zeros([2, 3]);
  assert.deepEqual(reduce(rt, "max", x, { keepDims: true }).shape, [1, 1]);
  x.dispose();
});

Deno.test("reduce() along an axis handles more than 65535 workgroups (2-d grid)", async () => {
  const rt = await getBackend();
  const n = 65535 * 256 + 3; // len 1: 256 outputs per workgroup, 65536 workgroups
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i += 4099) xs[i] = i;
  xs[n - 1] = -5;
  const x = rt.upload(xs, [n, 1]);
  const y = reduce(rt, "sumsq", x, { axis: 1 });
  const got = await y.read();
  for (let i = 0; i < n; i += 4099) assert.equal(got[i], Math.fround(i * i), `element ${i}`);
  assert.equal(got[n - 1], 25);
  assert.equal(got[n - 2], 0);
  x.dispose();
  y.dispose();
});

Deno.test("reduce() max and min propagate NaN", async () => {
  const rt = await getBackend();
  const xs = randomArray(3001, 1);
  xs[1234] = NaN;
  const x = rt.upload(xs, [3001]);
  assert.ok(Number.isNaN((await reduce(rt, "max", x).read())[0]));
  assert.ok(Number.isNaN((await reduce(rt, "min", x.reshape([1, 3001]), { axis: 1 }).read())[0]));
  x.dispose();
});

Deno.test("argmax() and argmin() return the first extreme index on ties, and the first NaN", async () => {
  const rt = await getBackend();
  const shapes: number[][] = [[1, 1], [3, 17], [17, 3], [4, 1000, 2], [2, 5000], [255, 7]];
  for (const shape of shapes) {
    const n = shape.reduce((s, d) => s * d, 1);
    // few distinct values: many ties, across invocations of one workgroup
    const xs = Float32Array.from(randomArray(n, n + 5, 0, 4), Math.floor);
    const x = rt.upload(xs, shape);
    for (let axis = 0; axis < shape.length; axis++) {
      for (const [f, sign] of [[argmax, 1], [argmin, -1]] as const) {
        const y = f(rt, x, axis);
        assert.equal(y.dtype, "u32");
        assert.deepEqual(y.shape, shape.filter((_, d) => d !== axis));
        assert.deepEqual(
          Array.from(await y.read()),
          Array.from(argRef(xs, shape, axis, sign)),
          `${f.name} ${shape} axis ${axis}`,
        );
        y.dispose();
      }
    }
    x.dispose();
  }
  const xs = new Float32Array([1, NaN, 5, NaN, -Infinity, -Infinity, 3, 3]);
  const x = rt.upload(xs, [2, 4]);
  assert.deepEqual(Array.from(await argmax(rt, x, 1).read()), [1, 2]);
  assert.deepEqual(Array.from(await argmin(rt, x, 1).read()), [1, 0]);
  assert.deepEqual(Array.from(await argmax(rt, x, -1, { keepDims: true }).read()), [1, 2]);
  assert.deepEqual(argmax(rt, x, 0, { keepDims: true }).shape, [1, 4]);
  x.dispose();
});

Deno.test("softmax() and logSoftmax() match float64 along any axis, rows sum to 1", async () => {
  const rt = await getBackend();
  const cases: [number[], number][] = [
    [[1, 1], -1],
    [[3, 10], -1],
    [[17, 1], -1],
    [[255, 3], -1],
    [[4, 1000], 1],
    [[2, 5000], -1],
    [[10, 7], 0],
    [[2, 3, 5], 1],
    [[0, 4], -1],
  ];
  for (const [shape, axis] of cases) {
    const n = shape.reduce((s, d) => s * d, 1);
    const xs = randomArray(n, n + 9, -8, 8);
    const x = rt.upload(xs, shape);
    const p = softmax(rt, x, { axis });
    const lp = logSoftmax(rt, x, { axis });
    assert.deepEqual(p.shape, shape);
    assertClose(await p.read(), softmaxRef(xs, shape, axis), {
      atol: 1e-7,
      rtol: 1e-5,
      what: `softmax ${shape} axis ${axis}`,
    });
    assertClose(await lp.read(), softmaxRef(xs, shape, axis, true), {
      atol: 2e-6,
      rtol: 1e-6,
      what: `logSoftmax ${shape} axis ${axis}`,
    });
    const sums = reduceRef("sum", await p.read(), shape, axis);
    assertClose(sums, new Float64Array(sums.length).fill(1), { atol: 1e-5, rtol: 0, what: "sums" });
    for (const t of [x, p, lp]) t.dispose();
  }
});

Deno.test("softmax() is stable for huge logits and works in place", async () => {
  const rt = await getBackend();
  const xs = new Float32Array([1e4, 1e4 - 1, -1e4, 3e38, -3e38, 0, 1000, 1000]);
  const x = rt.upload(xs, [4, 2]);
  const want = softmaxRef(xs, [4, 2]);
  const lwant = softmaxRef(xs, [4, 2], -1, true);
  assertClose(await logSoftmax(rt, x).read(), lwant, { atol: 1e-6, rtol: 1e-6 });
  softmax(rt, x, { out: x });
  const got = await x.read();
  assert.ok(got.every(Number.isFinite), `${got}`);
  assertClose(got, want, { atol: 1e-7, rtol: 1e-6 });
  // a reduction over an axis of length 1 may write its input
  const z = rt.upload([1, -2, 3], [3, 1]);
  assert.equal(reduce(rt, "sumsq", z, { axis: 1, out: z }), z);
  assertClose(await z.read(), [1, 4, 9]);
  x.dispose();
  z.dispose();
});

Deno.test("reduce() argmax() softmax() reject bad axes, outputs, dtypes and disposed tensors", async () => {
  const rt = await getBackend();
  const x = rt.zeros([2, 3]);
  assert.throws(
    () => reduce(rt, "sum", x, { axis: 2 }),
    /axis 2 is out of range for shape \[2,3\]/,
  );
  assert.throws(() => argmax(rt, x, -3), /argmax: axis -3 is out of range/);
  assert.throws(() => softmax(rt, x, { axis: 1.5 }), /softmax: axis 1.5 is out of range/);
  const o = rt.zeros([2]);
  assert.throws(() => reduce(rt, "sum", x, { axis: 0, out: o }), /out must be f32\[3\]/);
  assert.throws(() => argmax(rt, x, 1, { out: o }), /out must be u32\[2\]/);
  assert.throws(() => softmax(rt, x, { out: o }), /out must be f32\[2,3\]/);
  const u = rt.zeros([3], "u32");
  assert.throws(() => reduce(rt, "max", u), /input must be f32/);
  assert.throws(() => reduce(rt, "nope" as ReduceOp, x), /unknown op 'nope'/);
  o.dispose();
  u.dispose();
  x.dispose();
  assert.throws(() => reduce(rt, "sum", x), /reduce\('sum'\): input .* used after dispose\(\)/);
  assert.throws(() => argmin(rt, x, 0), /argmin: input .* used after dispose\(\)/);
  assert.throws(() => logSoftmax(rt, x), /logSoftmax: input .* used after dispose\(\)/);
  await rt.sync();
});

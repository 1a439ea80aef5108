import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { inputFor, UNARY_CASES } from "./_elementwise_cases.ts";
import {
  axpy,
  binary,
  type BinaryOp,
  clamp,
  fill,
  scale,
  unary,
  type UnaryOp,
} from "../src/ops/elementwise.ts";
import {
  binaryRef,
  binaryScalarRef,
  unaryRef,
  unaryScalarRef,
} from "../src/reference/elementwise.ts";

/** Sizes: empty, tiny, odd (scalar kernel), multiples of 4 (vec4 kernel), > 65535 invocations. */
const SIZES = [0, 1, 3, 4, 17, 255, 1000, 70000, 70001];

/** assertClose that also requires infinities to match (assertClose lets finite-vs-inf through). */
function assertCloseF32(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  opts: { atol?: number; rtol?: number; what?: string } = {},
): void {
  const w = Float64Array.from(want, Math.fround);
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(w[i]) && !Number.isNaN(w[i]) && got[i] !== w[i]) {
      throw new assert.AssertionError({
        message: `${opts.what ?? "values"}[${i}]: got ${got[i]}, want ${w[i]}`,
      });
    }
  }
  const fin = (a: ArrayLike<number>) => Array.from(a, (v, i) => (Number.isFinite(w[i]) ? v : 0));
  assertClose(fin(got), fin(w), opts);
}

Deno.test("unary() matches the float64 reference for every op at odd sizes", async () => {
  const rt = await getBackend();
  for (const n of SIZES) {
    for (const [op, p] of UNARY_CASES) {
      const xs = inputFor(op, n, n + 11);
      const x = rt.upload(xs, [n]);
      const y = unary(rt, op, x, p);
      assert.deepEqual(y.shape, [n]);
      assertCloseF32(await y.read(), unaryRef(op, xs, p), {
        atol: 1e-6,
        rtol: 2e-6,
        what: `${op}${JSON.stringify(p)} n=${n}`,
      });
      x.dispose();
      y.dispose();
    }
  }
});

Deno.test("unary() gives PyTorch's values at extreme inputs (no NaN, softplus threshold 20)", async () => {
  const rt = await getBackend();
  // torch 1.13, float32: torch.tanh / torch.sigmoid / F.softplus / torch.exp of xs, and the
  // softplus gradient from autograd.
  const xs = [
    -1e4,
    -104,
    -89,
    -30,
    -20.5,
    -20,
    -1e-3,
    0,
    1e-7,
    19.9,
    20,
    20.5,
    30,
    88,
    89,
    1e4,
  ];
  const torch: Record<string, number[]> = {
    tanh: [
      -1,
      -1,
      -1,
      -1,
      -1,
      -1,
      -0.0009999996982514858,
      0,
      1.0000000116860974e-7,
      1,
      1,
      1,
      1,
      1,
      1,
      1,
    ],
    sigmoid: [
      0,
      0,
      0,
      9.357623589846195e-14,
      1.2501528701136522e-9,
      2.06115369216775e-9,
      0.499750018119812,
      0.5,
      0.5000000596046448,
      1,
      1,
      1,
      1,
      1,
      1,
      1,
    ],
    softplus: [
      0,
      0,
      2.2273639090442967e-39,
      9.357622912219837e-14,
      1.2501528701136522e-9,
      2.06115369216775e-9,
      0.6926472783088684,
      0.6931471824645996,
      0.6931472420692444,
      19.899999618530273,
      20,
      20.5,
      30,
      88,
      89,
      10000,
    ],
    exp: [
      0,
      0,
      2.2273639090442967e-39,
      9.357622912219837e-14,
      1.2501528701136522e-9,
      2.06115369216775e-9,
      0.9990004897117615,
      1,
      1.0000001192092896,
      438995456,
      485165184,
      799902208,
      10686474223616,
      1.6516362661361307e38,
      Infinity,
      Infinity,
    ],
  };
  const softplusGrad = [
    0,
    0,
    2.2273639090442967e-39,
    9.357622912219837e-14,
    1.2501528701136522e-9,
    2.06115369216775e-9,
    0.4997499883174896,
    0.5,
    0.5000000596046448,
    1,
    1,
    1,
    1,
    1,
    1,
    1,
  ];
  // 16 elements takes the vec4 kernel, 15 the scalar one.
  for (const n of [16, 15]) {
    const x = rt.upload(new Float32Array(xs.slice(0, n)), [n]);
    for (const op of ["tanh", "sigmoid", "softplus", "exp"] as const) {
      const got = await unary(rt, op, x).read();
      assert.ok(got.every((v) => !Number.isNaN(v)), `${op} gave NaN: ${got}`);
      assertCloseF32(got, torch[op].slice(0, n), { atol: 1e-6, rtol: 1e-5, what: `${op} n=${n}` });
    }
    const ones = rt.upload(new Float32Array(n).fill(1), [n]);
    assertCloseF32(
      await binary(rt, "softplus_backward", x, ones).read(),
      softplusGrad.slice(0, n),
      {
        atol: 1e-6,
        rtol: 1e-5,
        what: "softplus_backward",
      },
    );
    x.dispose();
    ones.dispose();
  }
});

Deno.test("unary() is accurate near 0 and 1 where naive formulas cancel", async () => {
  const rt = await getBackend();
  const tiny = [1e-7, -3e-6, 1e-5, 1e-4, -1e-3, 0.01, 0.124, 0.126];
  const near1 = [1 + 2 ** -20, 1 - 2 ** -21, 1.001, 0.999, 1.5, 0.6, 2, 0.5];
  const x = rt.upload(new Float32Array(tiny), [8]);
  const z = rt.upload(new Float32Array(near1), [8]);
  const tf = Float32Array.from(tiny), zf = Float32Array.from(near1);
  assertClose(await unary(rt, "tanh", x).read(), unaryRef("tanh", tf), { atol: 0, rtol: 5e-7 });
  assertClose(await unary(rt, "log", z).read(), unaryRef("log", zf), { atol: 0, rtol: 1e-6 });
  const neg = rt.upload(new Float32Array([-5, -8, -10, -15]), [4]);
  assertClose(await unary(rt, "softplus", neg).read(), unaryRef("softplus", [-5, -8, -10, -15]), {
    atol: 0,
    rtol: 2e-6,
    what: "softplus of negatives",
  });
  for (const t of [x, z, neg]) t.dispose();
});

Deno.test("unary() sign(0) is 0 and relu passes NaN", async () => {
  const rt = await getBackend();
  const x = rt.upload(new Float32Array([0, -0, 2, -3, NaN]), [5]);
  assert.deepEqual(Array.from(await unary(rt, "sign", x).read()).slice(0, 4), [0, 0, 1, -1]);
  assert.ok(Number.isNaN((await unary(rt, "relu", x).read())[4]));
  // 8 elements take the vec4 kernel
  const x8 = rt.upload(new Float32Array([NaN, -1, 2, -NaN, 0, -3, NaN, 4]), [8]);
  const r8 = Array.from(await unary(rt, "relu", x8).read());
  assert.deepEqual(r8.map((v) => Number.isNaN(v)), [
    true,
    false,
    false,
    true,
    false,
    false,
    true,
    false,
  ]);
  assert.deepEqual(r8.filter((v) => !Number.isNaN(v)).map((v) => v + 0), [0, 2, 0, 0, 4]);
  x8.dispose();
  x.dispose();
});

const BINARY_OPS: [BinaryOp, { alpha?: number; beta?: number }][] = [
  ["add", {}],
  ["sub", {}],
  ["mul", {}],
  ["div", {}],
  ["max", {}],
  ["min", {}],
  ["axpby", { alpha: 2, beta: -0.5 }],
  ["relu_backward", {}],
  ["leaky_relu_backward", { alpha: 0.1 }],
  ["tanh_backward", {}],
  ["sigmoid_backward", {}],
  ["softplus_backward", {}],
  ["softplus_backward", { alpha: 3, beta: 4 }],
];

Deno.test("binary() matches the reference for every op with each broadcast form", async () => {
  const rt = await getBackend();
  const cases: [number[], number[]][] = [
    [[1000], [1000]],
    [[17], [17]],
    [[3, 5], [1]],
    [[4, 2], []],
    [[255, 3], [3]],
    [[33, 8], [8]], // vec4 row broadcast
    [[33, 8], [1, 8]],
    [[2, 3, 4, 5], [3, 1, 1]], // per-channel
    [[2, 3, 4, 4], [3, 1, 1]],
    [[2, 3, 4, 5], [4, 5]],
    [[2, 3, 4, 5], [1, 3, 4, 1]],
    [[70001], [70001]],
    [[0, 5], [5]],
  ];
  for (const [as, bs] of cases) {
    const na = as.reduce((s, d) => s * d, 1), nb = bs.reduce((s, d) => s * d, 1);
    const av = randomArray(na, na + 1, -3, 3);
    const bv = randomArray(nb, nb + 2, 0.25, 2); // positive: div stays tame
    const a = rt.upload(av, as), b = rt.upload(bv, bs);
    for (const [op, p] of BINARY_OPS) {
      const y = binary(rt, op, a, b, p);
      assert.deepEqual(y.shape, as);
      assertCloseF32(await y.read(), binaryRef(op, av, as, bv, bs, p), {
        atol: 1e-6,
        rtol: 2e-6,
        what: `${op} ${JSON.stringify(as)} (+) ${JSON.stringify(bs)}`,
      });
      y.dispose();
    }
    a.dispose();
    b.dispose();
  }
});

Deno.test("binary() backward ops are the derivatives of their forward ops", () => {
  // Checks the references themselves against central differences in float64.
  const pairs: [UnaryOp, BinaryOp, "x" | "y", { alpha?: number; beta?: number }][] = [
    ["relu", "relu_backward", "x", {}],
    ["leaky_relu", "leaky_relu_backward", "x", { alpha: 0.1 }],
    ["tanh", "tanh_backward", "y", {}],
    ["sigmoid", "sigmoid_backward", "y", {}],
    ["softplus", "softplus_backward", "x", {}],
    ["softplus", "softplus_backward", "x", { alpha: 2, beta: 3 }],
  ];
  const xs = randomArray(200, 5, -4, 4);
  for (const [f, df, arg, p] of pairs) {
    for (const x of xs) {
      if (Math.abs(x) < 1e-3 || Math.abs(x * (p.alpha ?? 1) - (p.beta ?? 20)) < 1e-3) continue;
      const h = 1e-6;
      const fd = (unaryScalarRef(f, x + h, p) - unaryScalarRef(f, x - h, p)) / (2 * h);
      const at = arg === "x" ? x : unaryScalarRef(f, x, p);
      const an = binaryScalarRef(df, at, 1, p);
      assert.ok(Math.abs(fd - an) < 1e-6, `${df}(${x}): ${an} vs finite difference ${fd}`);
    }
  }
});

Deno.test("binary() accepts out aliasing either input", async () => {
  const rt = await getBackend();
  for (const n of [16, 7]) {
    const av = randomArray(n, 1), bv = randomArray(n, 2);
    const a = rt.upload(av, [n]), b = rt.upload(bv, [n]);
    binary(rt, "sub", a, b, { out: a });
    assertClose(await a.read(), binaryRef("sub", av, [n], bv, [n]));
    binary(rt, "mul", a, b, { out: b });
    const diff = binaryRef("sub", av, [n], bv, [n]);
    assertClose(await b.read(), binaryRef("mul", diff, [n], bv, [n]));
    unary(rt, "neg", a, { out: a });
    assertClose(await a.read(), Array.from(diff, (v) => -v));
    // both operands and the output one buffer, the output a reshaped view
    binary(rt, "mul", a, a, { out: a.reshape([1, n]) });
    assertClose(await a.read(), Array.from(diff, (v) => v * v));
    a.dispose();
    b.dispose();
  }
});

Deno.test("axpy() scale() fill() clamp() update in place and allocate correctly", async () => {
  const rt = await getBackend();
  for (const n of [1, 3, 17, 256, 70001]) {
    const xv = randomArray(n, 3), yv = randomArray(n, 4);
    const x = rt.upload(xv, [n]), y = rt.upload(yv, [n]);
    assert.equal(axpy(rt, -0.5, x, y), y);
    assertClose(await y.read(), Array.from(yv, (v, i) => v - 0.5 * xv[i]), { what: `axpy n=${n}` });
    const s = scale(rt, x, 3);
    assertClose(await s.read(), Array.from(xv, (v) => 3 * v), { what: "scale" });
    clamp(rt, x, -0.25, Infinity, { out: x });
    assertClose(await x.read(), Array.from(xv, (v) => Math.max(v, -0.25)), { what: "clamp" });
    fill(rt, y, -7);
    assert.ok((await y.read()).every((v) => v === -7));
    for (const t of [x, y, s]) t.dispose();
  }
  // axpy with a one-element x, and a flat x on a 2-d y
  const y = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  axpy(rt, 2, rt.upload([10], [1]), y);
  assert.deepEqual(Array.from(await y.read()), [21, 22, 23, 24, 25, 26]);
  axpy(rt, 1, rt.upload([1, 1, 1, 1, 1, 1], [6]), y);
  assert.deepEqual(Array.from(await y.read()), [22, 23, 24, 25, 26, 27]);
  y.dispose();
});

Deno.test("unary() handles more than 65535 x 256 elements (2-d grid)", async () => {
  const rt = await getBackend();
  const n = 65535 * 256 + 5; // odd: the scalar kernel, 65536 workgroups
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i += 4097) xs[i] = i;
  const x = rt.upload(xs, [n]);
  const y = unary(rt, "add_scalar", x, { alpha: 1, out: x });
  const got = await y.read();
  for (let i = 0; i < n; i += 4097) assert.equal(got[i], Math.fround(i + 1), `element ${i}`);
  assert.equal(got[n - 1], 1);
  assert.equal(got[n - 2], 1);
  x.dispose();
});

Deno.test("binary() rejects shapes that do not broadcast, naming both", async () => {
  const rt = await getBackend();
  const a = rt.zeros([4, 3]), b = rt.zeros([4]), c = rt.zeros([2, 3]);
  assert.throws(() => binary(rt, "add", a, b), /cannot broadcast b \[4\] against a \[4,3\]/);
  assert.throws(() => binary(rt, "add", a, c), /cannot broadcast b \[2,3\] against a \[4,3\]/);
  assert.throws(() => binary(rt, "add", b, a), /cannot broadcast b \[4,3\] against a \[4\]/);
  assert.throws(() => unary(rt, "neg", a, { out: b }), /out \[4\] does not have the 12 elements/);
  assert.throws(() => axpy(rt, 1, b, a), /axpy: x \[4\] and y \[4,3\] differ in size/);
  assert.throws(() => unary(rt, "scale", a), /scale: option 'alpha' is required/);
  assert.throws(() => unary(rt, "nope" as UnaryOp, a), /unknown op 'nope'/);
  const u = rt.zeros([3], "u32");
  assert.throws(() => unary(rt, "neg", u), /must be f32/);
  for (const t of [a, b, c, u]) t.dispose();
  await rt.sync();
});

Deno.test("unary() and binary() reject disposed tensors", async () => {
  const rt = await getBackend();
  const a = rt.zeros([5]), b = rt.zeros([5]);
  b.dispose();
  assert.throws(() => binary(rt, "mul", a, b), /binary\('mul'\): b .* was used after dispose\(\)/);
  assert.throws(() => unary(rt, "relu", b), /unary\('relu'\): x .* was used after dispose\(\)/);
  assert.throws(() => unary(rt, "relu", a, { out: b }), /out .* was used after dispose\(\)/);
  a.dispose();
  await rt.sync();
});

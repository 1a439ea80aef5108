import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  matmul,
  type MatmulActivation,
  type MatmulOptions,
  type MatmulTiling,
} from "../src/ops/matmul.ts";
import { matmulRef } from "../src/reference/matmul.ts";
import type { Backend } from "../src/backend.ts";

/** fp32 sums of K products of values in [-1, 1]: error grows like sqrt(K). */
function atolFor(k: number): number {
  return 1e-5 * (1 + Math.sqrt(k));
}

interface Case {
  m: number;
  k: number;
  n: number;
  batchA?: number;
  batchB?: number;
}

/** Runs matmul on random inputs and compares with the float64 reference. */
async function check(
  rt: Backend,
  { m, k, n, batchA = 0, batchB = 0 }: Case,
  opts: Omit<MatmulOptions, "bias" | "out"> & { bias?: boolean; cOld?: boolean } = {},
  seed = 1,
): Promise<void> {
  const aShape = opts.transA ? [k, m] : [m, k];
  const bShape = opts.transB ? [n, k] : [k, n];
  if (batchA) aShape.unshift(batchA);
  if (batchB) bShape.unshift(batchB);
  const aData = randomArray(aShape.reduce((x, y) => x * y, 1), seed);
  const bData = randomArray(bShape.reduce((x, y) => x * y, 1), seed + 1);
  const biasData = randomArray(n, seed + 2);
  const batch = Math.max(batchA, batchB);
  const outShape = batch ? [batch, m, n] : [m, n];
  const cData = randomArray(outShape.reduce((x, y) => x * y, 1), seed + 3);
  const a = rt.upload(aData, aShape), b = rt.upload(bData, bShape);
  const bias = opts.bias ? rt.upload(biasData, [n]) : undefined;
  const out = opts.cOld ? rt.upload(cData, outShape) : undefined;
  const { bias: _b, cOld: _c, ...rest } = opts;
  const c = matmul(rt, a, b, { ...rest, bias, out });
  const ref = matmulRef(aData, aShape, bData, bShape, {
    ...rest,
    bias: bias ? biasData : undefined,
    cOld: opts.cOld ? cData : undefined,
  });
  assert.deepEqual(c.shape, ref.shape);
  const what = `matmul ${JSON.stringify({ m, k, n, batchA, batchB, ...opts })}`;
  assertClose(await c.read(), ref.data, { atol: atolFor(k), rtol: 1e-4, what });
  if (out) assert.equal(c, out);
  for (const t of [a, b, bias, c]) t?.dispose();
}

// Each distinct (transposes, alignment, epilogue) compiles its own pipeline, which takes
// seconds on llvmpipe: cases are chosen to share pipelines (all unaligned but one).
const ODD: Case[] = [
  { m: 1, k: 1, n: 1 },
  { m: 3, k: 3, n: 3 },
  { m: 17, k: 17, n: 17 },
  { m: 1, k: 17, n: 3 },
  { m: 3, k: 1, n: 17 },
  { m: 2, k: 3, n: 2 }, // 6-element operands live in 24-byte buffers
  { m: 16, k: 20, n: 12 }, // every vec4 aligned
  { m: 17, k: 255, n: 5 },
  { m: 255, k: 3, n: 255 },
  { m: 33, k: 63, n: 255 },
];

Deno.test("matmul() matches the float64 reference for every transpose and odd sizes", async () => {
  const rt = await getBackend();
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      for (const [i, cs] of ODD.entries()) await check(rt, cs, { transA, transB }, i);
    }
  }
});

Deno.test("matmul() matches the reference on a ~1000 case", async () => {
  const rt = await getBackend();
  await check(rt, { m: 1000, k: 1000, n: 40 }, {}, 7);
  await check(rt, { m: 40, k: 999, n: 1000 }, { transA: true, transB: true }, 8);
});

Deno.test("matmul() fuses bias and each activation", async () => {
  const rt = await getBackend();
  const acts: MatmulActivation[] = ["none", "relu", "tanh", "sigmoid", "leaky_relu"];
  for (const [i, activation] of acts.entries()) {
    // Large |values| (alpha = 4) reach the saturated ends of tanh and sigmoid.
    await check(rt, { m: 19, k: 23, n: 7 }, { bias: true, activation, alpha: 4, slope: 0.2 }, i);
    await check(rt, { m: 3, k: 1, n: 9 }, { bias: true, activation }, 10 + i);
  }
});

Deno.test("matmul() accumulates alpha·op(A)op(B) + beta·out (dW += dyᵀ x)", async () => {
  const rt = await getBackend();
  await check(rt, { m: 10, k: 33, n: 17 }, { transA: true, beta: 1, cOld: true }, 5);
  await check(rt, { m: 9, k: 5, n: 6 }, { alpha: -0.5, beta: 0.25, cOld: true, bias: true }, 6);
  // Repeated accumulation into the same gradient buffer.
  const dy = rt.upload(randomArray(8 * 3, 9), [8, 3]),
    x = rt.upload(randomArray(8 * 5, 10), [8, 5]);
  const dW = rt.zeros([3, 5]);
  for (let i = 0; i < 3; i++) matmul(rt, dy, x, { transA: true, beta: 1, out: dW });
  const once = matmulRef(await dy.read(), [8, 3], await x.read(), [8, 5], { transA: true });
  assertClose(await dW.read(), once.data.map((v) => 3 * v), { atol: 1e-5, what: "dW" });
  for (const t of [dy, x, dW]) t.dispose();
});

Deno.test("matmul() batches with per-item or shared operands", async () => {
  const rt = await getBackend();
  await check(rt, { m: 5, k: 7, n: 9, batchA: 3, batchB: 3 }, { bias: true }, 11);
  await check(rt, { m: 6, k: 8, n: 4, batchA: 2 }, { transB: true }, 12);
  await check(rt, { m: 5, k: 3, n: 5, batchB: 2 }, { transA: true, beta: 2, cOld: true }, 13);
});

Deno.test("matmul() with K = 0 gives act(bias + beta·out)", async () => {
  const rt = await getBackend();
  await check(rt, { m: 3, k: 0, n: 5 }, { bias: true, beta: 0.5, cOld: true, activation: "relu" });
  await check(rt, { m: 4, k: 0, n: 2 }, { bias: true, activation: "relu" });
});

Deno.test("matmul() is correct under other tilings, including the GPU ones", async () => {
  const rt = await getBackend();
  const tilings: MatmulTiling[] = [
    { shared: true, tx: 16, ty: 16, rm: 1, rn: 1, bk: 16 },
    { shared: true, tx: 16, ty: 16, rm: 2, rn: 2, bk: 16 },
    { shared: true, tx: 8, ty: 4, rm: 3, rn: 1, bk: 8 },
    { shared: false, tx: 4, ty: 4, rm: 1, rn: 3, bk: 4 },
  ];
  const unaligned: Case[] = [{ m: 1, k: 5, n: 3 }, { m: 37, k: 41, n: 70 }];
  const aligned: Case[] = [{ m: 64, k: 32, n: 20 }];
  for (const tiling of tilings) {
    for (
      const [t, [transA, transB]] of [[false, false], [true, true], [true, false], [false, true]]
        .entries()
    ) {
      for (const [i, cs] of (t < 2 ? unaligned : aligned).entries()) {
        await check(rt, cs, { transA, transB, tiling }, 20 + i);
      }
    }
  }
});

Deno.test("matmul() rejects mismatched shapes, naming both", async () => {
  const rt = await getBackend();
  const a = rt.zeros([3, 4]),
    b = rt.zeros([5, 6]),
    b3 = rt.zeros([2, 4, 6]),
    a3 = rt.zeros([3, 3, 4]);
  assert.throws(
    () => matmul(rt, a, b),
    { message: "matmul: A [3,4] (transA=false) and B [5,6] (transB=false) disagree on K (4 vs 5)" },
  );
  assert.throws(
    () => matmul(rt, a, b, { transA: true }),
    /A \[3,4\] \(transA=true\).*K \(3 vs 5\)/,
  );
  assert.throws(() => matmul(rt, a3, b3), /disagree on the batch size \(3 vs 2\)/);
  const bias = rt.zeros([5]);
  assert.throws(() => matmul(rt, a, b3, { bias }), /bias \[5\] f32 must be f32\[6\]/);
  const badOut = rt.zeros([3, 5]);
  assert.throws(
    () => matmul(rt, a, b3.reshape([8, 6]).reshape([4, 12]), { out: badOut }),
    /out \[3,5\]/,
  );
  assert.throws(
    () => matmul(rt, a, rt.zeros([4, 3]), { out: a.reshape([3, 4]).reshape([4, 3]) }),
    /out/,
  );
  assert.throws(() => matmul(rt, a, rt.zeros([4, 4]), { beta: 1 }), /opts.out must be given/);
  const sq = rt.zeros([4, 4]);
  assert.throws(() => matmul(rt, sq, sq, { out: sq }), /must not share its buffer with A/);
  assert.throws(() => matmul(rt, rt.zeros([4]), sq), /must be 2-D or batched 3-D/);
  assert.throws(() => matmul(rt, sq, sq, { tiling: { rm: 5 } }), /invalid tiling/);
  for (const t of [a, b, b3, a3, bias, badOut, sq]) t.dispose();
});

Deno.test("matmul() rejects disposed tensors", async () => {
  const rt = await getBackend();
  const a = rt.zeros([2, 3]), b = rt.zeros([3, 2]);
  b.dispose();
  assert.throws(
    () => matmul(rt, a, b),
    /matmul: B \(tensor #\d+ f32\[3,2\]\) was used after dispose\(\)/,
  );
  const out = rt.zeros([2, 2]);
  out.dispose();
  const b2 = rt.zeros([3, 2]);
  assert.throws(() => matmul(rt, a, b2, { out }), /matmul: out .* was used after dispose\(\)/);
  a.dispose();
  b2.dispose();
});

/**
 * The WebAssembly twins of shaders/reduce.wgsl (src/wasm/kernels/reduce.ts): the exact
 * dispatches of the WebGPU `reduce` (every op, whole tensor in several passes and along each
 * axis), `argmax` / `argmin` and `softmax` / `logSoftmax`, replayed on `WasmRuntime` with one
 * and two threads (bitwise equal), against the WebGPU result and the float64 reference.
 */
import { assert, getRuntime, randomArray } from "./_util.ts";
import {
  assertBitwise,
  assertNear,
  releaseSharedWasmPair,
  replayBoth,
  sharedWasmPair,
} from "./_wasm_replay.ts";
import { onBothBackends, type Results } from "./_backends.ts";
import { argmax, argmin, logSoftmax, reduce, type ReduceOp, softmax } from "../src/ops/reduce.ts";
import { argRef, reduceRef, softmaxRef } from "../src/reference/reduce.ts";

const worst = new Map<string, number>();
function note(key: string, e: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, e));
}

const OPS: ReduceOp[] = ["sum", "sumsq", "sumabs", "max", "min", "mean"];

/** Sums of len values of size <= 1: float32 error grows like sqrt(len) (len for the worst case). */
function tolFor(op: ReduceOp, len: number): { atol: number; rtol: number } {
  if (op === "max" || op === "min") return { atol: 0, rtol: 0 };
  const scale = op === "mean" ? 1 / Math.max(1, len) : 1;
  return { atol: 2e-6 * Math.sqrt(len) * (op === "mean" ? 1 : Math.sqrt(len)) * scale, rtol: 2e-6 };
}

const size = (s: number[]) => s.reduce((x, y) => x * y, 1);

Deno.test("reduce twin: every op over whole tensors (one and several passes)", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const n of [1, 3, 17, 1001, 2048, 2049, 70001, 300000]) {
    const data = randomArray(n, n, -1, 1);
    for (const op of OPS) {
      const what = `reduce ${op} n=${n}`;
      const r = await replayBoth(
        gpu,
        rts,
        [{ shape: [n], data }],
        ([x]) => [reduce(gpu, op, x)],
        what,
      );
      const { atol, rtol } = tolFor(op, n);
      note(`${op} vs webgpu`, assertNear(r.wasm[0], r.gpu[0], atol, rtol, `${what} vs webgpu`));
      note(
        `${op} vs f64`,
        assertNear(r.wasm[0], reduceRef(op, data, [n]), atol, rtol, `${what} vs f64`),
      );
    }
  }
});

/** (shape, axis) cases: rows (inner 1), columns (inner > 1, 16/4/1-column paths), two threads. */
const AXES: [number[], number][] = [
  [[7, 13], 0],
  [[7, 13], 1],
  [[7, 13], -1],
  [[3, 1001, 5], 1],
  [[2, 40, 33], 2],
  [[2, 40, 33], 0],
  [[64, 1024], 0],
  [[1000, 70], 1],
  [[5, 3000, 21], 1],
  [[300, 1], 1],
];

Deno.test("reduce twin: every op along each kind of axis, 1 and 2 threads", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const [shape, axis] of AXES) {
    const data = randomArray(size(shape), size(shape) + 3, -1, 1);
    const len = shape.at(axis)!;
    for (const op of OPS) {
      const what = `reduce ${op} ${JSON.stringify(shape)} axis ${axis}`;
      const r = await replayBoth(
        gpu,
        rts,
        [{ shape, data }],
        ([x]) => [reduce(gpu, op, x, { axis })],
        what,
      );
      const { atol, rtol } = tolFor(op, len);
      note(`${op} vs webgpu`, assertNear(r.wasm[0], r.gpu[0], atol, rtol, `${what} vs webgpu`));
      const ref = reduceRef(op, data, shape, axis);
      note(`${op} vs f64`, assertNear(r.wasm[0], ref, atol, rtol, `${what} vs f64`));
    }
  }
});

Deno.test("reduce twin: empty axes, NaN and infinities, in place over an axis of length 1", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const op of ["sum", "mean", "sumsq"] as ReduceOp[]) {
    const shape = [3, 0, 4];
    const r = await replayBoth(
      gpu,
      rts,
      [{ shape: [1], data: new Float32Array(1) }],
      () => [reduce(gpu, op, gpu.empty(shape), { axis: 1 })],
      `${op} empty axis`,
    );
    assertNear(r.wasm[0], r.gpu[0], 0, 0, `${op} over an empty axis vs webgpu`);
  }
  const data = randomArray(6 * 50, 9, -1, 1);
  data[7 * 6 + 2] = NaN;
  data[3 * 6 + 4] = Infinity;
  data[11 * 6 + 5] = -Infinity;
  data[12 * 6 + 5] = Infinity;
  for (const op of OPS) {
    for (const [shape, axis] of [[[50, 6], 0], [[50, 6], 1], [[300], 0]] as [number[], number][]) {
      const what = `reduce ${op} specials ${JSON.stringify(shape)} axis ${axis}`;
      const r = await replayBoth(
        gpu,
        rts,
        [{ shape, data }],
        ([x]) => [reduce(gpu, op, x, { axis })],
        what,
      );
      const { atol, rtol } = tolFor(op, shape[axis]);
      assertNear(r.wasm[0], r.gpu[0], atol, rtol, `${what} vs webgpu`);
      // NOTE: reduceRef's max/min fold drops a NaN that is not last (once m is NaN the next
      // value replaces it), against the op's documented NaN propagation, which WebGPU and the
      // twin follow: compare those with WebGPU only.
      if (op !== "max" && op !== "min") {
        assertNear(r.wasm[0], reduceRef(op, data, shape, axis), atol, rtol, `${what} vs f64`);
      }
    }
  }
  const d = randomArray(15, 4);
  const r = await replayBoth(
    gpu,
    rts,
    [{ shape: [5, 1, 3], data: d }],
    ([x]) => [reduce(gpu, "max", x, { axis: 1, out: x.reshape([5, 3]) })],
    "max in place",
  );
  assertBitwise(r.wasm[0], r.gpu[0], "max in place over an axis of length 1");
});

/** Values on a grid of 0.25 so that ties are common. */
function tied(n: number, seed: number): Float32Array {
  return randomArray(n, seed, -2, 2).map((v) => Math.round(v * 4) / 4);
}

Deno.test("reduce.arg twin: argmax / argmin with ties and NaN, every axis kind, bitwise", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  const cases: [number[], number][] = [
    [[33, 10], 1],
    [[10, 33], 0],
    [[5, 7, 9], 1],
    [[1, 1], 0],
    [[2000, 100], 1],
    [[3, 4000, 40], 1],
  ];
  for (const [shape, axis] of cases) {
    const data = tied(size(shape), size(shape));
    for (const sign of [1, -1] as const) {
      const what = `${sign > 0 ? "argmax" : "argmin"} ${JSON.stringify(shape)} axis ${axis}`;
      const r = await replayBoth(
        gpu,
        rts,
        [{ shape, data }],
        ([x]) => [sign > 0 ? argmax(gpu, x, axis) : argmin(gpu, x, axis)],
        what,
      );
      assertBitwise(r.wasm[0], r.gpu[0], `${what} vs webgpu`);
      assertBitwise(r.wasm[0], argRef(data, shape, axis, sign), `${what} vs reference`);
    }
  }
  const data = tied(40, 3);
  data[13] = NaN;
  data[17] = NaN;
  data[25] = NaN;
  for (const sign of [1, -1] as const) {
    const r = await replayBoth(
      gpu,
      rts,
      [{ shape: [4, 10], data }],
      ([x]) => [sign > 0 ? argmax(gpu, x, 1) : argmin(gpu, x, 1)],
      "arg NaN",
    );
    assertBitwise(r.wasm[0], argRef(data, [4, 10], 1, sign), `arg ${sign} with NaN vs reference`);
    assertBitwise(r.wasm[0], r.gpu[0], `arg ${sign} with NaN vs webgpu`);
  }
});

Deno.test("reduce.softmax twin: softmax and log-softmax along rows and columns, in place", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  const cases: [number[], number][] = [
    [[1, 1], -1],
    [[3, 17], -1],
    [[5, 1001], -1],
    [[4, 7, 6], 1],
    [[2, 3, 20], 0],
    [[400, 1000], -1],
    [[2, 5000, 9], 1],
  ];
  for (const [shape, axis] of cases) {
    const data = randomArray(size(shape), size(shape) + 1, -8, 8);
    for (const log of [false, true]) {
      for (const inPlace of [false, true]) {
        const what = `${log ? "logSoftmax" : "softmax"} ${JSON.stringify(shape)} axis ${axis}` +
          (inPlace ? " in place" : "");
        const f = log ? logSoftmax : softmax;
        const r = await replayBoth(
          gpu,
          rts,
          [{ shape, data }],
          ([x]) => [f(gpu, x, { axis, out: inPlace ? x : undefined })],
          what,
        );
        const tol = log ? { atol: 2e-5, rtol: 1e-5 } : { atol: 1e-7, rtol: 2e-5 };
        note(
          `softmax log=${log} vs webgpu`,
          assertNear(r.wasm[0], r.gpu[0], tol.atol, tol.rtol, `${what} vs webgpu`),
        );
        const ref = softmaxRef(data, shape, axis, log);
        note(
          `softmax log=${log} vs f64`,
          assertNear(r.wasm[0], ref, tol.atol, tol.rtol, `${what} vs f64`),
        );
      }
    }
  }
  const big = Float32Array.from([1e4, -1e4, 0, 3, -Infinity, 5, 1e4, 2, NaN, 1, 1, 1]);
  for (const log of [false, true]) {
    const f = log ? logSoftmax : softmax;
    const r = await replayBoth(
      gpu,
      rts,
      [{ shape: [3, 4], data: big }],
      ([x]) => [f(gpu, x)],
      "extremes",
    );
    assertNear(
      r.wasm[0],
      softmaxRef(big, [3, 4], -1, log),
      1e-6,
      1e-5,
      `extremes log=${log} vs f64`,
    );
    assertNear(r.wasm[0], r.gpu[0], 1e-6, 1e-5, `extremes log=${log} vs webgpu`);
  }
});

Deno.test("reduce ops run on both backends (Backend seam): reduce, arg, softmax, in place", async () => {
  for (
    const [shape, axis] of [[[300000], undefined], [[64, 1024], 0], [[1000, 70], 1], [
      [5, 7, 9],
      1,
    ]] as [number[], number | undefined][]
  ) {
    await onBothBackends(async (rt) => {
      const data = tied(size(shape), 5);
      const x = rt.upload(data, shape);
      const out: Results = {};
      for (const op of OPS) {
        const y = reduce(rt, op, x, { axis });
        out[op] = await y.read();
        y.dispose();
      }
      if (axis !== undefined) {
        for (const [name, f] of [["argmax", argmax], ["argmin", argmin]] as const) {
          const y = f(rt, x, axis);
          out[name] = await y.read();
          y.dispose();
        }
        for (const [name, f] of [["softmax", softmax], ["logSoftmax", logSoftmax]] as const) {
          const y = f(rt, x, { axis });
          out[name] = await y.read();
          y.dispose();
        }
        const c = rt.upload(data, shape);
        softmax(rt, c, { axis, out: c });
        out.softmaxInPlace = await c.read();
        c.dispose();
      }
      x.dispose();
      return out;
    }, {
      atol: 2e-4,
      rtol: 1e-5,
      exact: ["argmax", "argmin", "max", "min"],
      per: { softmax: { atol: 1e-7 }, softmaxInPlace: { atol: 1e-7 }, logSoftmax: { atol: 2e-5 } },
      what: `${JSON.stringify(shape)} axis ${axis}`,
    });
  }
});

Deno.test("reduce twins: the worst errors seen (summary)", async () => {
  const line = [...worst].map(([k, e]) => `${k} ${e.toFixed(3)}`).join(", ");
  console.log(`worst error / bound: ${line}`);
  await releaseSharedWasmPair();
  assert.ok(true);
});

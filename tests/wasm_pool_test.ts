/**
 * The WebAssembly twins of shaders/pool.wgsl (src/wasm/kernels/pool.ts): MaxPool2d and AvgPool2d
 * forward, backward and jvp (both count_include_pad settings), replayed on Wasm runtimes with 1
 * and 2 threads (bitwise equal) and compared with the WebGPU result (argmax indices bitwise) and
 * the float64 reference.
 */
import { assert, assertClose, getRuntime, randomArray } from "./_util.ts";
import { releaseSharedWasmPair, replayOutputs } from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import {
  avgPool2dBackwardRef,
  avgPool2dRef,
  maxPool2dBackwardRef,
  maxPool2dJvpRef,
  maxPool2dRef,
  windowOutputSize,
} from "../src/reference/layers.ts";

Deno.env.set("XDG_RUNTIME_DIR", Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp/xdg");

/** [input shape, kernel, stride, padding]; kernel > stride makes windows overlap. */
const CASES: [number[], [number, number], [number, number], [number, number]][] = [
  [[64, 6, 28, 28], [2, 2], [2, 2], [0, 0]], // LeNet pool1 (split across threads)
  [[3, 2, 13, 7], [2, 2], [2, 2], [0, 0]], // odd sizes: the last row and column are dropped
  [[1, 3, 13, 13], [3, 3], [2, 2], [0, 0]],
  [[3, 2, 7, 13], [3, 3], [2, 2], [1, 1]],
  [[2, 1, 9, 11], [3, 3], [1, 1], [1, 1]],
  [[1, 2, 8, 9], [3, 5], [1, 2], [1, 2]],
  [[2, 3, 5, 5], [5, 5], [1, 1], [2, 2]],
  [[17, 1, 1, 1], [1, 1], [1, 1], [0, 0]],
  [[1, 1001, 3, 3], [3, 3], [3, 3], [1, 1]],
];

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const label = (c: (typeof CASES)[number]) => `x ${c[0]} k${c[1]} s${c[2]} p${c[3]}`;

/** A case's window geometry (as the references take it) and its output size and shape. */
function windowOf([xs, k, s, p]: (typeof CASES)[number]) {
  const g = { kernel: k, stride: s, padding: p };
  const [oh, ow] = windowOutputSize(xs[2], xs[3], g);
  return { g, oh, ow, ys: [xs[0], xs[1], oh, ow] };
}

Deno.test("pool twins: MaxPool2d forward, argmax, backward and jvp match WebGPU and float64", async () => {
  const gpu = await getRuntime();
  for (const [i, c] of CASES.entries()) {
    const [xs, k, s, p] = c;
    const { g, oh, ow, ys } = windowOf(c);
    const xa = randomArray(numel(xs), 100 + i);
    // Ties and a NaN: the first maximum wins, NaN propagates (ATen's rule, as the WGSL).
    xa[1] = xa[0];
    if (numel(xs) > 5) xa[5] = NaN;
    const dya = randomArray(numel(ys), 200 + i);
    const txa = randomArray(numel(xs), 300 + i);
    const pool = new MaxPool2d(gpu, "pool", k, { stride: s, padding: p });
    // Forward, backward and jvp in one sequence: the argmax stays the layer's.
    const [yr, ir, dr, tr] = await replayOutputs(
      [{ data: xa, shape: xs }, { data: dya, shape: ys }, { data: txa, shape: xs }],
      ([x, dy, tx]) => {
        const y = pool.forward(x);
        return [y, pool.indices!, pool.backward(dy), pool.jvp(tx)];
      },
      `max ${label(c)}`,
    );
    const ref = maxPool2dRef(xa, xs, g);
    assertClose(yr.wasm, yr.gpu, { atol: 0, rtol: 0, what: `y ${label(c)} vs webgpu` });
    assertClose(yr.wasm, ref.y, { atol: 0, rtol: 0, what: `y ${label(c)} vs float64` });
    assert.deepEqual(Array.from(ir.wasm), Array.from(ir.gpu), `argmax ${label(c)} vs webgpu`);
    const dxRef = maxPool2dBackwardRef(ir.gpu, dya, xs, oh * ow);
    assertClose(dr.wasm, dr.gpu, { atol: 1e-6, rtol: 1e-6, what: `dx ${label(c)} vs webgpu` });
    assertClose(dr.wasm, dxRef, { atol: 1e-6, rtol: 1e-6, what: `dx ${label(c)} vs float64` });
    assertClose(tr.wasm, tr.gpu, { atol: 0, rtol: 0, what: `jvp ${label(c)} vs webgpu` });
    assertClose(tr.wasm, maxPool2dJvpRef(ir.gpu, txa, xs, oh * ow), {
      atol: 0,
      rtol: 0,
      what: `jvp ${label(c)} vs float64`,
    });
    pool.dispose();
  }
});

Deno.test("pool twins: AvgPool2d forward, backward and jvp (both pad counts) match WebGPU and float64", async () => {
  let worst = 0;
  const gpu = await getRuntime();
  for (const [i, c] of CASES.entries()) {
    const [xs, k, s, p] = c;
    const { g, ys } = windowOf(c);
    const xa = randomArray(numel(xs), 400 + i);
    const dya = randomArray(numel(ys), 500 + i);
    for (const countIncludePad of [true, false]) {
      const what = `${label(c)} includePad ${countIncludePad}`;
      const pool = new AvgPool2d(gpu, "pool", k, { stride: s, padding: p, countIncludePad });
      const [yr, dr, tr] = await replayOutputs(
        [{ data: xa, shape: xs }, { data: dya, shape: ys }],
        ([x, dy]) => [pool.forward(x), pool.backward(dy), pool.jvp(x)],
        `avg ${what}`,
      );
      const tol = { atol: 1e-6, rtol: 1e-5 };
      const yRef = avgPool2dRef(xa, xs, g, countIncludePad).y;
      assertClose(yr.wasm, yr.gpu, { ...tol, what: `y ${what} vs webgpu` });
      assertClose(yr.wasm, yRef, { ...tol, what: `y ${what} vs float64` });
      const dxRef = avgPool2dBackwardRef(dya, xs, g, countIncludePad);
      assertClose(dr.wasm, dr.gpu, { ...tol, what: `dx ${what} vs webgpu` });
      assertClose(dr.wasm, dxRef, { ...tol, what: `dx ${what} vs float64` });
      assertClose(tr.wasm, yr.wasm, { atol: 0, rtol: 0, what: `jvp ${what} = forward` });
      for (let j = 0; j < yRef.length; j++) {
        worst = Math.max(worst, Math.abs(yr.wasm[j] - yRef[j]));
      }
      for (let j = 0; j < dxRef.length; j++) {
        worst = Math.max(worst, Math.abs(dr.wasm[j] - dxRef[j]));
      }
      pool.dispose();
    }
  }
  console.log(`avg pool: largest |wasm - float64| ${worst.toExponential(2)}`);
});

Deno.test("MaxPool2d and AvgPool2d on both backends: forward, argmax, backward and jvp agree", async () => {
  for (const [i, c] of CASES.entries()) {
    const [xs, k, s, p] = c;
    const xa = randomArray(numel(xs), 800 + i);
    await onBothBackends(async (rt) => {
      const mp = new MaxPool2d(rt, "mp", k, { stride: s, padding: p });
      const ap = new AvgPool2d(rt, "ap", k, {
        stride: s,
        padding: p,
        countIncludePad: i % 2 === 0,
      });
      const x = rt.upload(xa, xs);
      const y = await mp.forward(x).read();
      const idx = await mp.indices!.read();
      const dy = rt.upload(randomArray(y.length, 810 + i), mp.outputShape(xs));
      const dx = await mp.backward(dy).read();
      const ty = await mp.jvp(x).read();
      const ay = await ap.forward(x).read();
      const adx = await ap.backward(dy).read();
      for (const u of [x, dy]) u.dispose();
      mp.dispose();
      ap.dispose();
      return { y, idx, dx, ty, ay, adx };
    }, { atol: 1e-6, rtol: 1e-5, exact: ["idx", "y", "ty"], what: label(c) });
  }
  await releaseSharedWasmPair();
});

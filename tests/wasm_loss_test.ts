/**
 * The WebAssembly twins of shaders/loss.wgsl (src/wasm/kernels/loss.ts): the exact dispatches of
 * the WebGPU `softmaxCrossEntropy` (labels u32 / i32 with out-of-range ones, soft targets, label
 * smoothing, mean / sum, with and without the gradient), `mse` and `accuracyCount`, replayed on
 * `WasmRuntime` with one and two threads (bitwise equal), against WebGPU and the float64
 * reference. Counts (invalid labels, correct predictions) must be exact.
 */
import { assert, getRuntime, randomArray } from "./_util.ts";
import {
  assertBitwise,
  assertNear,
  releaseSharedWasmPair,
  replayBoth,
  sharedWasmPair,
} from "./_wasm_replay.ts";
import { onBothBackends } from "./_backends.ts";
import { softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { mse } from "../src/losses/mse.ts";
import { accuracyCount } from "../src/losses/accuracy.ts";
import { refAccuracyCount, refMse, refSoftmaxCrossEntropy } from "../src/reference/loss.ts";
import type { Tensor } from "../src/backend.ts";

const worst = new Map<string, number>();
function note(key: string, e: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, e));
}

function labelsFor(b: number, k: number, seed: number, dtype: "u32" | "i32", bad = false) {
  const r = randomArray(b, seed, 0, k);
  const out = dtype === "u32" ? new Uint32Array(b) : new Int32Array(b);
  for (let i = 0; i < b; i++) out[i] = Math.min(k - 1, Math.floor(r[i]));
  if (bad && b > 2) {
    out[1] = k;
    if (dtype === "i32") out[b - 1] = -1;
    else out[b - 1] = 0xffffffff;
  }
  return out;
}

/** Soft targets: rows of a softmax of random numbers (summing to 1 up to rounding). */
function softTargets(b: number, k: number, seed: number): Float32Array {
  const r = randomArray(b * k, seed, -3, 3);
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += r[i * k + j] = Math.exp(r[i * k + j]);
    for (let j = 0; j < k; j++) r[i * k + j] /= s;
  }
  return r;
}

const SHAPES: [number, number][] = [[1, 1], [3, 5], [17, 10], [64, 1000], [5000, 10], [2, 3001]];

Deno.test("loss.ce_rows + loss.sum twins: softmax cross-entropy on labels and soft targets", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const [b, k] of SHAPES) {
    const logits = randomArray(b * k, b + k, -6, 6);
    for (const target of ["u32", "i32", "soft"] as const) {
      for (const eps of [0, 0.1]) {
        for (const reduction of ["mean", "sum"] as const) {
          for (const grad of [true, false]) {
            const bad = target !== "soft" && eps === 0 && grad && b > 2;
            const what = `ce (${b},${k}) ${target}${bad ? " with bad labels" : ""} eps=${eps} ` +
              `${reduction} grad=${grad}`;
            const t = target === "soft"
              ? softTargets(b, k, b * k)
              : labelsFor(b, k, b * k, target, bad);
            const tShape = target === "soft" ? [b, k] : [b];
            const r = await replayBoth(
              gpu,
              rts,
              [{ shape: [b, k], data: logits }, { shape: tShape, data: t }],
              ([z, y]) => {
                const ce = softmaxCrossEntropy(gpu, z, y, { labelSmoothing: eps, reduction, grad });
                return [ce.loss, ce.perSample, ce.invalid, ...(ce.dLogits ? [ce.dLogits] : [])];
              },
              what,
            );
            const [loss, perSample, invalid, dLogits] = r.wasm;
            // Losses are sums of k terms of size up to ~12, a mean or sum over b rows.
            const atol = 2e-6 * Math.sqrt(k) * (reduction === "sum" ? b : 1) + 1e-6;
            note(
              "loss vs webgpu",
              assertNear(loss, r.gpu[0], atol, 1e-5, `${what}: loss vs webgpu`),
            );
            note(
              "perSample vs webgpu",
              assertNear(
                perSample,
                r.gpu[1],
                2e-6 * Math.sqrt(k) + 1e-6,
                1e-5,
                `${what}: perSample vs webgpu`,
              ),
            );
            assertBitwise(invalid, r.gpu[2], `${what}: invalid count vs webgpu`);
            assert.equal(invalid[0], bad ? 2 : 0, `${what}: invalid count`);
            // dLogits = gscale (p tmass - t): the cancellation near p = t leaves ~2 ulp of p.
            const gtol = 5e-7 * (reduction === "mean" ? 1 / b : 1);
            if (grad) {
              note(
                "dLogits vs webgpu",
                assertNear(dLogits, r.gpu[3], gtol, 1e-5, `${what}: dLogits vs webgpu`),
              );
            }
            const ref = refSoftmaxCrossEntropy(
              logits,
              b,
              k,
              target === "i32" ? Array.from(t as Int32Array, (v) => v >>> 0) : t,
              { labelSmoothing: eps, reduction, soft: target === "soft" },
            );
            note("loss vs f64", assertNear(loss, [ref.loss], atol, 1e-5, `${what}: loss vs f64`));
            assertNear(
              perSample,
              ref.perSample!,
              2e-6 * Math.sqrt(k) + 1e-6,
              1e-5,
              `${what}: perSample vs f64`,
            );
            if (grad) {
              note(
                "dLogits vs f64",
                assertNear(dLogits, ref.grad, gtol, 1e-5, `${what}: dLogits vs f64`),
              );
            }
          }
        }
      }
    }
  }
});

Deno.test("loss.ce_rows twin: extreme logits stay finite; a NaN logit makes its row NaN", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  const logits = Float32Array.from([1e4, -1e4, 0, 3, -1e4, -1e4, 5, 2, 1, 1, 1, 1]);
  const labels = Uint32Array.from([1, 0, 3]);
  const r = await replayBoth(
    gpu,
    rts,
    [{ shape: [3, 4], data: logits }, { shape: [3], data: labels }],
    ([z, y]) => {
      const ce = softmaxCrossEntropy(gpu, z, y, { labelSmoothing: 0.2 });
      return [ce.loss, ce.perSample, ce.dLogits!];
    },
    "ce extremes",
  );
  r.wasm.forEach((w, i) =>
    assertNear(w, r.gpu[i], 1e-5, 1e-5, `ce extremes output ${i} vs webgpu`)
  );
  const ref = refSoftmaxCrossEntropy(logits, 3, 4, labels, { labelSmoothing: 0.2 });
  assertNear(r.wasm[1], ref.perSample!, 1e-5, 1e-5, "ce extremes perSample vs f64");
  assertNear(r.wasm[2], ref.grad, 1e-6, 1e-5, "ce extremes grad vs f64");
  const withNan = logits.slice();
  withNan[5] = NaN;
  const n = await replayBoth(
    gpu,
    rts,
    [{ shape: [3, 4], data: withNan }, { shape: [3], data: labels }],
    ([z, y]) => {
      const ce = softmaxCrossEntropy(gpu, z, y);
      return [ce.perSample, ce.dLogits!];
    },
    "ce NaN",
  );
  assert.ok(Number.isNaN(n.wasm[0][1]) && Number.isNaN(n.gpu[0][1]), "the NaN row's loss is NaN");
  assertNear(n.wasm[0], n.gpu[0], 1e-5, 1e-5, "ce NaN perSample vs webgpu");
  assertNear(n.wasm[1], n.gpu[1], 1e-6, 1e-5, "ce NaN grad vs webgpu");
});

Deno.test("loss.mse + loss.sum twins: mean / sum, with and without the gradient", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const n of [1, 3, 2047, 2048, 2049, 70001, 300000]) {
    const pred = randomArray(n, n, -2, 2), target = randomArray(n, n + 1, -2, 2);
    for (const reduction of ["mean", "sum"] as const) {
      for (const grad of [true, false]) {
        const what = `mse n=${n} ${reduction} grad=${grad}`;
        const r = await replayBoth(
          gpu,
          rts,
          [{ shape: [n], data: pred }, { shape: [n], data: target }],
          ([p, t]) => {
            const m = mse(gpu, p, t, { reduction, grad });
            return [m.loss, ...(m.dPred ? [m.dPred] : [])];
          },
          what,
        );
        const ref = refMse(pred, target, reduction);
        const atol = 1e-6 * Math.sqrt(n) * (reduction === "sum" ? Math.sqrt(n) : 1 / Math.sqrt(n));
        note(
          "mse vs webgpu",
          assertNear(r.wasm[0], r.gpu[0], atol, 1e-5, `${what}: loss vs webgpu`),
        );
        note("mse vs f64", assertNear(r.wasm[0], [ref.loss], atol, 1e-5, `${what}: loss vs f64`));
        if (grad) {
          assertBitwise(r.wasm[1], r.gpu[1], `${what}: dPred vs webgpu`);
          assertNear(r.wasm[1], ref.grad, 0, 2e-7, `${what}: dPred vs f64`);
        }
      }
    }
  }
});

Deno.test("loss.argmax_count twin: exact counts with ties, bad labels, accumulation", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  for (const [b, k] of [[1, 1], [3, 5], [64, 10], [1000, 3], [7, 1000]] as [number, number][]) {
    const logits = randomArray(b * k, b * k, -2, 2).map((v) => Math.round(v * 2) / 2);
    for (const dtype of ["u32", "i32"] as const) {
      const labels = labelsFor(b, k, b + k, dtype, true);
      // Rows whose label is the argmax, so the count is not ~b/k.
      for (let i = 0; i < b; i += 3) {
        let best = 0;
        for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
        if (i !== 1 && i !== b - 1) labels[i] = best;
      }
      const what = `accuracyCount (${b},${k}) ${dtype}`;
      let counter: Tensor | null = null;
      const r = await replayBoth(
        gpu,
        rts,
        [{ shape: [b, k], data: logits }, { shape: [b], data: labels }],
        ([z, y]) => {
          counter = accuracyCount(gpu, z, y);
          // A second batch added to the same counter (accumulate).
          return [accuracyCount(gpu, z, y, { out: counter, accumulate: true })];
        },
        what,
      );
      assert.ok(counter !== null);
      const want = 2 * refAccuracyCount(logits, b, k, Array.from(labels, (v) => v >>> 0));
      assert.equal(r.wasm[0][0], want, `${what} vs reference`);
      assert.equal(r.gpu[0][0], want, `${what}: webgpu vs reference`);
    }
  }
});

Deno.test("loss.argmax_count twin: NaN counts as the maximum, the first NaN wins", async () => {
  const gpu = await getRuntime();
  const rts = await sharedWasmPair();
  const logits = Float32Array.from([
    ...[1, NaN, 3, NaN], // first NaN at 1
    ...[NaN, 5, 6, 7], // NaN first
    ...[1, 2, 3, NaN], // NaN last
    ...[4, 4, 1, 0], // tie: the first
  ]);
  const labels = Uint32Array.from([1, 0, 3, 0]);
  const r = await replayBoth(
    gpu,
    rts,
    [{ shape: [4, 4], data: logits }, { shape: [4], data: labels }],
    ([z, y]) => [accuracyCount(gpu, z, y)],
    "accuracy NaN",
  );
  assert.equal(r.wasm[0][0], refAccuracyCount(logits, 4, 4, labels), "wasm vs reference");
  assert.equal(r.wasm[0][0], 4);
  assert.equal(r.gpu[0][0], 4, "webgpu");
});

Deno.test("losses run on both backends (Backend seam): cross-entropy, MSE, accuracy", async () => {
  for (const [b, k] of [[17, 10], [5000, 10], [64, 1000]] as [number, number][]) {
    await onBothBackends(async (rt) => {
      const z = rt.upload(randomArray(b * k, 3, -6, 6), [b, k]);
      const y = rt.upload(labelsFor(b, k, 4, "u32", true), [b]);
      const q = rt.upload(softTargets(b, k, 5), [b, k]);
      const hard = softmaxCrossEntropy(rt, z, y, { labelSmoothing: 0.1 });
      const soft = softmaxCrossEntropy(rt, z, q, { reduction: "sum" });
      const m = mse(rt, z, q);
      const count = accuracyCount(rt, z, y);
      const out = {
        hardLoss: await hard.loss.read(),
        hardPer: await hard.perSample.read(),
        hardGrad: await hard.dLogits!.read(),
        invalid: await hard.invalid.read(),
        softLoss: await soft.loss.read(),
        softGrad: await soft.dLogits!.read(),
        mse: await m.loss.read(),
        mseGrad: await m.dPred!.read(),
        correct: await count.read(),
      };
      for (const t of [z, y, q, count]) t.dispose();
      for (const r of [hard, soft, m]) r.dispose();
      return out;
    }, {
      atol: 1e-5,
      rtol: 1e-5,
      exact: ["invalid", "correct", "mseGrad"],
      per: { softLoss: { atol: 1e-3 }, softGrad: { atol: 5e-7 }, hardGrad: { atol: 5e-7 / b } },
      what: `(${b},${k})`,
    });
  }
});

Deno.test("loss twins: the worst errors seen (summary)", async () => {
  const line = [...worst].map(([k, e]) => `${k} ${e.toFixed(3)}`).join(", ");
  console.log(`worst error / bound: ${line}`);
  await releaseSharedWasmPair();
});

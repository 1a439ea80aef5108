import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import type { Backend } from "../src/backend.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  elasticNetPenalty,
  l1Penalty,
  l1Regularizer,
  l2Penalty,
  l2Regularizer,
  softSvbPenalty,
  softSvbRegularizer,
  spectralNormPenalty,
  spectralNormRegularizer,
  SpectralState,
} from "../src/regularizers/penalties.ts";
import type { StepContext } from "../src/hooks/step.ts";
import { createOptimizer } from "../src/train/optim.ts";
import { elasticNetRef, softSvbRef, spectralRef } from "../src/reference/penalties.ts";

const rt = await getBackend();

function param(
  rt: Backend,
  name: string,
  shape: number[],
  seed: number,
  kind: Param["kind"] = "weight",
  scale = 1,
): Param & { w: Float32Array; g0: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const w = randomArray(n, seed, -scale, scale);
  const g0 = randomArray(n, seed + 1000, -0.1, 0.1);
  return {
    name,
    kind,
    value: rt.upload(w, shape),
    grad: rt.upload(g0, shape),
    w,
    g0,
  };
}

function free(ps: Param[]): void {
  for (const p of ps) {
    p.value.dispose();
    p.grad?.dispose();
  }
}

/** Checks grad = g0 + ref. */
async function checkGrad(p: Param & { g0: Float32Array }, ref: Float64Array, rtol = 1e-4) {
  const got = await p.grad!.read();
  const want = ref.map((x, i) => x + p.g0[i]);
  const atol = 1e-6 * want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
  assertClose(got, want, { rtol, atol, what: `grad ${p.name}` });
}

Deno.test("elasticNetPenalty() matches the float64 reference on odd sizes", async () => {
  const shapes = [[1, 1], [3, 1], [17, 3], [255, 1], [33, 65], [5, 3, 7, 7]];
  const ps = shapes.map((s, i) => param(rt, `w${i}`, s, 10 + i));
  ps[2].w[5] = 0; // sign(0) = 0
  rt.write(ps[2].value, ps[2].w);
  const { value } = elasticNetPenalty(rt, ps, { l1: 0.003, l2: 0.02 });
  let want = 0;
  for (const p of ps) {
    const r = elasticNetRef(p.w, 0.003, 0.02);
    want += r.value;
    await checkGrad(p, r.grad);
  }
  assertClose(await value.read(), [want], { rtol: 1e-5, what: "value" });
  value.dispose();
  free(ps);
});

Deno.test("l1Penalty() and l2Penalty() skip biases and BatchNorm γ unless asked", async () => {
  const w = param(rt, "fc.weight", [4, 5], 1);
  const b = param(rt, "fc.bias", [4], 2, "bias");
  const gamma = param(rt, "bn.weight", [4], 3, "weight");
  const running = {
    name: "bn.running_mean",
    value: rt.upload(randomArray(4, 4), [4]),
    kind: "buffer",
  } as Param;
  const ps = [w, b, gamma, running];
  const sumAbs = (a: Float32Array) => a.reduce((s, x) => s + Math.abs(x), 0);
  const sumSq = (a: Float32Array) => a.reduce((s, x) => s + x * x, 0);
  let r = l1Penalty(rt, ps, { lambda: 0.5 });
  assertClose(await r.value.read(), [0.5 * sumAbs(w.w)], { what: "weights only" });
  assertClose(await b.grad!.read(), b.g0, { rtol: 0, atol: 0, what: "bias grad untouched" });
  assertClose(await gamma.grad!.read(), gamma.g0, { rtol: 0, atol: 0, what: "γ grad untouched" });
  r.value.dispose();
  r = l2Penalty(rt, ps, { lambda: 0.1, biases: true, norms: true, grad: false });
  assertClose(
    await r.value.read(),
    [0.05 * (sumSq(w.w) + sumSq(b.w) + sumSq(gamma.w))],
    { what: "weights, biases, γ" },
  );
  r.value.dispose();
  free(ps);
});

Deno.test("l2Penalty() then SGD equals SGD with weight_decay=λ (momentum, 3 steps)", async () => {
  // torch.optim.SGD(weight_decay=λ) adds λw to the gradient before momentum; so does the penalty.
  const lambda = 5e-4;
  const a = param(rt, "a.weight", [7, 9], 5), b = param(rt, "b.weight", [7, 9], 5);
  const withPenalty = createOptimizer(rt, { algorithm: "sgd", momentum: 0.9 });
  const withDecay = createOptimizer(rt, { algorithm: "sgd", momentum: 0.9, weightDecay: lambda });
  for (let t = 0; t < 3; t++) {
    rt.write(a.grad!, a.g0);
    rt.write(b.grad!, b.g0);
    l2Penalty(rt, [a], { lambda }).value.dispose();
    withPenalty.step([a], 0.1);
    withDecay.step([b], 0.1);
  }
  assertClose(await a.value.read(), await b.value.read(), { rtol: 1e-6, atol: 1e-7 });
  withPenalty.dispose();
  withDecay.dispose();
  free([a, b]);
});

Deno.test("softSvbPenalty() matches the float64 reference (wide, tall, conv)", async () => {
  const shapes = [[6, 25], [25, 6], [6, 1, 5, 5], [16, 6, 5, 5], [3, 3], [1, 7]];
  const ps = shapes.map((s, i) => param(rt, `w${i}`, s, 40 + i, "weight", 0.4));
  const { value } = softSvbPenalty(rt, ps, { lambda: 0.3 });
  let want = 0;
  for (const p of ps) {
    const m = p.value.shape[0], k = p.value.size / m;
    const r = softSvbRef(p.w, m, k, 0.3);
    want += r.value;
    await checkGrad(p, r.grad);
  }
  assertClose(await value.read(), [want], { rtol: 1e-5, what: "value" });
  value.dispose();
  free(ps);
});

Deno.test("softSvbPenalty() is 0 for an orthogonal matrix", async () => {
  const q = new Float32Array(3 * 5);
  q[0] = 1, q[5 + 3] = 1, q[10 + 1] = -1;
  const p = {
    name: "w",
    kind: "weight" as const,
    value: rt.upload(q, [3, 5]),
    grad: rt.zeros([3, 5]),
  };
  const { value } = softSvbPenalty(rt, [p], { lambda: 1 });
  assertClose(await value.read(), [0], { atol: 1e-7 });
  assertClose(await p.grad.read(), new Float32Array(15), { atol: 1e-7 });
  value.dispose();
  free([p]);
});

Deno.test("spectralNormPenalty() matches power iteration in float64", async () => {
  const shapes = [[6, 25], [25, 6], [16, 6, 5, 5], [1, 4]];
  const ps = shapes.map((s, i) => param(rt, `w${i}`, s, 70 + i));
  const state = new SpectralState(rt, 1);
  const u0s = ps.map((p, i) => randomArray(p.value.shape[0], 90 + i));
  ps.forEach((p, i) => state.set(p, u0s[i]));
  const { value } = spectralNormPenalty(rt, ps, { lambda: 0.2, state, iters: 3 });
  let want = 0;
  for (const [i, p] of ps.entries()) {
    const m = p.value.shape[0], k = p.value.size / m;
    const r = spectralRef(p.w, m, k, u0s[i], 0.2, 3);
    want += r.value;
    await checkGrad(p, r.grad, 1e-4);
  }
  assertClose(await value.read(), [want], { rtol: 1e-5, what: "value" });
  // The state advanced: one more iteration from the stored u equals 4 from u0.
  const p = ps[0];
  rt.write(p.grad!, p.g0);
  const again = spectralNormPenalty(rt, [p], { lambda: 0.2, state, iters: 1, grad: false });
  const r4 = spectralRef(p.w, 6, 25, u0s[0], 0.2, 4);
  assertClose(await again.value.read(), [r4.value], { rtol: 1e-5, what: "4th iteration" });
  again.value.dispose();
  value.dispose();
  state.dispose();
  free(ps);
});

Deno.test("penalty functions reject bad input with clear errors", () => {
  const p = { name: "w", kind: "weight" as const, value: rt.zeros([2, 2]) };
  assert.throws(() => l1Penalty(rt, [p], { lambda: 1 }), /'w' has no grad/);
  assert.throws(() => l2Penalty(rt, [p], { lambda: -1, grad: false }), /lambda2 must be/);
  assert.throws(() => l1Regularizer({ lambda: NaN }), /lambda must be/);
  p.value.dispose();
});

Deno.test("l2Regularizer() and friends record options and return their value", async () => {
  const w = param(rt, "fc.weight", [4, 6], 11);
  const b = param(rt, "fc.bias", [4], 12, "bias");
  const ctx = { rt, params: [w, b], step: 0, seed: 3 } as unknown as StepContext;
  const l2 = l2Regularizer({ lambda: 0.01 });
  assert.deepEqual(l2.options, { lambda: 0.01, biases: false, norms: false });
  const v = l2.afterBackward!(ctx)!;
  assertClose(await v.read(), [0.005 * w.w.reduce((s, x) => s + x * x, 0)]);
  const sv = softSvbRegularizer();
  assert.deepEqual(sv.options, { lambda: 1e-4 });
  const sref = softSvbRef(w.w, 4, 6, 1e-4);
  assertClose(await sv.afterBackward!(ctx)!.read(), [sref.value], { rtol: 1e-5 });
  const sp = spectralNormRegularizer({ iters: 30 });
  assert.deepEqual(sp.options, { lambda: 0.01, iters: 30 });
  const sigma = await sp.afterBackward!(ctx)!.read();
  assert.ok(sigma[0] > 0);
  for (const r of [l2, sv, sp]) r.dispose!();
  free([w, b]);
});

// ---------------------------------------------------------------------------------------------
// Goldens from PyTorch 1.13 (tools/torch_penalties.py), float64, on LeNet and DDNet shapes.

const LENET: [string, number[]][] = [
  ["conv1.weight", [6, 1, 5, 5]],
  ["conv2.weight", [16, 6, 5, 5]],
  ["fc1.weight", [120, 400]],
  ["fc2.weight", [84, 120]],
  ["fc3.weight", [10, 84]],
];
const DDNET: [string, number[]][] = [
  ["conv1.weight", [64, 3, 3, 3]],
  ["conv2.weight", [64, 64, 3, 3]],
  ["conv3.weight", [128, 64, 3, 3]],
  ["conv4.weight", [128, 128, 3, 3]],
  ["fc1.weight", [256, 3200]],
  ["fc2.weight", [256, 256]],
  ["fc3.weight", [10, 256]],
];

function b64f32(a: Float32Array): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromB64f64(s: string): Float64Array {
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float64Array(bytes.buffer);
}

async function torchPenalties(jobs: unknown[]): Promise<{ value: number; grad: string }[]> {
  const cmd = new Deno.Command(Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3", {
    args: [new URL("../tools/torch_penalties.py", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(jobs)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(`torch_penalties.py failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(new TextDecoder().decode(stdout));
}

for (const [model, layers] of [["LeNet", LENET], ["DDNet", DDNET]] as const) {
  Deno.test(`penalties match PyTorch 1.13 on ${model}-shaped weights`, async () => {
    // Xavier-like scale, so that soft SVB and the spectral norm see realistic magnitudes.
    const ps = layers.map(([name, shape], i) => {
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      return param(rt, name, shape, 200 + i, "weight", Math.sqrt(3 / fanIn));
    });
    const u0s = ps.map((p, i) => randomArray(p.value.shape[0], 300 + i));
    const kinds = [
      { kind: "l1", lambda: 1e-3 },
      { kind: "l2", lambda: 5e-4 },
      { kind: "elastic", l1: 1e-3, l2: 5e-4 },
      { kind: "soft_svb", lambda: 1e-2 },
      { kind: "spectral", lambda: 0.1, iters: 2 },
    ];
    const jobs = kinds.flatMap((k) =>
      ps.map((p, i) => ({ ...k, shape: p.value.shape, w: b64f32(p.w), u0: b64f32(u0s[i]) }))
    );
    const golden = await torchPenalties(jobs);
    for (const [ki, k] of kinds.entries()) {
      ps.forEach((p) => rt.fill0(p.grad!));
      let res;
      let state: SpectralState | undefined;
      if (k.kind === "l1") res = l1Penalty(rt, ps, { lambda: k.lambda! });
      else if (k.kind === "l2") res = l2Penalty(rt, ps, { lambda: k.lambda! });
      else if (k.kind === "elastic") res = elasticNetPenalty(rt, ps, { l1: k.l1, l2: k.l2 });
      else if (k.kind === "soft_svb") res = softSvbPenalty(rt, ps, { lambda: k.lambda! });
      else {
        state = new SpectralState(rt);
        ps.forEach((p, i) => state!.set(p, u0s[i]));
        res = spectralNormPenalty(rt, ps, { lambda: k.lambda!, iters: k.iters, state });
      }
      const gold = golden.slice(ki * ps.length, (ki + 1) * ps.length);
      const want = gold.reduce((s, g) => s + g.value, 0);
      assertClose(await res.value.read(), [want], { rtol: 1e-4, atol: 0, what: `${k.kind} value` });
      for (const [i, p] of ps.entries()) {
        const g = fromB64f64(gold[i].grad);
        const got = await p.grad!.read();
        // 1e-4 relative to the gradient's scale (elementwise relative error is meaningless for
        // entries that cancel to ~0 in the soft SVB product).
        const scale = g.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
        assertClose(got, g, { rtol: 1e-4, atol: 1e-4 * scale, what: `${k.kind} grad ${p.name}` });
      }
      res.value.dispose();
      state?.dispose();
    }
    free(ps);
  });
}

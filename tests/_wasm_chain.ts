/**
 * One training step of a LeNet-5 through the public API on the WebAssembly backend, written once
 * and run three ways: in this process, in a page from the esbuild bundle of mod.ts
 * (tests/wasm_browser_test.ts) and in a fresh Deno that imports mod.ts from a URL
 * (tests/wasm_ship_test.ts). {@linkcode lenetStep} takes the library's module namespace as an
 * argument and uses nothing else from its surroundings, so its source text
 * ({@linkcode lenetStepSource}) runs wherever that namespace exists.
 *
 * @module
 */
import type * as Regula from "../mod.ts";
import { assert, assertClose } from "./_util.ts";

/** What {@linkcode lenetStep} computed (plain arrays, so it crosses JSON and page boundaries). */
export interface StepResult {
  /** The backend's `kind` and `description`, and its thread count. */
  kind: string;
  description: string;
  threads: number;
  /** Logits (3, 10) of the first forward pass. */
  logits: number[];
  /** Mean cross-entropy before and after the SGD step, on the same batch. */
  loss: number;
  lossAfter: number;
  /** Gradient of the loss with respect to the input (3, 1, 28, 28). */
  dx: number[];
  /** Every parameter after the step, by `state_dict` name. */
  params: Record<string, number[]>;
}

/**
 * Builds LeNet-5 (seed 7) on `Runtime.create({ backend: "wasm", threads })`, runs forward,
 * softmax cross-entropy, backward (to the input) and one SGD step (lr 0.1, momentum 0.9) on a
 * fixed batch of 3 images, then the forward and loss again; destroys the runtime.
 * @param lib the library's module namespace (mod.ts, its bundle, or its URL import)
 * @param threads threads asked of the WebAssembly backend
 * @returns the results as plain arrays
 */
export async function lenetStep(lib: typeof Regula, threads: number): Promise<StepResult> {
  const rt = await lib.Runtime.create({ backend: "wasm", threads });
  try {
    const model = lib.buildModel(rt, lib.modelSpecFromName("lenet"), { seed: 7 });
    const b = 3, n = b * 28 * 28;
    const pixels = new Float32Array(n);
    for (let i = 0; i < n; i++) pixels[i] = 0.5 + 0.5 * Math.sin(0.37 * i + 0.001 * i * i);
    const x = rt.upload(pixels, [b, 1, 28, 28]);
    const y = rt.upload(new Int32Array([7, 2, 9]), [b]);
    const out = model.forward(x);
    const logits = Array.from(await out.read());
    const ce = lib.softmaxCrossEntropy(rt, out, y);
    const loss = await lib.readLoss(ce);
    model.zeroGrad();
    const dx = Array.from(await model.backward(ce.dLogits!).read());
    const state = new lib.OptimizerState(rt);
    lib.sgd(rt, model.params(), state, { lr: 0.1, momentum: 0.9 });
    const params: Record<string, number[]> = {};
    for (const p of model.params()) params[p.name] = Array.from(await p.value.read());
    const after = lib.softmaxCrossEntropy(rt, model.forward(x), y, { grad: false });
    const lossAfter = await lib.readLoss(after);
    for (const t of [x, y]) t.dispose();
    ce.dispose();
    after.dispose();
    state.dispose();
    model.dispose();
    const threadsUsed = (rt as { threads?: number }).threads ?? 0;
    return {
      kind: rt.kind,
      description: rt.description,
      threads: threadsUsed,
      logits,
      loss,
      lossAfter,
      dx,
      params,
    };
  } finally {
    rt.destroy();
  }
}

/** The source of {@linkcode lenetStep} as a JavaScript function expression. */
export const lenetStepSource: string = `(${lenetStep.toString()})`;

/**
 * Checks that `got` (from elsewhere) is the computation `want` (in this process) within float32
 * tolerance, and that the step lowered the loss.
 * @param got the result to check
 * @param want the reference
 * @param what where `got` was computed, for messages
 * @returns the largest absolute difference over every value compared
 */
export function assertSameStep(got: StepResult, want: StepResult, what: string): number {
  assert.equal(got.kind, "wasm", what);
  const tol = { atol: 1e-5, rtol: 1e-4 };
  assertClose(got.logits, want.logits, { ...tol, what: `${what}: logits` });
  assertClose([got.loss, got.lossAfter], [want.loss, want.lossAfter], {
    ...tol,
    what: `${what}: loss`,
  });
  assert.ok(got.lossAfter < got.loss, `${what}: SGD step did not lower the loss`);
  assertClose(got.dx, want.dx, { ...tol, what: `${what}: dL/dx` });
  assert.deepEqual(Object.keys(got.params), Object.keys(want.params), what);
  for (const [name, v] of Object.entries(want.params)) {
    assertClose(got.params[name], v, { ...tol, what: `${what}: ${name} after SGD` });
  }
  let worst = 0;
  const all = (
    r: StepResult,
  ) => [r.logits, [r.loss, r.lossAfter], r.dx, ...Object.values(r.params)];
  const w = all(want);
  all(got).forEach((g, k) => g.forEach((v, i) => worst = Math.max(worst, Math.abs(v - w[k][i]))));
  return worst;
}

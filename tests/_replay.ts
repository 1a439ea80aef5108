/**
 * Replays the WebGPU dispatches of an op on a `WasmRuntime`: `record` wraps the GPU runtime's
 * `dispatch` while an op runs on GPU tensors, and a {@linkcode Mirror} re-runs those exact
 * `(kernel, spec)` pairs through `WasmRuntime.dispatch`, binding, for each GPU buffer, one Wasm
 * tensor (the test's uploaded copy for inputs; a zeroed one of the buffer's size for outputs,
 * temporaries and placeholders), so that internal temporaries and in-place aliasing replay as
 * on the GPU. For the twin tests until the op-level `onBothBackends` exists.
 */
import type { Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import type { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";

/** One recorded dispatch, its bindings resolved to buffers at record time. */
export interface Recorded {
  kernel: Kernel;
  buffers: { buffer: GPUBuffer; dtype: "f32" | "u32" | "i32" }[];
  params: Record<string, number>;
  workgroups: readonly number[];
  constants: Record<string, number>;
}

/** Runs `fn` on the GPU runtime, recording every dispatch it makes. */
export function record<T>(gpu: Runtime, fn: () => T): { result: T; calls: Recorded[] } {
  const calls: Recorded[] = [];
  const dispatch = gpu.dispatch;
  gpu.dispatch = (kernel, spec) => {
    calls.push({
      kernel,
      buffers: spec.bindings.map((t) => ({ buffer: t.storage as GPUBuffer, dtype: t.dtype })),
      params: { ...spec.params },
      workgroups: [...spec.workgroups],
      constants: { ...spec.constants },
    });
    dispatch.call(gpu, kernel, spec);
  };
  try {
    return { result: fn(), calls };
  } finally {
    gpu.dispatch = dispatch;
  }
}

/** Wasm tensors standing for GPU buffers, one per buffer. */
export class Mirror {
  readonly #map = new Map<GPUBuffer, WasmTensor>();
  constructor(readonly rt: WasmRuntime) {}

  #of(buffer: GPUBuffer, dtype: "f32" | "u32" | "i32"): WasmTensor {
    let w = this.#map.get(buffer);
    if (!w) {
      w = this.rt.zeros([Math.max(1, buffer.size / 4)], dtype);
      this.#map.set(buffer, w);
    }
    return w;
  }

  /** Binds `g`'s buffer to a Wasm tensor holding `data` (the rest of the buffer zero). */
  input(g: Tensor, data: ArrayLike<number>): void {
    const w = this.#of(g.storage as GPUBuffer, g.dtype);
    const ctor = g.dtype === "f32" ? Float32Array : g.dtype === "u32" ? Uint32Array : Int32Array;
    new ctor(this.rt.wasmMemory.buffer as ArrayBuffer, w.ptr, data.length).set(data);
  }

  /** Re-runs the recorded dispatches, in order, through `WasmRuntime.dispatch`. */
  replay(calls: readonly Recorded[]): void {
    for (const c of calls) {
      this.rt.dispatch(c.kernel, {
        bindings: c.buffers.map((b) => this.#of(b.buffer, b.dtype)),
        params: c.params,
        workgroups: c.workgroups,
        constants: c.constants,
      });
    }
  }

  /** The Wasm copy of GPU tensor `g` (its first `g.size` elements, as `g.dtype`). */
  read(g: Tensor): Float32Array | Uint32Array {
    const w = this.#of(g.storage as GPUBuffer, g.dtype);
    const ctor = g.dtype === "f32" ? Float32Array : Uint32Array;
    return new ctor(this.rt.wasmMemory.buffer as ArrayBuffer, w.ptr, g.size).slice();
  }

  /** Frees every Wasm tensor of the mirror. */
  dispose(): void {
    for (const w of this.#map.values()) w.dispose();
    this.#map.clear();
  }
}

/** Asserts two arrays are bitwise equal (NaN payloads included), naming the first difference. */
export function assertBitwise(
  got: Float32Array | Uint32Array,
  want: Float32Array | Uint32Array,
  what: string,
): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  if (g.length !== w.length) throw new Error(`${what}: length ${g.length} vs ${w.length}`);
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i]) {
      throw new Error(
        `${what}[${i}]: bits ${g[i].toString(16)} vs ${w[i].toString(16)} (${got[i]} vs ${
          want[i]
        })`,
      );
    }
  }
}

/**
 * Largest `|got - want| / (atol + rtol |want|)` (<= 1 passes); NaN must match NaN and infinities
 * must match exactly, else Infinity.
 */
export function excess(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
): { worst: number; at: number } {
  let worst = 0, at = -1;
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    let e: number;
    if (Number.isNaN(w) || Number.isNaN(g)) e = Number.isNaN(w) && Number.isNaN(g) ? 0 : Infinity;
    else if (!Number.isFinite(w) || !Number.isFinite(g)) e = g === w ? 0 : Infinity;
    else e = Math.abs(g - w) / (atol + rtol * Math.abs(w));
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  return { worst, at };
}

/** Throws unless `excess(...) <= 1`, naming the worst element. */
export function assertNear(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
): number {
  if (got.length !== want.length) {
    throw new Error(`${what}: length ${got.length} vs ${want.length}`);
  }
  const { worst, at } = excess(got, want, atol, rtol);
  if (worst > 1) {
    throw new Error(
      `${what}[${at}]: got ${got[at]}, want ${want[at]} (atol ${atol}, rtol ${rtol}, ` +
        `${worst.toExponential(2)} times the bound)`,
    );
  }
  return worst;
}

/** An input of {@linkcode replayBoth}: uploaded to the GPU and mirrored on each Wasm runtime. */
export interface ReplayInput {
  shape: number[];
  data: Float32Array | Uint32Array | Int32Array;
}

/**
 * Runs `run` on GPU tensors made from `inputs` (recording its dispatches), replays them on each
 * of `rts`, asserts the Wasm results of all runtimes bitwise equal (thread-count independence),
 * and returns the outputs of the first Wasm runtime and of the GPU, in `run`'s order.
 */
export async function replayBoth(
  gpu: Runtime,
  rts: readonly WasmRuntime[],
  inputs: readonly ReplayInput[],
  run: (t: Tensor[]) => Tensor[],
  what: string,
): Promise<{ wasm: (Float32Array | Uint32Array)[]; gpu: (Float32Array | Uint32Array)[] }> {
  if (rts.length > 1 && rts.at(-1)!.threads < 2) {
    throw new Error(`${what}: the last Wasm runtime has 1 thread (${rts.at(-1)!.threadsNote})`);
  }
  const g = inputs.map((i) => gpu.upload(i.data, i.shape));
  const { result, calls } = record(gpu, () => run(g));
  const per: (Float32Array | Uint32Array)[][] = [];
  for (const rt of rts) {
    const m = new Mirror(rt);
    g.forEach((t, i) => m.input(t, inputs[i].data));
    m.replay(calls);
    per.push(result.map((r) => m.read(r)));
    m.dispose();
  }
  for (let r = 1; r < per.length; r++) {
    per[r].forEach((o, i) =>
      assertBitwise(o, per[0][i], `${what}: output ${i}, runtime ${r} vs 0`)
    );
  }
  const want = [];
  for (const r of result) want.push((await r.read()) as Float32Array | Uint32Array);
  for (const r of new Set(result)) if (!(g as Tensor[]).includes(r)) r.dispose();
  for (const t of g) t.dispose();
  return { wasm: per[0], gpu: want };
}

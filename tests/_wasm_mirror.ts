/**
 * Lockstep replay of the WebGPU runtime's dispatches on WebAssembly runtimes, for the twin tests
 * (tests/wasm_conv2d_test.ts, tests/wasm_pool_test.ts) until ops take a `Backend`: while a
 * {@linkcode Mirror} is on, every `gpu.dispatch(kernel, spec)` also runs on each Wasm runtime
 * with the Wasm copies of its bindings (tensors the test did not upload, the op's temporaries,
 * get zero-filled copies of their shape), so the whole op, internal dispatches included, runs
 * on both. A kernel without a Wasm twin makes the replay throw.
 *
 * @module
 */
import type { Runtime } from "../src/gpu/runtime.ts";
import type { Kernel } from "../src/kernel.ts";
import type { Tensor } from "../src/backend.ts";
import type { DType } from "../src/wasm/tensor.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import type { WasmTensor } from "../src/wasm/tensor.ts";
import { TWINS } from "../src/wasm/kernels/mod.ts";
import { assert } from "./_util.ts";

/** Replays a GPU runtime's dispatches on Wasm runtimes (see the module doc). */
export class Mirror {
  readonly #maps: Map<Tensor, WasmTensor>[];
  readonly #temps: WasmTensor[] = [];
  #saved: Runtime["dispatch"] | null = null;
  /** Kernel names replayed, with counts (for tests that check which paths ran). */
  readonly seen: Map<string, number> = new Map();

  constructor(readonly gpu: Runtime, readonly wasm: WasmRuntime[]) {
    this.#maps = wasm.map(() => new Map());
  }

  /** Uploads `data` to the GPU and to every Wasm runtime, linked. */
  upload(data: Float32Array | Uint32Array, shape: number[], name?: string): Tensor {
    const t = this.gpu.upload(data, shape, undefined, name);
    this.wasm.forEach((rt, i) => this.#maps[i].set(t, rt.upload(data, shape, undefined, name)));
    return t;
  }

  /** The Wasm copy of `t` on runtime `i`. */
  copyOf(t: Tensor, i: number): WasmTensor {
    let w = this.#maps[i].get(t);
    if (!w) {
      w = this.wasm[i].zeros(t.shape, t.dtype as DType, t.name);
      this.#maps[i].set(t, w);
      this.#temps.push(w);
    }
    return w;
  }

  /** Starts replaying `gpu.dispatch` calls. */
  start(): this {
    const gpu = this.gpu;
    const dispatch = gpu.dispatch;
    this.#saved = dispatch;
    gpu.dispatch = (kernel: Kernel, spec) => {
      dispatch.call(gpu, kernel, spec);
      const entry = kernel.entry ?? "main";
      this.seen.set(kernel.name, (this.seen.get(kernel.name) ?? 0) + 1);
      this.wasm.forEach((rt, i) => {
        const bindings = spec.bindings.map((t) => this.copyOf(t, i));
        if (!TWINS[kernel.name]?.[entry]) {
          throw new Error(`Mirror: kernel '${kernel.name}' (${entry}) has no Wasm twin`);
        }
        rt.dispatch(kernel, { ...spec, bindings });
      });
    };
    return this;
  }

  /**
   * Records the dispatches `fn` makes on the GPU runtime without running them (for timing the
   * Wasm side alone with {@linkcode Mirror.replay}).
   */
  capture(fn: () => void): { kernel: Kernel; spec: Parameters<Runtime["dispatch"]>[1] }[] {
    const gpu = this.gpu;
    const dispatch = gpu.dispatch;
    const seen: { kernel: Kernel; spec: Parameters<Runtime["dispatch"]>[1] }[] = [];
    gpu.dispatch = (kernel, spec) => void seen.push({ kernel, spec });
    try {
      fn();
    } finally {
      gpu.dispatch = dispatch;
    }
    return seen;
  }

  /**
   * Runs captured dispatches on Wasm runtime `i`.
   * @returns milliseconds spent, by kernel name
   */
  replay(
    list: { kernel: Kernel; spec: Parameters<Runtime["dispatch"]>[1] }[],
    i: number,
  ): Map<string, number> {
    const rt = this.wasm[i];
    const times = new Map<string, number>();
    for (const { kernel, spec } of list) {
      const bindings = spec.bindings.map((t) => this.copyOf(t, i));
      const t0 = performance.now();
      rt.dispatch(kernel, { ...spec, bindings });
      times.set(kernel.name, (times.get(kernel.name) ?? 0) + performance.now() - t0);
    }
    return times;
  }

  /** Stops replaying. */
  stop(): void {
    if (this.#saved) this.gpu.dispatch = this.#saved;
    this.#saved = null;
  }

  /**
   * Reads `t` on the GPU and its copies; asserts the copies are bitwise equal to each other.
   * @returns the GPU values and the first Wasm runtime's
   */
  async read(
    t: Tensor,
    what: string,
  ): Promise<{ gpu: Float32Array | Uint32Array; wasm: Float32Array | Uint32Array }> {
    const g = (await t.read()) as Float32Array | Uint32Array;
    const copies = this.wasm.map((_, i) => this.copyOf(t, i).toArray() as Float32Array);
    for (let i = 1; i < copies.length; i++) {
      const a = new Uint32Array(copies[0].buffer), b = new Uint32Array(copies[i].buffer);
      let bad = -1;
      for (let j = 0; j < a.length && bad < 0; j++) if (a[j] !== b[j]) bad = j;
      assert.equal(
        bad,
        -1,
        `${what}: ${this.wasm[0].threads} vs ${this.wasm[i].threads} threads differ at ${bad}`,
      );
    }
    return { gpu: g, wasm: copies[0] };
  }

  /** Stops and frees every Wasm copy. */
  dispose(): void {
    this.stop();
    for (const m of this.#maps) for (const w of m.values()) if (!w.disposed) w.dispose();
    this.#temps.length = 0;
  }
}

/** Wasm runtimes on 1 and 2 threads (created once per test process). */
let runtimes: Promise<WasmRuntime[]> | null = null;
export function wasmRuntimes(): Promise<WasmRuntime[]> {
  runtimes ??= Promise.all([1, 2].map((threads) => WasmRuntime.create({ threads, warn: false })))
    .then((rts) => {
      assert.equal(rts[1].threads, 2, `the 2-thread runtime runs on 1: ${rts[1].threadsNote}`);
      return rts;
    });
  return runtimes;
}

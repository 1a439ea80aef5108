/**
 * The WebAssembly CPU runtime: one `WebAssembly.Memory` holding every tensor,
 * its allocator, the kernel module instantiated on it, and a pool of Web
 * Workers running the same module on the same (shared) memory.
 *
 * Threading plan: the calling thread is thread 0; `threads - 1` workers each
 * wait on a control block in the shared memory (src/wasm/_worker.ts). An op
 * splits its output into parts (gemm.ts: by rows or by columns, never along
 * K), hands parts 1.. to the workers, computes part 0 itself, then waits for
 * the others, so every op is synchronous and ops never overlap. Where the
 * calling thread may block (Deno, Node, a Web Worker) it waits with
 * `Atomics.wait`; on a page's main thread, which may not block, it spins on
 * `Atomics.load` (the others finish their equal shares at about the same time).
 *
 * Without `SharedArrayBuffer` (a page that is not cross-origin isolated), Web
 * Workers or a shared memory, the runtime runs everything on one thread with
 * the single-thread module and says why in {@linkcode WasmRuntime.threadsNote};
 * that is never an error. No 128-bit SIMD in the engine is an error.
 *
 * Nothing here is Deno-only: it runs the same in browsers.
 *
 * @module
 */

import { type HeapStats, WasmHeap } from "./heap.ts";
import {
  compileKernels,
  type KernelExports,
  type KernelName,
  kernelNames,
  relaxedSimdSupported,
  requireSimd,
  threadsUnavailableReason,
} from "./module.ts";
import {
  checkShape,
  type DType,
  fmtShape,
  sizeOf,
  type TypedArrayFor,
  WasmTensor,
} from "./tensor.ts";
import { CONTROL, type WorkerInit, workerSource } from "./_worker.ts";
import { TWINS } from "./kernels/mod.ts";
import { bindingLayout, type Kernel } from "../kernel.ts";
import {
  type Backend,
  type BackendLimits,
  type DispatchSpec,
  foreignTensorError,
  gridFor,
  type Tensor,
} from "../backend.ts";

/** How to run a kernel: the backends' `DispatchSpec` (src/backend.ts). */
export type WasmDispatchSpec = DispatchSpec;

/**
 * The limits ops plan with on Wasm: a tensor may fill the wasm32 address space, a kernel may
 * bind any number of tensors, and the workgroup grid (which twins read only where the WGSL does)
 * has WebGPU's usual per-dimension maximum.
 */
const WASM_LIMITS: BackendLimits = {
  maxStorageBufferBindingSize: 2 ** 32 - 65536,
  maxBufferSize: 2 ** 32 - 65536,
  maxStorageBuffersPerShaderStage: 64,
  maxComputeWorkgroupsPerDimension: 65535,
};

/** Options of {@linkcode WasmRuntime.create}. */
export interface WasmRuntimeOptions {
  /**
   * Threads to compute on, the calling one included. Default: the number of
   * logical cores (`navigator.hardwareConcurrency`), at most 8. 1: no workers.
   */
  threads?: number;
  /**
   * Largest size the memory may grow to, in bytes (rounded down to 64 KiB
   * pages; at most 4 GiB, the wasm32 limit). Default 2 GiB.
   */
  maxMemoryBytes?: number;
  /**
   * Use the relaxed-SIMD kernels (fused multiply-adds in the GEMM, so in Linear and Conv2d:
   * about 1.4x the GEMM throughput on x64). Default: whenever the engine validates relaxed SIMD
   * ({@linkcode relaxedSimdSupported}). false: the plain-SIMD kernels (a multiply and an add,
   * each rounded), e.g. to compare. true where the engine lacks it is an error.
   */
  relaxedSimd?: boolean;
  /** How long to wait for the workers to start before running on one thread, in ms. Default 30000. */
  workerStartTimeoutMs?: number;
  /**
   * Print {@linkcode WasmRuntime.threadsNote} with `console.warn` (stderr in Deno) the first
   * time a runtime of this process gets fewer threads than asked for. Default true.
   */
  warn?: boolean;
}

let warned = false;

const PAGE = 65536;
const MAX_PAGES = 65536;
const DEFAULT_MAX_BYTES = 2 ** 31;

interface Control {
  words: Int32Array;
  args: Float64Array;
  message: Uint8Array;
}

/** The number of threads used when none is asked for. */
export function defaultThreads(): number {
  const n = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator
    ?.hardwareConcurrency;
  return Math.max(1, Math.min(8, Number.isInteger(n) ? n! : 1));
}

/** True when this thread may block in `Atomics.wait` (not on a page's main thread). */
function canBlockHere(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Owner of a WebAssembly memory, its tensors, and the threads that compute on them: the
 * WebAssembly {@linkcode Backend}.
 */
export class WasmRuntime implements Backend {
  /** This is the WebAssembly backend. */
  readonly kind = "wasm" as const;
  /** Kernels run on CPU cores: ops pick their CPU-shaped launches. */
  readonly isCpuAdapter = true;
  /** The limits ops plan with. */
  readonly limits: BackendLimits = WASM_LIMITS;
  /** Always 0: nothing is deferred, so there is nothing to submit. */
  submits = 0;
  #placeholders: WasmTensor[] = [];
  readonly #workers: Worker[];
  readonly #controls: Control[];
  readonly #canBlock: boolean;
  readonly #scratch: number[];
  readonly #names: readonly string[];
  #destroyed = false;

  private constructor(
    /** The memory every tensor lives in (shared when `threads > 1`). */
    readonly wasmMemory: WebAssembly.Memory,
    /** Allocator of `wasmMemory`. */
    readonly heap: WasmHeap,
    /** The kernels, instantiated on `wasmMemory` for the calling thread. */
    readonly kernels: KernelExports,
    /** Threads ops are split across, the calling one included. */
    readonly threads: number,
    /**
     * Null when the runtime has the threads it was asked for; else one sentence
     * saying how many it has and why (for the caller to print once).
     */
    readonly threadsNote: string | null,
    /**
     * True when the kernels are the relaxed-SIMD build (the GEMM's multiply-adds fused), false
     * for the plain-SIMD build (see {@linkcode WasmRuntimeOptions.relaxedSimd}).
     */
    readonly relaxedSimd: boolean,
    workers: Worker[],
    controls: Control[],
    scratch: number[],
    names: readonly string[],
  ) {
    this.#names = names;
    this.#workers = workers;
    this.#controls = controls;
    this.#scratch = scratch;
    this.#canBlock = threads > 1 && canBlockHere();
  }

  /**
   * Compiles (once per process) and instantiates the kernels, and starts the workers.
   * @param options threads, memory limit, worker start timeout, warning
   * @returns the runtime; call `destroy()` when done (live workers keep a Deno process alive)
   * @throws Error when the engine lacks WebAssembly SIMD, or the options are invalid; fewer
   *   threads than asked for is never an error (see {@linkcode WasmRuntime.threadsNote})
   * @example
   * ```ts
   * const rt = await WasmRuntime.create({ threads: 2 });
   * // "WebAssembly SIMD, 2 threads"; without SharedArrayBuffer "WebAssembly SIMD, 1 thread; ..."
   * // (and the reason once on stderr / the console, unless `warn: false`)
   * console.log(rt.description);
   * rt.destroy();
   * ```
   */
  static async create(options: WasmRuntimeOptions = {}): Promise<WasmRuntime> {
    requireSimd();
    const wanted = options.threads ?? defaultThreads();
    if (!Number.isInteger(wanted) || wanted < 1) {
      throw new Error(`WasmRuntime: threads must be a positive integer, got ${wanted}`);
    }
    const maxBytes = options.maxMemoryBytes ?? DEFAULT_MAX_BYTES;
    const maxPages = Math.floor(maxBytes / PAGE);
    if (!(maxPages >= 1 && maxPages <= MAX_PAGES)) {
      throw new Error(
        `WasmRuntime: maxMemoryBytes must be between 64 KiB and 4 GiB (wasm32), got ${maxBytes}`,
      );
    }
    let reason = wanted > 1 ? threadsUnavailableReason() : null;
    const shared = wanted > 1 && reason === null;
    const relaxed = options.relaxedSimd ?? relaxedSimdSupported();
    const module = await compileKernels(shared, relaxed);
    // The module's data sits below heapBase (1 KiB); one page is enough to instantiate.
    const memory = new WebAssembly.Memory(
      shared ? { initial: 1, maximum: maxPages, shared: true } : { initial: 1, maximum: maxPages },
    );
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const kernels = instance.exports as unknown as KernelExports;
    const heap = new WasmHeap(memory, kernels.heapBase(), maxPages * PAGE);
    const threads = shared ? wanted : 1;
    const scratch: number[] = [];
    for (let t = 0; t < threads; t++) {
      scratch.push(heap.alloc(kernels.scratchBytes(), `the gemm scratch of thread ${t}`));
    }
    const workers: Worker[] = [];
    const controls: Control[] = [];
    if (threads > 1) {
      try {
        await startWorkers(module, memory, heap, threads - 1, workers, controls, options);
      } catch (e) {
        for (const w of workers) w.terminate();
        workers.length = 0;
        controls.length = 0;
        reason = `the Web Workers did not start (${(e as Error).message})`;
      }
    }
    const got = workers.length + 1;
    const note = reason === null
      ? null
      : `regula's CPU backend runs on ${got} thread${got > 1 ? "s" : ""} instead of ${wanted}: ` +
        `${reason}`;
    if (note !== null && options.warn !== false && !warned) {
      warned = true;
      console.warn(`warning: ${note}`);
    }
    return new WasmRuntime(
      memory,
      heap,
      kernels,
      got,
      note,
      relaxed,
      workers,
      controls,
      scratch,
      kernelNames(module),
    );
  }

  /** "WebAssembly SIMD, 2 threads" (with the reason when there are fewer than asked for). */
  get description(): string {
    const base = `WebAssembly SIMD, ${this.threads} thread${this.threads > 1 ? "s" : ""}`;
    const wait = this.threads > 1 && !this.#canBlock ? " (the calling thread spin-waits)" : "";
    return `${base}${wait}${this.threadsNote ? `; ${this.threadsNote}` : ""}`;
  }

  /** True after `destroy()`. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * A new tensor with undefined contents.
   * @param shape dimensions
   * @param dtype element type
   * @param name shown in error messages
   * @returns a tensor the caller owns
   * @throws Error naming the tensor and its size when the memory cannot grow enough
   */
  empty(shape: readonly number[], dtype: DType = "f32", name?: string): WasmTensor {
    this.#check();
    checkShape(shape);
    const size = sizeOf(shape);
    const what = `tensor${name ? ` '${name}'` : ""} ${dtype}${fmtShape(shape)}`;
    const ptr = this.heap.alloc(size * 4, what);
    return new WasmTensor(this, ptr, shape, dtype, name);
  }

  /** A new tensor filled with zeros (see {@linkcode WasmRuntime.empty}). */
  zeros(shape: readonly number[], dtype: DType = "f32", name?: string): WasmTensor {
    const t = this.empty(shape, dtype, name);
    t.view().fill(0);
    return t;
  }

  /**
   * A new tensor holding a copy of `data` (the signature of the WebGPU `Runtime.upload`).
   * @param data values, row-major (length must equal the shape's size)
   * @param shape dimensions
   * @param dtype inferred from the array type unless given (f32 for a plain array)
   * @param name shown in error messages
   * @returns a tensor the caller owns
   * @throws Error when the values do not fill the shape, or the memory cannot hold them
   */
  upload(
    data: Float32Array | Uint32Array | Int32Array | number[],
    shape: readonly number[],
    dtype?: DType,
    name?: string,
  ): WasmTensor {
    const dt: DType = dtype ??
      (data instanceof Uint32Array ? "u32" : data instanceof Int32Array ? "i32" : "f32");
    checkShape(shape);
    if (sizeOf(shape) !== data.length) {
      throw new Error(`upload: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    }
    const t = this.empty(shape, dt, name);
    t.view().set(data);
    return t;
  }

  /** Overwrites the contents of `t` with `data` (same number of elements). */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array): void {
    if (data.length !== t.size) {
      throw new Error(`write: ${data.length} values for ${t.describe()}`);
    }
    this.#own(t).view().set(data);
  }

  /** `dst[...] = src[...]` for `count` elements (default all of src); the two may overlap. */
  copy(src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0): void {
    if (srcOffset + count > src.size || dstOffset + count > dst.size) {
      throw new Error(`copy: ${count} elements do not fit ${src.describe()} -> ${dst.describe()}`);
    }
    const [from, to] = [this.#own(src).ptr, this.#own(dst).ptr];
    if (count === 0) return;
    new Uint8Array(this.wasmMemory.buffer).copyWithin(
      to + dstOffset * 4,
      from + srcOffset * 4,
      from + (srcOffset + count) * 4,
    );
  }

  /** Sets every element of `t` to 0. */
  fill0(t: Tensor): void {
    new Uint8Array(this.wasmMemory.buffer, this.#own(t).ptr, t.byteLength).fill(0);
  }

  /** A copy of a tensor's data (a promise, as on the WebGPU runtime). */
  read(t: Tensor): Promise<TypedArrayFor<DType>> {
    return this.#own(t).read();
  }

  /**
   * The `index`-th placeholder tensor, for a storage binding an entry point leaves unused
   * (the WebGPU {@linkcode Runtime.placeholder}): an f32[4] tensor, distinct per index, owned by
   * the runtime; disposing it throws.
   */
  placeholder(index: number): WasmTensor {
    let t = this.#placeholders[index];
    if (!t) {
      const ptr = this.heap.alloc(16, `placeholder ${index}`);
      t = new WasmPlaceholder(this, ptr, index);
      this.#placeholders[index] = t;
    }
    return t;
  }

  /**
   * Workgroup counts for `n` items handled `perGroup` at a time, spread over x and y past 65535
   * (the WebGPU runtime's `grid`, so that ops compute the same launch on both backends; twins
   * read it only where the WGSL does).
   */
  grid(n: number, perGroup: number): [number, number] {
    return gridFor(n, perGroup, WASM_LIMITS.maxComputeWorkgroupsPerDimension);
  }

  /** Nothing to free: the heap reuses freed blocks and a WebAssembly memory never shrinks. */
  trim(): Promise<void> {
    this.#check();
    return Promise.resolve();
  }

  /**
   * Nothing to do: every op has finished when it returns (the WebGPU runtime submits its
   * recorded step here). Kept so that code written for either runtime runs on both.
   */
  submit(): void {}

  /** Resolves at once (ops are synchronous); throws if the runtime was destroyed. */
  sync(): Promise<void> {
    this.#check();
    return Promise.resolve();
  }

  /** Memory statistics (the WebGPU runtime's `memory()` reports its buffer pool). */
  memory(): HeapStats {
    return this.heap.stats();
  }

  /** Number of {@linkcode WasmRuntime.dispatch} calls so far (the WebGPU runtime's counter). */
  dispatches = 0;

  /**
   * Runs the WebAssembly twin of a WGSL kernel (src/wasm/kernels/) on the same bindings,
   * params and constants that `Runtime.dispatch` takes, and returns when it is done. This is
   * the seam through which ops are to reach both backends (src/wasm/README.md).
   * @param kernel the WGSL kernel (its name and entry point pick the twin; its source gives the
   *   binding count)
   * @param spec bindings, params, workgroups, constants
   * @throws Error naming the kernel when it has no twin yet, the bindings do not match its
   *   declaration, or a tensor was disposed
   */
  dispatch(kernel: Kernel, spec: DispatchSpec): void {
    this.#check();
    const layout = bindingLayout(kernel);
    if (spec.bindings.length !== layout.storage.length) {
      throw new Error(
        `Kernel '${kernel.name}' declares ${layout.storage.length} storage bindings, got ${spec.bindings.length}`,
      );
    }
    const bound = spec.bindings.map((t) => {
      const w = this.#own(t, kernel.name);
      void w.ptr; // throws, naming the tensor, when it was disposed
      return w;
    });
    const entry = kernel.entry ?? "main";
    const twin = TWINS[kernel.name]?.[entry];
    if (!twin) {
      throw new Error(
        `Kernel '${kernel.name}' (entry ${entry}) has no WebAssembly twin yet; use the WebGPU ` +
          `backend for it (issue 11 tracks the remaining kernels)`,
      );
    }
    const wg = [spec.workgroups[0], spec.workgroups[1] ?? 1, spec.workgroups[2] ?? 1];
    if (wg[0] * wg[1] * wg[2] === 0) return;
    twin(this, bound, spec.params ?? {}, spec.constants ?? {}, wg);
    this.dispatches++;
  }

  /** Byte offset of thread `t`'s gemm scratch. */
  scratch(t: number): number {
    return this.#scratch[t];
  }

  /**
   * Runs one kernel over several parts of its output, part 0 on the calling
   * thread and part i on worker i - 1, and returns when all are done.
   * @param name the kernel
   * @param parts the arguments of each part, at most `threads` of them
   * @throws Error naming the kernel and thread when one of them fails
   */
  parallel(name: KernelName, parts: readonly (readonly number[])[]): void {
    this.#check();
    if (parts.length === 0) return;
    if (parts.length > this.threads) {
      throw new Error(`parallel: ${parts.length} parts for ${this.threads} threads`);
    }
    const op = this.#names.indexOf(name);
    if (op < 0) throw new Error(`parallel: the kernel module has no export '${name}'`);
    const seqs: number[] = [];
    for (let w = 1; w < parts.length; w++) {
      const c = this.#controls[w - 1];
      if (parts[w].length > CONTROL.maxArgs) {
        throw new Error(`parallel: ${name} takes at most ${CONTROL.maxArgs} arguments`);
      }
      c.args.set(parts[w]);
      c.words[CONTROL.op] = op;
      c.words[CONTROL.nargs] = parts[w].length;
      seqs[w] = Atomics.add(c.words, CONTROL.seq, 1) + 1;
      Atomics.notify(c.words, CONTROL.seq);
    }
    let failure: string | null = null;
    try {
      (this.kernels[name] as (...args: number[]) => void)(...parts[0]);
    } catch (e) {
      failure = `the calling thread: ${(e as Error).message}`;
    }
    for (let w = 1; w < parts.length; w++) {
      const words = this.#controls[w - 1].words;
      const until = performance.now() + CONTROL.spinMs;
      for (let i = 1;; i++) {
        const done = Atomics.load(words, CONTROL.done);
        if (done === seqs[w]) break;
        if (this.#canBlock && (i & 255) === 0 && performance.now() > until) {
          Atomics.wait(words, CONTROL.done, done);
        }
      }
      const len = words[CONTROL.errLen];
      if (len !== 0 && failure === null) {
        const bytes = this.#controls[w - 1].message.slice(0, len);
        failure = `worker ${w}: ${new TextDecoder().decode(bytes)}`;
      }
    }
    if (failure !== null) throw new Error(`WebAssembly kernel ${name} failed on ${failure}`);
  }

  /** Stops the workers. The memory and every tensor become unusable. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (let w = 0; w < this.#workers.length; w++) {
      const words = this.#controls[w].words;
      Atomics.store(words, CONTROL.quit, 1);
      Atomics.add(words, CONTROL.seq, 1);
      Atomics.notify(words, CONTROL.seq);
      this.#workers[w].terminate();
    }
  }

  #check(): void {
    if (this.#destroyed) throw new Error("WasmRuntime was used after destroy()");
  }

  /** `t` as this runtime's tensor, or an error naming it and the backend that owns it. */
  #own(t: Tensor, kernel?: string): WasmTensor {
    if (t.rt !== this || !(t instanceof WasmTensor)) throw foreignTensorError(t, "wasm", kernel);
    return t;
  }
}

/** Starts `count` workers on `module` and `memory`; resolves when all are ready. */
async function startWorkers(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  heap: WasmHeap,
  count: number,
  workers: Worker[],
  controls: Control[],
  options: WasmRuntimeOptions,
): Promise<void> {
  const base = heap.alloc(CONTROL.bytes * count, `the control blocks of ${count} workers`);
  new Uint8Array(memory.buffer, base, CONTROL.bytes * count).fill(0);
  const url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
  const timeout = options.workerStartTimeoutMs ?? 30000;
  try {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const control = base + i * CONTROL.bytes;
      const worker = new Worker(url, { type: "module", name: `regula-wasm-${i + 1}` });
      workers.push(worker);
      controls.push({
        words: new Int32Array(memory.buffer, control, 16),
        args: new Float64Array(memory.buffer, control + CONTROL.args, CONTROL.maxArgs),
        message: new Uint8Array(memory.buffer, control + CONTROL.message, CONTROL.messageBytes),
      });
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.onmessage = (e: MessageEvent<{ ready?: boolean; error?: string }>) => {
            if (e.data.ready) resolve();
            else reject(new Error(`worker ${i + 1}: ${e.data.error}`));
          };
          worker.onerror = (e: ErrorEvent) => {
            e.preventDefault();
            reject(new Error(`worker ${i + 1}: ${e.message}`));
          };
        }),
      );
      const names = kernelNames(module);
      const init: WorkerInit = { module, memory, control, names, layout: CONTROL };
      worker.postMessage(init);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`they were not ready after ${timeout} ms`)),
        timeout,
      );
    });
    try {
      await Promise.race([Promise.all(ready), late]);
    } finally {
      clearTimeout(timer);
    }
    for (const w of workers) {
      w.onmessage = null;
      w.onerror = null;
    }
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** A runtime-owned placeholder (see {@linkcode WasmRuntime.placeholder}): disposing it is a bug. */
class WasmPlaceholder extends WasmTensor {
  constructor(rt: WasmRuntime, ptr: number, readonly index: number) {
    super(rt, ptr, [4], "f32", `placeholder ${index}`);
  }
  override dispose(): void {
    throw new Error(
      `${this.describe()} belongs to the runtime and is shared by every op; do not dispose it ` +
        `(WasmRuntime.destroy() frees it)`,
    );
  }
}

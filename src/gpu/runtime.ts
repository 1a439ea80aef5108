/**
 * The WebGPU runtime: one device, its buffer pool, its pipeline cache, and the
 * command encoder that the current logical step records into.
 *
 * Recording model: every op appends a dispatch to one open compute pass of one
 * command encoder; `submit()` ends it and makes one `queue.submit`. Uniform
 * parameters of all dispatches of a step are packed into one CPU-side arena
 * and written with a single `writeBuffer` just before that submit. Nothing is
 * read back unless asked (`read`, `sync`).
 *
 * Errors: a validation/out-of-memory error scope brackets each submitted step
 * and each pipeline creation; errors surface, naming the kernel, at the next
 * `read()` or `sync()` rather than as a silent wrong answer.
 *
 * @module
 */

import {
  type DeviceOptions,
  type GpuDeviceInfo,
  NoAdapterError,
  requestGpuDevice,
} from "./device.ts";
import { simdSupported } from "../wasm/module.ts";
import { WasmRuntime, type WasmRuntimeOptions } from "../wasm/runtime.ts";
import { BufferPool, PLACEHOLDER_BYTES, type PoolStats } from "./pool.ts";
import { bindingLayout, type Kernel, writeParams } from "../kernel.ts";
import { Profiler } from "./profile.ts";
import {
  checkShape,
  type DType,
  fmtShape,
  GpuTensor,
  sizeOf,
  type TypedArrayFor,
} from "./tensor.ts";
import {
  type Backend,
  type BackendLimits,
  type DispatchSpec as BackendDispatchSpec,
  foreignTensorError,
  gridFor,
  type Tensor,
} from "../backend.ts";

/** How to launch a kernel (src/backend.ts). */
export type DispatchSpec = BackendDispatchSpec;

/** Options of {@linkcode Runtime.create}: the device's, and the runtime's own. */
export interface RuntimeOptions extends DeviceOptions {
  /**
   * Count every dispatch, copy and clear per kernel, and time each dispatch with timestamp
   * queries where the device has `timestamp-query` (see src/gpu/profile.ts and
   * {@linkcode Runtime.profiler}). Slows the recorded work down; for profiling only. Default
   * false.
   */
  profile?: boolean;
}

/** Which backend {@linkcode Runtime.create} returns. */
export type BackendChoice = "auto" | "webgpu" | "wasm";

/**
 * Options of {@linkcode Runtime.create} with a `backend`: the WebGPU runtime's and the
 * WebAssembly runtime's (`threads`, `maxMemoryBytes`, ...), each used by its own backend.
 */
export interface BackendOptions extends RuntimeOptions, WasmRuntimeOptions {
  /**
   * "webgpu": the WebGPU runtime (an error without an adapter). "wasm": the WebAssembly CPU
   * runtime. "auto": a hardware WebGPU adapter when there is one, else the WebAssembly runtime
   * (faster than a software WebGPU adapter on the same cores: README, "Choosing a backend"),
   * else a software adapter when the engine lacks WebAssembly SIMD. Default "webgpu".
   */
  backend?: BackendChoice;
}

/** True for a CPU (software) WebGPU adapter: Mesa llvmpipe/lavapipe, SwiftShader, ... */
export function isSoftwareAdapter(description: string, isFallback: boolean): boolean {
  return isFallback || /llvmpipe|lavapipe|swiftshader|softpipe|software/i.test(description);
}

const UNIFORM_ARENA_BYTES = 1 << 16;

const runtimes = new WeakMap<GPUDevice, Runtime>();

/** Owner of a GPU device and everything allocated on it: the WebGPU {@linkcode Backend}. */
export class Runtime implements Backend {
  /** This is the WebGPU backend. */
  readonly kind = "webgpu" as const;
  /** Buffer pool: every tensor's memory comes from here. */
  readonly pool: BufferPool;
  #pipelines = new Map<string, Map<string, GPUComputePipeline>>();
  #bindGroups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 1;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #uniformBuffers: GPUBuffer[] = [];
  #uniformCpu = new ArrayBuffer(UNIFORM_ARENA_BYTES);
  #uniformView = new DataView(this.#uniformCpu);
  #uniformUsed = 0;
  #uniformArena = 0;
  #errors: Promise<string | null>[] = [];
  #uniformAlign: number;
  /** Number of `queue.submit` calls so far. */
  submits = 0;
  /** Number of dispatches recorded so far. */
  dispatches = 0;
  #placeholders: GpuTensor[] = [];
  /**
   * The dispatch profile when the runtime was created with `profile: true`, else null:
   * `await rt.profiler.report()` after `rt.sync()` gives per-kernel counts, workgroups, bound
   * bytes and GPU times; `rt.profiler.reset()` starts over.
   */
  readonly profiler: Profiler | null;

  private constructor(
    readonly device: GPUDevice,
    readonly description: string,
    readonly isFallback: boolean,
    profile = false,
  ) {
    this.profiler = profile ? new Profiler(device) : null;
    this.pool = new BufferPool(device);
    this.#uniformAlign = device.limits.minUniformBufferOffsetAlignment;
    runtimes.set(device, this);
  }

  /** The device's limits that ops plan with. */
  get limits(): BackendLimits {
    return this.device.limits;
  }

  /**
   * True on a CPU (software) adapter such as Mesa llvmpipe/lavapipe or SwiftShader, where kernels
   * pick direct loads and small workgroups instead of workgroup-memory tiling.
   */
  get isCpuAdapter(): boolean {
    return isSoftwareAdapter(this.description, this.isFallback);
  }

  /**
   * Acquires a device and wraps it; with `backend: "wasm"` or `"auto"`, possibly the WebAssembly
   * CPU runtime instead (see {@linkcode BackendOptions.backend}).
   * @example
   * ```ts
   * import { Runtime } from "@regula/regula";
   *
   * // Without an adapter this throws a NoAdapterError saying what was tried and how to get one.
   * const rt = await Runtime.create();
   * const a = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
   * console.log(rt.description, await a.read()); // Float32Array [1, 2, 3, 4]
   * a.dispose();
   * // Any machine: a hardware GPU if there is one, else the WebAssembly CPU backend.
   * const any = await Runtime.create({ backend: "auto" });
   * console.log(any.kind, any.description); // e.g. "wasm" "WebAssembly SIMD, 2 threads"
   * any.destroy();
   * ```
   * @param options adapter preference and limits (see `DeviceOptions`), `profile`, `backend`,
   *   and the WebAssembly runtime's `threads`, `maxMemoryBytes`, `workerStartTimeoutMs`, `warn`,
   *   `relaxedSimd`
   * @returns the WebGPU runtime, or with `backend` "wasm"/"auto" any {@linkcode Backend}
   */
  static async create(options?: RuntimeOptions & { backend?: "webgpu" }): Promise<Runtime>;
  static async create(options: BackendOptions): Promise<Backend>;
  static async create(options: BackendOptions = {}): Promise<Backend> {
    const {
      backend = "webgpu",
      profile,
      threads,
      maxMemoryBytes,
      workerStartTimeoutMs,
      warn,
      relaxedSimd,
      ...deviceOptions
    } = options;
    const wasm = () =>
      WasmRuntime.create({ threads, maxMemoryBytes, workerStartTimeoutMs, warn, relaxedSimd });
    const gpu = (d: GpuDeviceInfo) =>
      new Runtime(d.device, d.description, d.isFallback, profile ?? false);
    if (backend === "wasm") return await wasm();
    if (backend === "webgpu") return gpu(await requestGpuDevice(deviceOptions));
    if (backend !== "auto") {
      throw new Error(
        `Unknown backend '${String(backend)}': use "auto", "webgpu" or "wasm"`,
      );
    }
    let found: GpuDeviceInfo | null = null;
    let none = "";
    try {
      found = await requestGpuDevice(deviceOptions);
    } catch (e) {
      if (!(e instanceof NoAdapterError)) throw e;
      none = e.message;
    }
    if (found && !isSoftwareAdapter(found.description, found.isFallback)) return gpu(found);
    if (simdSupported()) {
      found?.device.destroy();
      return await wasm();
    }
    if (found) return gpu(found);
    throw new Error(
      `No backend for regula: ${none} And the WebAssembly backend needs 128-bit SIMD, which this ` +
        `engine lacks; use a current browser, Deno or Node.`,
    );
  }

  /**
   * Wraps an existing device (one runtime per device: a device already wrapped gives its
   * runtime, whatever the options).
   * @param device the device
   * @param description adapter description for messages
   * @param options `profile` (see {@linkcode RuntimeOptions})
   */
  static forDevice(
    device: GPUDevice,
    description = "external device",
    options: { profile?: boolean } = {},
  ): Runtime {
    return runtimes.get(device) ?? new Runtime(device, description, false, options.profile);
  }

  /** An uninitialised tensor (contents are whatever the reused buffer held). */
  empty(shape: readonly number[], dtype: DType = "f32", name?: string): GpuTensor {
    checkShape(shape);
    const buffer = this.pool.acquire(sizeOf(shape) * 4, shape);
    return new GpuTensor(this, buffer, [...shape], dtype, name);
  }

  /** A tensor of zeros (cleared on the GPU, in the current step). */
  zeros(shape: readonly number[], dtype: DType = "f32", name?: string): GpuTensor {
    const t = this.empty(shape, dtype, name);
    this.fill0(t);
    return t;
  }

  /**
   * The `index`-th placeholder tensor, for a storage binding that an entry point leaves unused
   * (WGSL files share one binding layout across their entry points, so every binding needs a
   * buffer). An f32[4] tensor over the pool's `index`-th placeholder buffer: distinct indices are
   * distinct buffers (a writable binding must not alias another binding of the dispatch), the
   * same index is the same tensor. Owned by the runtime, never disposed, freed by `destroy()`;
   * counted in `memory().placeholderBytes`, not in the pool's in-use bytes.
   * @param index a non-negative integer: give each unused binding of one dispatch its own
   * @returns a tensor no kernel reads or writes; disposing it throws
   * @example
   * ```ts
   * import type { Kernel, Runtime, Tensor } from "@regula/regula";
   *
   * // An entry point of a file with four bindings that uses only the first and the third:
   * export function launch(rt: Runtime, kernel: Kernel, x: Tensor, y: Tensor): void {
   *   const bindings = [x, rt.placeholder(0), y, rt.placeholder(1)];
   *   rt.dispatch(kernel, { bindings, workgroups: rt.grid(x.size, 256) });
   * }
   * ```
   */
  placeholder(index: number): GpuTensor {
    let t = this.#placeholders[index];
    if (!t) {
      t = new Placeholder(this, this.pool.placeholder(index), index);
      this.#placeholders[index] = t;
    }
    return t;
  }

  /** Sets every element of `t` to 0 (recorded in the current step). */
  fill0(t: Tensor): void {
    if (t.size === 0) return;
    const buffer = this.#own(t).buffer;
    this.#endPass();
    this.profiler?.transfer("clearBuffer", Math.ceil(t.byteLength / 4) * 4);
    this.#enc().clearBuffer(buffer, 0, Math.ceil(t.byteLength / 4) * 4);
  }

  /**
   * A tensor holding `data`. Pending recorded work is submitted first so the
   * write cannot overtake commands that still use a reused buffer.
   * @param data values (length must equal the shape's size)
   * @param shape dimensions
   * @param dtype inferred from the array type unless given
   */
  upload(
    data: Float32Array | Uint32Array | Int32Array | number[],
    shape: readonly number[],
    dtype?: DType,
    name?: string,
  ): GpuTensor {
    const dt: DType = dtype ??
      (data instanceof Uint32Array ? "u32" : data instanceof Int32Array ? "i32" : "f32");
    checkShape(shape);
    if (data.length !== sizeOf(shape)) {
      throw new Error(`upload: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    }
    const arr = Array.isArray(data) ? toTyped(data, dt) : data;
    const t = this.empty(shape, dt, name);
    this.write(t, arr);
    return t;
  }

  /** Overwrites the contents of `t` with `data` (same number of elements). */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array): void {
    if (data.length !== t.size) {
      throw new Error(`write: ${data.length} values for ${t.describe()}`);
    }
    const buffer = this.#own(t).buffer;
    if (this.#encoder) this.submit();
    if (t.size > 0) {
      this.device.queue.writeBuffer(buffer, 0, data as Float32Array<ArrayBuffer>);
    }
  }

  /** Records `dst[...] = src[...]` for `count` elements (default all of src). */
  copy(src: Tensor, dst: Tensor, count = src.size, srcOffset = 0, dstOffset = 0): void {
    if (srcOffset + count > src.size || dstOffset + count > dst.size) {
      throw new Error(`copy: ${count} elements do not fit ${src.describe()} -> ${dst.describe()}`);
    }
    if (count === 0) return;
    this.#endPass();
    this.profiler?.transfer("copyBufferToBuffer", count * 4);
    const [from, to] = [this.#own(src).buffer, this.#own(dst).buffer];
    this.#enc().copyBufferToBuffer(from, srcOffset * 4, to, dstOffset * 4, count * 4);
  }

  /** The cached pipeline for a kernel and its override constants. */
  pipeline(kernel: Kernel, constants?: Record<string, number>): GPUComputePipeline {
    let byConstants = this.#pipelines.get(kernel.code);
    if (!byConstants) this.#pipelines.set(kernel.code, byConstants = new Map());
    const key = `${kernel.entry ?? "main"}|${constants ? JSON.stringify(constants) : ""}`;
    let p = byConstants.get(key);
    if (p) return p;
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ label: kernel.name, code: kernel.code });
    p = this.device.createComputePipeline({
      label: kernel.name,
      layout: this.#pipelineLayout(kernel),
      compute: { module, entryPoint: kernel.entry ?? "main", constants },
    });
    const where = `Kernel '${kernel.name}'${constants ? ` ${JSON.stringify(constants)}` : ""}`;
    this.#errors.push(
      this.device.popErrorScope().then(async (e) => {
        if (!e) return null;
        const info = await module.getCompilationInfo().catch(() => null);
        const msgs = info?.messages.map((m) =>
          `line ${m.lineNum}:${m.linePos} ${m.type}: ${m.message}`
        )
          .join("\n");
        return `${where} failed to compile: ${msgs || e.message}`;
      }),
    );
    byConstants.set(key, p);
    return p;
  }

  /**
   * Compiles a kernel now and throws, naming it, if the shader is invalid.
   * Useful at start-up; `dispatch` compiles lazily and reports at `sync()`.
   */
  async compile(kernel: Kernel, constants?: Record<string, number>): Promise<void> {
    this.pipeline(kernel, constants);
    await this.#checkErrors();
  }

  /**
   * Records one dispatch of `kernel` into the current step.
   * @param kernel WGSL kernel
   * @param spec bindings, uniform params, workgroup counts, override constants
   */
  dispatch(kernel: Kernel, spec: DispatchSpec): void {
    const layout = bindingLayout(kernel);
    if (spec.bindings.length !== layout.storage.length) {
      throw new Error(
        `Kernel '${kernel.name}' declares ${layout.storage.length} storage bindings, got ${spec.bindings.length}`,
      );
    }
    const wg = [spec.workgroups[0], spec.workgroups[1] ?? 1, spec.workgroups[2] ?? 1];
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (wg.some((n) => !Number.isInteger(n) || n < 0 || n > maxWg)) {
      throw new Error(
        `Kernel '${kernel.name}': workgroup counts [${wg}] exceed ${maxWg} or are invalid`,
      );
    }
    if (wg[0] * wg[1] * wg[2] === 0) return;
    const bound = spec.bindings.map((t) => this.#own(t, kernel.name));
    // WebGPU forbids one buffer in two bindings of a dispatch when either is
    // writable (gpuweb #2441); wgpu does not check it, Chromium does.
    for (let i = 0; i < spec.bindings.length; i++) {
      for (let j = i + 1; j < spec.bindings.length; j++) {
        if (
          bound[i].buffer === bound[j].buffer &&
          (layout.access[i] === "read_write" || layout.access[j] === "read_write")
        ) {
          throw new Error(
            `Kernel '${kernel.name}': ${spec.bindings[i].describe()} is bound to bindings ` +
              `${layout.storage[i]} and ${layout.storage[j]} and one is writable; WebGPU forbids ` +
              `aliasing a writable binding`,
          );
        }
      }
    }
    const pipeline = this.pipeline(kernel, spec.constants);
    const entries: GPUBindGroupEntry[] = [];
    let key = `${kernel.name}|${JSON.stringify(spec.constants ?? null)}`;
    bound.forEach((t, i) => {
      const buffer = t.buffer;
      entries.push({ binding: layout.storage[i], resource: { buffer } });
      key += `|${this.#bufferId(buffer)}`;
    });
    if (layout.params) {
      const size = layout.params.size;
      if (this.#uniformUsed + size > UNIFORM_ARENA_BYTES) this.#nextArena();
      const offset = this.#uniformUsed;
      writeParams(kernel, layout.params, spec.params ?? {}, this.#uniformView, offset);
      this.#uniformUsed = Math.ceil((offset + size) / this.#uniformAlign) * this.#uniformAlign;
      const buffer = this.#uniformBuffer(this.#uniformArena);
      entries.push({ binding: layout.params.binding, resource: { buffer, offset, size } });
      key += `|u${this.#uniformArena}:${offset}`;
    }
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size > 8192) this.#bindGroups.clear();
      group = this.device.createBindGroup({ layout: this.#layoutFor(kernel).group, entries });
      this.#bindGroups.set(key, group);
    }
    const timestampWrites = this.profiler?.dispatch(
      kernel.name,
      spec.constants,
      wg,
      spec.bindings.reduce((a, t) => a + t.byteLength, 0),
    );
    // Timed: a pass of its own, whose boundaries carry the timestamps.
    if (timestampWrites) this.#endPass();
    if (!this.#pass) this.#pass = this.#enc().beginComputePass({ timestampWrites });
    this.#pass.setPipeline(pipeline);
    this.#pass.setBindGroup(0, group);
    this.#pass.dispatchWorkgroups(wg[0], wg[1], wg[2]);
    if (timestampWrites) this.#endPass();
    this.dispatches++;
  }

  /**
   * Workgroup counts for `n` independent items handled `perGroup` at a time,
   * spread over x and y when x alone would exceed the device limit. Kernels
   * recover the item as `(wid.y * nwg.x + wid.x) * perGroup + lid.x`.
   */
  grid(n: number, perGroup: number): [number, number] {
    return gridFor(n, perGroup, this.device.limits.maxComputeWorkgroupsPerDimension);
  }

  /** Ends the current step: one command buffer, one `queue.submit`. No-op if nothing is recorded. */
  submit(): void {
    if (!this.#encoder) return;
    this.#endPass();
    const timing = this.profiler?.beforeFinish(this.#encoder) ?? null;
    const cmd = this.#encoder.finish();
    this.#encoder = null;
    for (let a = 0; a <= this.#uniformArena; a++) {
      const used = a === this.#uniformArena ? this.#uniformUsed : UNIFORM_ARENA_BYTES;
      if (used > 0) {
        this.device.queue.writeBuffer(this.#uniformBuffer(a), 0, this.#uniformCpuFor(a), 0, used);
      }
    }
    this.device.queue.submit([cmd]);
    this.profiler?.afterSubmit(timing);
    this.submits++;
    this.#errors.push(
      this.device.popErrorScope().then((e) =>
        e ? `GPU error in submitted work: ${e.message}` : null
      ),
      this.device.popErrorScope().then((e) =>
        e ? `GPU error in submitted work: ${e.message}` : null
      ),
    );
    this.#uniformUsed = 0;
    this.#uniformArena = 0;
    this.#spareArenas = [];
  }

  /** Submits pending work, waits for the GPU, and throws any error it raised. */
  async sync(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    await this.#checkErrors();
  }

  /**
   * Copies a tensor's data to the CPU. Submits pending work first.
   * @returns a typed array of the tensor's dtype and size
   */
  async read<D extends DType>(t: Tensor & { dtype: D }): Promise<TypedArrayFor<D>>;
  async read(t: Tensor): Promise<TypedArrayFor<DType>>;
  async read(t: Tensor): Promise<TypedArrayFor<DType>> {
    const bytes = t.byteLength;
    const staging = this.device.createBuffer({
      size: Math.max(4, bytes),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const buffer = this.#own(t).buffer;
    if (bytes > 0) {
      this.#endPass();
      this.#enc().copyBufferToBuffer(buffer, 0, staging, 0, bytes);
    }
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      await this.#checkErrors();
      const copy = staging.getMappedRange().slice(0);
      staging.unmap();
      return t.dtype === "f32"
        ? new Float32Array(copy, 0, t.size)
        : t.dtype === "u32"
        ? new Uint32Array(copy, 0, t.size)
        : new Int32Array(copy, 0, t.size);
    } finally {
      staging.destroy();
    }
  }

  /** Buffer-pool memory statistics. */
  memory(): PoolStats {
    return this.pool.stats();
  }

  /** Frees pooled buffers no tensor holds (waits for the GPU first). */
  async trim(): Promise<void> {
    await this.sync();
    this.#bindGroups.clear();
    this.pool.trim();
  }

  /** Releases the device, its placeholders and free buffers. The runtime is unusable afterwards. */
  destroy(): void {
    this.#endPass();
    this.#encoder = null;
    this.#placeholders = [];
    this.profiler?.destroy();
    this.pool.destroy();
    this.device.destroy();
  }

  /** `t` as this runtime's GPU tensor, or an error naming it and the backend that owns it. */
  #own(t: Tensor, kernel?: string): GpuTensor {
    if (t.rt !== this || !(t instanceof GpuTensor)) throw foreignTensorError(t, "webgpu", kernel);
    return t;
  }

  #layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();

  /**
   * An explicit layout from the WGSL declarations, shared by every entry point
   * of a file, so an entry point may leave some of the file's bindings unused.
   */
  #pipelineLayout(kernel: Kernel): GPUPipelineLayout {
    return this.#layoutFor(kernel).pipeline;
  }

  #layoutFor(kernel: Kernel): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let l = this.#layouts.get(kernel.code);
    if (l) return l;
    const decl = bindingLayout(kernel);
    const entries: GPUBindGroupLayoutEntry[] = decl.storage.map((binding, i) => ({
      binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: decl.access[i] === "read" ? "read-only-storage" : "storage" },
    }));
    if (decl.params) {
      entries.push({
        binding: decl.params.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "uniform" },
      });
    }
    const group = this.device.createBindGroupLayout({ label: kernel.name, entries });
    l = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
    this.#layouts.set(kernel.code, l);
    return l;
  }

  #spareArenas: ArrayBuffer[] = [];
  #uniformCpuFor(a: number): ArrayBuffer {
    return a === this.#uniformArena ? this.#uniformCpu : this.#spareArenas[a];
  }

  #nextArena(): void {
    this.#spareArenas[this.#uniformArena] = this.#uniformCpu;
    this.#uniformArena++;
    this.#uniformCpu = new ArrayBuffer(UNIFORM_ARENA_BYTES);
    this.#uniformView = new DataView(this.#uniformCpu);
    this.#uniformUsed = 0;
  }

  #uniformBuffer(a: number): GPUBuffer {
    while (this.#uniformBuffers.length <= a) {
      this.#uniformBuffers.push(this.device.createBuffer({
        size: UNIFORM_ARENA_BYTES,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      }));
    }
    return this.#uniformBuffers[a];
  }

  #bufferId(b: GPUBuffer): number {
    let id = this.#bufferIds.get(b);
    if (id === undefined) this.#bufferIds.set(b, id = this.#nextBufferId++);
    return id;
  }

  #enc(): GPUCommandEncoder {
    if (!this.#encoder) {
      this.device.pushErrorScope("out-of-memory");
      this.device.pushErrorScope("validation");
      this.#encoder = this.device.createCommandEncoder();
    }
    return this.#encoder;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  async #checkErrors(): Promise<void> {
    const pending = this.#errors;
    this.#errors = [];
    const msgs = (await Promise.all(pending)).filter((m): m is string => m !== null);
    if (msgs.length) throw new Error(msgs.join("\n"));
  }
}

/** A runtime-owned placeholder (see {@linkcode Runtime.placeholder}): disposing it is a bug. */
class Placeholder extends GpuTensor {
  constructor(rt: Runtime, buffer: GPUBuffer, readonly index: number) {
    super(rt, buffer, [PLACEHOLDER_BYTES / 4], "f32", `placeholder ${index}`);
  }
  override dispose(): void {
    throw new Error(
      `${this.describe()} belongs to the runtime and is shared by every op; do not dispose it ` +
        `(Runtime.destroy() frees it)`,
    );
  }
}

function toTyped(data: number[], dtype: DType): Float32Array | Uint32Array | Int32Array {
  return dtype === "f32"
    ? new Float32Array(data)
    : dtype === "u32"
    ? new Uint32Array(data)
    : new Int32Array(data);
}

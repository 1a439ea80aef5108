/**
 * A pool of storage buffers keyed by size class, so that a training loop that
 * allocates and frees the same temporaries every step reuses memory instead of
 * growing it.
 *
 * Size classes are 2^k and 1.5·2^k bytes (at most 33% slack). Buffers freed
 * while commands that use them are still being recorded are safe to hand out
 * again at once: every use is recorded on the same queue, in order.
 *
 * The pool also owns the runtime's placeholders ({@linkcode BufferPool.placeholder}): small
 * buffers for the storage bindings an entry point leaves unused, kept apart from the size
 * classes (never handed out by `acquire`, never released, freed by `destroy`).
 *
 * @module
 */

import { fmtShape } from "./tensor.ts";

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/**
 * Bytes of a placeholder: 16, the smallest buffer an `array<vec4<f32>>` binding accepts (WebGPU
 * checks the binding size against the shader's minimum binding size, one element).
 */
export const PLACEHOLDER_BYTES = 16;

/** Rounds a byte count up to its size class. */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, bytes);
  const p = 2 ** Math.ceil(Math.log2(b));
  const mid = (p / 4) * 3;
  return b <= mid ? mid : p;
}

/** Memory statistics of a {@linkcode BufferPool}. */
export interface PoolStats {
  /** Bytes of all live GPU buffers the pool created (in use + free). */
  allocatedBytes: number;
  /** Bytes currently handed out. */
  inUseBytes: number;
  /** Number of buffers created so far. */
  created: number;
  /** Number of allocations served from the free lists. */
  reused: number;
  /**
   * Bytes of the live placeholders ({@linkcode BufferPool.placeholder}); not part of
   * `allocatedBytes` or `inUseBytes`, so that the first op to need one does not look like a leak.
   */
  placeholderBytes: number;
}

/** Reuses `GPUBuffer`s by size class. */
export class BufferPool {
  #free = new Map<number, GPUBuffer[]>();
  #sizes = new WeakMap<GPUBuffer, number>();
  #placeholders: GPUBuffer[] = [];
  #stats: PoolStats = {
    allocatedBytes: 0,
    inUseBytes: 0,
    created: 0,
    reused: 0,
    placeholderBytes: 0,
  };

  /** @param device the device that owns every buffer */
  constructor(readonly device: GPUDevice) {}

  /**
   * A storage buffer of at least `bytes` bytes.
   * @param bytes requested size
   * @param shape the tensor shape, for the error message
   * @throws Error naming the size and the device limit when it cannot exist
   */
  acquire(bytes: number, shape?: readonly number[]): GPUBuffer {
    const limit = Math.min(
      this.device.limits.maxStorageBufferBindingSize,
      this.device.limits.maxBufferSize,
    );
    if (!Number.isFinite(bytes) || bytes > limit) {
      throw new Error(
        `Cannot allocate ${bytes} bytes${shape ? ` for shape ${fmtShape(shape)}` : ""}: ` +
          `this device binds at most ${limit} bytes per storage buffer. Use a smaller batch or model.`,
      );
    }
    const cls = Math.min(sizeClass(bytes), Math.max(16, Math.ceil(limit / 4) * 4));
    const list = this.#free.get(cls);
    const reused = list?.pop();
    if (reused) {
      this.#stats.reused++;
      this.#stats.inUseBytes += cls;
      return reused;
    }
    const buffer = this.device.createBuffer({ size: cls, usage: USAGE });
    this.#sizes.set(buffer, cls);
    this.#stats.created++;
    this.#stats.allocatedBytes += cls;
    this.#stats.inUseBytes += cls;
    return buffer;
  }

  /** Returns a buffer obtained from {@linkcode acquire} to its free list. */
  release(buffer: GPUBuffer): void {
    const cls = this.#sizes.get(buffer);
    if (cls === undefined) throw new Error("Buffer was not allocated by this pool");
    this.#stats.inUseBytes -= cls;
    let list = this.#free.get(cls);
    if (!list) this.#free.set(cls, list = []);
    list.push(buffer);
  }

  /** Destroys every free buffer (after the queue no longer needs them). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const b of list) {
        this.#stats.allocatedBytes -= this.#sizes.get(b)!;
        b.destroy();
      }
    }
    this.#free.clear();
  }

  /**
   * The `index`-th placeholder: a zero-filled {@linkcode PLACEHOLDER_BYTES}-byte storage buffer
   * to bind where an entry point leaves a binding unused. Each index is its own buffer, because
   * WebGPU forbids binding one buffer twice in a dispatch when either binding is writable
   * (gpuweb #2441); the same index is the same buffer until {@linkcode BufferPool.destroy}.
   * Kernels never read or write a placeholder, so its contents do not matter.
   * @param index a non-negative integer (one per binding slot of the dispatch)
   * @returns a buffer the pool owns: never release or destroy it
   * @throws Error when `index` is not a non-negative integer
   */
  placeholder(index: number): GPUBuffer {
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`Placeholder index must be a non-negative integer, got ${index}`);
    }
    while (this.#placeholders.length <= index) {
      this.#placeholders.push(this.device.createBuffer({
        label: `placeholder ${this.#placeholders.length}`,
        size: PLACEHOLDER_BYTES,
        usage: GPUBufferUsage.STORAGE,
      }));
      this.#stats.placeholderBytes += PLACEHOLDER_BYTES;
    }
    return this.#placeholders[index];
  }

  /**
   * Destroys the placeholders and every free buffer (buffers still held by tensors go with the
   * device). For `Runtime.destroy()`; placeholders asked for later are new buffers.
   */
  destroy(): void {
    for (const b of this.#placeholders) b.destroy();
    this.#placeholders = [];
    this.#stats.placeholderBytes = 0;
    this.trim();
  }

  /** A snapshot of the memory statistics. */
  stats(): PoolStats {
    return { ...this.#stats };
  }
}

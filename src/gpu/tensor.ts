/**
 * `GpuTensor`: a GPU buffer with a shape and a dtype, the WebGPU backend's
 * {@linkcode Tensor} (src/backend.ts). Whoever creates a tensor
 * owns it and frees it with `dispose()`; the buffer returns to the runtime's
 * pool for reuse.
 *
 * @module
 */

import {
  checkShape,
  type DType,
  fmtShape,
  sizeOf,
  type Tensor,
  type TypedArrayFor,
} from "../backend.ts";
import type { Runtime } from "./runtime.ts";

export { checkShape, type DType, fmtShape, sizeOf, type TypedArrayFor };

let nextId = 1;

/** A dense, row-major tensor living in a GPU storage buffer. */
export class GpuTensor implements Tensor {
  /** Unique id, for debugging and error messages. */
  readonly id: number = nextId++;
  #buffer: GPUBuffer | null;
  /** Number of elements. */
  readonly size: number;

  /**
   * Use `rt.empty`, `rt.zeros` or `rt.upload` rather than this constructor.
   * @param rt the runtime that owns the buffer
   * @param buffer storage buffer of at least `4 * size` bytes
   * @param shape row-major dimensions
   * @param dtype element type
   * @param name optional name shown in error messages
   */
  constructor(
    readonly rt: Runtime,
    buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
    public name?: string,
  ) {
    this.#buffer = buffer;
    this.size = sizeOf(shape);
  }

  /** The underlying buffer; throws if the tensor was disposed. */
  get buffer(): GPUBuffer {
    if (!this.#buffer) throw new Error(`${this.describe()} was used after dispose()`);
    return this.#buffer;
  }

  /** The buffer (the identity {@linkcode Tensor.storage} compares); throws if disposed. */
  get storage(): GPUBuffer {
    return this.buffer;
  }

  /** Bytes of the buffer (its pool size class, at least `byteLength`). */
  get capacity(): number {
    return this.buffer.size;
  }

  /** Byte length of the data (the buffer may be larger). */
  get byteLength(): number {
    return this.size * 4;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#buffer === null;
  }

  /** "tensor #12 'fc1.weight' f32[120,400]" */
  describe(): string {
    return `tensor #${this.id}${this.name ? ` '${this.name}'` : ""} ${this.dtype}${
      fmtShape(this.shape)
    }`;
  }

  /** Returns the buffer to the pool. Using the tensor afterwards throws. Idempotent. */
  dispose(): void {
    if (!this.#buffer) return;
    this.rt.pool.release(this.#buffer);
    this.#buffer = null;
  }

  /**
   * A view of the same buffer with another shape of the same size. The view
   * does not own the buffer: dispose the original, not the view.
   */
  reshape(shape: readonly number[]): GpuTensor {
    checkShape(shape);
    if (sizeOf(shape) !== this.size) {
      throw new Error(`Cannot reshape ${this.describe()} to ${fmtShape(shape)}: sizes differ`);
    }
    return new TensorView(this, shape);
  }

  /** Copies the data back to the CPU (submits pending work). */
  read(): Promise<TypedArrayFor<DType>> {
    return this.rt.read(this);
  }
}

/** A reshaped alias of another tensor's buffer; disposing it does nothing. */
class TensorView extends GpuTensor {
  constructor(readonly base: GpuTensor, shape: readonly number[]) {
    super(base.rt, base.buffer, shape, base.dtype, base.name);
  }
  override get buffer(): GPUBuffer {
    return this.base.buffer;
  }
  override get disposed(): boolean {
    return this.base.disposed;
  }
  override dispose(): void {}
}

/**
 * `WasmTensor`: a block of WebAssembly memory with a shape and a dtype, the
 * CPU twin of the GPU `Tensor` (src/gpu/tensor.ts): the same shape rules,
 * names in error messages, `dispose()` and `read()`. Whoever creates a tensor
 * owns it and frees it.
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
import { HEAP_ALIGN } from "./heap.ts";
import type { WasmRuntime } from "./runtime.ts";

export { checkShape, type DType, fmtShape, sizeOf, type TypedArrayFor };

let nextId = 1;

/** Typed-array constructor for a dtype. */
export function arrayTypeOf(
  dtype: DType,
): Float32ArrayConstructor | Uint32ArrayConstructor | Int32ArrayConstructor {
  return dtype === "f32" ? Float32Array : dtype === "u32" ? Uint32Array : Int32Array;
}

/** A dense, row-major tensor in a {@linkcode WasmRuntime}'s memory: the Wasm backend's {@linkcode Tensor}. */
export class WasmTensor implements Tensor {
  /** Unique id, for debugging and error messages. */
  readonly id: number = nextId++;
  #ptr: number | null;
  /** Number of elements. */
  readonly size: number;

  /**
   * Use `rt.empty`, `rt.zeros` or `rt.upload` rather than this constructor.
   * @param rt the runtime whose memory holds the data
   * @param ptr byte offset of the first element in `rt.wasmMemory`
   * @param shape row-major dimensions
   * @param dtype element type (4 bytes)
   * @param name optional name shown in error messages
   */
  constructor(
    readonly rt: WasmRuntime,
    ptr: number,
    readonly shape: readonly number[],
    readonly dtype: DType = "f32",
    public name?: string,
  ) {
    this.#ptr = ptr;
    this.size = sizeOf(shape);
  }

  /** Byte offset of the data in the runtime's memory; throws if the tensor was disposed. */
  get ptr(): number {
    if (this.#ptr === null) throw new Error(`${this.describe()} was used after dispose()`);
    return this.#ptr;
  }

  /** The byte offset (the identity {@linkcode Tensor.storage} compares); throws if disposed. */
  get storage(): number {
    return this.ptr;
  }

  /** Bytes of the heap block (the data rounded up to the heap's alignment). */
  get capacity(): number {
    return Math.ceil(Math.max(this.byteLength, 1) / HEAP_ALIGN) * HEAP_ALIGN;
  }

  /** Byte length of the data. */
  get byteLength(): number {
    return this.size * 4;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#ptr === null;
  }

  /** "tensor #12 'fc1.weight' f32[120,400]", as the WebGPU tensor says it (the same error messages on both backends) */
  describe(): string {
    return `tensor #${this.id}${this.name ? ` '${this.name}'` : ""} ${this.dtype}${
      fmtShape(this.shape)
    }`;
  }

  /**
   * A typed array over the tensor's memory (no copy). It is valid until the
   * memory next grows (any allocation may grow it): take a fresh view after
   * allocating, and copy (`toArray`) what must last.
   */
  view(): TypedArrayFor<DType> {
    const Ctor = arrayTypeOf(this.dtype);
    // NOTE: a SharedArrayBuffer when the runtime has threads; the typed arrays work the same.
    const buffer = this.rt.wasmMemory.buffer as ArrayBuffer;
    return new Ctor(buffer, this.ptr, this.size) as TypedArrayFor<DType>;
  }

  /** A copy of the data. */
  toArray(): TypedArrayFor<DType> {
    return this.view().slice() as TypedArrayFor<DType>;
  }

  /** A copy of the data, as a promise (the interface of the GPU `Tensor.read`). */
  read(): Promise<TypedArrayFor<DType>> {
    return Promise.resolve(this.toArray());
  }

  /** Frees the memory. Using the tensor afterwards throws. Idempotent. */
  dispose(): void {
    if (this.#ptr === null) return;
    this.rt.heap.free(this.#ptr);
    this.#ptr = null;
  }

  /**
   * A view of the same memory with another shape of the same size. The view
   * does not own the memory: dispose the original, not the view.
   */
  reshape(shape: readonly number[]): WasmTensor {
    checkShape(shape);
    if (sizeOf(shape) !== this.size) {
      throw new Error(`Cannot reshape ${this.describe()} to ${fmtShape(shape)}: sizes differ`);
    }
    return new WasmTensorView(this, shape);
  }
}

/** A reshaped alias of another tensor's memory; disposing it does nothing. */
class WasmTensorView extends WasmTensor {
  constructor(readonly base: WasmTensor, shape: readonly number[]) {
    super(base.rt, base.ptr, shape, base.dtype, base.name);
  }
  override get ptr(): number {
    return this.base.ptr;
  }
  override get disposed(): boolean {
    return this.base.disposed;
  }
  override dispose(): void {}
}

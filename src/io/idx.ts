/**
 * The IDX file format of the MNIST distribution (LeCun, Cortes, Burges,
 * "THE MNIST DATABASE of handwritten digits", section "FILE FORMATS FOR THE
 * MNIST DATABASE"): reads `.idx*-ubyte` files, gzipped or not, into typed
 * arrays, and writes them (for tests and small fixtures).
 *
 * Layout: a 4-byte magic number `00 00 <type> <ndims>`; `ndims` dimension
 * sizes as big-endian unsigned 32-bit integers; then the elements, row-major,
 * big-endian. Type codes: `0x08` unsigned byte, `0x09` signed byte, `0x0B`
 * 16-bit integer, `0x0C` 32-bit integer, `0x0D` 32-bit float, `0x0E` 64-bit
 * float.
 *
 * Pure TypeScript over `Uint8Array` plus `DecompressionStream("gzip")`, which
 * Deno and browsers provide.
 *
 * @example
 * ```ts
 * import { encodeIdx, parseIdx } from "./idx.ts";
 *
 * const bytes = encodeIdx([2, 2], "u8", new Uint8Array([0, 64, 128, 255]));
 * const { dims, dtype, data } = await parseIdx(bytes);
 * console.log(dims, dtype, data); // [2, 2] "u8" Uint8Array [0, 64, 128, 255]
 * ```
 *
 * @module
 */

/** Element types of IDX files, by their names here. */
export type IdxDType = "u8" | "i8" | "i16" | "i32" | "f32" | "f64";

/** An IDX array: dimensions, element type and row-major elements. */
export type IdxArray =
  | { dims: number[]; dtype: "u8"; data: Uint8Array }
  | { dims: number[]; dtype: "i8"; data: Int8Array }
  | { dims: number[]; dtype: "i16"; data: Int16Array }
  | { dims: number[]; dtype: "i32"; data: Int32Array }
  | { dims: number[]; dtype: "f32"; data: Float32Array }
  | { dims: number[]; dtype: "f64"; data: Float64Array };

const TYPES = {
  u8: { code: 0x08, bytes: 1, array: Uint8Array },
  i8: { code: 0x09, bytes: 1, array: Int8Array },
  i16: { code: 0x0b, bytes: 2, array: Int16Array },
  i32: { code: 0x0c, bytes: 4, array: Int32Array },
  f32: { code: 0x0d, bytes: 4, array: Float32Array },
  f64: { code: 0x0e, bytes: 8, array: Float64Array },
} as const;

const BY_CODE = new Map<number, IdxDType>(
  (Object.keys(TYPES) as IdxDType[]).map((k) => [TYPES[k].code, k]),
);

const KNOWN_CODES = (Object.keys(TYPES) as IdxDType[])
  .map((k) => `0x${TYPES[k].code.toString(16).padStart(2, "0")} ${k}`).join(", ");

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the bytes of every `width`-byte element in place. */
function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i + width <= b.length; i += width) {
    for (let lo = i, hi = i + width - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** True when `bytes` start with the gzip magic number `1f 8b` (RFC 1952, section 2.3.1). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data with the platform's `DecompressionStream`.
 *
 * @param bytes a gzip stream
 * @returns the decompressed bytes (a new buffer)
 * @throws Error when the stream is corrupt or truncated
 */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  try {
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`gunzip: gzip data is corrupt or truncated (${(e as Error).message})`);
  }
}

/**
 * Parses an IDX file, gunzipping it first when it starts with `1f 8b`.
 *
 * @param bytes the file's bytes (`train-images-idx3-ubyte` or `...ubyte.gz`)
 * @returns dims, dtype and a new typed array of `product(dims)` elements in
 *   host byte order
 * @throws Error for bad magic, an unknown type code, a truncated header or
 *   data, or bytes left over after the data
 */
export async function parseIdx(bytes: Uint8Array): Promise<IdxArray> {
  return parseIdxSync(isGzip(bytes) ? await gunzip(bytes) : bytes);
}

/**
 * Parses an uncompressed IDX file (see {@linkcode parseIdx}, which also takes
 * gzip).
 *
 * @param bytes the file's bytes
 * @returns dims, dtype and a new typed array of the elements
 * @throws Error as {@linkcode parseIdx} does; a gzipped file is refused with a
 *   hint to use `parseIdx`
 */
export function parseIdxSync(bytes: Uint8Array): IdxArray {
  if (isGzip(bytes)) {
    throw new Error("parseIdxSync: the data is gzipped (starts with 1f 8b); use parseIdx");
  }
  if (bytes.length < 4) {
    throw new Error(
      `parseIdx: file is truncated: ${bytes.length} bytes, less than the 4-byte magic number`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(
      `parseIdx: bad magic number ${hex(bytes.subarray(0, 4))}: an IDX file starts with ` +
        `00 00 <type> <ndims>`,
    );
  }
  const dtype = BY_CODE.get(bytes[2]);
  if (dtype === undefined) {
    throw new Error(
      `parseIdx: unknown type code 0x${bytes[2].toString(16).padStart(2, "0")} in the magic ` +
        `number (known: ${KNOWN_CODES})`,
    );
  }
  const ndims = bytes[3];
  const headerLen = 4 + 4 * ndims;
  if (bytes.length < headerLen) {
    throw new Error(
      `parseIdx: file is truncated: ${ndims} dimensions need a ${headerLen}-byte header, ` +
        `file has ${bytes.length} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const { bytes: width, array } = TYPES[dtype];
  const need = count * width;
  const have = bytes.length - headerLen;
  if (have < need) {
    throw new Error(
      `parseIdx: data is truncated: dims [${dims.join(",")}] of ${dtype} need ${need} bytes, ` +
        `file has ${have} after the header`,
    );
  }
  if (have > need) {
    throw new Error(
      `parseIdx: size mismatch: dims [${dims.join(",")}] of ${dtype} need ${need} bytes, ` +
        `file has ${have} after the header (${have - need} extra)`,
    );
  }
  const copy = bytes.slice(headerLen);
  if (LITTLE_ENDIAN) swapBytes(copy, width);
  return { dims, dtype, data: new array(copy.buffer) } as IdxArray;
}

/**
 * Serializes an array as an uncompressed IDX file.
 *
 * @param dims dimension sizes (at most 255 of them, each below 2^32)
 * @param dtype element type; `data` must be its typed array (`u8` ->
 *   `Uint8Array`, `i8` -> `Int8Array`, `i16` -> `Int16Array`, `i32` ->
 *   `Int32Array`, `f32` -> `Float32Array`, `f64` -> `Float64Array`)
 * @param data `product(dims)` elements, row-major
 * @returns the file's bytes (a new buffer)
 * @throws Error for a wrong array type, bad dims or a length mismatch
 */
export function encodeIdx(
  dims: readonly number[],
  dtype: IdxDType,
  data: IdxArray["data"],
): Uint8Array {
  const t = TYPES[dtype];
  if (t === undefined) {
    throw new Error(`encodeIdx: unknown dtype ${JSON.stringify(dtype)} (known: ${KNOWN_CODES})`);
  }
  if (!(data instanceof t.array)) {
    throw new Error(
      `encodeIdx: dtype ${dtype} needs a ${t.array.name}, got ${data.constructor.name}`,
    );
  }
  if (dims.length > 255) throw new Error(`encodeIdx: ${dims.length} dims, at most 255 fit`);
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d >= 2 ** 32) {
      throw new Error(`encodeIdx: invalid dims [${dims.join(",")}]: need integers in [0, 2^32)`);
    }
    count *= d;
  }
  if (data.length !== count) {
    throw new Error(
      `encodeIdx: dims [${dims.join(",")}] hold ${count} elements, data has ${data.length}`,
    );
  }
  const headerLen = 4 + 4 * dims.length;
  const out = new Uint8Array(headerLen + data.byteLength);
  const view = new DataView(out.buffer);
  out[2] = t.code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const body = out.subarray(headerLen);
  body.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (LITTLE_ENDIAN) swapBytes(body, t.bytes);
  return out;
}

/**
 * The safetensors file format (Hugging Face): read and write tensors with
 * the byte layout of the reference implementation, so that checkpoints move
 * between regula and PyTorch (`safetensors.torch.load_file`) unchanged.
 *
 * Layout, from the format description in huggingface/safetensors
 * (README.md, "Format") and its serializer (safetensors/src/tensor.rs):
 *
 * - 8 bytes: `N`, the header length, an unsigned little-endian 64-bit integer;
 * - `N` bytes: a UTF-8 JSON object that starts with `{`, padded with spaces
 *   (0x20) to a multiple of 8 bytes so that the data after it is aligned;
 *   `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *   ...}` with offsets relative to the start of the byte buffer, plus an
 *   optional `"__metadata__"` map from strings to strings;
 * - the byte buffer: the tensors' elements, little-endian, row-major. Every
 *   byte belongs to exactly one tensor (no holes, no overlaps, nothing after
 *   the last tensor), which is what stops polyglot files.
 *
 * The writer follows the reference serializer: tensors sorted by descending
 * dtype alignment, then by name (byte order of UTF-8); `__metadata__` first;
 * compact JSON. Its output is byte-identical to `safetensors.torch.save_file`
 * for the same tensors and metadata (checked against the reference's own test
 * vectors in tests/safetensors_test.ts).
 *
 * Pure TypeScript over `Uint8Array`: runs in Deno and in browsers.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 *
 * const bytes = encodeSafetensors(
 *   { "fc1.weight": { dtype: "F32", shape: [2, 3], data: new Float32Array(6) } },
 *   { arch: "mlp" },
 * );
 * const { tensors, metadata } = decodeSafetensors(bytes);
 * console.log(tensors["fc1.weight"].shape, metadata.arch); // [2, 3] "mlp"
 * ```
 *
 * @module
 */

/** Element types regula reads and writes (safetensors dtype names). */
export type SafetensorsDType = "F32" | "F64" | "I32" | "U32" | "I64" | "U8";

/** One tensor: dtype, row-major shape, and a typed array of its elements. */
export type SafetensorsTensor =
  | { dtype: "F32"; shape: number[]; data: Float32Array }
  | { dtype: "F64"; shape: number[]; data: Float64Array }
  | { dtype: "I32"; shape: number[]; data: Int32Array }
  | { dtype: "U32"; shape: number[]; data: Uint32Array }
  | { dtype: "I64"; shape: number[]; data: BigInt64Array }
  | { dtype: "U8"; shape: number[]; data: Uint8Array };

/** Contents of a safetensors file. */
export interface SafetensorsFile {
  /** Tensors by name, in the order of their data in the file. */
  tensors: Record<string, SafetensorsTensor>;
  /** The `__metadata__` map; `{}` when the file has none. */
  metadata: Record<string, string>;
}

/** Where a tensor lives in a file, as its header says. */
export interface SafetensorsEntry {
  /** Tensor name. */
  name: string;
  /** Element type. */
  dtype: SafetensorsDType;
  /** Row-major shape. */
  shape: number[];
  /** `[begin, end)` byte offsets relative to the byte buffer. */
  dataOffsets: [number, number];
}

/** A parsed and validated header. */
export interface SafetensorsHeader {
  /** Tensors sorted by their position in the byte buffer. */
  entries: SafetensorsEntry[];
  /** The `__metadata__` map; `{}` when the file has none. */
  metadata: Record<string, string>;
  /** Offset of the byte buffer in the file: `8 + N`. */
  dataStart: number;
}

/**
 * Largest header the reference reader accepts (100 MB, `MAX_HEADER_SIZE` in
 * safetensors/src/tensor.rs); guards against parsing a huge JSON string.
 */
const MAX_HEADER_BYTES = 100_000_000;

const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F32: 4,
  F64: 8,
  I32: 4,
  U32: 4,
  I64: 8,
  U8: 1,
};

/**
 * Position in the reference `Dtype` enum, which is declared in increasing
 * alignment order; the writer puts larger ranks first.
 */
const DTYPE_RANK: Record<SafetensorsDType, number> = {
  U8: 1,
  I32: 9,
  U32: 10,
  F32: 11,
  F64: 12,
  I64: 13,
};

/** Dtypes of the format that regula does not read, for a clearer message. */
const OTHER_FORMAT_DTYPES = new Set([
  "BOOL",
  "I8",
  "I16",
  "U16",
  "F16",
  "BF16",
  "U64",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "C64",
]);

const ARRAY_TYPES = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U32: Uint32Array,
  I64: BigInt64Array,
  U8: Uint8Array,
} as const;

const SUPPORTED = Object.keys(DTYPE_BYTES).join(", ");

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isSupported(dtype: string): dtype is SafetensorsDType {
  return Object.hasOwn(DTYPE_BYTES, dtype);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Element count of a shape, or -1 if it is not a list of non-negative safe integers. */
function elementCount(shape: unknown): number {
  if (!Array.isArray(shape)) return -1;
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) return -1;
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  return n;
}

/** Compares strings by Unicode code point, which is the byte order of their UTF-8 forms. */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator](), ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next(), y = ib.next();
    if (x.done || y.done) return (x.done ? 0 : 1) - (y.done ? 0 : 1);
    const cx = x.value.codePointAt(0)!, cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}

/** Reverses the bytes of every `width`-byte element in place (big-endian hosts only). */
function swapBytes(b: Uint8Array, width: number): void {
  for (let i = 0; i + width <= b.length; i += width) {
    for (let lo = i, hi = i + width - 1; lo < hi; lo++, hi--) {
      const t = b[lo];
      b[lo] = b[hi];
      b[hi] = t;
    }
  }
}

/**
 * Serializes tensors into a safetensors file.
 *
 * @param tensors tensors by name; each `data` must be the typed array of its
 *   dtype (`F32` -> `Float32Array`, `F64` -> `Float64Array`, `I32` ->
 *   `Int32Array`, `U32` -> `Uint32Array`, `I64` -> `BigInt64Array`, `U8` ->
 *   `Uint8Array`) with exactly `product(shape)` elements
 * @param metadata optional string-to-string map stored as `__metadata__`
 * @returns the file's bytes (a new buffer owned by the caller)
 * @throws Error naming the tensor when a dtype, shape or data length is wrong
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list = Object.entries(tensors).map(([name, t]) => {
    if (name === "__metadata__") {
      throw new Error(`encodeSafetensors: "__metadata__" is reserved and cannot name a tensor`);
    }
    if (t === null || typeof t !== "object") {
      throw new Error(`encodeSafetensors: tensor "${name}" must be {dtype, shape, data}`);
    }
    const dtype = t.dtype as string;
    if (!isSupported(dtype)) {
      throw new Error(
        `encodeSafetensors: tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)} ` +
          `(supported: ${SUPPORTED})`,
      );
    }
    const n = elementCount(t.shape);
    if (n < 0) {
      throw new Error(
        `encodeSafetensors: tensor "${name}" has invalid shape ${JSON.stringify(t.shape)}: ` +
          `dimensions must be non-negative integers`,
      );
    }
    const want = ARRAY_TYPES[dtype];
    if (!(t.data instanceof want)) {
      const got = (t.data as { constructor?: { name?: string } })?.constructor?.name ??
        typeof t.data;
      throw new Error(
        `encodeSafetensors: tensor "${name}" has dtype ${dtype}, so data must be a ${want.name}, ` +
          `got ${got}`,
      );
    }
    if (t.data.length !== n) {
      throw new Error(
        `encodeSafetensors: tensor "${name}" has shape ${fmtShape(t.shape)} (${n} elements) ` +
          `but its data has ${t.data.length} elements`,
      );
    }
    return { name, dtype, shape: t.shape, data: t.data };
  });
  list.sort((a, b) =>
    DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || compareCodePoints(a.name, b.name)
  );

  // The header is assembled by hand rather than with JSON.stringify of an
  // object: JS objects put integer-like keys ("0", "1") first, which would
  // change the key order relative to the reference writer.
  const parts: string[] = [];
  if (metadata !== undefined) {
    const entries = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== "string") {
        throw new Error(
          `encodeSafetensors: metadata "${k}" must be a string, got ${typeof v} ` +
            `(JSON.stringify structured values first)`,
        );
      }
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${entries.join(",")}}`);
  }
  let offset = 0;
  for (const t of list) {
    const nbytes = t.data.length * DTYPE_BYTES[t.dtype];
    parts.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(",")}],` +
        `"data_offsets":[${offset},${offset + nbytes}]}`,
    );
    offset += nbytes;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const dataStart = 8 + headerLen;
  const out = new Uint8Array(dataStart + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLen, true);
  view.setUint32(4, Math.floor(headerLen / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, dataStart);
  let at = dataStart;
  for (const t of list) {
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, at);
    if (!LITTLE_ENDIAN) swapBytes(out.subarray(at, at + src.length), DTYPE_BYTES[t.dtype]);
    at += src.length;
  }
  return out;
}

/**
 * Parses and validates the header of a safetensors file without copying any
 * tensor data (for checking names and shapes before loading).
 *
 * @param bytes the whole file
 * @returns entries sorted by data offset, the metadata, and where the data starts
 * @throws Error saying what is wrong (and which tensor) for a truncated file, a
 *   header length past the end, bad UTF-8 or JSON, an unknown or unsupported
 *   dtype, a shape that does not match its byte range, offsets out of range,
 *   overlapping, or leaving bytes of the buffer uncovered
 */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  const fail = (msg: string): never => {
    throw new Error(`decodeSafetensors: ${msg}`);
  };
  if (bytes.length < 8) {
    fail(`file is truncated: ${bytes.length} bytes, less than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true), hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n > MAX_HEADER_BYTES) {
    fail(
      `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit ` +
        `(the file is corrupt or not a safetensors file)`,
    );
  }
  const dataStart = 8 + n;
  if (dataStart > bytes.length) {
    fail(
      `header length ${n} runs past the end of the file (${bytes.length} bytes, ` +
        `room for ${bytes.length - 8}): the file is truncated or not a safetensors file`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    return fail("header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    fail(`header must start with "{", got ${JSON.stringify(text.slice(0, 16))}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("header must be a JSON object");
  }

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (info === null || typeof info !== "object" || Array.isArray(info)) {
        fail(`"__metadata__" must be an object mapping strings to strings`);
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(`"__metadata__" must map strings to strings, but "${k}" is ${JSON.stringify(v)}`);
        }
      }
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    const where = `tensor "${name}"`;
    if (info === null || typeof info !== "object" || Array.isArray(info)) {
      fail(`${where} must be an object with dtype, shape and data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== "string") fail(`${where} has no "dtype" string`);
    const dt = dtype as string;
    if (!isSupported(dt)) {
      fail(
        OTHER_FORMAT_DTYPES.has(dt)
          ? `${where} has dtype ${dt}, which regula does not read (supported: ${SUPPORTED})`
          : `${where} has unknown dtype ${JSON.stringify(dt)} (supported: ${SUPPORTED})`,
      );
    }
    const count = elementCount(shape);
    if (count < 0) {
      fail(`${where} has invalid shape ${JSON.stringify(shape)}: need non-negative integers`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`${where} has invalid data_offsets ${JSON.stringify(offsets)}: need [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${where} has data_offsets [${begin},${end}] with end before begin`);
    const want = count * DTYPE_BYTES[dt as SafetensorsDType];
    if (end - begin !== want) {
      fail(
        `${where}: shape ${fmtShape(shape as number[])} of ${dt} needs ${want} bytes, ` +
          `but data_offsets [${begin},${end}] span ${end - begin}`,
      );
    }
    entries.push({
      name,
      dtype: dt as SafetensorsDType,
      shape: [...(shape as number[])],
      dataOffsets: [begin, end],
    });
  }

  const bufferLen = bytes.length - dataStart;
  entries.sort((a, b) =>
    a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]
  );
  let covered = 0;
  let prev: SafetensorsEntry | null = null;
  for (const e of entries) {
    const [begin, end] = e.dataOffsets;
    if (end > bufferLen) {
      fail(
        `tensor "${e.name}" has data_offsets [${begin},${end}] past the end of the ` +
          `${bufferLen}-byte data buffer (file truncated?)`,
      );
    }
    if (begin < covered) {
      fail(
        `tensor "${e.name}" (bytes ${begin}..${end}) overlaps tensor "${prev!.name}" ` +
          `(bytes ${prev!.dataOffsets[0]}..${prev!.dataOffsets[1]})`,
      );
    }
    if (begin > covered) {
      fail(
        `bytes ${covered}..${begin} of the data buffer belong to no tensor ` +
          `(hole before tensor "${e.name}")`,
      );
    }
    covered = end;
    prev = e;
  }
  if (covered !== bufferLen) {
    fail(
      `bytes ${covered}..${bufferLen} of the data buffer belong to no tensor ` +
        `(${bufferLen - covered} trailing bytes after the last tensor)`,
    );
  }
  return { entries, metadata, dataStart };
}

/**
 * Parses a safetensors file. Tensor data is copied into new, aligned typed
 * arrays, so the result does not alias `bytes`.
 *
 * @param bytes the whole file
 * @returns tensors by name (`F32` -> `Float32Array`, `F64` -> `Float64Array`,
 *   `I32` -> `Int32Array`, `U32` -> `Uint32Array`, `I64` -> `BigInt64Array`,
 *   `U8` -> `Uint8Array`) and the `__metadata__` map
 * @throws Error as {@linkcode readSafetensorsHeader} does
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsFile {
  const { entries, metadata, dataStart } = readSafetensorsHeader(bytes);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const [begin, end] = e.dataOffsets;
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    if (!LITTLE_ENDIAN) swapBytes(copy, DTYPE_BYTES[e.dtype]);
    const data = new ARRAY_TYPES[e.dtype](copy.buffer);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data } as SafetensorsTensor;
  }
  return { tensors, metadata };
}

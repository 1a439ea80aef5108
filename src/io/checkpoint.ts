/**
 * Checkpoints: a model's parameters and buffers as a safetensors file whose
 * tensor names, shapes and layouts are the PyTorch `state_dict` of the
 * equivalent `torch.nn` model (conv `OIHW`, linear `[out, in]`, BatchNorm
 * `num_batches_tracked` as an I64 scalar), plus JSON metadata in
 * `__metadata__`: the model spec, data, regularizers, optimizer, history,
 * seed and library version. `safetensors.torch.load_file` followed by
 * `model.load_state_dict(..., strict=True)` reads it in PyTorch.
 *
 * Metadata layout: `__metadata__` maps strings to strings, so each top-level
 * key holds its value as JSON (`"model": "{\"kind\":\"lenet\"}"`), next to
 * `"format": "pt"` (the Hugging Face convention for torch tensors) and
 * `"regula_checkpoint": "1"`.
 *
 * Loading checks every name, shape and dtype before writing anything, and
 * reports all mismatches at once: "Checkpoint conv1.weight has shape
 * [6,1,5,5], model expects [6,3,5,5]; missing: fc3.bias".
 *
 * Pure TypeScript over `Uint8Array` and GPU tensors: no file system here
 * (cli/fs.ts writes files).
 *
 * @example
 * ```ts
 * const bytes = await encodeCheckpoint(model, { model: spec, seed: 0 });
 * const { tensors, metadata } = decodeCheckpoint(bytes);
 * loadStateDict(otherModel, tensors);
 * ```
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };
import type { Param } from "../layers/layer.ts";
import type { Sequential } from "../layers/sequential.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsDType,
  type SafetensorsTensor,
} from "./safetensors.ts";

/** The library version written into every checkpoint. */
export const LIBRARY_VERSION: string = denoJson.version;

/** Version of the checkpoint layout (`__metadata__["regula_checkpoint"]`). */
export const CHECKPOINT_FORMAT_VERSION = "1";

/** What a checkpoint records besides the tensors; every field is JSON. */
export interface CheckpointMetadata {
  /** `regula <version>` that wrote it (filled in by {@linkcode encodeCheckpoint}). */
  library?: string;
  /** The model spec (src/models `ModelSpec`), enough to rebuild the model. */
  model?: unknown;
  /** The data: name, path, split, sizes. */
  data?: unknown;
  /** Regularizers as `{name, options}`. */
  regularizers?: unknown;
  /**
   * Adversarial training (src/train/adversarial.ts, defaults filled in: attack, eps, steps,
   * alpha, randomStart, ratio), or null for none.
   */
  adversarial?: unknown;
  /** Optimizer algorithm and hyperparameters, schedule, epochs, batch size. */
  optimizer?: unknown;
  /** Per-epoch history (src/train `EpochRecord[]`) and how training ended. */
  history?: unknown;
  /** Run seed. */
  seed?: number;
  /** Any other JSON value. */
  [key: string]: unknown;
}

/** A decoded checkpoint. */
export interface Checkpoint {
  /** State-dict tensors by name. */
  tensors: Record<string, SafetensorsTensor>;
  /** The metadata, each key parsed from JSON. */
  metadata: CheckpointMetadata;
}

const RESERVED = new Set(["format", "regula_checkpoint"]);

function isNumBatchesTracked(p: Param): boolean {
  return p.name === "num_batches_tracked" || p.name.endsWith(".num_batches_tracked");
}

/** The dtype and shape a parameter has in the PyTorch state_dict. */
function stateDictForm(p: Param): { dtype: SafetensorsDType; shape: number[] } {
  // BatchNorm keeps the counter as i32 [1] on the GPU; torch has an int64 scalar.
  if (isNumBatchesTracked(p)) return { dtype: "I64", shape: [] };
  const dtype: SafetensorsDType = p.value.dtype === "f32"
    ? "F32"
    : p.value.dtype === "i32"
    ? "I32"
    : "U32";
  return { dtype, shape: [...p.value.shape] };
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/**
 * Reads a model's parameters and buffers back from the GPU as state-dict tensors.
 * @param model the model (names are its params' PyTorch names)
 * @returns tensors by name (new arrays, owned by the caller)
 */
export async function stateDict(model: Sequential): Promise<Record<string, SafetensorsTensor>> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const p of model.params()) {
    const data = await p.value.read();
    const { dtype, shape } = stateDictForm(p);
    if (dtype === "I64") {
      out[p.name] = { dtype, shape, data: BigInt64Array.from(data, (v) => BigInt(v)) };
    } else out[p.name] = { dtype, shape, data } as SafetensorsTensor;
  }
  return out;
}

/**
 * Serializes a model and its metadata into a safetensors checkpoint.
 * @param model the model to save
 * @param metadata JSON-serializable metadata; `library` is set to this library's version
 * @returns the file's bytes
 * @throws Error if a metadata value is not JSON-serializable
 */
export async function encodeCheckpoint(
  model: Sequential,
  metadata: CheckpointMetadata = {},
): Promise<Uint8Array> {
  const meta: Record<string, string> = {
    format: "pt",
    regula_checkpoint: CHECKPOINT_FORMAT_VERSION,
  };
  for (const [k, v] of Object.entries({ ...metadata, library: `regula ${LIBRARY_VERSION}` })) {
    if (v === undefined) continue;
    if (RESERVED.has(k)) throw new Error(`encodeCheckpoint: metadata key '${k}' is reserved`);
    const text = JSON.stringify(
      v,
      (_k, x) => typeof x === "number" && !Number.isFinite(x) ? String(x) : x,
    );
    if (text === undefined) {
      throw new Error(`encodeCheckpoint: metadata '${k}' is not JSON-serializable`);
    }
    meta[k] = text;
  }
  return encodeSafetensors(await stateDict(model), meta);
}

/**
 * Parses a checkpoint (any safetensors file; metadata values that are not JSON stay strings).
 * @param bytes the file
 * @returns tensors and metadata
 * @throws Error saying what is wrong with a corrupt or truncated file
 */
export function decodeCheckpoint(bytes: Uint8Array): Checkpoint {
  let file;
  try {
    file = decodeSafetensors(bytes);
  } catch (e) {
    throw new Error(
      `Not a valid checkpoint: ${(e as Error).message.replace(/^decodeSafetensors: /, "")}`,
    );
  }
  const metadata: CheckpointMetadata = {};
  for (const [k, v] of Object.entries(file.metadata)) {
    if (RESERVED.has(k)) continue;
    try {
      metadata[k] = JSON.parse(v);
    } catch {
      metadata[k] = v;
    }
  }
  return { tensors: file.tensors, metadata };
}

/**
 * Lists every difference between a model and state-dict tensors (names, shapes, dtypes).
 * @param model the model
 * @param tensors state-dict tensors by name
 * @returns one message per problem, empty when they match
 */
export function checkStateDict(
  model: Sequential,
  tensors: Record<string, SafetensorsTensor>,
): string[] {
  const problems: string[] = [];
  const missing: string[] = [];
  const names = new Set<string>();
  for (const p of model.params()) {
    names.add(p.name);
    const t = tensors[p.name];
    if (!Object.hasOwn(tensors, p.name)) {
      missing.push(p.name);
      continue;
    }
    const want = stateDictForm(p);
    if (want.dtype === "I64") {
      // Accept the torch scalar, or one element of any integer type.
      const n = t.data.length;
      if (!(t.dtype === "I64" || t.dtype === "I32" || t.dtype === "U32") || n !== 1) {
        problems.push(
          `Checkpoint ${p.name} has ${t.dtype}${fmtShape(t.shape)}, model expects I64[] ` +
            `(a batch counter)`,
        );
      }
      continue;
    }
    if (fmtShape(t.shape) !== fmtShape(want.shape)) {
      problems.push(
        `Checkpoint ${p.name} has shape ${fmtShape(t.shape)}, model expects ` +
          fmtShape(want.shape),
      );
    } else if (t.dtype !== want.dtype) {
      problems.push(`Checkpoint ${p.name} has dtype ${t.dtype}, model expects ${want.dtype}`);
    }
  }
  if (missing.length) problems.push(`missing from the checkpoint: ${missing.join(", ")}`);
  const extra = Object.keys(tensors).filter((k) => !names.has(k));
  if (extra.length) problems.push(`not in the model: ${extra.join(", ")}`);
  return problems;
}

/**
 * Copies state-dict tensors into a model's parameters and buffers (PyTorch's
 * `load_state_dict(strict=True)`): every name, shape and dtype is checked first, and nothing
 * is written unless all match.
 * @param model the model to load into
 * @param tensors state-dict tensors by name (e.g. `decodeCheckpoint(bytes).tensors`)
 * @throws Error listing every mismatch, e.g. "Checkpoint conv1.weight has shape [6,1,5,5],
 *   model expects [6,3,5,5]; missing from the checkpoint: fc3.bias"
 */
export function loadStateDict(
  model: Sequential,
  tensors: Record<string, SafetensorsTensor>,
): void {
  const problems = checkStateDict(model, tensors);
  if (problems.length) {
    throw new Error(`${problems.join("; ")} (checkpoint does not fit the model)`);
  }
  for (const p of model.params()) {
    const t = tensors[p.name];
    if (isNumBatchesTracked(p)) {
      model.rt.write(p.value, new Int32Array([Number(t.data[0])]));
    } else {
      model.rt.write(p.value, t.data as Float32Array | Int32Array | Uint32Array);
    }
  }
}

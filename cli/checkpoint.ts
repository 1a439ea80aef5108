/**
 * Reading a checkpoint for `eval`, `attack` and `report`: the file, the model it holds and the
 * dataset it goes with, from its metadata or from the command line.
 *
 * A checkpoint written here records a complete model spec (src/models `ModelSpec`) and its data.
 * A `state_dict` saved elsewhere (PyTorch's `safetensors.torch.save_file(model.state_dict(),
 * path, metadata)`) may instead name its architecture in plain strings, since safetensors
 * metadata values are strings: `{"model": "lenet", "activation": "tanh"}`, or record nothing.
 * `--model NAME|SPEC|spec.json` (with `--activation`, `--dropout`, `--normalize` for a name) then
 * says or overrides what it is. A named model is fitted to the data as `train` fits it (input
 * shape and classes from the dataset; an MLP's hidden widths and biases from the tensors), and
 * the spec used is printed on stderr. Without a recorded dataset, a model built for one (LeNet:
 * MNIST) uses it, with a note on stderr; any other needs `--data`.
 *
 * @module
 */

import { didYouMean, type FlagSpec, type ParsedArgs, UsageError } from "./args.ts";
import { FileError, readFileOrFail } from "./fs.ts";
import { DATASET_NAMES } from "./data.ts";
import type { Backend } from "../src/backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import {
  type Checkpoint,
  checkStateDict,
  decodeCheckpoint,
  loadStateDict,
} from "../src/io/checkpoint.ts";
import type { SafetensorsTensor } from "../src/io/safetensors.ts";
import {
  buildModel,
  type MlpActivation,
  MODEL_NAMES,
  type ModelSpec,
  modelSpecFromName,
  type ModelSpecOptions,
  type NormalizeSpec,
  parseModelSpec,
} from "../src/models/mod.ts";

/** The flags that name or adjust a checkpoint's architecture (eval, attack, report). */
export const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: {
    type: "string",
    metavar: "name|spec.json",
    help: `Architecture of the checkpoint, overriding its metadata: ${
      MODEL_NAMES.join(", ")
    }, a JSON model spec, or a .json file holding one (for a state_dict saved elsewhere).`,
  },
  activation: {
    type: "string",
    help: "With a model name: its activation (lenet: tanh, relu; mlp: also sigmoid, " +
      "leaky_relu, softplus).",
  },
  dropout: {
    type: "number",
    help: "With a model name: its dropout probability (mlp, lenet, ddnet).",
  },
  normalize: {
    type: "string",
    metavar: "mean/std|none",
    help: "With a model name: the input normalization inside the model, per-channel " +
      "MEAN/STD lists (0.1307/0.3081) or none (default: the name's).",
  },
};

/** The option a name takes, as given in metadata or flags (validated). */
interface NameOptions {
  activation?: MlpActivation;
  dropout?: number;
  normalize?: NormalizeSpec | null;
}

/** What a checkpoint's model is, before the data are known. */
export type ModelRequest =
  | { spec: ModelSpec; source: string }
  | { name: typeof MODEL_NAMES[number]; options: NameOptions; source: string };

const OPTION_KEYS = ["activation", "dropout", "normalize"] as const;

/** Model names as a PyTorch user may spell them ("LeNet", "ResNet-18", "lenet5"). */
const NAME_FORMS: Record<string, typeof MODEL_NAMES[number]> = {
  mlp: "mlp",
  lenet: "lenet",
  lenet5: "lenet",
  lenetrelu: "lenet-relu",
  lenet5relu: "lenet-relu",
  ddnet: "ddnet",
  resnet18: "resnet18",
};

const ACTIVATIONS: readonly MlpActivation[] = ["relu", "tanh", "sigmoid", "leaky_relu", "softplus"];

const squash = (s: string) => s.trim().toLowerCase().replace(/[\s_-]/g, "");

function modelName(text: string, where: string): typeof MODEL_NAMES[number] {
  const name = NAME_FORMS[squash(text)];
  if (name) return name;
  throw new UsageError(
    `${where}: unknown model '${text}'${didYouMean(text, MODEL_NAMES)}; models: ${
      MODEL_NAMES.join(", ")
    }, a JSON model spec or a .json file holding one`,
  );
}

function activationOf(v: unknown, where: string): MlpActivation {
  const a = typeof v === "string"
    ? ACTIVATIONS.find((k) =>
      squash(k) === squash(v.replace(/^(torch\.)?nn\./, "").replace(/\(\)$/, ""))
    )
    : undefined;
  if (!a) {
    throw new UsageError(
      `${where}: unknown activation ${JSON.stringify(v)}; activations: ${ACTIVATIONS.join(", ")}`,
    );
  }
  return a;
}

function dropoutOf(v: unknown, where: string): number {
  const p = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  if (typeof p !== "number" || !(p >= 0 && p < 1)) {
    throw new UsageError(`${where}: dropout must be a number in [0, 1), got ${JSON.stringify(v)}`);
  }
  return p;
}

function numbers(text: string): number[] | null {
  const parts = text.split(",").map((s) => s.trim());
  const vals = parts.map(Number);
  return parts.every((s) => s !== "") && vals.every(Number.isFinite) ? vals : null;
}

function normalizeOf(v: unknown, where: string): NormalizeSpec | null {
  if (v === null || v === false || (typeof v === "string" && squash(v) === "none")) return null;
  if (typeof v === "string") {
    const [m, s, rest] = v.split("/");
    const mean = m === undefined ? null : numbers(m), std = s === undefined ? null : numbers(s);
    if (mean && std && rest === undefined) return { mean, std };
  } else if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    return v as NormalizeSpec; // checked by parseModelSpec once the channels are known
  }
  throw new UsageError(
    `${where}: normalize must be MEAN/STD (comma lists per channel, e.g. 0.1307/0.3081) or ` +
      `none, got ${JSON.stringify(v)}`,
  );
}

/** The options of a name found in `from`; `where(key)` names their origin in messages. */
function optionsOf(from: Record<string, unknown>, where: (key: string) => string): NameOptions {
  const o: NameOptions = {};
  if (from.activation !== undefined) {
    o.activation = activationOf(from.activation, where("activation"));
  }
  if (from.dropout !== undefined) o.dropout = dropoutOf(from.dropout, where("dropout"));
  if (from.normalize !== undefined) o.normalize = normalizeOf(from.normalize, where("normalize"));
  return o;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A model given as a name, a spec object, or a metadata-like object `{model, activation}`. */
function interpret(
  v: unknown,
  context: Record<string, unknown>,
  at: { where: string; hint: string; source: string },
): ModelRequest {
  const { where, hint, source } = at;
  if (typeof v === "string") {
    return { name: modelName(v, where), options: optionsOf(context, () => where), source };
  }
  if (isObject(v) && v.kind !== undefined) {
    try {
      return { spec: parseModelSpec(v), source };
    } catch (e) {
      throw new UsageError(`${where}: invalid model spec: ${(e as Error).message}${hint}`);
    }
  }
  if (isObject(v) && typeof v.model === "string") return interpret(v.model, v, at);
  throw new UsageError(
    `${where}: the model must be a name (${MODEL_NAMES.join(", ")}) or a JSON model spec ` +
      `with "kind", got ${JSON.stringify(v)}${hint}`,
  );
}

/**
 * Reads and decodes a checkpoint.
 * @throws FileError when it is missing or unreadable, UsageError when it is not a checkpoint
 */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  try {
    return decodeCheckpoint(await readFileOrFail(path, "checkpoint"));
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}

/**
 * What model a checkpoint holds: `--model` (a name, inline JSON, or a .json file) over the
 * metadata's `model`; for a name, the options from the metadata (when the model comes from it or
 * the metadata names none) and then from the flags.
 * @param path the checkpoint, for messages
 * @param ck the decoded checkpoint
 * @param flags the command's flags (`model`, `activation`, `dropout`, `normalize`)
 * @returns a complete spec, or a name and options to fit to the data
 * @throws UsageError or FileError naming what is wrong and what to give
 */
export async function modelRequest(
  path: string,
  ck: Checkpoint,
  flags: ParsedArgs["flags"],
): Promise<ModelRequest> {
  const meta = ck.metadata as Record<string, unknown>;
  const hint = "; give --model NAME or --model spec.json";
  let req: ModelRequest;
  const given = flags.model as string | undefined;
  if (given !== undefined) {
    let v: unknown = given;
    if (given.trim().startsWith("{") || given.endsWith(".json")) {
      const inline = given.trim().startsWith("{");
      const text = inline
        ? given
        : new TextDecoder().decode(await readFileOrFail(given, "model spec file"));
      try {
        v = JSON.parse(text);
      } catch (e) {
        throw new UsageError(
          `--model ${inline ? "" : `${given}: `}not valid JSON: ${(e as Error).message}`,
        );
      }
    }
    // The metadata's options fill a name given here only when the metadata names no model.
    req = interpret(v, meta.model === undefined ? meta : {}, {
      where: "--model",
      hint: "",
      source: "from --model",
    });
  } else if (meta.model !== undefined) {
    req = interpret(meta.model, meta, {
      where: `${path}: the checkpoint's metadata`,
      hint,
      source: "from the checkpoint's metadata",
    });
  } else {
    throw new UsageError(
      `${path}: the checkpoint's metadata names no model; give --model NAME (${
        MODEL_NAMES.join(", ")
      }) or --model spec.json`,
    );
  }
  const fromFlags = optionsOf(
    Object.fromEntries(OPTION_KEYS.map((k) => [k, flags[k]])),
    (k) => `Flag '--${k}'`,
  );
  const named = OPTION_KEYS.filter((k) => flags[k] !== undefined);
  if ("spec" in req) {
    if (named.length) {
      throw new UsageError(
        `${named.map((k) => `--${k}`).join(", ")} adjust a model name; give them inside the ` +
          `JSON model spec instead`,
      );
    }
    return req;
  }
  return { ...req, options: { ...req.options, ...fromFlags } };
}

/**
 * The dataset of a checkpoint: `--data`, else the one in its metadata (`{"name": ...}` or a plain
 * string, under `data` or `dataset`; torchvision's spellings such as "FashionMNIST" read as
 * regula's names), else the one a LeNet (1x28x28, 10 classes) is built for,
 * MNIST, said on stderr.
 * @throws UsageError telling to give --data when none is known
 */
export function datasetName(
  path: string,
  ck: Checkpoint,
  req: ModelRequest,
  flags: ParsedArgs["flags"],
  note: (line: string) => void,
): string {
  if (typeof flags.data === "string") return flags.data;
  const meta = ck.metadata as Record<string, unknown>;
  for (const key of ["data", "dataset"]) {
    const d = meta[key];
    const name = typeof d === "string" ? d : isObject(d) ? d.name : undefined;
    // torchvision's class names (MNIST, FashionMNIST, CIFAR10) as regula's (mnist, ...)
    if (typeof name === "string" && name !== "") {
      return DATASET_NAMES.find((n) => squash(n) === squash(name)) ?? name;
    }
  }
  const lenet = "spec" in req
    ? req.spec.kind === "lenet" && req.spec.inChannels === 1 && req.spec.inputSize === 28 &&
      req.spec.classes === 10
    : req.name === "lenet" || req.name === "lenet-relu";
  if (lenet) {
    note(
      `note: ${path}: no dataset recorded; using mnist, the data LeNet is built for ` +
        `(give --data for another)`,
    );
    return "mnist";
  }
  throw new UsageError(
    `${path}: no dataset recorded in the checkpoint; give --data (${DATASET_NAMES.join(", ")})`,
  );
}

/**
 * A PyTorch `state_dict` in the names regula's models use, with what was changed (for a note):
 * - a prefix every key shares, from `nn.DataParallel` (`module.`) or `torch.compile`
 *   (`_orig_mod.`), is dropped;
 * - F64 tensors (a model saved after `.double()`) become F32;
 * - for an MLP, the keys of an `nn.Sequential` of Linear layers (`0.weight`, `2.weight`, ...: the
 *   indices of the Linears among the activations) or of a bare `nn.Linear` (`weight`, `bias`)
 *   become `fc1.weight`, `fc2.weight`, ... in index order.
 * @param tensors the checkpoint's tensors (not modified)
 * @param kind the architecture they are for
 * @returns the tensors to load and one line per change
 */
export function torchStateDict(
  tensors: Record<string, SafetensorsTensor>,
  kind: ModelSpec["kind"],
): { tensors: Record<string, SafetensorsTensor>; changes: string[] } {
  let t = { ...tensors };
  const changes: string[] = [];
  const keys = Object.keys(t);
  for (const prefix of ["module.", "_orig_mod."]) {
    if (keys.length && keys.every((k) => k.startsWith(prefix))) {
      t = Object.fromEntries(Object.entries(t).map(([k, v]) => [k.slice(prefix.length), v]));
      changes.push(`dropped the prefix '${prefix}' of every tensor name`);
    }
  }
  const f64 = Object.keys(t).filter((k) => t[k].dtype === "F64");
  for (const k of f64) {
    t[k] = { dtype: "F32", shape: t[k].shape, data: Float32Array.from(t[k].data as Float64Array) };
  }
  if (f64.length) changes.push(`converted ${f64.length} F64 tensor(s) to F32`);
  if (kind === "mlp" && !Object.hasOwn(t, "fc1.weight")) {
    const names = Object.keys(t);
    const bare = names.every((k) => k === "weight" || k === "bias");
    const indexed = names.map((k) => /^(\d+)\.(weight|bias)$/.exec(k));
    if (names.length && (bare || indexed.every((m) => m !== null))) {
      const order = bare
        ? [-1]
        : [...new Set(indexed.map((m) => Number(m![1])))].sort((a, b) => a - b);
      const renamed: Record<string, SafetensorsTensor> = {};
      for (const k of names) {
        const m = /^(?:(\d+)\.)?(weight|bias)$/.exec(k)!;
        const i = bare ? 0 : order.indexOf(Number(m[1]));
        renamed[`fc${i + 1}.${m[2]}`] = t[k];
      }
      t = renamed;
      changes.push(
        bare
          ? "read 'weight'/'bias' (an nn.Linear) as fc1"
          : `read the nn.Sequential indices ${order.join(", ")} as fc1..fc${order.length}`,
      );
    }
  }
  return { tensors: t, changes };
}

/** An MLP's hidden widths and bias from its `fc1.weight`, `fc2.weight`, ... tensors. */
function mlpShapeFrom(
  tensors: Record<string, SafetensorsTensor>,
): { hidden: number[]; bias: boolean } | undefined {
  const outs: number[] = [];
  for (let i = 1; tensors[`fc${i}.weight`]?.shape.length === 2; i++) {
    outs.push(tensors[`fc${i}.weight`].shape[0]);
  }
  if (!outs.length) return undefined;
  return { hidden: outs.slice(0, -1), bias: Object.hasOwn(tensors, "fc1.bias") };
}

/**
 * The complete spec of a requested model for a dataset: a spec as given; a name fitted to the
 * data (input shape and classes; an MLP's hidden widths and bias from the tensors) with its
 * options.
 * @throws UsageError for options the name does not take or data it cannot fit
 */
export function fitModelSpec(
  req: ModelRequest,
  data: { sampleShape: readonly number[]; classes: number },
  tensors: Record<string, SafetensorsTensor>,
): ModelSpec {
  if ("spec" in req) return req.spec;
  const { name, options } = req;
  const where = `Model '${name}' (${req.source})`;
  const opts: ModelSpecOptions = { classes: data.classes };
  if (options.dropout !== undefined) {
    if (name === "resnet18" && options.dropout > 0) {
      throw new UsageError(`${where} has no dropout layers; dropout applies to mlp, lenet, ddnet`);
    }
    if (name !== "resnet18") opts.dropout = options.dropout;
  }
  if (options.activation !== undefined) {
    if (name === "ddnet" || name === "resnet18") {
      if (options.activation !== "relu") {
        throw new UsageError(`${where} uses relu only; activation applies to mlp and lenet`);
      }
    } else opts.activation = options.activation;
  }
  if (options.normalize !== undefined) opts.normalize = options.normalize;
  const shape = [...data.sampleShape];
  try {
    if (name === "mlp") {
      Object.assign(opts, mlpShapeFrom(torchStateDict(tensors, "mlp").tensors) ?? {}, {
        inputShape: shape,
        inputs: shape.reduce((a, b) => a * b, 1),
      });
    } else {
      if (shape.length !== 3 || shape[1] !== shape[2]) {
        throw new Error(`the data have samples of [${shape}], ${name} needs square [C, H, H]`);
      }
      Object.assign(opts, { inChannels: shape[0], inputSize: shape[1] });
    }
    return modelSpecFromName(name, opts);
  } catch (e) {
    throw new UsageError(`${where}: ${(e as Error).message.split("\n").join(" ")}`);
  }
}

/** A shorter form of a `checkStateDict` problem: at most four names of a list. */
function shortProblem(p: string): string {
  const m = /^(missing from the checkpoint|not in the model): (.*)$/.exec(p);
  if (!m) return p;
  const names = m[2].split(", ");
  return `${m[1]}: ${names.slice(0, 4).join(", ")}${
    names.length > 4 ? ` and ${names.length - 4} more` : ""
  }`;
}

/**
 * Builds the model of a checkpoint for a dataset and loads its tensors (PyTorch's
 * `load_state_dict(strict=True)`, after {@linkcode torchStateDict}); says on stderr which spec a
 * name became and what was renamed.
 * @returns the model; the caller disposes it
 * @throws UsageError naming the first tensor that does not fit (with both shapes), how many
 *   more do not, and what to give instead
 */
export function loadCheckpointModel(
  rt: Backend,
  path: string,
  ck: Checkpoint,
  req: ModelRequest,
  data: { sampleShape: readonly number[]; classes: number },
  note: (line: string) => void,
): Sequential {
  const spec = fitModelSpec(req, data, ck.tensors);
  if (!("spec" in req)) {
    note(`note: ${path}: model '${req.name}' ${req.source} is ${JSON.stringify(spec)}`);
  }
  const { tensors, changes } = torchStateDict(ck.tensors, spec.kind);
  for (const c of changes) note(`note: ${path}: ${c}`);
  const model = buildModel(rt, spec, { seed: 0 });
  const problems = checkStateDict(model, tensors);
  if (problems.length) {
    model.dispose();
    // Names that differ show on both sides: say both, so a renaming is visible at once.
    const shown = problems[0].startsWith("missing") && problems.length === 2 &&
        problems[1].startsWith("not in the model")
      ? problems
      : problems.slice(0, 1);
    const rest = problems.length - shown.length;
    const more = rest > 0 ? ` (and ${rest} more mismatch(es))` : "";
    const what = "spec" in req ? "" : `'${req.name}' `;
    const renamed = shown.length === 2
      ? "; rename the state_dict keys to regula's (tools/torch_models.py builds the torch twin)"
      : "";
    throw new UsageError(
      `${path}: ${shown.map(shortProblem).join("; ")}${more}: the tensors do not fit the model ` +
        `${what}${req.source}; give the right --model NAME (${MODEL_NAMES.join(", ")}, with ` +
        `--activation/--dropout) or --model spec.json${renamed}`,
    );
  }
  loadStateDict(model, tensors);
  return model;
}

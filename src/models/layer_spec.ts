/**
 * Layer lists as JSON, for the `"sequential"` {@linkcode ModelSpec}: each entry names a layer
 * type and its fields in tools/torch_bridge.py's format (the PyTorch twin is built from the same
 * JSON), e.g.
 *
 * ```json
 * {"type": "conv2d", "name": "conv1", "in": 1, "out": 6, "kernel": 5, "weight_norm": true}
 * {"type": "groupnorm", "name": "gn1", "groups": 2, "channels": 6}
 * {"type": "layernorm", "name": "ln1", "shape": [120]}
 * ```
 *
 * {@linkcode parseLayerSpecs} checks every field and fills in every default (and the name:
 * the layer's index, as `torch.nn.Sequential` names its children), so a parsed list is complete.
 *
 * @module
 */

type FieldKind = "posint" | "nonnegint" | "posnum" | "num" | "bool" | "posints" | "nums";

/** A field: its kind and default (undefined: required). */
type Field = [FieldKind, unknown?];

const LAYER_FIELDS: Record<string, Record<string, Field>> = {
  linear: { in: ["posint"], out: ["posint"], bias: ["bool", true], weight_norm: ["bool", false] },
  conv2d: {
    in: ["posint"],
    out: ["posint"],
    kernel: ["posint"],
    stride: ["posint", 1],
    padding: ["nonnegint", 0],
    bias: ["bool", true],
    weight_norm: ["bool", false],
  },
  maxpool2d: { kernel: ["posint"], stride: ["posint"], padding: ["nonnegint", 0] },
  avgpool2d: { kernel: ["posint"], stride: ["posint"], padding: ["nonnegint", 0] },
  batchnorm1d: { channels: ["posint"], eps: ["posnum", 1e-5], momentum: ["num", 0.1] },
  batchnorm2d: { channels: ["posint"], eps: ["posnum", 1e-5], momentum: ["num", 0.1] },
  layernorm: { shape: ["posints"], eps: ["posnum", 1e-5], affine: ["bool", true] },
  groupnorm: {
    groups: ["posint"],
    channels: ["posint"],
    eps: ["posnum", 1e-5],
    affine: ["bool", true],
  },
  dropout: { p: ["num", 0.5] },
  normalize: { mean: ["nums"], std: ["nums"] },
  flatten: {},
  relu: {},
  tanh: {},
  sigmoid: {},
  leaky_relu: { slope: ["num", 0.01] },
  softplus: { beta: ["posnum", 1], threshold: ["num", 20] },
  basic_block: { in: ["posint"], out: ["posint"], stride: ["posint", 1] },
};

/** The layer types a `"sequential"` spec may use. */
export const LAYER_TYPES: readonly string[] = Object.keys(LAYER_FIELDS);

/** One layer of a `"sequential"` spec (parsed: every field set). */
export type LayerSpec = Record<string, unknown> & { type: string; name: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkField(where: string, key: string, kind: FieldKind, v: unknown): void {
  const int = (x: unknown, min: number) => typeof x === "number" && Number.isInteger(x) && x >= min;
  const ok = kind === "posint"
    ? int(v, 1)
    : kind === "nonnegint"
    ? int(v, 0)
    : kind === "posnum"
    ? typeof v === "number" && Number.isFinite(v) && v > 0
    : kind === "num"
    ? typeof v === "number" && Number.isFinite(v)
    : kind === "bool"
    ? typeof v === "boolean"
    : kind === "posints"
    ? Array.isArray(v) && v.length > 0 && v.every((x) => int(x, 1))
    : Array.isArray(v) && v.length > 0 &&
      v.every((x) => typeof x === "number" && Number.isFinite(x));
  if (!ok) {
    const what = {
      posint: "a positive integer",
      nonnegint: "an integer >= 0",
      posnum: "a positive number",
      num: "a finite number",
      bool: "true or false",
      posints: "a non-empty array of positive integers",
      nums: "a non-empty array of finite numbers",
    }[kind];
    throw new Error(`${where}: "${key}" must be ${what}, got ${JSON.stringify(v)}`);
  }
}

/**
 * Validates the `"layers"` of a `"sequential"` spec and fills in every default.
 * @param where the spec, for messages ("Model spec (sequential)")
 * @param json the list as parsed from JSON
 * @returns complete layer specs (names default to the index, "0", "1", ...)
 * @throws Error naming the layer, the bad field and what is allowed
 */
export function parseLayerSpecs(where: string, json: unknown): LayerSpec[] {
  if (!Array.isArray(json) || json.length === 0) {
    throw new Error(`${where}: "layers" must be a non-empty array of layers`);
  }
  const names = new Set<string>();
  return json.map((l, i) => {
    const at = `${where}: layer ${i}`;
    if (!isObject(l) || typeof l.type !== "string" || !(l.type in LAYER_FIELDS)) {
      throw new Error(
        `${at}: unknown "type" ${JSON.stringify(isObject(l) ? l.type : l)}; types: ${
          LAYER_TYPES.join(", ")
        }`,
      );
    }
    const fields = LAYER_FIELDS[l.type];
    const extra = Object.keys(l).filter((k) => k !== "type" && k !== "name" && !(k in fields));
    if (extra.length) {
      throw new Error(
        `${at} (${l.type}): unknown field(s) ${extra.map((e) => `"${e}"`).join(", ")}; allowed: ${
          ["name", ...Object.keys(fields)].join(", ")
        }`,
      );
    }
    const name = l.name ?? String(i);
    if (typeof name !== "string" || !/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(name)) {
      throw new Error(`${at} (${l.type}): "name" must be a module path like "fc1" or "features.0"`);
    }
    if (names.has(name)) throw new Error(`${at} (${l.type}): the name "${name}" is used twice`);
    names.add(name);
    const out: LayerSpec = { type: l.type, name };
    for (const [key, [kind, fallback]] of Object.entries(fields)) {
      let v = l[key];
      if (v === undefined) {
        // Pools: the stride defaults to the kernel, as in PyTorch.
        v = key === "stride" && l.type.endsWith("pool2d") ? l.kernel : fallback;
        if (v === undefined) throw new Error(`${at} (${l.type}): missing "${key}"`);
      }
      checkField(`${at} (${l.type})`, key, kind, v);
      out[key] = Array.isArray(v) ? [...v] : v;
    }
    if (l.type === "dropout" && !((out.p as number) >= 0 && (out.p as number) < 1)) {
      throw new Error(`${at} (dropout): "p" must be in [0, 1), got ${out.p}`);
    }
    if (l.type === "groupnorm" && (out.channels as number) % (out.groups as number) !== 0) {
      throw new Error(
        `${at} (groupnorm): "channels" (${out.channels}) must be a multiple of "groups" (${out.groups})`,
      );
    }
    if (
      l.type === "normalize" &&
      ((out.mean as number[]).length !== (out.std as number[]).length ||
        !(out.std as number[]).every((s) => s > 0))
    ) {
      throw new Error(`${at} (normalize): "mean" and "std" need the same length, std > 0`);
    }
    return out;
  });
}

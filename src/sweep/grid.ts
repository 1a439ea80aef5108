/**
 * Experiment presets and their grids: a preset names a base training configuration, variants
 * (regularizers, dropout, ...) and grid axes (seeds, learning rates, ...); expanding it gives one
 * run per point of variant × axes, each with an id derived from its whole configuration, so the
 * same run always gets the same id and any change to it gets a new one.
 *
 * Training settings are the flags of `cli.ts train` without their dashes (`"batch-size": 64`,
 * `"reg": ["l2:lambda=5e-4"]`, `"model"` a name or a JSON model spec), so a run is exactly what
 * `cli.ts train` does with those flags.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @module
 */

/** A value of a training flag: what `cli.ts train --flag` takes (a model spec may be an object). */
export type FlagValue = string | number | boolean | string[] | Record<string, unknown>;

/** Training flags of `cli.ts train`, without the dashes. */
export type TrainFlags = Record<string, FlagValue>;

/** What is measured after training (each part may be switched off with `false`). */
export interface EvalSettings {
  /** Test samples for accuracy, loss and calibration (default: the whole test set). */
  limit?: number;
  /** Training samples for the training accuracy of the generalization gap (default 10000). */
  trainLimit?: number;
  /** Samples for ‖J‖_F (default 200) and its projections (-1 exact, the default). */
  jacobianSamples?: number;
  nproj?: number;
  /** Decision-plane total variation (planeTv of src/metrics); `false`: not measured. */
  tv?: false | { images?: number; planesPerImage?: number; range?: number; resolution?: number };
  /** `cli.ts attack` settings; `false`: no attack (e.g. inputs outside [0, 1]). */
  attack?:
    | false
    | {
      attacks?: string[];
      eps?: number[];
      steps?: number;
      limit?: number;
      /** Carlini et al.'s sanity checks (extra attacks); default false. */
      checks?: boolean;
    };
}

/** One variant of a preset: its training flags (over the base ones) and a description. */
export interface Variant {
  train?: TrainFlags;
  label?: string;
}

/** Overrides of one budget (`quick` or `full`). */
export interface Budget {
  train?: TrainFlags;
  grid?: Record<string, (string | number | boolean)[]>;
  eval?: EvalSettings;
}

/** A published result to print beside the sweep's own (e.g. the seed's table). */
export interface Reference {
  /** Which metric of the table (e.g. "testAccuracy"). */
  metric: string;
  /** Where the numbers come from. */
  source: string;
  /** Per variant, the published text (e.g. "98.70 ± 0.11"). */
  values: Record<string, string>;
}

/** An experiment preset (experiments/*.json). */
export interface Preset {
  /** Folder name of the sweep and title of its table: letters, digits, `-`, `_`, `.`. */
  name: string;
  description?: string;
  /** Training flags every run shares. */
  train: TrainFlags;
  /** The variants compared (one row each in the table). */
  variants: Record<string, Variant>;
  /** Grid axes; `seed` is the replicate axis that the table averages over. */
  grid?: Record<string, (string | number | boolean)[]>;
  eval?: EvalSettings;
  /** Budgets; `quick` finishes on a 2-core CPU in minutes, `full` is the papers' budget. */
  budgets: Record<string, Budget>;
  reference?: Reference[];
}

/** One run of a sweep. */
export interface RunSpec {
  /** `<variant>-<axes>-<hash>`, e.g. `l2-seed1-3fa09c2e71`. */
  id: string;
  /** Position in the expanded grid (what a Slurm array index names). */
  index: number;
  preset: string;
  budget: string;
  variant: string;
  /** The grid point (every axis, `seed` included). */
  axes: Record<string, string | number | boolean>;
  /** The flags of `cli.ts train` (without `out`). */
  train: TrainFlags;
  eval: EvalSettings;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * JSON with object keys sorted at every level, so equal configurations give equal text.
 * @param v any JSON value
 */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (isObject(v)) {
    return `{${
      Object.keys(v).sort().filter((k) => v[k] !== undefined)
        .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/**
 * The first `hexDigits` hex digits of SHA-256 of a text.
 * @param text the text (UTF-8)
 * @param hexDigits digits kept (default 10: 40 bits)
 */
export async function shortHash(text: string, hexDigits = 10): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("").slice(0, hexDigits);
}

/** A readable piece of an id: lower case letters, digits, `.` and `-`. */
function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9.]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
}

/**
 * Parses `--grid key=v1,v2` values: numbers where they read as numbers, `true`/`false` as
 * booleans, otherwise strings.
 * @param text `key=v1,v2,...`
 * @returns the key and its values
 * @throws Error naming the expected form
 */
export function parseGridOverride(
  text: string,
): { key: string; values: (string | number | boolean)[] } {
  const eq = text.indexOf("=");
  const key = eq < 0 ? "" : text.slice(0, eq).trim().replace(/^--/, "");
  const parts = eq < 0 ? [] : text.slice(eq + 1).split(",").map((s) => s.trim());
  if (!key || !parts.length || parts.some((p) => p === "")) {
    throw new Error(
      `--grid needs key=v1,v2,... (e.g. seed=0,1,2 or variant=none,l2), got '${text}'`,
    );
  }
  return {
    key,
    values: parts.map((p) =>
      p === "true"
        ? true
        : p === "false"
        ? false
        : p !== "" && Number.isFinite(Number(p))
        ? Number(p)
        : p
    ),
  };
}

/**
 * Checks the shape of a parsed preset file.
 * @param v the parsed JSON
 * @param where the file, for messages
 * @returns the preset
 * @throws Error naming the file and what is wrong
 */
export function parsePreset(v: unknown, where: string): Preset {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!isObject(v)) return fail("a preset must be a JSON object");
  if (typeof v.name !== "string" || !NAME_RE.test(v.name)) {
    fail(
      `"name" must be a folder name (letters, digits, '-', '_', '.'), got ${
        JSON.stringify(v.name)
      }`,
    );
  }
  if (!isObject(v.train)) fail(`"train" must be an object of cli.ts train flags`);
  if (!isObject(v.variants) || !Object.keys(v.variants).length) {
    fail(
      `"variants" must be a non-empty object, e.g. {"none": {}, "l2": {"train": {"reg": ["l2"]}}}`,
    );
  }
  for (const [name, variant] of Object.entries(v.variants as Record<string, unknown>)) {
    if (!NAME_RE.test(name)) fail(`variant name '${name}' must use letters, digits, '-', '_', '.'`);
    if (!isObject(variant)) fail(`variant '${name}' must be an object ({"train": {...}})`);
    const t = (variant as Record<string, unknown>).train;
    if (t !== undefined && !isObject(t)) fail(`variant '${name}': "train" must be an object`);
  }
  const checkGrid = (g: unknown, what: string) => {
    if (g === undefined) return;
    if (!isObject(g)) return fail(`${what} must be an object of arrays, e.g. {"seed": [0, 1, 2]}`);
    for (const [k, vals] of Object.entries(g)) {
      if (!Array.isArray(vals) || !vals.length) fail(`${what}.${k} must be a non-empty array`);
    }
  };
  checkGrid(v.grid, `"grid"`);
  if (!isObject(v.budgets) || !Object.keys(v.budgets).length) {
    fail(`"budgets" must be an object, e.g. {"quick": {"train": {"epochs": 2}}, "full": {}}`);
  }
  for (const [b, budget] of Object.entries(v.budgets as Record<string, unknown>)) {
    if (!isObject(budget)) fail(`budget '${b}' must be an object`);
    checkGrid((budget as Record<string, unknown>).grid, `budgets.${b}.grid`);
  }
  return v as unknown as Preset;
}

/** Variants, then every other axis; `variant` as an axis selects (and orders) variants. */
function axesOf(
  preset: Preset,
  budget: Budget,
  overrides: { key: string; values: (string | number | boolean)[] }[],
): { variants: string[]; axes: [string, (string | number | boolean)[]][] } {
  const grid: Record<string, (string | number | boolean)[]> = {
    ...(preset.grid ?? {}),
    ...(budget.grid ?? {}),
  };
  let variants = Object.keys(preset.variants);
  for (const o of overrides) {
    if (o.key === "variant") {
      for (const name of o.values) {
        if (!(String(name) in preset.variants)) {
          throw new Error(
            `--grid variant: preset '${preset.name}' has no variant '${name}'; variants: ${
              variants.join(", ")
            }`,
          );
        }
      }
      variants = o.values.map(String);
    } else grid[o.key] = o.values;
  }
  return { variants, axes: Object.entries(grid) };
}

/**
 * Expands a preset under a budget into its runs: every variant × every point of the grid (the
 * last axis varying fastest), each with its configuration and its id. The order, and so each
 * run's `index`, depends only on the preset, the budget and the overrides.
 * @param preset the preset
 * @param opts budget name, `--grid` overrides
 * @returns the runs
 * @throws Error for an unknown budget or variant
 */
export async function expandPreset(
  preset: Preset,
  opts: { budget: string; grid?: { key: string; values: (string | number | boolean)[] }[] },
): Promise<RunSpec[]> {
  const budget = preset.budgets[opts.budget];
  if (!budget) {
    throw new Error(
      `Preset '${preset.name}' has no budget '${opts.budget}'; budgets: ${
        Object.keys(preset.budgets).join(", ")
      }`,
    );
  }
  const { variants, axes } = axesOf(preset, budget, opts.grid ?? []);
  const evalSettings: EvalSettings = { ...(preset.eval ?? {}), ...(budget.eval ?? {}) };
  const points: Record<string, string | number | boolean>[] = [{}];
  for (const [k, vals] of axes) {
    const next: typeof points = [];
    for (const p of points) for (const v of vals) next.push({ ...p, [k]: v });
    points.splice(0, points.length, ...next);
  }
  const runs: RunSpec[] = [];
  const seen = new Map<string, number>();
  for (const variant of variants) {
    for (const point of points) {
      const train: TrainFlags = {
        ...preset.train,
        ...(budget.train ?? {}),
        ...(preset.variants[variant].train ?? {}),
        ...point,
      };
      const config = { preset: preset.name, variant, train, eval: evalSettings };
      const hash = await shortHash(canonicalJson(config));
      const readable = Object.entries(point).map(([k, v]) => slug(`${k}${v}`)).join("-");
      const id = [slug(variant), readable, hash].filter(Boolean).join("-");
      if (seen.has(id)) {
        throw new Error(
          `Runs ${seen.get(id)} and ${runs.length} of preset '${preset.name}' have the same ` +
            `configuration (id ${id}); remove the duplicate grid value or variant`,
        );
      }
      seen.set(id, runs.length);
      runs.push({
        id,
        index: runs.length,
        preset: preset.name,
        budget: opts.budget,
        variant,
        axes: point,
        train,
        eval: evalSettings,
      });
    }
  }
  return runs;
}

/**
 * The arguments of `cli.ts train` for a run's flags: `--key value`, booleans as `--key` or
 * `--no-key`, lists as the flag repeated, objects (a JSON model spec) as JSON.
 * @param flags the training flags
 * @returns argv after `train`
 */
export function trainArgv(flags: TrainFlags): string[] {
  const argv: string[] = [];
  for (const [k, v] of Object.entries(flags)) {
    if (v === true) argv.push(`--${k}`);
    else if (v === false) argv.push(`--no-${k}`);
    else if (Array.isArray(v)) { for (const item of v) argv.push(`--${k}`, String(item)); }
    else if (isObject(v)) argv.push(`--${k}`, JSON.stringify(v));
    else argv.push(`--${k}`, String(v));
  }
  return argv;
}

/**
 * Slurm's `--array` list for a set of indices, as ranges: `[0,1,2,5,7,8]` → `"0-2,5,7-8"`.
 * @param indices array task indices (any order)
 */
export function arrayRanges(indices: readonly number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * The table of regularizers by command-line name, and the parser of specs such as
 * `l2:lambda=5e-4`, `jacobian:lambda=0.01,nproj=1`, `hard-svb:eps=0.5,every=epoch` or the short
 * form `l2:5e-4` (a bare value sets the entry's first option).
 *
 * Unknown names and options are errors that list the valid ones and suggest the nearest.
 *
 * @module
 */

import type { Regularizer } from "../hooks/step.ts";
import {
  elasticNetRegularizer,
  l1Regularizer,
  l2Regularizer,
  softSvbRegularizer,
  spectralNormRegularizer,
} from "./penalties.ts";
import { hardSvbRegularizer, maxNormRegularizer } from "./projections.ts";
import { inputNoiseRegularizer, weightNoiseRegularizer } from "./noise.ts";
import { labelSmoothingRegularizer } from "./smoothing.ts";
import { jacobianRegularizer } from "./jacobian.ts";
import { jacobianDeterminantRegularizer } from "./determinant.ts";
import { confidencePenaltyRegularizer } from "./confidence.ts";
import { gradientNormRegularizer } from "./gradient_norm.ts";

/** A value an option may take. */
export type OptionValue = number | string | boolean;

/** How an option is parsed: a number, an integer, a boolean, or an integer or "epoch". */
export type OptionType = "number" | "integer" | "boolean" | "steps";

/** One option of a registry entry. */
export interface OptionSpec {
  type: OptionType;
  /** Default (what the factory uses when the option is not given); undefined: none. */
  default?: OptionValue;
  /** One line for help texts. */
  doc: string;
}

/** A regularizer the command line can name. */
export interface RegistryEntry {
  /** Name as on the command line (also the Regularizer's `name`). */
  name: string;
  /** Other accepted names. */
  aliases?: string[];
  /** Kind: when in the step it acts. */
  kind: "penalty on parameters" | "penalty on the function" | "projection" | "transform";
  /** One line: formula and source. */
  doc: string;
  /** Options in order (the first is what a bare value `name:value` sets). */
  options: Record<string, OptionSpec>;
  /** Builds the regularizer from parsed options (only those given). */
  create(opts: Record<string, OptionValue>): Regularizer;
}

const SEL = {
  biases: { type: "boolean", default: false, doc: "also biases" },
  norms: { type: "boolean", default: false, doc: "also BatchNorm γ" },
} as const satisfies Record<string, OptionSpec>;
const SEED = { type: "integer", doc: "random stream seed (default: the run seed)" } as const;

// deno-lint-ignore no-explicit-any
type AnyOpts = any;

/** Every regularizer `parseRegularizers` knows, by name. */
export const REGULARIZERS: readonly RegistryEntry[] = [
  {
    name: "l1",
    kind: "penalty on parameters",
    doc: "λ Σ|w| over Linear/Conv weights (lasso)",
    options: { lambda: { type: "number", default: 1e-5, doc: "λ" }, ...SEL },
    create: (o: AnyOpts) => l1Regularizer(o),
  },
  {
    name: "l2",
    aliases: ["weight-decay"],
    kind: "penalty on parameters",
    doc: "(λ/2) ||w||² over Linear/Conv weights (= SGD weight_decay λ; not AdamW)",
    options: { lambda: { type: "number", default: 5e-4, doc: "λ" }, ...SEL },
    create: (o: AnyOpts) => l2Regularizer(o),
  },
  {
    name: "elastic-net",
    aliases: ["elastic", "l1l2", "l1+l2"],
    kind: "penalty on parameters",
    doc: "λ1 Σ|w| + (λ2/2) ||w||² (Zou & Hastie 2005)",
    options: {
      l1: { type: "number", default: 1e-5, doc: "λ1" },
      l2: { type: "number", default: 5e-4, doc: "λ2" },
      ...SEL,
    },
    create: (o: AnyOpts) => elasticNetRegularizer(o),
  },
  {
    name: "soft-svb",
    aliases: ["soft-orthogonality", "so"],
    kind: "penalty on parameters",
    doc: "λ Σ ||G − I||_F², G the smaller Gram matrix of each weight (Jia et al. 2017)",
    options: { lambda: { type: "number", default: 1e-4, doc: "λ" } },
    create: (o: AnyOpts) => softSvbRegularizer(o),
  },
  {
    name: "spectral",
    aliases: ["spectral-norm"],
    kind: "penalty on parameters",
    doc: "(λ/2) Σ σ_max(W)² by power iteration (Yoshida & Miyato 2017)",
    options: {
      lambda: { type: "number", default: 0.01, doc: "λ" },
      iters: { type: "integer", default: 1, doc: "power iterations per step" },
      seed: SEED,
    },
    create: (o: AnyOpts) => spectralNormRegularizer(o),
  },
  {
    name: "hard-svb",
    aliases: ["svb"],
    kind: "projection",
    doc: "clip singular values to [1/(1+ε), 1+ε] every T steps (Jia et al. 2017)",
    options: {
      eps: { type: "number", default: 0.5, doc: "ε" },
      every: { type: "steps", default: "epoch", doc: "T: steps, or 'epoch'" },
      sweeps: { type: "integer", default: 12, doc: "Jacobi sweeps per SVD" },
    },
    create: (o: AnyOpts) => hardSvbRegularizer(o),
  },
  {
    name: "max-norm",
    aliases: ["maxnorm"],
    kind: "projection",
    doc: "rescale each unit's incoming weights to norm ≤ c (Srivastava et al. 2014)",
    options: { c: { type: "number", default: 3, doc: "largest row norm" } },
    create: (o: AnyOpts) => maxNormRegularizer(o),
  },
  {
    name: "input-noise",
    aliases: ["gaussian-noise"],
    kind: "transform",
    doc: "x + σ ε, ε ~ N(0, I) fresh each step",
    options: {
      sigma: { type: "number", default: 0.1, doc: "σ (pixel units)" },
      clip: { type: "boolean", default: false, doc: "clamp to [0, 1]" },
      seed: SEED,
    },
    create: (o: AnyOpts) => inputNoiseRegularizer(o),
  },
  {
    name: "weight-noise",
    kind: "transform",
    doc: "w + σ ε during forward/backward, clean weights stepped",
    options: { sigma: { type: "number", default: 0.01, doc: "σ" }, ...SEL, seed: SEED },
    create: (o: AnyOpts) => weightNoiseRegularizer(o),
  },
  {
    name: "label-smoothing",
    aliases: ["ls"],
    kind: "transform",
    doc: "targets (1 − ε) one_hot + ε/K (PyTorch semantics)",
    options: { eps: { type: "number", default: 0.1, doc: "ε" } },
    create: (o: AnyOpts) => labelSmoothingRegularizer(o),
  },
  {
    name: "jacobian",
    aliases: ["jr"],
    kind: "penalty on the function",
    doc: "(λ/2) mean ||J||_F² by random projections (Hoffman et al. 2019)",
    options: {
      lambda: { type: "number", default: 0.01, doc: "λ" },
      nproj: { type: "integer", default: 1, doc: "projections per sample, -1 exact" },
      seed: SEED,
    },
    create: (o: AnyOpts) => jacobianRegularizer(o),
  },
  {
    name: "jacobian-det",
    aliases: ["determinant", "jacobian-determinant"],
    kind: "penalty on the function",
    doc: "λ mean (det J − 1)² (sqrt(det J Jᵀ) when not square)",
    options: { lambda: { type: "number", default: 0.01, doc: "λ" } },
    create: (o: AnyOpts) => jacobianDeterminantRegularizer(o),
  },
  {
    name: "confidence",
    aliases: ["confidence-penalty"],
    kind: "penalty on the function",
    doc: "−β H(p(x)) (Pereyra et al. 2017)",
    options: {
      beta: { type: "number", default: 0.1, doc: "β" },
      hinge: { type: "number", doc: "Γ: penalise only H < Γ (default: none)" },
    },
    create: (o: AnyOpts) => confidencePenaltyRegularizer(o),
  },
  {
    name: "gradient-norm",
    aliases: ["double-backprop"],
    kind: "penalty on the function",
    doc: "λ mean ||∂L/∂x||² (Drucker & LeCun 1992)",
    options: {
      lambda: { type: "number", default: 0.01, doc: "λ" },
      labelSmoothing: { type: "number", default: 0, doc: "ε of the loss it differentiates" },
    },
    create: (o: AnyOpts) => gradientNormRegularizer(o),
  },
];

/** Things people type that are not regularizers here, with where they live instead. */
const ELSEWHERE: Record<string, string> = {
  dropout: 'dropout is part of the model: set it in the model spec (e.g. {"dropout": 0.5})',
  augment: "augmentation is part of the data pipeline (src/data/augment.ts), not a regularizer",
  "early-stopping": "early stopping is a training option (earlyStopping), not a regularizer",
};

/** Edit distance (Levenshtein), for suggestions. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = t;
    }
  }
  return d[b.length];
}

/** " Did you mean 'x'?" for the nearest candidate within a few edits, else "". */
function suggest(word: string, candidates: readonly string[]): string {
  let best = "", bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` Did you mean '${best}'?` : "";
}

/**
 * The registry entry for a name or alias (case-insensitive).
 * @throws Error listing the valid names (and the nearest) for an unknown one
 */
export function findRegularizer(name: string): RegistryEntry {
  const key = name.trim().toLowerCase();
  const hit = REGULARIZERS.find((e) => e.name === key || e.aliases?.includes(key));
  if (hit) return hit;
  if (ELSEWHERE[key]) throw new Error(`Unknown regularizer '${name}': ${ELSEWHERE[key]}`);
  const all = REGULARIZERS.flatMap((e) => [e.name, ...(e.aliases ?? [])]);
  throw new Error(
    `Unknown regularizer '${name}'.${suggest(key, all)} Valid: ` +
      `${REGULARIZERS.map((e) => e.name).join(", ")}`,
  );
}

function parseValue(entry: RegistryEntry, key: string, spec: OptionSpec, raw: string): OptionValue {
  const where = `Regularizer '${entry.name}' option '${key}'`;
  const v = raw.trim();
  switch (spec.type) {
    case "boolean": {
      const t = v.toLowerCase();
      if (["true", "1", "yes", "on", ""].includes(t)) return true;
      if (["false", "0", "no", "off"].includes(t)) return false;
      throw new Error(`${where}: expected true or false, got '${raw}'`);
    }
    case "steps":
      if (v.toLowerCase() === "epoch") return "epoch";
      // falls through
    case "integer": {
      const n = Number(v);
      if (v === "" || !Number.isInteger(n)) {
        throw new Error(
          `${where}: expected an integer${
            spec.type === "steps" ? " or 'epoch'" : ""
          }, got '${raw}'`,
        );
      }
      return n;
    }
    default: {
      const n = Number(v);
      if (v === "" || !Number.isFinite(n)) {
        throw new Error(`${where}: expected a number, got '${raw}'`);
      }
      return n;
    }
  }
}

/**
 * Parses one spec, `name`, `name:value` or `name:key=value,key=value`, into its entry and the
 * options given (not the defaults).
 * @param spec the string from the command line
 * @returns the registry entry and the parsed options
 * @throws Error for an unknown name or option, a bad value, or an option given twice
 */
export function parseRegularizerSpec(
  spec: string,
): { entry: RegistryEntry; options: Record<string, OptionValue> } {
  const colon = spec.indexOf(":");
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const rest = colon < 0 ? "" : spec.slice(colon + 1).trim();
  if (!name.trim()) throw new Error(`Regularizer spec '${spec}' has no name`);
  const entry = findRegularizer(name);
  const keys = Object.keys(entry.options);
  const options: Record<string, OptionValue> = {};
  if (!rest) return { entry, options };
  for (const part of rest.split(",")) {
    if (!part.trim()) continue;
    const eq = part.indexOf("=");
    let key: string, raw: string;
    if (eq < 0) {
      // A bare value sets the first option (l2:5e-4), a bare option name a boolean (l2:biases).
      const word = part.trim();
      if (entry.options[word]?.type === "boolean") [key, raw] = [word, "true"];
      else if (keys.length) [key, raw] = [keys[0], word];
      else throw new Error(`Regularizer '${entry.name}' takes no options, got '${part}'`);
    } else {
      key = part.slice(0, eq).trim();
      raw = part.slice(eq + 1);
    }
    const opt = entry.options[key];
    if (!opt) {
      throw new Error(
        `Regularizer '${entry.name}' has no option '${key}'.${suggest(key, keys)} Valid: ` +
          (keys.length ? keys.map((k) => describeOption(k, entry.options[k])).join(", ") : "none"),
      );
    }
    if (key in options) throw new Error(`Regularizer '${entry.name}': option '${key}' given twice`);
    options[key] = parseValue(entry, key, opt, raw);
  }
  return { entry, options };
}

function describeOption(key: string, o: OptionSpec): string {
  return `${key} (${o.type === "steps" ? "integer|epoch" : o.type}${
    o.default !== undefined ? `, default ${o.default}` : ""
  })`;
}

/**
 * Builds the regularizers of a list of command-line specs.
 * @param specs e.g. `["l2:lambda=5e-4", "jacobian:lambda=0.01,nproj=1", "hard-svb:every=epoch"]`
 * @returns one Regularizer per spec, in order (the caller disposes them: `r.dispose?.()`)
 * @throws Error for unknown names or options (listing the valid ones), bad values, or a
 *   regularizer named twice
 * @example
 * ```ts
 * const regs = parseRegularizers(["l2:5e-4", "hard-svb:eps=0.05,every=600"]);
 * await train(model, data, { epochs: 10, regularizers: regs });
 * ```
 */
export function parseRegularizers(specs: readonly string[]): Regularizer[] {
  const seen = new Map<string, string>();
  const out: Regularizer[] = [];
  try {
    for (const spec of specs) {
      const { entry, options } = parseRegularizerSpec(spec);
      const prev = seen.get(entry.name);
      if (prev !== undefined) {
        throw new Error(`Regularizer '${entry.name}' is given twice ('${prev}' and '${spec}')`);
      }
      seen.set(entry.name, spec);
      out.push(entry.create(options));
    }
  } catch (e) {
    for (const r of out) r.dispose?.();
    throw e;
  }
  return out;
}

/**
 * A help text: every regularizer with its options and defaults, one block each.
 * @returns lines for `--help`
 */
export function describeRegularizers(): string {
  return REGULARIZERS.map((e) => {
    const names = [e.name, ...(e.aliases ?? [])].join(", ");
    const opts = Object.entries(e.options).map(([k, o]) => `    ${describeOption(k, o)}: ${o.doc}`);
    return [`  ${names} — ${e.kind}: ${e.doc}`, ...opts].join("\n");
  }).join("\n");
}

/**
 * `cli.ts report a.safetensors b.safetensors …`: one self-contained HTML page comparing models
 * side by side on the same data. What is measured lives in src/metrics/report.ts
 * ({@linkcode measureModels}), how it is drawn in src/plot/report.ts ({@linkcode renderReport});
 * this file parses the flags, reads the checkpoints and data, writes the page and prints the
 * table.
 *
 * @module
 */

import type { Command, Io, ParsedArgs } from "./args.ts";
import { UsageError } from "./args.ts";
import { checkWritable, writeFileAtomic } from "./fs.ts";
import { CONSOLE_IO, runCommand } from "./_run.ts";
import {
  datasetName,
  loadCheckpointModel,
  MODEL_FLAGS,
  type ModelRequest,
  modelRequest,
  readCheckpoint,
} from "./checkpoint.ts";
import { pgdSettings } from "./attack.ts";
import type { Checkpoint } from "../src/io/checkpoint.ts";
import type { Backend } from "../src/backend.ts";
import { BACKEND_FLAGS, createBackend } from "./backend.ts";
import {
  measureModels,
  type ReportData,
  type ReportModel,
  type ReportOptions,
  type ReportRow,
} from "../src/metrics/mod.ts";
import { formatMeanSe as fmtPm, formatPercent as pct, renderReport } from "../src/plot/mod.ts";
import * as seams from "./_seams.ts";

export type { ReportData, ReportModel, ReportOptions, ReportRow };

/**
 * Measures every model on the same data ({@linkcode measureModels}) and draws the HTML page
 * ({@linkcode renderReport}).
 * @param rt runtime
 * @param models the models (eval mode is set during measurement and restored)
 * @param data labelled samples
 * @param opts what to measure
 * @returns the page and the table rows
 */
export async function buildReport(
  rt: Backend,
  models: ReportModel[],
  data: ReportData,
  opts: ReportOptions = {},
): Promise<{ html: string; rows: ReportRow[] }> {
  const measured = await measureModels(rt, models, data, opts);
  return { html: await renderReport(measured), rows: measured.models.map((m) => m.row) };
}

function numberList(flag: string, text: string): number[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const vals = parts.map(Number);
  if (vals.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new UsageError(`Flag '--${flag}' needs comma-separated numbers >= 0, got '${text}'`);
  }
  return vals;
}

function positiveInt(flag: string, v: unknown, zero = false): number {
  if (!(typeof v === "number" && Number.isInteger(v) && v >= (zero ? 0 : 1))) {
    throw new UsageError(
      `Flag '--${flag}' needs a ${zero ? "non-negative" : "positive"} integer, got ${v}`,
    );
  }
  return v;
}

const reportFlags = {
  ...BACKEND_FLAGS,
  out: { type: "string", help: "HTML file to write.", default: "report.html" },
  force: { type: "boolean", help: "Overwrite an existing report." },
  data: { type: "string", help: "Dataset name (default: the one in the first checkpoint)." },
  "data-path": { type: "string", help: "Directory holding the dataset's files." },
  limit: {
    type: "number",
    help: "Test samples for accuracy, calibration, attacks.",
    default: 1000,
  },
  "jacobian-samples": { type: "number", help: "Samples for ‖J‖_F.", default: 200 },
  nproj: { type: "number", help: "Random projections for ‖J‖_F (-1 = exact).", default: -1 },
  images: { type: "number", help: "Plane centres (test samples) for TV.", default: 10 },
  "planes-per-image": { type: "number", help: "Random planes per centre.", default: 5 },
  range: { type: "number", help: "Plane half-width in pixel units (L2).", default: 10 },
  resolution: { type: "number", help: "Plane grid points per side.", default: 250 },
  show: { type: "number", help: "Planes / saliency / occlusion pictures shown.", default: 3 },
  attack: { type: "string", help: "Attacks: fgsm, pgd, both, or 'none'.", default: "fgsm,pgd" },
  eps: { type: "string", help: "Attack radii (pixel units).", default: "0.05,0.1,0.2,0.3" },
  "pgd-steps": { type: "number", help: "PGD iterations.", default: 20 },
  alpha: {
    type: "number",
    help: "PGD step in pixel units at every eps (torchattacks' alpha; default 2.5*eps/steps).",
  },
  "random-start": {
    type: "boolean",
    help: "PGD starts at a random point of the ball (--no-random-start: at the input).",
    default: true,
  },
  "pca-samples": { type: "number", help: "Samples in the PCA scatters (0: none).", default: 300 },
  seed: {
    type: "number",
    help: "Seed of planes, projections, attack starts, bootstrap.",
    default: 0,
  },
  "train-accuracy": {
    type: "boolean",
    help: "Measure each model's accuracy on --limit samples of its own training split (the gap).",
    default: true,
  },
  bootstrap: {
    type: "number",
    help: "Bootstrap resamples of the checkpoints for the rank-correlation CIs (3+ checkpoints).",
    default: 2000,
  },
  level: { type: "number", help: "Confidence level of the bootstrap intervals.", default: 0.95 },
  "predictor-eps": {
    type: "number",
    help: "PGD eps of the predictor scatter plots (one of --eps; default the middle one).",
  },
  "tsne-samples": {
    type: "number",
    help: "Samples in the t-SNE scatters beside PCA (0: none; at most --pca-samples).",
    default: 300,
  },
  perplexity: { type: "number", help: "t-SNE perplexity (effective neighbours).", default: 30 },
  "feature-maps": {
    type: "number",
    help: "Image models: test samples whose conv feature maps are drawn (0: none).",
    default: 2,
  },
  "feature-map-channels": {
    type: "number",
    help: "Feature maps: the first channels drawn per convolution (0: all).",
    default: 16,
  },
  json: { type: "boolean", help: "Also print the table as JSON." },
  ...MODEL_FLAGS,
} as const;

async function runReport({ flags, positionals }: ParsedArgs, io: Io): Promise<number> {
  if (positionals.length === 0) {
    throw new UsageError(
      "'cli.ts report' needs checkpoints: cli.ts report a.safetensors b.safetensors",
    );
  }
  const attackText = String(flags.attack).trim();
  const attacks = attackText === "none"
    ? []
    : attackText.split(",").map((s) => s.trim()).filter(Boolean);
  for (const a of attacks) {
    if (a !== "fgsm" && a !== "pgd") {
      throw new UsageError(`Flag '--attack': unknown attack '${a}' (fgsm, pgd or none)`);
    }
  }
  // --alpha and --no-random-start need pgd among the attacks
  const pgd = pgdSettings(attacks.length ? attacks : ["none"], flags);
  const opts: ReportOptions = {
    limit: positiveInt("limit", flags.limit),
    jacobianSamples: positiveInt("jacobian-samples", flags["jacobian-samples"]),
    nproj: flags.nproj === -1 ? -1 : positiveInt("nproj", flags.nproj),
    images: positiveInt("images", flags.images),
    planesPerImage: positiveInt("planes-per-image", flags["planes-per-image"]),
    range: flags.range as number,
    resolution: positiveInt("resolution", flags.resolution),
    show: positiveInt("show", flags.show, true),
    attacks: attacks as ("fgsm" | "pgd")[],
    eps: numberList("eps", String(flags.eps)),
    pgdSteps: positiveInt("pgd-steps", flags["pgd-steps"]),
    pgdAlpha: pgd.alpha,
    randomStart: pgd.randomStart,
    pcaSamples: positiveInt("pca-samples", flags["pca-samples"], true),
    tsneSamples: positiveInt("tsne-samples", flags["tsne-samples"], true),
    perplexity: flags.perplexity as number,
    featureMaps: positiveInt("feature-maps", flags["feature-maps"], true),
    featureMapChannels: positiveInt("feature-map-channels", flags["feature-map-channels"], true),
    seed: positiveInt("seed", flags.seed, true),
    progress: (s) => (io.status ? io.status(s) : io.err(s)),
  };
  const level = flags.level as number;
  if (!(level > 0 && level < 1)) {
    throw new UsageError(`Flag '--level' needs a number in (0, 1), got ${level}`);
  }
  const pe = flags["predictor-eps"] as number | undefined;
  if (pe !== undefined && !(attacks.includes("pgd") && opts.eps!.includes(pe))) {
    throw new UsageError(
      `Flag '--predictor-eps' needs one of the PGD radii --eps ${flags.eps}, got ${pe}`,
    );
  }
  opts.predictors = {
    resamples: positiveInt("bootstrap", flags.bootstrap),
    level,
    eps: pe,
  };
  if (!(opts.range! > 0)) throw new UsageError(`Flag '--range' needs a positive number`);
  if (!(typeof opts.perplexity === "number" && opts.perplexity >= 1)) {
    throw new UsageError(`Flag '--perplexity' needs a number >= 1, got ${flags.perplexity}`);
  }
  if (opts.resolution! < 2) throw new UsageError(`Flag '--resolution' needs at least 2`);
  const out = String(flags.out);
  // Refuse an existing report before any work (writeFileAtomic checks again at the end).
  await checkWritable(out, !!flags.force);
  const cks: { path: string; ck: Checkpoint; req: ModelRequest }[] = [];
  for (const path of positionals) {
    const ck = await readCheckpoint(path);
    cks.push({ path, ck, req: await modelRequest(path, ck, flags) });
  }
  const meta0 = cks[0].ck.metadata as { seed?: number };
  const dataName = datasetName(cks[0].path, cks[0].ck, cks[0].req, flags, io.err);
  const loaded = await seams.loadData(dataName, {
    path: flags["data-path"] as string | undefined,
    valFraction: 0,
    seed: meta0.seed ?? 0,
  });
  const test = loaded.test ?? loaded.train;
  const rt = await createBackend(flags);
  const models: ReportModel[] = [];
  try {
    // Each model's training accuracy on its own training split (the checkpoint's limit,
    // validation fraction and seed), so that held-out validation samples do not count as
    // training ones; loaded once per distinct split.
    const splits = new Map<string, Promise<{ x: Float32Array; y: Int32Array } | undefined>>();
    const trainOf = (ck: Checkpoint) => {
      const m = ck.metadata as {
        data?: { name?: string; path?: string | null; valFraction?: number; limit?: number | null };
        seed?: number;
      };
      if (!flags["train-accuracy"] || !loaded.test || m.data?.name !== dataName) {
        return Promise.resolve(undefined);
      }
      const o = {
        path: (flags["data-path"] as string | undefined) ?? m.data.path ?? undefined,
        limit: m.data.limit ?? undefined,
        valFraction: m.data.valFraction ?? 0,
        seed: m.seed ?? 0,
      };
      const key = JSON.stringify(o);
      if (!splits.has(key)) {
        splits.set(key, seams.loadData(dataName, o).then((l) => ({ x: l.train.x, y: l.train.y })));
      }
      return splits.get(key)!;
    };
    for (const { path, ck, req } of cks) {
      models.push({
        name: path.split("/").pop()!.replace(/\.safetensors$/, ""),
        model: loadCheckpointModel(rt, path, ck, req, test, io.err),
        metadata: ck.metadata,
        train: await trainOf(ck),
      });
    }
    const { html, rows } = await buildReport(rt, models, {
      name: test.name,
      x: test.x,
      y: test.y,
      sampleShape: test.sampleShape,
      classes: test.classes,
      classNames: (test as { classNames?: string[] }).classNames,
    }, opts);
    await writeFileAtomic(out, new TextEncoder().encode(html), { force: !!flags.force });
    if (flags.json) {
      io.out(JSON.stringify(
        rows.map(({ robustness: r, ...rest }) => ({
          ...rest,
          attacks: r?.accuracy,
          eps: r?.eps,
          pgd: r && attacks.includes("pgd")
            ? {
              steps: opts.pgdSteps,
              alpha: opts.pgdAlpha ?? "2.5*eps/steps",
              randomStart: opts.randomStart,
            }
            : undefined,
        })),
        (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v),
      ));
    }
    for (const r of rows) {
      io.out(
        `${r.name}: accuracy ${pct(r.accuracy)}  ECE ${r.ece.toFixed(4)}  ‖J‖_F ${
          fmtPm(r.jacobianMean, r.jacobianSe)
        }  TV iso ${fmtPm(r.tvIso, r.tvIsoSe)}  aniso ${fmtPm(r.tvAniso, r.tvAnisoSe)}`,
      );
    }
    io.out(`wrote ${out}`);
    return 0;
  } finally {
    for (const m of models) m.model.dispose();
    rt.destroy();
  }
}

/** The `report` subcommand. */
export const reportSubcommand: Command = {
  summary: "Compare checkpoints in one self-contained HTML report",
  args: "<checkpoint> [<checkpoint> ...]",
  details: [
    "Examples:",
    "  cli.ts report runs/none.safetensors runs/l2.safetensors runs/jr.safetensors --out cmp.html",
    "  cli.ts report a.safetensors --resolution 100 --images 5 --attack none",
    "With 3 or more checkpoints the report rank-correlates (Spearman, bootstrap CI) each measured",
    "quantity with the generalization gap and PGD accuracy.",
  ].join("\n"),
  flags: reportFlags,
  run: runReport,
};

/**
 * Runs `report` with its own argument parsing and error handling (exit codes: 0 ok, 1 failure,
 * 2 usage error or existing output).
 * @param args the arguments after `report`
 * @param io where to print (default: console)
 * @returns the exit code
 */
export function reportCommand(args: string[], io: Io = CONSOLE_IO): Promise<number> {
  return runCommand("report", reportSubcommand, args, io);
}

if (import.meta.main) Deno.exit(await reportCommand(Deno.args));

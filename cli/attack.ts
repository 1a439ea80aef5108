/**
 * `cli.ts attack <checkpoint>`: loads a checkpoint, rebuilds its model (from its metadata or
 * `--model`, cli/checkpoint.ts), runs a list of attacks over a list of ε on a dataset split
 * (PGD at a chosen step `--alpha` and with or without a random start, as torchattacks runs
 * it), prints accuracy under attack as a table (with the per-sample worst case and Carlini et
 * al.'s sanity checks) and writes a JSON report atomically (an existing report is kept unless
 * `--force`).
 *
 * @module
 */

import { fittingBatchSize } from "../src/layers/memory.ts";
import { type Command, didYouMean, type Io, type ParsedArgs, UsageError } from "./args.ts";
import { checkWritable, writeFileAtomic } from "./fs.ts";
import { CONSOLE_IO, runCommand } from "./_run.ts";
import {
  datasetName,
  loadCheckpointModel,
  MODEL_FLAGS,
  modelRequest,
  readCheckpoint,
} from "./checkpoint.ts";
import { BACKEND_FLAGS, createBackend } from "./backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import {
  ATTACK_NORMS,
  type AttackName,
  robustness,
  type RobustnessResult,
} from "../src/attacks/robustness.ts";
import * as seams from "./_seams.ts";

const attackFlags = {
  ...BACKEND_FLAGS,
  attack: {
    type: "string",
    help: `Attacks, comma-separated (${Object.keys(ATTACK_NORMS).join(", ")}).`,
    default: "fgsm,pgd",
  },
  eps: {
    type: "string",
    help: "Radii in pixel units, comma-separated.",
    default: "0.05,0.1,0.2,0.3",
  },
  steps: { type: "number", help: "Iterations of the iterative attacks (default per attack)." },
  restarts: { type: "number", help: "Restarts of pgd / pgd-l2 / apgd.", default: 1 },
  alpha: {
    type: "number",
    help: "Step size of pgd / pgd-l2 in pixel units, the same at every eps (torchattacks' " +
      "alpha, e.g. 0.00784 = 2/255; default 2.5*eps/steps). apgd adapts its own step.",
  },
  "random-start": {
    type: "boolean",
    help: "Start pgd / pgd-l2 / apgd at a random point of the ball; --no-random-start starts " +
      "at the clean input (torchattacks' random_start=False).",
    default: true,
  },
  iterations: {
    type: "string",
    help: "Also report accuracy vs these iteration counts (comma list).",
  },
  seed: { type: "number", help: "Seed of random starts and targets.", default: 0 },
  data: { type: "string", help: "Dataset name (default: the one in the checkpoint)." },
  "data-path": { type: "string", help: "Directory holding the dataset's files." },
  split: { type: "string", help: "test, train or val.", default: "test" },
  limit: { type: "number", help: "Attack only the first N samples.", default: 1000 },
  "batch-size": {
    type: "number",
    help: "Samples per attack batch (default 256, or fewer where the WebAssembly backend's " +
      "memory cap needs it).",
  },
  "no-checks": { type: "boolean", help: "Skip the sanity checks (they run extra attacks)." },
  out: { type: "string", help: "JSON report path (default <checkpoint>.attack.json)." },
  force: { type: "boolean", help: "Overwrite an existing report." },
  json: { type: "boolean", help: "Print the report as JSON instead of a table." },
  ...MODEL_FLAGS,
} as const;

const PGD_LIKE = ["pgd", "pgd-l2"];
const RANDOM_START = ["pgd", "pgd-l2", "apgd-ce", "apgd-dlr"];

/**
 * `--alpha` and `--random-start` checked against the attacks they apply to.
 * @returns the step size (undefined: 2.5 ε/steps) and whether to start at random
 * @throws UsageError for a bad step or a flag no chosen attack takes
 */
export function pgdSettings(
  attacks: readonly string[],
  flags: ParsedArgs["flags"],
): { alpha?: number; randomStart: boolean } {
  const alpha = flags.alpha as number | undefined;
  if (alpha !== undefined) {
    if (!(alpha > 0)) throw new UsageError(`Flag '--alpha' needs a number > 0, got ${alpha}`);
    if (!attacks.some((a) => PGD_LIKE.includes(a))) {
      throw new UsageError(
        `Flag '--alpha' sets the step of pgd and pgd-l2, and the attacks are ` +
          `${attacks.join(", ")} (apgd adapts its own step); add pgd or drop --alpha`,
      );
    }
  }
  const randomStart = flags["random-start"] !== false;
  if (!randomStart && !attacks.some((a) => RANDOM_START.includes(a))) {
    throw new UsageError(
      `Flag '--no-random-start' applies to ${RANDOM_START.join(", ")}, and the attacks are ` +
        `${attacks.join(", ")}; drop it`,
    );
  }
  return { alpha, randomStart };
}

/** One line saying how the iterative attacks step and start. */
export function pgdSettingsLine(
  attacks: readonly string[],
  s: { steps?: number; alpha?: number; randomStart: boolean },
): string | undefined {
  const pgdLike = attacks.filter((a) => PGD_LIKE.includes(a));
  const started = attacks.filter((a) => RANDOM_START.includes(a));
  if (!started.length) return undefined;
  const parts = [];
  if (pgdLike.length) {
    parts.push(
      `${pgdLike.join(", ")}: ${s.steps ?? 40} steps of ${
        s.alpha === undefined ? "2.5·eps/steps" : s.alpha
      }`,
    );
  }
  parts.push(`${s.randomStart ? "random start" : "no random start"} (${started.join(", ")})`);
  return parts.join("; ");
}

function numberList(flag: string, text: string): number[] {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const vals = parts.map(Number);
  if (!parts.length || vals.some((v, i) => parts[i] === "" || !Number.isFinite(v) || v < 0)) {
    throw new UsageError(`Flag '--${flag}' needs comma-separated numbers >= 0, got '${text}'`);
  }
  return vals;
}

function positiveInt(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === "number" && Number.isInteger(v) && v >= 1)) {
    throw new UsageError(`Flag '--${flag}' needs a positive integer, got ${v}`);
  }
  return v;
}

/** The printed table: one row per ε, one column per attack and the worst case. */
export function formatReport(r: RobustnessResult): string[] {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const cols = [...Object.keys(r.accuracy), "worst case"];
  const width = Math.max(10, ...cols.map((c) => c.length)) + 2;
  const lines = [
    `clean accuracy ${pct(r.clean)} on ${r.count} samples; ${r.norm === "linf" ? "L∞" : "L2"} ` +
    `threat model; accuracy under attack:`,
    `${"eps".padEnd(8)}${cols.map((c) => c.padStart(width)).join("")}`,
  ];
  r.eps.forEach((e, i) => {
    const vals = [...Object.values(r.accuracy).map((a) => a[i]), r.worstCase[i]];
    lines.push(`${String(e).padEnd(8)}${vals.map((v) => pct(v).padStart(width)).join("")}`);
  });
  if (r.iterations) {
    lines.push(`accuracy vs iterations at eps ${r.iterations.eps}:`);
    lines.push(
      `${"steps".padEnd(8)}${
        Object.keys(r.iterations.accuracy).map((c) => c.padStart(width)).join("")
      }`,
    );
    r.iterations.steps.forEach((s, i) => {
      const vals = Object.values(r.iterations!.accuracy).map((a) => pct(a[i]).padStart(width));
      lines.push(`${String(s).padEnd(8)}${vals.join("")}`);
    });
  }
  if (r.checks.length) {
    lines.push("sanity checks (Carlini et al. 2019):");
    for (const c of r.checks) lines.push(`  ${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`);
  }
  return lines;
}

async function runAttackCli({ flags, positionals }: ParsedArgs, io: Io): Promise<number> {
  const path = seams.checkpointArg("attack", positionals);
  const attacks = String(flags.attack).split(",").map((s) => s.trim()).filter(Boolean);
  for (const a of attacks) {
    if (!(a in ATTACK_NORMS)) {
      throw new UsageError(
        `Unknown attack '${a}'${didYouMean(a, Object.keys(ATTACK_NORMS))}; attacks: ${
          Object.keys(ATTACK_NORMS).join(", ")
        }`,
      );
    }
  }
  if (!attacks.length) throw new UsageError("Flag '--attack' needs at least one attack");
  if (new Set(attacks.map((a) => ATTACK_NORMS[a as AttackName])).size > 1) {
    throw new UsageError(
      `Attacks ${attacks.join(", ")} mix L∞ (fgsm, pgd, apgd-ce, apgd-dlr) and L2 (pgd-l2, cw, ` +
        `deepfool) threat models; run them separately`,
    );
  }
  const eps = numberList("eps", String(flags.eps)).sort((a, b) => a - b);
  const iterations = flags.iterations !== undefined
    ? numberList("iterations", String(flags.iterations)).map((v) => {
      if (!Number.isInteger(v) || v < 1) {
        throw new UsageError(`Flag '--iterations' needs positive integers, got ${v}`);
      }
      return v;
    })
    : undefined;
  const steps = positiveInt("steps", flags.steps);
  const restarts = positiveInt("restarts", flags.restarts)!;
  const limit = positiveInt("limit", flags.limit);
  const wantedBatch = positiveInt("batch-size", flags["batch-size"]);
  const split = String(flags.split);
  if (!["test", "train", "val"].includes(split)) {
    throw new UsageError(`Flag '--split' must be test, train or val, got '${split}'`);
  }
  const out = (flags.out as string | undefined) ??
    `${path.replace(/\.safetensors$/, "")}.attack.json`;
  // fail before the (long) attack rather than after it
  await checkWritable(out, !!flags.force);
  const pgdOpts = pgdSettings(attacks, flags);
  const ck = await readCheckpoint(path);
  const req = await modelRequest(path, ck, flags);
  const meta = ck.metadata as { data?: { valFraction?: number }; seed?: number };
  const dataName = datasetName(path, ck, req, flags, io.err);
  const data = await seams.loadData(dataName, {
    path: flags["data-path"] as string | undefined,
    valFraction: split === "val" ? meta.data?.valFraction ?? 0.1 : 0,
    seed: meta.seed ?? 0,
  });
  const set = split === "test" ? data.test : split === "val" ? data.val : data.train;
  if (!set) throw new UsageError(`Dataset '${dataName}' has no ${split} split`);
  const rt = await createBackend(flags);
  let model: Sequential | null = null;
  try {
    model = loadCheckpointModel(rt, path, ck, req, set, io.err);
    model.eval();
    const batchSize = wantedBatch ??
      fittingBatchSize(rt, model, set.sampleShape, 256, { backward: true });
    const t0 = performance.now();
    const r = await robustness(rt, model, set, {
      attacks: attacks as AttackName[],
      eps,
      steps,
      restarts,
      alpha: pgdOpts.alpha,
      randomStart: pgdOpts.randomStart,
      seed: flags.seed as number,
      batchSize,
      limit,
      iterations,
      // A line per batch on stderr: attacks with the sanity checks take minutes on a CPU adapter.
      onProgress: flags.json ? undefined : (done, total) =>
        io.err(
          `attack: ${done}/${total} samples (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
        ),
      sanityChecks: !flags["no-checks"],
    });
    const report = {
      checkpoint: path,
      data: dataName,
      split,
      adapter: rt.description,
      settings: {
        attacks,
        eps,
        steps: steps ?? null,
        restarts,
        // the step of pgd / pgd-l2: a number (pixel units) or the default rule
        alpha: pgdOpts.alpha ?? "2.5*eps/steps",
        randomStart: pgdOpts.randomStart,
        seed: flags.seed,
        limit,
        batchSize,
      },
      seconds: +((performance.now() - t0) / 1000).toFixed(2),
      ...r,
    };
    const text = JSON.stringify(report, null, 2);
    await writeFileAtomic(out, new TextEncoder().encode(text + "\n"), { force: !!flags.force });
    if (flags.json) io.out(text);
    else {
      const how = pgdSettingsLine(attacks, { steps, ...pgdOpts });
      if (how) io.out(how);
      for (const line of formatReport(r)) io.out(line);
      io.out(`report written to ${out}`);
    }
    return r.checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    model?.dispose();
    rt.destroy();
  }
}

/** The `attack` subcommand, for cli.ts's command table. */
export const attackSubcommand: Command = {
  summary: "Attack a checkpoint: accuracy vs eps under FGSM/PGD/APGD/CW/DeepFool, JSON report",
  args: "<checkpoint>",
  details: [
    "Examples:",
    "  cli.ts attack runs/lenet.safetensors --attack fgsm,pgd --eps 0.05,0.1,0.2,0.3",
    "  cli.ts attack runs/lenet.safetensors --attack pgd-l2,cw,deepfool --eps 0.5,1,2",
    "Exit code 1 when a sanity check fails (the report is still written).",
  ].join("\n"),
  flags: attackFlags,
  run: runAttackCli,
};

/**
 * Runs `attack` with its own argument parsing and error handling (exit codes as cli.ts: 0 ok,
 * 1 failure or failed sanity check, 2 usage error or existing report).
 * @param args the arguments after `attack`
 * @param io where to print (default: console)
 * @returns the exit code
 */
export function attackCommand(args: string[], io: Io = CONSOLE_IO): Promise<number> {
  return runCommand("attack", attackSubcommand, args, io);
}

if (import.meta.main) Deno.exit(await attackCommand(Deno.args));

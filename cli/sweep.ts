/**
 * `cli.ts sweep FILE`: an experiment preset (experiments/*.json) expanded into its grid of runs,
 * each trained, attacked and measured into its own folder, locally with N worker processes or
 * as a Slurm job array; re-running resumes (finished runs are skipped, failed and killed ones
 * retried with their earlier error kept). `cli.ts sweep collect DIR` makes the tables.
 *
 * A run is one subprocess `cli.ts sweep FILE --task ID` (locally and in each array task); the
 * claim files of cli/sweep/store.ts keep two of them off the same run.
 *
 * @module
 */

import { type Command, type Io, type ParsedArgs, UsageError } from "./args.ts";
import { readFileOrFail, writeFileAtomic } from "./fs.ts";
import {
  arrayRanges,
  canonicalJson,
  expandPreset,
  parseGridOverride,
  parsePreset,
  type Preset,
  type RunSpec,
  shortHash,
} from "../src/sweep/grid.ts";
import {
  claimRun,
  recordFailure,
  runDir,
  type RunState,
  runState,
  sweepDir,
  writeJson,
} from "./sweep/store.ts";
import { checkTrainFlags, executeRun } from "./sweep/run.ts";
import { repoPaths, runLocal, taskCommand } from "./sweep/local.ts";
import { sbatchScript, shellQuote, submitArray } from "./sweep/slurm.ts";
import { findSweeps, type Plan, writeTables } from "./sweep/collect.ts";

const sweepFlags = {
  budget: {
    type: "string",
    metavar: "name",
    help: "Budget of the preset: quick or full.",
    default: "quick",
  },
  grid: {
    type: "string",
    metavar: "key=v1,v2",
    multiple: true,
    help: "Replace a grid axis (seed=0,1,2; lr=0.1,0.01; variant=none,l2 picks variants).",
  },
  out: { type: "string", metavar: "dir", help: "Folder of the sweeps.", default: "sweeps" },
  workers: { type: "number", metavar: "n", help: "Runs at a time on this machine.", default: 1 },
  "retry-failed": {
    type: "boolean",
    help: "Retry runs whose last attempt failed (--no-retry-failed to leave them).",
    default: true,
  },
  "stale-after": {
    type: "number",
    metavar: "seconds",
    help: "Seconds without heartbeat after which another machine's claim is stale.",
    default: 600,
  },
  task: { type: "string", metavar: "id", help: "Run one run (its id or grid index) here, now." },
  "plan-hash": {
    type: "string",
    metavar: "hash",
    help: "With --task: refuse unless the plan has this hash.",
  },
  "dry-run": { type: "boolean", help: "Print the plan (or with --slurm the script); run nothing." },
  slurm: { type: "boolean", help: "Submit the runs still to do as one Slurm job array." },
  partition: { type: "string", metavar: "name", help: "Slurm partition (--slurm)." },
  time: {
    type: "string",
    metavar: "hh:mm:ss",
    help: "Slurm time limit per run, e.g. 02:00:00 (--slurm).",
  },
  gres: { type: "string", metavar: "spec", help: "Slurm generic resources, e.g. gpu:1 (--slurm)." },
  account: { type: "string", metavar: "name", help: "Slurm account (--slurm)." },
  "cpus-per-task": { type: "number", metavar: "n", help: "Slurm CPUs per run (--slurm)." },
  mem: { type: "string", metavar: "size", help: "Slurm memory per run, e.g. 8G (--slurm)." },
  "max-parallel": {
    type: "number",
    metavar: "n",
    help: "At most this many array tasks at once (--slurm).",
  },
  "sbatch-arg": {
    type: "string",
    metavar: "option",
    multiple: true,
    help: "Another #SBATCH option, verbatim, e.g. --qos=short (--slurm).",
  },
  sbatch: { type: "string", metavar: "path", help: "The sbatch executable.", default: "sbatch" },
} as const;

function abs(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`.replace(/\/\.\//g, "/");
}

/** The preset file, parsed and checked. */
async function loadPreset(file: string): Promise<Preset> {
  const text = new TextDecoder().decode(await readFileOrFail(file, "preset"));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parsePreset(json, file);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A sweep as the flags describe it: the preset, its runs, the folder, the plan's hash. */
interface Sweep {
  file: string;
  preset: Preset;
  budget: string;
  grid: string[];
  runs: RunSpec[];
  dir: string;
  out: string;
  planHash: string;
}

async function resolveSweep(file: string, flags: ParsedArgs["flags"]): Promise<Sweep> {
  const preset = await loadPreset(file);
  const grid = flags.grid as string[];
  const budget = String(flags.budget);
  let runs: RunSpec[];
  try {
    runs = await expandPreset(preset, { budget, grid: grid.map(parseGridOverride) });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  for (const r of runs) checkTrainFlags(r);
  const out = abs(String(flags.out));
  return {
    file: abs(file),
    preset,
    budget,
    grid,
    runs,
    out,
    dir: sweepDir(out, preset.name, budget),
    planHash: await shortHash(canonicalJson(runs.map((r) => r.id)), 12),
  };
}

async function writePlan(s: Sweep): Promise<void> {
  await Deno.mkdir(`${s.dir}/runs`, { recursive: true });
  const plan: Plan = {
    preset: s.preset.name,
    budget: s.budget,
    file: s.file,
    description: s.preset.description,
    grid: s.grid,
    planHash: s.planHash,
    reference: s.preset.reference,
    runs: s.runs.map((r) => ({ id: r.id, index: r.index, variant: r.variant, axes: r.axes })),
  };
  await writeJson(`${s.dir}/plan.json`, plan, true);
}

/** The arguments after `sweep` that reproduce this sweep in a task (absolute paths). */
function taskArgs(s: Sweep, flags: ParsedArgs["flags"]): string[] {
  return [
    s.file,
    "--budget",
    s.budget,
    ...s.grid.flatMap((g) => ["--grid", g]),
    "--out",
    s.out,
    "--stale-after",
    String(flags["stale-after"]),
    "--plan-hash",
    s.planHash,
  ];
}

async function states(s: Sweep, staleAfter: number): Promise<RunState[]> {
  return await Promise.all(s.runs.map((r) => runState(runDir(s.dir, r.id), { staleAfter })));
}

function countStates(st: RunState[]): string {
  const n: Record<string, number> = {};
  for (const x of st) n[x.state] = (n[x.state] ?? 0) + 1;
  return ["done", "running", "failed", "stale", "missing"].filter((k) => n[k])
    .map((k) => `${n[k]} ${k}`).join(", ");
}

/** `--task`: claim and run one run in this process. */
async function runTask(s: Sweep, flags: ParsedArgs["flags"], io: Io): Promise<number> {
  const want = String(flags.task);
  if (flags["plan-hash"] !== undefined && flags["plan-hash"] !== s.planHash) {
    throw new UsageError(
      `The plan of ${s.file} (budget ${s.budget}) changed since this task was submitted ` +
        `(hash ${s.planHash}, expected ${flags["plan-hash"]}); submit the sweep again`,
    );
  }
  const run = /^\d+$/.test(want) ? s.runs[Number(want)] : s.runs.find((r) => r.id === want);
  if (!run) {
    throw new UsageError(
      `No run '${want}' in ${s.file} (budget ${s.budget}): give an id from the plan or an index ` +
        `0..${s.runs.length - 1}`,
    );
  }
  await writePlanIfMissing(s);
  const dir = runDir(s.dir, run.id);
  const got = await claimRun(dir, {
    staleAfter: flags["stale-after"] as number,
    retryFailed: flags["retry-failed"] as boolean,
  });
  if ("skipped" in got) {
    const st = got.skipped;
    io.out(
      `${run.id}: ${
        st.state === "done"
          ? "already done"
          : st.state === "running"
          ? `running elsewhere (attempt ${st.attempt}, ${st.claim.host} pid ${st.claim.pid})`
          : st.state === "taken"
          ? "claimed by another task just now"
          : `not retried (${st.state})`
      }; nothing to do`,
    );
    return 0;
  }
  const claim = got.claim;
  const onTerm = () => {
    // scancel and Slurm's time limit send SIGTERM first: record why, so the table can say.
    recordFailure(claim, new Error("killed by SIGTERM (scancel, a time limit or kill)"))
      .finally(() => Deno.exit(143));
  };
  try {
    Deno.addSignalListener("SIGTERM", onTerm);
  } catch { /* not supported here */ }
  io.out(`${run.id}: attempt ${claim.attempt} on ${claim.info.host} (pid ${Deno.pid})`);
  try {
    const r = await executeRun(run, claim, (l) => io.out(l));
    io.out(
      `${run.id}: done in ${r.seconds.toFixed(1)} s: test accuracy ${
        (100 * r.metrics.testAccuracy).toFixed(2)
      }%`,
    );
    return 0;
  } catch (e) {
    io.err(`${run.id}: attempt ${claim.attempt} failed: ${(e as Error)?.message ?? e}`);
    const superseded = await claim.check().then(() => false, () => true);
    if (!superseded) await recordFailure(claim, e);
    return 1;
  } finally {
    claim.release();
    try {
      Deno.removeSignalListener("SIGTERM", onTerm);
    } catch { /* ignore */ }
  }
}

async function writePlanIfMissing(s: Sweep): Promise<void> {
  try {
    await Deno.stat(`${s.dir}/plan.json`);
  } catch {
    await writePlan(s);
  }
}

function todo(s: Sweep, st: RunState[], retryFailed: boolean): RunSpec[] {
  return s.runs.filter((_, i) =>
    st[i].state === "missing" || st[i].state === "stale" ||
    (st[i].state === "failed" && retryFailed)
  );
}

async function runSweep({ flags, positionals }: ParsedArgs, io: Io): Promise<number> {
  if (positionals[0] === "collect") return await runCollect(positionals.slice(1), flags, io);
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length
        ? `'cli.ts sweep' takes one preset file, got ${positionals.length}`
        : "'cli.ts sweep' needs a preset: cli.ts sweep experiments/toy.json",
    );
  }
  const workers = flags.workers as number;
  if (!(Number.isInteger(workers) && workers >= 1)) {
    throw new UsageError(`Flag '--workers' needs a positive integer, got ${workers}`);
  }
  const staleAfter = flags["stale-after"] as number;
  if (!(staleAfter > 0)) throw new UsageError(`Flag '--stale-after' needs seconds > 0`);
  const s = await resolveSweep(positionals[0], flags);
  if (flags.task !== undefined) return await runTask(s, flags, io);
  const st = await states(s, staleAfter);
  const pending = todo(s, st, flags["retry-failed"] as boolean);
  io.out(
    `sweep ${s.preset.name} (${s.budget}): ${s.runs.length} runs in ${s.dir}: ${countStates(st)}`,
  );
  if (flags["dry-run"] && !flags.slurm) {
    s.runs.forEach((r, i) => io.out(`  ${String(r.index).padStart(3)} ${r.id}  ${st[i].state}`));
    return 0;
  }
  await writePlan(s);
  if (!pending.length) {
    io.out("nothing to run; 'cli.ts sweep collect' makes the table");
    return 0;
  }
  const cmd = taskCommand(taskArgs(s, flags));
  if (flags.slurm) {
    const maxPar = flags["max-parallel"] as number | undefined;
    if (maxPar !== undefined && !(Number.isInteger(maxPar) && maxPar >= 1)) {
      throw new UsageError(`Flag '--max-parallel' needs a positive integer, got ${maxPar}`);
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const script = sbatchScript({
      jobName: `regula-${s.preset.name}-${s.budget}`,
      logDir: `${s.dir}/slurm`,
      task: cmd,
      workdir: repoPaths().root,
      slurm: {
        partition: flags.partition as string | undefined,
        time: flags.time as string | undefined,
        gres: flags.gres as string | undefined,
        account: flags.account as string | undefined,
        cpusPerTask: flags["cpus-per-task"] as number | undefined,
        mem: flags.mem as string | undefined,
        extra: flags["sbatch-arg"] as string[],
      },
      comment: `regula sweep ${s.preset.name} (${s.budget}), ${s.runs.length} runs, plan ` +
        `${s.planHash}, written ${new Date().toISOString()}`,
    });
    const array = arrayRanges(pending.map((r) => r.index)) + (maxPar ? `%${maxPar}` : "");
    const path = `${s.dir}/slurm/sweep-${stamp}.sh`;
    const submit = `${shellQuote(String(flags.sbatch))} --parsable --array=${array} ${
      shellQuote(path)
    }`;
    if (flags["dry-run"]) {
      io.out(script);
      io.out(`# would run: ${submit}`);
      return 0;
    }
    await Deno.mkdir(`${s.dir}/slurm`, { recursive: true });
    await writeFileAtomic(path, new TextEncoder().encode(script), {});
    await Deno.chmod(path, 0o755).catch(() => {});
    const job = await submitArray(path, array, String(flags.sbatch));
    io.out(`submitted job ${job}: ${pending.length} array task(s) --array=${array} (${path})`);
    io.out(`logs in ${s.dir}/slurm/; when they end: cli.ts sweep collect ${s.out}`);
    return 0;
  }
  io.out(`running ${pending.length} run(s), ${workers} at a time; logs in ${s.dir}/logs/`);
  const t0 = performance.now();
  let finished = 0;
  await runLocal(pending.map((r) => r.id), cmd, {
    workers,
    logDir: `${s.dir}/logs`,
    onDone: (o) => {
      finished++;
      io.out(
        `[${finished}/${pending.length}] ${o.id} ${
          o.code === 0 ? "ok" : `FAILED (exit ${o.code})`
        } ` +
          `${o.seconds.toFixed(1)} s`,
      );
    },
  });
  const after = await states(s, staleAfter);
  io.out(
    `sweep ${s.preset.name} (${s.budget}) after ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s: ` +
      countStates(after),
  );
  for (const [i, x] of after.entries()) {
    if (x.state === "failed") io.out(`  ${s.runs[i].id}: ${x.error.split("\n")[0]}`);
  }
  return after.every((x) => x.state === "done") ? 0 : 1;
}

async function runCollect(args: string[], flags: ParsedArgs["flags"], io: Io): Promise<number> {
  if (args.length !== 1) {
    throw new UsageError("'cli.ts sweep collect' needs one folder: cli.ts sweep collect sweeps");
  }
  const dirs = await findSweeps(args[0].replace(/\/+$/, "") || ".");
  if (!dirs.length) {
    throw new UsageError(`${args[0]} holds no sweep (no plan.json in it or its subfolders)`);
  }
  for (const d of dirs) {
    const { markdown, plan } = await writeTables(d, { staleAfter: flags["stale-after"] as number });
    io.out(`## ${plan.preset} (${plan.budget})\n`);
    io.out(markdown);
    io.out(`\nwrote ${d}/table.csv, table.md, table.html\n`);
  }
  return 0;
}

/** The `sweep` subcommand. */
export const sweepCommand: Command = {
  summary: "Run an experiment preset's grid locally or on Slurm; 'sweep collect' tabulates it",
  args: "<preset.json> | collect <dir>",
  details: [
    "Examples:",
    "  cli.ts sweep experiments/toy.json --budget quick --workers 2",
    "  cli.ts sweep experiments/mnist_lenet.json --grid seed=0,1,2 --grid variant=none,l2",
    "  cli.ts sweep experiments/cifar10_ddnet.json --budget full --slurm --partition gpu \\",
    "      --gres gpu:1 --time 12:00:00 --account myproj",
    "  cli.ts sweep experiments/toy.json --slurm --dry-run      # print the sbatch script",
    "  cli.ts sweep collect sweeps                             # tables of every sweep in sweeps/",
    "Runs that are done are skipped; failed or killed ones are retried (their error is kept).",
    "Exit code 1 when some run has no result after a local sweep.",
  ].join("\n"),
  flags: sweepFlags,
  run: runSweep,
};

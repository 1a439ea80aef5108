/**
 * One run of a sweep, start to end: train with `cli.ts train` (its flags, its checkpoint
 * writer), attack with `cli.ts attack` (its JSON report), then measure with src/metrics (test and
 * training accuracy, the generalization gap, ECE, ‖J‖_F, decision-plane TV) and write
 * `metrics.json`. Each stage's file is written atomically; a stage whose file a killed earlier
 * attempt already wrote whole is not redone.
 *
 * @module
 */

import { HELP_FLAG, type Io, parseFlags, UsageError } from "../args.ts";
import { readFileOrFail } from "../fs.ts";
import { trainCommand } from "../train.ts";
import { attackCommand } from "../attack.ts";
import * as seams from "../_seams.ts";
import { createBackend } from "../backend.ts";
import type { Sequential } from "../../src/layers/sequential.ts";
import { decodeCheckpoint, loadStateDict } from "../../src/io/checkpoint.ts";
import { evaluateMetrics, jacobianFrobenius, planeTv, weightStats } from "../../src/metrics/mod.ts";
import { logitMargins } from "../../src/metrics/margin.ts";
import { type RunSpec, trainArgv } from "../../src/sweep/grid.ts";
import { type Claim, previousErrors, readJson, writeJson } from "./store.ts";
import { exists } from "../fs.ts";

/** What `metrics.json` holds. */
export interface RunResult {
  id: string;
  index: number;
  preset: string;
  budget: string;
  variant: string;
  axes: Record<string, string | number | boolean>;
  status: "done";
  /** Scalar metrics (fractions; attacks as `fgsm@0.1`), the table's cells. */
  metrics: Record<string, number>;
  /** Accuracy vs ε per attack, from the attack report. */
  curves: { eps: number[]; accuracy: Record<string, number[]> } | null;
  details: Record<string, unknown>;
  attempt: number;
  previousErrors: { attempt: number; error: string; at?: string }[];
  /** Stages taken from an earlier, killed attempt. */
  reused: string[];
  seconds: number;
  host: string;
  finished: string;
}

/**
 * Checks that a run's training flags are flags of `cli.ts train` (and none the sweep sets).
 * @param run the run
 * @throws UsageError naming the run and the flag
 */
export function checkTrainFlags(run: RunSpec): void {
  for (const k of ["out", "force", "json", "quiet", "help"]) {
    if (k in run.train) {
      throw new UsageError(`Run ${run.id}: the sweep sets '--${k}' itself; remove "${k}"`);
    }
  }
  try {
    parseFlags(trainArgv(run.train), trainCommand.flags, "cli.ts train");
  } catch (e) {
    throw new UsageError(`Run ${run.id} (variant ${run.variant}): ${(e as Error).message}`);
  }
}

/** Runs a command object with captured output; throws with its stderr when it fails. */
async function runCapturing(
  what: string,
  run: (io: Io) => Promise<number>,
  log: (s: string) => void,
  okCodes: number[] = [0],
): Promise<{ out: string[]; code: number }> {
  const out: string[] = [], err: string[] = [];
  const io: Io = {
    out: (s) => out.push(s),
    err: (s) => {
      err.push(s);
      log(`  ${what}: ${s}`);
    },
  };
  const code = await run(io);
  if (!okCodes.includes(code)) {
    throw new Error(
      `${what} exited with ${code}: ${
        err.filter((l) => l.startsWith("error")).join("; ") || err.slice(-3).join("; ")
      }`,
    );
  }
  return { out, code };
}

/**
 * Trains, attacks and measures one run into its folder, under a claim.
 * @param run the run
 * @param claim this task's claim on the run's folder
 * @param log progress lines
 * @returns the result written to metrics.json
 */
export async function executeRun(
  run: RunSpec,
  claim: Claim,
  log: (s: string) => void,
): Promise<RunResult> {
  const t0 = performance.now();
  const dir = claim.dir;
  const reused: string[] = [];
  const ckpt = `${dir}/model.safetensors`, trainJson = `${dir}/train.json`;
  const attackJson = `${dir}/attack.json`;
  await claim.check();
  if (!await exists(`${dir}/config.json`)) {
    await writeJson(`${dir}/config.json`, {
      id: run.id,
      preset: run.preset,
      budget: run.budget,
      variant: run.variant,
      axes: run.axes,
      train: run.train,
      eval: run.eval,
      trainArgv: trainArgv(run.train),
    });
  }

  // 1. Train (cli.ts train writes the checkpoint atomically).
  let summary: Record<string, unknown>;
  const prior = await readJson<Record<string, unknown>>(trainJson);
  if (prior && await exists(ckpt)) {
    summary = prior;
    reused.push("train");
    log(`${run.id}: reusing the checkpoint of an earlier attempt`);
  } else {
    log(`${run.id}: cli.ts train ${trainArgv(run.train).join(" ")}`);
    await claim.check();
    const argv = [...trainArgv(run.train), "--out", ckpt, "--force", "--json"];
    const { out, code } = await runCapturing(
      "train",
      async (io) => {
        const parsed = parseFlags(argv, { ...trainCommand.flags, help: HELP_FLAG }, "cli.ts train");
        return await trainCommand.run(parsed, io);
      },
      log,
      [0, 130],
    );
    if (code === 130) throw new Error("training was interrupted (SIGINT)");
    const line = out.filter((l) => l.startsWith("{")).at(-1);
    if (!line) throw new Error("cli.ts train --json printed no summary");
    summary = JSON.parse(line);
    await claim.check();
    await writeJson(trainJson, summary, true);
  }

  // 2. Attack (cli.ts attack writes its report atomically).
  const attack = run.eval.attack;
  let report: Record<string, unknown> | null = null;
  if (attack !== false && attack !== undefined) {
    report = await readJson(attackJson);
    if (report) reused.push("attack");
    else {
      const argv = [
        ckpt,
        "--out",
        attackJson,
        "--force",
        "--json",
        "--attack",
        (attack.attacks ?? ["fgsm", "pgd"]).join(","),
        "--eps",
        (attack.eps ?? [0.05, 0.1, 0.2, 0.3]).join(","),
        "--limit",
        String(attack.limit ?? 1000),
        "--seed",
        String(run.train.seed ?? 0),
      ];
      if (attack.steps !== undefined) argv.push("--steps", String(attack.steps));
      if (!attack.checks) argv.push("--no-checks");
      log(`${run.id}: cli.ts attack ${argv.slice(5).join(" ")}`);
      await claim.check();
      // Exit code 1: a sanity check failed; the report is still written and says which.
      await runCapturing("attack", (io) => attackCommand(argv, io), log, [0, 1]);
      report = await readJson(attackJson);
      if (!report) throw new Error(`cli.ts attack wrote no report at ${attackJson}`);
    }
  }

  // 3. Metrics on the checkpoint.
  log(`${run.id}: metrics`);
  const ck = decodeCheckpoint(await readFileOrFail(ckpt, "checkpoint"));
  const meta = ck.metadata as {
    data?: { name?: string; path?: string | null; valFraction?: number; limit?: number | null };
    seed?: number;
  };
  const data = await seams.loadData(meta.data?.name ?? String(run.train.data ?? "mnist"), {
    path: meta.data?.path ?? undefined,
    limit: meta.data?.limit ?? undefined,
    valFraction: meta.data?.valFraction ?? 0,
    seed: meta.seed ?? 0,
  });
  const test = data.test ?? data.val;
  if (!test) throw new Error(`dataset ${data.name} has no test or validation split to measure`);
  const ev = run.eval;
  // The backend the preset's training used (`backend`/`threads` train flags), else auto.
  const rt = await createBackend({
    backend: String(run.train.backend ?? "auto"),
    ...(typeof run.train.threads === "number" ? { threads: run.train.threads } : {}),
  });
  let model: Sequential | null = null;
  const metrics: Record<string, number> = {};
  const details: Record<string, unknown> = {};
  try {
    model = await seams.buildModelFromSpec(rt, ck.metadata.model);
    loadStateDict(model, ck.tensors);
    model.eval();
    const d = test.sampleShape.reduce((a, b) => a * b, 1);
    const head = (set: typeof test, n: number) => {
      const k = Math.min(n, set.length);
      return {
        x: set.x.subarray(0, k * d),
        y: set.y.subarray(0, k),
        sampleShape: set.sampleShape,
        length: k,
      };
    };
    const testSamples = head(test, ev.limit ?? test.length);
    const trainSamples = head(data.train, ev.trainLimit ?? 10000);
    const mt = await evaluateMetrics(rt, model, testSamples);
    const mtr = await evaluateMetrics(rt, model, trainSamples);
    Object.assign(metrics, {
      testAccuracy: mt.accuracy,
      testLoss: mt.loss,
      trainAccuracy: mtr.accuracy,
      trainLoss: mtr.loss,
      generalizationGap: mtr.accuracy - mt.accuracy,
      ece: mt.ece,
      mce: mt.mce,
    });
    details.samples = { test: testSamples.length, train: trainSamples.length };
    // Candidate predictors of robustness for `sweep collect` (src/metrics/rank_correlation.ts).
    const margins = await logitMargins(rt, model, testSamples);
    const weights = await weightStats(model.params());
    Object.assign(metrics, {
      margin: margins.reduce((a, v) => a + v, 0) / margins.length,
      weightNorm: Math.hypot(...weights.map((w) => w.l2)),
      logSpectralProduct: weights.reduce(
        (a, w) => a + (w.spectralNorm === undefined ? NaN : Math.log(w.spectralNorm)),
        0,
      ),
    });
    await claim.check();
    const jn = Math.min(ev.jacobianSamples ?? 200, testSamples.length);
    const jac = await jacobianFrobenius(rt, model, head(test, jn), {
      nproj: ev.nproj ?? -1,
      seed: Number(run.train.seed ?? 0),
    });
    Object.assign(metrics, { jacobianF: jac.mean, jacobianFSe: jac.se, jacobianRms: jac.rms });
    details.jacobian = { samples: jn, exact: jac.exact, median: jac.median };
    if (ev.tv !== false) {
      const tvOpts = {
        images: ev.tv?.images ?? 10,
        planesPerImage: ev.tv?.planesPerImage ?? 5,
        range: ev.tv?.range ?? 10,
        resolution: ev.tv?.resolution ?? 250,
        seed: 0,
      };
      await claim.check();
      const tv = await planeTv(rt, model, testSamples, tvOpts);
      Object.assign(metrics, {
        tvIso: tv.isoMean,
        tvIsoSe: tv.isoSe,
        tvAniso: tv.anisoMean,
        tvAnisoSe: tv.anisoSe,
      });
      details.tv = { ...tvOpts, planes: tv.planes };
    }
  } finally {
    model?.dispose();
    rt.destroy();
  }
  let curves: RunResult["curves"] = null;
  if (report) {
    const r = report as { eps: number[]; accuracy: Record<string, number[]>; clean: number };
    curves = { eps: r.eps, accuracy: r.accuracy };
    for (const [a, accs] of Object.entries(r.accuracy)) {
      r.eps.forEach((e, i) => (metrics[`${a}@${e}`] = accs[i]));
    }
    details.attackCleanAccuracy = r.clean;
  }
  const history = (summary.history as Record<string, unknown>[] | undefined) ?? [];
  details.train = {
    seconds: summary.seconds,
    epochs: history.length,
    last: history.at(-1) ?? null,
    stopReason: summary.stopReason ?? null,
    test: summary.test ?? null,
  };
  const result: RunResult = {
    id: run.id,
    index: run.index,
    preset: run.preset,
    budget: run.budget,
    variant: run.variant,
    axes: run.axes,
    status: "done",
    metrics,
    curves,
    details,
    attempt: claim.attempt,
    previousErrors: await previousErrors(dir),
    reused,
    seconds: +((performance.now() - t0) / 1000).toFixed(2),
    host: claim.info.host,
    finished: new Date().toISOString(),
  };
  await claim.check();
  // No force: if metrics.json appeared meanwhile, another task finished the run; keep its result.
  await writeJson(`${dir}/metrics.json`, result);
  return result;
}

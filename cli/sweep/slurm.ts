/**
 * Slurm job arrays for a sweep: one sbatch script whose array task `$SLURM_ARRAY_TASK_ID` runs
 * the run of that index in the expanded grid (`cli.ts sweep FILE --task INDEX`), submitted with
 * `sbatch --array=<indices of the runs still to do>`; when nothing is done yet that is
 * `--array=0-(N-1)`.
 *
 * @module
 */

import type { TaskCommand } from "./local.ts";

/** Options passed through to sbatch. */
export interface SlurmOptions {
  partition?: string;
  time?: string;
  gres?: string;
  account?: string;
  cpusPerTask?: number;
  mem?: string;
  /** At most this many array tasks at once (`--array=...%K`). */
  maxParallel?: number;
  /** More `#SBATCH` lines, verbatim (e.g. `--qos=short`). */
  extra?: string[];
}

/** A word for bash, single-quoted where needed. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The sbatch script of a sweep.
 * @param opts job name, the folder of the array tasks' logs, the task command (without
 *   `--task`), the working directory, sbatch options
 * @returns the script text
 */
export function sbatchScript(opts: {
  jobName: string;
  logDir: string;
  task: TaskCommand;
  workdir: string;
  slurm: SlurmOptions;
  comment?: string;
}): string {
  const s = opts.slurm;
  const lines = [
    "#!/bin/bash",
    `#SBATCH --job-name=${opts.jobName}`,
    `#SBATCH --output=${opts.logDir}/%A_%a.out`,
    `#SBATCH --ntasks=1`,
  ];
  if (s.partition) lines.push(`#SBATCH --partition=${s.partition}`);
  if (s.time) lines.push(`#SBATCH --time=${s.time}`);
  if (s.gres) lines.push(`#SBATCH --gres=${s.gres}`);
  if (s.account) lines.push(`#SBATCH --account=${s.account}`);
  if (s.cpusPerTask) lines.push(`#SBATCH --cpus-per-task=${s.cpusPerTask}`);
  if (s.mem) lines.push(`#SBATCH --mem=${s.mem}`);
  for (const e of s.extra ?? []) lines.push(`#SBATCH ${e}`);
  if (opts.comment) lines.push(...opts.comment.split("\n").map((l) => `# ${l}`));
  lines.push(
    "# One array task per run: the index is the run's place in the expanded grid; a task whose",
    "# run is done or claimed by a live task exits 0 at once.",
    "set -euo pipefail",
    `cd ${shellQuote(opts.workdir)}`,
    'export NO_COLOR=1 XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-$(id -u)}"',
    'mkdir -p "$XDG_RUNTIME_DIR"',
    `exec ${[opts.task.deno, ...opts.task.args].map(shellQuote).join(" ")} \\`,
    '  --task "$SLURM_ARRAY_TASK_ID"',
    "",
  );
  return lines.join("\n");
}

/**
 * Submits an array job.
 * @param script path of the sbatch script
 * @param array the `--array` value (ranges, optionally `%K`)
 * @param sbatch the sbatch executable (default `sbatch` on PATH)
 * @returns the job id sbatch printed
 * @throws Error with sbatch's message when it fails or is missing
 */
export async function submitArray(
  script: string,
  array: string,
  sbatch = "sbatch",
): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(sbatch, {
      args: ["--parsable", `--array=${array}`, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `'${sbatch}' was not found: run on a Slurm login node, or use --dry-run to print the script`,
      );
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `sbatch failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text.split(";")[0];
}

/**
 * Running a sweep's runs on this machine: N worker slots, each run a subprocess
 * `cli.ts sweep FILE --task ID` (the same entry point a Slurm array task uses), its output
 * appended to `logs/<id>.log` in the sweep folder.
 *
 * @module
 */

/** The command line that runs one task (absolute paths; see {@linkcode taskCommand}). */
export interface TaskCommand {
  /** The Deno executable. */
  deno: string;
  /** Arguments after the executable, up to and including `sweep FILE ...` without `--task`. */
  args: string[];
}

/** This repository's cli.ts and deno.json, as absolute paths. */
export function repoPaths(): { cli: string; config: string; root: string } {
  const root = new URL("../../", import.meta.url);
  return {
    cli: decodeURIComponent(new URL("cli.ts", root).pathname),
    config: decodeURIComponent(new URL("deno.json", root).pathname),
    root: decodeURIComponent(root.pathname).replace(/\/$/, ""),
  };
}

/**
 * The command of a task: `deno run -A --config <repo>/deno.json <repo>/cli.ts sweep ...`.
 * @param sweepArgs the arguments after `sweep` (absolute paths), without `--task`
 * @param deno the Deno executable (default: this one)
 */
export function taskCommand(sweepArgs: string[], deno = Deno.execPath()): TaskCommand {
  const p = repoPaths();
  return { deno, args: ["run", "-A", "--config", p.config, p.cli, "sweep", ...sweepArgs] };
}

/** How one subprocess ended. */
export interface TaskOutcome {
  id: string;
  code: number;
  seconds: number;
}

/**
 * Runs tasks in at most `workers` subprocesses at a time.
 * @param ids run ids, in order
 * @param cmd the task command (`--task ID` is appended)
 * @param opts workers, the folder for logs, a callback per finished task
 * @returns each task's exit code
 */
export async function runLocal(
  ids: readonly string[],
  cmd: TaskCommand,
  opts: { workers: number; logDir: string; onDone?: (o: TaskOutcome, left: number) => void },
): Promise<TaskOutcome[]> {
  await Deno.mkdir(opts.logDir, { recursive: true });
  const queue = [...ids];
  const outcomes: TaskOutcome[] = [];
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const t0 = performance.now();
      const log = await Deno.open(`${opts.logDir}/${id}.log`, {
        write: true,
        create: true,
        append: true,
      });
      let code: number;
      try {
        const child = new Deno.Command(cmd.deno, {
          args: [...cmd.args, "--task", id],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).spawn();
        // Both streams into one log; the writes of one chunk are whole.
        const pump = async (s: ReadableStream<Uint8Array>) => {
          for await (const chunk of s) await log.write(chunk);
        };
        await Promise.all([pump(child.stdout), pump(child.stderr)]);
        code = (await child.status).code;
      } finally {
        log.close();
      }
      const o = { id, code, seconds: (performance.now() - t0) / 1000 };
      outcomes.push(o);
      opts.onDone?.(o, queue.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.workers) }, worker));
  return outcomes;
}

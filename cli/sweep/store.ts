/**
 * A sweep's folder on disk and the claims that keep two tasks off the same run.
 *
 * ```
 * <out>/<preset>-<budget>/plan.json          the expanded grid (ids, axes), rewritten per sweep
 * <out>/<preset>-<budget>/runs/<id>/
 *     config.json                             the run's configuration
 *     claim.<n>.json                          attempt n's claim (created exclusively)
 *     error.<n>.json                          attempt n failed: its error (kept for later)
 *     model.safetensors  train.json           the checkpoint and the training summary
 *     attack.json                             cli.ts attack's report
 *     metrics.json                            the result; written last, so it marks the run done
 * ```
 *
 * Claims: attempt n starts by creating `claim.n.json` with O_EXCL (`createNew`), so of two
 * tasks that want the same attempt exactly one gets it. A claim is live while its owner's
 * process exists (same machine: the pid and its start time in /proc) and it keeps touching the
 * file (a heartbeat; the only test on other machines). A claim that is neither is stale and is
 * superseded by creating `claim.<n+1>.json`; its owner, should it still be alive, sees the newer
 * claim before each write and stops. Every file is written by `writeFileAtomic` (a temporary
 * file, then a link or rename), so a task killed at any moment leaves whole files or none;
 * its temporary files are removed by the next attempt.
 *
 * @module
 */

import { exists, writeFileAtomic } from "../fs.ts";

/** Where a run stands. */
export type RunState =
  | { state: "done" }
  | { state: "missing" }
  | { state: "running"; attempt: number; claim: ClaimInfo }
  | { state: "failed"; attempt: number; error: string }
  | { state: "stale"; attempt: number; claim: ClaimInfo; why: string };

/** What a claim file holds. */
export interface ClaimInfo {
  attempt: number;
  token: string;
  host: string;
  /** hostname + boot id + pid namespace: equal means "the same process table". */
  machine: string;
  pid: number;
  /** The process's start time (clock ticks after boot, /proc/<pid>/stat field 22), if known. */
  pidStart: string | null;
  slurm: { jobId: string; arrayJobId?: string; arrayTaskId?: string } | null;
  started: string;
}

/** The sweep folder of a preset under a budget. */
export function sweepDir(out: string, preset: string, budget: string): string {
  return `${out.replace(/\/+$/, "") || "."}/${preset}-${budget}`;
}

/** A run's folder. */
export function runDir(dir: string, id: string): string {
  return `${dir}/runs/${id}`;
}

async function readText(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Reads a JSON file, or null when it does not exist.
 * @throws Error naming the file when it is not valid JSON
 */
export async function readJson<T = unknown>(path: string): Promise<T | null> {
  const text = await readText(path);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); remove it to redo it`);
  }
}

/**
 * Writes JSON atomically (numbers that are not finite as strings).
 * @param path the file
 * @param value the value
 * @param force replace an existing file
 */
export async function writeJson(path: string, value: unknown, force = false): Promise<void> {
  const text = JSON.stringify(
    value,
    (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v),
    2,
  );
  await writeFileAtomic(path, new TextEncoder().encode(text + "\n"), { force });
}

/** Attempt numbers that have a file `<prefix>.<n>.json` in a run folder. */
async function attempts(dir: string, prefix: string): Promise<number[]> {
  const out: number[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.name.match(new RegExp(`^${prefix}\\.(\\d+)\\.json$`));
      if (m) out.push(Number(m[1]));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a - b);
}

let machineCache: string | undefined;

/** hostname, boot id and pid namespace of this process. */
export async function machineId(): Promise<string> {
  if (machineCache) return machineCache;
  const boot = (await readText("/proc/sys/kernel/random/boot_id").catch(() => null))?.trim() ??
    "";
  let ns = "";
  try {
    ns = await Deno.readLink("/proc/self/ns/pid");
  } catch { /* not Linux */ }
  machineCache = `${Deno.hostname()}|${boot}|${ns}`;
  return machineCache;
}

/** The start time of a process (field 22 of /proc/<pid>/stat), or null when it does not exist. */
export async function processStart(pid: number): Promise<string | null> {
  const stat = await readText(`/proc/${pid}/stat`).catch(() => null);
  if (stat === null) return null;
  // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null;
}

/** Whether /proc describes processes here (Linux). */
async function haveProc(): Promise<boolean> {
  return (await processStart(Deno.pid)) !== null;
}

/** Options of {@linkcode runState}. */
export interface StateOptions {
  /** A claim untouched for this long (seconds) is stale. Default 600. */
  staleAfter?: number;
}

/**
 * Where a run stands: done (metrics.json), missing, running (a live claim), failed (its last
 * attempt wrote an error) or stale (a claim whose owner died or stopped its heartbeat).
 * @param dir the run's folder
 * @param opts staleness threshold
 */
export async function runState(dir: string, opts: StateOptions = {}): Promise<RunState> {
  if (await exists(`${dir}/metrics.json`)) return { state: "done" };
  const claims = await attempts(dir, "claim");
  if (!claims.length) return { state: "missing" };
  const attempt = claims[claims.length - 1];
  const err = await readJson<{ error?: string }>(`${dir}/error.${attempt}.json`).catch(() => null);
  if (err) return { state: "failed", attempt, error: err.error ?? "unknown error" };
  const path = `${dir}/claim.${attempt}.json`;
  let claim: ClaimInfo | null = null, mtime = 0;
  try {
    claim = await readJson<ClaimInfo>(path);
    mtime = (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch {
    // A claim is written whole (atomically); unreadable means it vanished meanwhile.
  }
  if (!claim) return { state: "stale", attempt, claim: {} as ClaimInfo, why: "unreadable claim" };
  if (claim.machine === await machineId() && await haveProc()) {
    const start = await processStart(claim.pid);
    if (start === null || (claim.pidStart !== null && start !== claim.pidStart)) {
      return { state: "stale", attempt, claim, why: `its process ${claim.pid} is gone` };
    }
    return { state: "running", attempt, claim };
  }
  const age = (Date.now() - mtime) / 1000;
  if (age > (opts.staleAfter ?? 600)) {
    return { state: "stale", attempt, claim, why: `no heartbeat for ${Math.round(age)} s` };
  }
  return { state: "running", attempt, claim };
}

/** A claim held by this process. */
export interface Claim {
  dir: string;
  attempt: number;
  info: ClaimInfo;
  /** Throws when a newer claim exists (this one was judged stale); call before writing. */
  check(): Promise<void>;
  /** Stops the heartbeat. */
  release(): void;
}

/**
 * Claims a run for this process unless it is done or live elsewhere.
 * @param dir the run's folder (created if missing)
 * @param opts staleness threshold, heartbeat period (seconds, default 15), whether failed runs
 *   are retried (default true)
 * @returns the claim, or why the run was not claimed
 */
export async function claimRun(
  dir: string,
  opts: StateOptions & { heartbeat?: number; retryFailed?: boolean } = {},
): Promise<{ claim: Claim } | { skipped: RunState | { state: "taken" } }> {
  await Deno.mkdir(dir, { recursive: true });
  const st = await runState(dir, opts);
  if (st.state === "done" || st.state === "running") return { skipped: st };
  if (st.state === "failed" && opts.retryFailed === false) return { skipped: st };
  const attempt = st.state === "missing" ? 1 : st.attempt + 1;
  const env = (k: string) => Deno.env.get(k);
  const info: ClaimInfo = {
    attempt,
    token: crypto.randomUUID(),
    host: Deno.hostname(),
    machine: await machineId(),
    pid: Deno.pid,
    pidStart: await processStart(Deno.pid),
    slurm: env("SLURM_JOB_ID")
      ? {
        jobId: env("SLURM_JOB_ID")!,
        arrayJobId: env("SLURM_ARRAY_JOB_ID"),
        arrayTaskId: env("SLURM_ARRAY_TASK_ID"),
      }
      : null,
    started: new Date().toISOString(),
  };
  const path = `${dir}/claim.${attempt}.json`;
  // Exclusive create: of two tasks racing for attempt n, one gets AlreadyExists.
  try {
    const f = await Deno.open(path, { write: true, createNew: true });
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(info, null, 2) + "\n");
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.syncData();
    } finally {
      f.close();
    }
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return { skipped: { state: "taken" } };
    throw e;
  }
  // Temporary files of a killed writer (writeFileAtomic's `.<name>.<random>.tmp`).
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.startsWith(".") && e.name.endsWith(".tmp")) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {});
    }
  }
  const timer = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, 1000 * (opts.heartbeat ?? 15));
  Deno.unrefTimer(timer);
  return {
    claim: {
      dir,
      attempt,
      info,
      async check() {
        if (await exists(`${dir}/claim.${attempt + 1}.json`)) {
          throw new Error(
            `attempt ${attempt} of ${dir} was superseded by attempt ${attempt + 1} ` +
              `(its claim was judged stale); this task stops without writing`,
          );
        }
      },
      release: () => clearInterval(timer),
    },
  };
}

/**
 * Records that attempt `claim.attempt` failed (the error stays for later attempts and the table).
 * @param claim the claim
 * @param error the error
 */
export async function recordFailure(claim: Claim, error: unknown): Promise<void> {
  const e = error as Error;
  await writeJson(`${claim.dir}/error.${claim.attempt}.json`, {
    attempt: claim.attempt,
    error: e?.message ?? String(error),
    stack: e?.stack ?? null,
    host: claim.info.host,
    slurm: claim.info.slurm,
    at: new Date().toISOString(),
  }, true);
}

/** The errors of earlier attempts, oldest first. */
export async function previousErrors(
  dir: string,
): Promise<{ attempt: number; error: string; at?: string }[]> {
  const out = [];
  for (const n of await attempts(dir, "error")) {
    const e = await readJson<{ error: string; at?: string }>(`${dir}/error.${n}.json`);
    if (e) out.push({ attempt: n, error: e.error, at: e.at });
  }
  return out;
}

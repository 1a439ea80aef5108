/**
 * `cli.ts sweep --slurm` through a real Slurm: scripts/slurm/start_local.sh starts munge,
 * slurmctld and slurmd on this machine (Debian's slurm-wlm and munge, installed by .ci/run), then
 * a 4-task array of the quick toy preset runs end to end; one task is cancelled (scancel) midway,
 * and submitting the sweep again resubmits only that run, which resumes and finishes.
 *
 * Where Slurm cannot start (packages missing, not root), the test fails with the reason.
 */
import { assert } from "./_util.ts";
import { main } from "../cli.ts";
import type { Io } from "../cli/args.ts";
import { runState } from "../cli/sweep/store.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const TOY = `${ROOT}/experiments/toy.json`;
const dec = new TextDecoder();

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return { ok: o.success, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
  } catch (e) {
    return { ok: false, out: `${cmd}: ${(e as Error).message}` };
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function until(what: string, seconds: number, ok: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until no task of the job is queued or running. */
async function jobEnds(job: string, seconds: number): Promise<void> {
  await until(`job ${job} to end`, seconds, async () => {
    const q = await sh("squeue", ["-h", "-j", job, "-o", "%i %T"]);
    return q.ok && q.out === "";
  });
}

function capture(): Io & { lines: string[]; errs: string[] } {
  const lines: string[] = [], errs: string[] = [];
  return { lines, errs, out: (s) => lines.push(s), err: (s) => errs.push(s) };
}

Deno.test("cli.ts sweep --slurm: a 4-task array of the quick toy preset, one task cancelled midway and resumed", async () => {
  const start = await sh("bash", [`${ROOT}/scripts/slurm/start_local.sh`]);
  if (!start.ok) {
    assert.fail(
      `Slurm could not start on this machine, so the Slurm sweep cannot be tested:\n${start.out}\n` +
        `(.ci/run installs slurm-wlm and munge; scripts/slurm/start_local.sh needs root)`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "regula_slurm_" });
  try {
    const args = [TOY, "--grid", "variant=none,jacobian", "--grid", "seed=0,1", "--out", dir];
    const io = capture();
    assert.equal(await main(["sweep", ...args, "--slurm"], io), 0, io.errs.join("\n"));
    const printed = io.lines.join("\n");
    const m = printed.match(/submitted job (\d+): 4 array task\(s\) --array=0-3 /);
    assert.ok(m, printed);
    const job = m[1];
    const sweep = `${dir}/toy-quick`;
    const plan = JSON.parse(await Deno.readTextFile(`${sweep}/plan.json`));
    const rd = (i: number) => `${sweep}/runs/${plan.runs[i].id}`;

    // Cancel array task 1 once it has claimed its run and started (config.json is its first file).
    await until("array task 1 to start its run", 240, () => exists(`${rd(1)}/config.json`));
    const cancel = await sh("scancel", [`${job}_1`]);
    assert.ok(cancel.ok, cancel.out);
    await jobEnds(job, 300);
    for (const i of [0, 2, 3]) {
      assert.ok(await exists(`${rd(i)}/metrics.json`), `run ${i}: ${await logOf(sweep, job, i)}`);
    }
    assert.ok(!await exists(`${rd(1)}/metrics.json`), "the cancelled task must leave no result");
    const st = await runState(rd(1));
    assert.ok(st.state === "failed" || st.state === "stale", JSON.stringify(st));
    const io2 = capture();
    assert.equal(await main(["sweep", "collect", dir], io2), 0);
    assert.match(io2.lines.join("\n"), new RegExp(`- ${plan.runs[1].id}: (failed|missing)`));

    // Submitting again resubmits only the cancelled run.
    const io3 = capture();
    assert.equal(await main(["sweep", ...args, "--slurm"], io3), 0, io3.errs.join("\n"));
    const m2 = io3.lines.join("\n").match(/submitted job (\d+): 1 array task\(s\) --array=1 /);
    assert.ok(m2, io3.lines.join("\n"));
    await jobEnds(m2[1], 300);
    const result = JSON.parse(await Deno.readTextFile(`${rd(1)}/metrics.json`));
    assert.equal(result.attempt, 2, await logOf(sweep, m2[1], 1));
    if (st.state === "failed") assert.match(result.previousErrors[0].error, /SIGTERM/);
    for (const i of [0, 2, 3]) {
      const r = JSON.parse(await Deno.readTextFile(`${rd(i)}/metrics.json`));
      assert.equal(r.attempt, 1);
    }
    const io4 = capture();
    assert.equal(await main(["sweep", "collect", dir], io4), 0);
    const table = io4.lines.join("\n");
    assert.match(table, /\| none +\| 2\/2 +\| 100\.00 ± 0\.00/);
    assert.match(table, /\| jacobian +\| 2\/2 /);
    assert.match(table, /Every planned run has a result/);
    const io5 = capture();
    assert.equal(await main(["sweep", ...args, "--slurm"], io5), 0);
    assert.match(io5.lines.join("\n"), /nothing to run/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function logOf(sweep: string, job: string, i: number): Promise<string> {
  return await Deno.readTextFile(`${sweep}/slurm/${job}_${i}.out`).catch(() => "(no log)");
}

/**
 * `cli.ts sweep` end to end on this machine: collect's table against a hand computation, failed
 * runs retried with their errors kept, a task killed midway (SIGKILL) leaving no result and
 * resumed, two tasks racing for one run, the sbatch script of --slurm --dry-run, usage errors.
 */
import { assert } from "./_util.ts";
import { main } from "../cli.ts";
import type { Io } from "../cli/args.ts";
import { runState } from "../cli/sweep/store.ts";
import { decodeCheckpoint } from "../src/io/checkpoint.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const TOY = `${ROOT}/experiments/toy.json`;

function capture(): Io & { lines: string[]; errs: string[] } {
  const lines: string[] = [], errs: string[] = [];
  return { lines, errs, out: (s) => lines.push(s), err: (s) => errs.push(s) };
}

async function json(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** `deno run -A cli.ts sweep ...` as a child process. */
function sweepChild(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}/deno.json`, `${ROOT}/cli.ts`, "sweep", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function text(child: Deno.ChildProcess): Promise<{ code: number; out: string }> {
  const o = await child.output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

Deno.test("cli.ts sweep collect: mean ± 95 % CI as computed by hand, failed and missing runs listed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_collect_" });
  try {
    const sweep = `${dir}/demo-quick`;
    const accs: Record<string, number[]> = { a: [0.9, 0.92, 0.97], b: [0.8, 0.86] };
    const jac: Record<string, number[]> = { a: [2, 4, 9], b: [1, 1.5] };
    const runs = [];
    for (const v of ["a", "b"]) {
      for (let seed = 0; seed < 3; seed++) {
        runs.push({ id: `${v}-seed${seed}`, index: runs.length, variant: v, axes: { seed } });
      }
    }
    await Deno.mkdir(`${sweep}/runs`, { recursive: true });
    await Deno.writeTextFile(
      `${sweep}/plan.json`,
      JSON.stringify({ preset: "demo", budget: "quick", file: "x", grid: [], planHash: "h", runs }),
    );
    for (const r of runs) {
      const rd = `${sweep}/runs/${r.id}`;
      await Deno.mkdir(rd, { recursive: true });
      const acc = accs[r.variant][r.axes.seed];
      if (acc !== undefined) {
        await Deno.writeTextFile(
          `${rd}/metrics.json`,
          JSON.stringify({
            ...r,
            status: "done",
            metrics: {
              testAccuracy: acc,
              jacobianF: jac[r.variant][r.axes.seed],
              "fgsm@0.1": acc / 2,
            },
            curves: { eps: [0.1], accuracy: { fgsm: [acc / 2] } },
          }),
        );
      }
    }
    // b-seed2 failed once; nothing at all for a run not in the folder is "missing".
    await Deno.writeTextFile(
      `${sweep}/runs/b-seed2/claim.1.json`,
      JSON.stringify({ attempt: 1, machine: "elsewhere", pid: 1 }),
    );
    await Deno.writeTextFile(
      `${sweep}/runs/b-seed2/error.1.json`,
      JSON.stringify({ attempt: 1, error: "Out of memory in fc1" }),
    );
    runs.push({ id: "a-seed3", index: 6, variant: "a", axes: { seed: 3 } });
    await Deno.writeTextFile(
      `${sweep}/plan.json`,
      JSON.stringify({ preset: "demo", budget: "quick", file: "x", grid: [], planHash: "h", runs }),
    );

    const io = capture();
    assert.equal(await main(["sweep", "collect", dir], io), 0, io.errs.join("\n"));
    const csv = (await Deno.readTextFile(`${sweep}/table.csv`)).trim().split("\n").map((l) =>
      l.split(",")
    );
    const col = (name: string) => csv[0].indexOf(name);
    // By hand. a: mean 0.93, deviations −0.03, −0.01, 0.04, s = √(0.0026 / 2); t(0.975, 2) = 4.302653.
    const sA = Math.sqrt((0.03 ** 2 + 0.01 ** 2 + 0.04 ** 2) / 2);
    const a = csv[1], b = csv[2];
    assert.equal(a[col("variant")], "a");
    assert.ok(Math.abs(Number(a[col("testAccuracy_mean")]) - 0.93) < 1e-12);
    assert.ok(Math.abs(Number(a[col("testAccuracy_std")]) - sA) < 1e-12);
    assert.ok(Math.abs(Number(a[col("testAccuracy_ci95")]) - 4.302653 * sA / Math.sqrt(3)) < 1e-6);
    // ‖J‖: 2, 4, 9: mean 5, s² = (9 + 1 + 16) / 2 = 13.
    assert.ok(Math.abs(Number(a[col("jacobianF_ci95")]) - 4.302653 * Math.sqrt(13 / 3)) < 1e-5);
    // b: two seeds, t(0.975, 1) = 12.706205; 0.80, 0.86: s = 0.06 / √2.
    assert.ok(Math.abs(Number(b[col("testAccuracy_mean")]) - 0.83) < 1e-12);
    assert.ok(
      Math.abs(
        Number(b[col("testAccuracy_ci95")]) - 12.706205 * (0.06 / Math.sqrt(2)) / Math.sqrt(2),
      ) < 1e-6,
    );
    assert.equal(b[col("testAccuracy_n")], "2");
    assert.equal(a[col("planned")], "4");
    const md = await Deno.readTextFile(`${sweep}/table.md`);
    assert.match(md, /\| a +\| 3\/4 +\| 93\.00 ± 8\.96 /);
    assert.match(md, /- b-seed2: failed after 1 attempt\(s\) — Out of memory in fc1/);
    assert.match(md, /- a-seed3: missing/);
    const out = io.lines.join("\n");
    assert.match(out, /2 run\(s\) without a result/);
    const html = await Deno.readTextFile(`${sweep}/table.html`);
    assert.match(html, /<td>93\.00 ± 8\.96<\/td>/);
    assert.match(html, /<svg/, "robustness chart");
    assert.ok(!html.includes("What predicts robustness"), "no gap or PGD accuracy: no ρ table");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep collect: Spearman ρ of each measured quantity with the gap and PGD accuracy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_collect_rho_" });
  try {
    const runs = [];
    for (const v of ["none", "jr"]) {
      for (let seed = 0; seed < 3; seed++) {
        runs.push({ id: `${v}-seed${seed}`, index: runs.length, variant: v, axes: { seed } });
      }
    }
    await Deno.writeTextFile(
      `${dir}/plan.json`,
      JSON.stringify({ preset: "demo", budget: "quick", file: "x", grid: [], planHash: "h", runs }),
    );
    // ‖J‖_F falls as PGD accuracy rises (ρ = −1); the margin ties two runs.
    const jac = [5, 4, 3.5, 2, 1.5, 1], pgd = [0.1, 0.2, 0.25, 0.4, 0.5, 0.6];
    const margin = [1, 1, 2, 3, 4, 5], gap = [0.05, 0.04, 0.06, 0.02, 0.03, 0.01];
    for (const [i, r] of runs.entries()) {
      await Deno.mkdir(`${dir}/runs/${r.id}`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/runs/${r.id}/metrics.json`,
        JSON.stringify({
          ...r,
          status: "done",
          metrics: {
            testAccuracy: 0.9,
            jacobianF: jac[i],
            margin: margin[i],
            generalizationGap: gap[i],
            "pgd@0.1": pgd[i],
            "pgd@0.3": 0,
          },
          curves: { eps: [0.1, 0.3], accuracy: { pgd: [pgd[i], 0] } },
        }),
      );
    }
    const io = capture();
    assert.equal(await main(["sweep", "collect", dir], io), 0, io.errs.join("\n"));
    const html = await Deno.readTextFile(`${dir}/table.html`);
    assert.match(html, /What predicts robustness/);
    assert.match(html, /over 6 runs/);
    assert.match(html, /ρ with PGD accuracy ε=0\.1/);
    // ‖J‖_F against PGD ε=0.1: ρ = −1 and every resample of a perfect ranking gives −1.
    assert.match(html, /<td>‖J‖_F<\/td><td>[^<]*<\/td><td>-1\.00 \[-1\.00, -1\.00\]/);
    // constant columns have no ρ
    assert.match(html, /– \(constant\)/);
    assert.ok(!html.includes("TV iso"), "quantities no run measured are left out");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep retries failed runs, keeps their errors, and skips finished ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_sweep_fail_" });
  try {
    const preset = JSON.parse(await Deno.readTextFile(TOY));
    // LeNet cannot take 2-D points: cli.ts train refuses, so this run fails every time.
    preset.variants = { none: {}, bad: { train: { model: "lenet" } } };
    preset.budgets.quick.grid = { seed: [0] };
    const file = `${dir}/p.json`;
    await Deno.writeTextFile(file, JSON.stringify(preset));
    const io = capture();
    assert.equal(await main(["sweep", file, "--out", dir, "--workers", "2"], io), 1);
    const log = io.lines.join("\n");
    assert.match(log, /2 runs in .*: 2 missing/);
    assert.match(log, /after \d+ s: 1 done, 1 failed/);
    assert.match(log, /bad-seed0-\w+: .*square images/);
    const plan = await json(`${dir}/toy-quick/plan.json`);
    const [good, bad] = plan.runs.map((r: { id: string }) => `${dir}/toy-quick/runs/${r.id}`);
    const doneAt = (await Deno.stat(`${good}/metrics.json`)).mtime!.getTime();
    const io2 = capture();
    assert.equal(await main(["sweep", file, "--out", dir], io2), 1);
    assert.match(io2.lines.join("\n"), /1 done, 1 failed/);
    assert.equal(
      (await Deno.stat(`${good}/metrics.json`)).mtime!.getTime(),
      doneAt,
      "a done run is not redone",
    );
    assert.ok(!await exists(`${good}/claim.2.json`));
    assert.match((await json(`${bad}/error.1.json`)).error, /square images/);
    assert.match((await json(`${bad}/error.2.json`)).error, /square images/);
    const io3 = capture();
    assert.equal(await main(["sweep", file, "--out", dir, "--no-retry-failed"], io3), 0);
    assert.match(io3.lines.join("\n"), /nothing to run/);
    assert.ok(!await exists(`${bad}/claim.3.json`));
    const io4 = capture();
    assert.equal(await main(["sweep", "collect", `${dir}/toy-quick`], io4), 0);
    assert.match(
      io4.lines.join("\n"),
      /bad-seed0-\w+: failed after 2 attempt\(s\) — .*square images/,
    );
    const result = await json(`${good}/metrics.json`);
    assert.equal(result.metrics.testAccuracy, 1);
    assert.ok(result.metrics.jacobianF > 0 && Number.isFinite(result.metrics.tvIso));
    assert.ok(await exists(`${good}/model.safetensors`) && await exists(`${good}/train.json`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep: a task killed midway leaves no result and the next sweep resumes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_sweep_kill_" });
  try {
    const grid = ["--grid", "variant=none", "--grid", "seed=0", "--grid", "epochs=60"];
    const child = sweepChild([TOY, ...grid, "--out", dir, "--task", "0"]);
    const runs = `${dir}/toy-quick/runs`;
    let rd = "";
    for (let i = 0; i < 600 && !rd; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (!await exists(runs)) continue;
      for await (const e of Deno.readDir(runs)) {
        if (await exists(`${runs}/${e.name}/config.json`)) rd = `${runs}/${e.name}`;
      }
    }
    assert.ok(rd, "the task never claimed its run");
    await new Promise((r) => setTimeout(r, 300)); // into training
    child.kill("SIGKILL");
    const st = await child.status;
    assert.equal(st.signal, "SIGKILL");
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    assert.ok(!await exists(`${rd}/metrics.json`), "a killed task must leave no result");
    // Whatever it left is whole: JSON parses, a checkpoint (if written) decodes.
    for await (const e of Deno.readDir(rd)) {
      if (e.name.endsWith(".json")) await json(`${rd}/${e.name}`);
      if (e.name === "model.safetensors") decodeCheckpoint(await Deno.readFile(`${rd}/${e.name}`));
    }
    const state = await runState(rd);
    assert.equal(state.state, "stale", JSON.stringify(state));
    const io = capture();
    assert.equal(await main(["sweep", TOY, ...grid, "--out", dir], io), 0, io.lines.join("\n"));
    assert.match(io.lines.join("\n"), /1 stale/);
    const result = await json(`${rd}/metrics.json`);
    assert.equal(result.attempt, 2);
    for await (const e of Deno.readDir(rd)) assert.ok(!e.name.endsWith(".tmp"), `left ${e.name}`);
    const io2 = capture();
    assert.equal(await main(["sweep", TOY, ...grid, "--out", dir], io2), 0);
    assert.match(io2.lines.join("\n"), /1 done\nnothing to run/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep --task: two tasks started together run the run once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_sweep_race_" });
  try {
    const args = [TOY, "--grid", "variant=none", "--grid", "seed=1", "--out", dir, "--task", "0"];
    const [a, b] = await Promise.all([text(sweepChild(args)), text(sweepChild(args))]);
    assert.equal(a.code, 0, a.out);
    assert.equal(b.code, 0, b.out);
    const ran = [a, b].filter((x) => /attempt 1 on/.test(x.out));
    assert.equal(ran.length, 1, a.out + "\n---\n" + b.out);
    const other = [a, b].find((x) => !/attempt 1 on/.test(x.out))!;
    assert.match(other.out, /running elsewhere|claimed by another task|already done/);
    const plan = await json(`${dir}/toy-quick/plan.json`);
    const rd = `${dir}/toy-quick/runs/${plan.runs[0].id}`;
    const names = [];
    for await (const e of Deno.readDir(rd)) names.push(e.name);
    assert.deepEqual(names.filter((n) => n.startsWith("claim")), ["claim.1.json"]);
    assert.equal((await json(`${rd}/metrics.json`)).attempt, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep --slurm --dry-run prints the sbatch script and the array it would submit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_sweep_dry_" });
  try {
    const io = capture();
    const code = await main([
      "sweep",
      TOY,
      "--grid",
      "variant=none,l2",
      "--grid",
      "seed=0,1",
      "--out",
      dir,
      "--slurm",
      "--dry-run",
      "--partition",
      "gpu",
      "--time",
      "01:00:00",
      "--gres",
      "gpu:1",
      "--account",
      "proj42",
      "--max-parallel",
      "2",
      "--sbatch-arg",
      "--qos=short",
    ], io);
    assert.equal(code, 0, io.errs.join("\n"));
    const out = io.lines.join("\n");
    for (
      const line of [
        "--partition=gpu",
        "--time=01:00:00",
        "--gres=gpu:1",
        "--account=proj42",
        "--qos=short",
      ]
    ) {
      assert.match(out, new RegExp(`^#SBATCH ${line.replace(/[.]/g, "\\.")}$`, "m"));
    }
    assert.match(out, /^#SBATCH --output=.*\/toy-quick\/slurm\/%A_%a\.out$/m);
    assert.match(
      out,
      /cli\.ts sweep .*toy\.json --budget quick --grid variant=none,l2 --grid seed=0,1 .*--plan-hash \w+ \\\n {2}--task "\$SLURM_ARRAY_TASK_ID"/,
    );
    assert.match(out, /^# would run: sbatch --parsable --array=0-3%2 /m);
    assert.ok(!await exists(`${dir}/toy-quick/slurm`), "a dry run writes no script");
    // A task of an older plan refuses to run.
    const io2 = capture();
    assert.equal(
      await main(["sweep", TOY, "--out", dir, "--task", "0", "--plan-hash", "0000"], io2),
      2,
    );
    assert.match(io2.errs.join("\n"), /changed since this task was submitted/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts sweep reports mistakes in one line with exit code 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_sweep_usage_" });
  try {
    const cases: [string[], RegExp][] = [
      [["sweep"], /needs a preset/],
      [["sweep", `${dir}/nope.json`], /No such preset/],
      [["sweep", TOY, "--grid", "variant=nope"], /no variant 'nope'.*none, dropout/],
      [["sweep", TOY, "--budget", "medium"], /no budget 'medium'/],
      [["sweep", TOY, "--grid", "seed"], /key=v1,v2/],
      [["sweep", TOY, "--grid", "lamda=1", "--out", dir], /Unknown flag '--lamda'.*cli\.ts train/],
      [["sweep", TOY, "--task", "999", "--out", dir], /No run '999'/],
      [["sweep", "collect", `${dir}/none`], /No such sweep folder/],
    ];
    for (const [argv, re] of cases) {
      const io = capture();
      assert.equal(await main(argv, io), 2, `${argv.join(" ")}: ${io.errs.join("\n")}`);
      assert.equal(io.errs.length, 1, io.errs.join("\n"));
      assert.match(io.errs[0], re);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

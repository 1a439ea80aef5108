/**
 * The regula command line: `deno run -A cli.ts <command> [flags]`.
 *
 * Commands live in one table ({@linkcode COMMANDS}); each declares its flags
 * and a `run` that returns an exit code. Exit codes: 0 success, 1 failure
 * (no adapter, a failed check, a runtime error), 2 usage error (unknown
 * command or flag, bad value). Usage errors print one line and no stack.
 *
 * This file and cli/ (the subcommands, flag parsing, files) are the only code that uses Deno
 * APIs.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { Runtime } from "./src/gpu/runtime.ts";
import { type CheckResult, selfCheck } from "./src/selfcheck.ts";
import { type Command, didYouMean, type Io, usage, UsageError } from "./cli/args.ts";
import { exitCodeOf, runCommand } from "./cli/_run.ts";
import { trainCommand } from "./cli/train.ts";
import { evalCommand } from "./cli/eval.ts";
import { attackSubcommand } from "./cli/attack.ts";
import { reportSubcommand } from "./cli/report.ts";

export {
  type Command,
  type FlagSpec,
  type Io,
  type ParsedArgs,
  parseFlags,
  UsageError,
} from "./cli/args.ts";

function topUsage(): string {
  const lines = [
    `regula ${denoJson.version}: train, regularize and attack neural nets on WebGPU`,
    "",
    "Usage: deno run -A cli.ts <command> [flags]",
    "",
    "Commands:",
  ];
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  lines.push("", "Run 'deno run -A cli.ts <command> --help' for a command's flags.");
  return lines.join("\n");
}

/** The limits worth knowing when sizing models and batches. */
const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
] as const;

function fmtCheck(r: CheckResult, width: number): string {
  const dots = `${r.name} `.padEnd(width + 4, ".");
  if (!r.ok) return `  ${dots} FAILED: ${r.detail}`;
  const err = r.maxError === 0 ? "0" : r.maxError.toExponential(1);
  return `  ${dots} ok (max err ${err}, ${Math.round(r.ms)} ms)`;
}

const info: Command = {
  summary: "Show the WebGPU adapter, its limits, and run the kernel self-check",
  flags: {
    json: { type: "boolean", help: "Print one JSON object instead of text." },
    "skip-checks": { type: "boolean", help: "Only describe the adapter; run no kernel." },
    only: { type: "string", help: "Run only the checks whose name starts with this (comma list)." },
  },
  async run({ flags }, io) {
    const rt = await Runtime.create();
    try {
      const limits: Record<string, number> = {};
      // deno-lint-ignore no-explicit-any
      for (const k of KEY_LIMITS) limits[k] = (rt.device.limits as any)[k];
      const only = typeof flags.only === "string"
        ? flags.only.split(",").map((s) => s.trim())
        : undefined;
      const checks = flags["skip-checks"] ? [] : await selfCheck(rt, { only });
      const failed = checks.filter((c) => !c.ok).length;
      if (flags.json) {
        io.out(JSON.stringify(
          {
            version: denoJson.version,
            runtime: `deno ${Deno.version.deno}`,
            backend: "webgpu",
            adapter: rt.description,
            isFallbackAdapter: rt.isFallback,
            limits,
            checks,
            passed: checks.length - failed,
            failed,
          },
          (_k, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
          2,
        ));
      } else {
        io.out(`regula ${denoJson.version} (deno ${Deno.version.deno})`);
        io.out(`backend   webgpu`);
        io.out(`adapter   ${rt.description}`);
        io.out(`fallback  ${rt.isFallback ? "yes (software adapter: correct but slow)" : "no"}`);
        io.out("limits");
        for (const [k, v] of Object.entries(limits)) io.out(`  ${k.padEnd(36)} ${v}`);
        if (checks.length) {
          io.out("self-check");
          const width = Math.max(...checks.map((c) => c.name.length));
          for (const c of checks) io.out(fmtCheck(c, width));
          io.out(`${checks.length - failed}/${checks.length} checks passed`);
        }
      }
      return failed ? 1 : 0;
    } finally {
      rt.destroy();
    }
  },
};

/**
 * The subcommands. Add new ones here (train, eval, attack, report): a summary,
 * the flags, and a `run` returning the exit code.
 */
export const COMMANDS: Record<string, Command> = {
  info,
  train: trainCommand,
  eval: evalCommand,
  attack: attackSubcommand,
  report: reportSubcommand,
};

/** Console output; on a terminal, `status` redraws one line of stderr (progress bars). */
function consoleIo(): Io {
  const enc = new TextEncoder();
  let drawn = false;
  const clear = () => {
    if (drawn) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
    drawn = false;
  };
  const io: Io = {
    out: (s) => (clear(), console.log(s)),
    err: (s) => (clear(), console.error(s)),
  };
  if (Deno.stderr.isTerminal()) {
    io.status = (s) => {
      Deno.stderr.writeSync(enc.encode(`\r\x1b[K${s}`));
      drawn = true;
    };
  }
  return io;
}

/**
 * Runs the CLI.
 * @param argv the command line after `cli.ts`
 * @param io where to print (default: console)
 * @returns the exit code
 */
export async function main(
  argv: readonly string[],
  io: Io = consoleIo(),
): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === "--help" || name === "-h" || name === "help") {
      const cmd = name === "help" && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
      if (name === "help" && rest[0] !== undefined && !cmd) {
        throw new UsageError(
          `Unknown command '${rest[0]}'; commands: ${Object.keys(COMMANDS).join(", ")}`,
        );
      }
      io.out(cmd ? usage(rest[0], cmd) : topUsage());
      return name === undefined ? 2 : 0;
    }
    if (name === "--version" || name === "-V") {
      io.out(`regula ${denoJson.version}`);
      return 0;
    }
    const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!cmd) {
      const what = name.startsWith("-") ? "flag" : "command";
      throw new UsageError(
        `Unknown ${what} '${name}'${
          what === "command" ? didYouMean(name, Object.keys(COMMANDS)) : ""
        }; commands: ${Object.keys(COMMANDS).join(", ")} (see 'cli.ts --help')`,
      );
    }
    return await runCommand(name, cmd, rest, io);
  } catch (e) {
    return exitCodeOf(e, io);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

/**
 * The regula command line: `deno run -A cli.ts <command> [flags]`.
 *
 * Commands live in one table ({@linkcode COMMANDS}); each declares its flags
 * and a `run` that returns an exit code. Exit codes: 0 success, 1 failure
 * (no adapter, a failed check, a runtime error), 2 usage error (unknown
 * command or flag, bad value). Usage errors print one line and no stack.
 *
 * This is the only file that uses Deno APIs.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import { NoAdapterError } from "./src/gpu/device.ts";
import { Runtime } from "./src/gpu/runtime.ts";
import { type CheckResult, selfCheck } from "./src/selfcheck.ts";

/** A flag a command accepts. */
export interface FlagSpec {
  type: "boolean" | "string" | "number";
  /** One-line help. */
  help: string;
  /** One-letter alias ("j" for -j). */
  short?: string;
  /** Value when the flag is absent (booleans default to false). */
  default?: string | number | boolean;
}

/** Flags and positional arguments after parsing. */
export interface ParsedArgs {
  flags: Record<string, string | number | boolean>;
  positionals: string[];
}

/** A subcommand. */
export interface Command {
  /** One line shown in the command list. */
  summary: string;
  /** Positional arguments in the usage line ("<checkpoint>"), if any. */
  args?: string;
  /** Accepted flags (`--help` is added to every command). */
  flags: Record<string, FlagSpec>;
  /** Runs the command; returns the exit code. */
  run(args: ParsedArgs, io: Io): Promise<number>;
}

/** Where output goes (tests capture it). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** A mistake in the command line: reported in one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", help: "Show this help." };

/**
 * Parses `argv` against `spec`: `--name value`, `--name=value`, `-x`,
 * `--no-name` for booleans, `--` ends the flags.
 *
 * @param argv the arguments after the command name
 * @param spec the accepted flags
 * @param where the command, for error messages
 * @returns flag values (defaults filled in) and positional arguments
 * @throws UsageError for an unknown flag, a missing or malformed value
 */
export function parseFlags(
  argv: readonly string[],
  spec: Record<string, FlagSpec>,
  where: string,
): ParsedArgs {
  const flags: ParsedArgs["flags"] = {};
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(spec).filter(([, f]) => f.short).map(([n, f]) => [f.short!, n]),
  );
  for (const [name, f] of Object.entries(spec)) {
    if (f.default !== undefined) flags[name] = f.default;
    else if (f.type === "boolean") flags[name] = false;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    let name: string, value: string | undefined;
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      value = eq < 0 ? undefined : arg.slice(eq + 1);
    } else {
      if (arg.length !== 2 || !byShort.has(arg[1])) {
        throw new UsageError(`Unknown flag '${arg}' for '${where}'; see '${where} --help'`);
      }
      name = byShort.get(arg[1])!;
    }
    let f = spec[name];
    let negated = false;
    if (!f && name.startsWith("no-") && spec[name.slice(3)]?.type === "boolean") {
      name = name.slice(3);
      f = spec[name];
      negated = true;
    }
    if (!f) throw new UsageError(`Unknown flag '--${name}' for '${where}'; see '${where} --help'`);
    if (f.type === "boolean") {
      if (value !== undefined && value !== "true" && value !== "false") {
        throw new UsageError(`Flag '--${name}' takes no value (got '${value}')`);
      }
      flags[name] = negated !== (value !== "false");
      continue;
    }
    if (negated) throw new UsageError(`Unknown flag '--no-${name}' for '${where}'`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`Flag '--${name}' needs a value`);
      value = argv[++i];
    }
    if (f.type === "number") {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n)) {
        throw new UsageError(`Flag '--${name}' needs a number, got '${value}'`);
      }
      flags[name] = n;
    } else flags[name] = value;
  }
  return { flags, positionals };
}

function usage(name: string, cmd: Command): string {
  const lines = [
    `${cmd.summary}`,
    "",
    `Usage: deno run -A cli.ts ${name}${cmd.args ? ` ${cmd.args}` : ""} [flags]`,
    "",
    "Flags:",
  ];
  const all = { ...cmd.flags, help: HELP_FLAG };
  for (const [flag, f] of Object.entries(all)) {
    const left = `${f.short ? `-${f.short}, ` : "    "}--${flag}${
      f.type === "boolean" ? "" : ` <${f.type}>`
    }`;
    const dflt = f.default !== undefined ? ` (default ${f.default})` : "";
    lines.push(`  ${left.padEnd(26)} ${f.help}${dflt}`);
  }
  return lines.join("\n");
}

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
export const COMMANDS: Record<string, Command> = { info };

/**
 * Runs the CLI.
 * @param argv the command line after `cli.ts`
 * @param io where to print (default: console)
 * @returns the exit code
 */
export async function main(
  argv: readonly string[],
  io: Io = { out: (s) => console.log(s), err: (s) => console.error(s) },
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
        `Unknown ${what} '${name}'; commands: ${
          Object.keys(COMMANDS).join(", ")
        } (see 'cli.ts --help')`,
      );
    }
    const args = parseFlags(rest, { ...cmd.flags, help: HELP_FLAG }, `cli.ts ${name}`);
    if (args.flags.help) {
      io.out(usage(name, cmd));
      return 0;
    }
    if (args.positionals.length && !cmd.args) {
      throw new UsageError(`'cli.ts ${name}' takes no arguments (got '${args.positionals[0]}')`);
    }
    return await cmd.run(args, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    if (e instanceof NoAdapterError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    io.err(`error: ${(e as Error)?.message ?? e}`);
    if (Deno.env.get("REGULA_DEBUG")) io.err((e as Error)?.stack ?? "");
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));

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
import { type Command, didYouMean, type Io, usage, UsageError } from "./cli/args.ts";
import { exitCodeOf, runCommand } from "./cli/_run.ts";
import { infoCommand } from "./cli/info.ts";
import { trainCommand } from "./cli/train.ts";
import { evalCommand } from "./cli/eval.ts";
import { attackSubcommand } from "./cli/attack.ts";
import { reportSubcommand } from "./cli/report.ts";
import { sweepCommand } from "./cli/sweep.ts";

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
    `regula ${denoJson.version}: train, regularize and attack neural nets on WebGPU or WebAssembly`,
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

/**
 * The subcommands. Add new ones here (train, eval, attack, report): a summary,
 * the flags, and a `run` returning the exit code.
 */
export const COMMANDS: Record<string, Command> = {
  info: infoCommand,
  train: trainCommand,
  eval: evalCommand,
  attack: attackSubcommand,
  report: reportSubcommand,
  sweep: sweepCommand,
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

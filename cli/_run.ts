/**
 * Running one command the same way from cli.ts and from a subcommand's own file
 * (`deno run -A cli/report.ts …`): parse its flags, answer `--help`, run it, and turn what it
 * throws into one line on stderr and an exit code (0 ok, 1 failure, 2 usage or file error).
 *
 * @module
 */

import { type Command, HELP_FLAG, type Io, parseFlags, usage, UsageError } from "./args.ts";
import { FileError } from "./fs.ts";
import { NoAdapterError } from "../src/gpu/device.ts";

/**
 * Prints an error in one line (the stack too with `REGULA_DEBUG` set, except for a missing
 * adapter, whose message says all) and gives its exit code.
 * @param e what was thrown
 * @param io where to print
 * @returns 2 for a {@linkcode UsageError} or {@linkcode FileError}, else 1
 */
export function exitCodeOf(e: unknown, io: Io): number {
  if (e instanceof UsageError || e instanceof FileError) {
    io.err(`error: ${e.message}`);
    return 2;
  }
  io.err(`error: ${(e as Error)?.message ?? e}`);
  if (!(e instanceof NoAdapterError) && Deno.env.get("REGULA_DEBUG")) {
    io.err((e as Error)?.stack ?? "");
  }
  return 1;
}

/**
 * Parses `argv` for `cmd`, prints its usage for `--help`, refuses positional arguments it does
 * not take, and runs it.
 * @param name the command's name (`cli.ts <name>` in messages and usage)
 * @param cmd the command
 * @param argv the arguments after the command's name
 * @param io where to print
 * @returns the exit code
 */
export async function runCommand(
  name: string,
  cmd: Command,
  argv: readonly string[],
  io: Io,
): Promise<number> {
  try {
    const args = parseFlags(argv, { ...cmd.flags, help: HELP_FLAG }, `cli.ts ${name}`);
    if (args.flags.help) {
      io.out(usage(name, cmd));
      return 0;
    }
    if (args.positionals.length && !cmd.args) {
      throw new UsageError(`'cli.ts ${name}' takes no arguments (got '${args.positionals[0]}')`);
    }
    return await cmd.run(args, io);
  } catch (e) {
    return exitCodeOf(e, io);
  }
}

/** Plain console output, for a command run from its own file. */
export const CONSOLE_IO: Io = { out: (s) => console.log(s), err: (s) => console.error(s) };

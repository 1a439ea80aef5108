/**
 * Command-line plumbing shared by cli.ts and the subcommands under cli/: the
 * {@linkcode Command} shape, flag parsing with suggestions for typos,
 * usage text, and {@linkcode UsageError} (one line, exit code 2).
 *
 * @module
 */

/** A flag a command accepts. */
export interface FlagSpec {
  type: "boolean" | "string" | "number";
  /** One-line help. */
  help: string;
  /** One-letter alias ("j" for -j). */
  short?: string;
  /** Value when the flag is absent (booleans default to false). */
  default?: string | number | boolean;
  /** May be given several times; the value is then a list (strings only). */
  multiple?: boolean;
  /** Placeholder in the usage line (`--reg <spec>`); default the type. */
  metavar?: string;
}

/** Flags and positional arguments after parsing. */
export interface ParsedArgs {
  flags: Record<string, string | number | boolean | string[]>;
  positionals: string[];
}

/** A subcommand. */
export interface Command {
  /** One line shown in the command list. */
  summary: string;
  /** Positional arguments in the usage line ("<checkpoint>"), if any. */
  args?: string;
  /** More text after the flags in `--help` (examples). */
  details?: string;
  /** Accepted flags (`--help` is added to every command). */
  flags: Record<string, FlagSpec>;
  /** Runs the command; returns the exit code. */
  run(args: ParsedArgs, io: Io): Promise<number>;
}

/** Where output goes (tests capture it). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Rewrites the current status line (progress bars on a terminal); absent when not a TTY. */
  status?(line: string): void;
}

/** A mistake in the command line: reported in one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The `--help` flag every command has. */
export const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", help: "Show this help." };

/**
 * Edit distance with adjacent transpositions (optimal string alignment: insert, delete,
 * substitute, swap two neighbours, each costing 1), so "adma" is 1 from "adam".
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/**
 * The closest candidate to `word`, if close enough to be a likely typo (distance at most 1 for
 * short words, 2 for words of 5+ letters, or a prefix of 3+ letters).
 * @param word what was typed
 * @param candidates the valid words
 * @returns the suggestion, or undefined
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  if (best === undefined) return undefined;
  if (bestD <= (word.length >= 5 ? 2 : 1)) return best;
  const pre = candidates.filter((c) => word.length >= 3 && c.startsWith(word));
  return pre.length === 1 ? pre[0] : undefined;
}

/** ` (did you mean 'x'?)` or "". */
export function didYouMean(word: string, candidates: readonly string[], prefix = ""): string {
  const n = nearest(word, candidates);
  return n === undefined ? "" : ` (did you mean '${prefix}${n}'?)`;
}

/**
 * Parses `argv` against `spec`: `--name value`, `--name=value`, `-x`,
 * `--no-name` for booleans, `--` ends the flags; `multiple` flags collect a list.
 *
 * @param argv the arguments after the command name
 * @param spec the accepted flags
 * @param where the command, for error messages
 * @returns flag values (defaults filled in) and positional arguments
 * @throws UsageError for an unknown flag (suggesting the nearest), a missing or malformed value
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
    if (f.multiple) flags[name] = [];
    else if (f.default !== undefined) flags[name] = f.default;
    else if (f.type === "boolean") flags[name] = false;
  }
  const unknown = (flag: string, name: string) =>
    new UsageError(
      `Unknown flag '${flag}' for '${where}'${didYouMean(name, Object.keys(spec), "--")}; ` +
        `see '${where} --help'`,
    );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
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
    let f = Object.hasOwn(spec, name) ? spec[name] : undefined;
    let negated = false;
    if (!f && name.startsWith("no-") && spec[name.slice(3)]?.type === "boolean") {
      name = name.slice(3);
      f = spec[name];
      negated = true;
    }
    if (!f) throw unknown(`--${name}`, name);
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
    } else if (f.multiple) (flags[name] as string[]).push(value);
    else flags[name] = value;
  }
  return { flags, positionals };
}

/**
 * The `--help` text of a command.
 * @param name the command's name
 * @param cmd the command
 * @returns the text
 */
export function usage(name: string, cmd: Command): string {
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
      f.type === "boolean" ? "" : ` <${f.metavar ?? f.type}>`
    }`;
    const dflt = f.default !== undefined ? ` (default ${f.default})` : "";
    const many = f.multiple ? " (repeatable)" : "";
    lines.push(`  ${left.padEnd(26)} ${f.help}${dflt}${many}`);
  }
  if (cmd.details) lines.push("", cmd.details);
  return lines.join("\n");
}

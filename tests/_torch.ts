/**
 * Runs the Python reference scripts under tools/ (PyTorch 1.13, SciPy, scikit-learn from Debian's
 * /usr/bin/python3): a JSON job in on stdin, a JSON answer out on stdout.
 */

/**
 * Runs `tools/<script>` on `input` with Debian's /usr/bin/python3, or the interpreter named by
 * the environment variable `pythonEnv`.
 * @param script file name under tools/
 * @param input what the script reads from stdin, as JSON
 * @param opts `pythonEnv` (default REGULA_TORCH_PYTHON), `hint` (what to install, for the error)
 * @returns the parsed JSON the script printed
 */
export async function pythonJob<T>(
  script: string,
  input: unknown,
  opts: { pythonEnv?: string; hint?: string } = {},
): Promise<T> {
  const python = Deno.env.get(opts.pythonEnv ?? "REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
  const child = new Deno.Command(python, {
    args: [new URL(`../tools/${script}`, import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(input)));
  await w.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(
      `tools/${script} failed${opts.hint ? ` (${opts.hint})` : ""}: ${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  return JSON.parse(new TextDecoder().decode(stdout));
}

/** Runs jobs through tools/torch_optim_check.py (PyTorch 1.13). */
export function torch(jobs: unknown[]): Promise<Record<string, unknown>[]> {
  return pythonJob("torch_optim_check.py", jobs);
}

/** Shared by the tests that compare with PyTorch 1.13 through tools/torch_optim_check.py. */

/**
 * Runs jobs through tools/torch_optim_check.py: PyTorch 1.13 via Debian's /usr/bin/python3, or the
 * interpreter named by REGULA_TORCH_PYTHON.
 */
export async function torch(jobs: unknown[]): Promise<Record<string, unknown>[]> {
  const cmd = new Deno.Command(Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3", {
    args: [new URL("../tools/torch_optim_check.py", import.meta.url).pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(jobs)));
  await w.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) {
    throw new Error(`torch_optim_check.py failed: ${new TextDecoder().decode(stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(stdout));
}

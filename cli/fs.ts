/**
 * Files for the command line (Deno only): atomic writes that never leave a
 * half-written file and never replace an existing one unless asked.
 *
 * A write goes to a temporary file in the target's directory (same file
 * system, so the final step is a rename, which POSIX makes atomic), is
 * flushed, and is then moved into place. Without `force` the move is a hard
 * link, which fails if the target appeared meanwhile, so two writers cannot
 * both win; where links are not supported it falls back to a check and a
 * rename.
 *
 * @module
 */

/** A file that cannot be read or written as asked; the CLI prints it in one line, exit 2. */
export class FileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FileError";
  }
}

/** The target exists and `force` was not given. */
export class FileExistsError extends FileError {
  constructor(readonly path: string) {
    super(`${path} already exists; use --force to overwrite it`);
    this.name = "FileExistsError";
  }
}

function dirAndBase(path: string): { dir: string; base: string } {
  const i = path.lastIndexOf("/");
  return i < 0
    ? { dir: ".", base: path }
    : { dir: path.slice(0, i) || "/", base: path.slice(i + 1) };
}

/**
 * Whether `path` exists (a file, directory or link).
 * @param path the path
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Throws {@linkcode FileExistsError} when `path` exists and `force` is false, and an Error when
 * its directory does not exist; for checking an output path before long work.
 * @param path the output path
 * @param force whether overwriting is allowed
 */
export async function checkWritable(path: string, force = false): Promise<void> {
  if (!force && await exists(path)) throw new FileExistsError(path);
  const { dir } = dirAndBase(path);
  let info;
  try {
    info = await Deno.stat(dir);
  } catch {
    throw new FileError(`Cannot write ${path}: directory ${dir} does not exist`);
  }
  if (!info.isDirectory) throw new FileError(`Cannot write ${path}: ${dir} is not a directory`);
}

/**
 * Writes `data` to `path` atomically: readers see the old file or the whole new one, never a
 * part; on any failure the temporary file is removed and `path` is untouched.
 * @param path the target
 * @param data the bytes
 * @param opts `force`: replace an existing file (default false)
 * @throws FileExistsError if `path` exists and `force` is false
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
  opts: { force?: boolean } = {},
): Promise<void> {
  const force = opts.force ?? false;
  await checkWritable(path, force);
  const { dir, base } = dirAndBase(path);
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = `${dir}/.${base}.${suffix}.tmp`;
  let placed = false;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      let off = 0;
      while (off < data.length) off += await f.write(data.subarray(off));
      await f.syncData();
    } finally {
      f.close();
    }
    if (force) {
      await Deno.rename(tmp, path);
      placed = true;
      return;
    }
    try {
      await Deno.link(tmp, path);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) throw new FileExistsError(path);
      // No hard links here (some file systems): check, then rename.
      if (await exists(path)) throw new FileExistsError(path);
      await Deno.rename(tmp, path);
      placed = true;
    }
  } finally {
    if (!placed) await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Reads a whole file, with a one-line error naming the path when it is missing or unreadable.
 * @param path the file
 * @param what what it should be ("checkpoint"), for the message
 * @returns its bytes
 * @throws FileError
 */
export async function readFileOrFail(path: string, what = "file"): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FileError(`No such ${what}: ${path}`);
    if (e instanceof Deno.errors.IsADirectory) {
      throw new FileError(`${path} is a directory, not a ${what}`);
    }
    throw new FileError(`Cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

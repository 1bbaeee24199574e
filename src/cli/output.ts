/**
 * Where the commands write their files (HTML reports, traces, CSV and JSON), checked
 * before any work starts so a path that cannot be written is found in a second, not
 * after the whole sweep.
 *
 * Artifacts go into `out/` under the current directory unless a path with a directory is
 * given: that directory is ignored by git (and so by the project's lint), so running a
 * command in a checkout never leaves a file that breaks `npm test`. Every file written
 * is printed with its full path.
 */

import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";

/** The artifacts directory, relative to the current directory. */
export const ARTIFACTS_DIR = "out";

/** A file a command will write, that cannot be written; the message names path and cause. */
export class OutputPathError extends Error {
  override readonly name = "OutputPathError";
}

/**
 * The absolute path of an output file: `file` as given when it names a directory
 * (`./r.html`, `/tmp/r.html`, `reports/r.html`), else `out/<file>` (a bare name, or
 * `defaultName` when no file was given).
 */
export function outputPath(cwd: string, file: string | undefined, defaultName: string): string {
  const name = file ?? defaultName;
  if (name === basename(name)) return resolve(cwd, ARTIFACTS_DIR, name);
  return resolve(cwd, name);
}

function code(e: unknown): string {
  const c = (e as NodeJS.ErrnoException).code;
  return c !== undefined ? `${c}: ${(e as Error).message.replace(/^[A-Z]+: /, "")}` : String(e);
}

/**
 * Makes sure `path` can be written: creates its directory (recursively), refuses a
 * directory in its place and a file or directory without write permission.
 * @throws OutputPathError naming `what`, the path and the errno.
 */
export function prepareOutput(path: string, what: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new OutputPathError(`cannot write the ${what} to ${path}: ${code(e)}`);
  }
  let exists = false;
  try {
    const st = statSync(path);
    exists = true;
    if (st.isDirectory()) {
      throw new OutputPathError(`cannot write the ${what} to ${path}: it is a directory`);
    }
  } catch (e) {
    if (e instanceof OutputPathError) throw e;
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new OutputPathError(`cannot write the ${what} to ${path}: ${code(e)}`);
    }
  }
  try {
    accessSync(exists ? path : dir, constants.W_OK);
  } catch (e) {
    throw new OutputPathError(`cannot write the ${what} to ${path}: ${code(e)}`);
  }
}

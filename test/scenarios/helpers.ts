import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The repository root (the directory with schema/ and examples/scenarios): found by
 * walking up from the compiled test, else the working directory (tests compiled into
 * another output directory are run from the repository).
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "examples", "scenarios")) && existsSync(join(dir, "package.json"))) {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary directory with the given files in it (removed when the process exits). */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "dmabuf-scen-"));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

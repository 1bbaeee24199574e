/**
 * Golden reports: the bundled scenarios' terminal, JSON and trace output, byte for byte.
 * Refactors of the pipelines (graphs) and of the engine (speed) must not move a byte of
 * what a user already relies on. A change that is meant to change a report regenerates
 * the files with `UPDATE_GOLDEN=1 node --test dist/test/golden/` and says why in its
 * commit message.
 *
 * files/main-job.txt.golden is the main job's whole output (`npx dmabuf`: stderr's
 * progress, then stdout, the report path as `<path>`). The job takes tens of seconds, so
 * .ci/run compares it on the fresh clone, as the README's first command, before the tests.
 */

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { CliIo } from "../../src/cli/io.js";
import { main } from "../../src/cli/main.js";

const ROOT = process.cwd();
const GOLDEN = join(ROOT, "test", "golden", "files");
const UPDATE = process.env["UPDATE_GOLDEN"] === "1";

/** The scenarios bundled before pipeline graphs, whose reports users already have. */
export const LEGACY_SCENARIOS = [
  "camera-cpu-display",
  "camera-display",
  "camera-gpu-display",
  // Added with its golden files made by the pipeline's own OutputStage path, before
  // cpu-output moved into the graph engine: the move must not change a byte.
  "cpu-output",
  "cortex-a9-whole-cache",
  "lying-hint",
  "missing-sync-end",
  "my-soc",
] as const;

function capture(): CliIo & { stdout(): string } {
  let out = "";
  return {
    out: (t) => {
      out += t;
    },
    err: () => {},
    isTTY: false,
    cwd: ROOT,
    stdout: () => out,
  };
}

function check(name: string, actual: string): void {
  const file = join(GOLDEN, name);
  if (UPDATE) {
    mkdirSync(GOLDEN, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  const expected = readFileSync(file, "utf8");
  if (actual !== expected) {
    const a = actual.split("\n");
    const e = expected.split("\n");
    const i = a.findIndex((line, k) => line !== e[k]);
    assert.fail(
      `${name} differs from the golden file at line ${i + 1}:\n  golden: ${e[i]}\n  now:    ${a[i]}`,
    );
  }
}

for (const scenario of LEGACY_SCENARIOS) {
  test(`golden: dmabuf run ${scenario} (terminal, JSON, trace) is unchanged`, async () => {
    const file = join(ROOT, "examples", "scenarios", `${scenario}.yaml`);
    const term = capture();
    await main(["run", file], term);
    check(`${scenario}.txt.golden`, term.stdout());

    const json = capture();
    await main(["run", file, "--json"], json);
    check(`${scenario}.json.golden`, json.stdout());

    const dir = mkdtempSync(join(tmpdir(), "dmabuf-golden-"));
    try {
      const trace = join(dir, "t.json");
      await main(["run", file, "--trace", trace], capture());
      check(`${scenario}.trace.golden`, readFileSync(trace, "utf8"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * The main job starts its workers before anything heavy loads: the `dmabuf` entry and the
 * main job's module reach, by static imports, none of the scenario schema (zod, yaml),
 * the HTML renderer (vega) or the pipelines (each worker loads those itself). On a
 * 2-core machine those took most of a second of the main thread before the first worker
 * started. Checked on the compiled modules' import statements.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const IMPORT_RE = /^(?:import|export)\s(?:[^;]*?\sfrom\s)?\s*"([^"]+)";/gms;

/** Every module and package reached from `entry` by static (non-type) imports. */
function staticImports(entry: URL): Set<string> {
  const seen = new Set<string>([entry.href]);
  const queue = [entry];
  while (queue.length > 0) {
    const url = queue.shift()!;
    const src = readFileSync(fileURLToPath(url), "utf8");
    for (const m of src.matchAll(IMPORT_RE)) {
      const spec = m[1]!;
      const key = spec.startsWith(".") ? new URL(spec, url).href : `package:${spec}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (spec.startsWith(".")) queue.push(new URL(key));
    }
  }
  return seen;
}

test("the dmabuf entry and the main job load nothing heavy before the workers start", () => {
  const reached = new Set([
    ...staticImports(new URL("../../src/cli/main.js", import.meta.url)),
    ...staticImports(new URL("../../src/cli/default-job.js", import.meta.url)),
  ]);
  assert.ok(
    reached.has(new URL("../../src/sweep/sweep.js", import.meta.url).href),
    "the walk follows imports (the main job reaches the sweep runner)",
  );
  for (const heavy of ["package:zod", "package:yaml", "package:vega", "package:vega-lite"]) {
    assert.ok(!reached.has(heavy), `${heavy} is imported statically`);
  }
  for (const mod of ["../../src/pipelines/run.js", "../../src/report/html.js"]) {
    const href = new URL(mod, import.meta.url).href;
    assert.ok(!reached.has(href), `${mod} is imported statically`);
  }
});

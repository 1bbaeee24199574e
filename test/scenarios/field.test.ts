/**
 * The bundled field scenarios (docs/hazards.md): every scenario with a "-fixed" twin
 * reproduces a reported bug, so it cites its source in its description, comes out
 * INCOHERENT with wrong frames and a violation, and its twin comes out COHERENT.
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { examplesDir } from "../../src/cli/list.js";
import { loadScenarioFile, runScenario } from "../../src/scenarios/scenario.js";

const EXAMPLES = examplesDir(process.cwd());
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith("-fixed.yaml"));
/** A GitHub repository with an issue or PR number, a kernel commit, or a mailing-list Message-ID. */
const SOURCE =
  /[\w.-]+\/[\w.-]+ (?:issues?|PRs?|pull requests?) \d+|commit [0-9a-f]{12}|Message-ID/;

/** Reports whose symptom is what the CPU itself read (its reads feed no frame): a stale-cpu-read. */
const CPU_READBACK = new Set(["rpi-6995-udmabuf-readback.yaml"]);

test("at least eight field scenarios, each with its fixed twin", () => {
  assert.ok(files.length >= 8, `${files.length} field scenarios`);
});

for (const fixed of files) {
  const faulty = fixed.replace(/-fixed\.yaml$/, ".yaml");
  test(`field scenario ${faulty}: cites its source, wrong frames; its twin is coherent`, () => {
    const bad = loadScenarioFile(join(EXAMPLES, faulty));
    assert.match(bad.description ?? "", SOURCE, "the description cites the report");
    const r = runScenario(bad);
    assert.equal(r.verdict, "incoherent");
    if (CPU_READBACK.has(faulty))
      assert.ok(
        r.violations.some((v) => v.kind === "stale-cpu-read"),
        "the reported symptom: the CPU reads stale bytes",
      );
    else
      assert.ok(
        r.frames.some((f) => !f.ok),
        "the reported symptom: wrong frames",
      );
    assert.ok(r.violations.length > 0, "and the checker names the cause");
    const good = runScenario(loadScenarioFile(join(EXAMPLES, fixed)));
    assert.equal(good.verdict, "coherent", good.violations[0]?.message);
  });
}

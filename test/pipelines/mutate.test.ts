/**
 * `dmabuf mutate` on every bundled scenario (small frames): every cache-maintenance and
 * sync call a run makes is left out, flipped and shrunk in turn, and no mutant may be
 * missed (wrong frames with no violation, or changed frames); every harmless one carries
 * the rule that makes it so.
 */

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { examplesDir } from "../../src/cli/list.js";
import { mutatePipeline } from "../../src/pipelines/mutate.js";
import { loadScenarioFile, scenarioToSpec } from "../../src/scenarios/scenario.js";

const EXAMPLES = examplesDir(process.cwd());

for (const file of readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"))) {
  test(`dmabuf mutate ${file}: no mutant missed`, () => {
    const spec = scenarioToSpec(loadScenarioFile(join(EXAMPLES, file)));
    // Small frames keep it fast; the call sites are the same at any size.
    const r = mutatePipeline({
      ...spec,
      frames: Math.min(spec.frames ?? 8, 3),
      width: 128,
      height: 64,
      bufferBytes: undefined,
    });
    assert.ok(r.mutants.length > 0, "the run makes maintenance or sync calls");
    const missed = r.mutants.filter((m) => m.class === "missed");
    assert.deepEqual(missed, [], `missed mutants in ${file}`);
    for (const m of r.mutants.filter((x) => x.class === "harmless"))
      assert.ok((m.explanation ?? "").length > 10, `${m.site} ${m.action} is explained`);
    assert.equal(
      r.counts.caught + r.counts["caught-by-bytes"] + r.counts.harmless + r.counts.missed,
      r.mutants.length,
    );
  });
}

test("a removed DMA_BUF_IOCTL_SYNC(END) is caught with a hint naming the fix", () => {
  const r = mutatePipeline({
    pipeline: "camera-cpu-display",
    width: 64,
    height: 32,
    frames: 2,
    buffers: 2,
  });
  const end = r.mutants.find(
    (m) => m.site.startsWith("DMA_BUF_IOCTL_SYNC(END)") && m.action === "omit",
  );
  assert.ok(end !== undefined);
  assert.equal(end.class, "caught");
  assert.ok(end.wrongFrames > 0, "the display shows wrong frames");
  assert.match(end.hint ?? "", /DMA_BUF_SYNC_END|dma_sync_\*_for_device/);
});

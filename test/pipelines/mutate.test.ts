/**
 * `dmabuf mutate` on every bundled scenario (small frames): every cache-maintenance and
 * sync call a run makes is left out, flipped and shrunk in turn, and no mutant may be
 * missed (wrong frames with no violation, or changed frames); every harmless one carries
 * the rule that makes it so.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { mutatePipeline } from "../../src/pipelines/mutate.js";
import { bundledScenarios, smallBundledSpec } from "./bundled.js";

for (const file of bundledScenarios()) {
  test(`dmabuf mutate ${file}: no mutant missed`, () => {
    const r = mutatePipeline(smallBundledSpec(file));
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

/**
 * A bounced mapping synced for the CPU with DMA_TO_DEVICE: swiotlb copies nothing back
 * (kernel/dma/swiotlb.c), DMA-API debug lets any direction through on a
 * DMA_BIDIRECTIONAL mapping, and the CPU reads the old buffer. The checker names it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { examplesDir } from "../../src/cli/list.js";
import { runPipeline } from "../../src/pipelines/run.js";
import { loadScenarioFile, scenarioToSpec } from "../../src/scenarios/scenario.js";

const spec = scenarioToSpec(
  loadScenarioFile(join(examplesDir(process.cwd()), "swiotlb-bounced-capture.yaml")),
);

test("swiotlb-bounced-capture is coherent and makes both bounce sync copies", () => {
  const r = runPipeline({ ...spec, frames: 3 });
  assert.equal(r.verdict, "coherent");
  const calls = new Set((r.callSites ?? []).map((s) => s.call));
  assert.ok(calls.has("swiotlb_sync_single_for_cpu"));
  assert.ok(calls.has("swiotlb_sync_single_for_device"));
});

test("dma_sync_*_for_cpu with DMA_TO_DEVICE on a bounced buffer: stale-cpu-read naming the direction", () => {
  const r = runPipeline({
    ...spec,
    frames: 3,
    injections: [{ call: "dma_sync_sgtable_for_cpu", action: "flip" }],
  });
  assert.equal(r.verdict, "incoherent");
  assert.ok(
    r.sinks.some((s) => s.frames.some((f) => !f.ok)),
    "the CPU reads wrong bytes",
  );
  const v = r.violations.find((x) => x.kind === "stale-cpu-read");
  assert.ok(v !== undefined, "a stale-cpu-read");
  assert.match(v.message, /DMA_TO_DEVICE.*without copying the swiotlb slot back/);
  assert.match(v.hint ?? "", /DMA_FROM_DEVICE or DMA_BIDIRECTIONAL/);
});

test("bounce-not-synced on swiotlb-bounced-capture: the CPU reads the old buffer, named", () => {
  const r = runPipeline({ ...spec, frames: 3, faults: ["bounce-not-synced"] });
  assert.equal(r.verdict, "incoherent");
  assert.ok(
    r.violations.some((x) => x.kind === "stale-cpu-read" && /swiotlb slot/.test(x.message)),
  );
});

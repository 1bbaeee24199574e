/**
 * A CPU write inside a CPU-access bracket of a buffer mapped DMA_FROM_DEVICE: on 32-bit
 * ARM the end of the access (DMA_BUF_IOCTL_SYNC(END) -> dma_sync_*_for_device, which
 * v7_dma_map_area makes an invalidate for DMA_FROM_DEVICE) discards what the CPU wrote.
 * The checker names it, with the fix (map DMA_BIDIRECTIONAL: videobuf2's
 * q->bidirectional), and the bidirectional queue is coherent.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineSpec } from "../../src/pipelines/types.js";

function overlayOnCortexA9(bidirectional: boolean | undefined): PipelineSpec {
  return {
    profile: "cortex-a9",
    width: 128,
    height: 64,
    frames: 3,
    strategy: "streaming",
    graph: {
      devices: {
        cam: { kind: "camera", ...(bidirectional !== undefined ? { bidirectional } : {}) },
        panel: { kind: "display" },
      },
      pools: { frames: { source: "v4l2-mmap", count: 3 } },
      stages: [
        { name: "capture", device: "cam", pool: "frames", inputs: [] },
        { name: "overlay", inputs: ["capture"], cpu: { read: true, write: true, lines: 16 } },
        { name: "show", device: "panel", inputs: ["overlay"] },
      ],
    },
  };
}

test("cortex-a9, capture queue DMA_FROM_DEVICE, CPU overlay: lost-cpu-write naming q->bidirectional", () => {
  const r = runPipeline(overlayOnCortexA9(false));
  assert.ok(
    r.frames.some((f) => !f.ok),
    "the display shows frames without the overlay",
  );
  const v = r.violations.find((x) => x.kind === "lost-cpu-write");
  assert.ok(
    v !== undefined,
    `a lost-cpu-write (got ${r.violations.map((x) => x.kind).join(", ")})`,
  );
  assert.match(v.message, /DMA_FROM_DEVICE/);
  assert.match(v.message, /discard/);
  assert.match(v.hint, /DMA_BIDIRECTIONAL/);
  assert.match(v.hint, /bidirectional/);
});

test("the same pipeline with the queue mapped DMA_BIDIRECTIONAL (the default for a CPU writer) is coherent", () => {
  assert.equal(runPipeline(overlayOnCortexA9(undefined)).verdict, "coherent");
  assert.equal(runPipeline(overlayOnCortexA9(true)).verdict, "coherent");
});

/**
 * A bounced importer beside another importer of the same heap buffer. The system heap's
 * begin/end_cpu_access syncs its mapped attachments one after another
 * (drivers/dma-buf/heaps/system_heap.c), so the bounced camera's swiotlb copy runs while
 * the display's mapping of the same pages is device-owned. That copy is the DMA API's own
 * (swiotlb_bounce), not an access by the program: a correct program stays coherent, and
 * the same pipeline without its CPU-access bracket is still caught.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineSpec } from "../../src/pipelines/types.js";

function bouncedCameraAndDisplay(fault?: "omit-sync-start"): PipelineSpec {
  return {
    profile: "arm64",
    width: 256,
    height: 128,
    frames: 6,
    strategy: "streaming",
    graph: {
      devices: { cam: { kind: "camera", dmaBits: 31 }, disp: { kind: "display" } },
      pools: { frames: { source: "dma-heap", heap: "system", count: 2 } },
      stages: [
        { name: "capture", device: "cam", pool: "frames", inputs: [] },
        {
          name: "mask",
          inputs: ["capture"],
          cpu: { read: true, write: true, lines: 16 },
          ...(fault !== undefined ? { fault } : {}),
        },
        { name: "show", device: "disp", inputs: ["mask"] },
      ],
    },
  };
}

test("a bounced camera and a display importing the same system-heap buffers, CPU bracketed: coherent", () => {
  const r = runPipeline(bouncedCameraAndDisplay());
  assert.deepEqual(
    r.violations.map((v) => `${v.kind}: ${v.message}`),
    [],
  );
  assert.equal(r.verdict, "coherent");
  assert.ok(r.frames.every((f) => f.ok));
});

test("the same pipeline without SYNC START before the CPU's access is still caught", () => {
  const r = runPipeline(bouncedCameraAndDisplay("omit-sync-start"));
  assert.notEqual(r.verdict, "coherent");
  assert.ok(r.violations.length > 0);
});

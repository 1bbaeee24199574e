/**
 * A CPU read of an NPU's output before the job's fence signalled: without
 * DMA_BUF_IOCTL_SYNC(START) (whose implicit wait on the dma-resv fences the program
 * relied on) the CPU reads the buffer while the job is still queued. The checker names
 * the real cause, not only the END without a START, with the fix.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { runPipeline } from "../../src/pipelines/run.js";
import type { PipelineSpec } from "../../src/pipelines/types.js";

function npuReadBack(fault: "omit-sync-start" | undefined, sync?: "sync-file"): PipelineSpec {
  return {
    profile: "arm64",
    width: 128,
    height: 64,
    frames: 3,
    graph: {
      devices: { cam: { kind: "camera" }, npu: { kind: "npu", iommu: true } },
      pools: {
        frames: { source: "v4l2-mmap", count: 3 },
        sums: { source: "dma-heap", heap: "system", count: 2 },
      },
      stages: [
        { name: "capture", device: "cam", pool: "frames", inputs: [] },
        { name: "infer", device: "npu", inputs: ["capture"], pool: "sums", op: "tile-sum" },
        {
          name: "results",
          inputs: ["infer"],
          cpu: { read: true, write: false, fraction: 1 },
          ...(fault !== undefined ? { fault } : {}),
          ...(sync !== undefined ? { sync } : {}),
        },
      ],
    },
  };
}

test("reading an NPU's output without waiting for its fence: cpu-access-before-fence with the fix", () => {
  const r = runPipeline(npuReadBack("omit-sync-start"));
  assert.ok(
    r.sinks.some((s) => s.frames.some((f) => !f.ok)),
    "the CPU reads wrong bytes",
  );
  const v = r.violations.find((x) => x.kind === "cpu-access-before-fence");
  assert.ok(
    v !== undefined,
    `names the read before the fence (got ${r.violations.map((x) => x.kind).join(", ")})`,
  );
  assert.match(v.message, /before the fence of the job writing it signalled/);
  assert.match(v.message, /simnpu/);
  assert.match(v.hint, /DMA_BUF_IOCTL_EXPORT_SYNC_FILE/);
  assert.match(v.hint, /DMA_BUF_SYNC_START/);
});

test("the same read-back waiting on the fence (SYNC START's implicit wait, or a polled sync_file) is coherent", () => {
  assert.equal(runPipeline(npuReadBack(undefined)).verdict, "coherent");
  assert.equal(runPipeline(npuReadBack(undefined, "sync-file")).verdict, "coherent");
});

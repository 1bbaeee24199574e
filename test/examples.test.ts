import assert from "node:assert/strict";
import { test } from "node:test";
import { firstMapping } from "../examples/first-mapping.js";

test("guide example: the sync makes the camera's bytes visible", () => {
  const ok = firstMapping(true);
  assert.equal(ok.firstByte, 0x42);
  assert.deepEqual(ok.violations, []);
});

test("guide example: without the sync the CPU reads stale bytes and the checker names the call", () => {
  const bad = firstMapping(false);
  assert.equal(bad.firstByte, 0);
  assert.ok(
    bad.violations.some(
      (v) => v.includes("stale-cpu-read") && v.includes("dma_sync_single_for_cpu"),
    ),
  );
});

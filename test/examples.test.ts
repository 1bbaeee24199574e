import assert from "node:assert/strict";
import { test } from "node:test";
import { compareMappings } from "../examples/coherent-vs-streaming.js";
import { firstMapping } from "../examples/first-mapping.js";
import { bounce } from "../examples/swiotlb-bounce.js";

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

test("coherent vs streaming: both correct; uncached CPU access costs more than the syncs save", () => {
  for (const profile of ["cortex-a9", "arm64", "riscv64"]) {
    const r = compareMappings(profile, 64 * 1024);
    assert.notEqual(r.coherentAttr, "cached", profile);
    for (const c of [r.coherent, r.streaming]) {
      assert.equal(c.wrongBytes, 0, profile);
      assert.equal(c.violations, 0, profile);
    }
    // The coherent buffer needs no maintenance at all...
    assert.equal(r.coherent.maintenanceNs, 0, profile);
    assert.ok(r.streaming.maintenanceNs > 0, profile);
    // ...but every CPU access goes to DRAM, which costs more than cached access plus syncs.
    assert.ok(
      r.coherent.cpuAccessNs > r.streaming.cpuAccessNs + r.streaming.maintenanceNs,
      `${profile}: ${JSON.stringify(r)}`,
    );
  }
});

test("coherent vs streaming: on a snooping x86-64 device neither kind needs maintenance", () => {
  const r = compareMappings("x86-64", 64 * 1024);
  assert.equal(r.coherentAttr, "cached");
  assert.equal(r.coherent.maintenanceNs, 0);
  assert.equal(r.streaming.maintenanceNs, 0);
  assert.equal(r.coherent.wrongBytes + r.streaming.wrongBytes, 0);
});

test("swiotlb: a 64-bit device reaches memory above 4 GiB directly", () => {
  const r = bounce(64, false, true);
  assert.ok(r.bufPhys >= 2 ** 32);
  assert.equal(r.bounced, false);
  assert.equal(r.correctBytes, r.size);
  assert.equal(r.bounceNs, 0);
});

test("swiotlb: a 32-bit device is given a bounce slot and the sync copies the data back", () => {
  for (const coherent of [false, true]) {
    const r = bounce(32, coherent, true);
    assert.ok(r.bounced);
    assert.ok(r.handle < 2 ** 32);
    assert.equal(r.correctBytes, r.size);
    assert.ok(r.bounceNs > 0);
    assert.deepEqual(r.violations, []);
  }
});

test("swiotlb: without the sync the CPU misses the data even on a coherent device", () => {
  const r = bounce(32, true, false);
  assert.equal(r.correctBytes, 0);
  assert.equal(r.violations.length, 1);
  assert.ok(
    r.violations.some(
      (v) =>
        v.includes("cpu-access-device-owned") &&
        v.includes("CPU read") &&
        v.includes("dma_sync_single_for_cpu"),
    ),
  );
});

test("dma-buf example: shared across processes, poll waits for the camera's fence, brackets give the frame", async () => {
  const { shareBuffer } = await import("../examples/share-buffer.js");
  const ok = shareBuffer(true);
  assert.deepEqual(ok.firstBytes, [0, 1, 2, 3]);
  assert.deepEqual(ok.violations, []);
  assert.equal(ok.readyAt, ok.dmaDoneAt);
  assert.ok(ok.readyAt > 0);
  assert.match(ok.bufinfo, /frame0/);
  assert.match(ok.bufinfo, /camera/);
  assert.equal(ok.liveAfterExit, 0);
});

test("dma-buf example: without the brackets the compositor reads stale zeros, and the checker says which ioctl", async () => {
  const { shareBuffer } = await import("../examples/share-buffer.js");
  const bad = shareBuffer(false);
  assert.notDeepEqual(bad.firstBytes, [0, 1, 2, 3]);
  assert.ok(
    bad.violations.some((v) => v.includes("DMA_BUF_IOCTL_SYNC")),
    bad.violations.join("\n"),
  );
});

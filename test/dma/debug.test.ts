/**
 * DMA-API debug (kernel/dma/debug.c): every message debug.ts produces, provoked and
 * asserted, with the kernel's conditions (check_unmap, check_sync, add_dma_entry's
 * cacheline tracking, dma_debug_device_change).
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import {
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  type DmaDirection,
} from "../../src/dma/direction.js";
import { SgTable } from "../../src/dma/scatterlist.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { assertNoViolations, cmaBuffer, describe, rig, withMessage } from "./helpers.js";

function mapped(dir: DmaDirection, check = true) {
  const r = rig("arm64");
  const phys = cmaBuffer(r.m, PAGE_SIZE);
  const h = r.dma.dmaMapSingle(r.dev, phys, PAGE_SIZE, dir);
  if (check) r.dma.dmaMappingError(r.dev, h);
  return { ...r, phys, h };
}

function only(m: ReturnType<typeof rig>["m"], text: string): void {
  const hits = withMessage(m, text);
  assert.equal(hits.length, 1, `expected one "${text}":\n${describe(m.violations.list)}`);
  assert.equal(hits[0]!.kind, "api-misuse");
  assert.equal(hits[0]!.api, "dma-api");
  assert.ok(hits[0]!.message.startsWith("DMA-API: "));
}

suite("check_unmap", () => {
  test("a correct map/unmap reports nothing", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    assertNoViolations(m);
    assert.equal(dma.debug.liveEntries, 0);
  });

  test("unmap of something never mapped", () => {
    const { m, dma, dev } = rig("arm64");
    dma.dmaUnmapSingle(dev, 0x5000_0000, 64, DMA_TO_DEVICE);
    only(m, "device driver tries to free DMA memory it has not allocated");
    assert.match(
      m.violations.list[0]!.message,
      /\[device address=0x0000000050000000\] \[size=64 bytes\]/,
    );
  });

  test("double unmap: the second is not allocated", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    only(m, "has not allocated");
  });

  test("wrong size", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaUnmapSingle(dev, h, 100, DMA_TO_DEVICE);
    only(m, "frees DMA memory with different size");
    assert.match(
      withMessage(m, "different size")[0]!.message,
      /different size \[device address=0x[0-9a-f]{16}\] \[map size=4096 bytes\] \[unmap size=100 bytes\]/,
    );
  });

  test("wrong direction", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    only(m, "frees DMA memory with different direction");
    assert.match(
      m.violations.list[0]!.message,
      /mapped with DMA_TO_DEVICE\] \[unmapped with DMA_BIDIRECTIONAL/,
    );
  });

  test("wrong function: mapped single, unmapped page", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaUnmapPage(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    only(m, "frees DMA memory with wrong function");
    assert.match(m.violations.list[0]!.message, /\[mapped as single\] \[unmapped as page\]/);
  });

  test("failed to check map error", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE, false);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    only(m, "device driver failed to check map error");
  });

  test("sg: unmap with a different entry count", () => {
    const { m, dma, dev } = rig("arm64");
    const a = cmaBuffer(m, PAGE_SIZE);
    const b = cmaBuffer(m, 2 * PAGE_SIZE) + PAGE_SIZE;
    const sgt = SgTable.fromRanges([
      { phys: a, len: 256 },
      { phys: b, len: 256 },
    ]);
    const n = dma.dmaMapSg(dev, sgt, 2, DMA_TO_DEVICE);
    assert.equal(n, 2);
    dma.dmaUnmapSg(dev, sgt, 1, DMA_TO_DEVICE);
    const hits = withMessage(m, "frees DMA sg list with different entry count");
    assert.equal(hits.length, 2, "one per mapped segment");
    assert.match(hits[0]!.message, /\[map count=2\] \[unmap count=1\]/);
  });

  test("sg: unmapping with the count dma_map_sg returned is the classic bug", () => {
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const pages = [cmaBuffer(m, PAGE_SIZE), cmaBuffer(m, 2 * PAGE_SIZE) + PAGE_SIZE];
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
    const n = dma.dmaMapSg(dev, sgt, 2, DMA_FROM_DEVICE);
    assert.equal(n, 1);
    dma.dmaUnmapSg(dev, sgt, n, DMA_FROM_DEVICE);
    only(m, "different entry count");
  });

  test("free_coherent of a streaming mapping is the wrong function", () => {
    const { m, dma, dev, h } = mapped(DMA_BIDIRECTIONAL);
    dma.dmaFreeCoherent(dev, PAGE_SIZE, null, h);
    only(m, "wrong function");
    assert.match(m.violations.list[0]!.message, /\[mapped as single\] \[unmapped as coherent\]/);
  });
});

suite("check_sync", () => {
  test("correct syncs report nothing", () => {
    const { m, dma, dev, h } = mapped(DMA_FROM_DEVICE);
    dma.dmaSyncSingleForCpu(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    dma.dmaSyncSingleForDevice(dev, h + 64, 128, DMA_FROM_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    assertNoViolations(m);
  });

  test("sync of something not mapped", () => {
    const { m, dma, dev } = rig("arm64");
    dma.dmaSyncSingleForCpu(dev, 0x5000_0000, 64, DMA_FROM_DEVICE);
    only(m, "device driver tries to sync DMA memory it has not allocated");
  });

  test("sync past the end of the mapping", () => {
    const { m, dma, dev, h } = mapped(DMA_BIDIRECTIONAL);
    dma.dmaSyncSingleForCpu(dev, h + PAGE_SIZE - 64, 128, DMA_BIDIRECTIONAL);
    only(m, "device driver syncs DMA memory outside allocated range");
    assert.match(
      m.violations.list[0]!.message,
      /\[allocation size=4096 bytes\] \[sync offset\+size=4160\]/,
    );
  });

  test("sync with a different direction", () => {
    const { m, dma, dev, h } = mapped(DMA_FROM_DEVICE);
    dma.dmaSyncSingleForDevice(dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    only(m, "device driver syncs DMA memory with different direction");
  });

  test("a BIDIRECTIONAL mapping may be synced with any direction", () => {
    const { m, dma, dev, h } = mapped(DMA_BIDIRECTIONAL);
    dma.dmaSyncSingleForCpu(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    dma.dmaSyncSingleForDevice(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    assertNoViolations(m);
  });

  // kernel/dma/debug.c: to_cpu && entry != FROM_DEVICE && ref != TO_DEVICE -> read-only;
  // !to_cpu && entry != TO_DEVICE && ref != FROM_DEVICE -> write-only.
  test("syncing device read-only memory for the CPU (TO_DEVICE entry, FROM_DEVICE sync)", () => {
    const { m, dma, dev, h } = mapped(DMA_TO_DEVICE);
    dma.dmaSyncSingleForCpu(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    only(m, "device driver syncs device read-only DMA memory for cpu");
    only(m, "with different direction");
  });

  test("syncing device write-only memory to the device (FROM_DEVICE entry, TO_DEVICE sync)", () => {
    const { m, dma, dev, h } = mapped(DMA_FROM_DEVICE);
    dma.dmaSyncSingleForDevice(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    only(m, "device driver syncs device write-only DMA memory to device");
    only(m, "with different direction");
  });

  test("same directions the other way round are only a direction mismatch", () => {
    const a = mapped(DMA_TO_DEVICE);
    a.dma.dmaSyncSingleForDevice(a.dev, a.h, PAGE_SIZE, DMA_FROM_DEVICE);
    assert.equal(a.m.violations.count, 1);
    only(a.m, "with different direction");
    const b = mapped(DMA_FROM_DEVICE);
    b.dma.dmaSyncSingleForCpu(b.dev, b.h, PAGE_SIZE, DMA_TO_DEVICE);
    assert.equal(b.m.violations.count, 1);
    only(b.m, "with different direction");
  });

  test("sync_sg of an unmapped table is reported per segment", () => {
    const { m, dma, dev } = rig("arm64");
    const sgt = SgTable.fromRanges([{ phys: cmaBuffer(m, PAGE_SIZE), len: 64 }]);
    sgt.sgl[0]!.dmaAddress = 0x5000_0000;
    sgt.sgl[0]!.dmaLength = 64;
    dma.dmaSyncSgtableForCpu(dev, sgt, DMA_FROM_DEVICE);
    only(m, "tries to sync DMA memory it has not allocated");
  });
});

suite("cacheline tracking and release", () => {
  test("two device-writable mappings of the same memory overlap", () => {
    const { m, dma, dev, phys } = mapped(DMA_FROM_DEVICE);
    const h2 = dma.dmaMapSingle(dev, phys + 64, 64, DMA_BIDIRECTIONAL);
    dma.dmaMappingError(dev, h2);
    only(m, "cacheline tracking EEXIST, overlapping mappings aren't supported");
  });

  test("DMA_TO_DEVICE mappings may overlap (the device does not write)", () => {
    const { m, dma, dev, phys } = mapped(DMA_TO_DEVICE);
    const h2 = dma.dmaMapSingle(dev, phys, 64, DMA_TO_DEVICE);
    dma.dmaMappingError(dev, h2);
    assertNoViolations(m);
  });

  test("pending mappings at driver release are a leak", () => {
    const { m, dma, dev } = mapped(DMA_FROM_DEVICE);
    dma.dmaAllocCoherent(dev, PAGE_SIZE);
    assert.equal(dma.dmaReleaseDevice(dev), 2);
    const leaks = m.violations.ofKind("leak");
    assert.equal(leaks.length, 1);
    assert.equal(leaks[0]!.api, "dma-api");
    assert.match(
      leaks[0]!.message,
      /device driver has pending DMA allocations while released from device \[count=2\]/,
    );
    assert.match(leaks[0]!.message, /\[mapped with DMA_FROM_DEVICE\] \[mapped as single\]/);
  });

  test("a clean release reports nothing and returns 0", () => {
    const { m, dma, dev, h } = mapped(DMA_FROM_DEVICE);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    assert.equal(dma.dmaReleaseDevice(dev), 0);
    assertNoViolations(m);
  });

  test("with debugging disabled nothing is reported but mappings still work", () => {
    const { m, dma, dev, h } = mapped(DMA_FROM_DEVICE, false);
    dma.debug.enabled = false;
    dma.dmaUnmapSingle(dev, h, 7, DMA_TO_DEVICE);
    dma.dmaSyncSingleForCpu(dev, 0x5000_0000, 64, DMA_FROM_DEVICE);
    dma.dmaReleaseDevice(dev);
    assertNoViolations(m);
  });
});

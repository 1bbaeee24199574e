/**
 * swiotlb bouncing (kernel/dma/swiotlb.c with dma-direct): on arm64 RAM runs above
 * 4 GiB, so memory up there is out of reach of a 32-bit device and every mapping of it
 * goes through a bounce slot low in RAM. The slot is filled at map (always, whatever the
 * direction), copied back at sync_for_cpu / unmap for FROM_DEVICE and BIDIRECTIONAL, and
 * refilled at sync_for_device for TO_DEVICE and BIDIRECTIONAL.
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  type DmaDirection,
  directionName,
} from "../../src/dma/direction.js";
import { SgTable } from "../../src/dma/scatterlist.js";
import { IO_TLB_SEGSIZE } from "../../src/dma/swiotlb.js";
import { IO_TLB_SIZE } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import {
  assertNoViolations,
  cmaBuffer,
  countersDuring,
  GiB,
  pageAbove,
  pattern,
  rig,
} from "./helpers.js";

const FOUR_GIB = 4 * GiB;
const DIRS: readonly DmaDirection[] = [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL];
const copiesBack = (d: DmaDirection): boolean => d !== DMA_TO_DEVICE;
const copiesIn = (d: DmaDirection): boolean => d !== DMA_FROM_DEVICE;

function highPage() {
  const r = rig("arm64");
  const phys = pageAbove(r.m, FOUR_GIB);
  return { ...r, phys };
}

function bounceCost(m: ReturnType<typeof rig>["m"]): { ns: number; ops: number; bytes: number } {
  return m.costs.snapshot().bounce;
}

suite("swiotlb on arm64 (RAM above 4 GiB, 32-bit device)", () => {
  test("the profile really puts RAM above 4 GiB and the pool below it", () => {
    const { m } = rig("arm64");
    assert.ok(m.memory.end > FOUR_GIB);
    assert.ok(m.swiotlb !== undefined);
    assert.ok(m.swiotlb.base + m.swiotlb.size <= FOUR_GIB);
  });

  test("memory below 4 GiB is not bounced", () => {
    const { m, dma, dev } = rig("arm64");
    const phys = cmaBuffer(m, PAGE_SIZE);
    const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_TO_DEVICE);
    dma.dmaMappingError(dev, h);
    assert.equal(h, phys);
    assert.equal(dma.swiotlb.activeMappings, 0);
    assert.equal(bounceCost(m).ops, 0);
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
  });

  for (const dir of DIRS) {
    const name = directionName(dir);

    test(`${name}: map bounces into a slot below the mask and copies in`, () => {
      const { m, dma, dev, phys } = highPage();
      const cpuBytes = pattern(PAGE_SIZE, 1);
      m.cpu.writePhys(phys, cpuBytes);
      const before = bounceCost(m);
      const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, dir);
      assert.equal(dma.dmaMappingError(dev, h), false);
      assert.ok(h + PAGE_SIZE - 1 <= dev.dmaMask, "the handle is reachable");
      assert.ok(dma.swiotlb.isSwiotlbBuffer(h), "the handle is a bounce slot");
      assert.equal(dma.swiotlb.activeMappings, 1);
      const after = bounceCost(m);
      assert.ok(after.ns > before.ns, "the copy costs CPU time");
      assert.equal(after.bytes - before.bytes, 2 * PAGE_SIZE, "read and written once each");
      // kernel/dma/swiotlb.c copies at map whatever the direction (so a partial device
      // write never exposes stale pool contents); the slot is cleaned to memory.
      assert.deepEqual(m.memory.slice(h, PAGE_SIZE), cpuBytes);
      if (dir !== DMA_FROM_DEVICE) assert.deepEqual(dev.read(h, PAGE_SIZE), cpuBytes);
      dma.dmaUnmapSingle(dev, h, PAGE_SIZE, dir);
      assert.equal(dma.swiotlb.activeMappings, 0, "unmap frees the slot");
      assertNoViolations(m);
    });

    test(`${name}: unmap ${copiesBack(dir) ? "copies the device's bytes back" : "copies nothing back"}`, () => {
      const { m, dma, dev, phys } = highPage();
      const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, dir);
      dma.dmaMappingError(dev, h);
      const devBytes = pattern(PAGE_SIZE, 2);
      // For TO_DEVICE the device must not write; put the bytes in the slot behind its back.
      if (dir === DMA_TO_DEVICE) m.memory.write(h, devBytes);
      else dev.write(h, devBytes);
      const before = bounceCost(m);
      dma.dmaUnmapSingle(dev, h, PAGE_SIZE, dir);
      const copied = bounceCost(m).bytes - before.bytes;
      assert.equal(copied, copiesBack(dir) ? 2 * PAGE_SIZE : 0);
      const seen = m.cpu.readPhys(phys, PAGE_SIZE);
      assert.deepEqual(seen, copiesBack(dir) ? devBytes : new Uint8Array(PAGE_SIZE));
      assertNoViolations(m);
    });

    test(`${name}: sync_for_cpu copies back, sync_for_device copies in, as the direction says`, () => {
      const { m, dma, dev, phys } = highPage();
      const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, dir);
      dma.dmaMappingError(dev, h);
      const devBytes = pattern(PAGE_SIZE, 3);
      if (dir !== DMA_TO_DEVICE) dev.write(h, devBytes);
      let before = bounceCost(m).bytes;
      dma.dmaSyncSingleForCpu(dev, h, PAGE_SIZE, dir);
      assert.equal(bounceCost(m).bytes - before, copiesBack(dir) ? 2 * PAGE_SIZE : 0);
      const seen = m.cpu.readPhys(phys, PAGE_SIZE);
      assert.deepEqual(seen, copiesBack(dir) ? devBytes : new Uint8Array(PAGE_SIZE));
      // The CPU writes new bytes and hands the buffer back.
      const cpuBytes = pattern(PAGE_SIZE, 4);
      if (dir !== DMA_FROM_DEVICE) m.cpu.writePhys(phys, cpuBytes);
      before = bounceCost(m).bytes;
      dma.dmaSyncSingleForDevice(dev, h, PAGE_SIZE, dir);
      assert.equal(bounceCost(m).bytes - before, copiesIn(dir) ? 2 * PAGE_SIZE : 0);
      if (dir !== DMA_FROM_DEVICE) assert.deepEqual(dev.read(h, PAGE_SIZE), cpuBytes);
      dma.dmaUnmapSingle(dev, h, PAGE_SIZE, dir);
      assertNoViolations(m);
    });
  }

  test("a partial sync copies back only the synced part", () => {
    const { m, dma, dev, phys } = highPage();
    const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_FROM_DEVICE);
    dma.dmaMappingError(dev, h);
    dev.write(h, new Uint8Array(PAGE_SIZE).fill(0x77));
    const before = bounceCost(m).bytes;
    dma.dmaSyncSingleForCpu(dev, h + 1024, 512, DMA_FROM_DEVICE);
    assert.equal(bounceCost(m).bytes - before, 2 * 512);
    const seen = m.cpu.readPhys(phys, PAGE_SIZE);
    assert.ok(seen.subarray(1024, 1536).every((b) => b === 0x77));
    assert.ok(seen.subarray(0, 1024).every((b) => b === 0));
    assert.ok(seen.subarray(1536).every((b) => b === 0));
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    assertNoViolations(m);
  });

  test("DMA_ATTR_SKIP_CPU_SYNC at unmap skips the copy back", () => {
    const { m, dma, dev, phys } = highPage();
    const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_FROM_DEVICE);
    dma.dmaMappingError(dev, h);
    dev.write(h, new Uint8Array(PAGE_SIZE).fill(0x11));
    const before = bounceCost(m).bytes;
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    assert.equal(bounceCost(m).bytes, before);
    assert.equal(dma.swiotlb.activeMappings, 0);
    assert.ok(m.cpu.readPhys(phys, PAGE_SIZE).every((b) => b === 0));
  });

  test("the slot itself gets the architecture's maintenance (non-coherent arm64)", () => {
    const { m, dma, dev, phys } = highPage();
    m.cpu.writePhys(phys, pattern(PAGE_SIZE, 5));
    let h = 0;
    const atMap = countersDuring(m, () => {
      h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_TO_DEVICE);
    });
    dma.dmaMappingError(dev, h);
    // The copy dirties the slot's lines; the clean writes them to memory.
    assert.equal(atMap.lineOps, PAGE_SIZE / m.cache.line);
    assert.equal(m.cache.dirtyIn(h, PAGE_SIZE), undefined, "no dirty slot line left");
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
    assertNoViolations(m);
  });

  test("a bounced scatterlist: every entry above 4 GiB gets its own slot", () => {
    const { m, dma, dev } = rig("arm64");
    const pages = [pageAbove(m, FOUR_GIB), pageAbove(m, FOUR_GIB), pageAbove(m, FOUR_GIB)];
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p + 64, len: 1000 })));
    pages.forEach((p, i) => {
      m.cpu.writePhys(p + 64, pattern(1000, 10 + i));
    });
    dma.dmaMapSgtable(dev, sgt, DMA_BIDIRECTIONAL);
    assert.equal(sgt.nents, 3);
    assert.equal(dma.swiotlb.activeMappings, 3);
    const segs = sgt.dmaSegments();
    segs.forEach((s, i) => {
      assert.ok(dma.swiotlb.isSwiotlbBuffer(s.dmaAddr));
      assert.deepEqual(dev.read(s.dmaAddr, s.len), pattern(1000, 10 + i));
      dev.write(s.dmaAddr, pattern(1000, 20 + i));
    });
    dma.dmaUnmapSgtable(dev, sgt, DMA_BIDIRECTIONAL);
    assert.equal(dma.swiotlb.activeMappings, 0);
    pages.forEach((p, i) => {
      assert.deepEqual(m.cpu.readPhys(p + 64, 1000), pattern(1000, 20 + i));
    });
    assertNoViolations(m);
  });

  test("a mapping larger than the swiotlb maximum fails with DMA_MAPPING_ERROR", () => {
    const { m, dma, dev } = rig("arm64");
    const max = IO_TLB_SIZE * IO_TLB_SEGSIZE;
    assert.equal(dma.swiotlb.maxMappingSize, max);
    // Physically contiguous memory above 4 GiB: an order-9 block (2 MiB) up there.
    let block = -1;
    for (let i = 0; i < 10_000 && block < 0; i++) {
      const pfn = m.pages.alloc(9);
      if (pfn * PAGE_SIZE >= FOUR_GIB) block = pfn * PAGE_SIZE;
    }
    assert.ok(block > 0);
    const h = dma.dmaMapSingle(dev, block, max + PAGE_SIZE, DMA_TO_DEVICE);
    assert.equal(h, DMA_MAPPING_ERROR);
    assert.equal(dma.dmaMappingError(dev, h), true);
    assert.equal(dma.liveMappings, 0);
    assert.equal(dma.swiotlb.activeMappings, 0);
    assert.equal(dev.windowCount, 0);
    const ok = dma.dmaMapSingle(dev, block, max, DMA_TO_DEVICE);
    assert.equal(dma.dmaMappingError(dev, ok), false);
    dma.dmaUnmapSingle(dev, ok, max, DMA_TO_DEVICE);
  });
});

suite("forced bouncing (swiotlb=force)", () => {
  for (const profile of ["cortex-a9", "riscv64", "x86-64"]) {
    test(`${profile}: reachable memory is bounced too, and the bytes still arrive`, () => {
      const { m, dma, dev } = rig(profile);
      dma.forceBounce = true;
      const phys = cmaBuffer(m, PAGE_SIZE) + 100;
      const size = 3000;
      const cpuBytes = pattern(size, 6);
      m.cpu.writePhys(phys, cpuBytes);
      const h = dma.dmaMapSingle(dev, phys, size, DMA_BIDIRECTIONAL);
      assert.equal(dma.dmaMappingError(dev, h), false);
      assert.notEqual(h, phys);
      assert.ok(dma.swiotlb.isSwiotlbBuffer(h));
      assert.deepEqual(dev.read(h, size), cpuBytes);
      const devBytes = pattern(size, 7);
      dev.write(h, devBytes);
      dma.dmaSyncSingleForCpu(dev, h, size, DMA_BIDIRECTIONAL);
      assert.deepEqual(m.cpu.readPhys(phys, size), devBytes);
      dma.dmaUnmapSingle(dev, h, size, DMA_BIDIRECTIONAL);
      assert.ok(bounceCost(m).ops > 0);
      assertNoViolations(m);
    });
  }
});

/**
 * dma_alloc_coherent / dma_free_coherent: zeroed memory, the CPU mapping's attribute per
 * profile (write-combined on ARM, uncached on RISC-V, cached for a coherent device),
 * DMA_ATTR_NO_KERNEL_MAPPING, freeing, and CPU/device sharing without any sync.
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import { DMA_ATTR_NO_KERNEL_MAPPING, DMA_FROM_DEVICE } from "../../src/dma/direction.js";
import { DmaMappingApi } from "../../src/dma/mapping.js";
import { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import { ARCH_PROFILES, assertNoViolations, countersDuring, pattern, rig } from "./helpers.js";

const EXPECTED_ATTR: Record<string, string> = {
  "cortex-a9": "writecombine",
  arm64: "writecombine",
  riscv64: "uncached",
  "x86-64": "cached",
};

suite("dma_alloc_coherent", () => {
  for (const profile of ARCH_PROFILES) {
    test(`${profile}: zeroed, ${EXPECTED_ATTR[profile]} CPU mapping, shared without syncs`, () => {
      const { m, dma, dev } = rig(profile);
      const size = 3 * PAGE_SIZE + 100;
      // Dirty garbage in the memory the allocation will reuse must not show through.
      const probe = dma.dmaAllocCoherent(dev, size);
      m.cpu.write(probe.cpuAddr!, 0, pattern(size, 1));
      dma.dmaFreeCoherent(dev, size, probe.cpuAddr, probe.dmaHandle);
      m.cpu.writePhys(probe.phys, pattern(size, 2)); // cached garbage via the linear map
      const a = dma.dmaAllocCoherent(dev, size);
      assert.equal(a.phys, probe.phys, "the same memory is reused");
      assert.ok(a.cpuAddr !== null);
      assert.equal(a.cpuAddr.attr, EXPECTED_ATTR[profile]);
      assert.ok(
        m.cpu.read(a.cpuAddr, 0, size).every((b) => b === 0),
        "zeroed",
      );
      assert.ok(
        m.memory.slice(a.phys, size).every((b) => b === 0),
        "zeroed in DRAM too",
      );
      // CPU -> device and device -> CPU, no sync calls at all.
      const cpuBytes = pattern(size, 3);
      m.cpu.write(a.cpuAddr, 0, cpuBytes);
      assert.deepEqual(dev.read(a.dmaHandle, size), cpuBytes);
      const devBytes = pattern(size, 4);
      dev.write(a.dmaHandle, devBytes);
      assert.deepEqual(m.cpu.read(a.cpuAddr, 0, size), devBytes);
      const live = m.cpu.liveMappings;
      dma.dmaFreeCoherent(dev, size, a.cpuAddr, a.dmaHandle);
      assert.equal(m.cpu.liveMappings, live - 1, "free removes the CPU mapping");
      assert.equal(dev.windowCount, 0, "free removes the device's window");
      assert.equal(dma.debug.liveEntries, 0);
      dev.read(a.dmaHandle, 64);
      assert.equal(m.violations.ofKind("unmapped-device-access").length, 1);
    });
  }

  test("non-coherent allocation: riscv64 flushes the cacheable alias (arch_dma_prep_coherent)", () => {
    const { m, dma, dev } = rig("riscv64");
    const d = countersDuring(m, () => dma.dmaAllocCoherent(dev, PAGE_SIZE));
    assert.equal(d.lineOps, PAGE_SIZE / m.cache.line);
    assert.equal(m.cache.validLines, 0, "no line of it stays cached");
  });

  test("non-coherent allocation: arm64 only cleans (dcache_clean_poc), no dirty line stays", () => {
    const { m, dma, dev } = rig("arm64");
    const d = countersDuring(m, () => dma.dmaAllocCoherent(dev, PAGE_SIZE));
    assert.equal(d.lineOps, PAGE_SIZE / m.cache.line);
    assert.ok(m.cache.validLines > 0, "clean lines may stay cached");
    assert.equal(m.cache.dirtyLines, 0);
  });

  test("a coherent device needs no prep flush and gets a cached mapping", () => {
    const { m, dma, dev } = rig("arm64", { coherent: true });
    let attr = "";
    const d = countersDuring(m, () => {
      attr = dma.dmaAllocCoherent(dev, PAGE_SIZE).cpuAddr!.attr;
    });
    assert.equal(d.lineOps, 0);
    assert.equal(attr, "cached");
  });

  test("DMA_ATTR_NO_KERNEL_MAPPING gives no CPU mapping, the device still works", () => {
    const { m, dma, dev } = rig("cortex-a9");
    const live = m.cpu.liveMappings;
    const a = dma.dmaAllocCoherent(dev, PAGE_SIZE, DMA_ATTR_NO_KERNEL_MAPPING);
    assert.equal(a.cpuAddr, null);
    assert.equal(m.cpu.liveMappings, live);
    dev.write(a.dmaHandle, pattern(PAGE_SIZE, 5));
    assert.deepEqual(dev.read(a.dmaHandle, PAGE_SIZE), pattern(PAGE_SIZE, 5));
    dma.dmaFreeCoherent(dev, PAGE_SIZE, null, a.dmaHandle);
    assertNoViolations(m);
  });

  test("behind an IOMMU the handle is an IOVA and free unmaps it", () => {
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const a = dma.dmaAllocCoherent(dev, 2 * PAGE_SIZE);
    assert.notEqual(a.dmaHandle, a.phys);
    assert.equal(dev.iommu!.mappedPages, 2);
    m.cpu.write(a.cpuAddr!, 0, pattern(64, 6));
    assert.deepEqual(dev.read(a.dmaHandle, 64), pattern(64, 6));
    dma.dmaFreeCoherent(dev, 2 * PAGE_SIZE, a.cpuAddr, a.dmaHandle);
    assert.equal(dev.iommu!.mappedPages, 0);
    assertNoViolations(m);
  });

  test("the uncached mapping is slow: CPU reads cost more than through the cache", () => {
    const { m, dma, dev } = rig("riscv64");
    const a = dma.dmaAllocCoherent(dev, PAGE_SIZE);
    const t0 = m.now;
    m.cpu.read(a.cpuAddr!, 0, PAGE_SIZE);
    m.cpu.read(a.cpuAddr!, 0, PAGE_SIZE);
    const uncached = m.now - t0;
    const buf = m.cma.alloc(1);
    m.cpu.readPhys(buf, PAGE_SIZE);
    const t1 = m.now;
    m.cpu.readPhys(buf, PAGE_SIZE);
    m.cpu.readPhys(buf, PAGE_SIZE);
    assert.ok(uncached > 2 * (m.now - t1));
  });

  test("a cached access to coherent memory through the linear map is an attribute alias", () => {
    const { m, dma, dev } = rig("arm64");
    const a = dma.dmaAllocCoherent(dev, PAGE_SIZE);
    m.cpu.readPhys(a.phys, 64);
    assert.equal(m.violations.ofKind("attribute-alias").length, 1);
  });

  test("freeing with a different CPU address is reported", () => {
    const { m, dma, dev } = rig("arm64");
    const a = dma.dmaAllocCoherent(dev, PAGE_SIZE);
    dma.dmaFreeCoherent(dev, PAGE_SIZE, null, a.dmaHandle);
    const v = m.violations.list.filter((x) => x.message.includes("different CPU address"));
    assert.equal(v.length, 1);
    assert.equal(v[0]!.kind, "api-misuse");
  });
});

test("x86-64: a non-snooping device is kept coherent with clflush, as drm_cache.c does", () => {
  const m = new Machine({ profile: "x86-64" });
  const dma = new DmaMappingApi(m);
  const dev = m.addDevice("igpu", { coherent: false });
  const phys = m.cma.alloc(4);
  m.cpu.writePhys(phys, new Uint8Array(16384).fill(1));
  const h = dma.dmaMapSingle(dev, phys, 16384, DMA_FROM_DEVICE);
  dev.write(h, new Uint8Array(16384).fill(2));
  dma.dmaSyncSingleForCpu(dev, h, 16384, DMA_FROM_DEVICE);
  assert.deepEqual(m.cpu.readPhys(phys, 16384), new Uint8Array(16384).fill(2));
  assert.ok(m.costs.snapshot()["cache-maintenance"].ns > 0);
  assert.deepEqual(m.violations.list, []);
  dma.dmaUnmapSingle(dev, h, 16384, DMA_FROM_DEVICE);
});

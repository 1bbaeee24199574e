/**
 * Scatter-gather mappings: building tables (sg_alloc_table_from_pages merges physically
 * contiguous pages), dma_map_sg / dma_map_sgtable without an IOMMU (one DMA segment per
 * entry, maintenance on every entry) and with one (entries whose interior boundaries are
 * page aligned become one IOVA segment), and the syncs over a table.
 */

import assert from "node:assert/strict";
import { describe as suite, test } from "node:test";
import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
} from "../../src/dma/direction.js";
import { SgTable, sgAllocTableFromPages } from "../../src/dma/scatterlist.js";
import { KernelError } from "../../src/errno.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import {
  assertNoViolations,
  cachedLines,
  cmaBuffer,
  countersDuring,
  describe,
  GiB,
  pageAbove,
  pageBelow,
  pattern,
  rig,
} from "./helpers.js";

/** `n` pages from the page allocator, none physically next to the one before it. */
function scatteredPages(m: ReturnType<typeof rig>["m"], n: number, below = 4 * GiB): number[] {
  const out: number[] = [];
  while (out.length < n) {
    const p = pageBelow(m, below);
    const prev = out[out.length - 1];
    if (prev === undefined || p !== prev + PAGE_SIZE) out.push(p);
  }
  return out;
}

suite("sg_alloc_table_from_pages", () => {
  test("merges physically contiguous pages into one entry", () => {
    const a = 0x4400_0000;
    const c = 0x4800_0000;
    const t = sgAllocTableFromPages(
      [a, a + PAGE_SIZE, a + 2 * PAGE_SIZE, c],
      100,
      4 * PAGE_SIZE - 200,
    );
    assert.equal(t.origNents, 2);
    assert.deepEqual(
      t.sgl.map((e) => [e.page, e.offset, e.length]),
      [
        [a, 100, 3 * PAGE_SIZE - 100],
        [c, 0, PAGE_SIZE - 100],
      ],
    );
    assert.equal(t.size, 4 * PAGE_SIZE - 200);
    assert.deepEqual(t.physRanges(), [
      { phys: a + 100, len: 3 * PAGE_SIZE - 100 },
      { phys: c, len: PAGE_SIZE - 100 },
    ]);
  });

  test("respects the maximum segment size", () => {
    const a = 0x4400_0000;
    const pages = [0, 1, 2, 3].map((i) => a + i * PAGE_SIZE);
    const t = sgAllocTableFromPages(pages, 0, 4 * PAGE_SIZE, 2 * PAGE_SIZE);
    assert.deepEqual(
      t.sgl.map((e) => e.length),
      [2 * PAGE_SIZE, 2 * PAGE_SIZE],
    );
  });

  test("rejects sizes that do not fit and segments below a page", () => {
    const a = 0x4400_0000;
    assert.throws(() => sgAllocTableFromPages([a], 0, PAGE_SIZE + 1), KernelError);
    assert.throws(() => sgAllocTableFromPages([a], PAGE_SIZE, 1), KernelError);
    assert.throws(() => sgAllocTableFromPages([a], 0, 10, 100), KernelError);
  });

  test("dup copies the CPU side only", () => {
    const t = SgTable.fromRanges([{ phys: 0x4400_0010, len: 32 }]);
    t.sgl[0]!.dmaAddress = 5;
    t.sgl[0]!.dmaLength = 32;
    const d = t.dup();
    assert.equal(d.sgl[0]!.dmaAddress, 0);
    assert.equal(d.sgl[0]!.offset, 0x10);
  });
});

suite("dma_map_sg without an IOMMU", () => {
  for (const profile of ["cortex-a9", "arm64", "riscv64"]) {
    test(`${profile}: one segment per entry, each cleaned; sync_sg for the CPU invalidates each`, () => {
      const { m, dma, dev } = rig(profile);
      const pages = scatteredPages(m, 3);
      const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
      pages.forEach((p, i) => {
        m.cpu.writePhys(p, pattern(PAGE_SIZE, i));
      });
      const lines = (3 * PAGE_SIZE) / m.cache.line;
      let n = 0;
      const atMap = countersDuring(m, () => {
        n = dma.dmaMapSg(dev, sgt, sgt.origNents, DMA_BIDIRECTIONAL);
      });
      assert.equal(n, 3, "dma-direct does not merge");
      assert.equal(atMap.lineOps, lines);
      assert.equal(atMap.writebacks, lines);
      sgt.sgl.forEach((e, i) => {
        assert.equal(e.dmaAddress, pages[i]);
        assert.equal(e.dmaLength, PAGE_SIZE);
      });
      const segs = sgt.dmaSegments();
      const all = dev.readSegments(segs);
      pages.forEach((_, i) => {
        assert.deepEqual(all.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), pattern(PAGE_SIZE, i));
      });
      // Prefetched copies, then the device overwrites everything.
      for (const p of pages) m.cache.read(p, PAGE_SIZE, new Uint8Array(PAGE_SIZE));
      dev.writeSegments(segs, pattern(3 * PAGE_SIZE, 9));
      const atSync = countersDuring(m, () =>
        dma.dmaSyncSgForCpu(dev, sgt, sgt.origNents, DMA_BIDIRECTIONAL),
      );
      assert.equal(atSync.lineOps, lines);
      for (const p of pages) assert.equal(cachedLines(m, p, PAGE_SIZE).cached, 0);
      const seen = pages.map((p) => m.cpu.readPhys(p, PAGE_SIZE));
      seen.forEach((s, i) => {
        assert.deepEqual(s, pattern(3 * PAGE_SIZE, 9).subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      });
      // And back to the device: cleaned again, entry by entry.
      m.cpu.writePhys(pages[1]!, pattern(PAGE_SIZE, 42));
      const atDev = countersDuring(m, () =>
        dma.dmaSyncSgForDevice(dev, sgt, sgt.origNents, DMA_BIDIRECTIONAL),
      );
      assert.equal(atDev.lineOps, lines);
      assert.deepEqual(dev.read(segs[1]!.dmaAddr, PAGE_SIZE), pattern(PAGE_SIZE, 42));
      dma.dmaUnmapSg(dev, sgt, sgt.origNents, DMA_BIDIRECTIONAL);
      assert.equal(dma.liveMappings, 0);
      assert.equal(dev.windowCount, 0);
      assertNoViolations(m);
    });
  }

  test("x86-64: coherent, no maintenance at all", () => {
    const { m, dma, dev } = rig("x86-64");
    const pages = scatteredPages(m, 2);
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
    const d = countersDuring(m, () => {
      dma.dmaMapSgtable(dev, sgt, DMA_FROM_DEVICE);
      dev.writeSegments(sgt.dmaSegments(), pattern(2 * PAGE_SIZE, 1));
      dma.dmaUnmapSgtable(dev, sgt, DMA_FROM_DEVICE);
    });
    assert.equal(d.lineOps, 0);
    assert.deepEqual(
      m.cpu.readPhys(pages[1]!, PAGE_SIZE),
      pattern(2 * PAGE_SIZE, 1).subarray(PAGE_SIZE),
    );
    assertNoViolations(m);
  });

  test("DMA_ATTR_SKIP_CPU_SYNC skips the per-entry maintenance", () => {
    const { m, dma, dev } = rig("arm64");
    const pages = scatteredPages(m, 2);
    for (const p of pages) m.cpu.writePhys(p, pattern(PAGE_SIZE, 3));
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
    const d = countersDuring(m, () => {
      dma.dmaMapSgtable(dev, sgt, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
      dma.dmaUnmapSgtable(dev, sgt, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC);
    });
    assert.equal(d.lineOps, 0);
    assert.equal(m.cache.dirtyLines, (2 * PAGE_SIZE) / m.cache.line);
  });

  test("nents out of range is EINVAL", () => {
    const { m, dma, dev } = rig("arm64");
    const sgt = SgTable.fromRanges([{ phys: cmaBuffer(m, PAGE_SIZE), len: 64 }]);
    assert.throws(() => dma.dmaMapSg(dev, sgt, 2, DMA_TO_DEVICE), KernelError);
    assert.throws(() => dma.dmaMapSg(dev, sgt, 0, DMA_TO_DEVICE), KernelError);
  });

  test("a failed bounce makes dma_map_sg return 0 and leaves nothing mapped", () => {
    const { m, dma, dev } = rig("arm64");
    let block = -1;
    for (let i = 0; i < 10_000 && block < 0; i++) {
      const pfn = m.pages.alloc(9);
      if (pfn * PAGE_SIZE >= 4 * GiB) block = pfn * PAGE_SIZE;
    }
    const low = cmaBuffer(m, PAGE_SIZE);
    const sgt = SgTable.fromRanges([
      { phys: pageAbove(m, 4 * GiB), len: PAGE_SIZE },
      { phys: low, len: PAGE_SIZE },
      { phys: block, len: 2 * 1024 * 1024 },
    ]);
    assert.equal(dma.dmaMapSg(dev, sgt, 3, DMA_TO_DEVICE), 0);
    assert.equal(dma.liveMappings, 0);
    assert.equal(dma.swiotlb.activeMappings, 0, "the slots already taken were released");
    assert.equal(dev.windowCount, 0);
  });
});

suite("dma_map_sg with an IOMMU", () => {
  test("page-aligned scattered pages become one contiguous DMA segment", () => {
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const pages = scatteredPages(m, 4);
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
    dma.dmaMapSgtable(dev, sgt, DMA_BIDIRECTIONAL);
    assert.equal(sgt.origNents, 4);
    assert.equal(sgt.nents, 1, "merged into one IOVA segment");
    const [seg] = sgt.dmaSegments();
    assert.equal(seg!.len, 4 * PAGE_SIZE);
    assert.equal(dev.iommu!.mappedPages, 4);
    const bytes = pattern(4 * PAGE_SIZE, 5);
    dev.write(seg!.dmaAddr, bytes);
    dma.dmaUnmapSgtable(dev, sgt, DMA_BIDIRECTIONAL);
    assert.equal(dev.iommu!.mappedPages, 0, "unmap clears the page table");
    pages.forEach((p, i) => {
      assert.deepEqual(
        m.cpu.readPhys(p, PAGE_SIZE),
        bytes.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE),
      );
    });
    assertNoViolations(m);
  });

  test("an unaligned interior boundary starts a new segment", () => {
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const [a, b, c] = scatteredPages(m, 3);
    const sgt = SgTable.fromRanges([
      { phys: a!, len: PAGE_SIZE },
      { phys: b!, len: 1000 }, // ends mid-page
      { phys: c!, len: PAGE_SIZE },
    ]);
    const n = dma.dmaMapSg(dev, sgt, 3, DMA_TO_DEVICE);
    assert.equal(n, 2);
    // dma_map_sg returns the segment count; only dma_map_sgtable stores it in the table.
    assert.equal(sgt.nents, 3);
    assert.deepEqual(
      sgt
        .dmaSegments()
        .slice(0, n)
        .map((s) => s.len),
      [PAGE_SIZE + 1000, PAGE_SIZE],
    );
    assert.equal(sgt.sgl[2]!.dmaLength, 0, "entries past the segments have no DMA length");
    dma.dmaUnmapSg(dev, sgt, 3, DMA_TO_DEVICE);
    assertNoViolations(m);
  });

  test("merged segments of a DMA_FROM_DEVICE table are not overlapping mappings", () => {
    // Segment 1 is described by its first entry: a table of [A, A+4K (contiguous), C+100]
    // must not be reported as overlapping itself.
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const a = cmaBuffer(m, 2 * PAGE_SIZE);
    const c = cmaBuffer(m, 2 * PAGE_SIZE) + PAGE_SIZE;
    const sgt = SgTable.fromRanges([
      { phys: a, len: PAGE_SIZE },
      { phys: a + PAGE_SIZE, len: PAGE_SIZE },
      { phys: c + 100, len: 200 },
    ]);
    dma.dmaMapSgtable(dev, sgt, DMA_FROM_DEVICE);
    assert.equal(sgt.nents, 2);
    dma.dmaUnmapSgtable(dev, sgt, DMA_FROM_DEVICE);
    assertNoViolations(m);
  });

  test("the IOMMU path still does cache maintenance for a non-coherent device", () => {
    const { m, dma, dev } = rig("riscv64", { iommu: true });
    const pages = scatteredPages(m, 2);
    for (const p of pages) m.cpu.writePhys(p, pattern(PAGE_SIZE, 8));
    const sgt = SgTable.fromRanges(pages.map((p) => ({ phys: p, len: PAGE_SIZE })));
    const d = countersDuring(m, () => dma.dmaMapSgtable(dev, sgt, DMA_TO_DEVICE));
    assert.equal(d.lineOps, (2 * PAGE_SIZE) / m.cache.line);
    assert.equal(m.cache.dirtyLines, 0);
    const seen = dev.readSegments(sgt.dmaSegments());
    assert.deepEqual(seen.subarray(PAGE_SIZE), pattern(PAGE_SIZE, 8));
    assert.ok(m.costs.snapshot().iommu.ops > 0, "IOMMU work is charged");
    dma.dmaUnmapSgtable(dev, sgt, DMA_TO_DEVICE);
    assertNoViolations(m);
  });

  test("the IOMMU reaches memory above 4 GiB without bouncing", () => {
    const { m, dma, dev } = rig("arm64", { iommu: true });
    const high = pageAbove(m, 4 * GiB);
    const h = dma.dmaMapSingle(dev, high, PAGE_SIZE, DMA_FROM_DEVICE);
    dma.dmaMappingError(dev, h);
    assert.ok(h < 4 * GiB);
    assert.equal(dma.swiotlb.activeMappings, 0);
    dev.write(h, pattern(PAGE_SIZE, 1));
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_FROM_DEVICE);
    assert.deepEqual(m.cpu.readPhys(high, PAGE_SIZE), pattern(PAGE_SIZE, 1));
    assertNoViolations(m);
  });

  suite("faults", () => {
    function mapped(dir: 0 | 1 | 2) {
      const r = rig("arm64", { iommu: true });
      const [p] = scatteredPages(r.m, 1);
      const h = r.dma.dmaMapSingle(r.dev, p!, PAGE_SIZE, dir);
      r.dma.dmaMappingError(r.dev, h);
      return { ...r, h, p: p! };
    }
    const faults = (m: ReturnType<typeof rig>["m"]) =>
      m.violations.list.filter(
        (v) => v.kind === "unmapped-device-access" && v.message.startsWith("IOMMU fault"),
      );

    test("an access past the mapping faults and does not reach memory", () => {
      const { m, dev, h } = mapped(DMA_BIDIRECTIONAL);
      const got = dev.read(h + PAGE_SIZE, 64);
      assert.equal(faults(m).length, 1, describe(m.violations.list));
      assert.match(faults(m)[0]!.message, /not mapped/);
      assert.ok(got.every((b) => b === 0));
      dev.write(h - 64, new Uint8Array(64).fill(1));
      assert.equal(faults(m).length, 2);
    });

    test("a write to a DMA_TO_DEVICE mapping faults on permission", () => {
      const { m, dev, h, p } = mapped(DMA_TO_DEVICE);
      dev.write(h, new Uint8Array(64).fill(0xcc));
      assert.equal(faults(m).length, 1);
      assert.match(faults(m)[0]!.message, /without write permission/);
      assert.ok(
        m.memory.slice(p, 64).every((b) => b === 0),
        "memory untouched",
      );
    });

    test("a read of a DMA_FROM_DEVICE mapping faults on permission", () => {
      const { m, dev, h } = mapped(DMA_FROM_DEVICE);
      dev.read(h, 64);
      assert.equal(faults(m).length, 1);
      assert.match(faults(m)[0]!.message, /without read permission/);
    });

    test("after unmap the IOVA faults", () => {
      const { m, dma, dev, h } = mapped(DMA_BIDIRECTIONAL);
      dev.read(h, 64);
      assert.equal(faults(m).length, 0);
      dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
      dev.read(h, 64);
      assert.equal(faults(m).length, 1);
    });
  });
});

/**
 * dma_map_single / dma_unmap_single / dma_sync_single_*: the cache maintenance each call
 * performs, per architecture and direction, checked through what it does to the cache
 * (counters, lines left cached or dirty) and the bytes the device and the CPU then see.
 *
 * Expected rules (arch/arm64/mm/dma-mapping.c, arch/arm/mm/dma-mapping.c with
 * cache-v7.S v7_dma_map_area / v7_dma_unmap_area, arch/riscv/mm/dma-noncoherent.c;
 * x86 devices snoop and there is no arch_sync_dma_*):
 *
 *   for_device: arm64/riscv clean for every direction; arm clean, except invalidate for
 *               DMA_FROM_DEVICE; x86 nothing.
 *   for_cpu:    nothing for DMA_TO_DEVICE; invalidate for FROM_DEVICE and BIDIRECTIONAL
 *               (x86 nothing).
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
import { KernelError } from "../../src/errno.js";
import { PAGE_SIZE } from "../../src/machine/memory.js";
import {
  ARCH_PROFILES,
  assertNoViolations,
  cachedLines,
  cmaBuffer,
  countersDuring,
  describe,
  pattern,
  rig,
} from "./helpers.js";

const DIRS: readonly DmaDirection[] = [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL];
const SIZE = 4 * PAGE_SIZE;

type Op = "clean" | "invalidate" | "none";

/** The kernel's rule for arch_sync_dma_for_device. */
function forDeviceOp(profile: string, dir: DmaDirection): Op {
  if (profile === "x86-64") return "none";
  if (profile === "cortex-a9" && dir === DMA_FROM_DEVICE) return "invalidate";
  return "clean";
}

/** The kernel's rule for arch_sync_dma_for_cpu. */
function forCpuOp(profile: string, dir: DmaDirection): Op {
  if (profile === "x86-64" || dir === DMA_TO_DEVICE) return "none";
  return "invalidate";
}

/** A machine whose CPU has just written `cpuBytes` over a 4-page buffer (all lines dirty). */
function dirtyBuffer(profile: string) {
  const r = rig(profile);
  const phys = cmaBuffer(r.m, SIZE);
  const cpuBytes = pattern(SIZE, 1);
  r.m.cpu.writePhys(phys, cpuBytes);
  const lines = SIZE / r.m.cache.line;
  assert.equal(cachedLines(r.m, phys, SIZE).dirty, lines, "setup: every line dirty");
  return { ...r, phys, cpuBytes, lines };
}

/** Asserts the effect of a for_device operation that was just observed. */
function checkForDevice(
  op: Op,
  ctx: ReturnType<typeof dirtyBuffer>,
  delta: ReturnType<typeof countersDuring>,
  maintNs: number,
): void {
  const { m, phys, lines, cpuBytes } = ctx;
  const after = cachedLines(m, phys, SIZE);
  const dram = m.memory.slice(phys, SIZE);
  switch (op) {
    case "clean":
      assert.equal(delta.lineOps, lines, "one clean per line");
      assert.equal(delta.writebacks, lines, "every dirty line written back");
      assert.equal(delta.discardedDirty, 0);
      assert.deepEqual(
        after,
        { cached: lines, dirty: 0 },
        "clean leaves the lines valid and clean",
      );
      assert.deepEqual(dram, cpuBytes, "memory now holds the CPU's bytes");
      assert.ok(maintNs > 0, "maintenance is charged");
      break;
    case "invalidate":
      assert.equal(delta.lineOps, lines, "one invalidate per line");
      assert.equal(delta.writebacks, 0, "a line-aligned invalidate writes nothing back");
      assert.equal(delta.discardedDirty, lines, "the CPU's dirty lines are discarded");
      assert.deepEqual(after, { cached: 0, dirty: 0 });
      assert.deepEqual(dram, new Uint8Array(SIZE), "memory keeps its old (zero) bytes");
      assert.ok(maintNs > 0, "maintenance is charged");
      break;
    case "none":
      assert.equal(delta.lineOps, 0, "no maintenance");
      assert.equal(delta.writebacks, 0);
      assert.deepEqual(after, { cached: lines, dirty: lines }, "the dirty lines stay dirty");
      assert.equal(maintNs, 0, "no maintenance is charged");
      break;
  }
}

function maintenanceNs(ctx: {
  m: { costs: { snapshot(): { "cache-maintenance": { ns: number } } } };
}) {
  return ctx.m.costs.snapshot()["cache-maintenance"].ns;
}

for (const profile of ARCH_PROFILES) {
  suite(`streaming maintenance on ${profile}`, () => {
    for (const dir of DIRS) {
      const name = directionName(dir);

      test(`dma_map_single ${name}: ${forDeviceOp(profile, dir)} for the device`, () => {
        const ctx = dirtyBuffer(profile);
        const { m, dma, dev, phys } = ctx;
        const before = maintenanceNs(ctx);
        let handle = 0;
        const delta = countersDuring(m, () => {
          handle = dma.dmaMapSingle(dev, phys, SIZE, dir);
        });
        assert.equal(dma.dmaMappingError(dev, handle), false);
        checkForDevice(forDeviceOp(profile, dir), ctx, delta, maintenanceNs(ctx) - before);
        if (dir !== DMA_FROM_DEVICE) {
          // What the device reads is what the CPU wrote, on every architecture.
          assert.deepEqual(dev.read(handle, SIZE), ctx.cpuBytes);
        }
        dma.dmaUnmapSingle(dev, handle, SIZE, dir);
        assertNoViolations(m);
      });

      test(`dma_sync_single_for_device ${name}: ${forDeviceOp(profile, dir)} for the device`, () => {
        const ctx = dirtyBuffer(profile);
        const { m, dma, dev, phys } = ctx;
        const handle = dma.dmaMapSingle(dev, phys, SIZE, dir);
        dma.dmaMappingError(dev, handle);
        dma.dmaSyncSingleForCpu(dev, handle, SIZE, dir);
        // The CPU owns the buffer again and writes it: every line dirty again.
        const second = pattern(SIZE, 2);
        m.cpu.writePhys(phys, second);
        const ctx2 = { ...ctx, cpuBytes: second };
        // For the invalidate case, memory must keep what it had before these writes.
        const dramBefore = m.memory.slice(phys, SIZE);
        const before = maintenanceNs(ctx);
        const delta = countersDuring(m, () => dma.dmaSyncSingleForDevice(dev, handle, SIZE, dir));
        const op = forDeviceOp(profile, dir);
        if (op === "invalidate") {
          assert.equal(delta.discardedDirty, ctx.lines);
          assert.deepEqual(cachedLines(m, phys, SIZE), { cached: 0, dirty: 0 });
          assert.deepEqual(m.memory.slice(phys, SIZE), dramBefore);
        } else {
          checkForDevice(op, ctx2, delta, maintenanceNs(ctx) - before);
        }
        if (dir !== DMA_FROM_DEVICE) assert.deepEqual(dev.read(handle, SIZE), second);
        dma.dmaUnmapSingle(dev, handle, SIZE, dir);
        assertNoViolations(m);
      });

      for (const via of ["dma_sync_single_for_cpu", "dma_unmap_single"] as const) {
        test(`${via} ${name}: ${forCpuOp(profile, dir)} for the CPU`, () => {
          const { m, dma, dev } = rig(profile);
          const phys = cmaBuffer(m, SIZE);
          const handle = dma.dmaMapSingle(dev, phys, SIZE, dir);
          dma.dmaMappingError(dev, handle);
          // The CPU speculatively prefetches the buffer while the device owns it (the
          // reason arch_sync_dma_for_cpu exists): clean copies of the old bytes are cached.
          m.cache.read(phys, SIZE, new Uint8Array(SIZE));
          const lines = SIZE / m.cache.line;
          const devBytes = pattern(SIZE, 3);
          if (dir !== DMA_TO_DEVICE) dev.write(handle, devBytes);
          const before = m.costs.snapshot()["cache-maintenance"].ns;
          const delta = countersDuring(m, () => {
            if (via === "dma_unmap_single") dma.dmaUnmapSingle(dev, handle, SIZE, dir);
            else dma.dmaSyncSingleForCpu(dev, handle, SIZE, dir);
          });
          const spent = m.costs.snapshot()["cache-maintenance"].ns - before;
          const op = forCpuOp(profile, dir);
          if (op === "invalidate") {
            assert.equal(delta.lineOps, lines, "one invalidate per line");
            assert.equal(cachedLines(m, phys, SIZE).cached, 0, "no stale copy survives");
            assert.ok(spent > 0);
          } else {
            assert.equal(delta.lineOps, 0, "no maintenance");
            assert.equal(spent, 0);
            if (profile !== "x86-64" || dir === DMA_TO_DEVICE) {
              // Nothing was invalidated: the prefetched lines are still there (on x86 a
              // device write snoops them away).
              assert.equal(cachedLines(m, phys, SIZE).cached, lines);
            }
          }
          const seen = m.cpu.readPhys(phys, SIZE);
          assert.deepEqual(seen, dir === DMA_TO_DEVICE ? new Uint8Array(SIZE) : devBytes);
          if (via === "dma_sync_single_for_cpu") dma.dmaUnmapSingle(dev, handle, SIZE, dir);
          assertNoViolations(m);
        });
      }

      test(`DMA_ATTR_SKIP_CPU_SYNC ${name}: no maintenance at map or unmap`, () => {
        const ctx = dirtyBuffer(profile);
        const { m, dma, dev, phys, lines } = ctx;
        let handle = 0;
        const atMap = countersDuring(m, () => {
          handle = dma.dmaMapSingle(dev, phys, SIZE, dir, DMA_ATTR_SKIP_CPU_SYNC);
        });
        dma.dmaMappingError(dev, handle);
        assert.equal(atMap.lineOps, 0);
        assert.equal(atMap.writebacks, 0);
        assert.deepEqual(cachedLines(m, phys, SIZE), { cached: lines, dirty: lines });
        if (profile !== "x86-64" && dir !== DMA_FROM_DEVICE) {
          // Without the clean the device reads stale memory, and the checker says so.
          assert.deepEqual(dev.read(handle, SIZE), new Uint8Array(SIZE));
          assert.equal(m.violations.ofKind("stale-device-read").length, 1);
        }
        const atUnmap = countersDuring(m, () =>
          dma.dmaUnmapSingle(dev, handle, SIZE, dir, DMA_ATTR_SKIP_CPU_SYNC),
        );
        assert.equal(atUnmap.lineOps, 0);
        assert.equal(m.costs.snapshot()["cache-maintenance"].ns, 0, "nothing was charged");
      });
    }
  });
}

suite("partial lines and partial syncs", () => {
  test("arm FROM_DEVICE invalidate cleans the partly covered edge lines first", () => {
    const { m, dma, dev } = rig("cortex-a9");
    const L = m.cache.line;
    const base = cmaBuffer(m, PAGE_SIZE);
    // A buffer that starts and ends mid-line; the CPU has dirty data on both sides.
    const phys = base + L + 5;
    const size = 3 * L;
    const all = pattern(PAGE_SIZE, 7);
    m.cpu.writePhys(base, all);
    const delta = countersDuring(m, () => {
      const h = dma.dmaMapSingle(dev, phys, size, DMA_FROM_DEVICE);
      dma.dmaMappingError(dev, h);
      dev.write(h, new Uint8Array(size).fill(0xee));
      dma.dmaUnmapSingle(dev, h, size, DMA_FROM_DEVICE);
    });
    assert.ok(delta.writebacks >= 2, "both edge lines were written back");
    const seen = m.cpu.readPhys(base, PAGE_SIZE);
    // The neighbours' bytes survived; the buffer holds what the device wrote.
    assert.deepEqual(seen.subarray(0, L + 5), all.subarray(0, L + 5));
    assert.deepEqual(seen.subarray(L + 5 + size), all.subarray(L + 5 + size));
    assert.ok(seen.subarray(L + 5, L + 5 + size).every((b) => b === 0xee));
    assertNoViolations(m);
  });

  test("a partial sync_for_cpu invalidates only the lines of the synced part", () => {
    const { m, dma, dev } = rig("arm64");
    const L = m.cache.line;
    const phys = cmaBuffer(m, SIZE);
    const h = dma.dmaMapSingle(dev, phys, SIZE, DMA_FROM_DEVICE);
    dma.dmaMappingError(dev, h);
    m.cache.read(phys, SIZE, new Uint8Array(SIZE)); // speculative prefetch
    const delta = countersDuring(m, () =>
      dma.dmaSyncSingleForCpu(dev, h + L, 2 * L, DMA_FROM_DEVICE),
    );
    assert.equal(delta.lineOps, 2);
    assert.equal(cachedLines(m, phys, SIZE).cached, SIZE / L - 2);
    dma.dmaUnmapSingle(dev, h, SIZE, DMA_FROM_DEVICE);
    assertNoViolations(m);
  });

  test("cortex-a9 cleans a range as large as the L2 by set/way, but invalidates by line", () => {
    const { m, dma, dev } = rig("cortex-a9");
    const size = 512 * 1024;
    const phys = cmaBuffer(m, size);
    m.cpu.writePhys(phys, pattern(size, 9));
    let h = 0;
    const clean = countersDuring(m, () => {
      h = dma.dmaMapSingle(dev, phys, size, DMA_TO_DEVICE);
    });
    dma.dmaMappingError(dev, h);
    assert.equal(clean.lineOps, 0, "no per-line operations");
    assert.equal(clean.setWayOps, m.cache.slots, "every slot visited once");
    assert.equal(m.cache.dirtyLines, 0);
    dma.dmaUnmapSingle(dev, h, size, DMA_TO_DEVICE);
    const inv = countersDuring(m, () => {
      h = dma.dmaMapSingle(dev, phys, size, DMA_FROM_DEVICE);
    });
    dma.dmaMappingError(dev, h);
    assert.equal(inv.setWayOps, 0);
    assert.equal(inv.lineOps, size / m.cache.line);
    dma.dmaUnmapSingle(dev, h, size, DMA_FROM_DEVICE);
    assertNoViolations(m);
  });

  test("a coherent device on an arm64 machine needs (and gets) no maintenance", () => {
    const { m, dma, dev } = rig("arm64", { coherent: true });
    const phys = cmaBuffer(m, SIZE);
    const bytes = pattern(SIZE, 4);
    m.cpu.writePhys(phys, bytes);
    const delta = countersDuring(m, () => {
      const h = dma.dmaMapSingle(dev, phys, SIZE, DMA_BIDIRECTIONAL);
      dma.dmaMappingError(dev, h);
      assert.deepEqual(dev.read(h, SIZE), bytes, "the snoop supplies the dirty lines");
      dev.write(h, pattern(SIZE, 5));
      dma.dmaUnmapSingle(dev, h, SIZE, DMA_BIDIRECTIONAL);
    });
    assert.equal(delta.lineOps, 0);
    assert.deepEqual(m.cpu.readPhys(phys, SIZE), pattern(SIZE, 5));
    assertNoViolations(m);
  });
});

suite("the stale-data cases the checker must name", () => {
  for (const profile of ["cortex-a9", "arm64", "riscv64"]) {
    test(`${profile}: a CPU read without sync_for_cpu is stale and reported`, () => {
      const { m, dma, dev } = rig(profile);
      const phys = cmaBuffer(m, PAGE_SIZE);
      m.cpu.writePhys(phys, new Uint8Array(PAGE_SIZE).fill(1));
      const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_FROM_DEVICE);
      dma.dmaMappingError(dev, h);
      m.cache.read(phys, PAGE_SIZE, new Uint8Array(PAGE_SIZE));
      dev.write(h, new Uint8Array(PAGE_SIZE).fill(2));
      const seen = m.cpu.readPhys(phys, PAGE_SIZE);
      assert.notDeepEqual(seen, new Uint8Array(PAGE_SIZE).fill(2), "stale bytes");
      const kinds = new Set(m.violations.list.map((v) => v.kind));
      assert.ok(kinds.has("stale-cpu-read"), describe(m.violations.list));
      assert.ok(kinds.has("cpu-access-device-owned"), describe(m.violations.list));
      const stale = m.violations.ofKind("stale-cpu-read")[0]!;
      assert.match(stale.hint, /dma_sync_single_for_cpu/);
    });

    test(`${profile}: a device read without sync_for_device is stale and reported`, () => {
      const { m, dma, dev } = rig(profile);
      const phys = cmaBuffer(m, PAGE_SIZE);
      const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_TO_DEVICE);
      dma.dmaMappingError(dev, h);
      dma.dmaSyncSingleForCpu(dev, h, PAGE_SIZE, DMA_TO_DEVICE);
      m.cpu.writePhys(phys, new Uint8Array(PAGE_SIZE).fill(9));
      const seen = dev.read(h, PAGE_SIZE);
      assert.ok(
        seen.every((b) => b === 0),
        "the device got the old bytes",
      );
      const v = m.violations.ofKind("stale-device-read");
      assert.equal(v.length, 1, describe(m.violations.list));
      assert.match(v[0]!.hint, /dma_sync_single_for_device/);
    });
  }
});

suite("argument checks", () => {
  test("an invalid direction is a BUG_ON (EINVAL), a zero size too", () => {
    const { m, dma, dev } = rig("arm64");
    const phys = cmaBuffer(m, PAGE_SIZE);
    assert.throws(
      () => dma.dmaMapSingle(dev, phys, PAGE_SIZE, 3 as DmaDirection),
      (e: unknown) => e instanceof KernelError && e.code === "EINVAL",
    );
    assert.throws(
      () => dma.dmaMapSingle(dev, phys, 0, DMA_TO_DEVICE),
      (e: unknown) => e instanceof KernelError && e.code === "EINVAL",
    );
    assert.equal(dma.liveMappings, 0);
  });

  test("dma_map_page maps page + offset and returns that DMA address", () => {
    const { m, dma, dev } = rig("riscv64");
    const page = cmaBuffer(m, PAGE_SIZE);
    const h = dma.dmaMapPage(dev, page, 128, 256, DMA_TO_DEVICE);
    assert.notEqual(h, DMA_MAPPING_ERROR);
    assert.equal(dma.dmaMappingError(dev, h), false);
    assert.equal(h, page + 128, "dma-direct: DMA address = physical address");
    dma.dmaUnmapPage(dev, h, 256, DMA_TO_DEVICE);
    assert.equal(dma.liveMappings, 0);
    assert.equal(dev.windowCount, 0);
    assertNoViolations(m);
  });

  test("a device outside its windows is reported; after unmap the window is gone", () => {
    const { m, dma, dev } = rig("arm64");
    const phys = cmaBuffer(m, PAGE_SIZE);
    const h = dma.dmaMapSingle(dev, phys, 256, DMA_TO_DEVICE);
    dma.dmaMappingError(dev, h);
    dev.read(h + 256, 16);
    assert.equal(m.violations.ofKind("unmapped-device-access").length, 1);
    dev.write(h, new Uint8Array(16));
    assert.equal(m.violations.ofKind("dma-direction").length, 1);
    dma.dmaUnmapSingle(dev, h, 256, DMA_TO_DEVICE);
    dev.read(h, 16);
    assert.equal(m.violations.ofKind("unmapped-device-access").length, 2);
  });

  test("dma_set_mask offset: dma address = phys - dmaOffset", () => {
    const { m, dma, dev } = rig("arm64", { dmaOffset: 0x4000_0000 });
    const phys = cmaBuffer(m, PAGE_SIZE);
    const h = dma.dmaMapSingle(dev, phys, PAGE_SIZE, DMA_BIDIRECTIONAL);
    dma.dmaMappingError(dev, h);
    assert.equal(h, phys - 0x4000_0000);
    dev.write(h, new Uint8Array(PAGE_SIZE).fill(0x5a));
    dma.dmaUnmapSingle(dev, h, PAGE_SIZE, DMA_BIDIRECTIONAL);
    assert.ok(m.cpu.readPhys(phys, PAGE_SIZE).every((b) => b === 0x5a));
    assertNoViolations(m);
  });
});

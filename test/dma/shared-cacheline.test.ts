/**
 * Cache lines shared between a DMA buffer and other data (a buffer sub-allocated next to
 * a structure, an unaligned USERPTR): both directions of damage, and DMA-API debug's
 * overlapping-cacheline warning (kernel/dma/debug.c, active_cacheline_insert: EEXIST).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { DMA_FROM_DEVICE } from "../../src/dma/direction.js";
import { cmaBuffer, pattern, rig } from "./helpers.js";

const STRUCT = 16;

test("the neighbour's write-back destroys the device's data in the shared line", () => {
  const { m, dma, dev } = rig("arm64");
  const L = m.cache.line;
  const page = cmaBuffer(m, 4096);
  // A 16-byte structure at the start of a line, the DMA buffer right after it.
  const buf = page + STRUCT;
  const size = 4 * L - STRUCT;
  const h = dma.dmaMapSingle(dev, buf, size, DMA_FROM_DEVICE);
  dma.dmaMappingError(dev, h);
  // The CPU updates the structure while the device owns the buffer next to it: the shared
  // line is dirty, with the buffer's old bytes in it.
  m.cpu.writePhys(page, new Uint8Array(STRUCT).fill(0x5a));
  const bytes = pattern(size, 3);
  dev.write(h, bytes);
  dma.dmaSyncSingleForCpu(dev, h, size, DMA_FROM_DEVICE);
  const seen = m.cpu.readPhys(buf, size);
  dma.dmaUnmapSingle(dev, h, size, DMA_FROM_DEVICE);
  // The edge line was cleaned before the invalidate (as dcache_inval_poc does): the
  // structure survives, and the line's stale buffer bytes went over the device's.
  assert.deepEqual(m.cpu.readPhys(page, STRUCT), new Uint8Array(STRUCT).fill(0x5a));
  assert.notDeepEqual(seen.subarray(0, L - STRUCT), bytes.subarray(0, L - STRUCT));
  assert.deepEqual(seen.subarray(L - STRUCT), bytes.subarray(L - STRUCT));
  const kinds = new Set(m.violations.list.map((v) => v.kind));
  assert.ok(kinds.has("lost-device-write") || kinds.has("dirty-line-under-dma"), [...kinds].join());
  // The hint says why: the mapping starts mid-line, and names the fix.
  const v = m.violations.list.find(
    (x) => x.kind === "lost-device-write" || x.kind === "dirty-line-under-dma",
  )!;
  assert.match(v.hint, /starts mid cache line/);
  assert.match(v.hint, /ARCH_DMA_MINALIGN/);
  assert.match(v.hint, /allocate them separately/);
});

test("an invalidate covering the neighbour's bytes destroys its writes, and says so", () => {
  const { m, dma, dev } = rig("arm64");
  const L = m.cache.line;
  const buf = cmaBuffer(m, 4096);
  // A buffer of 3 lines less 16 bytes, mapped rounded up to whole lines (its allocator's
  // cache alignment), with a structure in the last 16 bytes of the last line.
  const size = 3 * L;
  const structAt = buf + size - STRUCT;
  const h = dma.dmaMapSingle(dev, buf, size, DMA_FROM_DEVICE);
  dma.dmaMappingError(dev, h);
  m.cpu.writePhys(structAt, new Uint8Array(STRUCT).fill(0x77));
  dev.write(h, pattern(size - STRUCT, 4), 0, size - STRUCT);
  dma.dmaSyncSingleForCpu(dev, h, size, DMA_FROM_DEVICE);
  dma.dmaUnmapSingle(dev, h, size, DMA_FROM_DEVICE);
  // The structure's update is gone, and both the access and the loss are reported.
  assert.notDeepEqual(m.cpu.readPhys(structAt, STRUCT), new Uint8Array(STRUCT).fill(0x77));
  const kinds = new Set(m.violations.list.map((v) => v.kind));
  assert.ok(kinds.has("cpu-access-device-owned"));
  assert.ok(
    m.violations.list.some(
      (v) => v.kind === "api-misuse" && /discarded .* dirty line/.test(v.message),
    ),
  );
});

test("DMA-API debug: two mappings sharing a cache line (not a byte) are EEXIST", () => {
  const { m, dma, dev } = rig("arm64");
  const L = m.cache.line;
  const page = cmaBuffer(m, 4096);
  const a = dma.dmaMapSingle(dev, page, L + 16, DMA_FROM_DEVICE);
  dma.dmaMappingError(dev, a);
  const b = dma.dmaMapSingle(dev, page + L + 16, L, DMA_FROM_DEVICE);
  dma.dmaMappingError(dev, b);
  assert.ok(
    m.violations.list.some((v) => /cacheline tracking EEXIST/.test(v.message)),
    "overlapping cacheline reported",
  );
  // Line-aligned neighbours are fine.
  const r2 = rig("arm64");
  const p2 = cmaBuffer(r2.m, 4096);
  const c = r2.dma.dmaMapSingle(r2.dev, p2, 2 * L, DMA_FROM_DEVICE);
  r2.dma.dmaMappingError(r2.dev, c);
  const d = r2.dma.dmaMapSingle(r2.dev, p2 + 2 * L, L, DMA_FROM_DEVICE);
  r2.dma.dmaMappingError(r2.dev, d);
  assert.equal(r2.m.violations.count, 0);
});
